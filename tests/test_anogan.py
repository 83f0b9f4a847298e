import numpy as np
import pytest

import ganad
from ganad import AnoGAN
from ganad.exceptions import InputError
from ganad.metrics import auroc


def test_anogan_separates_real_anomalies(small_anogan, breast_cancer_split):
    _, Xte, yte = breast_cancer_split
    s = small_anogan.decision_function(Xte)
    assert auroc(yte, s) > 0.85  # benign-only training, malignant = anomaly; chance is 0.5


def test_pyod_vocabulary(small_anogan, breast_cancer_split):
    Xtr, Xte, _ = breast_cancer_split
    d = small_anogan
    assert d.decision_scores_.shape == (len(Xtr),)
    assert np.mean(d.decision_scores_ > d.threshold_) == pytest.approx(d.contamination, abs=0.01)
    assert set(np.unique(d.labels_)) <= {0, 1}
    p = d.predict(Xte)
    assert set(np.unique(p)) <= {0, 1}
    np.testing.assert_array_equal(p, (d.decision_function(Xte) > d.threshold_).astype(int))
    np.testing.assert_array_equal(d.score_samples(Xte[:10]), d.decision_function(Xte[:10]))


def test_components_and_map(small_anogan, breast_cancer_split):
    _, Xte, _ = breast_cancer_split
    r = small_anogan.score_components(Xte[:20], return_map=True, return_reconstruction=True)
    assert set(r.components) >= {"residual", "feature", "discriminator", "latent_norm"}
    n_x, n_f = small_anogan.n_features_in_, small_anogan._feature_size()  # λ weights sums (Schlegl et al.)
    a = (0.9 * n_x * r.components["residual"] + 0.1 * n_f * r.components["feature"]) / (0.9 * n_x + 0.1 * n_f)
    blend = small_anogan.composer_  # the default: the method's own score blended with the knn component
    own = blend.inner(r.components)
    np.testing.assert_allclose(own, a, rtol=1e-6)
    w, (l0, l1), (s0, s1) = blend.weight, blend.loc, blend.scale
    np.testing.assert_allclose(r.scores, (1 - w) * (own - l0) / s0 + w * (r.components["knn"] - l1) / s1, rtol=1e-6)
    assert r.map.shape == Xte[:20].shape and r.reconstruction.shape == Xte[:20].shape
    np.testing.assert_allclose(r.map.mean(1), r.components["residual"], rtol=1e-5)
    assert r.extra["iterations"].shape == (20,) and (r.extra["iterations"] <= 100).all()


def test_same_seed_same_scores(breast_cancer_split):
    Xtr, Xte, _ = breast_cancer_split
    a = AnoGAN(epochs=2, random_state=7, search_n_max=20).fit(Xtr[:120]).decision_function(Xte[:30])
    b = AnoGAN(epochs=2, random_state=7, search_n_max=20).fit(Xtr[:120]).decision_function(Xte[:30])
    np.testing.assert_array_equal(a, b)


def test_save_load_gives_identical_scores(small_anogan, breast_cancer_split, tmp_path):
    _, Xte, _ = breast_cancer_split
    small_anogan.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = ganad.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.decision_function(Xte[:40]), small_anogan.decision_function(Xte[:40]))
    assert loaded.threshold_ == small_anogan.threshold_
    np.testing.assert_array_equal(loaded.decision_scores_, small_anogan.decision_scores_)
    assert AnoGAN.load(tmp_path / "m").get_params() == small_anogan.get_params()


@pytest.mark.parametrize("shape", [(1, 32), (2, 24), (1, 8, 8)])
def test_series_and_images_run(shape):
    rng = np.random.RandomState(0)
    X = rng.randn(64, *shape).astype(np.float32)
    d = AnoGAN(epochs=1, random_state=0, search_n_max=5, batch_size=32).fit(X)
    assert d.explain(X[:3]).shape == (3, *shape)
    assert d.family_ == ("conv1d" if len(shape) == 2 else "dcgan")


def test_lstm_family_and_objectives():
    rng = np.random.RandomState(0)
    X = rng.randn(48, 1, 20).astype(np.float32)
    for obj in ("wgan-gp", "hinge"):
        d = AnoGAN(net="lstm", objective=obj, n_critic=2, spectral_norm=True, prior="truncated_normal", epochs=1,
                   random_state=0, search_n_max=5).fit(X)
        assert np.isfinite(d.decision_scores_).all()



TINY = dict(epochs=1, width=8, latent_dim=4, random_state=0, search_n_max=5)


@pytest.mark.parametrize("name, value", [
    ("search_lr", 0.0), ("search_lr", -0.1), ("search_lr", float("nan")), ("search_eps", -1.0), ("search_eps", float("nan")),
    ("search_n_max", -3), ("search_n_max", 2.5), ("search_n_max", "10"), ("search_restarts", 0), ("search_restarts", 1.5),
    ("search_restarts", True), ("search_feature_weight", -0.2), ("search_feature_weight", 2.0),
    ("search_feature_weight", float("nan")), ("search_distance", "L2"), ("lam", 1.5), ("lam", float("nan")), ("lam", "0.1")])
def test_bad_search_parameters_are_refused_before_training(name, value):
    # they were taken silently (a negative lr climbed the distance, a NaN eps or feature weight
    # turned the search or its feature term off) or failed after training with a ValueError
    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    kinds = [AnoGAN] + ([] if name == "lam" else [lambda **kw: ganad.FAnoGAN(inversion="search", **kw)])
    for make in kinds:
        with pytest.raises(InputError, match=f"^{name}: is "):
            make(**{**TINY, name: value}).fit(X)


def test_bad_search_parameters_set_after_fit_are_refused_when_scoring():
    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    for det in (AnoGAN(**TINY).fit(X), ganad.FAnoGAN(inversion="search", **TINY).fit(X),
                AnoGAN(**TINY, knn_weight=0.75).fit(X)):
        det.set_params(search_lr=-1.0)
        with pytest.raises(InputError, match="^search_lr: is -1.0"):
            det.score_components(X[:3])
        if det._knn_weight_now() < 1:  # the default score reads the search's components: refused there too
            with pytest.raises(InputError, match="^search_lr: is -1.0"):
                det.decision_function(X[:3])


@pytest.mark.parametrize("cls", [ganad.BiGAN, ganad.ALAD])
def test_search_feature_weight_refused_where_no_discriminator_judges_x_alone(cls):
    # BiGAN's D(x, z) and ALAD's pair discriminators have no features of x alone: the search ignored the weight
    X = np.random.RandomState(0).randn(64, 4).astype(np.float32)
    with pytest.raises(InputError, match="^search_feature_weight: is 0.5, but"):
        cls(**TINY, inversion="search", search_feature_weight=0.5).fit(X)
