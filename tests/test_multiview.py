"""MultiViewDetector: one detector per view, the views' surprises among normal samples summed (ECG beat + rhythm)."""

import asyncio
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import ganad
from ganad.exceptions import InputError, ModelFileError, NotFittedError
from ganad.multiview import MultiViewDetector

FAST = {"epochs": 2, "random_state": 0, "verbose": False}


def _views(n, seed=0, shift_beat=0.0, shift_rhythm=0.0):
    rs = np.random.RandomState(seed)
    t = np.linspace(0, 1, 32)
    beat = (np.exp(-((t - 0.5) / 0.05) ** 2)[None, None, :] + 0.05 * rs.randn(n, 1, 32) + shift_beat).astype(np.float32)
    rhythm = (0.1 * rs.randn(n, 3) + shift_rhythm).astype(np.float32)
    return {"beat": beat, "rhythm": rhythm}


@pytest.fixture(scope="module")
def fitted():
    return MultiViewDetector({"beat": "ganomaly", "rhythm": ganad.FAnoGAN(**FAST)}, detector_params=FAST,
                             contamination=0.05).fit(_views(300))


def test_sum_of_view_surprises_and_held_out_reference(fitted):
    mv = fitted
    assert mv.views_ == ["beat", "rhythm"] and isinstance(mv.detectors_["beat"], ganad.GANomaly)
    assert len(mv.reference_index_) == 30  # 10 % held out from every view's training
    X = _views(300)
    ref = {v: a[mv.reference_index_] for v, a in X.items()}
    z = mv.score_views(ref)
    for v in mv.views_:  # each view: -log P(score >= s | normal) on the held-out normal samples themselves
        assert z[v].min() == 0.0 and np.all(z[v] >= 0)  # the lowest normal score surprises no one
        assert np.median(z[v]) == pytest.approx(np.log(2), abs=0.1)  # half the normal scores lie above the median
        assert np.sum(z[v] > -np.log(0.1) + 1e-9) == 3  # 3 of 30 beyond the 90th percentile
    np.testing.assert_allclose(mv.decision_function(ref), z["beat"] + z["rhythm"])
    assert np.mean(mv.decision_function(ref) > mv.threshold_) <= 0.05 + 1 / 30


@pytest.fixture(scope="module")
def zscore_fitted():
    return MultiViewDetector({"beat": "ganomaly", "rhythm": "ganomaly"}, detector_params={**FAST, "epochs": 1}, combine="zscore").fit(_views(200))


def test_zscore_combination_standardises_each_view_by_median_and_mad(zscore_fitted):
    """combine='zscore' (the rule before the surprise): each view's median 0 and MAD-scale 1 on the held-out
    normal samples."""
    mv = zscore_fitted
    X = _views(200)
    z = mv.score_views({v: a[mv.reference_index_] for v, a in X.items()})
    for v in mv.views_:
        assert abs(np.median(z[v])) < 1e-9
        assert np.median(np.abs(z[v])) * 1.4826 == pytest.approx(1.0, rel=1e-6)


def test_surprise_reads_how_rare_a_score_is_not_the_shape_of_the_normal_scores():
    """Inside the normal range a view's surprise depends only on the ranks of its normal scores: a view
    whose scores are transformed monotonically (exp here: its normal bulk compressed, its tail stretched)
    weighs the same in the sum, where a z-score would change its weight. Past the normal range the
    surprise grows linearly (an exponential tail), so extreme scores stay ranked."""
    from ganad.scoring.composition import RobustStandardised, TailSurprise
    rs = np.random.RandomState(0)
    ref, new = rs.randn(2000), rs.randn(500)
    a = TailSurprise.fit({"v": ref}).standardise({"v": new})[:, 0]
    b = TailSurprise.fit({"v": np.exp(ref)}).standardise({"v": np.exp(new)})[:, 0]
    inside = new < np.quantile(ref, 0.9)
    assert inside.sum() > 400
    np.testing.assert_allclose(a[inside], b[inside], atol=2e-3)  # equal up to the interpolation between the 181 knots
    za = RobustStandardised.fit({"v": ref}).standardise({"v": new})[:, 0]
    zb = RobustStandardised.fit({"v": np.exp(ref)}).standardise({"v": np.exp(new)})[:, 0]
    assert np.abs(za - zb)[inside].max() > 0.3  # the z-score's weight moves with the shape
    # calibrated on fresh normal data: about 1 % beyond the surprise of the 99th percentile (-log 0.01)
    fresh = TailSurprise.fit({"v": ref}).standardise({"v": rs.randn(20000)})[:, 0]
    assert 0.004 < np.mean(fresh > -np.log(0.01)) < 0.02
    t = TailSurprise.fit({"v": ref})
    far = t.standardise({"v": np.array([5.0, 6.0, 7.0, 8.0])})[:, 0]
    assert np.all(np.diff(far) > 0) and np.diff(far) == pytest.approx(np.full(3, 1 / t.tail_scale[0]))
    # tied normal scores (a constant view): one knot, no error, anything above it surprising
    c = TailSurprise.fit({"v": np.ones(50)}).standardise({"v": np.array([0.0, 1.0, 2.0])})[:, 0]
    assert c[0] == 0.0 and c[1] == pytest.approx(-np.log(0.1)) and c[2] > c[1]


def test_an_anomaly_in_either_view_raises_the_score(fitted):
    mv = fitted
    normal = mv.decision_function(_views(50, seed=1))
    for kw in ({"shift_beat": 1.0}, {"shift_rhythm": 1.5}):
        odd = _views(50, seed=2, **kw)
        s = mv.decision_function(odd)
        assert np.median(s) > np.quantile(normal, 0.95)
        assert mv.predict(odd).mean() > 0.8
        z = mv.score_views(odd)
        driver = "beat" if "shift_beat" in kw else "rhythm"
        other = "rhythm" if driver == "beat" else "beat"
        assert np.median(z[driver]) > np.median(z[other]) + 3  # score_views names the view that drives it
    # (500 rows: on 50 the share moved between 0.28 and 0.30 with the knn space; 0.18-0.20 on 500, the
    # threshold being the 95 % quantile of 30 held-out sums)
    assert mv.predict(_views(500, seed=1)).mean() < 0.3


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    mv = fitted
    mv.save(tmp_path / "mv")
    files = sorted(p.relative_to(tmp_path / "mv").as_posix() for p in (tmp_path / "mv").rglob("*") if p.is_file())
    assert "multiview.json" in files and all(f.endswith((".json", ".safetensors")) for f in files)
    assert any(f.startswith("views/beat/") for f in files) and any(f.startswith("views/rhythm/") for f in files)
    back = ganad.load(tmp_path / "mv")
    assert isinstance(back, MultiViewDetector) and back.threshold_ == mv.threshold_
    X = _views(40, seed=3, shift_rhythm=0.5)
    np.testing.assert_allclose(back.decision_function(X), mv.decision_function(X), rtol=1e-6, atol=1e-6)
    cfg = json.loads((tmp_path / "mv" / "multiview.json").read_text())
    assert cfg["format_version"] == 2 and cfg["params"]["combine"] == "surprise" and "median" not in cfg["state"]
    # a tampered file is refused as corrupt, naming it
    for key, bad in (("tail_scale", [1.0]), ("tail_scale", [1.0, -1.0]), ("knots", [[1.0, 0.5], [0.0, 1.0]]), ("names", ["beat", "x"])):
        c = json.loads(json.dumps(cfg))
        c["state"]["surprise"][key] = bad
        (tmp_path / "mv" / "multiview.json").write_text(json.dumps(c))
        with pytest.raises(ModelFileError, match="multiview.json"):
            ganad.load(tmp_path / "mv")


