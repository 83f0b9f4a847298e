import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ganad
from ganad.cli import app
from ganad.series import SeriesDetector

runner = CliRunner()


def _table(T, seed, anomaly=None):
    rng = np.random.RandomState(seed)
    t = np.arange(T)
    df = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=T, freq="min"),
                       "temp": np.sin(t / 20) + 0.05 * rng.randn(T), "pressure": np.cos(t / 33) + 0.05 * rng.randn(T),
                       "status": "ok"})
    if anomaly is not None:
        df.loc[anomaly[0]:anomaly[1], "pressure"] += 3.0
    return df


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("series_cli")
    _table(2000, 0).to_csv(d / "train.csv", index=False)
    _table(800, 1, anomaly=(400, 419)).to_csv(d / "test.csv", index=False)
    r = runner.invoke(app, ["fit", str(d / "train.csv"), "-o", str(d / "model"), "--window", "32", "--stride", "8",
                            "--channels", "temp,pressure", "--method", "fanogan", "--epochs", "3", "-q"])
    assert r.exit_code == 0, r.output
    return d


def test_fit_and_score_a_raw_csv_to_events(work):
    d = work
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(d / "c.csv"), "--components", "--events", str(d / "ev.csv")])
    assert r.exit_code == 0, r.output
    c = pd.read_csv(d / "c.csv")
    assert list(c.columns) == ["index", "time", "score", "label", "event", "contrib_temp", "contrib_pressure"] and (d / "ev.csv").is_file()
    assert c.contrib_pressure[400:420].mean() > 3 * c.contrib_temp[400:420].mean()
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(d / "scores.csv")])
    assert r.exit_code == 0, r.output
    # channels are read by name: the text column the model was not trained on is left out, with a note
    assert "column(s) ['status']" in " ".join(r.output.split()) and "were not read" in r.output
    r2 = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(d / "s2.csv"), "--exclude", "status"])
    assert r2.exit_code == 0 and "were not read" not in r2.output, r2.output
    s = pd.read_csv(d / "scores.csv")
    ev = pd.read_csv(d / "scores.events.csv")
    assert list(s.columns) == ["index", "time", "score", "label", "event"] and len(s) == 800
    # the event column: 1 exactly on the events' spans (the points above the threshold among them)
    span = np.zeros(len(s), dtype=int)
    for a, b in zip(ev.start, ev.end):
        span[a:b + 1] = 1
    np.testing.assert_array_equal(s.event, span)
    assert (s.event >= s.label).all()
    hit = ev[(ev.start <= 419) & (ev.end >= 400)]
    assert len(hit) == 1 and hit.iloc[0].channels.startswith("pressure=")
    assert pd.Timestamp(hit.iloc[0].start_time) == pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=int(hit.iloc[0].start))
    # the CLI gives what the library gives
    sd = ganad.load(d / "model")
    te = pd.read_csv(d / "test.csv")
    np.testing.assert_allclose(s.score, sd.decision_function(te[["temp", "pressure"]].to_numpy()), rtol=1e-5, atol=1e-5)


def test_evaluate_with_labelled_ranges(work):
    d = work
    runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(d / "scores.csv")])
    pd.DataFrame({"start": ["2024-01-01 06:40:00"], "end": ["2024-01-01 06:59:00"]}).to_csv(d / "ranges.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "scores.csv"), "--ranges", str(d / "ranges.csv"), "--max-buffer", "16", "-o", str(d / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((d / "ev" / "metrics.json").read_text())
    assert m["n_anomalous_points"] == 20 and m["point_auroc"] > 0.8
    for k in ("vus_pr", "event_f1", "pa_f1", "pak_auc_f1"):
        assert k in m
    # the same ranges as row indices
    pd.DataFrame({"start": [400], "end": [419]}).to_csv(d / "ranges_idx.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "scores.csv"), "--ranges", str(d / "ranges_idx.csv"), "--max-buffer", "16", "-o", str(d / "ev2")])
    assert r.exit_code == 0, r.output
    assert json.loads((d / "ev2" / "metrics.json").read_text())["vus_pr"] == pytest.approx(m["vus_pr"])
    pd.DataFrame({"begin": [1]}).to_csv(d / "bad.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "scores.csv"), "--ranges", str(d / "bad.csv")])
    assert r.exit_code != 0 and "start" in r.output and "Fix" in r.output


def test_evaluate_reads_a_hand_written_ranges_file_with_spaces_after_its_commas(work, tmp_path):
    """A ranges file written by hand as 'start, end': its column ' end' was not found (refused)."""
    d = work
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    for name, text in (("times.csv", "start, end\n2024-01-01 06:40:00, 2024-01-01 06:59:00\n"), ("rows.csv", "start , end \n400 , 419 \n"),
                       ("quoted.csv", 'start, end\n"2024-01-01 06:40:00", "2024-01-01 06:59:00"\n')):
        (tmp_path / name).write_text(text)
        r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / name), "-o", str(tmp_path / name[:-4])])
        assert r.exit_code == 0, r.output
        assert json.loads((tmp_path / name[:-4] / "metrics.json").read_text())["n_anomalous_points"] == 20


def test_evaluate_matches_series_ids_written_with_spaces(tmp_path):
    """Series ids that carry a leading space (' a', ' b': a data file written 'x, a'): reading the ranges
    file with its spaces skipped made its ' b' into 'b', which labelled none of the scored points (refused
    as another unit); an id written without the space matches the one id it names without spaces."""
    rng = np.random.RandomState(0)
    n = 200
    df = pd.DataFrame({"series": [" a"] * n + [" b"] * n, "index": list(range(n)) * 2, "score": rng.rand(2 * n), "label": 0})
    df.loc[(df.series == " b") & df["index"].between(10, 20), "score"] += 5
    df.to_csv(tmp_path / "s.csv", index=False)
    for name, text in (("exact", "start,end,series\n10,20, b\n"), ("spaced", "start, end, series\n10, 20, b\n"),
                       ("bare", "start,end,series\n10,20,b\n"), ("quoted", 'start, end, series\n10, 20, "b"\n')):
        (tmp_path / f"{name}.csv").write_text(text)
        r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / f"{name}.csv"), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, (name, r.output)
        m = json.loads((tmp_path / name / "metrics.json").read_text())
        assert m["per_series"][" b"]["n_anomalous_points"] == 11 and m["per_series"][" b"]["point_auroc"] == 1.0, name


def test_columns_that_differ_only_by_spaces_are_told_apart(tmp_path):
    """A file holding 'temp' and ' temp' with a model of channel 'temp': matching names without their
    spaces refused --exclude ' temp' as naming the model's channel and dropped the note that ' temp' was
    not read. The exact name wins; a name without its spaces is matched only where nothing is exact."""
    rng = np.random.RandomState(0)
    n = 400
    pd.DataFrame({"time": pd.date_range("2024-01-01", periods=n, freq="min"), "temp": np.sin(np.arange(n) / 10),
                  " temp": rng.randn(n)}).to_csv(tmp_path / "dup.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "dup.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--channels", "temp",
                            "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "dup.csv"), "-o", str(tmp_path / "a.csv"), "--exclude", " temp"])
    assert r.exit_code == 0 and "not read" not in r.output, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "dup.csv"), "-o", str(tmp_path / "b.csv")])
    assert r.exit_code == 0 and "[' temp']" in r.output and "not read" in r.output, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "dup.csv"), "-o", str(tmp_path / "c.csv"), "--exclude", "temp"])
    assert r.exit_code != 0 and "names channel(s) of the model" in r.output


def test_stream_command_matches_batch(work):
    d = work
    runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(d / "scores.csv")])
    te = pd.read_csv(d / "test.csv")
    lines = "temp,pressure\n" + "\n".join(f"{a!r},{b!r}" for a, b in zip(te.temp, te.pressure)) + "\n"
    r = runner.invoke(app, ["stream", str(d / "model"), "--batch", "7"], input=lines)
    assert r.exit_code == 0, r.output
    rows = [ln.split(",") for ln in r.stdout.splitlines()]
    pts = [(int(x[1]), float(x[2])) for x in rows if x[0] == "point"]
    assert [i for i, _ in pts] == list(range(800))
    ref = pd.read_csv(d / "scores.csv").score
    np.testing.assert_allclose([s for _, s in pts], ref, rtol=1e-5, atol=1e-5 * max(1.0, float(ref.abs().max())))
    ev = pd.read_csv(d / "scores.events.csv")
    closes = [(int(x[1]), int(x[2])) for x in rows if x[0] == "close"]
    assert closes == list(zip(ev.start, ev.end))
    r = runner.invoke(app, ["stream", str(d / "model")], input="1,2,3\n")
    assert r.exit_code != 0 and "3 value(s)" in r.output


