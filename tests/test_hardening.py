"""Hardening (issue 10): no silent wrong answers, no planted code, no lost models.

Each regression test below pins one case of the issue; ``test_hardening_table`` runs the
whole catalogue of bad inputs and tamperings (CLI, API, model files) and writes
docs/hardening.md.
"""

import numpy as np
import pytest

import ganad
from ganad import ALAD, AnoGAN, BiGAN, FAnoGAN, GANomaly
from ganad.exceptions import InputError

FAST = dict(epochs=1, random_state=0)
X4 = np.random.RandomState(0).randn(64, 4).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    return {cls.__name__: cls(**FAST, **({"search_n_max": 5} if cls is AnoGAN else {})).fit(X4)
            for cls in (AnoGAN, FAnoGAN, BiGAN, ALAD, GANomaly)}


# ------------------------------------------------------------------ silent wrong answers
@pytest.mark.parametrize("value", [3e38, -3e38, 1e300, -1e300, 1e30])
@pytest.mark.parametrize("method", ["AnoGAN", "FAnoGAN", "BiGAN", "ALAD", "GANomaly"])
def test_huge_values_never_score_normal(fitted, method, value):
    det = fitted[method]
    T = X4[:5].astype(np.float64)
    T[2, 1] = value
    try:
        s = det.decision_function(T)
    except InputError as exc:
        msg = str(exc)
        assert "row" in msg and "2" in msg and "Fix:" in msg
        if abs(value) > 3.5e38:
            assert "float32" in msg and "NaN" not in msg
        return
    assert np.isfinite(s).all()  # finite scores: then the extreme row is judged, never NaN-as-normal


def test_nonfinite_scores_by_option_are_most_anomalous(fitted):
    det = fitted["FAnoGAN"]
    T = X4[:5].copy()
    T[3, 0] = 1e30
    with pytest.raises(InputError, match=r"row\(s\) \[3\].*on_nonfinite"):
        det.predict(T)
    det.on_nonfinite = "max"
    try:
        s = det.decision_function(T)
        assert s[3] == np.inf and det.predict(T)[3] == 1
        assert np.isfinite(np.delete(s, 3)).all()
    finally:
        del det.on_nonfinite


@pytest.mark.parametrize("params,pattern", [
    (dict(epochs=0), "epochs.*train nothing"),
    (dict(epochs=-1), "epochs"),
    (dict(batch_size=1), "batch_size.*BatchNorm.*>= 2"),
    (dict(batch_size=0), "batch_size"),
    (dict(epochs=True), "epochs"),
])
def test_settings_that_train_nothing_are_refused(params, pattern):
    with pytest.raises(InputError, match=pattern):
        AnoGAN(**{**FAST, **params}).fit(X4)


# ------------------------------------------------------------------ readers and column names
def test_headerless_csv_keeps_its_first_row(tmp_path):
    from ganad.data.io import csv_columns, read_array
    p = tmp_path / "h.csv"
    np.savetxt(p, X4[:10], delimiter=",")
    A = read_array(p)
    assert A.shape == (10, 4) and np.allclose(A, X4[:10], atol=1e-6)
    assert csv_columns(p) is None


def test_numbered_header_is_still_a_header(tmp_path):
    import pandas as pd
    from ganad.data.io import read_array
    p = tmp_path / "n.csv"
    pd.DataFrame(X4[:10]).to_csv(p, index=False)  # header 0,1,2,3
    assert read_array(p).shape == (10, 4)


def test_pandas_index_column_is_refused_then_excludable(tmp_path):
    import pandas as pd
    from ganad.data.io import read_array
    p = tmp_path / "i.csv"
    pd.DataFrame(X4[:10], columns=list("abcd")).to_csv(p)
    with pytest.raises(InputError, match=r"unnamed first column.*index=False.*Unnamed: 0"):
        read_array(p)
    assert read_array(p, exclude=["Unnamed: 0"]).shape == (10, 4)


@pytest.mark.parametrize("text,kw,hint", [
    ("a;b\n1;2\n3;4\n", {}, "--sep ';'"),
    ("a;b\n1,5;2,5\n3,5;4\n", {"sep": ";"}, "--decimal ','"),
    ("a,b\nx,1\ny,2\n", {}, "--exclude"),
])
def test_text_columns_suggest_the_likely_fix(tmp_path, text, kw, hint):
    from ganad.data.io import read_array
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(InputError, match="non-numeric") as e:
        read_array(p, **kw)
    assert hint in str(e.value)


def test_semicolon_and_decimal_comma_read_with_options(tmp_path):
    from ganad.data.io import read_array
    p = tmp_path / "t.csv"
    p.write_text("a;b\n1,5;2,5\n3,5;4\n")
    assert np.allclose(read_array(p, sep=";", decimal=","), [[1.5, 2.5], [3.5, 4.0]])


def test_header_only_file_says_no_rows(tmp_path):
    from ganad.data.io import read_array
    p = tmp_path / "e.csv"
    p.write_text("a,b,c\n")
    with pytest.raises(InputError, match="no data rows"):
        read_array(p)


def test_feature_names_saved_and_checked(tmp_path):
    import pandas as pd
    df = pd.DataFrame(X4, columns=["a", "b", "c", "d"])
    det = AnoGAN(**FAST, search_n_max=5).fit(df)
    assert list(det.feature_names_in_) == ["a", "b", "c", "d"]
    det.save(tmp_path / "m")
    det2 = ganad.load(tmp_path / "m")
    assert list(det2.feature_names_in_) == ["a", "b", "c", "d"]
    det2.decision_function(df.head())  # same columns: fine
    det2.decision_function(X4[:3])  # a plain array: no names to check
    with pytest.raises(InputError, match=r"another order.*training order"):
        det2.decision_function(df[["b", "a", "c", "d"]])
    with pytest.raises(InputError, match=r"\['e'\] not seen at fit time and lacks \['d'\]"):
        det2.decision_function(df.rename(columns={"d": "e"}))


