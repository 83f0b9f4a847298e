"""Every error a user can cause names the input, the problem and the fix, and writes nothing."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ganad
from ganad import AnoGAN
from ganad.cli import app
from ganad.exceptions import DataFileError, InputError, ModelFileError, NotFittedError

runner = CliRunner()
FAST = dict(epochs=1, search_n_max=5, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    return AnoGAN(**FAST).fit(X)


@pytest.mark.parametrize("bad,pattern", [
    (np.array([[1.0, np.nan], [2.0, 3.0]]), "NaN or infinite.*row 0"),
    (np.array([[1.0, 2.0], [np.inf, 3.0]]), "NaN or infinite.*row 1"),
    (np.zeros((0, 3)), "empty"),
    (np.zeros((3, 0)), "0 feature"),
    (np.zeros((2, 2, 2, 2, 2)), "5 dimensions"),
    (np.zeros(5), "1-D"),
    (np.array([["a", "b"], ["c", "d"]]), "non-numeric"),
    (np.ones((1, 3)), "1 sample"),
])
def test_fit_rejects_bad_arrays(bad, pattern):
    with pytest.raises(InputError, match=pattern) as e:
        AnoGAN(**FAST).fit(bad)
    assert "Fix:" in str(e.value)


def test_non_numeric_dataframe_column_is_named():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "kind": ["x", "y", "z"]})
    with pytest.raises(InputError, match=r"non-numeric column.*kind"):
        AnoGAN(**FAST).fit(df)


def test_a_pandas_series_is_refused_with_a_fix(fitted):
    """A pandas Series has to_numpy and dtypes, so it was taken for a DataFrame and crashed with
    AttributeError ('Series' object has no attribute 'columns') in fit, scoring and multi-view views."""
    for call in (lambda: AnoGAN(**FAST).fit(pd.Series(np.arange(20.0))), lambda: fitted.decision_function(pd.Series(np.zeros(4)))):
        with pytest.raises(InputError, match=r"X: is a pandas Series.*Fix: .*to_frame\(\)"):
            call()


def test_scoring_rejects_feature_mismatch_and_nan(fitted):
    with pytest.raises(InputError, match="X has 5 features, but AnoGAN is expecting 4 features"):
        fitted.decision_function(np.zeros((3, 5)))
    with pytest.raises(InputError, match="shape"):
        fitted.decision_function(np.zeros((3, 1, 4)))
    with pytest.raises(InputError, match="NaN"):
        fitted.predict(np.array([[0, 0, np.nan, 0]]))


def test_unfitted_detector():
    with pytest.raises(NotFittedError, match="fit"):
        AnoGAN().decision_function(np.zeros((2, 2)))


@pytest.mark.parametrize("param,value", [("contamination", 0.9), ("epochs", -1), ("lr_g", 0.0), ("objective", "lsgan"),
                                         ("net", "transformer"), ("prior", "cauchy"), ("search_distance", "cos")])
def test_bad_parameters(param, value):
    with pytest.raises(ValueError, match="Fix"):
        AnoGAN(**{**FAST, param: value}).fit(np.random.randn(16, 3))


def test_missing_and_corrupt_model_directories(fitted, tmp_path):
    with pytest.raises(ModelFileError, match="not a model directory"):
        ganad.load(tmp_path / "nope")
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{ not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        ganad.load(tmp_path / "m")
    fitted.save(tmp_path / "m2")
    w = tmp_path / "m2" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        ganad.load(tmp_path / "m2")
    fitted.save(tmp_path / "m3")
    cfg = json.loads((tmp_path / "m3" / "config.json").read_text())
    cfg["state"]["data_shape"] = [7]
    (tmp_path / "m3" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="inconsistent or corrupt"):
        ganad.load(tmp_path / "m3")


def test_save_refuses_to_overwrite_a_foreign_directory(fitted, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("keep me")
    with pytest.raises(ModelFileError, match="not a ganad model directory"):
        fitted.save(tmp_path / "d")
    assert (tmp_path / "d" / "precious.txt").read_text() == "keep me"


def test_unreadable_files_give_clear_errors(tmp_path):
    from ganad.data.readers import read_array
    np.save(tmp_path / "x.npy", np.random.randn(50, 3))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="t.npy.*cannot be read"):
        read_array(tmp_path / "t.npy")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x00\x01")
    with pytest.raises((DataFileError, InputError)):
        read_array(tmp_path / "bin.csv")
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(DataFileError, match="unknown extension"):
        read_array(tmp_path / "x.xlsx")
    with pytest.raises(DataFileError, match="does not exist"):
        read_array(tmp_path / "missing.csv")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2)), b=np.ones((2, 2)))
    with pytest.raises(DataFileError, match="unclear which"):
        read_array(tmp_path / "two.npz")


def test_wfdb_records_point_to_the_beat_loader(tmp_path):
    """A folder of WFDB records (MIT-BIH's .hea / .dat / .atr) or one of their files passed as data is refused
    with the way to such data named: ganad.data.load_mitbih cuts beats a file can hold (a new user pointed
    `ganad fit` at the mitdb folder and was told only of CSV files and image folders)."""
    from ganad.data.readers import read_array
    rec = tmp_path / "mitdb"
    rec.mkdir()
    for ext in ("hea", "dat", "atr"):
        (rec / f"100.{ext}").write_bytes(b"x")
    for path in (rec, rec / "100.dat", rec / "100.hea"):
        with pytest.raises(DataFileError, match=r"load_mitbih\(folder"):
            read_array(path)
    other = tmp_path / "other"  # no record headers: no ECG hint
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(DataFileError) as exc:
        read_array(other)
    assert "load_mitbih" not in str(exc.value)
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(DataFileError) as exc:
        read_array(tmp_path / "x.xlsx")
    assert "load_mitbih" not in str(exc.value)


def test_cli_fails_cleanly_and_writes_nothing(fitted, tmp_path):
    np.save(tmp_path / "x.npy", np.random.randn(50, 3))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[: len(data) // 2])
    r = runner.invoke(app, ["fit", str(tmp_path / "t.npy"), "-o", str(tmp_path / "model"), "--epochs", "1", "-q"])
    assert r.exit_code != 0 and "cannot be read" in r.output
    assert not (tmp_path / "model").exists()

    pd.DataFrame({"a": [1.0, np.nan], "b": [1.0, 2.0]}).to_csv(tmp_path / "nan.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "nan.csv"), "-o", str(tmp_path / "model"), "-q"])
    assert r.exit_code != 0 and "NaN" in r.output and not (tmp_path / "model").exists()

    fitted.save(tmp_path / "m")  # 4 features
    pd.DataFrame(np.zeros((5, 3))).to_csv(tmp_path / "three.csv", index=False)
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "three.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code != 0 and "expecting 4 features" in r.output
    assert not (tmp_path / "s.csv").exists() and not list(tmp_path.glob(".s.csv*"))

    r = runner.invoke(app, ["score", str(tmp_path / "missing"), str(tmp_path / "three.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code != 0 and "not a model directory" in r.output

    r = runner.invoke(app, ["fit", str(tmp_path / "three.csv"), "-o", str(tmp_path / "x"), "--method", "nope"])
    assert r.exit_code != 0 and "unknown method" in r.output


# NPY / NPZ files that numpy reads but that cannot be data: each message names the file, the problem and a fix
_BAD_NPY = {
    "zero_d": (lambda: np.float64(3), "single number \\(a 0-D array\\)", "2-D array of shape \\(samples, features\\)"),
    "object": (lambda: np.array([[1.0, "a"], [2.0, "b"]], dtype=object), "Python objects.*pickle", "save a numeric array"),
    "empty": (lambda: np.zeros((0, 3)), "no samples \\(shape \\(0, 3\\)\\)", "at least one sample"),
    "one_d": (lambda: np.arange(50.0), "1-D with shape \\(50,\\)", "reshape\\(-1, 1\\)"),
    "struct": (lambda: np.zeros(50, dtype=[("a", "f8"), ("b", "f8")]), "structured array \\(fields \\['a', 'b'\\]\\)",
               "structured_to_unstructured"),
}


@pytest.mark.parametrize("kind", sorted(_BAD_NPY))
def test_unusable_npy_names_file_problem_and_fix(tmp_path, kind):
    from ganad.data.readers import iter_chunks, read_array
    make, problem, fix = _BAD_NPY[kind]
    p = tmp_path / f"{kind}.npy"
    np.save(p, make(), allow_pickle=True)
    for read in (lambda: read_array(p), lambda: next(iter_chunks(p, 10))):
        with pytest.raises((InputError, DataFileError), match=f"^{p}: .*{problem}.*Fix: .*{fix}") as e:
            read()
        assert "len() of unsized" not in str(e.value) and "memory-mapped" not in str(e.value) and "check the file is complete" not in str(e.value)
    np.savez(tmp_path / f"{kind}.npz", X=make())  # the same arrays in an NPZ archive
    with pytest.raises((InputError, DataFileError), match=f"{kind}.npz \\(array 'X'\\): .*{problem}.*Fix: "):
        read_array(tmp_path / f"{kind}.npz")


def test_labels_may_be_a_1d_npy(tmp_path):
    from ganad.data.readers import read_array
    np.save(tmp_path / "y.npy", np.r_[0, 1, 0])
    assert read_array(tmp_path / "y.npy", allow_1d=True).tolist() == [0, 1, 0]


@pytest.mark.parametrize("kind", sorted(_BAD_NPY))
def test_cli_refuses_unusable_npy_with_one_error_line(fitted, tmp_path, kind):
    make, problem, fix = _BAD_NPY[kind]
    p = tmp_path / f"{kind}.npy"
    np.save(p, make(), allow_pickle=True)
    fitted.save(tmp_path / "m")
    for args, out in ((["fit", str(p), "-o", str(tmp_path / "model"), "--epochs", "1", "-q"], tmp_path / "model"),
                      (["score", str(tmp_path / "m"), str(p), "-o", str(tmp_path / "s.csv")], tmp_path / "s.csv")):
        r = CliRunner(env={"COLUMNS": "1000"}).invoke(app, args)
        assert r.exit_code == 2, r.output
        assert r.output.count("error:") == 1 and f"{kind}.npy: " in r.output and "Fix:" in r.output, r.output
        assert "Traceback" not in r.output and "X:" not in r.output and "check the file is complete" not in r.output
        assert not out.exists()


def test_a_boolean_column_with_missing_values_is_named_as_such(fitted, tmp_path):
    """True / False with empty cells reads as objects in pandas: the message says boolean with N missing values
    and how to fix it, not the generic "non-numeric" (which suggested --sep / --exclude)."""
    from ganad.data.readers import iter_chunks, read_array
    p = tmp_path / "flags.csv"
    p.write_text("a,b,c,flag\n" + "".join(f"{i},{i + 1},{i + 2},{['True', 'False', 'True', 'False', 'True', '', 'False', ''][i]}\n" for i in range(8)))
    with pytest.raises(InputError) as e:
        read_array(p)
    msg = str(e.value)
    assert "'flag'" in msg and "boolean" in msg and "2 missing value(s)" in msg and "first at data row 5" in msg
    assert "non-numeric" not in msg and "Fix:" in msg and "fillna" in msg
    with pytest.raises(InputError, match=r"2 missing value\(s\) in data rows 4 to 7 \(first at data row 5\)"):
        list(iter_chunks(p, 4))  # a chunk: the count and rows of that chunk, first row counted in the file
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "flag": pd.array([True, None, False], dtype="boolean")}).to_parquet(tmp_path / "flags.parquet")
    with pytest.raises(InputError, match="boolean.*1 missing value"):
        read_array(tmp_path / "flags.parquet")
    r = runner.invoke(app, ["fit", str(p), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert r.exit_code == 2 and "boolean" in r.output and "Fix:" in r.output and not (tmp_path / "m").exists()


def test_exclude_with_an_array_file_is_refused_not_ignored(fitted, tmp_path):
    """--exclude names columns; an NPY / NPZ array has none. Before: silently ignored (every column a feature)."""
    from ganad.data.readers import read_array
    X = np.random.RandomState(0).randn(40, 4).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "x.npz", X=X)
    for f in ("x.npy", "x.npz"):
        with pytest.raises(InputError, match=r"--exclude id: .*has no column names.*Fix: drop --exclude"):
            read_array(tmp_path / f, exclude=["id"])
    fitted.save(tmp_path / "model")
    for args in (["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m2"), "--epochs", "1", "-q"],
                 ["score", str(tmp_path / "model"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.csv")],
                 ["calibrate", str(tmp_path / "model"), str(tmp_path / "x.npz"), "-o", str(tmp_path / "cal"), "-q"]):
        r = runner.invoke(app, args + ["--exclude", "id"])
        out = " ".join(r.output.split())
        assert r.exit_code == 2 and "--exclude id" in out and "no column names" in out and "Fix:" in out, (args, r.output)
    assert not any((tmp_path / n).exists() for n in ("m2", "s.csv", "cal"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunked_reading_closes_the_file_when_a_chunk_is_refused_or_reading_stops_early(tmp_path, fmt):
    """A chunk reader holds the file open: a refused later chunk (or a caller that stops after the first)
    used to leave it open until garbage collection (a ResourceWarning; file handles in a service)."""
    import gc
    import warnings

    import pandas as pd

    from ganad.data.readers import iter_chunks
    df = pd.DataFrame({"a": np.arange(20, dtype=float), "b": np.ones(20)})
    df.loc[15, "a"] = np.inf  # refused in the fourth chunk of 4 rows
    p = tmp_path / f"x.{fmt}"
    df.to_csv(p, index=False) if fmt == "csv" else df.to_parquet(p)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError):
            list(iter_chunks(p, 4))
        it = iter_chunks(p, 4)
        next(it)
        it.close()
        del it
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


def test_a_data_path_that_is_not_a_regular_file_is_refused(tmp_path):
    """A link to /dev/zero was read for ever (memory growing until the OOM killer) and a named pipe
    hung at its second open (header sniff, row count, chunks): fit, score, evaluate and the series
    commands refuse them naming the kind, before anything is read or written. Run in a child with a
    timeout, so that the old behaviour fails the test instead of hanging it."""
    import os
    import subprocess
    import sys
    import textwrap
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.csv")
    code = textwrap.dedent("""
        import sys
        from ganad.data.readers import read_array, csv_columns
        from ganad.series.readers import read_series_file
        from ganad.exceptions import DataFileError
        for call in (read_array, csv_columns, read_series_file):
            for name in ("zero.csv", "pipe.csv"):
                try:
                    call(name)
                except DataFileError as e:
                    print(e)
                else:
                    print("read", name)
    """)
    from pathlib import Path
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30).stdout
    lines = out.strip().splitlines()
    assert lines == ["zero.csv: is a character device, not a regular file. Fix: save the data to a file first "
                     "(e.g. cat ... > data.csv) and pass that file",
                     "pipe.csv: is a named pipe, not a regular file. Fix: save the data to a file first "
                     "(e.g. cat ... > data.csv) and pass that file"] * 3, out
    fitted_dir = tmp_path / "m"
    AnoGAN(**FAST).fit(np.random.RandomState(0).randn(64, 4)).save(fitted_dir)
    r = subprocess.run([sys.executable, "-m", "ganad", "score", "m", "pipe.csv", "-o", "s.csv"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "pipe.csv: is a named pipe, not a regular file" in r.stderr, r.stderr
    assert not (tmp_path / "s.csv").exists()
    (tmp_path / "sc.csv").write_text("index,score\n0,1.0\n1,2.0\n")
    for args in (["zero.csv", "--labels", "sc.csv"], ["sc.csv", "--labels", "pipe.csv"], ["sc.csv", "--ranges", "zero.csv"]):
        r = subprocess.run([sys.executable, "-m", "ganad", "evaluate", *args, "-o", "ev"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)  # evaluate too (review of this change)
        assert r.returncode == 2 and "not a regular file" in r.stderr and not (tmp_path / "ev").exists(), r.stderr
