"""Edge cases of the service, tuning, resume, streaming and series evaluation found by a second
sweep (sixth session): each used to give a silent wrong answer, a 500 / traceback, or a stream
that refused everything after one bad chunk."""

import io

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ganad.cli import app
from ganad.exceptions import DataFileError, GanadError, InputError
from ganad.series import SeriesDetector

runner = CliRunner()
T = np.arange(400)
S2 = np.c_[np.sin(T / 20), np.cos(T / 33)]


@pytest.fixture(scope="module")
def series_model():
    return SeriesDetector("fanogan", window=16, stride=4, detector_params={"epochs": 1, "verbose": False, "random_state": 0}).fit(S2)


def test_a_refused_stream_chunk_leaves_the_stream_as_it_was(series_model):
    sc = series_model.stream()
    bad = S2[:40].copy()
    bad[5, 0] = 1e300  # a sensor glitch beyond float32
    with pytest.raises(InputError, match="float32.*row 5, channel 'ch0'"):
        sc.update(bad)
    assert sc.n_seen == 0
    with pytest.raises(InputError, match="complex"):
        sc.update(S2[:40] + 1j)
    ref = series_model.stream()
    for chunk in (S2[:40], S2[40:80]):  # later chunks are scored as if the bad ones were never sent
        a, b = sc.update(chunk), ref.update(chunk)
        np.testing.assert_allclose(a.scores, b.scores)
    sc.close()


def test_series_detector_refuses_values_beyond_float32(series_model):
    X = S2.copy()
    X[7, 1] = -1e300
    with pytest.raises(InputError, match="float32"):
        series_model.decision_function(X)


def test_service_csv_long_rows_and_numeric_first_lines_are_refused_not_shifted():
    from ganad.serve.decode import decode
    from ganad.serve.errors import Refusal
    with pytest.raises(Refusal, match="more fields than the header"):
        decode(b"a,b,c\n1,2,3,4\n5,6,7,8\n", "text/csv")
    with pytest.raises(Refusal, match="csv_header=false"):
        decode(b"1,2,3\n4,5,6\n", "text/csv")
    rows, _ = decode(b"1,2,3\n4,5,6\n", "text/csv", csv_header=False)
    assert np.asarray(rows).shape == (2, 3)
    rows, _ = decode(b"0,1,2\n4,5,6\n", "text/csv")  # pandas' default names stay a header, as the CLI reads them
    assert np.asarray(rows).shape == (1, 3)


def test_service_csv_long_rows_whose_first_fields_count_from_0_are_refused_not_shifted():
    from ganad.serve.decode import decode, decode_series
    from ganad.serve.errors import Refusal
    # pandas reads the extra leading fields as an index: 0, 1, 2, ... make the index of a frame without one
    for body in (b"a,b,c\n0,2,3,4\n", b"a,b,c\n0,2,3,4\n1,6,7,8\n", b"a,b,c\n0.5,2,3,\n1,6,7,\n"):
        with pytest.raises(Refusal, match="more fields than the header") as exc:
            decode(body, "text/csv")
        assert exc.value.status == 422
        with pytest.raises(Refusal, match="more fields than the header"):
            decode_series(body, "text/csv", channels=["a", "b", "c"])
    rows, _ = decode(b"a,b,c\n0,2,3\n1,6,7\n", "text/csv")
    assert np.asarray(rows).tolist() == [[0, 2, 3], [1, 6, 7]]


def test_service_json_value_beyond_float32_is_named_as_such():
    from ganad.serve.decode import decode
    rows, _ = decode(b"[[1, 2, 1e300]]", "application/json")
    from ganad.data.validation import check_array
    with pytest.raises(InputError, match="float32"):
        check_array(rows)


def _scores_with_time(tmp_path):
    t = np.arange(60)
    pd.DataFrame({"index": t, "time": t + 1, "score": np.r_[np.zeros(30), np.ones(10), np.zeros(20)]}).to_csv(tmp_path / "sc.csv", index=False)
    return tmp_path / "sc.csv"


def test_evaluate_ranges_refuses_whole_numbers_that_could_be_indices_or_times(tmp_path):
    from ganad.series.commands import _range_labels
    df = pd.read_csv(_scores_with_time(tmp_path))
    (tmp_path / "r.csv").write_text("start,end\n31,40\n")
    with pytest.raises(DataFileError, match="row indices or times"):
        _range_labels(df, tmp_path / "r.csv")
    (tmp_path / "r.csv").write_text("start,end\n31.0,40.0\n")  # times, as the fix says
    y = _range_labels(df, tmp_path / "r.csv")
    assert df["time"][y == 1].tolist() == list(range(31, 41))
    (tmp_path / "r.csv").write_text("start,end\n31.0,\n")
    with pytest.raises(DataFileError, match="empty start or end"):
        _range_labels(df, tmp_path / "r.csv")