def test_series_cli_errors(work):
    d = work
    r = runner.invoke(app, ["fit", str(d / "train.csv"), "-o", str(d / "m2"), "--window", "32", "--channels", "temp,nope"])
    assert r.exit_code != 0 and "nope" in r.output and not (d / "m2").exists()
    r = runner.invoke(app, ["fit", str(d / "train.csv"), "-o", str(d / "m3"), "--window", "32"])  # 'status' is text
    assert r.exit_code != 0 and "status" in r.output and "Fix" in r.output
    _table(20, 2).to_csv(d / "short.csv", index=False)
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "short.csv"), "-o", str(d / "short_scores.csv")])
    assert r.exit_code != 0 and "shorter than the window" in " ".join(r.output.split()) and not (d / "short_scores.csv").exists()


def test_score_refuses_exclude_with_an_npy_series(work, tmp_path):
    """An NPY series has no column names: --exclude was dropped without a word when scoring it; refused now,
    as fit refuses it (the array's columns are the model's channels)."""
    d = work
    np.save(tmp_path / "te.npy", pd.read_csv(d / "test.csv")[["temp", "pressure"]].to_numpy())
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "te.npy"), "--exclude", "status", "-o", str(tmp_path / "s.csv")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "--exclude status" in out and "no column names" in out and "Fix:" in out, r.output
    assert not (tmp_path / "s.csv").exists()
    # another model written inside the series model (over its window detector) is refused before any work
    import shutil
    shutil.copytree(d / "model", tmp_path / "model")
    before = {p.name: p.read_bytes() for p in (tmp_path / "model" / "detector").iterdir() if p.is_file()}
    np.save(tmp_path / "x.npy", np.random.RandomState(0).randn(40, 2, 32).astype(np.float32))
    r = runner.invoke(app, ["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "model" / "detector"), "--overwrite", "--epochs", "1", "-q"])
    assert r.exit_code == 2 and "inside the series model" in " ".join(r.output.split()), r.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "model" / "detector").iterdir() if p.is_file()} == before


