"""Series files as users bring them: ';' separators and decimal commas, an id column to leave out,
NPY arrays for a model trained on a CSV with a time column, and edited series.json files."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ganad
from ganad.cli import app
from ganad.exceptions import ModelFileError

runner = CliRunner()


def _table(T, seed):
    rng = np.random.RandomState(seed)
    t = np.arange(T)
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=T, freq="min"),
                         "temp": np.sin(t / 20) + 0.05 * rng.randn(T), "pressure": np.cos(t / 33) + 0.05 * rng.randn(T)})


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("series_file_input")
    _table(400, 0).to_csv(d / "train.csv", index=False)
    _table(120, 1).to_csv(d / "test.csv", index=False)
    r = runner.invoke(app, ["fit", str(d / "train.csv"), "-o", str(d / "model"), "--window", "16", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    return d


def _fail(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "error:" in r.output, r.output
    return " ".join(r.output.split())


def test_series_fit_reads_sep_and_decimal_and_refuses_a_misread_file(work, tmp_path):
    # before: --sep/--decimal were ignored in series mode, and pandas turned the extra fields of each
    # ';' row into an index: the model trained silently on one "channel" of fractional digits
    _table(400, 0).to_csv(tmp_path / "semi.csv", index=False, sep=";", decimal=",")
    msg = _fail(["fit", str(tmp_path / "semi.csv"), "-o", str(tmp_path / "m0"), "--window", "16", "--epochs", "1", "-q"])
    assert "semi.csv" in msg and "more fields than the header" in msg and "--sep ';'" in msg
    assert not (tmp_path / "m0").exists()
    r = runner.invoke(app, ["fit", str(tmp_path / "semi.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1",
                            "-q", "--sep", ";", "--decimal", ","])
    assert r.exit_code == 0, r.output
    sd = ganad.load(tmp_path / "m")
    assert sd.channels_ == ["temp", "pressure"] and sd.io_["time_column"] == "timestamp"
    _table(120, 1).to_csv(tmp_path / "semi_test.csv", index=False, sep=";", decimal=",")
    r = runner.invoke(app, ["score", str(work / "model"), str(tmp_path / "semi_test.csv"), "-o", str(tmp_path / "s.csv"),
                            "--sep", ";", "--decimal", ","])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(work / "model"), str(work / "test.csv"), "-o", str(tmp_path / "ref.csv")])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").score, pd.read_csv(tmp_path / "ref.csv").score, rtol=1e-6)


def test_series_fit_honours_exclude(tmp_path):
    # before: --exclude was ignored in series mode and the id column became a channel
    df = _table(400, 0)
    df["machine_id"] = 7
    df.to_csv(tmp_path / "train.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1",
                            "-q", "--exclude", "machine_id"])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m").channels_ == ["temp", "pressure"]
    msg = _fail(["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m2"), "--window", "16", "--epochs", "1", "-q",
                 "--exclude", "nosuch"])
    assert "nosuch" in msg and "--exclude" in msg and not (tmp_path / "m2").exists()


def test_series_score_npy_for_a_model_with_a_time_column(work, tmp_path):
    # before: refused with "drop --time-column/--channels/--series-id", options the user never passed
    np.save(tmp_path / "test.npy", _table(120, 1)[["temp", "pressure"]].to_numpy())
    r = runner.invoke(app, ["score", str(work / "model"), str(tmp_path / "test.npy"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    runner.invoke(app, ["score", str(work / "model"), str(work / "test.csv"), "-o", str(tmp_path / "ref.csv")])
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").score, pd.read_csv(tmp_path / "ref.csv").score, rtol=1e-6)


def test_series_score_messages_name_the_file_and_no_fit_only_option(work, tmp_path):
    _table(10, 1).to_csv(tmp_path / "short.csv", index=False)
    _table(120, 1).drop(columns="timestamp").to_csv(tmp_path / "notime.csv", index=False)
    df = _table(120, 1)
    df.loc[60, "timestamp"] = df.loc[30, "timestamp"]
    df.to_csv(tmp_path / "back.csv", index=False)
    for f in ("short.csv", "notime.csv", "back.csv"):
        out = tmp_path / f"s_{f}"
        msg = _fail(["score", str(work / "model"), str(tmp_path / f), "-o", str(out)])
        assert msg.startswith("error:") and f in msg.split("Fix:")[0] and "X:" not in msg and "X time" not in msg, msg
        fix = msg.split("Fix:")[1]
        assert "--time-column" not in fix and "--channels" not in fix and "gaps='ignore'" not in fix, msg
        assert not out.exists() and not out.with_name(out.stem + ".events.csv").exists()


@pytest.mark.parametrize("edit, expect", [
    (lambda st: st.update(window=32), "window 32"),
    (lambda st: st["io"].update(channels=["pressure", "temp"]), "io.channels"),
    (lambda st: st.update(threshold=float("nan")), "non-finite number NaN"),  # every point would be labelled normal
    (lambda st: st.update(threshold=float("inf")), "non-finite number Infinity"),
    (lambda st: st.update(channel_baseline=[float("nan")] * len(st["channel_baseline"])), "non-finite number NaN"),
])
def test_edited_series_json_is_refused(work, tmp_path, edit, expect):
    # before: window edited -> IndexError traceback; io.channels reordered -> the file's columns silently
    # scored in another order than the detector was trained on
    m = tmp_path / "m"
    shutil.copytree(work / "model", m)
    cfg = json.loads((m / "series.json").read_text())
    edit(cfg["state"])
    (m / "series.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match=expect):
        ganad.load(m)
    msg = _fail(["score", str(m), str(work / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert "series.json" in msg and not (tmp_path / "s.csv").exists()


def test_csv_header_with_duplicate_names_is_refused(tmp_path):
    # before: pandas renamed the copy to 'a.1' silently (a DataFrame with duplicate names is refused)
    rows = "\n".join(f"{i},{i % 3},{i % 5}" for i in range(40))
    (tmp_path / "dup.csv").write_text("a,a,c\n" + rows + "\n")
    msg = _fail(["fit", str(tmp_path / "dup.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert "dup.csv" in msg and "duplicate column name(s) ['a']" in msg and "Fix:" in msg
    assert not (tmp_path / "m").exists()
    (tmp_path / "num.csv").write_text("1,1,2\n" + rows + "\n")  # a first line of numbers is data, repeats and all
    from ganad.data.readers import read_array
    assert read_array(tmp_path / "num.csv").shape == (41, 3)


def test_key_is_refused_in_series_mode(work, tmp_path):
    """--key names an array in an NPZ file; series mode reads no NPZ, so the option was silently ignored."""
    out = _fail(["fit", str(work / "train.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "--key", "X"])
    assert "--key" in out and "Fix:" in out and not (tmp_path / "m").exists()
    out = _fail(["score", str(work / "model"), str(work / "test.csv"), "-o", str(tmp_path / "s.csv"), "--key", "X"])
    assert "--key" in out and not (tmp_path / "s.csv").exists()


def test_series_headerless_csv_reads_its_first_line_as_data(tmp_path):
    # before: pandas took the first data row as the header: the series lost its first point, the
    # channels were named after its values, and every other header-less file was refused at scoring
    _table(400, 0)[["temp", "pressure"]].to_csv(tmp_path / "train.csv", index=False, header=False)
    test = _table(120, 1)[["temp", "pressure"]]
    test.to_csv(tmp_path / "test.csv", index=False, header=False)
    from ganad.series.readers import read_series_file
    tab = read_series_file(tmp_path / "train.csv")
    assert tab.values.shape == (400, 2) and tab.columns == ["ch0", "ch1"]
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(tmp_path / "s.csv")
    assert len(s) == 120
    np.testing.assert_allclose(s.score, ganad.load(tmp_path / "m").decision_function(test.to_numpy()), rtol=1e-6, atol=1e-6)


def test_series_parquet_indexed_by_time_keeps_its_time(work, tmp_path):
    # before: the time index of a frame written with df.set_index('timestamp').to_parquet() was dropped:
    # fit trained without times (no gap split, no times in the outputs), score refused the file
    from ganad.series.readers import read_series_file
    _table(120, 1).set_index("timestamp").to_parquet(tmp_path / "test.parquet")
    tab = read_series_file(tmp_path / "test.parquet")
    assert tab.time_column == "timestamp" and tab.columns == ["temp", "pressure"] and tab.time is not None
    r = runner.invoke(app, ["score", str(work / "model"), str(tmp_path / "test.parquet"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    runner.invoke(app, ["score", str(work / "model"), str(work / "test.csv"), "-o", str(tmp_path / "ref.csv")])
    s, ref = pd.read_csv(tmp_path / "s.csv"), pd.read_csv(tmp_path / "ref.csv")
    assert s.time.tolist() == ref.time.tolist()
    np.testing.assert_allclose(s.score, ref.score, rtol=1e-6)


@pytest.fixture(scope="module")
def python_models(tmp_path_factory):
    """Series models saved by SeriesDetector.save (no file columns recorded): channels unnamed, and named."""
    from ganad.series import SeriesDetector
    d = tmp_path_factory.mktemp("python_models")
    X = _table(400, 0)[["temp", "pressure"]].to_numpy()
    for name, names in (("unnamed", None), ("named", ["temp", "pressure"])):
        sd = SeriesDetector("fanogan", window=16, detector_params={"epochs": 1, "verbose": False})
        with pytest.warns(UserWarning):
            sd.fit(X, channel_names=names)
        sd.save(d / name)
    return d


def test_series_score_honours_exclude_for_a_model_saved_from_python(python_models, tmp_path):
    # before: `ganad score --exclude` was ignored for a series model saved by SeriesDetector.save:
    # the label column was read as a third channel and the file refused
    test = _table(120, 1)
    test["label"] = 0
    test[["timestamp", "label", "temp", "pressure"]].to_csv(tmp_path / "test.csv", index=False)
    m = python_models / "unnamed"
    r = runner.invoke(app, ["score", str(m), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv"), "--exclude", "label"])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").score, ganad.load(m).decision_function(test[["temp", "pressure"]].to_numpy()),
                               rtol=1e-6, atol=1e-6)


def test_series_score_reads_the_named_channels_of_a_model_saved_from_python(python_models, tmp_path):
    # before: a model saved by SeriesDetector.save read every column but the time, in the file's order:
    # a file with its channels in another order was scored with the channels swapped, silently
    test = _table(120, 1)
    test.loc[60:70, "pressure"] += 5.0
    test[["timestamp", "pressure", "temp"]].to_csv(tmp_path / "test.csv", index=False)
    m = python_models / "named"
    r = runner.invoke(app, ["score", str(m), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").score, ganad.load(m).decision_function(test[["temp", "pressure"]].to_numpy()),
                               rtol=1e-6, atol=1e-6)


def test_series_score_of_a_gzipped_csv_succeeds(work, tmp_path):
    # before: the scores and events were written, then the note on unread columns asked the table reader,
    # which knows no '.gz', and `ganad score` failed with "unknown extension '.gz'" (exit code 2)
    _table(120, 1).to_csv(tmp_path / "test.csv.gz", index=False)
    r = runner.invoke(app, ["score", str(work / "model"), str(tmp_path / "test.csv.gz"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    runner.invoke(app, ["score", str(work / "model"), str(work / "test.csv"), "-o", str(tmp_path / "ref.csv")])
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").score, pd.read_csv(tmp_path / "ref.csv").score, rtol=1e-6)


def test_series_float_times_are_written_exactly(work, tmp_path):
    # before: the scores file wrote float times with 9 significant digits and the events file with 6:
    # epoch seconds 1704067201.5 became 1.7040672e+09 (events: 1.70407e+09), ten points to a time
    test = _table(120, 1)
    test["timestamp"] = 1704067200.5 + np.arange(120.0)
    test.loc[60:70, "pressure"] += 5.0
    test.to_csv(tmp_path / "test.csv", index=False)
    r = runner.invoke(app, ["score", str(work / "model"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    s, ev = pd.read_csv(tmp_path / "s.csv"), pd.read_csv(tmp_path / "s.events.csv")
    assert s.time.tolist() == test.timestamp.tolist()
    assert len(ev) and ev.start_time.tolist() == test.timestamp[ev.start].tolist()
    assert ev.peak_time.tolist() == test.timestamp[ev.peak].tolist()


def test_series_rows_one_field_longer_whose_first_fields_count_from_0_are_refused_not_shifted(tmp_path):
    """The series reader shares the table reader's rule (ganad.data.readers.first_row_longer): rows one
    field longer than the header whose first fields count 0, 1, 2, ... were read shifted by a column."""
    from ganad.exceptions import DataFileError
    from ganad.series.readers import read_series_file
    (tmp_path / "lead.csv").write_text("time,a,b\n0,1,2,3\n1,4,5,6\n")
    with pytest.raises(DataFileError, match="lead.csv: has rows with more fields than the header"):
        read_series_file(tmp_path / "lead.csv")


def test_a_folder_is_read_by_channel_name_for_a_model_saved_from_python(python_models, tmp_path):
    """A model saved by SeriesDetector.save read a single file's channels by name, a folder's by position:
    a folder whose files had the columns in another order scored silently wrong (and calibrated a
    threshold of 94.8 instead of about -11.8)."""
    (tmp_path / "ok").mkdir()
    (tmp_path / "re").mkdir()
    t = _table(300, 1)
    t[["temp", "pressure"]].to_csv(tmp_path / "ok" / "s1.csv", index=False)
    t[["pressure", "temp"]].to_csv(tmp_path / "re" / "s1.csv", index=False)
    for d in ("ok", "re"):
        r = runner.invoke(app, ["score", str(python_models / "named"), str(tmp_path / d), "-o", str(tmp_path / f"{d}.csv")])
        assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(pd.read_csv(tmp_path / "ok.csv").score, pd.read_csv(tmp_path / "re.csv").score)


@pytest.mark.parametrize("make, expect", [
    (lambda X: pd.DataFrame(X, columns=["temp", "pressure"]).to_records(index=False), "structured array"),
    (lambda X: np.array([["a", "b"]] * len(X)), "cannot be read as numbers"),
    (lambda X: X.astype(complex), "complex numbers"),
    (lambda X: np.datetime64("2024-01-01") + np.arange(len(X)).astype("timedelta64[m]"), "holds times"),
    (lambda X: (X * 1000).astype("timedelta64[ms]"), "holds times"),
], ids=["records", "text", "complex", "datetime64", "timedelta64"])
def test_series_npy_that_is_not_numbers_is_refused_naming_the_file(work, tmp_path, make, expect):
    # before: a record array (np.save of df.to_records()) ended in a TypeError traceback (exit 1), text in a
    # ValueError naming no file, and a complex array was scored on its real part after a mere warning
    X = _table(120, 1)[["temp", "pressure"]].to_numpy()
    np.save(tmp_path / "test.npy", make(X))
    msg = _fail(["score", str(work / "model"), str(tmp_path / "test.npy"), "-o", str(tmp_path / "s.csv")])
    assert "test.npy" in msg and expect in msg and not (tmp_path / "s.csv").exists()
    msg = _fail(["fit", str(tmp_path / "test.npy"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert "test.npy" in msg and expect in msg and not (tmp_path / "m").exists()


def test_series_options_name_columns_of_a_header_with_spaces_after_its_commas(work, tmp_path):
    # before: pandas keeps the spaces of a header 'temp, timestamp, pressure', and --channels strips its names, so
    # --channels temp / --exclude pressure could not name ' pressure' at all (even quoted), and ' timestamp' was not
    # found as the time column: it was read as a channel and refused as text
    def write(df, path):
        head, body = df.to_csv(index=False).split("\n", 1)
        path.write_text(head.replace(",", ", ") + "\n" + body)
    write(_table(400, 0)[["temp", "timestamp", "pressure"]], tmp_path / "train.csv")
    write(_table(120, 1)[["temp", "timestamp", "pressure"]], tmp_path / "test.csv")
    from ganad.series.readers import read_series_file
    tab = read_series_file(tmp_path / "train.csv")
    assert tab.time_column == " timestamp" and tab.columns == ["temp", " pressure"] and tab.time is not None
    assert read_series_file(tmp_path / "train.csv", channels=["pressure"]).columns == [" pressure"]
    assert read_series_file(tmp_path / "train.csv", exclude=["pressure"]).columns == ["temp"]
    assert read_series_file(tmp_path / "train.csv", time_column="timestamp").time_column == " timestamp"
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1",
                            "-q", "--channels", "pressure,temp"])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m").channels_ == [" pressure", "temp"]
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    assert "not read" not in r.output and len(pd.read_csv(tmp_path / "s.csv")) == 120
    msg = _fail(["score", str(tmp_path / "m"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s2.csv"), "--exclude", "pressure"])
    assert "--exclude pressure" in msg and "names channel(s) of the model" in msg and not (tmp_path / "s2.csv").exists()


def test_series_parquet_timestamp_column_not_named_like_a_time_is_not_read_as_a_channel(work, tmp_path):
    # before: pd.to_numeric made a Parquet timestamp (or duration) column named 'recorded_at' a channel of
    # nanoseconds, trained on without a word (the same column in a CSV is text, and refused)
    df = _table(400, 0).rename(columns={"timestamp": "recorded_at"})
    df["recorded_at"] = df["recorded_at"].dt.tz_localize("UTC")
    df.to_parquet(tmp_path / "train.parquet")
    msg = _fail(["fit", str(tmp_path / "train.parquet"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert "'recorded_at'" in msg and "holds times" in msg and "--time-column" in msg and not (tmp_path / "m").exists()
    r = runner.invoke(app, ["fit", str(tmp_path / "train.parquet"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1",
                            "-q", "--time-column", "recorded_at"])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "m").channels_ == ["temp", "pressure"]
    _table(120, 1).assign(uptime=pd.to_timedelta(np.arange(120), unit="s")).to_parquet(tmp_path / "test.parquet")
    from ganad.data.windows import read_series
    from ganad.exceptions import DataFileError
    with pytest.raises(DataFileError, match="'uptime'.*holds times"):
        read_series(tmp_path / "test.parquet")


def test_series_iso_times_in_more_than_one_shape_are_read(work, tmp_path):
    # before: pandas infers one format from the first time, so Python's isoformat() at 2 Hz ('...T00:00:00',
    # '...T00:00:00.500000': zero microseconds are left out) or a date alone at midnight refused the whole file
    import datetime as dt
    from ganad.data.windows import read_series
    from ganad.exceptions import DataFileError
    from ganad.series.readers import read_series_file
    df = _table(120, 1)
    t0 = dt.datetime(2024, 1, 1)
    df["timestamp"] = [(t0 + dt.timedelta(seconds=0.5 * i)).isoformat() for i in range(120)]
    df.to_csv(tmp_path / "test.csv", index=False)
    tab = read_series_file(tmp_path / "test.csv")
    assert tab.time_column == "timestamp" and not tab.utc
    np.testing.assert_array_equal(tab.time, np.datetime64("2024-01-01") + np.arange(120) * np.timedelta64(500, "ms"))
    r = runner.invoke(app, ["score", str(work / "model"), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "s.csv").time.iloc[1] == "2024-01-01 00:00:00.500"
    pd.DataFrame({"date": ["2024-01-01", "2024-01-01 12:00:00", "2024-01-02"], "v": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "d.csv", index=False)
    assert read_series(tmp_path / "d.csv").time[1] == np.datetime64("2024-01-01T12:00")
    # a naive time beside zoned ones is still refused (it may be a local time: not read as UTC)
    pd.DataFrame({"time": ["2024-03-31T00:00:00", "2024-03-31T01:00:00Z"], "v": [1.0, 2.0]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(DataFileError, match="cannot be parsed as times"):
        read_series_file(tmp_path / "m.csv")
    # a time cut off ('01:3', a year or a month alone) or written another way ('2024/01/02', '20240102') among whole
    # ones is refused: ISO 8601's reduced precision read them as other times (01:03, 1 January), and the file was
    # then refused for its order, or trained on
    # ISO 8601's basic format and times to the hour are whole times, read
    for times in (["20240101T000000Z", "20240101T000000.5Z"], ["2024-01-01T00", "2024-01-01T00:30:00.5"]):
        pd.DataFrame({"time": times, "v": [1.0, 2.0]}).to_csv(tmp_path / "b.csv", index=False)
        assert read_series_file(tmp_path / "b.csv").time.dtype.kind == "M"
    for cut in ("2024-01-01 01:3", "2024", "2024-01", "2024/01/02 00:00:00", "20240102"):
        times = [f"2024-01-01 00:00:0{i}" for i in range(5)] + [cut]
        pd.DataFrame({"time": times, "v": np.arange(6.0)}).to_csv(tmp_path / "c.csv", index=False)
        with pytest.raises(DataFileError, match="cannot be parsed as times"):
            read_series_file(tmp_path / "c.csv")


def test_a_csv_without_a_header_row_is_named_as_such(work, tmp_path):
    """A header-less CSV whose first column is a time: pandas reads its first line as the names, and the
    refusal named a column '2024-01-01 00:00:00' with a fix about the column's values."""
    from ganad.exceptions import DataFileError
    from ganad.series.readers import read_series_file
    p = tmp_path / "nohdr.csv"
    _table(60, 0).to_csv(p, index=False, header=False)
    with pytest.raises(DataFileError, match=r"seems to have no header row: its first line \(2024-01-01 00:00:00, .*add a header line"):
        read_series_file(p)
    out = _fail(["fit", str(p), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert "no header row" in out and "add a header line" in out
    # a header of dates (channels named by day) with numbers below is a header, and read
    pd.DataFrame({"2024-01-01": [1.0, 2.0], "2024-01-02": [3.0, 4.0]}).to_csv(tmp_path / "wide.csv", index=False)
    assert read_series_file(tmp_path / "wide.csv").columns == ["2024-01-01", "2024-01-02"]
    # sensor names that pandas would also read as times ('T1', 'M1', '5m') are a header: the values' own fix stands
    (tmp_path / "sensors.csv").write_text("T1,M1\n1.0,2.0\n1.5,n/a?\n")
    with pytest.raises(DataFileError) as e:
        read_series_file(tmp_path / "sensors.csv")
    assert "no header row" not in str(e.value) and "non-numeric value" in str(e.value)


def test_a_trailing_separator_column_is_named_with_its_exclude(work, tmp_path):
    """A separator at the end of every line makes an empty 'Unnamed: 3' column, refused as missing values to
    fill: the refusal says it is empty and gives the --exclude that reads the file."""
    from ganad.exceptions import DataFileError
    from ganad.series.readers import read_series_file
    p = tmp_path / "trail.csv"
    p.write_text("\n".join(line + "," for line in _table(60, 0).to_csv(index=False).splitlines()) + "\n")
    with pytest.raises(DataFileError, match=r"column 'Unnamed: 3': is empty in all 60 rows, likely from a separator at the end "
                                            r"of every line.*--exclude 'Unnamed: 3', or remove the trailing separator"):
        read_series_file(p)
    assert read_series_file(p, exclude=["Unnamed: 3"]).columns == ["temp", "pressure"]  # the fix reads it


def test_decimal_commas_in_a_comma_separated_csv_hint_at_decimal(work, tmp_path):
    """Quoted decimal-comma numbers in a comma-separated file ("0,5"): refused as non-numeric with a fix
    about the values; the fix names --decimal ',', which reads the file."""
    from ganad.exceptions import DataFileError
    from ganad.series.readers import read_series_file
    p = tmp_path / "dec.csv"
    _table(60, 0).to_csv(p, index=False, decimal=",")
    with pytest.raises(DataFileError, match=r"column 'temp': holds non-numeric value .*\. Fix: the numbers seem to use a decimal comma "
                                            r"\(\"1,5\"\): pass --decimal ','"):
        read_series_file(p)
    assert np.allclose(read_series_file(p, decimal=",").values, _table(60, 0)[["temp", "pressure"]].to_numpy())
    # other text is not taken for decimal commas
    pd.DataFrame({"a": ["x", "1"], "b": [1.0, 2.0]}).to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(DataFileError) as e:
        read_series_file(tmp_path / "text.csv")
    assert "--decimal" not in str(e.value) and "decimal comma" not in str(e.value)


def test_local_times_repeated_where_daylight_saving_ends_name_the_utc_offset_fix(work, tmp_path):
    """Naive local times repeat an hour where daylight saving time ends (02:59 then 02:00 again): refused as a
    repeated time, and the fix now says that times written with their UTC offset (or in UTC) avoid it."""
    t = pd.date_range("2024-10-27 00:00", periods=300, freq="min", tz="Europe/Berlin")
    df = _table(300, 0).assign(timestamp=t.tz_localize(None))
    df.to_csv(tmp_path / "local.csv", index=False)
    out = _fail(["fit", str(tmp_path / "local.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert "does not increase at row 180" in out and "daylight saving" in out and "with their UTC offset" in out, out
    # written with their offsets, the same times are read (as UTC instants)
    df.assign(timestamp=t.astype(str)).to_csv(tmp_path / "zoned.csv", index=False)
    from ganad.series.readers import read_series_file
    assert (np.diff(read_series_file(tmp_path / "zoned.csv").time) > np.timedelta64(0)).all()
    # a time going back a day, or repeated numbers, is no daylight-saving matter
    df.assign(timestamp=pd.date_range("2024-01-01", periods=300, freq="h").where(np.arange(300) != 100, pd.Timestamp("2023-12-01")))\
        .to_csv(tmp_path / "back.csv", index=False)
    out = _fail(["fit", str(tmp_path / "back.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert "does not increase at row 100" in out and "daylight" not in out, out
    # times that carry their zone (read as UTC instants) going back, or a time repeated exactly: no such hint
    z = pd.date_range("2024-01-01", periods=300, freq="min", tz="UTC").to_series().reset_index(drop=True)
    z[100] = z[99] - pd.Timedelta(minutes=30)
    df.assign(timestamp=z.astype(str)).to_csv(tmp_path / "zback.csv", index=False)
    out = _fail(["fit", str(tmp_path / "zback.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert "does not increase at row 100" in out and "daylight" not in out, out
    r = pd.Series(pd.date_range("2024-01-01", periods=300, freq="min"))
    r[100] = r[99]
    df.assign(timestamp=r).to_csv(tmp_path / "rep.csv", index=False)
    out = _fail(["fit", str(tmp_path / "rep.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert "does not increase at row 100" in out and "daylight" not in out, out


def test_a_header_with_spaces_is_read_by_channel_name_for_a_model_saved_from_python(python_models, tmp_path):
    """A model saved by SeriesDetector.save read a file's channels by name only where the header named them
    exactly: a header written with a space after each comma ('timestamp, pressure, temp', whose columns pandas
    names ' pressure', ' temp') was read by position, the channels swapped without a word, where
    `ganad stream` and the service's /series take the same header by name."""
    test = _table(120, 1)
    test.loc[60:70, "pressure"] += 5.0
    lines = ["timestamp, pressure, temp"] + [f"{t}, {p!r}, {v!r}" for t, p, v in
                                              zip(test.timestamp.astype(str), test.pressure.tolist(), test.temp.tolist())]
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    m = python_models / "named"
    r = runner.invoke(app, ["score", str(m), str(tmp_path / "test.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").score, ganad.load(m).decision_function(test[["temp", "pressure"]].to_numpy()),
                               rtol=1e-6, atol=1e-6)
