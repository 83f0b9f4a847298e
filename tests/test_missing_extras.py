"""A base install (no extras): every feature of an extra refuses with the install command, exit 2 and
no traceback, before any work and without writing anything. A missing module is simulated with
``sys.modules[name] = None`` (``import name`` then raises ImportError), so these run with or without the extras."""

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ganad
from ganad import cli
from ganad.cli import app
from ganad.exceptions import InputError

runner = CliRunner()


def _missing(monkeypatch, *names):
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def _refused(r, command):
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit), r.exception  # typer.Exit, not a traceback
    assert command in " ".join(r.output.split()), r.output  # rich wraps long lines


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("extras")
    X = np.random.RandomState(0).randn(64, 4)
    ganad.VAEGAN(epochs=1, random_state=0).fit(X).save(d / "model")
    return d / "model"


def test_export_without_onnx_names_the_extra(tmp_path, model_dir, monkeypatch):
    """torch.onnx.export itself needs onnx: without it the CLI printed torch's OnnxExporterError traceback."""
    _missing(monkeypatch, "onnx")
    r = runner.invoke(app, ["export", str(model_dir), "-o", str(tmp_path / "m.onnx")])
    _refused(r, "pip install 'ganad[onnx]'")
    assert list(tmp_path.iterdir()) == []
    from ganad.export import export_onnx
    with pytest.raises(ImportError, match=r"ganad\[onnx\]"):
        export_onnx(ganad.load(model_dir), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_tune_without_optuna_names_the_extra(tmp_path, monkeypatch):
    """ganad.tune imports optuna lazily, so the CLI's ImportError guard never fired: a traceback from tune()."""
    _missing(monkeypatch, "optuna")
    pd.DataFrame(np.random.RandomState(0).randn(40, 3), columns=list("abc")).to_csv(tmp_path / "train.csv", index=False)
    r = runner.invoke(app, ["tune", str(tmp_path / "train.csv"), "-o", str(tmp_path / "out" / "model"), "--trials", "1"])
    _refused(r, "pip install 'ganad[tune]'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]  # no model folder, no ganad-tune.db
    from ganad.tune import tune
    with pytest.raises(ImportError, match=r"ganad\[tune\]"):
        tune(np.zeros((40, 3)), n_trials=1)


def test_serve_with_a_partial_serve_extra_names_the_extra(model_dir, monkeypatch):
    """fastapi alone (uvicorn / orjson missing) gave a traceback at start-up (or a 500 on every request)."""
    _missing(monkeypatch, "uvicorn", "orjson")
    r = runner.invoke(app, ["serve", str(model_dir), "--port", "0"])
    _refused(r, "pip install 'ganad[serve]'")
    if importlib.util.find_spec("fastapi") is not None:
        assert "orjson" in r.output or "uvicorn" in r.output, r.output  # not fastapi: the module really missing


def test_progress_lines_print_install_commands_verbatim(capsys):
    """The benchmark's log went through rich markup: "pip install 'ganad[bench]'" printed as "pip install 'ganad'"."""
    cli._log("skipped (pip install 'ganad[bench]') [/x] [1, 2]")
    assert "skipped (pip install 'ganad[bench]') [/x] [1, 2]" in capsys.readouterr().err


def test_nab_without_pyod_refuses_before_training(tmp_path, monkeypatch):
    """The NAB protocol trained ganad's methods on the first series, then failed at its first PyOD peer."""
    from ganad.series import SeriesDetector
    from ganad.series.benchmark import run_nab
    _missing(monkeypatch, "pyod")
    root = tmp_path / "nab"
    (root / "data" / "realKnownCause").mkdir(parents=True)
    (root / "labels").mkdir()
    t = pd.date_range("2024-01-01", periods=400, freq="5min")
    v = np.sin(np.arange(400) / 10)
    v[300:310] += 4
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"), "value": v}).to_csv(root / "data" / "realKnownCause" / "toy.csv", index=False)
    (root / "labels" / "combined_windows.json").write_text(json.dumps({"realKnownCause/toy.csv": [[str(t[295]), str(t[315])]]}))

    def boom(*a, **k):
        raise AssertionError("trained before the missing PyOD was reported")
    monkeypatch.setattr(SeriesDetector, "fit", boom)
    with pytest.raises(InputError, match=r"ganad\[bench\]"):  # peers named: refused before any training
        run_nab(tmp_path, peers=["knn"], window=16, epochs=1, train_fraction=0.3)
    r = runner.invoke(app, ["benchmark", "nab", "--data", str(tmp_path), "--window", "16", "--epochs", "1", "--peers", "knn",
                            "--train-fraction", "0.3", "-o", str(tmp_path / "bench")])
    _refused(r, "pip install 'ganad[bench]'")
    assert not (tmp_path / "bench").exists()
    # the default peers are skipped with a note, as the table protocols do
    res = run_nab(tmp_path, methods=[], window=16, train_fraction=0.3)
    assert {row["method"] for row in res["rows"]} == {"rolling_zscore"} and "ganad[bench]" in res["notes"][0]


def test_table_protocols_refuse_named_peers_without_pyod_and_skip_the_default_ones(monkeypatch):
    """--peers iforest without PyOD ran ganad's methods and recorded the peers as skipped (exit 0);
    peers asked for by name are refused before any work, the default ones skipped with a note."""
    from ganad.benchmark.runner import _methods_plan
    _missing(monkeypatch, "pyod")
    logged = []
    with pytest.raises(InputError, match=r"--peers iforest.*ganad\[bench\]"):
        _methods_plan(["ganomaly"], ["iforest"], logged.append)
    plan, notes = _methods_plan(["ganomaly"], None, logged.append)
    assert plan[0] == ("ganad", "ganomaly") and "ganad[bench]" in notes[0] and logged == notes