def test_series_id_column_and_parquet(tmp_path):
    a, b = _table(700, 3), _table(500, 4, anomaly=(300, 310))
    a["machine"], b["machine"] = "m1", "m2"
    both = pd.concat([a, b], ignore_index=True).drop(columns=["status"])
    both.to_parquet(tmp_path / "fleet.parquet")
    r = runner.invoke(app, ["fit", str(tmp_path / "fleet.parquet"), "-o", str(tmp_path / "m"), "--window", "32",
                            "--series-id", "machine", "--method", "fanogan", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "fleet.parquet"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    assert list(s.columns[:2]) == ["series", "index"] and s.series.tolist() == both.machine.tolist()
    sd = ganad.load(tmp_path / "m")
    assert sd.channels_ == ["temp", "pressure"]
    np.testing.assert_allclose(s.score[s.series == "m2"], sd.decision_function(b[["temp", "pressure"]].to_numpy()), rtol=1e-5, atol=1e-5)
    ev = pd.read_csv(tmp_path / "s.events.csv")
    assert set(ev.series) <= {"m1", "m2"}


def test_a_folder_of_series_files(tmp_path):
    (tmp_path / "train").mkdir()
    _table(600, 5).drop(columns=["status"]).to_csv(tmp_path / "train" / "a.csv", index=False)
    _table(500, 6).drop(columns=["status"]).to_csv(tmp_path / "train" / "b.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "train"), "-o", str(tmp_path / "m"), "--window", "32",
                            "--method", "fanogan", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "train"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    assert (s.series == "a.csv").sum() == 600 and (s.series == "b.csv").sum() == 500
    sd = ganad.load(tmp_path / "m")
    b = pd.read_csv(tmp_path / "train" / "b.csv")
    np.testing.assert_allclose(s.score[s.series == "b.csv"], sd.decision_function(b[["temp", "pressure"]].to_numpy()), rtol=1e-5, atol=1e-5)


def test_fit_warnings_name_the_file_and_the_cli_option(tmp_path):
    """A part between gaps shorter than the window is left out with a warning; from the CLI the
    warning names the file and the --gaps option, as the errors do (the API says X and gaps=...)."""
    import warnings

    from ganad.series.commands import fit_series
    t = np.r_[np.arange(100), np.arange(200, 210)]
    pd.DataFrame({"t": t, "a": np.sin(t / 5.0)}).to_csv(tmp_path / "s.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_series(tmp_path / "s.csv", tmp_path / "m", "ganomaly", {"epochs": 1}, 16, None, "t", None, None, "split", 0.05)
    msgs = [str(w.message) for w in caught if "shorter than the window" in str(w.message)]
    assert msgs and all(m.startswith(str(tmp_path / "s.csv")) and "--gaps ignore" in m for m in msgs)


def test_calibrate_refuses_a_series_models_detector_in_place(work, tmp_path):
    """On the series model's window detector in place `ganad calibrate` re-standardised the window
    scores under the series model's unchanged point threshold (the training points' median score
    moved by ~0.7 on one model), silently: refused with what to do instead."""
    import shutil
    from ganad.data.windows import make_windows
    d = work
    model = tmp_path / "model"
    shutil.copytree(d / "model", model)
    before = {p.name: p.read_bytes() for p in (model / "detector").iterdir() if p.is_file()}
    te = pd.read_csv(d / "test.csv")
    np.save(tmp_path / "w.npy", make_windows(te[["temp", "pressure"]].to_numpy()[:300], 32, 8)[0].astype(np.float32))
    for out in ([], ["-o", str(model / "detector")]):
        r = runner.invoke(app, ["calibrate", str(model / "detector"), str(tmp_path / "w.npy"), "-q", *out])
        out = " ".join(r.output.split())
        assert r.exit_code == 2 and "window detector of the series model" in out and "-o OTHER_DIR" in out, out
    assert {p.name: p.read_bytes() for p in (model / "detector").iterdir() if p.is_file()} == before
    r = runner.invoke(app, ["calibrate", str(model / "detector"), str(tmp_path / "w.npy"), "-q", "-o", str(tmp_path / "elsewhere")])
    assert r.exit_code == 0, r.output


def test_fit_event_gap_option(tmp_path):
    _table(600, 0).to_csv(tmp_path / "train.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "bad"), "--window", "32", "--channels", "temp,pressure",
                            "--event-gap", "-1", "--epochs", "1", "-q"])
    assert r.exit_code != 0 and "--event-gap" in r.output and "leave --event-gap out" in " ".join(r.output.split())
    assert not (tmp_path / "bad").exists()
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--window", "32", "--channels", "temp,pressure",
                            "--event-gap", "5", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m").event_gap_ == 5


def test_evaluate_reads_the_event_column_per_series_and_names_a_bad_one(tmp_path):
    """Event-wise figures come from the scores file's event column, per series (rows interleaved);
    a file without it counts events on the labels; a column with holes (rows written without it,
    concatenated with newer ones) is refused naming the column, not with a mangled label message."""
    n = 120
    lab = np.zeros(n, dtype=int)
    lab[[10, 13, 16, 60]] = 1
    ev = lab.copy()
    ev[10:17] = 1  # the first three runs are one event: gaps of 2 bridged
    score = np.linspace(0, 0.5, n) + lab
    one = pd.DataFrame({"index": np.arange(n), "score": score, "label": lab, "event": ev})
    both = pd.concat([one.assign(series="a"), one.assign(series="b")]).sort_index(kind="stable").reset_index(drop=True)
    both["index"] = np.arange(len(both))  # a, b, a, b, ...: rows of the two series interleaved
    both = both[["series", "index", "score", "label", "event"]]
    both.to_csv(tmp_path / "s.csv", index=False)
    both.drop(columns=["event"]).to_csv(tmp_path / "old.csv", index=False)
    pd.DataFrame({"series": ["a", "b"], "start": [20, 21], "end": [33, 34]}).to_csv(tmp_path / "rg.csv", index=False)  # rows 10-16 of each
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "rg.csv"), "--max-buffer", "2", "-o", str(tmp_path / "e1")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    assert m["n_series"] == 2 and m["mean_event_precision"] == pytest.approx(0.5)  # 2 events, one true
    r = runner.invoke(app, ["evaluate", str(tmp_path / "old.csv"), "--ranges", str(tmp_path / "rg.csv"), "--max-buffer", "2", "-o", str(tmp_path / "e2")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e2" / "metrics.json").read_text())["mean_event_precision"] == pytest.approx(0.75)  # 4 runs, 3 true
    both.loc[both.series == "b", "event"] = np.nan
    both.to_csv(tmp_path / "mixed.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "mixed.csv"), "--ranges", str(tmp_path / "rg.csv"), "-o", str(tmp_path / "e3")])
    out = " ".join(r.output.split())
    assert r.exit_code != 0 and "'event' column" in out and "row 1 " in out and "y_pred" not in out and not (tmp_path / "e3").exists()


def test_series_options_without_window_are_refused(tmp_path):
    """A series option given without --window (series mode off) would be ignored: refused, nothing written."""
    _table(300, 0).to_csv(tmp_path / "t.csv", index=False)
    for extra in (["--event-gap", "5"], ["--stride", "4"], ["--channels", "temp"], ["--gaps", "ignore"], ["--point-contamination", "0.02"]):
        r = runner.invoke(app, ["fit", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q", *extra])
        assert r.exit_code != 0 and extra[0] in r.output and "--window" in r.output, (extra, r.output)
        assert not (tmp_path / "m").exists()


def test_evaluate_names_the_series_left_out_and_counts_their_false_events(tmp_path):
    """A series without a labelled anomaly cannot enter the per-series means (AUROC / VUS need both
    classes); it is listed, and the events predicted in it (false alarms all) are counted, instead of
    vanishing from the evaluation."""
    n = 80
    rows = []
    for sid, ev_runs in (("a", [(10, 14)]), ("quiet", [(5, 6), (40, 45), (70, 70)])):
        ev = np.zeros(n, dtype=int)
        for s_, e_ in ev_runs:
            ev[s_:e_ + 1] = 1
        rows.append(pd.DataFrame({"series": sid, "score": np.linspace(0, 0.5, n) + ev, "label": ev, "event": ev}))
    df = pd.concat(rows, ignore_index=True)
    df.insert(1, "index", np.arange(len(df)))
    df.to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"series": ["a"], "start": [10], "end": [14]}).to_csv(tmp_path / "rg.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "rg.csv"), "--max-buffer", "2", "-o", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n_series"] == 1 and m["n_series_skipped"] == 1 and m["skipped_series"] == ["quiet"]
    assert m["false_events_in_skipped_series"] == 3
    assert "left out of the means" in r.output and "quiet" in r.output


def test_fractional_ranges_against_whole_number_times_are_not_truncated(tmp_path):
    """Ranges with a decimal point are times; against a whole-number time column 102.5-104.0 covers times
    103 and 104 (the bounds were cast to the column's integer type: 102 was labelled too)."""
    from ganad.series.commands import _range_labels
    df = pd.DataFrame({"index": np.arange(10), "time": np.arange(100, 110)})
    pd.DataFrame({"start": [102.5], "end": [104.0]}).to_csv(tmp_path / "rg.csv", index=False)
    assert np.flatnonzero(_range_labels(df, tmp_path / "rg.csv")).tolist() == [3, 4]


def test_channel_named_with_a_comma_through_channels_stream_and_close_lines(tmp_path):
    """A channel named 'valve,open' (pandas quotes it in the header): --channels takes it quoted as in
    a CSV header, `ganad stream` reads the quoted header (it was split at the comma and refused), and
    a close line quotes its channels field so that it still has five CSV fields."""
    import csv
    tr, te = _table(1200, 0), _table(600, 1, anomaly=(300, 319))
    tr, te = (df.rename(columns={"pressure": "valve,open"}) for df in (tr, te))
    tr.to_csv(tmp_path / "train.csv", index=False)
    te.to_csv(tmp_path / "test.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--window", "32", "--stride", "8",
                            "--channels", 'temp, "valve,open"', "--method", "fanogan", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m").channels_ == ["temp", "valve,open"]
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv"), "--exclude", "status"])
    assert r.exit_code == 0, r.output
    ev = pd.read_csv(tmp_path / "s.events.csv")
    lines = te[["time", "valve,open", "temp"]].to_csv(index=False)  # the header names the channels in another order
    r = runner.invoke(app, ["stream", str(tmp_path / "m"), "--has-time"], input=lines)
    assert r.exit_code == 0, r.output
    closes = [x for x in csv.reader(r.stdout.splitlines()) if x[0] == "close"]
    assert len(closes) == len(ev) >= 1 and all(len(x) == 5 for x in closes)
    assert [x[4] for x in closes] == ev.channels.tolist() and any("valve,open=" in x[4] for x in closes)


def test_zoned_times_are_written_as_utc_instants_and_ranges_compare_by_instant(tmp_path):
    """A time column with an offset (+01:00) used to come out as bare UTC wall times, an hour off
    the input with nothing to say so; now the UTC instant marked +00:00, and ranges in any zone match."""
    T = 1500
    t = pd.date_range("2024-01-01", periods=T, freq="5min", tz="Europe/Berlin")
    v = np.sin(np.arange(T) / 10) + 0.05 * np.random.RandomState(0).randn(T)
    v[1200:1215] += 4
    pd.DataFrame({"timestamp": t.astype(str), "v": v}).iloc[:1000].to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"timestamp": t.astype(str), "v": v}).iloc[1000:].to_csv(tmp_path / "test.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "--window", "32", "--epochs", "1", "-o", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    assert s["time"][0] == "2024-01-04 10:20:00+00:00"  # the input's 2024-01-04 11:20:00+01:00
    assert (pd.to_datetime(s["time"]) == t[1000:].tz_convert("UTC")).all()
    ev = pd.read_csv(tmp_path / "s.events.csv")
    assert ev["start_time"].str.endswith("+00:00").all()
    # the same range in Berlin time and in UTC labels the same points
    for name, zone in (("berlin", "Europe/Berlin"), ("utc", "UTC")):
        a, b = t[1195].tz_convert(zone), t[1220].tz_convert(zone)
        pd.DataFrame({"start": [str(a)], "end": [str(b)]}).to_csv(tmp_path / f"{name}.csv", index=False)
        r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / f"{name}.csv"), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    m1 = json.loads((tmp_path / "berlin" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "utc" / "metrics.json").read_text())
    assert m1 == m2 and m1["point_auroc"] > 0.9


def test_stream_reads_a_header_after_a_byte_order_mark(work):
    """A CSV saved with a UTF-8 byte-order mark (Excel's 'CSV UTF-8'): `ganad score` reads it, but
    `ganad stream` read its header as naming a channel '\\ufefftemp' and refused the stream."""
    d = work
    te = pd.read_csv(d / "test.csv")
    body = "\n".join(f"{a!r},{b!r}" for a, b in zip(te.temp, te.pressure)) + "\n"
    plain = runner.invoke(app, ["stream", str(d / "model")], input="temp,pressure\n" + body)
    r = runner.invoke(app, ["stream", str(d / "model")], input="\ufefftemp,pressure\n" + body)
    assert r.exit_code == 0, r.output
    assert r.stdout == plain.stdout


def _fit_and_score(tmp_path, channels):
    """`ganad fit` on tmp_path/train.csv (its channels checked), `ganad score` of tmp_path/test.csv: the scores."""
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m").channels_ == channels
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    return pd.read_csv(tmp_path / "s.csv").score


def test_stream_reads_a_header_of_channels_named_by_numbers(tmp_path):
    """Sensors named by numbers ('time,101,102'): `ganad fit` / `ganad score` read the first line as a
    header (its time cell is no number), but `ganad stream --has-time` read it as a data point: 121
    points for 120 rows, every index one off the scores file's, and a false event at point 0."""
    tab = _table(400, 0).drop(columns=["status"]).rename(columns={"temp": "101", "pressure": "102"})
    tab.to_csv(tmp_path / "train.csv", index=False)
    tab.iloc[:120].to_csv(tmp_path / "test.csv", index=False)
    ref = _fit_and_score(tmp_path, ["101", "102"])
    for header in ("time,101,102", "time,102,101"):
        cols = header.split(",")[1:]
        body = "\n".join(f"{t},{a!r},{b!r}" for t, a, b in zip(tab.time[:120], tab[cols[0]][:120], tab[cols[1]][:120]))
        r = runner.invoke(app, ["stream", str(tmp_path / "m"), "--has-time"], input=f"{header}\n{body}\n")
        assert r.exit_code == 0, r.output
        pts = [(int(x[1]), float(x[2])) for x in (ln.split(",") for ln in r.stdout.splitlines()) if x[0] == "point"]
        assert [i for i, _ in pts] == list(range(120))
        np.testing.assert_allclose([v for _, v in pts], ref, rtol=1e-5, atol=1e-5 * max(1.0, float(ref.abs().max())))


def test_stream_reads_a_first_data_line_whose_values_equal_number_names_as_data(tmp_path):
    """Channels named by numbers ('1', '2'): a first data line whose values are those names ('…,2,1') was
    taken for a header since the reading above, dropping that point and reading every later line with
    its channels swapped. Only a first line whose time cell names the model's time column is a header."""
    tab = _table(400, 0).drop(columns=["status"]).rename(columns={"temp": "1", "pressure": "2"})
    tab.loc[0, ["1", "2"]] = [2.0, 1.0]
    tab.to_csv(tmp_path / "train.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    body = "\n".join(f"{t},{a:g},{b:g}" for t, a, b in zip(tab.time[:120], tab["1"][:120], tab["2"][:120]))
    assert body.split("\n")[0].endswith(",2,1")
    outs = []
    for text in (body, "time,1,2\n" + body):
        r = runner.invoke(app, ["stream", str(tmp_path / "m"), "--has-time"], input=text + "\n")
        assert r.exit_code == 0, r.output
        outs.append(r.stdout)
    pts = [ln for ln in outs[0].splitlines() if ln.startswith("point,")]
    assert len(pts) == 120 and outs[0] == outs[1]


def test_stream_headers_of_models_fitted_from_python(tmp_path):
    """A model fitted from Python keeps no time column name: its header 'time,101,102' (channels named by
    numbers) was read as a data point once a header's time cell had to name the model's time column, and
    a model whose channel names repeat ('a', 'a') refused its own header."""
    from ganad.series.commands import stream_lines
    rng = np.random.RandomState(0)
    t = pd.date_range("2024-01-01", periods=300, freq="min")
    for cols, header in ((["101", "102"], "time,101,102"), (["1", "b"], "time,b,1"), (["a", "a"], "time,a,a")):
        X = pd.DataFrame(rng.standard_normal((300, 2)), columns=cols)
        SeriesDetector("ganomaly", window=16, stride=4, detector_params={"epochs": 1, "random_state": 0}).fit(X, time=t)\
            .save(tmp_path / header)
        body = [f"{t[i]},{float(X.iloc[i, 0])!r},{float(X.iloc[i, 1])!r}\n" for i in range(20)] if header != "time,b,1" else \
            [f"{t[i]},{float(X.iloc[i, 1])!r},{float(X.iloc[i, 0])!r}\n" for i in range(20)]
        out: list = []
        stream_lines(tmp_path / header, [header + "\n"] + body, out.append, has_time=True)
        pts = [ln for chunk in out for ln in chunk.splitlines() if ln.startswith("point,")]
        plain: list = []
        stream_lines(tmp_path / header, [f"{t[i]},{float(X.iloc[i, 0])!r},{float(X.iloc[i, 1])!r}\n" for i in range(20)], plain.append, has_time=True)
        assert len(pts) == 20 and out == plain, header


def test_stream_reads_a_header_naming_channels_like_numbers_without_a_time(tmp_path):
    """A header naming the model's channels where one is named like a number ('temp,7', a series without a time
    column) was refused as 'not 2 numbers' without --has-time (only a first line with no number in it was a
    header), where `ganad score` and /series read the same file by name."""
    from ganad.series.commands import stream_lines
    X = pd.DataFrame(np.random.RandomState(0).standard_normal((300, 2)), columns=["temp", "7"])
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "width": 8, "random_state": 0})
    sd.fit(X).save(tmp_path / "m")
    Y = X.iloc[:40]
    for header, cols in (("temp,7", ["temp", "7"]), ("7,temp", ["7", "temp"]), ('"7","temp"', ["7", "temp"]), ("temp, 7", ["temp", "7"])):
        out: list = []
        stream_lines(tmp_path / "m", [header + "\n"] + [",".join(repr(float(v)) for v in r) + "\n" for r in Y[cols].to_numpy()],
                     out.append)
        pts = [float(x[2]) for x in (ln.split(",") for ln in "".join(out).splitlines()) if x[0] == "point"]
        np.testing.assert_allclose(pts, sd.decision_function(Y), rtol=1e-6, atol=1e-6)


def test_stream_reads_the_default_header_of_a_model_fitted_from_a_dataframe_of_an_array(tmp_path):
    """A model fitted from pd.DataFrame(array) has channels '0', '1': the header '0,1' of pd.DataFrame(array).to_csv()
    (and 'time,1,0' with --has-time) names them, and `ganad score` and /series read it as the header, but the stream
    read it as a data point: one point more than the file holds, every index shifted by one."""
    from ganad.series.commands import stream_lines
    X = pd.DataFrame(np.random.RandomState(0).standard_normal((300, 2)))
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "width": 8, "random_state": 0})
    sd.fit(X).save(tmp_path / "m")
    Y = X.iloc[:40]
    t = pd.date_range("2024-01-01", periods=40, freq="min")
    for header, cols, has_time in (("0,1", [0, 1], False), ("time,1,0", [1, 0], True)):
        rows = [(f"{t[i]}," if has_time else "") + ",".join(repr(float(v)) for v in Y[cols].to_numpy()[i]) + "\n" for i in range(40)]
        out: list = []
        stream_lines(tmp_path / "m", [header + "\n"] + rows, out.append, has_time=has_time)
        pts = [float(x[2]) for x in (ln.split(",") for ln in "".join(out).splitlines()) if x[0] == "point"]
        np.testing.assert_allclose(pts, sd.decision_function(Y), rtol=1e-6, atol=1e-6)
    out = []  # a later line '0,1' is a data point (not the header repeated by a rotated file)
    stream_lines(tmp_path / "m", ["0,1\n", "0,1\n"] + [",".join(repr(float(v)) for v in r) + "\n" for r in Y.to_numpy()], out.append)
    assert sum(ln.startswith("point,") for ln in "".join(out).splitlines()) == 41
    out = []  # a first line of other numbers is still a data point
    stream_lines(tmp_path / "m", ["1,0\n"] + [",".join(repr(float(v)) for v in r) + "\n" for r in Y.to_numpy()], out.append)
    assert sum(ln.startswith("point,") for ln in "".join(out).splitlines()) == 41


def test_stream_reads_a_first_line_with_a_time_numpy_cannot_parse_as_data(tmp_path):
    """--has-time with a model fitted from Python (no time column name kept): a first line's time cell that numpy
    cannot parse but pandas reads as a time ('00:00:00', '01/01/2024 00:00') is a data line, also where its values
    equal the model's number-named channels ('1,0' for pd.DataFrame(array)'s '0', '1'); it was read as a header, the
    point dropped and every later line's channels swapped without a word."""
    from ganad.series.commands import stream_lines
    X = pd.DataFrame(np.random.RandomState(0).standard_normal((300, 2)))
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "width": 8, "random_state": 0})
    sd.fit(X).save(tmp_path / "m")
    Y = X.iloc[:40].to_numpy().copy()
    Y[0] = [1.0, 0.0]
    t = pd.date_range("2024-01-01", periods=40, freq="min")
    for fmt in ("%H:%M:%S", "%d/%m/%Y %H:%M"):
        rows = [f"{t[i].strftime(fmt)},{'1,0' if i == 0 else ','.join(repr(float(v)) for v in Y[i])}\n" for i in range(40)]
        out: list = []
        stream_lines(tmp_path / "m", rows, out.append, has_time=True)
        pts = [float(x[2]) for x in (ln.split(",") for ln in "".join(out).splitlines()) if x[0] == "point"]
        np.testing.assert_allclose(pts, sd.decision_function(Y), rtol=1e-6, atol=1e-6)
    out = []  # a header's time cell is still one: 'time,1,0'
    stream_lines(tmp_path / "m", ["time,1,0\n"] + [f"{t[i]},{float(Y[i, 1])!r},{float(Y[i, 0])!r}\n" for i in range(40)], out.append, has_time=True)
    assert sum(ln.startswith("point,") for ln in "".join(out).splitlines()) == 40


