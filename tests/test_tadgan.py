import numpy as np
import pytest

import ganad
from ganad import TadGAN
from ganad.exceptions import InputError
from ganad.series import SeriesDetector


def _windows(n=160, seed=0):
    rng = np.random.RandomState(seed)
    t = np.arange(32)[None, None, :] + rng.randint(0, 40, (n, 1, 1))
    return (np.concatenate([np.sin(t / 4), np.cos(t / 6)], 1) + 0.05 * rng.randn(n, 2, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def tad():
    return TadGAN(epochs=3, width=16, latent_dim=4, batch_size=32, n_critic=2, random_state=0).fit(_windows())


def test_tadgan_is_a_registered_lstm_method_with_two_critics(tad):
    assert ganad.DETECTORS["tadgan"] is TadGAN
    assert set(tad.nets_) == {"G", "E", "Cx", "Cz"} and tad.family_ == "lstm"
    assert {"tadgan/cx_loss", "tadgan/cz_loss", "tadgan/ge_loss", "tadgan/cycle"} <= set(tad.history_)
    r = tad.score_components(_windows(40, 1))
    assert {"tadgan", "rec_error", "critic", "residual", "latent_norm"} <= set(r.components)
    assert (r.components["tadgan"] >= 1).all()  # product of two clipped z-scores + 1
    assert tad._default_composer().weights == {"tadgan": 1.0}
    # the score grows with an anomaly
    X = _windows(40, 2)
    Xa = X.copy()
    Xa[:, 1, 10:20] += 3
    assert np.median(tad.decision_function(Xa)) > np.median(tad.decision_function(X))


def test_tadgan_save_load_and_combinations(tad, tmp_path):
    tad.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    X = _windows(20, 3)
    np.testing.assert_allclose(back.decision_function(X), tad.decision_function(X), rtol=1e-5)
    assert back.tadgan_stats_ == pytest.approx(tad.tadgan_stats_)
    rec = tad.score_components(X).components
    tad2 = TadGAN(**{**tad.get_params(), "score_combination": "sum", "alpha": 1.0})
    tad2.__dict__.update({k: v for k, v in tad.__dict__.items() if k.endswith("_")})
    zr = np.maximum((rec["rec_error"] - tad.tadgan_stats_[0]) / tad.tadgan_stats_[1], 0) + 1
    np.testing.assert_allclose(tad2.score_components(X).components["tadgan"], zr, rtol=1e-5)
    with pytest.raises(InputError, match="score_combination"):
        TadGAN(score_combination="max", epochs=1).fit(X)


def test_tadgan_in_the_series_wrapper_with_dtw_error():
    t = np.arange(1200)
    series = np.c_[np.sin(t / 5), np.cos(t / 7)] + 0.05 * np.random.RandomState(0).randn(1200, 2)
    sd = SeriesDetector("tadgan", window=24, stride=12, detector_params={"epochs": 1, "width": 8, "latent_dim": 4,
                                                                        "rec_error": "dtw", "random_state": 0}).fit(series)
    r = sd.score_series(series[:300])
    assert np.isfinite(r.scores).all() and r.scores.shape == (300,)


from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


@parametrize_with_checks([TadGAN(epochs=2, latent_dim=4, width=16, n_critic=1, random_state=0)],
                         expected_failed_checks=lambda est: {
                             # the outlier-detector type adds these two; both assert scikit-learn's -1 / +1 labels,
                             # ganad keeps PyOD's 0 / 1 (see tests/test_sklearn_contract.py)
                             "check_outliers_fit_predict": "asserts scikit-learn's labels {-1, +1}; ganad returns PyOD's {0, 1}",
                             "check_outliers_train": "asserts scikit-learn's labels {-1, +1} and decision_function >= 0 for "
                                                     "inliers; ganad follows PyOD (labels {0, 1}, higher = more anomalous)",
                             "check_dtype_object": "ganad rejects object arrays holding non-numbers with its own InputError "
                                                   "(a ValueError) naming the input and the fix, as every ganad detector does",
                             "check_methods_subset_invariance": "scores differ by ~1.4e-7 relative between batch sizes (float32 matmul "
                                                                "kernels chosen by row count), as for ALAD; the check's rtol is 1e-7"})
def test_tadgan_sklearn_contract(estimator, check):
    check(estimator)


def test_point_rec_error_is_the_residual_and_is_composed_once(tad):
    """With rec_error='point' TadGAN's rec_error is its residual under a second name; calibrate's
    composition over all components gave that score two shares (2/6) before."""
    from sklearn.base import clone
    det = clone(tad).fit(_windows())
    X = _windows(60, 4)
    comps = det.score_components(X).components
    np.testing.assert_array_equal(comps["rec_error"], comps["residual"])
    det.calibrate(X, compose="standardised")
    assert "rec_error" not in det.composer_.names and "residual" in det.composer_.names
    assert det.composer_.weights["residual"] == pytest.approx(1.0 / len(det.composer_.names))
    det.calibrate(X, compose="standardised", weights={"rec_error": 1.0, "critic": 1.0})  # by name: allowed
    assert sorted(det.composer_.names) == ["critic", "rec_error"]
    dtw = TadGAN(**{**tad.get_params(), "rec_error": "dtw", "epochs": 1}).fit(_windows())
    dtw.calibrate(X, compose="standardised")
    assert "rec_error" in dtw.composer_.names and "residual" in dtw.composer_.names  # a score of its own