def test_cli_refuses_renamed_columns_and_writes_nothing(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner
    from ganad.cli import app
    runner = CliRunner()
    df = pd.DataFrame(X4, columns=["a", "b", "c", "d"])
    df.to_csv(tmp_path / "train.csv", index=False)
    r = runner.invoke(app, ["fit", str(tmp_path / "train.csv"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    df[["a", "c", "b", "d"]].to_csv(tmp_path / "swapped.csv", index=False)
    r = runner.invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "swapped.csv"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 2
    assert "another order" in r.output and not (tmp_path / "s.csv").exists()


def test_fit_checks_the_output_path_before_training(tmp_path):
    from typer.testing import CliRunner
    from ganad.cli import app
    np.save(tmp_path / "x.npy", X4)
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "m"):
        r = CliRunner().invoke(app, ["fit", str(tmp_path / "x.npy"), "-o", str(out), "--epochs", "1", "-q"])
        assert r.exit_code == 2 and "Fix:" in r.output and "Traceback" not in r.output
        assert "fitted" not in r.output


# ------------------------------------------------------------------ tampered model files
def _tamper(src, dst, edit):
    import json
    import shutil
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    edit(cfg)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("edit,pattern", [
    (lambda c: c["state"].__setitem__("threshold", float("nan")), "NaN"),
    (lambda c: c["state"]["scaler"].__setitem__("scale", [0.0] * 4), "scale"),
    (lambda c: c.__setitem__("class", []), "class"),
    (lambda c: c.__setitem__("format_version", "1"), "format_version"),
    (lambda c: c["state"]["composer"].__setitem__("weights", "x"), "corrupt"),
    (lambda c: c["params"].__setitem__("width", 100000), "does not match the configuration"),
    (lambda c: c["params"].__setitem__("epochs", 0), "epochs"),
])
def test_tampered_config_is_refused(fitted, tmp_path, edit, pattern):
    from ganad.exceptions import ModelFileError
    fitted["AnoGAN"].save(tmp_path / "m")
    bad = _tamper(tmp_path / "m", tmp_path / "bad", edit)
    with pytest.raises(ModelFileError, match=pattern) as e:
        ganad.load(bad)
    assert "Fix:" in str(e.value)


def test_deep_json_and_nan_weights_are_refused(fitted, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file
    from ganad.exceptions import ModelFileError
    fitted["AnoGAN"].save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("[" * 200000 + "]" * 200000)
    with pytest.raises(ModelFileError, match="nested too deeply|not a ganad"):
        ganad.load(tmp_path / "m")
    fitted["AnoGAN"].save(tmp_path / "w")
    t = load_file(str(tmp_path / "w" / "model.safetensors"))
    k = next(k for k in t if k.startswith("G.") and t[k].is_floating_point())
    t[k] = torch.full_like(t[k], float("nan"))
    save_file(t, str(tmp_path / "w" / "model.safetensors"))
    with pytest.raises(ModelFileError, match="NaN or infinite values"):
        ganad.load(tmp_path / "w")


# ------------------------------------------------------------------ errors that misled or crashed
@pytest.mark.parametrize("cls", [AnoGAN, FAnoGAN, BiGAN, ALAD, GANomaly])
@pytest.mark.parametrize("params,pattern", [
    (dict(width=0), "width"), (dict(depth=0), "depth"), (dict(betas=(2, 3)), "betas"),
    (dict(random_state="abc"), "random_state"), (dict(random_state=-1), "random_state"),
    (dict(gp_weight=-10), "gp_weight"), (dict(feature_layer=99), "feature_layer"), (dict(device="tpu9"), "device"),
])
def test_bad_parameters_name_themselves(cls, params, pattern):
    with pytest.raises(InputError, match=pattern) as e:
        cls(**{**FAST, **params}).fit(X4)
    assert "Fix:" in str(e.value)


@pytest.mark.parametrize("bad", [0, -1, "x", 2.5])
def test_score_batch_size_checked_at_score_time(fitted, bad):
    det = fitted["AnoGAN"]
    det.score_batch_size = bad
    try:
        with pytest.raises(InputError, match="score_batch_size"):
            det.decision_function(X4[:3])
    finally:
        det.score_batch_size = 1024


def test_alad_original_keeps_its_spectral_norm_weight_after_fit(fitted):
    D = fitted["ALAD"].nets_["Dzz"]
    assert D.head.weight.shape[0] == 1  # used to raise AttributeError
    fitted["ALAD"].decision_function(X4[:3])


def test_npz_unknown_key_lists_the_arrays(tmp_path):
    from ganad.data.io import read_array
    from ganad.exceptions import DataFileError
    np.savez(tmp_path / "a.npz", X=X4, y=np.zeros(64))
    with pytest.raises(DataFileError, match=r"no array 'nosuch'.*--key"):
        read_array(tmp_path / "a.npz", key="nosuch")


def test_chunk_rows_must_be_positive(tmp_path):
    from ganad.data.io import iter_chunks
    np.save(tmp_path / "a.npy", X4)
    with pytest.raises(InputError, match="chunk_rows"):
        list(iter_chunks(tmp_path / "a.npy", 0))


# ------------------------------------------------------------------ threads on a busy machine
@pytest.mark.parametrize("env,expected", [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "active"}, "active")])
def test_openmp_threads_sleep_instead_of_spinning_unless_chosen(env, expected):
    import os
    import subprocess
    import sys
    from pathlib import Path
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    base["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    code = "import ganad, os, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    r = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == expected, r.stderr