def test_stream_warns_where_a_later_line_repeats_a_header_of_numbers_only(tmp_path, caplog):
    """A header of numbers only ('0,1' for a model fitted from pd.DataFrame(array)) repeated by a later line (a rotated
    file's header, or a data point equal to it) is read as a data point: said with a warning (once), not silently."""
    import logging

    from ganad.series.commands import stream_lines
    X = pd.DataFrame(np.random.RandomState(0).standard_normal((300, 2)))
    SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "width": 8, "random_state": 0}).fit(X)\
        .save(tmp_path / "m")
    rows = [",".join(repr(float(v)) for v in r) + "\n" for r in X.iloc[:20].to_numpy()]
    out: list = []
    with caplog.at_level(logging.WARNING, logger="ganad"):
        stream_lines(tmp_path / "m", ["0,1\n"] + rows[:10] + ["0,1\n"] + rows[10:] + ["0,1\n"], out.append)
    assert sum(ln.startswith("point,") for ln in "".join(out).splitlines()) == 22
    said = [r.getMessage() for r in caplog.records if "repeats the header" in r.getMessage()]
    assert len(said) == 1 and "stdin line 12" in said[0], caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganad"):  # a header with a name is skipped where repeated, without a word
        stream_lines(tmp_path / "m", ["time,0,1\n"] + [f"{i}," + r for i, r in enumerate(rows)] + ["time,0,1\n"], [].append,
                     has_time=True)
    assert "repeats the header" not in caplog.text


def test_stream_reads_the_header_of_a_dataframe_written_with_its_time_index(tmp_path):
    """--has-time with a model fitted from pd.DataFrame(array): df.to_csv() of a frame indexed by time writes the
    header ',0,1' (the index unnamed); numpy reads the empty time cell as NaT, so the header was scored as a point
    (0, 1), and a header ',1,0' (columns reordered) as (1, 0) with every later line's channels swapped."""
    from ganad.series.commands import stream_lines
    X = pd.DataFrame(np.random.RandomState(0).standard_normal((300, 2)))
    sd = SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "width": 8, "random_state": 0})
    sd.fit(X).save(tmp_path / "m")
    Y = X.iloc[:40].set_axis(pd.date_range("2024-01-01", periods=40, freq="min"))
    for cols in (["0", "1"], ["1", "0"]):
        Y.columns = X.columns.astype(str)
        Y[cols].to_csv(tmp_path / "y.csv")
        out: list = []
        stream_lines(tmp_path / "m", (tmp_path / "y.csv").read_text().splitlines(keepends=True), out.append, has_time=True)
        pts = [float(x[2]) for x in (ln.split(",") for ln in "".join(out).splitlines()) if x[0] == "point"]
        np.testing.assert_allclose(pts, sd.decision_function(X.iloc[:40].to_numpy()), rtol=1e-6, atol=1e-6)


