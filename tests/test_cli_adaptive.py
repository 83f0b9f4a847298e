"""`ganad score --group-column COL --warm-up N`: patient-adaptive thresholds on the command line (tables and
multi-view models), the same as ganad.scoring.adaptive.prefix_threshold on the scores, and `ganad evaluate`
on the file they write."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ganad
from ganad.cli import app
from ganad.scoring.adaptive import prefix_threshold

run = CliRunner().invoke


@pytest.fixture(scope="module")
def adaptive_dir(tmp_path_factory):
    """A tiny table model; test rows of two recordings interleaved, 'p1' noisier than the training data."""
    d = tmp_path_factory.mktemp("cli_adaptive")
    rng = np.random.RandomState(0)
    cols = list("abcd")
    pd.DataFrame(rng.randn(300, 4), columns=cols).to_csv(d / "train.csv", index=False)
    r = run(app, ["fit", str(d / "train.csv"), "-o", str(d / "model"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    n = 160
    X = rng.randn(2 * n, 4)
    rec = np.array(["p1", "p2"] * n)
    X[rec == "p1"] *= 2.0
    y = np.zeros(2 * n, dtype=int)
    y[-20:] = 1  # the last rows, after every warm-up, anomalous
    X[-20:] += 5.0
    te = pd.DataFrame(X, columns=cols)
    te.insert(0, "record", rec)
    te.insert(0, "id", [f"r{i}" for i in range(2 * n)])
    te.to_csv(d / "test.csv", index=False)
    pd.DataFrame({"y": y}).to_csv(d / "y.csv", index=False)
    np.save(d / "test.npy", X.astype(np.float32))
    return d, te, y


def test_score_warm_up_gives_each_recording_its_own_threshold(adaptive_dir):
    d, te, y = adaptive_dir
    r = run(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(d / "s.csv"), "--id-column", "id",
                  "--group-column", "record", "--warm-up", "50", "--chunk-rows", "17"])
    assert r.exit_code == 0, r.output
    assert "2 recording(s) with their own threshold" in r.output
    s = pd.read_csv(d / "s.csv")
    assert list(s.columns) == ["id", "index", "score", "label", "threshold", "warm_up"]
    det = ganad.load(d / "model")
    scores = det.decision_function(te[list("abcd")].to_numpy())
    np.testing.assert_allclose(s["score"], scores, rtol=1e-6, atol=1e-6)
    # an uncalibrated model's threshold is its contamination quantile: the recordings' own at that rate
    tau, warm = prefix_threshold(s["score"].to_numpy(), te["record"].to_numpy(), None, 50, fpr=det.contamination,
                                 threshold=det.threshold_)
    np.testing.assert_array_equal(s["threshold"], tau)
    np.testing.assert_array_equal(s["warm_up"], warm.astype(int))
    np.testing.assert_array_equal(s["label"], (s["score"] > s["threshold"]).astype(int))
    assert s["warm_up"].sum() == 100 and (s["threshold"] >= det.threshold_).all()
    p1 = (te["record"] == "p1").to_numpy() & ~warm
    assert s["threshold"][p1].iloc[0] > det.threshold_  # the noisier recording's threshold is raised
    # ganad evaluate decides by the label column (no single threshold to read)
    r = run(app, ["evaluate", str(d / "s.csv"), "--labels", str(d / "y.csv"), "-o", str(d / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((d / "ev" / "metrics.json").read_text())
    assert m["n_flagged"] == int(s["label"].sum()) and m.get("threshold") is None


def test_score_warm_up_rate_is_the_calibrated_fpr_or_the_given_one(adaptive_dir, tmp_path):
    d, te, _ = adaptive_dir
    rng = np.random.RandomState(5)
    pd.DataFrame(rng.randn(200, 4), columns=list("abcd")).to_csv(tmp_path / "normal.csv", index=False)
    r = run(app, ["calibrate", str(d / "model"), str(tmp_path / "normal.csv"), "--threshold", "fpr", "--fpr", "0.02",
                  "-o", str(tmp_path / "cal"), "-q"])
    assert r.exit_code == 0, r.output
    det = ganad.load(tmp_path / "cal")
    for extra, rate in (([], 0.02), (["--fpr", "0.2"], 0.2)):
        r = run(app, ["score", str(tmp_path / "cal"), str(d / "test.csv"), "-o", str(tmp_path / "s.csv"), "--exclude", "id",
                      "--group-column", "record", "--warm-up", "40", "--overwrite", *extra])
        assert r.exit_code == 0, r.output
        s = pd.read_csv(tmp_path / "s.csv")
        tau, _ = prefix_threshold(s["score"].to_numpy(), te["record"].to_numpy(), None, 40, fpr=rate, threshold=det.threshold_)
        np.testing.assert_array_equal(s["threshold"], tau)


@pytest.mark.parametrize("args, match", [
    (["--warm-up", "50"], "--group-column COL"),
    (["--group-column", "record"], "--warm-up N"),
    (["--fpr", "0.1"], "--fpr 0.1"),
    (["--group-column", "record", "--warm-up", "1"], "at least 2"),
    (["--group-column", "record", "--warm-up", "50", "--fpr", "1.5"], "--fpr"),
    (["--group-column", "record", "--warm-up", "50", "--nonfinite", "max"], "--nonfinite max"),
    (["--group-column", "patient", "--warm-up", "50"], "no column 'patient'"),
])
def test_score_warm_up_refusals_write_nothing(adaptive_dir, tmp_path, args, match):
    d, _, _ = adaptive_dir
    out = tmp_path / "s.csv"
    r = run(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(out), "--exclude", "id", *args])
    assert r.exit_code == 2 and match in " ".join(r.output.split()), r.output
    assert not out.exists()


def test_score_warm_up_needs_a_named_column(adaptive_dir, tmp_path):
    d, _, _ = adaptive_dir
    r = run(app, ["score", str(d / "model"), str(d / "test.npy"), "-o", str(tmp_path / "s.csv"), "--group-column", "record",
                  "--warm-up", "50"])
    assert r.exit_code == 2 and "--group-column" in r.output and "no named columns" in " ".join(r.output.split())
    assert not (tmp_path / "s.csv").exists()


def test_evaluate_refuses_per_recording_thresholds_without_labels(tmp_path):
    pd.DataFrame({"index": [0, 1], "score": [0.1, 2.0], "threshold": [1.0, 1.5], "warm_up": [1, 0]}).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"y": [0, 1]}).to_csv(tmp_path / "y.csv", index=False)
    r = run(app, ["evaluate", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "y.csv"), "-o", str(tmp_path / "ev")])
    assert r.exit_code == 2 and "no label column" in r.output


def test_score_views_warm_up_reads_the_recordings_from_a_view_file(tmp_path):
    rng = np.random.RandomState(1)
    beat_tr, rr_tr = rng.randn(200, 1, 16).astype(np.float32), rng.randn(200, 3).astype(np.float32)
    np.save(tmp_path / "beat.npy", beat_tr)
    pd.DataFrame(rr_tr, columns=["pre", "post", "ratio"]).to_csv(tmp_path / "rr.csv", index=False)
    r = run(app, ["fit", "--view", f"beat={tmp_path / 'beat.npy'}", "--view", f"rhythm={tmp_path / 'rr.csv'}",
                  "-o", str(tmp_path / "m"), "--method", "ganomaly", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    beat_te, rr_te = rng.randn(120, 1, 16).astype(np.float32), rng.randn(120, 3).astype(np.float32)
    rec = np.repeat(["a", "b", "c"], 40)
    np.save(tmp_path / "beat_te.npy", beat_te)
    rr = pd.DataFrame(rr_te, columns=["pre", "post", "ratio"])
    rr.insert(0, "record", rec)
    rr.to_csv(tmp_path / "rr_te.csv", index=False)
    r = run(app, ["score", str(tmp_path / "m"), "--view", f"beat={tmp_path / 'beat_te.npy'}", "--view", f"rhythm={tmp_path / 'rr_te.csv'}",
                  "-o", str(tmp_path / "s.csv"), "--group-column", "record", "--warm-up", "25", "--components"])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    assert list(s.columns) == ["index", "score", "label", "threshold", "warm_up", "view_beat", "view_rhythm"]
    mv = ganad.load(tmp_path / "m")
    tau, warm = prefix_threshold(s["score"].to_numpy(), rec, None, 25, fpr=mv.contamination, threshold=mv.threshold_)
    np.testing.assert_array_equal(s["threshold"], tau)
    np.testing.assert_array_equal(s["warm_up"], warm.astype(int))
    # no view file holds the column: refused, nothing written
    r = run(app, ["score", str(tmp_path / "m"), "--view", f"beat={tmp_path / 'beat_te.npy'}", "--view", f"rhythm={tmp_path / 'rr.csv'}",
                  "-o", str(tmp_path / "s2.csv"), "--group-column", "record", "--warm-up", "25"])
    assert r.exit_code == 2 and "no --view file has a column 'record'" in r.output
    assert not (tmp_path / "s2.csv").exists()


def test_evaluate_group_column_reports_each_recordings_false_positive_rate(adaptive_dir, tmp_path):
    """The population threshold against the per-recording one, judged per recording: the noisier recording is
    over twice the target at the model's threshold, and no longer with its own."""
    d, te, y = adaptive_dir
    reports = {}
    for name, extra in (("population", []), ("own", ["--group-column", "record", "--warm-up", "50"])):
        r = run(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / f"{name}.csv"), "--id-column", "record", "--exclude", "id", *extra])
        assert r.exit_code == 0, r.output
        r = run(app, ["evaluate", str(tmp_path / f"{name}.csv"), "--labels", str(d / "y.csv"), "-o", str(tmp_path / f"ev_{name}"),
                      "--group-column", "record", "--fpr", "0.1"])
        assert r.exit_code == 0, r.output
        reports[name] = (json.loads((tmp_path / f"ev_{name}" / "metrics.json").read_text()), r.output)
    m, text = reports["population"]
    s = pd.read_csv(tmp_path / "population.csv")
    p1 = (s["record"] == "p1").to_numpy() & (y == 0)
    assert m["per_group"]["p1"]["fpr"] == pytest.approx(s["label"][p1].mean())
    assert m["per_group"]["p1"]["n_normal"] == int(p1.sum()) and m["groups_counted"] == 2 and m["group_fpr_target"] == 0.1
    assert m["groups_over_2x_fpr"] == ["p1"] and "1 of 2" in text
    assert reports["own"][0]["per_group"]["p1"]["fpr"] < m["per_group"]["p1"]["fpr"]
    # refusals: a column the scores file does not have, --fpr without --group-column
    for args, words in ((["--group-column", "patient"], "no column 'patient'"), (["--fpr", "0.1"], "--group-column COL")):
        r = run(app, ["evaluate", str(tmp_path / "population.csv"), "--labels", str(d / "y.csv"), "-o", str(tmp_path / "ev_bad"), *args])
        assert r.exit_code == 2 and words in " ".join(r.output.split()), r.output
        assert not (tmp_path / "ev_bad" / "metrics.json").exists()
