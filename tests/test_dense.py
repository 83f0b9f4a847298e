"""ganad.runtime.dense: wide float32 products on oneDNN, the same values as ``a @ b``."""

import numpy as np
import pytest
import torch

from ganad.runtime import dense

needs_onednn = pytest.mark.skipif(not dense.available(), reason="PyTorch's oneDNN linear is not available here")


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setattr(dense, "_STATE", {})
    monkeypatch.setattr(dense, "_CACHE", {})


def _spy(monkeypatch):
    calls = []
    real = dense._weight

    def spy(b, transposed):
        calls.append(transposed)
        return real(b, transposed)

    monkeypatch.setattr(dense, "_weight", spy)
    return calls


@needs_onednn
@pytest.mark.parametrize("transposed", [False, True])
def test_wide_products_run_on_onednn_and_equal_matmul(monkeypatch, transposed):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 256, generator=g)
    b = torch.randn(256, 192, generator=g)
    b = b.T.contiguous() if transposed else b
    calls = _spy(monkeypatch)
    got = dense.matmul(a, b, transposed=transposed)
    ref = a @ (b.T if transposed else b)
    assert calls == [transposed]  # the oneDNN path ran
    assert got.shape == ref.shape and got.dtype == torch.float32 and not got.is_mkldnn
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("a,b", [
    (torch.randn(8, 256), torch.randn(256, 256)),                   # too few rows
    (torch.randn(300, 16), torch.randn(16, 8)),                     # a narrow matrix
    (torch.randn(300, 256).double(), torch.randn(256, 256).double()),  # float64 stays float64
])
def test_small_or_float64_products_are_plain_matmul(monkeypatch, a, b):
    calls = _spy(monkeypatch)
    got = dense.matmul(a, b)
    assert calls == []
    assert got.dtype == a.dtype and torch.equal(got, a @ b)


@needs_onednn
def test_a_modified_matrix_is_converted_again(monkeypatch):
    a, b = torch.randn(200, 128), torch.randn(128, 128)
    first = dense.matmul(a, b)
    b.mul_(2.0)  # in place: the cached oneDNN weight is stale now
    second = dense.matmul(a, b)
    np.testing.assert_allclose(second.numpy(), 2.0 * first.numpy(), rtol=1e-5, atol=1e-4)


@needs_onednn
def test_inference_tensors_are_not_cached(monkeypatch, fresh_state):
    with torch.inference_mode():
        a, b = torch.randn(200, 128), torch.randn(128, 128)
        got = dense.matmul(a, b)
    np.testing.assert_allclose(got.numpy(), (a @ b).numpy(), rtol=1e-5, atol=1e-4)
    assert dense._CACHE == {}


def test_environment_variable_turns_the_path_off(monkeypatch, fresh_state):
    monkeypatch.setenv("GANAD_ONEDNN", "0")
    assert dense.available() is False
    calls = _spy(monkeypatch)
    a, b = torch.randn(300, 256), torch.randn(256, 256)
    assert torch.equal(dense.matmul(a, b), a @ b) and calls == []


def test_a_failing_onednn_falls_back(monkeypatch, fresh_state):
    def broken(*args):
        raise RuntimeError("no oneDNN here")

    monkeypatch.setattr(torch._C._nn, "mkldnn_linear", broken)
    assert dense.available() is False
    a, b = torch.randn(300, 256), torch.randn(256, 256)
    assert torch.equal(dense.matmul(a, b), a @ b)


@needs_onednn
def test_detector_scores_with_and_without_onednn_agree(monkeypatch):
    """The knn component's whitening (256 discriminator features) runs on oneDNN for a batch; the
    scores are those of the MKL product within float32 round-off."""
    import ganad

    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 64, dtype=np.float32)
    X = (np.sin(t)[None, :] * rng.uniform(0.5, 1.5, (400, 1)) + 0.05 * rng.standard_normal((400, 64))).astype(np.float32)
    det = ganad.FAnoGAN(epochs=1, batch_size=64, width=16, random_state=0, verbose=False).fit(X[:, None, :])
    assert det.__dict__.get("knn_basis_") is not None and det.knn_basis_.numel() >= dense.MIN_ENTRIES
    calls = _spy(monkeypatch)
    on = det.decision_function(X[:, None, :])
    assert calls  # the whitening ran on oneDNN
    monkeypatch.setattr(dense, "_STATE", {"ok": False})
    off = det.decision_function(X[:, None, :])
    np.testing.assert_allclose(on, off, rtol=1e-4, atol=1e-5 * float(np.ptp(off)))