def test_stream_reorders_channels_named_in_another_order_and_refuses_a_bad_first_line(series_model, tmp_path):
    from ganad.series.commands import stream_lines
    import copy
    named = copy.deepcopy(series_model)
    named.channels_ = ["x", "y"]
    named.save(tmp_path / "m")

    def run(text):
        out = io.StringIO()
        stream_lines(tmp_path / "m", io.StringIO(text), out.write)
        return [ln for ln in out.getvalue().splitlines() if ln.startswith("point,")]

    xy = "x,y\n" + "\n".join(f"{a},{b}" for a, b in S2[:64])
    yx = "y,x\n" + "\n".join(f"{b},{a}" for a, b in S2[:64])
    assert run(xy) == run(yx) and len(run(xy)) > 0
    with pytest.raises(GanadError, match="stdin line 1"):
        run(",5.1\n" + "\n".join(f"{a},{b}" for a, b in S2[:64]))
    # a header naming other columns than the model's channels (it was skipped, and the values read
    # by position as x and y) is refused; a model without channel names still reads by position
    with pytest.raises(GanadError, match=r"stdin line 1: is a header naming \['pressure', 'temp'\].*channels are \['x', 'y'\]"):
        run("pressure,temp\n" + "\n".join(f"{a},{b}" for a, b in S2[:64]))
    series_model.save(tmp_path / "unnamed")
    out = io.StringIO()
    stream_lines(tmp_path / "unnamed", io.StringIO("pressure,temp\n" + "\n".join(f"{a},{b}" for a, b in S2[:64])), out.write)
    assert sum(ln.startswith("point,") for ln in out.getvalue().splitlines()) == len(run(xy))


def test_checkpoint_paths_are_checked_before_training(tmp_path):
    np.savetxt(tmp_path / "train.csv", np.random.RandomState(0).randn(100, 3), delimiter=",", header="a,b,c", comments="")
    (tmp_path / "afile").write_text("x")
    for ck, match in ((tmp_path / "m", "inside it"), (tmp_path / "m" / "ck", "inside it"), (tmp_path / "afile" / "ck", "cannot be created")):
        r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "--checkpoint", str(ck), "-q"])
        assert r.exit_code == 2 and match in " ".join(r.output.split()), r.output
        assert not (tmp_path / "m").exists()


def test_tune_resume_draws_new_parameters_and_refuses_other_data(tmp_path):
    pytest.importorskip("optuna")
    from ganad.tune import tune
    X = np.random.RandomState(0).randn(120, 3).astype(np.float32)
    db = f"sqlite:///{tmp_path / 's.db'}"
    for n in (2, 3, 4):
        res = tune(X, method="ganomaly", n_trials=n, storage=db, study_name="s", params={"epochs": 1}, refit=False)
    sets = {tuple(sorted(t.params.items())) for t in res.study.trials}
    assert len(res.study.trials) == 4 and len(sets) == 4  # a resumed run does not replay the first run's draws
    with pytest.raises(InputError, match="other settings"):
        tune(X * 10 + 5, method="ganomaly", n_trials=5, storage=db, study_name="s", params={"epochs": 1}, refit=False)
    with pytest.raises(InputError, match="other settings"):
        tune(X, method="ganomaly", n_trials=5, storage=db, study_name="s", params={"epochs": 2}, refit=False)
    with pytest.raises(InputError, match="timeout"):
        tune(X, method="ganomaly", n_trials=1, timeout=0, refit=False)


def test_tune_names_why_every_trial_failed(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    from ganad.detectors import GANomaly
    from ganad.tune import tune
    X = np.random.RandomState(0).randn(120, 3).astype(np.float32)
    # a family that cannot take the data's shape is refused before any trial (it failed every one)
    with pytest.raises(InputError, match=r"search_space\['net'\]: is 'dcgan'.*does not fit"):
        tune(X, method="ganomaly", n_trials=2, refit=False, params={"epochs": 1}, search_space={"net": "dcgan"})

    def fails(self, *a, **k):
        raise InputError("X: trips the training. Fix: none")
    monkeypatch.setattr(GANomaly, "fit", fails)
    with pytest.raises(InputError, match="no completed trial.*trial 0: .*trips the training"):  # was "failed: {0: '', 1: ''}"
        tune(X, method="ganomaly", n_trials=2, storage=f"sqlite:///{tmp_path / 'f.db'}", refit=False,
             params={"epochs": 1}, search_space={"latent_dim": {"type": "categorical", "choices": [2, 4]}})
    # a value the parameter itself refuses never reaches a trial (tests/test_tune.py)
    with pytest.raises(InputError, match=r"^search_space\['lr_g'\]: is 0"):
        tune(X, method="ganomaly", n_trials=2, refit=False, params={"epochs": 1}, search_space={"lr_g": 0})


def test_tune_val_data_with_other_columns_is_refused(tmp_path):
    pytest.importorskip("optuna")
    rs = np.random.RandomState(0)
    pd.DataFrame(rs.randn(120, 3), columns=list("abc")).to_csv(tmp_path / "train.csv", index=False)
    V = pd.DataFrame(rs.randn(40, 3), columns=list("cba"))
    V["label"] = np.r_[np.zeros(30), np.ones(10)].astype(int)
    V.to_csv(tmp_path / "val.csv", index=False)
    r = runner.invoke(app, ["tune", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "--trials", "1",
                            "--storage", f"sqlite:///{tmp_path / 't.db'}", "--val-data", str(tmp_path / "val.csv"), "--label-column", "label"])
    assert r.exit_code == 2 and "training order" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "m").exists()


