"""Inputs found by an edge-case sweep of the public API and CLI (sixth session): each used to crash
with a raw traceback, train a model that scores every sample the same, or write a file that would
not load. Each now gets a clear error or works."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ganad
from ganad.cli import app
from ganad.exceptions import InputError

runner = CliRunner()
rs = np.random.RandomState(0)


@pytest.mark.parametrize("cls, shape, kw, fix", [
    (ganad.ALAD, (1, 256), {"depth": 9}, "depth <= 8"),          # one halving too many for 256 samples
    (ganad.GANomaly, (1, 256), {"depth": 9}, "depth <= 8"),
    (ganad.ALAD, (2, 1), {}, "net='mlp'"),                        # windows of one time step
    (ganad.GANomaly, (1, 1, 8), {}, "net='mlp'"),                # an 'image' one row high
    (ganad.GANomaly, (3, 1, 1), {}, "net='mlp'"),                # one pixel
    (ganad.GANomaly, (1, 28, 28), {"depth": 6}, "depth <="),     # too deep for MNIST
])
def test_networks_that_would_leave_nothing_are_refused_before_training(cls, shape, kw, fix):
    X = rs.randn(16, *shape).astype(np.float32)
    with pytest.raises(InputError, match="halve") as exc:
        cls(epochs=1, batch_size=8, random_state=0, verbose=False, **kw).fit(X)
    assert fix in str(exc.value)


def test_the_deepest_network_that_fits_still_trains():
    X = rs.randn(16, 1, 256).astype(np.float32)
    det = ganad.ALAD(epochs=1, batch_size=8, depth=7, random_state=0, verbose=False).fit(X)
    s = det.decision_function(np.r_[X[:2], 50 * np.ones((1, 1, 256), np.float32)])
    assert np.isfinite(s).all() and np.ptp(s) > 0


def test_series_csv_with_utc_offsets_fits_and_scores(tmp_path):
    t = np.arange(300)
    df = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=300, freq="min", tz="UTC"),
                       "a": np.sin(t / 9), "b": np.cos(t / 7)})
    df.to_csv(tmp_path / "tz.csv", index=False)
    assert "+00:00" in (tmp_path / "tz.csv").read_text().splitlines()[1]
    r = runner.invoke(app, ["fit", str(tmp_path / "tz.csv"), "-o", str(tmp_path / "m"), "--window", "16", "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "tz.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "s.csv")) == 300


def test_series_detector_reads_aware_and_string_times_and_names_bad_ones():
    t = np.arange(200)
    X = np.c_[np.sin(t / 9), np.cos(t / 7)]
    aware = pd.Series(pd.date_range("2024-01-01", periods=200, freq="min", tz="Europe/Paris"))
    naive = pd.Series(pd.date_range("2023-12-31 23:00", periods=200, freq="min"))  # the same instants in UTC
    kw = {"window": 16, "detector_params": {"epochs": 1, "random_state": 0, "verbose": False}}
    a = ganad.SeriesDetector(**kw).fit(X, time=aware)
    b = ganad.SeriesDetector(**kw).fit(X, time=aware.astype(str).to_numpy())
    c = ganad.SeriesDetector(**kw).fit(X, time=naive)
    np.testing.assert_allclose(a.decision_scores_, c.decision_scores_)
    np.testing.assert_allclose(b.decision_scores_, c.decision_scores_)
    with pytest.raises(InputError, match="time"):
        ganad.SeriesDetector(**kw).fit(X, time=np.array(["not a time"] * 200))


def test_series_detector_saves_numpy_scalar_parameters(tmp_path):
    X = np.sin(np.arange(200) / 9)[:, None]
    sd = ganad.SeriesDetector(window=np.int64(16), stride=np.int64(4),
                              detector_params={"epochs": np.int64(1), "random_state": 0, "verbose": False}).fit(X)
    sd.save(tmp_path / "m")
    cfg = json.loads(next((tmp_path / "m").glob("*.json")).read_text())
    assert cfg  # plain JSON
    np.testing.assert_allclose(ganad.load(tmp_path / "m").decision_function(X), sd.decision_function(X))


def test_one_column_csv_starting_with_zero_warns_which_reading_was_taken(tmp_path, caplog):
    from ganad.data.readers import read_array
    (tmp_path / "x.csv").write_text("0\n1\n0\n2\n")
    with caplog.at_level(logging.WARNING, logger="ganad"):
        X = read_array(tmp_path / "x.csv")
    assert len(X) == 3 and "read as a header" in caplog.text and "x0" in caplog.text


def test_save_refuses_a_parameter_fit_would_refuse(tmp_path):
    X = rs.randn(64, 4).astype(np.float32)
    det = ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(X)
    det.set_params(contamination=0.9)
    with pytest.raises(InputError, match="contamination") as exc:
        det.save(tmp_path / "m")
    assert "set it back" in str(exc.value) and not (tmp_path / "m").exists()
    det.set_params(contamination=0.1)
    det.save(tmp_path / "m")
    assert ganad.load(tmp_path / "m").contamination == 0.1


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    d = tmp_path_factory.mktemp("edge_cli")
    X = np.random.RandomState(1).randn(80, 3)
    pd.DataFrame(X[:60], columns=list("abc")).to_csv(d / "train.csv", index=False)
    pd.DataFrame(X[60:], columns=list("abc")).to_csv(d / "test.csv", index=False)
    pd.DataFrame({"y": [0] * 15 + [1] * 5}).to_csv(d / "labels.csv", index=False)
    for args in (["fit", str(d / "train.csv"), "-o", str(d / "model"), "--epochs", "1", "-q"],
                 ["score", str(d / "model"), str(d / "test.csv"), "-o", str(d / "s.csv")]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
    return d


def test_evaluate_refuses_to_replace_a_report_without_overwrite(scored):
    d = scored
    args = ["evaluate", str(d / "s.csv"), "--labels", str(d / "labels.csv"), "-o", str(d / "ev")]
    assert runner.invoke(app, args).exit_code == 0
    before = (d / "ev" / "metrics.json").stat().st_mtime_ns
    r = runner.invoke(app, args)
    assert r.exit_code != 0 and "--overwrite" in r.output
    assert (d / "ev" / "metrics.json").stat().st_mtime_ns == before
    assert runner.invoke(app, args + ["--overwrite"]).exit_code == 0


def test_evaluate_and_export_refuse_bad_output_paths_without_a_traceback(scored):
    d = scored
    (d / "afile").write_text("x")
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(d / "labels.csv"), "-o", str(d / "afile")])
    assert r.exit_code != 0 and "afile" in r.output and "Traceback" not in r.output
    assert (d / "afile").read_text() == "x"
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(d / "labels.csv"), "-o", str(d / "afile" / "ev")])
    assert r.exit_code != 0 and "Traceback" not in r.output
    for out in (d, d / "afile" / "m.onnx"):  # a folder; a path under a file
        r = runner.invoke(app, ["export", str(d / "model"), "-o", str(out)])
        assert r.exit_code != 0 and isinstance(r.exception, SystemExit) and "Traceback" not in r.output, r.output


@pytest.mark.parametrize("busy", ["report.html", "metrics.json"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_evaluate_refuses_a_folder_where_it_writes_a_file_before_writing_any(scored, tmp_path, busy, overwrite):
    """A folder named like one of evaluate's files (report.html/) ended in a traceback after
    metrics.json, roc.png and pr.png were written; refused first, naming it, as `ganad demo` does."""
    out = tmp_path / "ev"
    (out / busy).mkdir(parents=True)
    r = runner.invoke(app, ["evaluate", str(scored / "s.csv"), "--labels", str(scored / "labels.csv"), "-o", str(out), *overwrite])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert busy in r.output and "Fix:" in r.output
    assert sorted(p.name for p in out.iterdir()) == [busy]


def test_fit_help_lists_every_method_the_registry_has():
    from ganad.cli import METHOD_NAMES
    from ganad.detectors import DETECTORS
    assert sorted(METHOD_NAMES) == sorted(DETECTORS)
    r = runner.invoke(app, ["fit", "--help"], terminal_width=400)
    assert all(m in r.output for m in ("tadgan", "egbad"))


@pytest.mark.parametrize("name, fix", [("s.parquet", "s.csv"), ("s.npy", "s.csv"), ("s.tsv", "s.csv"), ("-", "file path")])
def test_score_refuses_an_output_name_it_would_not_honour(scored, name, fix):
    d = scored
    out = d / name if name != "-" else name
    r = runner.invoke(app, ["score", str(d / "model"), str(d / "test.csv"), "-o", str(out)])
    assert r.exit_code != 0 and fix in r.output and not Path(str(out)).exists()


def test_calibrate_without_labels_needs_more_than_one_row():
    X = rs.randn(64, 4).astype(np.float32)
    det = ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(X)
    with pytest.raises(InputError, match="X_val.*1 sample"):
        det.calibrate(X[:1])
    det.calibrate(X[:8])  # several rows: fine


def test_contamination_true_is_named_a_boolean():
    with pytest.raises(InputError, match="boolean"):
        ganad.GANomaly(contamination=True, epochs=1).fit(rs.randn(32, 3))


def test_dataframe_duplicate_names_and_nullable_missing_values_are_named_for_what_they_are():
    df = pd.DataFrame(rs.randn(32, 3), columns=["a", "a", "b"])
    with pytest.raises(InputError, match="duplicate column name"):
        ganad.GANomaly(epochs=1).fit(df)
    df = pd.DataFrame({"a": pd.array(list(range(31)) + [None], dtype="Int64"), "b": rs.randn(32)})
    with pytest.raises(InputError, match="NaN"):
        ganad.GANomaly(epochs=1).fit(df)
    det = ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(df.iloc[:31])  # without the NA: Int64 works
    assert np.isfinite(det.decision_function(df.iloc[:31])).all()


def test_random_state_object_saves_as_none_and_scores_the_same(tmp_path, caplog):
    X = rs.randn(64, 4).astype(np.float32)
    det = ganad.GANomaly(epochs=1, random_state=np.random.RandomState(0), verbose=False).fit(X)
    with caplog.at_level(logging.WARNING, logger="ganad"):
        det.save(tmp_path / "m")
    assert "saved as None" in caplog.text
    back = ganad.load(tmp_path / "m")
    assert back.random_state is None
    np.testing.assert_allclose(back.decision_function(X), det.decision_function(X), rtol=1e-6)


def test_headerless_csv_warning_comes_once_per_command(tmp_path, caplog):
    np.savetxt(tmp_path / "x.csv", rs.randn(40, 3), delimiter=",")
    with caplog.at_level(logging.WARNING, logger="ganad"):
        r = runner.invoke(app, ["fit", str(tmp_path / "x.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert caplog.text.count("the first line holds only numbers") == 1


def test_demo_checks_its_output_path_before_training(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "report.html").mkdir()
    (tmp_path / "notes" / "model").mkdir(parents=True)  # the demo's model folder, holding someone's files
    (tmp_path / "notes" / "model" / "notes.txt").write_text("x")
    for out, match in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "d", "afile"), (tmp_path / "busy", "report.html"),
                       (tmp_path / "notes", "exists and is not a ganad model directory")):  # was refused after training
        r = runner.invoke(app, ["demo", "-o", str(out), "--epochs", "1"])
        assert r.exit_code == 2 and match in " ".join(r.output.split()), r.output
        assert "training" not in r.output, r.output
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["report.html"]  # nothing written
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["model"]


@pytest.mark.parametrize("weights", ['{"residual": null}', '[1]', '{"residual": "a"}', '{"residual": true}'])
def test_calibrate_weights_that_are_not_numbers_are_named(scored, weights):
    d = scored
    r = runner.invoke(app, ["calibrate", str(d / "model"), str(d / "test.csv"), "--compose", "weights", "--weights", weights,
                            "-o", str(d / "cal")])
    assert r.exit_code == 2 and "weights" in r.output and "Traceback" not in r.output, r.output
    assert not (d / "cal").exists()


def test_benchmark_lists_every_protocol():
    r = runner.invoke(app, ["benchmark", "nosuch", "--data", ".", "-o", "bench-never-written"])
    assert r.exit_code == 2 and "nab" in r.output


def test_headerless_label_file_keeps_its_first_label(scored):
    d = scored
    (d / "y_nohdr.csv").write_text("\n".join(["1"] + ["0"] * 14 + ["1"] * 5) + "\n")
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(d / "y_nohdr.csv"), "-o", str(d / "ev_nohdr")])
    assert r.exit_code == 0, r.output
    assert json.loads((d / "ev_nohdr" / "metrics.json").read_text())["n_anomalies"] == 6


def test_evaluate_ranks_the_inf_scores_of_nonfinite_max_first(scored):
    d = scored
    s = pd.read_csv(d / "s.csv")
    s.loc[17, "score"] = np.inf  # what `ganad score --nonfinite max` writes for a row that overflowed
    s.to_csv(d / "s_inf.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "s_inf.csv"), "--labels", str(d / "labels.csv"), "-o", str(d / "ev_inf")])
    assert r.exit_code == 0 and "inf" in r.output, r.output
    # an inf score is above the threshold too: flagged in the decisions taken from the threshold column
    # (no 'label' column) and at the plots' operating point, even when the finite scores stay below it
    tau = float(s["threshold"].iloc[0])
    s2 = s.drop(columns=["label"]) if "label" in s.columns else s.copy()
    s2["score"] = np.minimum(s2["score"], tau - 1.0)
    s2.loc[17, "score"] = np.inf
    s2.to_csv(d / "s_inf2.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "s_inf2.csv"), "--labels", str(d / "labels.csv"), "-o", str(d / "ev_inf2")])
    assert r.exit_code == 0, r.output
    assert json.loads((d / "ev_inf2" / "metrics.json").read_text())["n_flagged"] == 1
    r = runner.invoke(app, ["evaluate", str(d / "s_inf2.csv"), "--labels", str(d / "labels.csv"), "--max-buffer", "8",
                            "-o", str(d / "ev_buf")])
    assert r.exit_code == 2 and "--max-buffer 8: applies to series ranges" in r.output and not (d / "ev_buf").exists()
    s.loc[3, "score"] = np.nan  # NaN stays refused
    s.to_csv(d / "s_nan.csv", index=False)
    r = runner.invoke(app, ["evaluate", str(d / "s_nan.csv"), "--labels", str(d / "labels.csv"), "-o", str(d / "ev_nan")])
    assert r.exit_code == 2


def test_headerless_float_labels_and_the_printed_threshold(scored):
    d = scored
    np.savetxt(d / "y_float.csv", np.r_[np.ones(1), np.zeros(14), np.ones(5)])  # np.savetxt's default: 1.000000000000000000e+00
    r = runner.invoke(app, ["evaluate", str(d / "s.csv"), "--labels", str(d / "y_float.csv"), "-o", str(d / "ev_float")], terminal_width=200)
    assert r.exit_code == 0, r.output
    m = json.loads((d / "ev_float" / "metrics.json").read_text())
    assert m["n_anomalies"] == 6
    assert f"{m['threshold']:.4g}"[:4] in r.output  # the console table shows τ, not '-'


def test_config_verbose_false_is_kept_and_huge_sizes_are_refused(tmp_path):
    X = np.random.RandomState(0).randn(40, 3)
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "p.toml").write_text("verbose = false\nepochs = 1\n")
    r = runner.invoke(app, ["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--config", str(tmp_path / "p.toml")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "m" / "config.json").read_text())["params"]["verbose"] is False
    for p in ("latent_dim", "width", "depth"):
        with pytest.raises(InputError, match=p):
            ganad.GANomaly(epochs=1, **{p: 10**20}).fit(X)


def test_report_refuses_bad_arguments(tmp_path):
    from ganad.report import write_report
    with pytest.raises(InputError, match="scores"):
        write_report(tmp_path / "r.html", title="t", scores=[])
    with pytest.raises(InputError, match="max_examples"):
        write_report(tmp_path / "r.html", title="t", scores=[0.1, 0.2], max_examples=-1)
    with pytest.raises(InputError, match="tables"):
        write_report(tmp_path / "r.html", title="t", scores=[0.1, 0.2], tables=[1, 2])
    write_report(tmp_path / "r.html", title="t", scores=[0.1, 0.2], notes=5)
    assert "<p>5</p>" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_fewer_than_eight_training_samples_are_refused(n, tmp_path):
    """2 to 7 rows used to train and then score fresh normal rows 1e2 to 1e8 (docs/training.md,
    "How much data"): an epoch's only batch is below the loop's MIN_TAIL and the median / MAD rest
    on a handful of values."""
    X = rs.randn(n, 8).astype(np.float32)
    with pytest.raises(InputError, match=rf"^X: has {n} samples?, but at least 8 are needed.*Fix: pass at least 8 samples"):
        ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(X)
    pd.DataFrame(X).to_csv(tmp_path / "tiny.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "tiny.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert r.exit_code == 2 and "at least 8 are needed" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("cls", [ganad.GANomaly, ganad.BiGAN])
def test_training_sets_too_small_for_a_held_out_slice_warn(cls):
    X = rs.randn(20, 8).astype(np.float32)
    with pytest.warns(UserWarning, match=r"^X: has 20 samples, too few for a held-out slice.*Fix: train on at least 155 samples.*calibrate"):
        det = cls(epochs=1, random_state=0, verbose=False).fit(X)
    assert np.isfinite(det.decision_function(X)).all()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a held-out slice, or none asked for: no warning
        cls(epochs=1, random_state=0, verbose=False, validation_fraction=0.0).fit(X)
        cls(epochs=1, random_state=0, verbose=False).fit(rs.randn(160, 8).astype(np.float32))


def test_the_cli_prints_ganads_warnings_as_one_line_like_its_errors(tmp_path):
    """`ganad fit` on too few rows for a held-out slice says so as `warning: X: ... Fix: ...` on
    stderr, not as Python's `path:line: UserWarning:` with a source line; the fit still succeeds."""
    import pandas as pd
    pd.DataFrame(rs.randn(40, 4), columns=list("abcd")).to_csv(tmp_path / "t.csv", index=False)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # pyproject's filterwarnings hides this warning from the other tests
        r = CliRunner().invoke(app, ["fit", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m"), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "warning: X: has 40 samples, too few for a held-out slice" in text and "Fix: train on at least 155 samples" in text
    assert "UserWarning" not in r.output and (tmp_path / "m" / "config.json").exists()


def test_csv_rows_one_field_longer_whose_first_fields_count_from_0_are_refused_not_shifted(tmp_path):
    """Rows one field longer than the header make pandas take the first field as an index; when those
    fields count 0, 1, 2, ... the index looked like none and the rows were read shifted, silently."""
    from ganad.data.readers import read_array
    from ganad.exceptions import InputError
    (tmp_path / "lead.csv").write_text("a,b,c\n0,2,3,4\n1,6,7,8\n")
    with pytest.raises(InputError, match="lead.csv: has rows with more fields than the header's 3 columns"):
        read_array(tmp_path / "lead.csv")
    (tmp_path / "ok.csv").write_text("a,b,c\n0,2,3\n1,6,7\n")
    assert read_array(tmp_path / "ok.csv").tolist() == [[0, 2, 3], [1, 6, 7]]


def test_a_float64_torch_default_dtype_neither_breaks_fit_nor_changes_the_model():
    """torch.set_default_dtype(torch.float64) in the user's session: fit failed ('mat1 and mat2 must
    have the same dtype'); now fit and scoring run in float32 as always and give the same model, and the
    session's default is left as it was."""
    import torch
    from ganad import AnoGAN, GANomaly
    X = np.random.RandomState(0).randn(300, 6).astype(np.float32)
    for cls in (GANomaly, AnoGAN):
        ref = cls(epochs=1, random_state=0).fit(X)
        prev = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            det = cls(epochs=1, random_state=0).fit(X)
            s, s_ref = det.decision_function(X[:20]), ref.decision_function(X[:20])
            assert torch.get_default_dtype() == torch.float64
        finally:
            torch.set_default_dtype(prev)
        np.testing.assert_array_equal(s, s_ref)


def test_fit_warnings_name_the_callers_line():
    """fit's warnings (here: too few samples for a held-out slice) point at the line that called fit,
    not at a line inside ganad."""
    import warnings as w
    from ganad import GANomaly
    X = np.random.RandomState(0).randn(60, 4).astype(np.float32)
    with w.catch_warnings(record=True) as rec:
        w.simplefilter("always")
        GANomaly(epochs=1, random_state=0).fit(X)
    msgs = [r for r in rec if "held-out slice" in str(r.message)]
    assert msgs and all(r.filename == __file__ for r in msgs), [(r.filename, r.lineno) for r in msgs]


def test_dataframe_value_errors_name_the_column():
    """NaN / out-of-range values in a DataFrame are reported by column name, not by flat position."""
    import pandas as pd
    from ganad.data.validation import check_array
    with pytest.raises(InputError, match=r"first at row 1, column 'temp'"):
        check_array(pd.DataFrame({"a": [1.0, 2, 3], "temp": [1, np.nan, 3]}))
    with pytest.raises(InputError, match=r"first at row 1, column 'big'"):
        check_array(pd.DataFrame({"a": [1.0, 2, 3], "big": [1, 1e300, 3]}))
    with pytest.raises(InputError, match=r"flat feature 1"):
        check_array(np.array([[1.0, np.nan]]))


def test_64_bit_integers_float64_cannot_hold_exactly_are_named_in_a_warning():
    """2**62 + k for k < 1000 became a handful of float64 values: the scaler called the column
    constant and the CLI said it "holds one value in every training row", with no word of why."""
    from ganad.data.validation import check_array
    from ganad.exceptions import PrecisionWarning
    rng = np.random.default_rng(0)
    X = np.c_[(rng.normal(size=(50, 2)) * 100).astype(np.int64), 2 ** 62 + rng.integers(0, 1000, 50)]
    with pytest.warns(PrecisionWarning, match=r"flat feature 2.*2\*\*53.*Fix:"):
        check_array(X, "X", dtype="float")
    df = pd.DataFrame(X, columns=["a", "b", "ts_ns"])
    with pytest.warns(PrecisionWarning, match="'ts_ns'"):
        check_array(df, "X", dtype="float")
    with pytest.warns(PrecisionWarning):
        check_array(np.full((10, 1), 2 ** 63 + 5, dtype=np.uint64), "X", dtype="float")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ordinary integers, and 2**53 itself, warn of nothing
        check_array(np.c_[X[:, :2], np.full(50, 2 ** 53)], "X", dtype="float")


def test_inexact_integers_are_named_in_mixed_frames_table_files_and_not_for_float16(tmp_path):
    """The PrecisionWarning only saw arrays still int64: a DataFrame mixing float and integer columns,
    and every CSV / Parquet file (read as float64 as a whole), passed without it. float16 input got
    a spurious 'overflow encountered in cast' from the float32-range check."""
    import warnings

    from ganad.data.readers import read_array
    from ganad.data.validation import check_array
    from ganad.exceptions import PrecisionWarning
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=50), "ts": 2 ** 62 + rng.integers(0, 1000, 50)})
    with pytest.warns(PrecisionWarning, match="'ts'"):
        check_array(df, "X", dtype="float")
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.warns(PrecisionWarning, match=r"t\.csv.*'ts'"):
        read_array(tmp_path / "t.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_array(rng.normal(size=(50, 3)).astype(np.float16), "X", dtype="float")
        check_array(df[["a"]].assign(n=np.arange(50)), "X", dtype="float")  # ordinary integers: nothing to say


def test_masked_arrays_are_refused_and_tensors_read_whatever_their_autograd_or_dtype():
    """Arrays audit (twenty-fifth session): np.asarray dropped a masked array's mask, so the values
    under it were scored (a masked 1e6 gave a score of 12 instead of -0.4); a bfloat16 tensor or one
    that requires grad was refused with a fix that did not apply."""
    import torch
    X = rs.randn(64, 5).astype(np.float32)
    det = ganad.GANomaly(epochs=1, batch_size=16, random_state=0, verbose=False).fit(X)
    raw = X[:6].copy()
    raw[4, 3] = 1e6
    m = np.ma.masked_array(raw, mask=np.zeros(raw.shape, bool))
    m.mask[4, 3] = True
    for call in (det.decision_function, det.predict, det.score_components, lambda a: ganad.GANomaly(epochs=1).fit(a)):
        with pytest.raises(InputError, match=r"X: is a masked array with 1 masked value\(s\), the first at row 4, column 3"):
            call(m)
    np.testing.assert_array_equal(det.decision_function(np.ma.masked_array(X[:6])), det.decision_function(X[:6]))
    t = torch.tensor(X[:6], requires_grad=True)
    np.testing.assert_array_equal(det.decision_function(t), det.decision_function(X[:6]))
    b = torch.tensor(X[:6]).to(torch.bfloat16)
    np.testing.assert_array_equal(det.decision_function(b), det.decision_function(b.float().numpy()))
