import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ganad.cli import app
from ganad.exceptions import InputError
from ganad.series.benchmark import rolling_zscore, run_nab

runner = CliRunner()


def _fake_nab(root):
    """A NAB-layout folder with one synthetic series and one labelled window."""
    (root / "data" / "artificialWithAnomaly").mkdir(parents=True)
    (root / "labels").mkdir()
    T = 1200
    t = pd.date_range("2024-01-01", periods=T, freq="5min")
    v = np.sin(np.arange(T) / 10) + 0.05 * np.random.RandomState(0).randn(T)
    v[900:915] += 4
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"), "value": v}).to_csv(root / "data" / "artificialWithAnomaly" / "toy.csv", index=False)
    win = [[str(t[890]), str(t[925])]]
    (root / "labels" / "combined_windows.json").write_text(json.dumps({"artificialWithAnomaly/toy.csv": win}))


def test_rolling_zscore_is_causal_and_flags_a_spike():
    x = np.sin(np.arange(500) / 10)
    x2 = x.copy()
    x2[400] += 5
    z, z2 = rolling_zscore(x, 32), rolling_zscore(x2, 32)
    np.testing.assert_allclose(z[:400], z2[:400])  # the future never changes the past
    assert z2[400] == z2.max() and z2[400] > 5


def test_nab_protocol_runs_every_method_on_the_same_split(tmp_path):
    pytest.importorskip("pyod")
    _fake_nab(tmp_path / "nab")
    res = run_nab(tmp_path, methods=["fanogan"], peers=["iforest"], window=16, stride=4, train_fraction=0.3, epochs=2)
    assert {r["method"] for r in res["rows"]} == {"fanogan", "pyod:iforest", "rolling_zscore"}
    for r in res["rows"]:
        assert 0 <= r["vus_pr"] <= 1 and 0 <= r["event_f1"] <= 1
    # the jump is obvious: the rolling z-score flags it (an event inside the labelled window)
    z = next(r for r in res["rows"] if r["method"] == "rolling_zscore")
    assert z["event_recall"] == 1.0
    with pytest.raises(InputError, match="train-fraction"):
        run_nab(tmp_path, train_fraction=1.5)