def test_stream_reads_a_header_with_a_space_after_each_comma(tmp_path):
    """A header written 'time, temp, pressure': pandas keeps the spaces, so `ganad fit` made the channels
    ' temp', ' pressure' and `ganad score` read the file, but `ganad stream --has-time` stripped the header's
    names and refused the same file (a header naming ['temp', 'pressure'], the model's channels [' temp', ...])."""
    tab = _table(400, 0).drop(columns=["status"])
    for name, df in (("train.csv", tab), ("test.csv", tab.iloc[:120])):
        head, body = df.to_csv(index=False).split("\n", 1)
        (tmp_path / name).write_text(head.replace(",", ", ") + "\n" + body)
    ref = _fit_and_score(tmp_path, [" temp", " pressure"])
    for header in ("time, temp, pressure", "time, pressure, temp"):
        cols = [c.strip() for c in header.split(",")[1:]]
        body = "\n".join(f"{t},{a!r},{b!r}" for t, a, b in zip(tab.time[:120], tab[cols[0]][:120], tab[cols[1]][:120]))
        r = runner.invoke(app, ["stream", str(tmp_path / "m"), "--has-time"], input=f"{header}\n{body}\n")
        assert r.exit_code == 0, r.output
        pts = [float(x[2]) for x in (ln.split(",") for ln in r.stdout.splitlines()) if x[0] == "point"]
        np.testing.assert_allclose(pts, ref, rtol=1e-5, atol=1e-5 * max(1.0, float(ref.abs().max())))


def test_stream_reads_a_csv_whose_fields_are_quoted(work, tmp_path):
    """A CSV written with every field quoted (csv.QUOTE_ALL, as some loggers and spreadsheets export):
    `ganad score` reads it, `ganad stream` refused every line as not numbers."""
    import csv
    d = work
    te = pd.read_csv(d / "test.csv")[["time", "temp", "pressure"]]
    te.to_csv(tmp_path / "q.csv", index=False, quoting=csv.QUOTE_ALL)
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "q.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    ref = pd.read_csv(tmp_path / "s.csv").score
    r = runner.invoke(app, ["stream", str(d / "model"), "--has-time"], input=(tmp_path / "q.csv").read_text())
    assert r.exit_code == 0, r.output
    pts = [float(x[2]) for x in (ln.split(",") for ln in r.stdout.splitlines()) if x[0] == "point"]
    np.testing.assert_allclose(pts, ref, rtol=1e-5, atol=1e-5 * max(1.0, float(ref.abs().max())))
    r = runner.invoke(app, ["stream", str(d / "model")], input='temp,pressure\n1.5,"2.5\n')  # an unterminated quote: refused
    assert r.exit_code == 2 and "stdin line 2" in r.output


def test_scoring_a_folder_names_the_file_of_a_short_series_or_a_time_going_back(work, tmp_path):
    """A folder of series whose second file was shorter than the window crashed with
    AttributeError ('str' object has no attribute 'item', the file names are an object array); a
    time going back in the second file was reported at a row of the joined files (row 810 of a
    folder of two files of 800 and 20 rows) without naming the file."""
    d = work
    te = pd.read_csv(d / "test.csv").drop(columns=["status"])
    (tmp_path / "f").mkdir()
    te.to_csv(tmp_path / "f" / "a.csv", index=False)
    te.iloc[:20].to_csv(tmp_path / "f" / "b.csv", index=False)
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "f"), "-o", str(tmp_path / "s.csv")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "(series 'b.csv', its row" in out and "shorter than the window" in out and "Fix:" in out, r.output
    b = te.iloc[:100].copy()
    b.loc[10, "time"] = b.loc[5, "time"]
    b.to_csv(tmp_path / "f" / "b.csv", index=False)
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "f"), "-o", str(tmp_path / "s.csv")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "row 810 (series 'b.csv', its row 10)" in out and "Fix:" in out, r.output
    assert not (tmp_path / "s.csv").exists()
    # a column the model does not read is named in a note for a folder too, as for one file (it was silent)
    pd.read_csv(d / "test.csv").iloc[:100].to_csv(tmp_path / "f" / "b.csv", index=False)  # with its text column 'status'
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "f"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0 and "column(s) ['status']" in " ".join(r.output.split()) and "were not read" in r.output, r.output


def test_stream_skips_a_rotated_files_header_but_refuses_other_text(work):
    """`tail -F` on a rotated file sends the new file's header mid-stream: it ended the stream with an
    error; a line identical to the header read first is skipped now, any other text is still refused."""
    d = work
    te = pd.read_csv(d / "test.csv")
    rows = [f"{a!r},{b!r}" for a, b in zip(te.temp, te.pressure)]
    plain = runner.invoke(app, ["stream", str(d / "model")], input="temp,pressure\n" + "\n".join(rows) + "\n")
    assert plain.exit_code == 0, plain.output
    rotated = "temp,pressure\n" + "\n".join(rows[:300]) + "\n \ufefftemp,pressure \n" + "\n".join(rows[300:]) + "\n"
    r = runner.invoke(app, ["stream", str(d / "model"), "--batch", "5"], input=rotated)
    assert r.exit_code == 0, r.output
    assert [ln for ln in r.stdout.splitlines() if ln.startswith("point")] == [ln for ln in plain.stdout.splitlines() if ln.startswith("point")]
    # another text line (here a header in another order) is no repeat: refused with its line number
    r = runner.invoke(app, ["stream", str(d / "model")], input="temp,pressure\n" + "\n".join(rows[:50]) + "\npressure,temp\n")
    assert r.exit_code != 0 and "stdin line 52" in r.output and "Fix" in r.output
    # without a header first, a header-like line mid-stream is refused as before
    r = runner.invoke(app, ["stream", str(d / "model")], input="\n".join(rows[:50]) + "\ntemp,pressure\n")
    assert r.exit_code != 0 and "stdin line 51" in r.output


def test_stream_reads_the_separator_and_decimal_mark_of_fit(tmp_path):
    """A model trained with `ganad fit --sep ';' --decimal ','` could not be streamed from the same
    kind of lines: `ganad stream` had no --sep / --decimal."""
    tr, te = _table(1200, 0).drop(columns=["status"]), _table(300, 1, anomaly=(150, 160)).drop(columns=["status"])
    tr.to_csv(tmp_path / "train.csv", index=False, sep=";", decimal=",")
    te.to_csv(tmp_path / "test.csv", index=False, sep=";", decimal=",")
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--window", "32", "--stride", "8",
                            "--method", "fanogan", "--epochs", "1", "-q", "--sep", ";", "--decimal", ","])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv"),
                            "--sep", ";", "--decimal", ","])
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "test.csv").read_text()
    assert "," in lines.splitlines()[1]  # decimal commas
    r = runner.invoke(app, ["stream", str(tmp_path / "m"), "--has-time", "--sep", ";", "--decimal", ",", "--batch", "9"], input=lines)
    assert r.exit_code == 0, r.output
    pts = [float(x.split(",")[2]) for x in r.stdout.splitlines() if x.startswith("point")]
    ref = pd.read_csv(tmp_path / "s.csv").score
    np.testing.assert_allclose(pts, ref, rtol=1e-5, atol=1e-5 * max(1.0, float(ref.abs().max())))
    # without them the lines are refused with the options named
    r = runner.invoke(app, ["stream", str(tmp_path / "m"), "--has-time"], input=lines)
    assert r.exit_code != 0 and "--sep" in r.output and "Fix" in r.output
    r = runner.invoke(app, ["stream", str(tmp_path / "m"), "--sep", ";", "--decimal", ";"], input=lines)
    assert r.exit_code != 0 and "--decimal" in r.output and "Fix" in r.output


def test_score_of_a_series_refuses_chunk_rows_and_leaves_no_folder(work, tmp_path):
    """--chunk-rows was ignored without a word for a series model (a series is read whole); a refused
    series file leaves no (empty) folder for the scores behind."""
    d = work
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "new" / "s.csv"), "--chunk-rows", "100"])
    assert r.exit_code == 2 and "--chunk-rows 100" in " ".join(r.output.split()) and "Fix" in r.output, r.output
    assert not (tmp_path / "new").exists()
    _table(20, 2).to_csv(tmp_path / "short.csv", index=False)
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "short.csv"), "-o", str(tmp_path / "new" / "s.csv")])
    assert r.exit_code == 2 and "shorter than the window" in " ".join(r.output.split()) and not (tmp_path / "new").exists()