def test_low_severity_refusals(tmp_path, monkeypatch):
    # the service's token: one line, no whitespace inside
    from ganad.serve.app import read_token
    (tmp_path / "tok").write_text("abc\ndef\n")
    with pytest.raises(GanadError, match="one line"):
        read_token(tmp_path / "tok")
    (tmp_path / "tok").write_text("  abc  \n")
    assert read_token(tmp_path / "tok") == "abc"
    monkeypatch.setenv("GANAD_SERVE_TOKEN", "a b")
    with pytest.raises(GanadError, match="GANAD_SERVE_TOKEN"):
        read_token(None)
    # dates are not features
    import ganad
    with pytest.raises(InputError, match="dates or times"):
        ganad.GANomaly(epochs=1).fit((np.datetime64("2024-01-01") + np.arange(40)).reshape(20, 2))
    # series ranges: no rows, a series column the scores lack, a negative row index
    from ganad.series.commands import _range_labels
    df = pd.DataFrame({"index": np.arange(50), "score": np.r_[np.zeros(40), np.ones(10)]})
    for text, match in (("start,end\n", "no range"), ("start,end,series\n3,5,a\n", "'series' column"), ("start,end\n-5,3\n", "negative")):
        (tmp_path / "r.csv").write_text(text)
        with pytest.raises(DataFileError, match=match):
            _range_labels(df, tmp_path / "r.csv")


def test_tune_storage_and_space_refusals(tmp_path):
    pytest.importorskip("optuna")
    import sqlite3

    from ganad.tune import check_space, holdout_split, tune
    from ganad.detectors import GANomaly
    X = np.random.RandomState(0).randn(100, 3).astype(np.float32)
    with pytest.raises(InputError, match="in-memory"):
        tune(X, n_trials=1, storage="sqlite://", refit=False)
    con = sqlite3.connect(tmp_path / "app.db")
    con.execute("CREATE TABLE users (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(InputError, match="something else"):
        tune(X, n_trials=1, storage=f"sqlite:///{tmp_path / 'app.db'}", refit=False)
    with sqlite3.connect(tmp_path / "app.db") as con:  # untouched
        assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")} == {"users"}
    with pytest.raises(InputError, match="step"):
        check_space({"lr_g": {"type": "float", "low": 1e-4, "high": 1e-3, "step": 0}}, GANomaly)
    with pytest.raises(InputError, match="lower tune_fraction"):
        holdout_split(60, 0.9, 0)
    with pytest.raises(InputError, match="raise tune_fraction"):
        holdout_split(60, 0.1, 0)


def test_stream_names_the_stdin_line_of_a_nan(series_model, tmp_path):
    from ganad.series.commands import stream_lines
    series_model.save(tmp_path / "m")
    text = "\n".join(f"{a},{b}" for a, b in S2[:29]) + "\nnan,1.0\n"
    with pytest.raises(InputError, match="stdin line 30"):
        stream_lines(tmp_path / "m", io.StringIO(text), lambda s: None)


@pytest.mark.parametrize("cell", ["1_0", "\u0661"])  # digit-group underscore; ARABIC-INDIC DIGIT ONE
def test_stream_refuses_number_spellings_the_file_reader_reads_as_text(series_model, tmp_path, cell):
    """Python's float() took '1_0' as 10 (and non-ASCII digits), so `ganad stream` scored a line that
    `ganad score` refuses (pandas reads such cells as text)."""
    from ganad.data.readers import _number
    from ganad.exceptions import GanadError
    from ganad.series.commands import stream_lines
    series_model.save(tmp_path / "m")
    assert not _number(cell) and _number("1.5e3") and _number(" -2 ")
    text = "\n".join(f"{a},{b}" for a, b in S2[:29]) + f"\n{cell},1.0\n"
    with pytest.raises((InputError, GanadError), match="line 30"):
        stream_lines(tmp_path / "m", io.StringIO(text), lambda s: None)
