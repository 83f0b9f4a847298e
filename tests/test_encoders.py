"""Encoder-based detectors: f-AnoGAN, BiGAN / EGBAD, ALAD, GANomaly, β-VAEGAN.

Quality on a small real data set (breast cancer: trained on benign tumours only, malignant ones
are the anomalies), each method's own property, save / load, every data shape, warm-started
latent search. Tiny networks and few epochs keep the file fast on two busy CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score

import ganad
from ganad import ALAD, VAEGAN, BiGAN, FAnoGAN, GANomaly
from ganad.exceptions import InputError

FAST = dict(width=32, latent_dim=8, batch_size=32, device="cpu", random_state=0)
CONFIGS = {
    "fanogan": (FAnoGAN, dict(epochs=20, encoder_epochs=20)),
    "bigan": (BiGAN, dict(epochs=30)),
    "alad": (ALAD, dict(epochs=40)),
    "ganomaly": (GANomaly, dict(epochs=30)),
    "vaegan": (VAEGAN, dict(epochs=30)),
}
#: measured AUROC (seeds 0 and 1, see docs/methods.md) minus a margin
MIN_AUROC = {"fanogan": 0.85, "bigan": 0.85, "alad": 0.85, "ganomaly": 0.8, "vaegan": 0.85}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: one thread per process avoids oversubscription
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    anomaly = (y == 0).astype(int)  # malignant
    rng = np.random.RandomState(0)
    benign = np.where(anomaly == 0)[0]
    rng.shuffle(benign)
    train, test = benign[:250], np.concatenate([benign[250:], np.where(anomaly == 1)[0]])
    return X[train], X[test], anomaly[test]


_FITTED: dict = {}


def fitted(name, cancer):
    if name not in _FITTED:
        cls, kw = CONFIGS[name]
        _FITTED[name] = cls(**FAST, **kw).fit(cancer[0])
    return _FITTED[name]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_auroc_above_chance(name, cancer):
    det = fitted(name, cancer)
    _, Xte, yte = cancer
    auc = roc_auc_score(yte, det.decision_function(Xte))
    assert auc >= MIN_AUROC[name], f"{name}: AUROC {auc:.3f}"
    assert det.decision_scores_.shape == (250,) and np.isfinite(det.threshold_)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_save_load_identical_scores(name, cancer, tmp_path):
    det = fitted(name, cancer)
    Xte = cancer[1]
    det.save(tmp_path / name)
    back = ganad.load(tmp_path / name)
    assert type(back) is type(det)
    np.testing.assert_array_equal(back.decision_function(Xte), det.decision_function(Xte))
    np.testing.assert_array_equal(back.predict(Xte), det.predict(Xte))
    assert back.threshold_ == det.threshold_


def _generator_inversion(det):
    """Residual of G(E(G(z))) vs G(z) on G's own samples, and of G(z') for unrelated random z'."""
    G, E = det._inference_net("G"), det._inference_net("E")
    g = torch.Generator().manual_seed(123)
    with torch.inference_mode():
        z = torch.randn(200, det.latent_dim, generator=g)
        x = G(z)
        enc = (x - G(E(x))).abs().mean().item()
        rand = (x - G(torch.randn(200, det.latent_dim, generator=g))).abs().mean().item()
    return enc, rand


@pytest.mark.parametrize("name", ["fanogan", "bigan"])
def test_encoder_inverts_generator(name, cancer):
    enc, rand = _generator_inversion(fitted(name, cancer))
    assert enc < 0.8 * rand, (enc, rand)  # measured ratios: f-AnoGAN 0.71, BiGAN 0.61


def test_alad_cycle_consistency_falls(cancer):
    h = fitted("alad", cancer).history_
    cx = h["alad/cycle_x"]
    assert np.mean(cx[-3:]) < 0.9 * np.mean(cx[:3]), cx