def test_a_failed_events_write_leaves_no_scores_file(work, tmp_path, monkeypatch):
    """The scores file was put in place before the events file was written: a failure writing the
    events left scores without their events. Both are now written before either is put in place."""
    d = work
    real = pd.DataFrame.to_csv

    def to_csv(self, path, *a, **k):
        if "peak_score" in self.columns:
            raise OSError("disk full")
        return real(self, path, *a, **k)

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code != 0 and isinstance(r.exception, OSError), r.output
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s.events.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], list(tmp_path.iterdir())
    # the `ganad` command says it in one line, exit 1, no traceback
    import sys

    from ganad.cli import main
    monkeypatch.setattr(sys, "argv", ["ganad", "score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "s.csv")])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 1


def test_calibrate_a_series_model_sets_its_point_threshold_on_normal_series(work, tmp_path):
    """A series model moved to another machine whose normal level differs: `ganad calibrate MODEL
    normal.csv` (SeriesDetector.calibrate) sets the point threshold on that normal series, without labels
    and without changing a score; it used to be refused ("fit it again")."""
    import shutil
    d = work
    model = tmp_path / "model"
    shutil.copytree(d / "model", model)
    before = {p.name: p.read_bytes() for p in (model / "detector").iterdir() if p.is_file()}
    other = _table(1200, 5)
    other["temp"] += 0.4  # another machine: a slightly different normal level
    other.to_csv(tmp_path / "normal2.csv", index=False)
    sd0 = ganad.load(model)
    s_other = sd0.decision_function(other[["temp", "pressure"]].to_numpy())
    assert np.mean(s_other > sd0.threshold_) > 0.05  # the training threshold flags much of the new normal series
    r = runner.invoke(app, ["calibrate", str(model), str(tmp_path / "normal2.csv"), "--threshold", "fpr", "--fpr", "0.01"])
    assert r.exit_code == 0, r.output
    assert "were not read" in r.output  # the status column, as `ganad score` notes it
    sd = ganad.load(model)
    assert sd.calibration_["threshold"] == "fpr" and sd.calibration_["n_points"] == int(np.isfinite(s_other).sum())
    assert np.mean(s_other > sd.threshold_) <= 0.01 and sd.threshold_ > sd0.threshold_
    assert {p.name: p.read_bytes() for p in (model / "detector").iterdir() if p.is_file()} == before  # scores unchanged
    r = runner.invoke(app, ["score", str(model), str(tmp_path / "normal2.csv"), "-o", str(tmp_path / "s.csv"), "--exclude", "status"])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "s.csv").label.mean() <= 0.01
    # -o writes a calibrated copy; the label-based options are refused, naming what a series calibration takes
    r = runner.invoke(app, ["calibrate", str(model), str(tmp_path / "normal2.csv"), "-o", str(tmp_path / "m2"), "--contamination", "0.02"])
    assert r.exit_code == 0 and ganad.load(tmp_path / "m2").calibration_["contamination"] == 0.02, r.output
    for bad, expect in ((["--threshold", "f1"], "--threshold f1"), (["--compose", "svm"], "--compose svm"),
                        (["--labels", str(tmp_path / "s.csv")], "--labels")):
        r = runner.invoke(app, ["calibrate", str(model), str(tmp_path / "normal2.csv"), *bad])
        out = " ".join(r.output.split())
        assert r.exit_code == 2 and expect in out and "without labels" in out, out


def test_calibrate_a_series_model_prints_and_saves_the_fpr_achieved_on_tied_point_scores(work, tmp_path):
    """`ganad calibrate MODEL normal.csv --threshold fpr`: the point scores tie in runs of the stride (8 of
    1200 points here), so --fpr 0.005 (6 points) flags none. The table shows the rate achieved beside the
    target, the tied run and the next rate; series.json keeps them; a warning line names the stride."""
    _table(1200, 5).to_csv(tmp_path / "normal2.csv", index=False)
    r = runner.invoke(app, ["calibrate", str(work / "model"), str(tmp_path / "normal2.csv"), "--threshold", "fpr", "--fpr", "0.005",
                            "-o", str(tmp_path / "m"), "--exclude", "status"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "warning: threshold='fpr': flags 0 of the 1200 calibration points (an achieved rate of 0), under half the target fpr=0.005" in out
    assert "at stride 8 the 8 points between two window starts" in out and "smaller stride than 8" in out
    cal = json.loads((tmp_path / "m" / "series.json").read_text())["state"]["calibration"]
    assert (cal["fpr"], cal["achieved_fpr"]) == (0.005, 0.0) and cal["tied_at_threshold"] % 8 == 0
    assert cal["next_fpr"] == cal["tied_at_threshold"] / 1200 and ganad.load(tmp_path / "m").calibration_ == cal
    assert "achieved_fpr │ 0.0000" in out and f"tied_at_threshold │ {cal['tied_at_threshold']}" in out and "next_fpr │" in out


def test_series_detector_calibrate_in_python(tmp_path):
    from ganad.exceptions import InputError
    from ganad.series import SeriesDetector
    rng = np.random.RandomState(0)
    t = np.arange(3000)
    train = np.sin(t / 15)[:, None] + 0.05 * rng.randn(3000, 1)
    sd = SeriesDetector("ganomaly", window=32, stride=8, detector_params=dict(epochs=1)).fit(train)
    new = np.sin(t[:1500] / 15)[:, None] * 1.3 + 0.08 * rng.randn(1500, 1)
    s = sd.decision_function(new)
    sd.calibrate(new, contamination=0.02)
    assert abs(np.mean(s > sd.threshold_) - 0.02) <= 0.002
    np.testing.assert_array_equal(sd.decision_function(new), s)
    sd.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert back.threshold_ == sd.threshold_ and back.calibration_ == sd.calibration_
    np.testing.assert_array_equal(back.predict(new), sd.predict(new))
    with pytest.raises(InputError, match="threshold"):
        sd.calibrate(new, threshold="f1")
    with pytest.raises(InputError, match="contamination"):
        sd.calibrate(new, threshold="fpr", contamination=0.1)
    sd.fit(train)
    assert getattr(sd, "calibration_", None) is None


def test_series_calibrate_fpr_on_point_scores_tied_in_runs_records_and_warns_of_the_rate_achieved():
    """Point scores tie in runs of one stride: at stride 32 on 1500 points a run is 0.021 of them, and
    fpr=0.01 flags none (the threshold passes over the whole run). The rate taken is the best the runs
    allow; calibration_ records it, the run tied at the threshold and the next rate, and a warning names
    them, the stride and the fpr of that next rate (which then is reached). At stride 8 (runs of 0.005)
    1 % gives 0.008: no warning."""
    import warnings
    rng = np.random.RandomState(0)
    t = np.arange(3000)
    train = np.sin(t / 15)[:, None] + 0.05 * rng.randn(3000, 1)
    new = np.sin(t[:1500] / 15)[:, None] * 1.3 + 0.08 * rng.randn(1500, 1)
    sd = SeriesDetector("ganomaly", window=32, stride=32, detector_params=dict(epochs=1, random_state=0)).fit(train)
    s = sd.decision_function(new)
    with pytest.warns(UserWarning, match=r"threshold='fpr': flags 0 of the 1500 calibration points \(an achieved rate of 0\), under "
                                         r"half the target fpr=0.01: \d+ of them tie .*stride 32.*smaller stride than 32"):
        sd.calibrate(new, threshold="fpr", fpr=0.01)
    cal = sd.calibration_
    rates = np.array([np.mean(s > v) for v in np.unique(s)])
    assert cal["fpr"] == 0.01 and cal["achieved_fpr"] == rates[rates <= 0.01].max() == np.mean(s > sd.threshold_) == 0.0
    assert cal["tied_at_threshold"] == np.sum(s == sd.threshold_) >= 32 and cal["next_fpr"] == cal["tied_at_threshold"] / 1500
    with warnings.catch_warnings(record=True) as w:  # the fpr the warning names reaches the next rate
        warnings.simplefilter("always")
        sd.calibrate(new, threshold="fpr", fpr=0.01)
    suggested = float(str(w[0].message).split("pass fpr=")[1].split(" ")[0])
    sd.calibrate(new, threshold="fpr", fpr=suggested)
    assert sd.calibration_["achieved_fpr"] == cal["next_fpr"] == np.mean(sd.predict(new))
    sd8 = SeriesDetector("ganomaly", window=32, stride=8, detector_params=dict(epochs=1, random_state=0)).fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sd8.calibrate(new, threshold="fpr", fpr=0.01)
    assert 0.005 <= sd8.calibration_["achieved_fpr"] <= 0.01 and sd8.calibration_["tied_at_threshold"] >= 8


def test_score_output_paths_are_checked_before_scoring(work, tmp_path):
    """Found by an audit (twentieth session): `-o` naming an existing folder failed after scoring, naming
    a temporary file, with the events file already written beside it; `--events` equal to `-o` kept
    only one of the two files (exit 0); `--events x.parquet` wrote CSV under a Parquet name; `-o` naming
    the data file replaced it (with --overwrite). Each is now refused before any work, nothing written."""
    d = work
    (tmp_path / "adir").mkdir()
    cases = [(["-o", str(tmp_path / "adir")], "is a folder"),
             (["-o", str(tmp_path / "same.csv"), "--events", str(tmp_path / "same.csv")], "is the scores file"),
             (["-o", str(tmp_path / "s.csv"), "--events", str(tmp_path / "ev.parquet")], "written as CSV"),
             (["-o", str(tmp_path / "s.csv"), "--events", str(tmp_path / "adir")], "is a folder")]
    for args, want in cases:
        r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), *args])
        msg = " ".join(r.output.split())
        assert r.exit_code == 2 and want in msg and "Fix:" in msg, (args, r.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"] and not list((tmp_path / "adir").iterdir())
    data = tmp_path / "test.csv"
    data.write_bytes((d / "test.csv").read_bytes())
    before = data.read_bytes()
    for args in (["-o", str(data)], ["-o", str(tmp_path / "s.csv"), "--events", str(data)]):
        r = runner.invoke(app, ["score", str(d / "model"), str(data), *args, "--overwrite"])
        assert r.exit_code == 2 and "is the data being scored" in " ".join(r.output.split()), r.output
    assert data.read_bytes() == before and not (tmp_path / "s.csv").exists()


def test_series_fit_refuses_contamination_and_says_errors_in_option_terms(work, tmp_path):
    """--contamination reached the window model only, whose threshold a series model never uses: the
    same point threshold with or without it. Refused now, pointing to --point-contamination; the API's
    parameter names in errors are said as the options (stride -> --stride, value_columns -> --exclude)."""
    d = work
    base = ["fit", str(d / "train.csv"), "-o", str(tmp_path / "m"), "--window", "32", "--channels", "temp,pressure", "--epochs", "1", "-q"]
    for extra, want in ((["--contamination", "0.2"], "--point-contamination 0.2 instead"),
                        (["--point-contamination", "0.7"], "--point-contamination: is 0.7"),
                        (["--stride", "0"], "--stride: is 0")):
        r = runner.invoke(app, [*base, *extra])
        msg = " ".join(r.output.split())
        assert r.exit_code == 2 and want in msg, (extra, r.output)
    r = runner.invoke(app, ["fit", str(d / "train.csv"), "-o", str(tmp_path / "m"), "--window", "32", "--time-column", "temp",
                            "--exclude", "status", "--epochs", "1", "-q"])  # 'time' becomes a channel of text
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "--exclude COLUMN" in msg and "value_columns" not in msg, r.output
    assert not (tmp_path / "m").exists()


def test_series_channel_options_that_contradict_each_other_are_refused(work, tmp_path):
    """--channels a,a,b made a model of three channels two of which shared a name (their contributions
    collapsed into one column); --channels a --exclude a and `score --exclude <a model channel>` read
    the channel anyway."""
    d = work
    base = ["fit", str(d / "train.csv"), "-o", str(tmp_path / "m"), "--window", "32", "--epochs", "1", "-q"]
    for extra, want in ((["--channels", "temp,temp,pressure"], "more than once"),
                        (["--channels", "temp,pressure", "--exclude", "temp"], "and --exclude both name ['temp']"),
                        (["--channels", "temp,pressure", "--time-column", "temp"], "names the --time-column column")):
        r = runner.invoke(app, [*base, *extra])
        msg = " ".join(r.output.split())
        assert r.exit_code == 2 and want in msg and "Fix:" in msg, (extra, r.output)
    assert not (tmp_path / "m").exists()
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "s.csv"), "--exclude", "temp"])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "names channel(s) of the model" in msg and not (tmp_path / "s.csv").exists(), r.output


