"""Wide float32 matrix products of the scoring path on oneDNN's CPU kernels.

The knn component whitens every scored row's discriminator features (a 256 x 256 product per row
for the conv1d beat model, :meth:`ganad.detectors.base.BaseGANDetector._knn_embed_rows`). PyTorch runs
float32 ``a @ b`` on MKL, which on AMD processors takes its AVX2 code path (about 105 GFLOP/s on one
Zen 5 core); PyTorch's bundled oneDNN runs the same product with AVX-512 at about twice that
(benchmarks/RESULTS.md, "512-bit native kernels and oneDNN whitening"). :func:`matmul` sends the
products where oneDNN wins (many rows, a wide matrix) there, everything else to ``a @ b``.

The result is the same product in float32 (another summation order: differences of float32
round-off, ~1e-6 of the values), and a row's value does not depend on which path ran beyond that.
``GANAD_ONEDNN=0`` turns the path off (every product on ``a @ b``).
"""

from __future__ import annotations

import os
import threading
import weakref

import torch

#: oneDNN runs a product only from this many rows and this many matrix entries (below, the
#: conversions to and from its layout cost more than its faster kernels save: measured on Zen 5)
MIN_ROWS = 128
MIN_ENTRIES = 128 * 128

_LOCK = threading.Lock()
_CACHE: dict = {}  # (id(b), transposed) -> (weakref to b, b._version, oneDNN weight)
_STATE: dict = {}


def available() -> bool:
    """True where PyTorch's oneDNN runs float32 linear products here (and GANAD_ONEDNN is not 0)."""
    if "ok" not in _STATE:
        ok = os.environ.get("GANAD_ONEDNN", "1").strip().lower() not in ("0", "false", "no", "off")
        if ok:
            try:
                ok = bool(torch.backends.mkldnn.is_available()) and hasattr(torch._C._nn, "mkldnn_linear")
                if ok:  # one tiny product, checked against MKL's, before any score depends on it
                    g = torch.Generator().manual_seed(0)  # its own generator: the caller's torch random state is left as it was
                    a, w = torch.randn(3, 5, generator=g), torch.randn(4, 5, generator=g)
                    y = torch._C._nn.mkldnn_linear(a.to_mkldnn(), w.to_mkldnn(), None).to_dense()
                    ok = bool(torch.allclose(y, a @ w.T, rtol=1e-5, atol=1e-5))
            except Exception:  # noqa: BLE001 - any failure means: use a @ b
                ok = False
        _STATE["ok"] = ok
    return _STATE["ok"]


def _weight(b: torch.Tensor, transposed: bool) -> torch.Tensor:
    """``b`` as oneDNN's (out, in) weight, converted once per tensor (and again if it is modified)."""
    if b.is_inference():  # no version counter to tell a modified tensor: converted per call
        return (b if transposed else b.T).contiguous().to_mkldnn()
    key = (id(b), transposed)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is b and hit[1] == b._version:
        return hit[2]
    w = (b if transposed else b.T).contiguous().to_mkldnn()
    with _LOCK:
        for k in [k for k, v in _CACHE.items() if v[0]() is None]:
            del _CACHE[k]
        _CACHE[key] = (weakref.ref(b), b._version, w)
    return w


def matmul(a: torch.Tensor, b: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """``a @ b`` (``a @ b.T`` with ``transposed``) for a 2-D float32 ``a`` and a matrix ``b`` that is
    reused from call to call (a fitted projection): on oneDNN where it is faster, else PyTorch's."""
    if (a.dtype == torch.float32 and b.dtype == torch.float32 and a.device.type == "cpu" and b.device.type == "cpu"
            and a.dim() == 2 and b.dim() == 2 and a.shape[0] >= MIN_ROWS and b.numel() >= MIN_ENTRIES
            and not (a.requires_grad or b.requires_grad) and available()):
        return torch._C._nn.mkldnn_linear(a.contiguous().to_mkldnn(), _weight(b, transposed), None).to_dense()
    return a @ (b.T if transposed else b)