def test_ganomaly_latent_loss_falls_and_normalisation_from_training(cancer):
    det = fitted("ganomaly", cancer)
    lat = det.history_["ganomaly/latent"]
    assert np.mean(lat[-3:]) < 0.5 * np.mean(lat[:3]), lat
    # statistics come from the held-out slice of the TRAINING data, never from the data being scored
    assert len(det.validation_index_) > 0
    raw_train = det.score_components(cancer[0][det.validation_index_]).components["latent_raw"]
    center, scale = det.latent_stats_
    assert center == pytest.approx(np.median(raw_train), rel=1e-5)
    assert scale == pytest.approx(1.4826 * np.median(np.abs(raw_train - center)), rel=1e-4)
    Xte = cancer[1]
    whole = det.decision_function(Xte)
    np.testing.assert_allclose(det.decision_function(Xte[:5]), whole[:5], rtol=1e-6)
    assert det.latent_stats_ == (center, scale)


def test_vaegan_kl_finite_and_scores_with_posterior_mean(cancer):
    det = fitted("vaegan", cancer)
    kl = det.history_["vaegan/kl"]
    assert all(np.isfinite(kl))
    beta = det.history_["vaegan/beta"]
    assert beta[0] == 0.0 and beta[-1] == pytest.approx(det.beta)  # linear warm-up
    Xte = cancer[1][:50]
    a = det.score_components(Xte, return_reconstruction=True)
    b = det.score_components(Xte, return_reconstruction=True)
    np.testing.assert_array_equal(a.scores, b.scores)  # deterministic: no sampling at scoring
    x = torch.from_numpy(det.scaler_.transform(Xte))
    with torch.inference_mode():
        mu, _ = det.nets_["E"](x).chunk(2, dim=1)
        rec = det.nets_["G"](mu).numpy()
    np.testing.assert_allclose(a.z, mu.numpy(), atol=1e-4)
    np.testing.assert_allclose(a.reconstruction, det.scaler_.inverse_transform(rec), rtol=1e-3, atol=1e-3)


def test_search_warm_started_from_encoder(cancer):
    det = fitted("fanogan", cancer)
    Xte = cancer[1][:40]
    enc = det.score_components(Xte).components["izi_residual"]
    kw = dict(inversion="search", search_n_max=30, search_eps=0.0)
    warm = clone(det).set_params(**kw)
    cold = clone(det).set_params(search_init="random", **kw)
    for d in (warm, cold):  # reuse the trained state; only the inversion differs
        d.__dict__.update({k: v for k, v in det.__dict__.items() if k.endswith("_") and not k.startswith("__")})
    r_warm = warm.score_components(Xte)
    r_cold = cold.score_components(Xte)
    assert "iterations" in r_warm.extra
    assert r_warm.components["izi_residual"].mean() < enc.mean()
    assert r_warm.components["izi_residual"].mean() < r_cold.components["izi_residual"].mean()


SHAPES = {"vector": ((30,), "auto"), "series": ((1, 64), "auto"), "series_lstm": ((2, 32), "lstm"), "image": ((1, 8, 8), "auto")}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_shape(name, shape):
    dims, net = SHAPES[shape]
    X = np.random.RandomState(0).randn(40, *dims).astype(np.float32)
    det = CONFIGS[name][0](net=net, epochs=1, width=8, latent_dim=4, batch_size=16, device="cpu", random_state=0).fit(X)
    r = det.score_components(X[:10], return_map=True, return_reconstruction=True)
    assert r.scores.shape == (10,) and np.isfinite(r.scores).all()
    assert r.map.shape == r.reconstruction.shape == X[:10].shape
    assert r.z.shape == (10, 4)
    assert set(det.predict(X[:10])) <= {0, 1}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_search_inversion_every_method(name):
    X = np.random.RandomState(0).randn(30, 5).astype(np.float32)
    det = CONFIGS[name][0](epochs=1, width=8, latent_dim=3, batch_size=16, device="cpu", random_state=0,
                           inversion="search", search_n_max=5).fit(X)
    r = det.score_components(X[:4])
    assert np.isfinite(r.scores).all() and (r.extra["iterations"] <= 5).all()


