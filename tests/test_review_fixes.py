"""Method fixes found on review (issue 15, item 7), one test or more each."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from ganad import ALAD, VAEGAN, AnoGAN, BiGAN, FAnoGAN, GANomaly
from ganad.detectors.encoder_base import adv_losses
from ganad.training.objectives import OBJECTIVES


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def benign():
    X, y = load_breast_cancer(return_X_y=True)
    return X[y == 1][:120].astype(np.float32)


# ---------------------------------------------------------------- robust training weights every data term
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_adv_losses_weight_real_and_data_fake_terms(objective):
    real = torch.randn(6, requires_grad=True)
    fake = torch.randn(6, requires_grad=True)
    w = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    for side in (0, 1):  # discriminator loss, generator + encoder loss
        real.grad = fake.grad = None
        adv_losses(objective, real, fake, w, w)[side].backward()
        assert torch.all(real.grad[w == 0] == 0) and torch.all(fake.grad[w == 0] == 0)
        assert torch.any(real.grad[w == 1] != 0) and torch.any(fake.grad[w == 1] != 0)
    real.grad = fake.grad = None
    adv_losses(objective, real, fake, w)[1].backward()  # fakes from the prior: not weighted
    assert torch.all(fake.grad != 0) and torch.all(real.grad[w == 0] == 0)


@pytest.mark.parametrize("cls", [BiGAN, ALAD, GANomaly, VAEGAN, FAnoGAN, AnoGAN])
def test_weight_zero_samples_move_no_network(cls, benign):
    """Three training steps of every stage, networks in eval mode (no batch statistics, no dropout):
    replacing the samples of weight 0 by anything else must leave every updated weight unchanged."""
    kw = dict(epochs=0, width=8, latent_dim=3, net="mlp", objective="bce", device="cpu", random_state=0)
    if cls is AnoGAN:
        kw["search_n_max"] = 2
    det = cls(**kw).fit(benign)
    init = {k: v.clone() for k, v in det.nets_.state_dict().items()}
    x = torch.from_numpy(det.scaler_.transform(benign[:16]))
    w = torch.ones(16)
    w[::3] = 0.0
    other = x.clone()
    other[w == 0] = torch.from_numpy(np.random.RandomState(1).normal(0, 2, (int((w == 0).sum()), x.shape[1])).astype(np.float32))

    def step(xb):
        det.nets_.load_state_dict(init)
        det.nets_.eval()
        for p in det.nets_.parameters():
            p.requires_grad_(True)
        for stage in det._stages(torch.Generator().manual_seed(0)):
            for _ in range(3):  # Adam's first step moves by lr·sign(g): later steps see magnitudes
                stage.step(xb, w)
        return {k: v.clone() for k, v in det.nets_.state_dict().items()}

    a, b = step(x), step(other)
    moved = [k for k in a if not torch.equal(a[k], init[k])]
    assert moved  # the step did train something
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7, msg=lambda m: f"{cls.__name__} {k}: {m}")


def test_frozen_copies_leave_spectral_norm_training_nets_usable(benign):
    """Baking spectral norm into a scoring copy must not strip the weight from the training nets
    (torch removes the property from the class, which a deep copy shares)."""
    det = ALAD(epochs=1, width=8, latent_dim=3, net="mlp", device="cpu", random_state=0).fit(benign)
    assert det.spectral_norm
    x = torch.from_numpy(det.scaler_.transform(benign[:4]))
    z = torch.zeros(4, 3)
    det.nets_.eval()
    with torch.no_grad():
        out, _ = det.nets_["Dxz"](x, z)  # raised AttributeError: no attribute 'weight' before
        ref, _ = det._inference_net("Dxz")(x, z)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- compose='default' counts a twin once
def test_composable_drops_raw_twins_only():
    from ganad.scoring.composition import composable
    assert composable(["residual", "latent_raw", "latent", "feature"]) == ["feature", "latent", "residual"]
    assert composable(["latent_raw", "residual"]) == ["latent_raw", "residual"]  # no normalised twin: kept


def test_ganomaly_default_composition_counts_latent_once(benign):
    from ganad.scoring.composition import RobustStandardised
    det = GANomaly(epochs=2, width=8, latent_dim=3, device="cpu", random_state=0).fit(benign[:80])
    comps = det.score_components(benign[80:]).components
    assert {"latent", "latent_raw"} <= set(comps)
    det.calibrate(benign[80:], compose="default")
    names = det.composer_.names
    assert "latent" in names and "latent_raw" not in names
    assert det.composer_.weights["latent"] == pytest.approx(1.0 / len(names))
    ref = RobustStandardised.fit(comps, sorted(set(comps) - {"latent_raw"}))
    np.testing.assert_allclose(det.decision_function(benign[80:]), ref(comps), rtol=1e-9)
    det.calibrate(benign[80:], compose="default", weights={"latent_raw": 1.0, "residual": 1.0})  # by name: allowed
    assert det.composer_.names == ["latent_raw", "residual"]