def test_short_series_advice_mentions_gaps_only_where_a_gap_cut_it(tmp_path):
    """A file too short for the window, with no gap in it, was told to pass --gaps ignore."""
    t = np.arange(10)
    pd.DataFrame({"t": t, "a": np.sin(t / 5.0)}).to_csv(tmp_path / "short.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "short.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--time-column", "t",
                            "--epochs", "1", "-q"])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "shorter than the window" in msg and "--gaps" not in msg and "longer series" in msg, r.output


def test_a_zoned_range_against_naive_scores_times_is_refused(work, tmp_path):
    """The scores file's times carry no zone (the series had naive times); a range written with +02:00
    was compared as if those naive times were UTC, labelling points two hours off without a word."""
    d = work
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    pd.DataFrame({"start": ["2024-01-01 08:40:00+02:00"], "end": ["2024-01-01 09:00:00+02:00"]}).to_csv(tmp_path / "z.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "z.csv"), "-o", str(tmp_path / "ev")])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "holds a time with a zone" in msg and "Fix:" in msg and not (tmp_path / "ev").exists(), r.output
    pd.DataFrame({"start": ["2024-01-01 06:40:00"], "end": ["2024-01-01 07:00:00"]}).to_csv(tmp_path / "n.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "n.csv"), "-o", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output


def test_stream_lines_come_in_the_order_things_happen(work):
    """With a --batch that finalises many points at once, every open line came first, then the point
    lines, then every close line: an event's open could precede the close of the one before it."""
    d = work
    te = pd.read_csv(d / "test.csv")
    p = te.pressure.to_numpy().copy()
    p[150:165] += 4.0  # a second anomaly, well before the fixture's (400-419)
    lines = "temp,pressure\n" + "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in zip(te.temp, p)) + "\n"
    r = runner.invoke(app, ["stream", str(d / "model"), "--batch", "1000"], input=lines)
    assert r.exit_code == 0, r.output
    rows = [ln.split(",") for ln in r.stdout.splitlines()]
    gap = ganad.load(d / "model").event_gap_
    where = {("point", int(x[1])): k for k, x in enumerate(rows) if x[0] == "point"}
    opens = [(k, int(x[1])) for k, x in enumerate(rows) if x[0] == "open"]
    closes = [(k, int(x[2])) for k, x in enumerate(rows) if x[0] == "close"]
    assert len(opens) >= 2 and len(closes) == len(opens)
    for k, start in opens:
        assert rows[k + 1][:2] == ["point", str(start)]  # just before its first point
    for k, end in closes:
        after = ("point", end + gap + 1)
        assert k == where[after] + 1 if after in where else k > max(where.values())  # just after the point that ends it


def test_a_channel_named_like_a_time_column_is_read_as_the_channel_asked_for(tmp_path):
    """--channels time,a took 'time' as the time axis (found by its name) and as a channel at once."""
    t = np.arange(300)
    pd.DataFrame({"time": np.cos(t / 9.0), "a": np.sin(t / 7.0)}).to_csv(tmp_path / "s.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "s.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--channels", "time,a",
                            "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    m = ganad.load(tmp_path / "m")
    assert m.channels_ == ["time", "a"] and m.io_["time_column"] is None


def test_evaluate_does_not_join_two_events_that_meet_at_a_gap(work, tmp_path):
    """A gap in time ends an event (gaps='split'), so the events file had two events meeting at it; the
    scores file's `event` column had one run there and `ganad evaluate` counted one event (precision 1.0
    where one of the two was a false alarm). The scores file now has a `part` column where a gap cut
    the series, and evaluate splits the runs at it."""
    d = work
    df = _table(800, 1, anomaly=(380, 419))
    df.loc[400:, "time"] += pd.Timedelta(hours=1)  # a gap in time at row 400, inside the anomaly
    df.to_csv(tmp_path / "gap.csv", index=False)
    r = runner.invoke(app, ["score", str(d / "model"), str(tmp_path / "gap.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    s, ev = pd.read_csv(tmp_path / "s.csv"), pd.read_csv(tmp_path / "s.events.csv")
    np.testing.assert_array_equal(s["part"], (np.arange(800) >= 400).astype(int))
    assert ((ev.start < 400) & (ev.end >= 400)).sum() == 0  # no event spans the gap ...
    assert ev.end.isin([399]).any() and ev.start.isin([400]).any()  # ... and two meet at it
    pd.DataFrame({"start": [400], "end": [419]}).to_csv(tmp_path / "r.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "s.csv"), "--ranges", str(tmp_path / "r.csv"), "-o", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["n_pred_events"] == len(ev)  # the events file's count, not one fewer
    assert m["event_precision"] == pytest.approx(((ev.end >= 400) & (ev.start <= 419)).sum() / len(ev))
    # a series without a gap gets no part column
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "t.csv")])
    assert r.exit_code == 0 and "part" not in pd.read_csv(tmp_path / "t.csv").columns


def test_a_folder_mixing_zoned_and_naive_times_is_refused(work, tmp_path):
    """A file with naive (possibly local) times was written as UTC because another file of the folder had
    zoned times, and zoned ranges were then compared against it as if it were UTC."""
    (tmp_path / "f").mkdir()
    a = _table(300, 2).drop(columns=["status"])
    a.to_csv(tmp_path / "f" / "a_local.csv", index=False)
    b = a.copy()
    b["time"] = pd.DatetimeIndex(b["time"]).tz_localize("Europe/Paris").map(lambda x: x.isoformat())
    b.to_csv(tmp_path / "f" / "b_zoned.csv", index=False)
    r = runner.invoke(app, ["score", str(work / "model"), str(tmp_path / "f"), "-o", str(tmp_path / "s.csv")])
    msg = " ".join(r.output.split())
    assert r.exit_code != 0 and "b_zoned.csv" in msg and "a_local.csv" in msg and "zone" in msg and "Fix:" in msg, r.output
    assert not (tmp_path / "s.csv").exists()


def test_evaluate_reads_rows_in_index_order_and_touching_ranges_as_two_anomalies(tmp_path):
    """Metrics audit (twenty-fifth session): the rows were read in file order, so a shuffled scores file
    gave other event, PA and VUS figures without a word (event F1 0.13 → 0.55); two labelled ranges that
    touch (10-19, 20-29) were one true event, so detecting the first found both (event recall 1.0)."""
    n = 200
    rng = np.random.RandomState(0)
    score = rng.rand(n)
    score[[12, 150]] += 2
    lab = (score > 1.5).astype(int)
    df = pd.DataFrame({"index": np.arange(n), "score": score, "label": lab})
    df.to_csv(tmp_path / "sorted.csv", index=False)
    df.sample(frac=1.0, random_state=1).to_csv(tmp_path / "shuffled.csv", index=False)
    pd.DataFrame({"start": [10, 20, 148], "end": [19, 29, 152]}).to_csv(tmp_path / "rg.csv", index=False)
    got = {}
    for name in ("sorted", "shuffled"):
        r = runner.invoke(app, ["evaluate", str(tmp_path / f"{name}.csv"), "--ranges", str(tmp_path / "rg.csv"), "--max-buffer", "4",
                                "-o", str(tmp_path / f"e_{name}")])
        assert r.exit_code == 0, r.output
        got[name] = json.loads((tmp_path / f"e_{name}" / "metrics.json").read_text())
    assert got["sorted"] == got["shuffled"]
    m = got["sorted"]
    assert m["n_true_events"] == 3 and m["event_recall"] == pytest.approx(2 / 3)  # 10-19 and 148-152 found, 20-29 missed
    assert m["pa_f1"] < 1.0  # the missed range is not adjusted as detected
    df.iloc[[0, 1, 2, 2]].to_csv(tmp_path / "twice.csv", index=False)
    pd.DataFrame({"start": [1], "end": [1]}).to_csv(tmp_path / "rg1.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "twice.csv"), "--ranges", str(tmp_path / "rg1.csv"), "-o", str(tmp_path / "e_twice")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "lists the point index 2 more than once" in out and not (tmp_path / "e_twice").exists()


def test_stream_reads_lines_with_a_bound_and_refuses_one_without_an_end(work):
    """`ganad stream` ("bounded memory") kept a line without a newline whole: stdin from /dev/zero grew by
    hundreds of MB a second until the OOM killer. Lines are read with a bound (1 MiB, more for many
    channels) and a longer one is refused naming its line number, exit 2."""
    from ganad.exceptions import GanadError
    from ganad.series.commands import line_limit, stream_lines

    class Zero:
        """/dev/zero as a text stream: readline without a size would never return."""
        def readline(self, size=-1):
            assert size is not None and size > 0, "a line read without a bound"
            return "\0" * size

        def __iter__(self):
            raise AssertionError("a line read without a bound")

    with pytest.raises(GanadError, match=rf"^stdin line 1: is longer than {line_limit(2)} characters without a line end"):
        stream_lines(work / "model", Zero(), lambda s: None)
    r = runner.invoke(app, ["stream", str(work / "model")], input="temp,pressure\n0.1,0.2\n" + "7" * (line_limit(2) + 5))
    assert r.exit_code == 2 and "stdin line 3: is longer than" in r.output, r.output
    assert line_limit(1000) > 1000 * 4000  # a point of many channels still fits


def test_stream_with_standard_input_closed_is_a_clear_error(work):
    """fd 0 not open (`<&-`, a service or cron job without one): sys.stdin is None, which ended in a
    TypeError traceback; now one line naming standard input, exit 2."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), COLUMNS="200")
    r = subprocess.run(["sh", "-c", 'exec "$0" -m ganad stream "$1" <&-', sys.executable, str(work / "model")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "standard input: is closed. Fix: pipe the points into ganad stream" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_stream_to_a_full_standard_output_names_it(work):
    """A write error on stdout (a full disk behind a redirect) named no file; now "standard output"."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), COLUMNS="300")
    lines = "".join(f"{np.sin(i / 20):.4f},{np.cos(i / 33):.4f}\n" for i in range(200))
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "ganad", "stream", str(work / "model")], input=lines, stdout=full,
                           stderr=subprocess.PIPE, env=env, text=True, timeout=120)
    assert r.returncode == 1 and "error: standard output: No space left on device" in r.stderr, r.stderr


def test_series_score_on_another_separator_suggests_sep(work):
    """A series file separated by ';' scored with a model fitted on a ','-separated one said "has no
    channel column(s) ['temp', 'pressure'] (columns: ['time;temp;pressure;status'])"; it says --sep ';'."""
    d = work
    pd.read_csv(d / "test.csv").to_csv(d / "semi.csv", index=False, sep=";")
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "semi.csv"), "-o", str(d / "semi_scores.csv")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "separated by ';', not ',': pass --sep ';'" in out, out
    assert not (d / "semi_scores.csv").exists()
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "semi.csv"), "-o", str(d / "semi_scores.csv"), "--sep", ";"])
    assert r.exit_code == 0, r.output