def test_registry_and_params():
    for key, cls in [("fanogan", FAnoGAN), ("bigan", BiGAN), ("egbad", BiGAN), ("alad", ALAD),
                     ("ganomaly", GANomaly), ("vaegan", VAEGAN)]:
        assert ganad.DETECTORS[key] is cls
        p = cls().get_params()
        assert {"contamination", "latent_dim", "net", "epochs", "inversion", "search_init", "random_state"} <= set(p)
        assert clone(cls(latent_dim=3)).latent_dim == 3
    assert ganad.EGBAD is BiGAN
    X = np.zeros((10, 3), np.float32)
    with pytest.raises(InputError, match="inversion"):
        FAnoGAN(inversion="foo").fit(X)
    with pytest.raises(InputError, match="search_init"):
        BiGAN(search_init="foo").fit(X)
    with pytest.raises(InputError, match="w_con"):
        GANomaly(w_con=-1).fit(X)
    with pytest.raises(InputError, match="score_norm"):
        GANomaly(score_norm="zscore").fit(X)
    with pytest.raises(InputError, match="beta"):
        VAEGAN(beta=-1.0).fit(X)
    with pytest.raises(InputError, match="prior"):
        VAEGAN(prior="uniform").fit(X)


def test_same_seed_same_scores():
    X = np.random.RandomState(1).randn(40, 6).astype(np.float32)
    a = BiGAN(epochs=2, width=8, latent_dim=4, batch_size=16, device="cpu", random_state=3).fit(X).decision_scores_
    b = BiGAN(epochs=2, width=8, latent_dim=4, batch_size=16, device="cpu", random_state=3).fit(X).decision_scores_
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_robust_training_and_calibration(name, tmp_path):
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.randn(60, 6), rng.randn(6, 6) + 6]).astype(np.float32)
    det = CONFIGS[name][0](epochs=4, width=8, latent_dim=4, batch_size=16, device="cpu", random_state=0)
    det.fit(X, robust_contamination=0.1)
    assert det.robust_weights_.shape == (66,)
    det.calibrate(X[:40])
    det.save(tmp_path / "m")
    back = ganad.load(tmp_path / "m")
    np.testing.assert_allclose(back.decision_function(X), det.decision_function(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(back.robust_weights_, det.robust_weights_)  # saved with the model
    assert back.robust_ == det.robust_


def test_robust_proxy_needing_a_plain_discriminator_is_refused():
    X = np.random.RandomState(0).randn(30, 4).astype(np.float32)
    for cls in (BiGAN, ALAD):
        with pytest.raises(InputError, match="robust_proxy"):
            cls(epochs=1, width=8, latent_dim=2, device="cpu").fit(X, robust_contamination=0.1, robust_proxy="discriminator")


def test_encoder_scoring_then_search_on_series():
    """Regression: the conv1d matmul-weight cache built under inference_mode (encoder scoring)
    must stay usable by a later latent search on the same detector."""
    rng = np.random.RandomState(0)
    X = (np.sin(np.linspace(0, 6, 64))[None, None, :] + 0.1 * rng.randn(80, 1, 64)).astype(np.float32)
    det = FAnoGAN(epochs=1, encoder_epochs=1, random_state=0).fit(X)
    enc = det.decision_function(X[:8])
    det.set_params(inversion="search", search_init="encoder", search_n_max=5)
    r = det.score_components(X[:8])
    assert np.isfinite(r.scores).all() and r.extra["iterations"].max() <= 5
    det.set_params(inversion="encoder")
    np.testing.assert_array_equal(det.decision_function(X[:8]), enc)


def test_inversion_set_after_fit_refuses_the_stale_threshold_until_calibrate(tmp_path):
    """set_params(inversion='search') on a fitted encoder model kept threshold_, the knn blend's
    standardisation and the reference scores of the encoder scoring: predict compared search scores
    with them silently. predict / predict_proba now refuse, naming calibrate, which re-fits them."""
    rng = np.random.RandomState(0)
    X = rng.randn(160, 4).astype(np.float32)
    det = GANomaly(epochs=1, width=8, latent_dim=2, random_state=0, verbose=False).fit(X[:120])
    det.set_params(inversion="search", search_n_max=3)
    s = det.decision_function(X[120:])  # the scores themselves are fine
    for call in (lambda: det.predict(X[120:]), lambda: det.predict_proba(X[120:]), lambda: det.predict_confidence(X[120:])):
        with pytest.raises(InputError, match=r"inversion='search'.*inversion='encoder'.*calibrate\(X_normal\)"):
            call()
    det.save(tmp_path / "m")  # the staleness travels with the file
    with pytest.raises(InputError, match="calibrate"):
        ganad.load(tmp_path / "m").predict(X[120:])
    assert np.isfinite(s).all()
    det.calibrate(X[120:])  # composition and threshold fitted on search scores
    np.testing.assert_array_equal(det.predict(X[120:]), (det.decision_function(X[120:]) > det.threshold_).astype(int))
    det.save(tmp_path / "m")
    np.testing.assert_array_equal(ganad.load(tmp_path / "m").predict(X[120:]), det.predict(X[120:]))
    assert det.labels_.shape == (120,)  # the training labels keep the threshold their (encoder) scores go with
    det.set_params(inversion="encoder")  # back to the fit-time scoring: now the calibrated threshold is stale
    with pytest.raises(InputError, match="inversion='search'"):
        det.predict(X[120:])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_decision_function_computes_only_the_composers_components(name, cancer):
    """decision_function gives score_components' scores, without the network passes that only
    unused components need (the discriminator, for methods whose composer does not read it)."""
    from ganad.scoring.composition import required_components

    det = fitted(name, cancer)
    X = cancer[1][:40]
    full = det.score_components(X)
    calls = {}
    nets = {k: det._inference_net(k).module for k in det.nets_}  # the eager modules (tabular data)
    hooks = [net.register_forward_hook(lambda m, i, o, k=k: calls.__setitem__(k, calls.get(k, 0) + 1))
             for k, net in nets.items()]
    try:
        scores = det.decision_function(X)
    finally:
        for h in hooks:
            h.remove()
    np.testing.assert_array_equal(scores, full.scores)
    needed = required_components(det.composer_)
    assert set(needed) <= set(full.components)
    disc = {"fanogan": "D", "bigan": "D", "alad": "Dxx", "ganomaly": "D", "vaegan": "D"}[name]
    uses_disc = bool(set(needed) & {"feature", "discriminator", "disc_normalised", "izi_feature", "dxx_feature"}) or (
        "knn" in needed and det.knn_space_ in ("feature", "feature+input", "both"))  # the knn component in D's feature space
    assert (calls.get(disc, 0) > 0) == uses_disc, (needed, calls)


@pytest.mark.parametrize("cls", [BiGAN, ALAD, ganad.TadGAN], ids=lambda c: c.__name__)
def test_generator_and_encoder_run_once_per_step_serving_both_steps(cls):
    """With one critic step per generator step, E's and G's training-mode outputs are computed once,
    with gradients, for the discriminators' step (detached) and their own step: no training-mode
    forward without gradients (the repeat that the second forward was)."""
    X = np.random.default_rng(0).normal(size=(96, 1, 32)).astype(np.float32)
    det = cls(epochs=1, batch_size=32, random_state=0, n_critic=1)
    calls = {"grad": 0, "no_grad": 0}

    def count(module, args, out):
        if module.training:
            calls["grad" if torch.is_grad_enabled() else "no_grad"] += 1

    real_build = det._build_networks

    def build():
        nets = real_build()
        for k in ("G", "E"):
            nets[k].register_forward_hook(count)
        return nets

    det._build_networks = build
    det.fit(X)
    assert calls["grad"] > 0 and calls["no_grad"] == 0, calls


def test_dtw_options_on_vectors_or_images_are_refused_before_training():
    """Soft-DTW compares series windows: on a table or images the DTW settings failed only after
    training, at the first score, with soft_dtw's own message."""
    from ganad import AnoGAN, TadGAN
    X = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    imgs = np.random.default_rng(0).random((32, 1, 8, 8)).astype(np.float32)
    for det, data, name in ((AnoGAN(epochs=1, search_distance="dtw"), X, "search_distance"),
                            (GANomaly(epochs=1, inversion="search", search_distance="dtw"), X, "search_distance"),
                            (TadGAN(epochs=1, rec_error="dtw"), imgs, "rec_error")):
        with pytest.raises(InputError, match=f"^{name}: is 'dtw', but the samples have shape"):
            det.fit(data)
        assert not hasattr(det, "nets_")


def test_lazy_training_scores_are_refused_under_an_inversion_set_after_fit(monkeypatch):
    """A search-scored model computes decision_scores_ on first access (above _threshold_sample rows,
    lowered here). After set_params(inversion=...) they were computed under the new scoring and
    labels_ compared them with the fit-time threshold."""
    monkeypatch.setattr(GANomaly, "_threshold_sample", 50)
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4).astype(np.float32)
    det = GANomaly(epochs=1, width=8, latent_dim=2, random_state=0, verbose=False, inversion="search", search_n_max=3,
                   knn_weight=0.5).fit(X)  # a score that reads the search (the default's knn alone does not)
    det.set_params(inversion="encoder")
    with pytest.raises(InputError, match=r"decision_scores_.*calibrate\(X_normal\)"):
        det.decision_scores_
    det.set_params(inversion="search")  # back to the fit-time scoring: computed as before
    assert det.labels_.shape == (120,) and np.isfinite(det.decision_scores_).all()


def test_cli_score_and_serve_refuse_a_model_saved_with_a_stale_threshold(tmp_path):
    """A model saved after set_params(inversion=...) and before calibrate: `ganad score` wrote labels from
    the old scoring's threshold_ and `ganad serve` served them. Both refuse it, naming calibrate."""
    from typer.testing import CliRunner

    from ganad.cli import app
    from ganad.exceptions import ModelFileError
    from ganad.serve.registry import load_detector
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4).astype(np.float32)
    det = GANomaly(epochs=1, width=8, latent_dim=2, random_state=0, verbose=False).fit(X)
    det.set_params(inversion="search", search_n_max=3)
    det.save(tmp_path / "m")
    np.save(tmp_path / "x.npy", X[:10])
    r = CliRunner().invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code != 0 and "ganad calibrate" in r.output and not (tmp_path / "s.csv").exists()
    with pytest.raises(ModelFileError, match="calibrate"):
        load_detector("m", tmp_path / "m")


