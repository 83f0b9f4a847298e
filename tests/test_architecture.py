"""docs/architecture.md's promises: a new method is one file (the document's worked example is written
to a file of its own, imported, and then fitted, scored, saved, loaded, calibrated and run from the
CLI like a built-in method), and the model-file / calibration modules never import the detectors."""

import ast
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import ganad
from ganad.exceptions import InputError
from ganad.registry import DETECTORS, unregister

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"


def _toy_source() -> str:
    text = DOC.read_text()
    m = re.search(r"<!-- toy-method[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/architecture.md lost its marked toy-method code block"
    return m.group(1)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The document's method, as the one file a user would write, imported as a module."""
    path = tmp_path_factory.mktemp("plugin") / "toyae.py"
    path.write_text(_toy_source())
    spec = importlib.util.spec_from_file_location("toyae", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["toyae"] = mod
    spec.loader.exec_module(mod)
    yield mod.ToyAE
    unregister("toyae")
    sys.modules.pop("toyae", None)


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 5)
    test = np.r_[rng.randn(20, 5), rng.randn(20, 5) + 6.0]
    return X, test, np.r_[np.zeros(20), np.ones(20)].astype(int)


def test_the_one_file_method_is_registered_and_validated(toy):
    assert DETECTORS["toyae"] is toy
    params = toy().get_params()
    assert params["rec_weight"] == 10.0 and params["inversion"] == "encoder" and params["contamination"] == 0.1
    with pytest.raises(InputError, match="rec_weight: is -1"):
        toy(rec_weight=-1, epochs=1).fit(np.zeros((20, 3)))
    with pytest.raises(InputError, match="epochs"):  # the shared constraints apply to it too
        toy(epochs=0).fit(np.zeros((20, 3)))
    with pytest.raises(TypeError):
        toy(no_such_parameter=1)


def test_the_one_file_method_fits_scores_saves_loads_and_calibrates(toy, tmp_path):
    X, test, y = _data()
    det = toy(epochs=3, latent_dim=2, width=16, random_state=0).fit(X)
    assert "toyae/reconstruction" in det.history_ and len(det.history_["toyae/reconstruction"]) == 3
    res = det.score_components(test)
    assert {"squared_error", "residual", "feature", "knn"} <= set(res.components)
    s = det.decision_function(test)
    assert s.shape == (40,) and np.isfinite(s).all()
    assert s[y == 1].min() > np.median(s[y == 0])  # rows shifted by 6 standard deviations score higher
    assert set(np.unique(det.predict(test))) <= {0, 1}
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    assert type(back) is toy
    np.testing.assert_allclose(back.decision_function(test), s, rtol=1e-5, atol=1e-6)
    back.calibrate(test, y, threshold="f1")
    assert back.calibration_["threshold"] == "f1" and back.calibration_["labelled"]
    assert (back.predict(test) == y).mean() > 0.9


def test_the_one_file_method_runs_from_the_command_line(toy, tmp_path):
    from ganad.cli import app
    X, test, _ = _data()
    np.save(tmp_path / "train.npy", X)
    np.save(tmp_path / "test.npy", test)
    runner = CliRunner()
    r = runner.invoke(app, ["fit", str(tmp_path / "train.npy"), "-o", str(tmp_path / "model"), "--method", "toyae",
                            "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert type(ganad.load(tmp_path / "model")).__name__ == "ToyAE"
    r = runner.invoke(app, ["score", str(tmp_path / "model"), str(tmp_path / "test.npy"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 41
    r = runner.invoke(app, ["fit", str(tmp_path / "train.npy"), "-o", str(tmp_path / "m2"), "--method", "nosuch"])
    assert r.exit_code != 0 and "toyae" in r.output  # the registered method is listed in the fix


def test_a_model_of_an_unregistered_method_is_refused_by_name(toy, tmp_path):
    X, _, _ = _data()
    toy(epochs=1, latent_dim=2, width=8, random_state=0, validation_fraction=0).fit(X[:40]).save(tmp_path / "m")
    DETECTORS.pop("toyae")
    try:
        with pytest.raises(ganad.exceptions.ModelFileError, match="unknown detector class 'ToyAE'"):
            ganad.load(tmp_path / "m")
    finally:
        DETECTORS["toyae"] = toy


def test_register_refuses_a_second_class_of_the_same_name(toy):
    from ganad.registry import register
    Other = type("ToyAE", (toy,), {})
    with pytest.raises(ValueError, match="already registered as 'toyae'"):
        register("toyae2")(Other)
    assert "toyae2" not in DETECTORS


def _imports(path: Path) -> set[str]:
    """Every ganad module a file imports at run time, at module level or inside functions (not
    under ``if TYPE_CHECKING:``, which only type checkers read)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
                   for n in ast.walk(block)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("ganad")}


@pytest.mark.parametrize("module", ["io.py", "registry.py", "files.py", "params.py", "scoring/calibration.py",
                                    "scoring/composition.py", "scoring/components.py", "scoring/threshold.py"])
def test_lower_layers_never_import_the_detectors(module):
    imported = _imports(REPO / "src" / "ganad" / module)
    assert not [m for m in imported if m.startswith("ganad.detectors") or m == "ganad.DETECTORS"], imported


def test_old_module_names_still_import():
    import ganad.data.io
    import ganad.data.readers
    import ganad.inversion.init
    import ganad.inversion.starts
    import ganad.series.io
    import ganad.series.readers
    assert ganad.data.io is ganad.data.readers and ganad.inversion.init is ganad.inversion.starts
    assert ganad.series.io is ganad.series.readers
