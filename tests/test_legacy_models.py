"""Model files written by earlier ganad versions load and score as they did (tests/data/legacy_models,
written by those versions; see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ganad

pytestmark = pytest.mark.usefixtures("one_thread")

LEGACY = Path(__file__).parent / "data" / "legacy_models"
CASES = sorted(p for p in LEGACY.glob("*/*") if (p / "expected.json").is_file())


def _eval(case: Path):
    if (case / "eval.npy").is_file():
        return np.load(case / "eval.npy")
    return {p.stem[len("eval_"):]: np.load(p) for p in sorted(case.glob("eval_*.npy"))}


def _check_scores(det, case: Path) -> int:
    """Scores, labels and thresholds against the version's own (assertions); returns how many rows were compared."""
    exp = json.loads((case / "expected.json").read_text())
    X = _eval(case)
    want = np.array([np.nan if v is None else v for v in exp["scores"]], dtype=np.float64)
    got = np.asarray(det.decision_function(X), dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.nanmax(np.abs(want)))
    np.testing.assert_array_equal(det.predict(X), exp["labels"])
    assert float(det.threshold_) == pytest.approx(exp["threshold"], rel=1e-9)
    if "point_threshold" in exp:
        assert float(det.point_threshold_) == pytest.approx(exp["point_threshold"], rel=1e-9)
    return len(want)


def test_the_legacy_fixtures_are_there():
    assert len(CASES) >= 15 and {p.parent.name for p in CASES} >= {"2635286", "010d7cf", "52d5162", "8c1bc76", "f34ee76"}


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_old_model_file_loads_and_scores_as_its_version_did(case, tmp_path):
    det = ganad.load(case / "model")
    assert _check_scores(det, case) > 0
    ganad.save(det, tmp_path / "again")  # saved by today's code: the same model
    assert _check_scores(ganad.load(tmp_path / "again"), case) > 0


def test_a_conv1d_model_of_the_first_days_loads_with_the_width_it_was_built_with(tmp_path):
    """Files written before 6949412 (23 Nov 15:12) with width=None were built 8 wide (the conv1d default
    then); files record no width until 30 Nov, and load took them as 4 wide: every weight was refused as
    'wrongly shaped' and the model called corrupt."""
    old = ganad.load(LEGACY / "2635286" / "beat-fanogan-default-width" / "model")
    assert old.width is None and old._width() == 8
    later = ganad.load(LEGACY / "52d5162" / "beat-fanogan-default-width" / "model")
    assert later._width() == 4
    ganad.save(old, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["state"]["width"] == 8


def test_an_ensemble_saved_before_its_default_composition_was_stored_calibrates_by_default(tmp_path):
    """An ensemble file of 52d5162 (28 Nov) has no state.default_composer: calibrate (compose='default',
    also ganad calibrate without --compose) fell back to GANomaly's own composition and was refused
    ('uses component(s) ['latent'] this detector does not compute')."""
    case = LEGACY / "52d5162" / "ens-ganomaly"
    det = ganad.load(case / "model")
    X = _eval(case)
    before = det.decision_function(X)
    det.calibrate(X[:8], threshold="fpr", fpr=0.2)
    assert det.composer_.to_dict() == {"kind": "weights", "weights": {"member0": 0.5, "member1": 0.5}}
    np.testing.assert_allclose(det.decision_function(X), before, rtol=1e-12)  # only the threshold moved
    det.calibrate(X, np.r_[np.zeros(8, int), np.ones(4, int)], compose="weights", threshold="f1")
    ganad.save(det, tmp_path / "m")
    assert ganad.load(tmp_path / "m").threshold_ == det.threshold_


def test_a_series_model_saved_without_reference_scores_names_its_age_and_the_lighter_fix(tmp_path):
    """Series files saved before 0c830ed (29 Nov 00:19) keep no reference point scores: predict_proba and
    predict_confidence are refused naming that, and calibrating on normal series (not only a refit) gives them."""
    import shutil

    from ganad.exceptions import InputError
    case = LEGACY / "8c1bc76" / "series-ganomaly"
    shutil.copytree(case / "model", tmp_path / "m")
    f = tmp_path / "m" / "series.json"
    cfg = json.loads(f.read_text())
    del cfg["state"]["reference_scores"]  # as the files of 9d13008 .. 0c830ed were written
    f.write_text(json.dumps(cfg))
    sd = ganad.load(tmp_path / "m")
    X = _eval(case)
    _check_scores(sd, case)
    with pytest.raises(InputError, match=r"before 29 Nov 2026 00:19, 0c830ed.*Fix: calibrate it on normal series"):
        sd.predict_proba(X)
    sd.calibrate(X[:40], threshold="fpr", fpr=0.1)
    assert sd.predict_proba(X).shape == (len(X), 2)


@pytest.mark.skipif(__import__("importlib").util.find_spec("onnx") is None, reason="needs the onnx extra")
def test_exporting_an_old_anogan_model_says_how_that_model_can_export(tmp_path):
    """An AnoGAN file whose score reads the latent search: one of the first days has no knn component
    (only a refit gives the search-free default score), a later one scores by its knn component alone once
    knn_weight is 1 and it is recalibrated (the fix said to keep the default score and recalibrate, which
    changed nothing for either)."""
    from ganad.exceptions import InputError
    from ganad.export import export_onnx
    first = ganad.load(LEGACY / "010d7cf" / "tab-anogan" / "model")
    with pytest.raises(InputError, match=r"by fitting the model again with this ganad \(this one has no knn component"):
        export_onnx(first, tmp_path / "a.onnx")
    later = ganad.load(LEGACY / "52d5162" / "tab-anogan" / "model")
    with pytest.raises(InputError, match=r"needs the latent search.*Fix: keep the default score.*set_params\(knn_weight=1\.0\)"):
        export_onnx(later, tmp_path / "a.onnx")
    X = _eval(LEGACY / "52d5162" / "tab-anogan")
    later.set_params(knn_weight=1.0)
    later.calibrate(X[:8], compose="default", threshold="fpr", fpr=0.2)
    export_onnx(later, tmp_path / "a.onnx")


def test_a_model_file_older_than_gp_every_loads_with_the_penalty_it_was_trained_with(tmp_path):
    """f-AnoGAN's gp_every=2 (lazy gradient penalty, thirtieth session) is newer than every fixture:
    their runs applied the penalty on every critic step, which load must say (get_params, and a refit
    of the loaded detector trains as the original did), not today's default; a file of today's code
    keeps what it was fitted with."""
    seen = 0
    for case in (p for p in CASES if "fanogan" in p.name):
        det = ganad.load(case / "model")  # a detector, a series detector (detector_) or two views (detectors_)
        for inner in [det, getattr(det, "detector_", None), *(getattr(det, "detectors_", None) or {}).values()]:
            if isinstance(inner, ganad.FAnoGAN):
                assert inner.get_params()["gp_every"] == 1
                seen += 1
    assert seen >= 7  # plain, calibrated, image, beat, series and multi-view f-AnoGAN files
    assert ganad.FAnoGAN().gp_every == 2
    new = ganad.FAnoGAN(epochs=1, random_state=0).fit(np.random.RandomState(0).randn(64, 4).astype(np.float32))
    ganad.save(new, tmp_path / "m")
    assert ganad.load(tmp_path / "m").gp_every == 2