def _tiny_images(n=48, seed=0):
    rs = np.random.RandomState(seed)
    return rs.rand(n, 1, 16, 16).astype(np.float32)


def test_a_model_file_records_the_width_and_depth_its_networks_were_built_with(tmp_path, monkeypatch):
    """A file keeps the width / depth resolved at fit, so a later change of a family's default width
    still loads it as built (the same scores), and an older file without them loads with the defaults
    of its time (images: width 32)."""
    import json

    import ganad.detectors.base as base
    X = _tiny_images()
    det = GANomaly(epochs=1, latent_dim=4, batch_size=16, device="cpu", random_state=0).fit(X)
    det.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["params"]["width"] is None
    assert cfg["state"]["width"] == ganad.nets.default_width("dcgan") and cfg["state"]["depth"] == det._depth()
    monkeypatch.setattr(base, "default_width", lambda family: 5)  # the default moves after the file was written
    back = ganad.load(tmp_path / "m")
    np.testing.assert_array_equal(back.decision_function(X[:8]), det.decision_function(X[:8]))
    monkeypatch.undo()

    old = GANomaly(epochs=1, width=32, latent_dim=4, batch_size=16, device="cpu", random_state=0).fit(X)
    old.save(tmp_path / "old")
    f = tmp_path / "old" / "config.json"
    cfg = json.loads(f.read_text())
    cfg["params"]["width"] = None  # as a file written before the state kept the width, under the old default 32
    del cfg["state"]["width"], cfg["state"]["depth"]
    f.write_text(json.dumps(cfg))
    back = ganad.load(tmp_path / "old")
    assert back._width() == ganad.nets.LEGACY_DEFAULT_WIDTH["dcgan"] == 32
    np.testing.assert_array_equal(back.decision_function(X[:8]), old.decision_function(X[:8]))
    back.fit(X)  # a refit builds the networks with today's default
    assert back._width() == ganad.nets.default_width("dcgan")