def test_a_zscore_model_is_saved_as_before_and_old_files_load_as_zscore(zscore_fitted, tmp_path):
    """A combine='zscore' model is written as format 1 without the parameter (an older ganad reads it); a
    format-1 file (every file from before the parameter) loads as 'zscore' and scores as it was fitted."""
    mv = zscore_fitted
    mv.save(tmp_path / "mv")
    cfg = json.loads((tmp_path / "mv" / "multiview.json").read_text())
    assert cfg["format_version"] == 1 and "combine" not in cfg["params"] and len(cfg["state"]["median"]) == 2
    back = ganad.load(tmp_path / "mv")
    assert back.combine == "zscore"
    X = _views(40, seed=3, shift_rhythm=0.5)
    np.testing.assert_allclose(back.decision_function(X), mv.decision_function(X), rtol=1e-6, atol=1e-6)
    back.calibrate(_views(100, seed=9))  # calibrating re-fits the kind `combine` names: still z-scores
    assert back.combine == "zscore" and hasattr(back.composer_, "median")
    back.set_params(combine="surprise").calibrate(_views(100, seed=9))  # ... or turns the model into a surprise sum
    back.save(tmp_path / "mv2")
    assert json.loads((tmp_path / "mv2" / "multiview.json").read_text())["format_version"] == 2
    assert ganad.load(tmp_path / "mv2").combine == "surprise"
    cfg["state"]["scale"] = [1.0]
    (tmp_path / "mv" / "multiview.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="multiview.json"):
        ganad.load(tmp_path / "mv")
    with pytest.raises(InputError, match="combine"):
        MultiViewDetector({"beat": "ganomaly"}, combine="fisher").fit({"beat": _views(50)["beat"]})


def test_calibrate_on_other_normal_data(fitted):
    mv = MultiViewDetector({"beat": "ganomaly", "rhythm": "ganomaly"}, detector_params=FAST, reference_fraction=0).fit(_views(200))
    assert len(mv.reference_index_) == 200  # reference_fraction=0: trained on every sample
    other = _views(400, seed=5)
    mv.calibrate(other, threshold="fpr", fpr=0.1)
    assert np.mean(mv.decision_function(other) > mv.threshold_) == pytest.approx(0.1, abs=0.01)
    lab = {v: np.concatenate([a, b]) for (v, a), b in zip(_views(100, seed=6).items(), _views(20, seed=7, shift_beat=1.0).values())}
    y = np.r_[np.zeros(100), np.ones(20)].astype(int)
    mv.calibrate(lab, y, threshold="f1")
    assert (mv.predict(lab) == y).mean() > 0.9


def test_calibrate_fpr_on_repeated_samples_records_and_warns_of_the_rate_achieved(fitted, tmp_path):
    """20 samples repeated 10 times tie their sums in runs of 10 of 200: fpr=0.02 flags none. calibration_
    (saved with the model, cleared by fit) records the rate achieved beside the target, the tied run and
    the next rate; a warning names them. MultiViewDetector.calibrate kept no record of the rate at all."""
    import copy
    mv = copy.deepcopy(fitted)
    X = {v: np.repeat(a, 10, axis=0) for v, a in _views(20, seed=8).items()}
    with pytest.warns(UserWarning, match=r"threshold='fpr': flags 0 of the 200 samples \(an achieved rate of 0\), under half the "
                                         r"target fpr=0.02: 10 of them tie at the threshold's score \(identical samples.*pass fpr=0.05"):
        mv.calibrate(X, threshold="fpr", fpr=0.02)
    cal = mv.calibration_
    assert (cal["threshold"], cal["n_samples"], cal["fpr"], cal["achieved_fpr"], cal["tied_at_threshold"], cal["next_fpr"]) == (
        "fpr", 200, 0.02, 0.0, 10, 0.05)
    assert mv.predict(X).sum() == 0
    mv.save(tmp_path / "mv")
    assert ganad.load(tmp_path / "mv").calibration_ == cal
    mv.calibrate(X, threshold="fpr", fpr=0.05)  # the rate the ties allow: reached
    assert mv.calibration_["achieved_fpr"] == 0.05 == mv.predict(X).mean()
    mv.fit(_views(100, seed=9))
    assert mv.calibration_ is None


def test_confidence_after_a_labelled_calibration_counts_the_anomalies_too(fitted):
    """calibrate(X, y) fits τ on every sample's sum: the ExCeed reference must hold them all (as a
    detector's calibration_scores_). With the normal sums alone, k = 0 above an MCC threshold that
    separates them, and every detected anomaly got confidence 0."""
    import copy
    mv = copy.deepcopy(fitted)
    lab = {v: np.concatenate([a, b]) for (v, a), b in zip(_views(80, seed=6).items(), _views(20, seed=7, shift_beat=1.0).values())}
    y = np.r_[np.zeros(80), np.ones(20)].astype(int)
    mv.calibrate(lab, y, threshold="mcc")
    s = mv.decision_function(lab)
    np.testing.assert_array_equal(mv.reference_scores_, np.sort(s))
    flagged = mv.predict(lab) == 1
    conf = mv.predict_confidence(lab)[flagged & (y == 1)]  # the anomaly nearest τ is a toss-up (about 0.5), the others sure
    assert flagged[y == 1].mean() > 0.9 and conf.min() > 0.4 and np.median(conf) > 0.9


@pytest.mark.parametrize("X, match", [
    ({"beat": np.zeros((5, 1, 32))}, "missing"),
    ({"beat": np.zeros((5, 1, 32)), "rhythm": np.zeros((5, 3)), "x": np.zeros((5, 1))}, "unknown"),
    ({"beat": np.zeros((5, 1, 32)), "rhythm": np.zeros((4, 3))}, "different lengths"),
    (np.zeros((5, 3)), "dict"),
    ({"beat": np.zeros((5, 1, 32)), "rhythm": np.zeros((5, 4))}, "rhythm"),  # the view's own feature check, named
])
def test_bad_inputs_are_named(fitted, X, match):
    with pytest.raises(InputError, match=match):
        fitted.decision_function(X)


@pytest.mark.parametrize("kw, match", [
    ({"views": {}}, "views"), ({"views": {"a b": "ganomaly"}}, "view name"), ({"views": {"a": "nosuch"}}, "unknown method"),
    ({"views": {"a": 3}}, "not a detector"), ({"views": {"a": "ganomaly"}, "reference_fraction": 0.6}, "reference_fraction"),
    ({"views": {"a": "ganomaly"}, "contamination": 0.9}, "contamination"),
    ({"views": {"a": "ganomaly"}, "random_state": -1}, "random_state"),  # before: numpy's bare ValueError (CLI: --seed -1)
    # portability audit (twenty-fifth session): folder names Windows cannot hold, and a trailing newline '$' let through
    ({"views": {"con": "ganomaly"}}, "Windows cannot hold"), ({"views": {"aux.beat": "ganomaly"}}, "Windows cannot hold"),
    ({"views": {"beat.": "ganomaly"}}, "Windows cannot hold"), ({"views": {"beat\n": "ganomaly"}}, "not a plain name"),
])
def test_bad_parameters_are_named(kw, match):
    with pytest.raises(InputError, match=match):
        MultiViewDetector(**kw).fit({"a": np.zeros((20, 3))} if "a" in kw.get("views", {}) else {"x": np.zeros((20, 3))})


def test_unfitted_and_cli_refusals(fitted, tmp_path):
    with pytest.raises(NotFittedError):
        MultiViewDetector({"a": "ganomaly"}).decision_function({"a": np.zeros((2, 3))})
    fitted.save(tmp_path / "mv")
    np.save(tmp_path / "x.npy", np.zeros((4, 3), np.float32))
    from ganad.cli import app
    for args in (["score", str(tmp_path / "mv"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.csv")],
                 ["export", str(tmp_path / "mv"), "-o", str(tmp_path / "m.onnx")],
                 ["calibrate", str(tmp_path / "mv"), str(tmp_path / "x.npy")]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and "multi-view" in r.output, r.output
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "m.onnx").exists()
    with pytest.raises(InputError, match="MultiViewDetector"):
        from ganad.export import export_onnx
        export_onnx(fitted, tmp_path / "m.onnx")


def test_the_service_scores_a_multiview_model(fitted, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from ganad.serve.app import create_app
    fitted.save(tmp_path / "mv")
    fitted.detectors_["rhythm"].save(tmp_path / "single")
    X = _views(20, seed=12, shift_rhythm=np.r_[np.zeros((15, 1)), 2 * np.ones((5, 1))])
    body = {"views": {v: X[v].reshape(len(X[v]), -1).tolist() for v in ("rhythm", "beat")}, "components": True}
    with TestClient(create_app([tmp_path / "mv", tmp_path / "single"])) as c:
        r = c.post("/v1/models/single/score", json=body)
        assert r.status_code == 422 and "multi-view models" in r.json()["error"]["message"]
        info = c.get("/v1/models/mv").json()
        assert info["kind"] == "multiview" and info["views"] == {"beat": [1, 32], "rhythm": [3]}
        r = c.post("/v1/models/mv/score", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        np.testing.assert_allclose(out["scores"], fitted.decision_function(X), rtol=1e-5, atol=1e-5)
        assert out["labels"] == (np.asarray(out["scores"]) > fitted.threshold_).astype(int).tolist()
        np.testing.assert_allclose(np.add(out["components"]["view_beat"], out["components"]["view_rhythm"]), out["scores"], rtol=1e-5, atol=1e-5)
        assert sum(out["labels"][15:]) == 5
        # refusals: 4xx with the reason, never a 500
        for bad, match in [
            ({"views": {"beat": body["views"]["beat"]}}, "misses ['rhythm']"),
            ({"views": {**body["views"], "x": [[1.0]]}}, "unknown ['x']"),
            ({"views": {"beat": body["views"]["beat"], "rhythm": [[1.0, 2.0]] * 20}}, "rhythm"),
            ({"views": {"beat": body["views"]["beat"], "rhythm": body["views"]["rhythm"][:5]}}, "different lengths"),
            ([[0.0] * 3], "multi-view model"),
            ({"views": body["views"], "map": True}, "map"),
            ({"views": [], "components": True}, "views"),
        ]:
            r = c.post("/v1/models/mv/score", json=bad)
            assert r.status_code == 422 and match in r.json()["error"]["message"], (bad if not isinstance(bad, dict) else list(bad), r.text)
        r = c.post("/v1/models/mv/series", json={"stream_id": "s", "points": [[0.0]]})
        assert r.status_code == 422 and "views" in r.json()["error"]["message"]
        assert c.get("/readyz").status_code == 200


def test_the_service_scores_npz_views_and_refuses_bad_archives(fitted, tmp_path):
    """Bulk multi-view scoring without JSON parsing: an NPZ archive (numpy.savez) of one array per
    view scores as the JSON body does; a damaged or pickled archive is 400, one that would expand
    past the decoded-size limit 413, and NPZ sent to a single-detector model 422."""
    pytest.importorskip("fastapi")
    import io
    import zipfile

    from fastapi.testclient import TestClient

    from ganad.serve.app import ServeSettings, create_app
    fitted.save(tmp_path / "mv")
    fitted.detectors_["rhythm"].save(tmp_path / "single")
    X = _views(12, seed=13)

    def npz(compressed=False, **arrays):
        buf = io.BytesIO()
        (np.savez_compressed if compressed else np.savez)(buf, **arrays)
        return buf.getvalue()
    H = {"content-type": "application/x-npz"}
    with TestClient(create_app([tmp_path / "mv", tmp_path / "single"], ServeSettings(max_body_bytes=1 << 20))) as c:
        r = c.post("/v1/models/mv/score?components=true", content=npz(beat=X["beat"], rhythm=X["rhythm"]), headers=H)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["scores"], fitted.decision_function(X), rtol=1e-5, atol=1e-5)
        assert sorted(r.json()["components"]) == ["view_beat", "view_rhythm"]
        r = c.post("/v1/models/mv/score", content=npz(True, rhythm=X["rhythm"], beat=X["beat"].reshape(12, -1)), headers=H)
        assert r.status_code == 200 and np.allclose(r.json()["scores"], fitted.decision_function(X), rtol=1e-5, atol=1e-5)
        bad = [(b"PK\x03\x04 not a zip", 400, "cannot be read as NPZ"),
               (npz(beat=np.array([object()] * 3, dtype=object), rhythm=X["rhythm"]), 400, "object arrays are refused"),
               (npz(True, beat=np.zeros((12, 1, 400000), np.float32), rhythm=np.zeros((12, 3), np.float32)), 413, "once decoded"),
               (npz(beat=X["beat"]), 422, "misses ['rhythm']")]
        for body, status, match in bad:
            r = c.post("/v1/models/mv/score", content=body, headers=H)
            assert r.status_code == status and match in r.json()["error"]["message"], r.text
        r = c.post("/v1/models/single/score", content=npz(rhythm=X["rhythm"]), headers=H)
        assert r.status_code == 422 and "an NPZ request body: is for multi-view models" in r.json()["error"]["message"]
        with zipfile.ZipFile(buf := io.BytesIO(), "w") as zf:
            zf.writestr("beat.txt", "1,2,3")
        r = c.post("/v1/models/mv/score", content=buf.getvalue(), headers=H)
        assert r.status_code == 400 and "not an array written by numpy.savez" in r.json()["error"]["message"]


def test_concurrent_multiview_requests_share_one_pass_per_view(fitted):
    """The service's micro-batcher takes multi-view requests: concurrent requests are scored in one
    pass (each view's rows concatenated), and each gets exactly its own scores and view components."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from ganad.serve.batcher import MicroBatcher
    passes = []

    class Counting:
        views_ = fitted.views_

        def score_views(self, X):
            passes.append({v: len(x) for v, x in X.items()})
            return fitted.score_views(X)

    reqs = [_views(n, seed=20 + n, shift_rhythm=float(n % 2)) for n in (1, 3, 7, 2)]

    async def main():
        with ThreadPoolExecutor(1) as ex:
            b = MicroBatcher(Counting(), ex, name="mv", max_batch_rows=100, max_wait_ms=0)
            b.start()
            out = await asyncio.gather(*[b.submit(r, components=i % 2 == 1) for i, r in enumerate(reqs)])
            await b.close()
        return out

    out = asyncio.run(main())
    assert passes == [{"beat": 13, "rhythm": 13}]  # four requests, one pass
    for i, (r, res) in enumerate(zip(reqs, out)):
        np.testing.assert_allclose(res.scores, fitted.decision_function(r), rtol=1e-5, atol=1e-5)
        if i % 2:
            z = fitted.score_views(r)
            assert sorted(res.components) == ["view_beat", "view_rhythm"]
            np.testing.assert_allclose(res.components["view_rhythm"], z["rhythm"], rtol=1e-5, atol=1e-5)
        else:
            assert res.components is None


def test_views_of_different_lengths_are_refused_even_when_two_requests_share_a_batch(fitted, tmp_path):
    """Two requests whose views differ in length in opposite ways (beat 3 + rhythm 5 rows, beat 5 +
    rhythm 3) concatenate to views of equal length in one micro-batch: each must still be refused
    (422, naming the body), never scored on misaligned rows."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from ganad.serve import ServeSettings, create_app
    from ganad.serve.batcher import MicroBatcher
    from ganad.serve.errors import Refusal
    fitted.save(tmp_path / "mv")
    a, b = _views(5, seed=31), _views(5, seed=32)
    bodies = [{"views": {"beat": a["beat"][:3].reshape(3, -1).tolist(), "rhythm": a["rhythm"].tolist()}},
              {"views": {"beat": b["beat"].reshape(5, -1).tolist(), "rhythm": b["rhythm"][:3].tolist()}}]
    # the first request waits up to 2 s for the second: both are in one batch
    with TestClient(create_app([tmp_path / "mv"], ServeSettings(max_wait_ms=2000))) as c, ThreadPoolExecutor(2) as ex:
        out = list(ex.map(lambda body: c.post("/v1/models/mv/score", json=body), bodies))
    for r in out:
        assert r.status_code == 422, r.text
        msg = r.json()["error"]["message"]
        assert msg.startswith("request body key 'views': has views of different lengths") and "Fix:" in msg

    async def direct():  # the batcher itself refuses such a request (a batch would shift every later request's rows)
        with ThreadPoolExecutor(1) as ex:
            bt = MicroBatcher(fitted, ex, name="mv")
            bt.start()
            with pytest.raises(Refusal) as exc:
                bt.submit({"beat": a["beat"][:3], "rhythm": a["rhythm"]})
            await bt.close()
        return exc.value
    assert asyncio.run(direct()).status == 422


def _write_view_files(d, tr, te):
    """beat.npy / rr.csv (training) and beat_te.npy / rr_te.csv (test): the CLI's two views of the same samples."""
    import pandas as pd
    for beat, rr, v in (("beat.npy", "rr.csv", tr), ("beat_te.npy", "rr_te.csv", te)):
        np.save(d / beat, v["beat"])
        pd.DataFrame(v["rhythm"], columns=["pre", "post", "ratio"]).to_csv(d / rr, index=False)


def test_cli_fit_and_score_with_views(tmp_path):
    import pandas as pd
    from ganad.cli import app
    run = CliRunner().invoke
    tr, te = _views(200), _views(30, seed=4, shift_rhythm=np.r_[np.zeros((20, 1)), np.ones((10, 1))])
    _write_view_files(tmp_path, tr, te)
    r = run(app, ["fit", "--view", f"beat={tmp_path / 'beat.npy'}", "--view", f"rhythm={tmp_path / 'rr.csv'}",
                  "-o", str(tmp_path / "m"), "--method", "ganomaly", "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    mv = ganad.load(tmp_path / "m")
    assert mv.views_ == ["beat", "rhythm"] and list(mv.detectors_["rhythm"].feature_names_in_) == ["pre", "post", "ratio"]
    r = run(app, ["score", str(tmp_path / "m"), "--view", f"rhythm={tmp_path / 'rr_te.csv'}", "--view", f"beat={tmp_path / 'beat_te.npy'}",
                  "-o", str(tmp_path / "s.csv"), "--components"])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    assert list(s.columns) == ["index", "score", "label", "threshold", "view_beat", "view_rhythm"]
    # the API on the values the CLI read: rr_te.csv's decimals parse to float64 numbers up to 6e-8 away from
    # the float32 values written, which the scaling and standardisation of a 2-epoch model amplify to ~1e-5
    as_read = {"beat": np.load(tmp_path / "beat_te.npy"), "rhythm": pd.read_csv(tmp_path / "rr_te.csv").to_numpy(np.float64)}
    np.testing.assert_allclose(s["score"], mv.decision_function(as_read), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s["score"], mv.decision_function(te), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s["score"], s["view_beat"] + s["view_rhythm"], rtol=1e-6, atol=1e-6)
    assert s["score"][20:].min() > s["score"][:20].median()  # the late beats (rhythm view) score high
    pd.DataFrame({"y": [0] * 20 + [1] * 10}).to_csv(tmp_path / "y.csv", index=False)
    r = run(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "y.csv"), "-o", str(tmp_path / "ev")])
    assert r.exit_code == 0 and json.loads((tmp_path / "ev" / "metrics.json").read_text())["auroc"] > 0.9
    # refusals: exit 2, a message naming the problem, nothing written
    pd.DataFrame(te["rhythm"], columns=["a", "post", "ratio"]).to_csv(tmp_path / "rr_bad.csv", index=False)
    pd.DataFrame(te["rhythm"][:25], columns=["pre", "post", "ratio"]).to_csv(tmp_path / "rr_short.csv", index=False)
    for args, match in [
        (["score", str(tmp_path / "m"), "--view", f"beat={tmp_path / 'beat_te.npy'}"], "missing ['rhythm']"),
        (["score", str(tmp_path / "m"), "--view", f"beat={tmp_path / 'beat_te.npy'}", "--view", f"rhythm={tmp_path / 'rr_bad.csv'}"], "rr_bad.csv"),
        (["score", str(tmp_path / "m"), str(tmp_path / "beat_te.npy"), "--view", f"beat={tmp_path / 'beat_te.npy'}"], "not both"),
        (["score", str(tmp_path / "m"), "--view", "beat"], "NAME=FILE"),
        # files of different lengths: named by file (it said "X: has views of different lengths", an X the command has not)
        (["score", str(tmp_path / "m"), "--view", f"beat={tmp_path / 'beat_te.npy'}", "--view", f"rhythm={tmp_path / 'rr_short.csv'}"],
         "--view: the files hold different numbers of samples"),
        (["score", str(tmp_path / "m" / "views" / "beat"), "--view", f"beat={tmp_path / 'beat_te.npy'}"], "not a multi-view model"),
    ]:
        r = run(app, args + ["-o", str(tmp_path / "bad.csv")])
        assert r.exit_code == 2 and match in " ".join(r.output.split()), (args, r.output)
        assert not (tmp_path / "bad.csv").exists()
    r = run(app, ["fit", "--view", f"beat={tmp_path / 'beat.npy'}", "--view", f"beat={tmp_path / 'beat.npy'}", "-o", str(tmp_path / "m2")])
    assert r.exit_code == 2 and "twice" in r.output and not (tmp_path / "m2").exists()
    r = run(app, ["fit", "-o", str(tmp_path / "m2")])
    assert r.exit_code == 2 and "--view" in r.output
    # one view's model is an ordinary model every command takes
    r = run(app, ["score", str(tmp_path / "m" / "views" / "beat"), str(tmp_path / "beat_te.npy"), "-o", str(tmp_path / "b.csv")])
    assert r.exit_code == 0, r.output


def test_probabilities_and_confidence_follow_the_reference(fitted):
    mv = fitted
    odd = _views(10, seed=8, shift_rhythm=2.0)
    normal = _views(10, seed=9)
    for method in ("linear", "unify"):
        p = mv.predict_proba({v: np.concatenate([normal[v], odd[v]]) for v in mv.views_}, method=method)
        assert p.shape == (20, 2) and np.allclose(p.sum(1), 1) and ((p >= 0) & (p <= 1)).all()
        assert p[10:, 1].mean() > p[:10, 1].mean() + 0.3
    c = mv.predict_confidence(odd)
    # beyond every reference sum: the most confident label ExCeed gives with 30 reference samples
    assert c.shape == (10,) and np.allclose(c, c[0]) and 0.5 < c[0] <= 1


def test_other_detectors_score_in_memory_but_are_not_saved(tmp_path):
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    flat = FunctionTransformer(lambda a: np.asarray(a).reshape(len(a), -1))  # (IsolationForest scores normality: mechanics only)
    mv = MultiViewDetector({"beat": make_pipeline(flat, IsolationForest(random_state=0)), "rhythm": "ganomaly"},
                           detector_params=FAST).fit(_views(120))
    assert np.isfinite(mv.decision_function(_views(10, seed=1))).all()
    with pytest.raises(InputError, match="pickling"):
        mv.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_view_changed_on_its_own_is_caught_and_the_model_can_be_saved_again(fitted, tmp_path):
    import pandas as pd
    from ganad.cli import app
    fitted.save(tmp_path / "mv")
    fitted.save(tmp_path / "mv")  # saving over a multi-view model is saving over a model
    # the CLI refuses to calibrate a view in place, and says how to do it
    np.save(tmp_path / "rr.npy", _views(60, seed=11)["rhythm"])
    r = CliRunner().invoke(app, ["calibrate", str(tmp_path / "mv" / "views" / "rhythm"), str(tmp_path / "rr.npy")])
    assert r.exit_code == 2 and "in place" in " ".join(r.output.split())
    # changed behind its back (from Python): the multi-view model no longer loads, naming the view
    view = ganad.load(tmp_path / "mv" / "views" / "rhythm")
    view.calibrate(_views(60, seed=11)["rhythm"], threshold="fpr", fpr=0.2)
    view.save(tmp_path / "mv" / "views" / "rhythm")
    with pytest.raises(ModelFileError, match=r"no longer matches its view\(s\) \['rhythm'\]"):
        ganad.load(tmp_path / "mv")
    del pd


def test_saving_over_a_model_never_deletes_files_ganad_did_not_write(tmp_path):
    from ganad.cli import app
    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    det = ganad.GANomaly(**FAST).fit(X)
    det.save(tmp_path / "m")
    (tmp_path / "m" / "model.onnx").write_bytes(b"exported earlier")
    with pytest.raises(ModelFileError, match="model.onnx"):
        det.save(tmp_path / "m")
    np.save(tmp_path / "val.npy", X[:20])
    r = CliRunner().invoke(app, ["calibrate", str(tmp_path / "m"), str(tmp_path / "val.npy")])  # in place
    assert r.exit_code == 2 and "model.onnx" in r.output
    assert (tmp_path / "m" / "model.onnx").read_bytes() == b"exported earlier"
    (tmp_path / "m" / "model.onnx").unlink()
    (tmp_path / "m" / ".DS_Store").write_bytes(b"")  # hidden files do not block a save
    det.save(tmp_path / "m")


def test_a_bad_view_is_named_with_the_users_row():
    X = _views(60)
    X["rhythm"] = X["rhythm"].copy()
    X["rhythm"][50, 1] = np.nan
    with pytest.raises(InputError, match=r"X\['rhythm'\].*row 50"):
        MultiViewDetector({"beat": "ganomaly", "rhythm": "ganomaly"}, detector_params=FAST).fit(X)


def test_a_refit_after_set_params_takes_the_new_views():
    """fit follows the views parameter, as scikit-learn's set_params + fit expects: a refit with other
    views was refused against the views of the previous fit ("missing ['beat']")."""
    X = _views(120)
    mv = MultiViewDetector({"beat": "ganomaly", "rhythm": "ganomaly"}, detector_params=FAST).fit(X)
    mv.set_params(views={"rhythm": "ganomaly"}).fit({"rhythm": X["rhythm"]})
    assert mv.views_ == ["rhythm"] and list(mv.detectors_) == ["rhythm"]
    assert mv.decision_function({"rhythm": X["rhythm"][:5]}).shape == (5,)
    with pytest.raises(InputError, match=r"unknown \['beat'\]"):  # scoring takes the fitted views
        mv.decision_function(X)


def test_too_few_samples_are_said_in_the_users_numbers():
    """4 samples: the held-out reference leaves 2 to train on; the error said 'has 2 samples' of a
    view's detector, which the user never passed."""
    with pytest.raises(InputError, match=r"X: has 4 samples, of which reference_fraction=0.1 holds 2 out.*leaving 2.*pass at least \d+ samples"):
        MultiViewDetector({"beat": "ganomaly", "rhythm": "ganomaly"}, detector_params=FAST).fit(_views(4))


@pytest.mark.parametrize("version, match", [("x", "not a whole number"), (99, "newer ganad")])
def test_wrapper_configs_share_one_reader(fitted, tmp_path, version, match):
    """series.json and multiview.json go through ganad.io.read_wrapper_config: a bad format_version is
    named (for series models a string used to raise a TypeError)."""
    sd = ganad.SeriesDetector("ganomaly", window=8, detector_params=FAST).fit(np.sin(np.arange(80) / 5))
    sd.save(tmp_path / "s")
    fitted.save(tmp_path / "mv")
    for d, name in ((tmp_path / "s", "series.json"), (tmp_path / "mv", "multiview.json")):
        cfg = json.loads((d / name).read_text())
        cfg["format_version"] = version
        (d / name).write_text(json.dumps(cfg))
        with pytest.raises(ModelFileError, match=match):
            ganad.load(d)


def test_without_a_held_out_reference_the_training_rows_do_not_find_themselves():
    """reference_fraction=0 standardises and thresholds on the training rows: scored again as new data,
    each would find itself in its view's knn bank at distance 0 (Euclidean, BiGAN's default), and the
    threshold would be too low. The views' own training scores (which leave that entry out) are used."""
    rng = np.random.RandomState(0)
    A = rng.randn(6, 6)
    train = {"a": (rng.randn(1500, 6) @ A).astype(np.float32), "b": rng.randn(1500, 4).astype(np.float32)}
    fresh = {"a": (rng.randn(3000, 6) @ A).astype(np.float32), "b": rng.randn(3000, 4).astype(np.float32)}
    mv = MultiViewDetector({"a": "bigan", "b": "bigan"}, detector_params={"epochs": 5, "random_state": 0},
                           reference_fraction=0, contamination=0.1).fit(train)
    assert 0.05 <= mv.predict(fresh).mean() <= 0.16


def test_without_a_held_out_reference_a_detector_without_training_scores_is_scored_again():
    """A view's detector that keeps no decision_scores_ (a scikit-learn pipeline) is scored on its
    training samples with decision_function (it crashed with a KeyError naming the other view)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    pytest.importorskip("pyod")
    from pyod.models.iforest import IForest
    X = _views(200)
    X = {"beat": X["beat"].reshape(200, -1), "rhythm": X["rhythm"]}
    specs = {v: make_pipeline(StandardScaler(), IForest(random_state=0)) for v in X}
    mv = MultiViewDetector(specs, reference_fraction=0, contamination=0.1).fit(X)
    assert np.isfinite(mv.decision_function(X)).all() and 0 < mv.predict(X).mean() < 0.3


def test_fit_does_not_replace_a_multiview_model_without_overwrite(fitted, tmp_path):
    from ganad.cli import app
    fitted.save(tmp_path / "m")
    before = (tmp_path / "m" / "multiview.json").read_bytes()
    np.save(tmp_path / "a.npy", np.random.RandomState(0).randn(40, 3).astype(np.float32))
    for args in (["fit", "--view", f"a={tmp_path / 'a.npy'}"], ["fit", str(tmp_path / "a.npy")]):
        r = CliRunner().invoke(app, args + ["-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
        assert r.exit_code == 2 and "--overwrite" in r.output, (args, r.output)
        assert (tmp_path / "m" / "multiview.json").read_bytes() == before


@pytest.mark.parametrize("where, key, value", [("state", "view_digests", []), ("state", "view_digests", "x"),
                                               ("params", "views", ["beat", "rhythm"]), ("state", "views", "beatrhythm"),
                                               ("state", "reference_scores", [])])
def test_a_tampered_multiview_json_is_refused_as_corrupt(fitted, tmp_path, where, key, value):
    """Every stored value is checked: a wrong type is a ModelFileError naming the file, not an
    AttributeError; an empty reference would give every sample P(anomaly) = 1."""
    fitted.save(tmp_path / "mv")
    f = tmp_path / "mv" / "multiview.json"
    cfg = json.loads(f.read_text())
    cfg[where][key] = value
    f.write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="multiview.json"):
        ganad.load(tmp_path / "mv")


def test_score_nonfinite_reaches_every_view_and_series_detectors(fitted, tmp_path, monkeypatch):
    """`ganad score --nonfinite max` set the rule on table models only: with --view (and on series
    models) it was ignored, each detector kept 'raise'."""
    from ganad.cli import app
    from ganad.detectors.base import BaseGANDetector
    from ganad.series import SeriesDetector
    seen = []
    orig = BaseGANDetector._guard_scores
    monkeypatch.setattr(BaseGANDetector, "_guard_scores", lambda self, s: (seen.append(self.on_nonfinite), orig(self, s))[1])
    fitted.save(tmp_path / "m")
    X = _views(20)
    for v, a in X.items():
        np.save(tmp_path / f"{v}.npy", a)
    r = CliRunner().invoke(app, ["score", str(tmp_path / "m"), "--view", f"beat={tmp_path / 'beat.npy'}",
                                 "--view", f"rhythm={tmp_path / 'rhythm.npy'}", "--nonfinite", "max", "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    assert seen and set(seen) == {"max"}
    t = np.arange(600)
    SeriesDetector("ganomaly", window=32, stride=8, detector_params=FAST).fit(np.sin(t / 9)[:, None]).save(tmp_path / "sm")
    np.save(tmp_path / "ts.npy", np.sin(t[:200] / 9)[:, None])
    seen.clear()
    r = CliRunner().invoke(app, ["score", str(tmp_path / "sm"), str(tmp_path / "ts.npy"), "--nonfinite", "max", "-o", str(tmp_path / "ts.csv")])
    assert r.exit_code == 0, r.output
    assert seen and set(seen) == {"max"}


def test_calibrating_on_rows_a_view_overflows_is_refused_never_a_nan_threshold():
    """With on_nonfinite='max' a view scores an overflowing row inf; summed into the calibration scores,
    the contamination quantile was NaN and every sample scored afterwards was labelled normal."""
    X = _views(200)
    # knn_space='feature': the own score (which overflows) counts in the score; the default 'feature+input'
    # scores the knn component alone, whose input distance stays finite (a huge finite score: no refusal needed)
    mv = MultiViewDetector({"beat": "ganomaly", "rhythm": "ganomaly"},
                           detector_params={**FAST, "scaler": "standard", "knn_space": "feature"}).fit(X)
    V = _views(40, seed=1)
    V["rhythm"][[3, 7], 0] = 1e30
    for det in mv.detectors_.values():
        det.on_nonfinite = "max"
    tau = mv.threshold_
    with pytest.raises(InputError, match=r"X: row\(s\) \[3, 7\] \(2 of 40\).*not finite"):
        mv.calibrate(V)
    assert mv.threshold_ == tau


def test_view_names_that_differ_only_by_case_are_refused(tmp_path):
    """'beat' and 'Beat' are one folder (views/beat) on a case-insensitive file system: one view's model would
    replace the other's. Before: accepted (fit, save)."""
    from ganad.cli import app
    X = _views(60)
    with pytest.raises(InputError, match=r"'beat' and 'Beat'.*differ only by case.*Fix:"):
        MultiViewDetector({"beat": "ganomaly", "Beat": "ganomaly"}, detector_params=FAST).fit({"beat": X["beat"], "Beat": X["beat"]})
    np.save(tmp_path / "r.npy", X["rhythm"])
    r = CliRunner().invoke(app, ["fit", "--view", f"beat={tmp_path / 'r.npy'}", "--view", f"Beat={tmp_path / 'r.npy'}",
                                 "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "--view" in out and "differ only by case" in out and "Fix:" in out, r.output
    assert not (tmp_path / "m").exists()
    # --exclude: applies to the views with named columns; with none (all NPY / NPZ), it would be ignored: refused
    r = CliRunner().invoke(app, ["fit", "--view", f"a={tmp_path / 'r.npy'}", "--view", f"b={tmp_path / 'r.npy'}", "--exclude", "id",
                                 "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert r.exit_code == 2 and "--exclude id" in r.output and "no column names" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "m").exists()


def test_calibrate_refuses_to_write_over_another_view_of_a_multiview_model(fitted, tmp_path):
    """`ganad calibrate MV/views/a -o MV/views/b --overwrite` replaced view b's model with a's (the multi-view
    model then no longer loaded); refused before any work, as is fit -o MV/views/b. Elsewhere -o still works."""
    from ganad.cli import app
    fitted.save(tmp_path / "mv")
    files = {p: p.read_bytes() for p in (tmp_path / "mv").rglob("*") if p.is_file()}
    np.save(tmp_path / "r.npy", _views(60, seed=11)["rhythm"])
    run = CliRunner().invoke
    for args in (["calibrate", str(tmp_path / "mv" / "views" / "rhythm"), str(tmp_path / "r.npy")],
                 ["fit", str(tmp_path / "r.npy"), "--epochs", "1", "-q"]):
        for target in ("beat", "new"):
            r = run(app, args + ["-o", str(tmp_path / "mv" / "views" / target), "--overwrite"])
            out = " ".join(r.output.split())
            assert r.exit_code == 2 and "inside the multi-view model" in out and "Fix:" in out, (args, target, r.output)
    assert {p: p.read_bytes() for p in (tmp_path / "mv").rglob("*") if p.is_file()} == files
    assert ganad.load(tmp_path / "mv").views_ == ["beat", "rhythm"]
    r = run(app, ["calibrate", str(tmp_path / "mv" / "views" / "rhythm"), str(tmp_path / "r.npy"), "-o", str(tmp_path / "rhythm2")])
    assert r.exit_code == 0, r.output


def _cli_fitted_views(tmp_path, n_train, te):
    """A multi-view model fitted by `ganad fit --view` on _views(n_train), and the --view arguments of ``te``."""
    from ganad.cli import app
    _write_view_files(tmp_path, _views(n_train), te)
    r = CliRunner().invoke(app, ["fit", "--view", f"beat={tmp_path / 'beat.npy'}", "--view", f"rhythm={tmp_path / 'rr.csv'}",
                                 "-o", str(tmp_path / "m"), "--method", "ganomaly", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    return ["--view", f"beat={tmp_path / 'beat_te.npy'}", "--view", f"rhythm={tmp_path / 'rr_te.csv'}"]


def test_score_with_views_refuses_chunk_rows_and_leaves_no_folder(tmp_path):
    """--chunk-rows was ignored without a word with --view (every view file is read whole): refused
    now; a refused view file leaves no (empty) folder for the scores behind."""
    import pandas as pd
    from ganad.cli import app
    run = CliRunner().invoke
    te = _views(30, seed=4)
    views = _cli_fitted_views(tmp_path, 120, te)
    r = run(app, ["score", str(tmp_path / "m"), *views, "-o", str(tmp_path / "new" / "s.csv"), "--chunk-rows", "10"])
    assert r.exit_code == 2 and "--chunk-rows 10" in r.output and "--view" in r.output and "Fix" in r.output, r.output
    assert not (tmp_path / "new").exists()
    bad = pd.DataFrame(te["rhythm"], columns=["pre", "post", "ratio"]).astype(object)
    bad.loc[5, "post"] = "oops"
    bad.to_csv(tmp_path / "rr_bad.csv", index=False)
    r = run(app, ["score", str(tmp_path / "m"), "--view", f"beat={tmp_path / 'beat_te.npy'}", "--view", f"rhythm={tmp_path / 'rr_bad.csv'}",
                  "-o", str(tmp_path / "new" / "s.csv")])
    assert r.exit_code == 2 and "rr_bad.csv" in r.output and not (tmp_path / "new").exists(), r.output
    r = run(app, ["score", str(tmp_path / "m"), *views, "-o", str(tmp_path / "new" / "s.csv")])
    assert r.exit_code == 0 and (tmp_path / "new" / "s.csv").is_file(), r.output


def test_cli_calibrate_a_multiview_model_with_views(tmp_path):
    """`ganad calibrate MV --view NAME=FILE ...` re-fits each view's standardisation and the threshold of the
    sum (MultiViewDetector.calibrate), as `ganad score MV --view ...` reads the views; it was refused
    ("use MultiViewDetector from Python")."""
    import pandas as pd
    from ganad.cli import app
    run = CliRunner().invoke
    te = _views(60, seed=5)
    views = _cli_fitted_views(tmp_path, 200, te)
    r = run(app, ["calibrate", str(tmp_path / "m"), *views, "--threshold", "fpr", "--fpr", "0.1", "-o", str(tmp_path / "m2")])
    assert r.exit_code == 0, r.output
    want = ganad.load(tmp_path / "m").calibrate(te, threshold="fpr", fpr=0.1)  # what the library gives
    got = ganad.load(tmp_path / "m2")
    # (the CSV view is read as float32: equal to its rounding)
    assert got.threshold_ == pytest.approx(want.threshold_, rel=1e-5)
    for g, w in zip(got.composer_.knots, want.composer_.knots):  # each view's normal distribution, re-fitted
        # (knots near zero carry the float32 rounding as an absolute error: atol on the knots' scale)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(w))))
    np.testing.assert_allclose(got.composer_.tail_scale, want.composer_.tail_scale, rtol=1e-5)
    assert "p90_beat" in " ".join(r.output.split())
    # the threshold is a calibration score (tied_at_threshold 1): scored again, that sample may land a rounding
    # above it (float32 networks), so "above" is taken beyond a relative 1e-6
    above = got.decision_function(te) > got.threshold_ + 1e-6 * abs(got.threshold_)
    assert np.mean(above) <= 0.1
    out = " ".join(r.output.split())  # the rate achieved on the calibration samples, beside the target
    assert got.calibration_["achieved_fpr"] == np.mean(above) <= 0.1
    assert "fpr │ 0.1000" in out and f"achieved_fpr │ {got.calibration_['achieved_fpr']:.4f}" in out and "tied_at_threshold │ 1" in out
    pd.DataFrame({"y": [0] * 50 + [1] * 10}).to_csv(tmp_path / "y.csv", index=False)
    r = run(app, ["calibrate", str(tmp_path / "m"), *views, "--labels", str(tmp_path / "y.csv"), "--threshold", "f1"])  # in place
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m").threshold_ == pytest.approx(
        ganad.load(tmp_path / "m2").calibrate(te, np.r_[np.zeros(50), np.ones(10)], threshold="f1").threshold_, rel=1e-5)
    m = str(tmp_path / "m")
    for cmd, match in ((["calibrate", m, *views, "--compose", "svm"], "--compose svm: a multi-view model"),
                       (["calibrate", m, str(tmp_path / "beat_te.npy"), *views], "not both"),
                       (["calibrate", m, "--view", f"beat={tmp_path / 'beat_te.npy'}"], "missing ['rhythm']"),
                       (["calibrate", m, str(tmp_path / "beat_te.npy")], "--view NAME=FILE for each view")):
        r = run(app, [*cmd, "-o", str(tmp_path / "bad")])
        assert r.exit_code == 2 and match in " ".join(r.output.split()), (cmd, r.output)
        assert not (tmp_path / "bad").exists()


def test_cli_calibrate_of_a_multiview_model_matches_labels_by_id(tmp_path):
    """An id column left out of a view file (--exclude) that the labels CSV also holds: labels pair by
    id, as for a single model; they were paired by position, so shuffled labels gave another threshold."""
    import pandas as pd
    from ganad.cli import app
    run = CliRunner().invoke
    te = _views(60, seed=5)
    _cli_fitted_views(tmp_path, 200, te)
    rr = pd.read_csv(tmp_path / "rr_te.csv")
    rr.insert(0, "id", [f"s{i}" for i in range(len(rr))])
    rr.to_csv(tmp_path / "rr_te_id.csv", index=False)
    y = pd.DataFrame({"id": rr["id"], "label": [0] * 50 + [1] * 10})
    y.to_csv(tmp_path / "y.csv", index=False)
    y.sample(frac=1.0, random_state=0).to_csv(tmp_path / "y_shuf.csv", index=False)
    views_id = ["--view", f"beat={tmp_path / 'beat_te.npy'}", "--view", f"rhythm={tmp_path / 'rr_te_id.csv'}"]
    got = []
    for lab in ("y.csv", "y_shuf.csv"):
        r = run(app, ["calibrate", str(tmp_path / "m"), *views_id, "--exclude", "id", "--labels", str(tmp_path / lab),
                      "--label-column", "label", "--threshold", "mcc", "-o", str(tmp_path / lab.replace(".csv", "_m"))])
        assert r.exit_code == 0, r.output
        got.append(ganad.load(tmp_path / lab.replace(".csv", "_m")).threshold_)
    assert got[0] == got[1]


def test_saving_over_a_model_refuses_files_inside_its_parts(tmp_path):
    """Saving replaces the whole model directory: a file the user put inside a view's folder of a
    multi-view model (or inside a series model's detector/) was deleted without a word; the check
    looked at the top level only."""
    from ganad.cli import app
    run = CliRunner().invoke
    te = _views(60, seed=5)
    views = _cli_fitted_views(tmp_path, 200, te)
    (tmp_path / "m" / "views" / "beat" / "beat.onnx").write_text("mine")
    r = run(app, ["calibrate", str(tmp_path / "m"), *views])  # in place
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "views/beat/beat.onnx" in msg and "Fix:" in msg, r.output
    assert (tmp_path / "m" / "views" / "beat" / "beat.onnx").read_text() == "mine"
    from ganad.series import SeriesDetector
    rng = np.random.RandomState(0)
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "verbose": False, "random_state": 0})
    sd.fit(np.sin(np.arange(400) / 7)[:, None] + 0.05 * rng.randn(400, 1)).save(tmp_path / "s")
    (tmp_path / "s" / "detector" / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="detector/notes.txt"):
        sd.save(tmp_path / "s")
    assert (tmp_path / "s" / "detector" / "notes.txt").exists()


def test_calibrate_without_labels_names_this_methods_argument(fitted):
    """A label-based threshold without labels said "y_val is missing ... use compose='default'", a
    single model's argument and option, which MultiViewDetector.calibrate does not have."""
    mv = fitted  # (refused before anything of the fixture is changed)
    te = _views(30, seed=7)
    with pytest.raises(InputError, match=r"^y: is missing.*pass y \(CLI: --labels\)") as e:
        mv.calibrate(te, threshold="f1")
    assert "compose" not in str(e.value) and "y_val" not in str(e.value)


def test_verbose_views_say_which_view_a_training_progress_belongs_to(capsys):
    """Two views' training bars both read "ganomaly 3/3": the view's name now comes first, on stderr."""
    MultiViewDetector({"beat": "ganomaly", "rhythm": "ganomaly"}, detector_params={**FAST, "verbose": True}).fit(_views(200))
    err = capsys.readouterr().err
    assert err.index("view 'beat': training GANomaly") < err.index("view 'rhythm': training GANomaly"), err
    assert err.count("epoch") >= 2


def test_multiview_takes_a_numpy_random_state_as_the_detectors_do():
    """random_state=np.random.RandomState(0) passed the check (whose message offers it) and then failed
    with numpy's 'Cannot cast scalar from dtype('O')'."""
    X = np.random.RandomState(0).randn(120, 3)
    mv = MultiViewDetector({"a": "ganomaly"}, detector_params=dict(epochs=1, latent_dim=2, width=8),
                           random_state=np.random.RandomState(0)).fit({"a": X})
    assert np.isfinite(mv.decision_function({"a": X[:4]})).all()


def test_multiview_fitted_with_a_random_state_object_saves_it_as_none(tmp_path):
    """Once fit took a RandomState, save refused it ('Object of type RandomState is not JSON serializable');
    a detector's save writes None for it (the weights are saved: the scores reproduce)."""
    X = np.random.RandomState(0).randn(120, 3)
    mv = MultiViewDetector({"a": "ganomaly"}, detector_params=dict(epochs=1, latent_dim=2, width=8),
                           random_state=np.random.RandomState(0)).fit({"a": X})
    mv.save(tmp_path / "mv")
    back = ganad.load(tmp_path / "mv")
    assert back.random_state is None
    np.testing.assert_array_equal(back.decision_function({"a": X[:5]}), mv.decision_function({"a": X[:5]}))


def test_a_model_saved_with_a_view_name_windows_reserves_still_loads(tmp_path, monkeypatch):
    """The Windows folder-name rule applies to models being made; one saved before it (a view named 'aux')
    still loads and scores (review of the rule: it was called corrupt)."""
    import ganad.multiview as mvmod
    rng = np.random.RandomState(0)
    X = {"beat": rng.randn(120, 4), "aux": rng.randn(120, 3)}
    monkeypatch.setattr(mvmod, "_RESERVED", set())  # as before the rule
    mv = MultiViewDetector({"beat": "ganomaly", "aux": "ganomaly"}, detector_params={"epochs": 1, "verbose": False}).fit(X)
    mv.save(tmp_path / "mv")
    monkeypatch.undo()
    back = ganad.load(tmp_path / "mv")
    np.testing.assert_allclose(back.decision_function(X), mv.decision_function(X), rtol=1e-6)
    with pytest.raises(InputError, match="Windows cannot hold"):
        MultiViewDetector({"aux": "ganomaly"}).fit({"aux": X["aux"]})


def test_decision_scores_labels_and_fit_predict_as_pyod(fitted, tmp_path):
    """decision_scores_ / labels_ / fit_predict (PyOD's outlier-detector API, which MultiViewDetector
    lacked): one summed score and 0 / 1 label per sample fit was given, in their order; the held-out
    reference samples' are the sums the threshold was set on, the trained samples' come from each
    view's own training scores; after calibrate both follow the new standardisation and threshold."""
    mv = fitted
    X = _views(300)
    s = mv.decision_scores_
    assert s.shape == (300,) and np.isfinite(s).all()
    ref = mv.reference_index_
    np.testing.assert_allclose(np.sort(s[ref]), mv.reference_scores_)
    np.testing.assert_allclose(s[ref], mv.decision_function({v: a[ref] for v, a in X.items()}))
    trained = np.setdiff1d(np.arange(300), ref)
    own = {v: mv.detectors_[v].decision_scores_ for v in mv.views_}
    np.testing.assert_allclose(s[trained], mv.composer_.standardise(own).sum(axis=1))
    np.testing.assert_array_equal(mv.labels_, (s > mv.threshold_).astype(np.int64))
    assert 0 < mv.labels_.sum() < 300
    # fit_predict = fit, then labels_ (the same fit as the fixture's)
    mv2 = MultiViewDetector({"beat": "ganomaly", "rhythm": ganad.FAnoGAN(**FAST)}, detector_params=FAST, contamination=0.05)
    np.testing.assert_array_equal(mv2.fit_predict(X), mv.labels_)
    # calibrate re-standardises: the training sums follow it
    mv2.calibrate(_views(200, seed=9), threshold="contamination", contamination=0.2)
    np.testing.assert_allclose(mv2.decision_scores_[trained], mv2.composer_.standardise(own).sum(axis=1))
    np.testing.assert_array_equal(mv2.labels_, (mv2.decision_scores_ > mv2.threshold_).astype(np.int64))
    # reference_fraction=0: the training scores themselves, which set the threshold
    mv0 = MultiViewDetector({"beat": "ganomaly"}, detector_params=FAST, reference_fraction=0, contamination=0.1).fit({"beat": X["beat"]})
    np.testing.assert_allclose(np.sort(mv0.decision_scores_), mv0.reference_scores_)
    # in memory only: a loaded model names the way to its scores
    mv2.save(tmp_path / "m")
    loaded = ganad.load(tmp_path / "m")
    for attr in ("decision_scores_", "labels_"):
        with pytest.raises(AttributeError, match="decision_function"):
            getattr(loaded, attr)
    assert not hasattr(MultiViewDetector({"beat": "ganomaly"}), "labels_")


def test_fit_leaves_a_latent_search_views_training_scores_to_first_access(monkeypatch):
    """With held-out reference samples, fit read every view's decision_scores_ for labels_: a latent-search
    view whose score reads the search (AnoGAN, knn_weight 0) then searched a code for every training row
    in fit, the cost it defers to first access (docs/training.md). decision_scores_ / labels_ now start
    that search, and give the same scores."""
    monkeypatch.setattr(ganad.AnoGAN, "_threshold_sample", 64)  # the training rows beyond it: scored on demand
    X = {"rhythm": _views(200)["rhythm"]}
    mv = MultiViewDetector({"rhythm": ganad.AnoGAN(knn_weight=0, width=8, **FAST)}, contamination=0.05).fit(X)
    det = mv.detectors_["rhythm"]
    assert "_decision_scores" not in det.__dict__  # no search of the training rows in fit
    s = mv.decision_scores_
    assert s.shape == (200,) and np.isfinite(s).all()
    ref = mv.reference_index_
    trained = np.setdiff1d(np.arange(200), ref)
    np.testing.assert_allclose(s[ref], mv.decision_function({"rhythm": X["rhythm"][ref]}))
    np.testing.assert_allclose(s[trained], mv.composer_.standardise({"rhythm": det.decision_scores_}).sum(axis=1))
    np.testing.assert_array_equal(mv.labels_, (s > mv.threshold_).astype(np.int64))


def test_cli_fit_combine_option(tmp_path):
    """`ganad fit --view ... --combine zscore` writes the median / MAD model (format 1); --combine without
    --view, and an unknown value, are refused before any training, leaving no model directory."""
    from ganad.cli import app
    run = CliRunner().invoke
    _write_view_files(tmp_path, _views(120), _views(20, seed=4))
    views = ["--view", f"beat={tmp_path / 'beat.npy'}", "--view", f"rhythm={tmp_path / 'rr.csv'}"]
    r = run(app, ["fit", *views, "-o", str(tmp_path / "z"), "--epochs", "1", "-q", "--combine", "zscore"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "z" / "multiview.json").read_text())
    assert cfg["format_version"] == 1 and "median" in cfg["state"] and ganad.load(tmp_path / "z").combine == "zscore"
    r = run(app, ["fit", *views, "-o", str(tmp_path / "bad"), "--epochs", "1", "-q", "--combine", "fisher"])
    assert r.exit_code != 0 and "--combine" in r.output and "surprise" in r.output and not (tmp_path / "bad").exists(), r.output
    r = run(app, ["fit", str(tmp_path / "rr.csv"), "-o", str(tmp_path / "one"), "--epochs", "1", "-q", "--combine", "zscore"])
    assert r.exit_code != 0 and "--combine" in r.output and "--view" in r.output and not (tmp_path / "one").exists(), r.output