def test_stream_says_once_that_it_scores_across_a_gap_in_time(tmp_path, caplog):
    """`ganad stream --has-time` reads past the time column (a stream is one series without gaps, documented),
    so a pause in the source was scored across without a word, where batch scoring splits the series (a
    new user saw a spurious event at a 60-minute gap): the first step longer than gap_factor x the median
    step is now said once, for ISO times and numbers alike; a stream without a gap says nothing, and the
    scores do not change."""
    import logging

    from ganad.series.commands import stream_lines
    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 2))
    sd = SeriesDetector("ganomaly", window=16, stride=4, detector_params={"epochs": 1, "random_state": 0}).fit(X)
    sd.save(tmp_path / "m")
    t = list(pd.date_range("2024-01-01", periods=60, freq="min"))
    t_gap = t[:30] + [x + pd.Timedelta(hours=1) for x in t[30:]]

    def run(times):
        out: list = []
        body = [f"{times[i]},{float(X[i, 0])!r},{float(X[i, 1])!r}\n" for i in range(60)]
        with caplog.at_level(logging.WARNING, logger="ganad"):
            caplog.clear()
            stream_lines(tmp_path / "m", body, out.append, has_time=True)
        said = [r for r in caplog.records if "across a gap" in r.getMessage()]
        return out, said

    plain, said = run(t)
    assert said == []
    gapped, said = run(t_gap)
    assert len(said) == 1 and "stdin line 31" in said[0].getMessage()
    assert gapped == plain  # said, not changed
    _, said = run([str(i * 60.0) if i < 30 else str(i * 60.0 + 3600) for i in range(60)])  # epoch seconds
    assert len(said) == 1
    _, said = run([x.isoformat() + "Z" for x in t_gap])  # ISO 8601 with a zone
    assert len(said) == 1


def test_stream_does_not_warn_of_a_gap_for_a_model_fitted_with_gaps_ignore(tmp_path, caplog):
    """The gap warning says batch scoring splits the series at a gap; a model fitted with gaps='ignore'
    (`ganad fit --gaps ignore`) scores across it in batch too, and was told otherwise."""
    import logging

    from ganad.series.commands import stream_lines
    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 2))
    t = list(pd.date_range("2024-01-01", periods=60, freq="min"))
    t_gap = t[:30] + [x + pd.Timedelta(hours=1) for x in t[30:]]
    body = [f"{t_gap[i]},{float(X[i, 0])!r},{float(X[i, 1])!r}\n" for i in range(60)]
    for gaps, n_said in (("ignore", 0), ("split", 1)):
        SeriesDetector("ganomaly", window=16, stride=4, gaps=gaps,
                       detector_params={"epochs": 1, "random_state": 0}).fit(X).save(tmp_path / gaps)
        with caplog.at_level(logging.WARNING, logger="ganad"):
            caplog.clear()
            stream_lines(tmp_path / gaps, body, [].append, has_time=True)
        assert len([r for r in caplog.records if "across a gap" in r.getMessage()]) == n_said, gaps


def test_series_score_refuses_per_recording_thresholds(work, tmp_path):
    """--group-column / --warm-up are for models scored row by row; a series model flags runs of points."""
    d = work
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(tmp_path / "s.csv"),
                            "--group-column", "status", "--warm-up", "50"])
    assert r.exit_code == 2 and "series model" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s.events.csv").exists()