def test_a_model_file_with_a_bad_recorded_width_is_refused(tmp_path):
    import json

    from ganad.exceptions import ModelFileError
    det = GANomaly(epochs=1, latent_dim=4, batch_size=16, device="cpu", random_state=0).fit(_tiny_images())
    det.save(tmp_path / "m")
    f = tmp_path / "m" / "config.json"
    cfg = json.loads(f.read_text())
    for bad in (0, -3, 2.5, "32", True):
        cfg["state"]["width"] = bad
        f.write_text(json.dumps(cfg))
        with pytest.raises(ModelFileError, match="state.width"):
            ganad.load(tmp_path / "m")


def test_scoring_settings_read_at_score_time_refuse_the_stale_threshold(tmp_path):
    """Beyond inversion: n_neighbors where the knn component searches the nearest bank rows, the latent
    search's settings where every score is a search (AnoGAN), and TadGAN's reconstruction error and score
    combination change the scores; predict compared them with threshold_ fitted under the old values."""
    from ganad import AnoGAN, TadGAN
    rng = np.random.RandomState(0)
    X = rng.randn(200, 4).astype(np.float32)
    eu = GANomaly(epochs=1, width=8, latent_dim=2, knn_space="input", random_state=0).fit(X[:160])
    maha = GANomaly(epochs=1, width=8, latent_dim=2, knn_space="feature", random_state=0).fit(X[:160])  # Mahalanobis
    assert maha.knn_metric_ == "mahalanobis"
    s = maha.decision_function(X[160:])
    maha.set_params(n_neighbors=1)  # not read by the Mahalanobis distance: nothing is stale
    np.testing.assert_array_equal(maha.decision_function(X[160:]), s)
    maha.predict(X[160:])
    eu.save(tmp_path / "eu")
    np.testing.assert_array_equal(ganad.load(tmp_path / "eu").predict(X[160:]), eu.predict(X[160:]))  # no false refusal
    eu.set_params(n_neighbors=1)
    with pytest.raises(InputError, match=r"n_neighbors=1.*n_neighbors=5.*calibrate"):
        eu.predict(X[160:])
    eu.calibrate(X[160:])
    eu.predict(X[160:])
    both = GANomaly(epochs=1, width=8, latent_dim=2, random_state=0).fit(X[:160])  # the default: features and inputs
    both.set_params(n_neighbors=1)  # the input block searches its 5 nearest
    with pytest.raises(InputError, match=r"n_neighbors=1.*n_neighbors=5"):
        both.predict(X[160:])

    ano = AnoGAN(epochs=1, width=8, latent_dim=2, search_n_max=5, random_state=0).fit(X[:160])
    ano.save(tmp_path / "ano")
    ganad.load(tmp_path / "ano").predict(X[160:170])
    for change in ({"search_n_max": 2}, {"search_distance": "l1"}, {"search": "schlegl"}):
        ano.set_params(**change)
        with pytest.raises(InputError, match="calibrate"):
            ano.predict(X[160:170])
        ano.set_params(search_n_max=5, search_distance="l2", search="custom")
    ano.predict(X[160:170])

    W = (np.sin(np.arange(32)[None, None, :] / 4 + rng.rand(120, 1, 1) * 6) + 0.05 * rng.randn(120, 1, 32)).astype(np.float32)
    tad = TadGAN(epochs=1, width=8, latent_dim=2, batch_size=32, random_state=0).fit(W)
    tad.predict(W[:10])
    for change in ({"rec_error": "area"} if "area" in ganad.detectors.tadgan.REC_ERRORS else {"rec_error": "dtw"},
                   {"score_combination": "sum"}, {"alpha": 0.9}):
        back = tad.get_params()
        tad.set_params(**change)
        with pytest.raises(InputError, match="calibrate"):
            tad.predict(W[:10])
        tad.set_params(**{k: back[k] for k in change})
    tad.predict(W[:10])
