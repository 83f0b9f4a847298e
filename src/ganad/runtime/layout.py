"""The one place where the weights of the 1-D convolutions are re-laid out for matrix multiplies.

``Down1d`` keeps PyTorch's Conv1d layout ``(c_out, c_in, 4)`` and ``Up1d`` ConvTranspose1d's
``(c_in, c_out, 4)``; every runner (the modules' own matmul form, the GEMM programs, the native
kernels) multiplies by one of the matrices below. With k = 4, stride 2, padding 1:

* stride-2 convolution: output j reads input rows 2j-1 .. 2j+2, i.e. taps W0..W3 (each
  ``(c_in, c_out)``) stacked row-wise: :func:`down_taps` ``(4 c_in, c_out)``;
* transposed convolution (polyphase): even output 2j = x[j-1] W3 + x[j] W1, odd output
  2j+1 = x[j] W2 + x[j+1] W0, taps side by side: :func:`up_taps` ``[W3 | W1 | W2 | W0]``.

Narrow layers (few output columns) compute ``g`` outputs per row from a window of input rows
instead: :func:`down_band` and :func:`up_band` (banded weights with zero blocks).
"""

from __future__ import annotations

import torch


def down_taps(w: torch.Tensor) -> torch.Tensor:
    """Conv1d weight (co, c, 4) -> (4 c, co): rows W0', W1', W2', W3' (tap-major)."""
    return w.permute(2, 1, 0).reshape(4 * w.shape[1], w.shape[0])


def down_pairs(w: torch.Tensor) -> torch.Tensor:
    """Conv1d weight (co, c, 4) -> [U | V] (2 c, 2 co): with the input read as pairs of rows
    P[j] = (x[2j-1], x[2j]), output j = P[j] U + P[j+1] V."""
    return taps_to_pairs(down_taps(w))


def taps_to_pairs(taps: torch.Tensor) -> torch.Tensor:
    """:func:`down_taps` (4 c, co) -> :func:`down_pairs` (2 c, 2 co)."""
    c, co = taps.shape[0] // 4, taps.shape[1]
    return taps.reshape(2, 2 * c, co).permute(1, 0, 2).reshape(2 * c, 2 * co)


def up_taps(w: torch.Tensor) -> torch.Tensor:
    """ConvTranspose1d weight (c, co, 4) -> [W3 | W1 | W2 | W0] (c, 4 co)."""
    return torch.cat([w[:, :, 3], w[:, :, 1], w[:, :, 2], w[:, :, 0]], dim=1)


def up_taps_in_order(w: torch.Tensor) -> torch.Tensor:
    """ConvTranspose1d weight (c, co, 4) -> [W0 | W1 | W2 | W3] (c, 4 co)."""
    return torch.cat([w[:, :, 0], w[:, :, 1], w[:, :, 2], w[:, :, 3]], dim=1)


def up_input_grad_pairs(wm: torch.Tensor) -> torch.Tensor:
    """:func:`up_taps` ``wm`` (c, 4 co) -> [U | V] (2 co, 2 c) of the transposed convolution's input
    gradient, a stride-2 convolution of the output gradient: gx[j] = P[j] U + P[j+1] V with
    P[p] = (gy[2p-1], gy[2p])."""
    c, co = wm.shape[0], wm.shape[1] // 4
    wt = wm.reshape(c, 4, co)
    uv = torch.cat([wt[:, 3], wt[:, 1], wt[:, 2], wt[:, 0]], dim=1).t()  # rows: W0', W1', W2', W3'
    return uv.reshape(2, 2 * co, c).permute(1, 0, 2).reshape(2 * co, 2 * c)


def down_band(w: torch.Tensor, g: int) -> torch.Tensor:
    """Conv1d weight (co, c, 4) -> ((2g + 2) c, g co): g outputs from a window of 2g + 2 input
    rows; output k of the group reads window rows 2k .. 2k + 3."""
    co, c = w.shape[0], w.shape[1]
    band = w.new_zeros(2 * g + 2, c, g, co)
    for k in range(g):
        band[2 * k:2 * k + 4, :, k, :] = w.permute(2, 1, 0)
    return band.reshape((2 * g + 2) * c, g * co)


def up_band(w: torch.Tensor, g: int) -> torch.Tensor:
    """ConvTranspose1d weight (c, co, 4) -> ((g + 2) c, 2 g co): g input rows -> 2g outputs from
    a window of g + 2 rows (input row i of the group is window row i + 1)."""
    c, co = w.shape[0], w.shape[1]
    band = w.new_zeros(g + 2, c, 2 * g, co)
    for i in range(g):
        band[i, :, 2 * i] = w[:, :, 3]
        band[i + 1, :, 2 * i] = w[:, :, 1]
        band[i + 1, :, 2 * i + 1] = w[:, :, 2]
        band[i + 2, :, 2 * i + 1] = w[:, :, 0]
    return band.reshape((g + 2) * c, 2 * g * co)