def test_cli_benchmark_nab(tmp_path):
    pytest.importorskip("pyod")
    _fake_nab(tmp_path / "nab")
    r = runner.invoke(app, ["benchmark", "nab", "--data", str(tmp_path), "-o", str(tmp_path / "out"), "--window", "16",
                            "--stride", "8", "--epochs", "1", "--peers", "ecod", "--train-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    assert "vus_pr" in (tmp_path / "out" / "results.md").read_text()
    r = runner.invoke(app, ["benchmark", "nab", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "o2")])
    assert r.exit_code != 0 and "NAB" in r.output


def test_nab_without_data_never_reads_the_current_directory(tmp_path, monkeypatch):
    """Without --data and $GANAD_DATA_DIR, `ganad benchmark nab` ran on the current directory (here a
    NAB layout; elsewhere the error named '.', a path never given): refused as the other protocols do."""
    from ganad.benchmark import ENV_VAR
    _fake_nab(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(InputError, match=rf"--data: is not given and \${ENV_VAR} is unset\. Fix: pass --data DIR"):
        run_nab(None, window=1)  # the window is checked after the data folder
    r = runner.invoke(app, ["benchmark", "nab", "-o", str(tmp_path / "out"), "--window", "1"])
    assert r.exit_code == 2 and ENV_VAR in r.output and "--window" not in r.output
    monkeypatch.setenv(ENV_VAR, str(tmp_path))  # the variable names the folder: found
    with pytest.raises(InputError, match="--window"):
        run_nab(None, window=1)


def test_peers_training_points_use_their_own_training_scores():
    """The threshold rule takes each method's scores of the training points. A peer's must be its own
    training scores: PyOD's KNN scored again on its training windows finds each at distance 0, which
    set its threshold too low (ganad's SeriesDetector leaves a window's own bank entry out as well)."""
    pytest.importorskip("pyod")
    from ganad.benchmark import make_peer
    from ganad.data.windows import make_windows
    from ganad.series.benchmark import _peer_points
    from ganad.series.detector import aggregate
    v = np.sin(np.arange(1200) / 10) + 0.05 * np.random.RandomState(0).randn(1200)
    train, test = v[:600], v[600:]
    s_tr, s_te = _peer_points("knn", 0, train, test, 32, 4, 1)
    mu, sd = float(train.mean()), float(train.std())
    W, starts = make_windows((train - mu) / sd, 32, 4)
    det = make_peer("knn", 0, 1, 32).fit(W.reshape(len(W), -1))
    np.testing.assert_allclose(s_tr, aggregate(det.decision_scores_, None, starts, 32, 600)[0])
    again = aggregate(det.decision_function(W.reshape(len(W), -1)), None, starts, 32, 600)[0]
    assert np.median(s_tr) > np.median(again)  # in-sample, each window counted itself
    assert s_te.shape == (600,)


def test_nab_events_bridge_the_same_gap_for_every_method(tmp_path):
    """run_nab's event rule: runs above the threshold at most event_gap points apart are one event,
    for every method (default: the window); bridging only adds predicted points, so event recall
    cannot fall, and point figures do not move."""
    _fake_nab(tmp_path / "nab")
    kw = dict(methods=[], peers=[], window=16, stride=4, train_fraction=0.3)
    none, wide = run_nab(tmp_path, event_gap=0, **kw), run_nab(tmp_path, event_gap=10_000, **kw)
    assert run_nab(tmp_path, **kw)["config"]["event_gap"] == 16 and none["config"]["event_gap"] == 0
    for a, b in zip(none["rows"], wide["rows"]):
        assert b["event_recall"] >= a["event_recall"] and b["point_auroc"] == a["point_auroc"]
        assert a["event_f1_runs"] == b["event_f1_runs"] == a["event_f1"]  # the no-bridge figure beside
    assert any(a["event_precision"] != b["event_precision"] for a, b in zip(none["rows"], wide["rows"]))
    for bad in (-2, 3.0):
        with pytest.raises(InputError, match="event-gap"):
            run_nab(tmp_path, event_gap=bad, **kw)
    with pytest.raises(InputError, match="window"):
        run_nab(tmp_path, **{**kw, "window": None})


def test_cli_benchmark_nab_peers_only(tmp_path):
    """--methods none runs the peers (and the rolling z-score) alone, as --peers none runs ganad alone."""
    _fake_nab(tmp_path / "nab")
    r = runner.invoke(app, ["benchmark", "nab", "--data", str(tmp_path), "-o", str(tmp_path / "out"), "--window", "16",
                            "--stride", "8", "--methods", "none", "--peers", "none", "--train-fraction", "0.3"])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {row["method"] for row in res["rows"]} == {"rolling_zscore"}


def _series(root, group, name, T=600, start="2024-01-01", shuffle=False):
    (root / "data" / group).mkdir(parents=True, exist_ok=True)
    t = pd.date_range(start, periods=T, freq="5min")
    v = np.sin(np.arange(T) / 10) + 0.05 * np.random.RandomState(T).randn(T)
    a = int(T * 0.75)
    v[a:a + 15] += 4
    df = pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"), "value": v})
    df = df.sample(frac=1, random_state=0) if shuffle else df
    df.to_csv(root / "data" / group / f"{name}.csv", index=False)
    return [[str(t[a - 5]), str(t[a + 20])]]


def test_nab_folder_of_own_series_skips_and_refuses_with_reasons(tmp_path, monkeypatch):
    """A generic folder in NAB's layout: a training part with fewer than 8 windows (n_tr between
    window + 1 and window + 7 * stride) crashed the whole run with "X: gives 2 window(s) ...", naming
    neither the series nor the option; labels outside the series' time range were skipped as "no
    labelled anomaly"; a shuffled file went unnoticed; with the default --groups, a folder whose groups
    are not NAB's was told to "use some of realKnownCause, ..."; an unknown peer or a missing label
    entry stopped the run only after the series before it had been trained on."""
    import ganad.series.detector as D
    root = tmp_path / "own"
    (root / "labels").mkdir(parents=True)
    (root / "data").mkdir()
    with pytest.raises(InputError, match="holds no series: no .csv file"):
        run_nab(root, methods=[], peers=[], window=16)
    _series(root, "mine", "elsewhere", start="2030-01-01")
    labels = {"mine/ok.csv": _series(root, "mine", "ok"),
              "mine/short.csv": _series(root, "mine", "short", T=150),  # 22 training points at 0.15: 2 windows at stride 4
              "mine/elsewhere.csv": [["2024-06-01 00:00:00", "2024-06-02 00:00:00"]],  # its points are in 2030
              "mine/shuffled.csv": _series(root, "mine", "shuffled", shuffle=True)}
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    with pytest.raises(InputError, match=r"--groups: .* select no series .*its groups: mine\)\. Fix: pass --groups naming some of mine"):
        run_nab(root, methods=[], peers=[], window=16)
    logs: list = []
    res = run_nab(root, groups=["mine"], methods=["fanogan"], peers=[], window=16, stride=4, epochs=1, log=logs.append)
    assert any(m.startswith("mine/elsewhere: skipped (") for m in logs)  # on the console, not only in results.md
    skipped = dict(res["skipped"])
    assert "22 training" in skipped["mine/short"] and "8 windows of 16 at stride 4" in skipped["mine/short"]
    assert "cover none of its points (times 2030-01-01 00:00:00 .. " in skipped["mine/elsewhere"]
    assert {r["series"] for r in res["rows"]} == {"mine/ok", "mine/shuffled"}
    assert any("mine/shuffled: its timestamps repeat or step back" in n for n in res["notes"])
    out = tmp_path / "out"
    from ganad.series.benchmark import write_nab
    md = write_nab(res, out)["markdown"].read_text()
    assert "Note: mine/shuffled" in md and "mine/elsewhere (its labelled window(s) cover none" in md
    with pytest.raises(InputError, match=r"every one skipped: mine/short: 22 training"):
        run_nab(root, series=["mine/short"], methods=[], peers=[], window=16, stride=4)
    # refused before any training
    monkeypatch.setattr(D.SeriesDetector, "fit", lambda *a, **k: pytest.fail("trained before the refusal"))
    with pytest.raises(InputError, match=r"--peers: names unknown peer\(s\) \['foo'\]"):
        run_nab(root, groups=["mine"], methods=["fanogan"], peers=["foo"], window=16)
    labels.pop("mine/shuffled.csv")
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    with pytest.raises(Exception, match="has no entry for 'mine/shuffled.csv'"):
        run_nab(root, groups=["mine"], methods=["fanogan"], peers=[], window=16)


def test_nab_small_data_warning_names_the_series_and_counts_are_unambiguous(tmp_path):
    """Inside the nab benchmark the detector's small-data warning said "X: has N windows ..." (the
    API's name for the data), not which series; config.n_series counted the series selected
    (skipped included) while the summary's n_series counted those measured."""
    pytest.importorskip("pyod")
    root = tmp_path / "nab"
    _fake_nab(root)
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    t = pd.date_range("2024-01-01", periods=100, freq="5min")
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"), "value": np.arange(100.0)}).to_csv(
        root / "data" / "artificialWithAnomaly" / "tiny.csv", index=False)
    labels["artificialWithAnomaly/tiny.csv"] = []
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    with pytest.warns(UserWarning) as rec:
        res = run_nab(tmp_path, methods=["fanogan"], peers=[], window=16, stride=4, train_fraction=0.3, epochs=1)
    small = [str(w.message) for w in rec if "held-out slice" in str(w.message)]
    assert small and all(m.startswith("artificialWithAnomaly/toy training part (fanogan): has ") for m in small), small
    assert not any(str(w.message).startswith("X") for w in rec)
    cfg = res["config"]
    assert "n_series" not in cfg and cfg["n_series_selected"] == 2 and cfg["n_series_measured"] == 1 and cfg["n_series_skipped"] == 1
    assert all(s["n_series"] == cfg["n_series_measured"] for s in res["summary"].values())


def test_nab_missing_label_entry_hint_fits_the_cli_and_the_api(tmp_path):
    """The hint suggested labels_file=, an argument `ganad benchmark nab` does not have."""
    from ganad.data.nab import load_nab
    root = tmp_path / "nab"
    _fake_nab(root)
    (root / "labels" / "combined_windows.json").write_text("{}")
    r = runner.invoke(app, ["benchmark", "nab", "--data", str(tmp_path), "-o", str(tmp_path / "out"), "--methods", "none",
                            "--peers", "none", "--window", "16"])
    out = " ".join(r.output.split())
    assert r.exit_code != 0 and "has no entry for 'artificialWithAnomaly/toy.csv'" in out, r.output
    assert "labels/combined_windows.json" in out and "Fix:" in out and "--data" in out
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(Exception, match="has no entry") as ei:
        load_nab(root, "toy", labels_file=tmp_path / "other.json")
    assert "labels_file=" not in str(ei.value) and "[]" in str(ei.value)
