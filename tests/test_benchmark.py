"""ganad.benchmark: each protocol in a tiny configuration on the reference data, split hygiene,
no test labels in calibration, outputs and the CLI command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ganad import benchmark as B
from ganad.data import mitbih as mb
from ganad.detectors.base import BaseGANDetector
from ganad.exceptions import InputError

DATA = Path(os.environ.get("GANAD_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
PEERS = ["iforest"] if B.pyod_available() else []
FAST = "ganomaly"  # the quickest ganad method to train; the protocol code is the same for every method


def need(sub):
    if not (DATA / sub).is_dir():
        pytest.skip(f"reference data {DATA / sub} is absent (set GANAD_SHARED_DATA to the folder holding {sub}/)")


@pytest.fixture
def no_calibrate(monkeypatch):
    """adbench / mnist fit no threshold: calibration must never run."""
    def boom(*a, **k):
        raise AssertionError("calibrate() was called in a protocol that must not calibrate")
    monkeypatch.setattr(BaseGANDetector, "calibrate", boom)


def _check_rows(rows, methods):
    assert {r["method"] for r in rows} == set(methods)
    for r in rows:
        assert r["error"] is None, r
        assert 0.0 <= r["auroc"] <= 1.0 and 0.0 <= r["auprc"] <= 1.0
        assert r["fit_s"] >= 0 and r["score_s"] >= 0


def test_adbench_split_is_disjoint_and_one_class():
    y = np.r_[np.zeros(100, int), np.ones(10, int)]
    for seed in (0, 1, 2):
        tr, te = B.adbench_split(y, seed)
        assert not np.intersect1d(tr, te).size
        assert (y[tr] == 0).all() and len(tr) == 60
        assert set(np.flatnonzero(y == 1)) <= set(te) and len(tr) + len(te) == len(y)
    assert not np.array_equal(B.adbench_split(y, 0)[0], B.adbench_split(y, 1)[0])
    np.testing.assert_array_equal(B.adbench_split(y, 0)[0], B.adbench_split(y, 0)[0])


def test_adbench_sets_are_reduced_to_their_distinct_rows_before_the_split(tmp_path, monkeypatch):
    """Benchmark audit (twenty-fifth session): ADBench's files repeat rows (breastw 234 of 683, mammography
    3,335 of 11,183), and the split was drawn over the raw rows, so copies of training rows sat in the test
    set (59 % of breastw's test normals), where every distance-based method scores them 0. Each set is
    now its distinct rows; a row with both labels is left out."""
    rng = np.random.RandomState(0)
    base = rng.randn(40, 3)
    X = np.r_[base, base[:25], base[:25], rng.randn(8, 3) + 6, base[[3]]]  # 50 copies, 8 anomalies, one row also labelled 1
    y = np.r_[np.zeros(90), np.ones(8), np.ones(1)].astype(int)
    Xu, yu, counts = B.adbench.adbench_unique(X, y)
    assert counts == {"rows": 99, "distinct": 48, "repeats_dropped": 51, "both_labels_dropped": 1}
    assert len(Xu) == 47 and yu.sum() == 8 and len(np.unique(Xu, axis=0)) == 47
    assert not any((Xu == base[3]).all(1))  # the row with both labels
    Z = np.array([[0.0, 1.0], [-0.0, 1.0], [np.nan, 2.0], [np.nan, 2.0]])
    assert B.adbench.adbench_unique(Z, np.array([0, 1, 0, 0]))[2] == {"rows": 4, "distinct": 2, "repeats_dropped": 2, "both_labels_dropped": 1}
    d = tmp_path / "data" / "adbench"
    d.mkdir(parents=True)
    np.savez(d / "1_rep.npz", X=X, y=y)
    seen = []
    real = B.adbench.run_one

    def spy(kind, m, Xtr, Xte, **kw):
        seen.append((Xtr, Xte))
        return real(kind, m, Xtr, Xte, **kw)
    monkeypatch.setattr(B.adbench, "run_one", spy)
    res = B.run_adbench(tmp_path / "data", methods=[FAST], peers=[], seeds=[0, 1], epochs=1, max_train=None, max_test=None, log=lambda s: None)
    for Xtr, Xte in seen:
        shared = {r.tobytes() for r in np.ascontiguousarray(Xtr)} & {r.tobytes() for r in np.ascontiguousarray(Xte)}
        assert not shared and len(Xtr) + len(Xte) == 47
    assert any("1_rep: 51 repeated row(s) of 99 dropped before the split, and 1 row(s) that occur with both labels" in n for n in res["notes"])


def test_mitbih_split_by_patient():
    tr, cal = B.mitbih_split(mb.DS1, 0)
    assert set(tr) | set(cal) == set(mb.DS1) and not set(tr) & set(cal)
    assert len(cal) == round(0.2 * len(mb.DS1))
    assert B.mitbih_split(mb.DS1, 0) == (tr, cal) and B.mitbih_split(mb.DS1, 1) != (tr, cal)


def test_adbench_tiny(no_calibrate, tmp_path):
    need("adbench")
    res = B.run_adbench(DATA, methods=[FAST], peers=PEERS, seeds=[0, 1], datasets=["WBC"], max_train=100, max_test=100,
                        epochs=1, peer_epochs=1, log=lambda *a: None)
    assert res["protocol"] == "adbench" and res["config"]["seeds"] == [0, 1]
    _check_rows(res["results"], [FAST] + [f"pyod:{p}" for p in PEERS])
    assert {r["seed"] for r in res["results"]} == {0, 1}
    assert set(res["per_dataset"]) == {"42_WBC"}
    s = res["summary"]
    assert s["best_ganad"] == FAST and 0 <= s["best_ganad_mean_auroc"] <= 1
    paths = B.write_outputs(res, tmp_path)
    back = json.loads(paths["json"].read_text())
    assert back["results"][0]["auroc"] == res["results"][0]["auroc"]
    assert "| 42_WBC |" in paths["markdown"].read_text()
    html = paths["report"].read_text()
    assert "Benchmark figures" in html and html.count("data:image/png;base64,") >= 2
    assert (tmp_path / "auroc_per_dataset.png").stat().st_size > 1000


def test_mnist_tiny(no_calibrate):
    need("mnist")
    res = B.run_mnist(DATA, methods=[FAST], peers=PEERS, digits=[1], max_train=64, max_test=150, epochs=1, peer_epochs=1,
                      log=lambda *a: None)
    _check_rows(res["results"], [FAST] + [f"pyod:{p}" for p in PEERS])
    assert list(res["per_digit"]) == ["1"] and res["results"][0]["n_train"] == 64 and res["results"][0]["n_test"] == 150
    assert len(set(res["split"]["test_index"])) == 150  # test images come from the test file only, without repeats


def test_mitbih_tiny_no_test_labels_in_calibration(monkeypatch, tmp_path):
    need("mitdb")
    seen = []
    orig = BaseGANDetector.calibrate

    def spy(self, X_val, y_val=None, **kw):
        seen.append(("ganad", np.asarray(X_val).copy(), None if y_val is None else np.asarray(y_val).copy(), kw))
        return orig(self, X_val, y_val, **kw)

    import ganad.scoring.calibration as cal_mod
    orig_thr = cal_mod.fit_threshold

    def spy_thr(scores, y=None, **kw):
        seen.append(("peer", np.asarray(scores).copy(), None if y is None else np.asarray(y).copy(), kw))
        return orig_thr(scores, y, **kw)

    monkeypatch.setattr(BaseGANDetector, "calibrate", spy)
    monkeypatch.setattr(cal_mod, "fit_threshold", spy_thr)
    ds1, ds2 = ["101", "106", "108", "109", "112"], ["100", "105"]
    res = B.run_mitbih(DATA, methods=[FAST], peers=PEERS, ds1=ds1, ds2=ds2, max_train=300, max_test=400, max_cal=150,
                       epochs=1, peer_epochs=1, log=lambda *a: None)
    sp = res["split"]
    # splits: training / calibration records inside DS1 and apart by patient, test records inside DS2
    assert set(sp["train_records"]) <= set(mb.DS1) and set(sp["cal_records"]) <= set(mb.DS1)
    assert set(sp["test_records"]) <= set(mb.DS2) and not set(sp["train_records"]) & set(sp["cal_records"])
    assert not (set(sp["train_records"]) | set(sp["cal_records"])) & set(sp["test_records"])
    assert sp["train_counts"]["N"] == sp["n_train"] == 300 and sp["cal_counts"]["N"] == sp["n_cal"] == 150
    assert sp["cal_labels_used"] is False
    # calibration saw only the held-out calibration beats, never a label (fpr rule)
    ganad_calls = [c for c in seen if c[0] == "ganad"]
    assert len(ganad_calls) == 1 and ganad_calls[0][1].shape == (150, 1, 256) and ganad_calls[0][2] is None
    peer_calls = [c for c in seen if c[0] == "peer"]  # ganad's calibrate() goes through fit_threshold too
    assert len(peer_calls) == len(PEERS) + 1 and all(c[1].shape == (150,) and c[2] is None for c in peer_calls)
    # metrics from continuous scores
    _check_rows(res["results"], [FAST] + [f"pyod:{p}" for p in PEERS])
    y = res["_y"]
    assert len(y) == sp["n_test"] and 0 < y.sum() < len(y)
    for r in res["results"]:
        s = res["_scores"][r["method"]]
        assert len(np.unique(s)) > 10
        assert r["auroc"] == pytest.approx(roc_auc_score(y, s))
        assert r["threshold"] is not None and r["f1"] is not None and -1 <= r["mcc"] <= 1
        assert r["auroc_N_vs_V"] is None or 0 <= r["auroc_N_vs_V"] <= 1
    paths = B.write_outputs(res, tmp_path)
    assert (tmp_path / "roc.png").is_file() and "results" in json.loads(paths["json"].read_text())


def test_mitbih_labelled_calibration_uses_held_out_labels_only(monkeypatch):
    need("mitdb")
    seen = []
    orig = BaseGANDetector.calibrate

    def spy(self, X_val, y_val=None, **kw):
        seen.append((len(X_val), None if y_val is None else np.asarray(y_val).copy()))
        return orig(self, X_val, y_val, **kw)

    monkeypatch.setattr(BaseGANDetector, "calibrate", spy)
    res = B.run_mitbih(DATA, methods=[FAST], peers=[], ds1=["106", "108", "119", "201", "203"], ds2=["100", "105"],
                       max_train=200, max_test=300, max_cal=300, epochs=1, calibration="mcc", compose="default",
                       log=lambda *a: None)
    assert res["split"]["cal_labels_used"] is True and res["config"]["compose"] == "default"
    assert 0 <= res["results"][0]["auroc"] <= 1 and res["results"][0]["error"] is None
    (n, y_val), = seen
    assert n == res["split"]["n_cal"] and len(y_val) == n
    assert int(y_val.sum()) == sum(v for k, v in res["split"]["cal_counts"].items() if k != "N")


def test_bad_arguments(monkeypatch):
    monkeypatch.delenv(B.ENV_VAR, raising=False)
    with pytest.raises(ValueError, match="GANAD_DATA_DIR"):
        B.run_adbench(None, methods=[FAST], peers=[])
    with pytest.raises(ValueError, match="--methods"):
        B.run_adbench(DATA, methods=["nope"], peers=[])
    with pytest.raises(ValueError, match="--peers"):
        B.run_adbench(DATA, methods=[FAST], peers=["nope"])
    with pytest.raises(ValueError, match="calibration"):
        B.run_mitbih(DATA, calibration="test-labels")
    with pytest.raises(ValueError, match="compose"):
        B.run_mitbih(DATA, compose="svm")
    with pytest.raises(ValueError, match="DS1"):
        B.run_mitbih(DATA, ds1=["100"])


def test_adbench_refuses_a_data_folder_without_datasets(tmp_path):
    """An empty adbench/ folder (a copy not made, or interrupted) ran no dataset and wrote an empty
    report, exit 0: refused instead, naming the folder and the fix."""
    from typer.testing import CliRunner
    from ganad.cli import app
    from ganad.exceptions import DataFileError
    (tmp_path / "data" / "adbench").mkdir(parents=True)
    with pytest.raises(DataFileError, match=rf"{tmp_path / 'data' / 'adbench'}: holds no ADBench \.npz file\. Fix: copy"):
        B.run_adbench(tmp_path / "data", methods=[FAST], peers=[], log=lambda s: None)
    r = CliRunner().invoke(app, ["benchmark", "adbench", "--data", str(tmp_path / "data"), "--methods", FAST, "--peers", "none",
                                 "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "holds no ADBench .npz file" in " ".join(r.output.split()) and not (tmp_path / "out" / "results.json").exists()


def test_adbench_leaves_out_a_dataset_without_anomalies_and_says_so(tmp_path):
    """A set whose labels are all 0 trained every model for an undefined AUROC, written as None with no
    word of why; it is left out with a note now, and a folder of such sets only is refused."""
    from ganad.exceptions import DataFileError
    d = tmp_path / "data" / "adbench"
    d.mkdir(parents=True)
    rng = np.random.RandomState(0)
    np.savez(d / "1_none.npz", X=rng.randn(60, 3), y=np.zeros(60))
    with pytest.raises(DataFileError, match="no dataset with both normal and anomalous rows"):
        B.run_adbench(tmp_path / "data", methods=[FAST], peers=[], seeds=[0], epochs=1, log=lambda s: None)
    np.savez(d / "2_ok.npz", X=np.r_[rng.randn(60, 3), rng.randn(10, 3) + 5], y=np.r_[np.zeros(60), np.ones(10)])
    res = B.run_adbench(tmp_path / "data", methods=[FAST], peers=[], seeds=[0], epochs=1, log=lambda s: None)
    assert {r["dataset"] for r in res["results"]} == {"2_ok"}
    assert any("1_none: left out" in n for n in res["notes"])


def test_default_methods_follow_the_registry():
    from ganad.detectors import DETECTORS
    names = B.default_methods()
    assert set(names) <= set(DETECTORS) and len(names) == len(set(DETECTORS.values()))


def test_cli_benchmark(tmp_path, monkeypatch):
    need("adbench")
    from typer.testing import CliRunner
    from ganad.cli import app
    monkeypatch.setenv(B.ENV_VAR, str(DATA))
    r = CliRunner().invoke(app, ["benchmark", "adbench", "--methods", FAST, "--peers", ",".join(PEERS) or "none",
                                 "--datasets", "WBC", "--n-seeds", "1", "--max-train", "80", "--max-test", "80",
                                 "--epochs", "1", "--peer-epochs", "1", "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "results.json").is_file() and (tmp_path / "report.html").is_file()
    r = CliRunner().invoke(app, ["benchmark", "bogus", "-o", str(tmp_path)])
    assert r.exit_code == 2 and "mitbih" in r.output


def test_mitbih_rhythm_view(monkeypatch):
    need("mitdb")
    import ganad.scoring.calibration as cal_mod
    seen = []
    orig_thr = cal_mod.fit_threshold

    def spy_thr(scores, y=None, **kw):
        seen.append(None if y is None else np.asarray(y))
        return orig_thr(scores, y, **kw)

    monkeypatch.setattr(cal_mod, "fit_threshold", spy_thr)
    ds1, ds2 = ["101", "106", "108", "109", "112"], ["100", "105"]
    res = B.run_mitbih(DATA, methods=[FAST], peers=PEERS, ds1=ds1, ds2=ds2, max_train=300, max_test=400, max_cal=150,
                       epochs=1, peer_epochs=1, rhythm=True, log=lambda *a: None)
    assert res["config"]["rhythm"] is True and any("rhythm view" in n for n in res["notes"])
    _check_rows(res["results"], [f"{FAST}+rhythm"] + [f"pyod:{p}" for p in PEERS])
    assert all(y is None for y in seen)  # the fpr rule: no labels anywhere in calibration
    y = res["_y"]
    for r in res["results"]:
        assert r["auroc"] == pytest.approx(roc_auc_score(y, res["_scores"][r["method"]]))


def test_mitbih_rhythm_view_peers_as_two_views():
    """peer_rhythm='both': each peer once with the RR features appended, once as two views like ganad's."""
    need("mitdb")
    if not PEERS:
        pytest.skip("PyOD is not installed")
    ds1, ds2 = ["101", "106", "108", "109", "112"], ["100", "105"]
    res = B.run_mitbih(DATA, methods=[], peers=PEERS, ds1=ds1, ds2=ds2, max_train=300, max_test=400, max_cal=150,
                       epochs=1, peer_epochs=1, rhythm=True, peer_rhythm="both", log=lambda *a: None)
    names = [r["method"] for r in res["results"]]
    assert names == [f"pyod:{PEERS[0]}", f"pyod:{PEERS[0]}+rhythm (two views)"]
    assert all(r["error"] is None and 0 <= r["auroc"] <= 1 for r in res["results"])
    assert any("two views like ganad" in n for n in res["notes"])
    with pytest.raises(Exception, match="peer_rhythm"):
        B.run_mitbih(DATA, methods=[], peers=PEERS, ds1=ds1, ds2=ds2, rhythm=True, peer_rhythm="nosuch", log=lambda *a: None)


def test_mitbih_beat_input_change_and_both(monkeypatch):
    """beat_input='change' / 'both': every method (ganad's and the peers) sees the beat minus its record's
    causal template of 8 beats (computed on whole records, before any subsample), or both as channels."""
    need("mitdb")
    import ganad.benchmark.mitbih as protocol
    from ganad.data import load_mitbih, template_difference
    seen = []
    orig = protocol.run_one

    def spy(kind, name, X_tr, X_te, **kw):
        seen.append((kind, np.asarray(X_tr).shape, np.asarray(X_te)))
        return orig(kind, name, X_tr, X_te, **kw)

    monkeypatch.setattr(protocol, "run_one", spy)
    ds1, ds2 = ["101", "106", "108", "109", "112"], ["100", "105"]
    res = B.run_mitbih(DATA, methods=[FAST], peers=PEERS, ds1=ds1, ds2=ds2, max_train=300, max_test=0, max_cal=150,
                       epochs=1, peer_epochs=1, beat_input="both", log=lambda *a: None)
    assert res["config"]["beat_input"] == "both" and any("two channels" in n for n in res["notes"])
    assert all(r["error"] is None for r in res["results"]) and len(seen) == 1 + len(PEERS)
    b2 = load_mitbih(DATA / "mitdb", ds2)
    want = np.concatenate([b2.X, template_difference(b2.X, b2.record, b2.sample, k=8)], axis=1)
    for kind, shape, X_te in seen:
        assert shape[1:] == (2, 256)
        np.testing.assert_array_equal(X_te, want)  # every DS2 beat (max_test=0), the template from its own record
    seen.clear()
    B.run_mitbih(DATA, methods=[FAST], peers=[], ds1=ds1, ds2=ds2, max_train=300, max_test=400, max_cal=150,
                 epochs=1, beat_input="change", log=lambda *a: None)
    assert seen[0][1][1:] == (1, 256)
    with pytest.raises(Exception, match="beat_input"):
        B.run_mitbih(DATA, methods=[FAST], peers=[], ds1=ds1, ds2=ds2, beat_input="template", log=lambda *a: None)


def test_cli_beat_input_belongs_to_mitbih(tmp_path):
    from typer.testing import CliRunner

    from ganad.cli import app
    r = CliRunner().invoke(app, ["benchmark", "adbench", "--beat-input", "both", "-o", str(tmp_path / "b")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "--beat-input: do not apply to the adbench protocol" in out, r.output
    r = CliRunner().invoke(app, ["benchmark", "mitbih", "--beat-input", "template", "--data", str(tmp_path), "-o", str(tmp_path / "b")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "--beat-input: is 'template'" in out and "'both'" in out, r.output
    assert not (tmp_path / "b" / "results.json").exists()


def test_peers_get_standardised_features(monkeypatch):
    """A careful user scales features for distance-based peers: run_one standardises on the training data."""
    seen = {}

    class Spy:
        def fit(self, X):
            seen["train"] = X
            return self

        def decision_function(self, X):
            seen["test"] = X
            return X.sum(1)

    monkeypatch.setattr(B.peers, "make_peer", lambda *a, **k: Spy())
    rng = np.random.RandomState(0)
    Xtr, Xte = rng.randn(50, 3) * [1, 100, 1e4] + 7, rng.randn(20, 3)
    B.run_one("peer", "knn", Xtr, Xte, seed=0, epochs=1, peer_epochs=1, log=lambda *a: None)
    np.testing.assert_allclose(seen["train"].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(seen["train"].std(0), 1, atol=1e-4)
    B.run_one("peer", "knn", Xtr, Xte, seed=0, epochs=1, peer_epochs=1, scale_peers=False, log=lambda *a: None)
    np.testing.assert_allclose(seen["train"], Xtr.astype(np.float32))


def test_ganad_rows_report_own_and_knn_scores(no_calibrate):
    need("adbench")
    res = B.run_adbench(DATA, methods=[FAST], peers=[], seeds=[0], datasets=["WBC"], max_train=200, max_test=100,
                        epochs=1, peer_epochs=1, log=lambda *a: None)
    r = res["results"][0]
    assert 0 <= r["auroc_own"] <= 1 and 0 <= r["auroc_knn"] <= 1 and r["auroc"] is not None


def test_the_own_scores_latent_search_is_left_out_above_its_size(monkeypatch):
    """AnoGAN's own score (a diagnostic column) costs a latent search per test sample: above
    OWN_SEARCH_MAX_VALUES test values run_one leaves it out and says so; the default score is unaffected."""
    from ganad.benchmark import runner
    rng = np.random.RandomState(0)
    Xtr, Xte = rng.randn(200, 4).astype(np.float32), rng.randn(30, 4).astype(np.float32)
    kw = dict(seed=0, epochs=1, peer_epochs=1, log=lambda *a: None)
    full = B.run_one("ganad", "anogan", Xtr, Xte, **kw)
    assert full["scores_own"] is not None and "own_skipped" not in full
    monkeypatch.setattr(runner, "OWN_SEARCH_MAX_VALUES", Xte.size - 1)
    cut = B.run_one("ganad", "anogan", Xtr, Xte, **kw)
    assert "scores_own" not in cut and "30 test samples" in cut["own_skipped"] and cut["error"] is None
    np.testing.assert_allclose(cut["scores"], full["scores"])
    enc = B.run_one("ganad", "ganomaly", Xtr, Xte, **kw)  # an encoder method's own score costs one pass: kept
    assert enc["scores_own"] is not None


def test_mitbih_patient_adaptive_rows(monkeypatch):
    need("mitdb")
    monkeypatch.setattr(BaseGANDetector, "calibrate", lambda self, *a, **k: self)
    kw = dict(methods=[FAST], peers=[], ds1=["101", "106", "108", "109", "112"], ds2=["100", "105"],
              max_train=300, max_cal=100, epochs=1, adaptive=50, log=lambda *a: None)
    # a record's first 50 beats are its own first 50, not those of a class-stratified subsample of DS2
    with pytest.raises(InputError, match="--max-test 0"):
        B.run_mitbih(DATA, max_test=600, **kw)
    res = B.run_mitbih(DATA, max_test=0, **kw)
    names = [r["method"] for r in res["results"]]
    assert names == [FAST, f"{FAST} (patient-adaptive, first 50 beats)"]  # beside the pure row, never in its place
    ad = res["results"][1]
    assert ad["n_evaluated"] == res["split"]["n_test"] - 2 * 50  # the warm-up beats of each of the two records are left out
    assert 0 <= ad["auroc"] <= 1 and 0 <= ad["auroc_unadapted_same_beats"] <= 1
    # the adaptive threshold's figures beside the population threshold's on the same beats: each record's own
    # threshold is never below the population one (prefix_threshold's raise_only), so it flags no more
    pure = res["results"][0]
    assert pure["records_fpr_counted"] == 2 and 0 <= pure["records_over_2x_fpr"] <= 2
    assert ad["records_fpr_counted"] == ad["records_fpr_counted_unadapted_same_beats"] == 2
    assert ad["fpr_test"] <= ad["fpr_test_unadapted_same_beats"] and ad["recall"] <= ad["recall_unadapted_same_beats"]
    assert ad["records_over_2x_fpr"] <= ad["records_over_2x_fpr_unadapted_same_beats"]
    assert 0 <= ad["worst_record_fpr"] <= ad["worst_record_fpr_unadapted_same_beats"] <= 1
    assert res["summary"]["best_ganad"] == FAST and res["summary"]["best_ganad_auroc"] == res["results"][0]["auroc"]


def test_threshold_transfer_counts_records_over_twice_the_target():
    from ganad.benchmark.mitbih import threshold_transfer
    y = np.r_[np.zeros(200), np.ones(10), np.zeros(200), np.zeros(50)].astype(int)
    rec = np.array(["a"] * 210 + ["b"] * 200 + ["c"] * 50)
    flag = np.zeros(460, bool)
    flag[:10] = True  # a: 5 % of its normal beats
    flag[200:205] = True  # a: half of its anomalies
    flag[210:250] = True  # b: 20 %, over twice a 5 % target
    flag[410:460] = True  # c: every beat, but under 100 normal beats: not counted per record
    tt = threshold_transfer(flag, y, rec, 0.05)
    assert tt["records_fpr_counted"] == 2 and tt["records_over_2x_fpr"] == 1 and tt["worst_record_fpr"] == pytest.approx(0.2)
    assert tt["fpr_test"] == pytest.approx(100 / 450) and tt["recall"] == pytest.approx(0.5)
    keep = rec != "b"
    tt = threshold_transfer(flag, y, rec, 0.05, keep)
    assert tt["records_fpr_counted"] == 1 and tt["records_over_2x_fpr"] == 0 and tt["fpr_test"] == pytest.approx(60 / 250)


def test_summary_never_puts_a_patient_adaptive_row_in_place_of_the_pure_one():
    """The headline (CLI, report's score panel) is the best pure inter-patient row, even where the
    patient-adaptive row beside it scores higher on its own (fewer) beats."""
    from ganad.benchmark.summary import _summary
    rows = [{"method": "fanogan", "auroc": 0.70}, {"method": "ganomaly", "auroc": 0.72},
            {"method": "fanogan (patient-adaptive, first 300 beats)", "auroc": 0.90, "auroc_unadapted_same_beats": 0.70},
            {"method": "pyod:knn", "auroc": 0.73},
            {"method": "pyod:knn (patient-adaptive, first 300 beats)", "auroc": 0.95, "auroc_unadapted_same_beats": 0.73}]
    s = _summary(rows)
    assert (s["best_ganad"], s["best_ganad_auroc"]) == ("ganomaly", 0.72)
    assert (s["best_peer"], s["best_peer_auroc"]) == ("pyod:knn", 0.73)


def test_cli_benchmark_passes_peer_rhythm(monkeypatch, tmp_path):
    import ganad.benchmark as GB
    seen = {}

    def fake(protocol, data, **kw):
        seen.update(kw, protocol=protocol)
        raise ValueError("stop here. Fix: none")

    monkeypatch.setattr(GB, "run_protocol", fake)
    from typer.testing import CliRunner

    from ganad.cli import app
    r = CliRunner().invoke(app, ["benchmark", "mitbih", "--rhythm", "--peer-rhythm", "views", "-o", str(tmp_path / "b")])
    assert r.exit_code == 2 and seen["peer_rhythm"] == "views" and seen["rhythm"] is True


def test_cli_refuses_bad_options_and_outputs_before_the_run(tmp_path):
    """A bad option would make every method fail (each recorded as an error, exit 0) or crash when the
    results are written: refused up front, exit 2, nothing written."""
    from typer.testing import CliRunner
    from ganad.cli import app
    for sub in ("adbench", "mnist", "mitdb"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    (tmp_path / "afile").write_text("x")
    base = ["--data", str(tmp_path / "data"), "--peers", "none", "--methods", FAST]
    for args, match in [
        (["mnist", "--digits", "abc"], "--digits"),
        (["mnist", "--digits", "11"], "--digits"),
        (["mnist", "--epochs", "0"], "--epochs"),
        (["adbench", "--epochs", "-1"], "--epochs"),
        (["adbench", "--peer-epochs", "0"], "--peer-epochs"),
        (["mitbih", "--fpr", "2"], "fpr"),
        (["mitbih", "--adaptive", "-5"], "--adaptive"),
    ]:
        r = CliRunner().invoke(app, ["benchmark", *args, *base, "-o", str(tmp_path / "out")])
        assert r.exit_code == 2 and match in r.output, (args, r.output)
        assert not (tmp_path / "out").exists()
    for protocol in ("adbench", "mitbih"):  # no method and no peer: empty results, refused (nab runs its rolling z-score)
        r = CliRunner().invoke(app, ["benchmark", protocol, *base, "--methods", "none", "-o", str(tmp_path / "out")])
        assert r.exit_code == 2 and "--methods 'none' and --peers 'none'" in r.output, (protocol, r.output)
        assert not (tmp_path / "out").exists()
    for protocol in ("adbench", "nab"):
        for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
            r = CliRunner().invoke(app, ["benchmark", protocol, *base, "-o", str(out)])
            assert r.exit_code == 2 and "afile" in r.output, (protocol, r.output)  # not a traceback (exit 1) after the run


def test_full_scale_mean_over_units_needs_every_unit():
    """benchmarks/full_scale.py: a method that failed on every seed of one dataset gets no mean over
    datasets (as the library's own summary), not a mean over the easier datasets it finished."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "full_scale.py"
    spec = importlib.util.spec_from_file_location("full_scale_under_test", path)
    fs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fs)
    rows = [{"dataset": d, "seed": s, "method": m, "auroc": a, "fit_s": 1.0}
            for d, ok, hard in (("easy", 0.95, 0.99), ("hard", 0.60, None)) for s in (0, 1)
            for m, a in (("knn", ok), ("fragile", hard))]
    agg = {r["method"]: r for r in fs.aggregate(rows, "dataset")}
    assert agg["knn"]["auroc"] == pytest.approx((0.775, 0.0))
    assert agg["fragile"]["auroc"] == (None, None) and agg["fragile"]["n_runs"] == 4
    assert "| fragile |  |" in fs.table(list(agg.values()))
    rows[-1]["auroc"] = 0.7  # one seed finished on the hard dataset: its mean counts, over one seed
    assert {r["method"]: r for r in fs.aggregate(rows, "dataset")}["fragile"]["auroc"] == pytest.approx((0.845, 0.0))


def test_ecod_peer_scores_each_new_row_against_the_training_data_alone():
    """PyOD's ECOD fits its tails on the training rows plus the whole batch it scores (a row's score
    depends on the rows scored with it); the benchmark's ECOD scores every row as PyOD scores it alone."""
    pytest.importorskip("pyod")
    from pyod.models.ecod import ECOD
    rng = np.random.default_rng(0)
    T = rng.standard_normal((300, 6)) * [1, 2, 3, 1, 1, 1] + rng.exponential(size=(300, 6))
    X = np.r_[rng.standard_normal((30, 6)) * 2, T[:5]]
    det = B.make_peer("ecod", 0, 1, 6).fit(T)
    alone = np.array([ECOD().fit(T).decision_function(x[None])[0] for x in X])
    np.testing.assert_allclose(det.decision_function(X), alone, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(det.decision_function(X[::-1]), alone[::-1], rtol=1e-12, atol=1e-12)  # no batch effect
    np.testing.assert_allclose(det.decision_scores_, ECOD().fit(T).decision_scores_)
    assert not np.allclose(ECOD().fit(T).decision_function(X), alone)  # PyOD's batch scores differ: the case this covers
    # a column constant in the training rows: PyOD scores every row NaN (undefined skewness), here finite,
    # and the constant column adds nothing for a row that has the constant
    Tc = np.c_[T, np.ones(len(T))]
    det = B.make_peer("ecod", 0, 1, 7).fit(Tc)
    assert np.isfinite(det.decision_scores_).all()
    np.testing.assert_allclose(det.decision_scores_, ECOD().fit(T).decision_scores_)
    s = det.decision_function(np.c_[X, np.ones(len(X))])
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s, alone, rtol=1e-12)


def _tiny_adbench_command(tmp_path) -> list:
    """`ganad benchmark adbench` arguments for one small set of 60 normal and 10 anomalous rows in tmp_path."""
    d = tmp_path / "data" / "adbench"
    d.mkdir(parents=True)
    rng = np.random.RandomState(0)
    np.savez(d / "2_ok.npz", X=np.r_[rng.randn(60, 3), rng.randn(10, 3) + 5], y=np.r_[np.zeros(60), np.ones(10)])
    return ["benchmark", "adbench", "--data", str(tmp_path / "data"), "--methods", FAST, "--peers", "none", "--epochs", "1",
            "--n-seeds", "1", "-o", str(tmp_path / "out")]


def test_cli_benchmark_refuses_a_too_small_max_train_and_a_run_where_everything_failed(tmp_path, monkeypatch):
    """--max-train 3 printed a traceback per method, wrote tables of dashes and exited 0."""
    from typer.testing import CliRunner
    from ganad.cli import app
    from ganad.exceptions import InputError
    base = _tiny_adbench_command(tmp_path)
    r = CliRunner().invoke(app, base + ["--max-train", "3"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "--max-train: is 3" in out and "at least 8" in out and not (tmp_path / "out").exists()

    def broken(*a, **k):
        raise InputError("X: broken on purpose. Fix: none")
    monkeypatch.setattr("ganad.benchmark.runner.make_ganad", broken)
    r = CliRunner().invoke(app, base)
    out = " ".join(r.output.split())
    assert r.exit_code != 0 and "every run failed, nothing was written" in out and "broken on purpose" in out
    assert "Traceback" not in out and not (tmp_path / "out" / "results.json").exists()


def test_full_scale_reports_the_spread_of_the_mean_over_units_beside_the_mean_seed_sd():
    """The ± of an ADBench / MNIST mean is the mean over sets of each set's seed sd; beside it the
    sd over seeds of the mean over sets, the spread of the headline figure itself."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "full_scale.py"
    spec = importlib.util.spec_from_file_location("full_scale_under_test2", path)
    fs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fs)
    # two sets whose seed noise runs in opposite directions: each set's sd is 0.1, the mean never moves
    rows = [{"dataset": d, "seed": s, "method": "m", "auroc": 0.8 + (0.1 if (s == 0) == (d == "a") else -0.1)}
            for d in ("a", "b") for s in (0, 1)]
    agg = fs.aggregate(rows, "dataset")[0]
    assert agg["auroc"] == pytest.approx((0.8, 0.1)) and agg["auroc_sd_of_mean"] == pytest.approx(0.0)
    rows[0]["auroc"] = 0.95  # seed 0's mean over sets moves by +0.025
    agg = fs.aggregate(rows, "dataset")[0]
    assert agg["auroc_sd_of_mean"] == pytest.approx(np.std([0.825, 0.8]))
    assert "auroc_sd_of_mean" in fs.table([agg])


def test_figures_mark_an_undefined_auroc_instead_of_a_bar_at_zero():
    """Metrics audit (twenty-fifth session): a class without test beats (AUROC None) was drawn as a bar at
    0.0, which reads as a perfectly inverted detector."""
    pytest.importorskip("matplotlib")
    from ganad.benchmark.figures import _figures
    res = {"protocol": "mitbih", "results": [{"method": "ganomaly", "auroc": 0.9, "auroc_N_vs_S": 0.8, "auroc_N_vs_V": 0.95,
                                               "auroc_N_vs_F": None}],
           "_y": np.array([0, 1, 0, 1]), "_scores": {"ganomaly": np.array([0.1, 0.9, 0.2, 0.8])}}
    ax = _figures(res)["auroc_by_class"].axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert sorted(h for h in heights if h == h) == [0.8, 0.9, 0.95] and sum(h != h for h in heights) == 1
    assert [t.get_text() for t in ax.texts] == ["n/a"]


def test_cli_benchmark_replaces_its_outputs_as_one_set_and_writes_the_report_once(tmp_path, monkeypatch):
    """write_outputs wrote results.json, results.md and the PNGs one by one, then report.html twice (first
    without the figures): a full disk or Ctrl-C after the first files left the new results.json beside the
    earlier run's report. The files now replace the earlier ones as a set, the report written once."""
    from typer.testing import CliRunner

    import ganad.files
    from ganad.cli import app
    base = _tiny_adbench_command(tmp_path)
    writes, real_bytes, real_text = [], ganad.files.write_bytes, ganad.files.write_text

    def counted_bytes(path, data):
        writes.append(Path(path).name)
        return real_bytes(path, data)

    def counted_text(path, text):
        writes.append(Path(path).name)
        return real_text(path, text)
    monkeypatch.setattr("ganad.report.html.write_bytes", counted_bytes)
    monkeypatch.setattr("ganad.benchmark.outputs.write_text", counted_text)
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 0, r.output
    assert writes.count("report.html") == 1 and writes.count("results.json") == 1, writes  # the report once (it was twice)
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"results.json", "results.md", "report.html"} <= set(before)

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("ganad.report.write_report", full)  # the disk fills up at the report, after results.json and the figures
    r = CliRunner().invoke(app, base + ["--seed", "1"])
    assert r.exit_code != 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier run's set, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_a_non_finite_diagnostic_column_has_no_auroc_instead_of_failing_the_benchmark():
    """Review: run_one keeps the own / knn score columns as they are; one with an overflowed row made
    roc_auc_score raise outside run_one's guard and stopped the whole benchmark."""
    from ganad.benchmark.runner import _variant_metrics
    y = np.array([0, 0, 1, 1])
    got = _variant_metrics(y, {"scores_own": np.array([0.1, np.inf, 0.2, 0.9]), "scores_knn": np.array([0.1, 0.2, 0.3, 0.9])})
    assert got == {"auroc_own": None, "auroc_knn": 1.0}


def test_records_name_the_knn_blocks_each_member_and_view_chose(monkeypatch):
    """A benchmark record says which block(s) knn_space='auto' chose: for an ensemble, each member's
    choice (the ensemble itself makes none), for two views, each view's."""
    from ganad.benchmark import peers as P
    rng = np.random.RandomState(0)
    Xtr, Xte = rng.randn(400, 6).astype(np.float32), rng.randn(50, 6).astype(np.float32)
    small = {"width": 16, "latent_dim": 4, "batch_size": 64}
    monkeypatch.setitem(P.GANAD_PARAMS, "n_members", 2)
    for k, v in small.items():
        monkeypatch.setitem(P.GANAD_PARAMS, k, v)
    r = B.run_one("ganad", FAST, Xtr, Xte, seed=0, epochs=1, peer_epochs=1, log=lambda *a: None)
    assert r["error"] is None, r["error"]
    assert len(r["knn_blocks_members"]) == 2
    assert all(b in ("both", "input", "feature") for b in r["knn_blocks_members"])
    monkeypatch.delitem(P.GANAD_PARAMS, "n_members")
    Xr_tr, Xr_te = rng.randn(400, 4).astype(np.float32), rng.randn(50, 4).astype(np.float32)
    r2 = B.run_two_views(FAST, (Xtr, Xr_tr), (Xte, Xr_te), (Xte, Xr_te), np.ones(50, bool), seed=0, epochs=1,
                         log=lambda *a: None)
    assert r2["error"] is None, r2["error"]
    assert set(r2["knn_blocks"]) == {"morphology", "rhythm"}
    assert all(b in ("both", "input", "feature") for b in r2["knn_blocks"].values())


def test_unseen_tables_report_needs_every_task():
    """benchmarks/unseen_tables.py: a method that failed on one task gets no mean over that set or over
    every task, and its seeds are not paired with KNN's; complete methods get both."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "unseen_tables.py"
    spec = importlib.util.spec_from_file_location("unseen_tables_under_test", path)
    ut = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ut)
    rows = [{"task": t, "seed": s, "method": m, "auroc": a}
            for t, base in (("wine 0", 0.9), ("wine 1", 0.7), ("digits 0", 0.8)) for s in (0, 1)
            for m, a in (("pyod:knn", base), ("ganomaly", base + 0.02 * (s + 1)), ("fragile", None if t == "wine 1" else 1.0))]
    table = ut.summarise(rows)
    line = {ln.split(" | ")[0][2:]: ln for ln in table.splitlines()[2:]}
    assert line["pyod:knn"] == "| pyod:knn | 0.800 ± 0.000 | 0.800 ± 0.000 | 0.800 |  |"  # digits, wine, every task
    assert line["ganomaly"] == "| ganomaly | 0.830 ± 0.010 | 0.830 ± 0.010 | 0.830 | +0.0300 ± 0.0100; 2 of 2 |"
    assert line["fragile"] == "| fragile | 1.000 ± 0.000 |  |  |  |"  # digits complete; wine and the means not
