"""Method fixes found on review (issue 15, item 7), one test or more each."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

from ganad import ALAD


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
