"""`ganad info` / ganad.describe: what a saved model is and how it was made, read with loading's checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ganad
from ganad.cli import app
from ganad.exceptions import InputError
from ganad.info import render

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
LEGACY = Path(__file__).parent / "data" / "legacy_models"


def _table(n=400, d=5, seed=0):
    rs = np.random.RandomState(seed)
    return pd.DataFrame(rs.randn(n, d).astype(np.float32), columns=[f"f{i}" for i in range(d)])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    X = _table()
    det = ganad.AnoGAN(epochs=2, random_state=0).fit(X)
    path = tmp_path_factory.mktemp("info") / "m"
    det.save(path)
    return det, path


def test_describe_a_detector_and_its_directory_agree(fitted):
    det, path = fitted
    mem, disk = ganad.describe(det), ganad.describe(path)
    assert disk.pop("path") == str(path)
    assert disk.pop("file") == {"format": "ganad-model", "format_version": 1, "ganad_version": ganad.__version__}
    assert mem == disk
    assert mem["kind"] == "detector" and mem["method"] == "AnoGAN"
    assert mem["input"]["shape"] == [5] and mem["input"]["feature_names"] == [f"f{i}" for i in range(5)]
    assert mem["training"]["epochs"] == 2 and mem["training"]["epochs_run"] == {"gan": 2}
    assert mem["training"]["selection"]["criterion"] == "held-out"
    assert mem["threshold"]["value"] == pytest.approx(det.threshold_, rel=1e-6)
    assert mem["threshold"]["set_on"] == "held-out training slice" and mem["threshold"]["contamination"] == 0.1
    # the default score's per-fit block choice is reported as fitted
    assert mem["score"]["knn_space"] == "feature+input" and mem["score"]["knn_blocks"] == det.knn_blocks_
    choice = mem["score"]["block_choice"]
    assert choice["chosen"] == det.knn_selection_["chosen"] and choice["held_out_rows"] == det.knn_selection_["rows"]
    assert set(choice["synthetic_auroc"]) == {"both", "input", "feature"}
    json.dumps(mem, allow_nan=False)  # JSON-ready


def test_render_names_the_parts_a_user_checks(fitted):
    _, path = fitted
    text = "\n".join(render(ganad.describe(path)))
    for part in ("detector model, AnoGAN", "input: shape (5,)", "features: f0, f1", "training: epochs 2",
                 "kept by the held-out criterion", "knn space feature+input", "block choice on", "threshold:",
                 "set on held-out training slice"):
        assert part in text


def test_a_threshold_set_on_the_training_rows_gets_a_note():
    det = ganad.AnoGAN(epochs=1, random_state=0).fit(_table(100, 3))  # too few rows for a held-out slice
    info = ganad.describe(det)
    assert info["threshold"]["set_on"] == "training"
    assert info["training"]["selection"]["criterion"] is None
    assert any("training samples themselves" in n for n in info["notes"])
    assert "none (no held-out slice)" in "\n".join(render(info))
    big = ganad.describe(ganad.AnoGAN(epochs=1, random_state=0).fit(_table(400, 3)))
    assert not any("training samples themselves" in n for n in big["notes"])


def test_a_calibrated_model_says_its_rule_and_data(fitted, tmp_path):
    det, _ = fitted
    cal = ganad.load(fitted[1]).calibrate(_table(300, seed=1), threshold="fpr", fpr=0.05)
    info = ganad.describe(cal)
    assert info["threshold"]["rule"] == "fpr" and info["threshold"]["fpr"] == 0.05
    assert info["threshold"]["set_on"].startswith("calibration data (300 samples")
    assert info["threshold"]["value"] == pytest.approx(cal.threshold_, rel=1e-6)


def test_an_ensemble_reports_its_members():
    det = ganad.GANomaly(epochs=1, n_members=2, random_state=0).fit(_table(300, 3))
    info = ganad.describe(det)
    assert info["training"]["members"] == 2
    assert set(info["training"]["epochs_run"]) == {"member0", "member1"}
    assert "member0: epoch" in "\n".join(render(info))


def test_series_and_multiview_models(tmp_path):
    rs = np.random.RandomState(0)
    x = np.sin(np.arange(1500) / 10.0) + 0.1 * rs.randn(1500)
    sd = ganad.SeriesDetector("ganomaly", window=16, detector_params={"epochs": 1}).fit(x)
    sd.save(tmp_path / "s")
    info = ganad.describe(tmp_path / "s")
    assert info["kind"] == "series" and info["series"]["window"] == 16 and info["series"]["stride"] == 4
    assert info["threshold"]["value"] == pytest.approx(sd.threshold_, rel=1e-6)
    assert info["detector"]["method"] == "GANomaly" and info["detector"]["score"]["knn_space"] == "input"
    assert info["file"]["format"] == "ganad-series" and info["file"]["ganad_version"] == ganad.__version__
    mv = ganad.MultiViewDetector({"a": "anogan", "b": "anogan"}, detector_params={"epochs": 1}).fit(
        {"a": _table(300, 3).to_numpy(), "b": _table(300, 2, seed=2).to_numpy()})
    mv.save(tmp_path / "mv")
    info = ganad.describe(tmp_path / "mv")
    assert info["kind"] == "multi-view" and info["views"] == ["a", "b"] and info["combine"] == "surprise"
    assert set(info["detectors"]) == {"a", "b"} and info["detectors"]["b"]["input"]["shape"] == [2]
    assert info["threshold"]["set_on"].endswith("held-out samples")
    text = "\n".join(render(info))
    assert "view a: AnoGAN" in text and "view b: AnoGAN" in text


@pytest.mark.parametrize("case", sorted(p for p in LEGACY.glob("*/*/model")), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_every_legacy_model_file_is_described(case):
    info = ganad.describe(case)
    assert info["kind"] in ("detector", "series", "multi-view") and render(info)


def test_refuses_what_is_not_a_fitted_model(tmp_path):
    with pytest.raises(InputError, match="unfitted AnoGAN"):
        ganad.describe(ganad.AnoGAN())
    with pytest.raises(InputError, match="unfitted SeriesDetector"):
        ganad.describe(ganad.SeriesDetector())


def test_cli_info_text_json_and_refusals(fitted, tmp_path):
    _, path = fitted
    r = runner.invoke(app, ["info", str(path)])
    assert r.exit_code == 0, r.output
    assert "threshold:" in r.stdout and "detector model, AnoGAN" in r.stdout
    r = runner.invoke(app, ["info", str(path), "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["method"] == "AnoGAN"
    # not a model, a missing one, a damaged one: an error naming it, exit code 2, no traceback
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    r = runner.invoke(app, ["info", str(tmp_path / "t.csv")])
    assert r.exit_code == 2 and "is not a model directory" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["info", str(tmp_path / "none")])
    assert r.exit_code == 2 and "Fix:" in r.output
    bad = tmp_path / "bad"
    import shutil
    shutil.copytree(path, bad)
    (bad / "config.json").write_text("{not json")
    r = runner.invoke(app, ["info", str(bad)])
    assert r.exit_code == 2 and "config.json" in r.output and "Traceback" not in r.output


def test_scoring_changed_after_fit_is_noted():
    det = ganad.GANomaly(epochs=1, random_state=0).fit(_table(300, 4))
    assert not any("refused" in n for n in ganad.describe(det)["notes"])
    det.set_params(n_neighbors=3)  # the threshold was fitted on scores with n_neighbors=5
    notes = ganad.describe(det)["notes"]
    assert any("scoring is refused until the model is recalibrated" in n and "n_neighbors=3" in n for n in notes)


def test_a_checkpoint_says_how_far_the_run_got(tmp_path, monkeypatch):
    from ganad.training import checkpoint as ck
    X = _table(300, 4).to_numpy()
    orig, count = ck.Checkpointer.save, [0]

    def save(self, snap):  # the run ends right after its 3rd checkpoint write (a crash)
        orig(self, snap)
        count[0] += 1
        if count[0] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ck.Checkpointer, "save", save)
    with pytest.raises(KeyboardInterrupt):
        ganad.FAnoGAN(epochs=3, random_state=0).fit(X, checkpoint_dir=tmp_path / "ck", checkpoint_every=4)
    monkeypatch.setattr(ck.Checkpointer, "save", orig)
    info = ganad.describe(tmp_path / "ck")
    assert info["kind"] == "checkpoint" and info["method"] == "FAnoGAN"
    assert info["data"]["shape"] == [300, 4] and len(info["data"]["sha256"]) == 64
    pr = info["progress"]
    assert pr["stages"] == 2 and not pr["finished"] and pr["steps_done"] == 12 and pr["checkpoint"] >= 3
    assert pr["epochs_done"].get("gan", 0) < 3 and "encoder" not in pr["epochs_done"]
    r = runner.invoke(app, ["info", str(tmp_path / "ck")])
    assert r.exit_code == 0 and "checkpoint of a FAnoGAN training run" in r.stdout and "--resume" in r.stdout
    # resumed to the end: finished, and the model it saved is described as a model
    det = ganad.FAnoGAN(epochs=3, random_state=0).fit(X, checkpoint_dir=tmp_path / "ck", checkpoint_every=4, resume=True)
    assert ganad.describe(tmp_path / "ck")["progress"]["finished"]
    det.save(tmp_path / "m")
    assert ganad.describe(tmp_path / "m")["kind"] == "detector"
    # a damaged checkpoint is refused as resuming refuses it
    (tmp_path / "ck" / "checkpoint.json").write_text("{")
    r = runner.invoke(app, ["info", str(tmp_path / "ck")])
    assert r.exit_code == 2 and "checkpoint.json is unreadable" in r.output


def test_non_finite_numbers_are_null_in_the_description():
    det = ganad.AnoGAN(epochs=1, random_state=0).fit(_table(300, 3))
    det.selection_ = {**det.selection_, "best_value": float("nan")}
    det.history_ = {**det.history_, "gan/d_loss": [float("inf")]}
    info = ganad.describe(det)
    assert info["training"]["selection"]["best_value"] is None
    json.dumps(info, allow_nan=False)
    assert render(info)


def test_the_service_serves_a_model_it_cannot_describe(fitted, monkeypatch):
    import ganad.info
    from ganad.serve.registry import load_detector

    def broken(model):
        raise RuntimeError("boom")

    monkeypatch.setattr(ganad.info, "describe", broken)
    det, info = load_detector("m", fitted[1])
    assert info["description"] is None and info["threshold"] == pytest.approx(fitted[0].threshold_)
