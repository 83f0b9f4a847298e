"""Batched, differentiable soft-DTW (Cuturi & Blondel, ICML 2017) in plain torch.

``soft_dtw(x, y, gamma)`` aligns every pair of series ``x[i]``, ``y[i]`` of shape
(channels, length) with squared-Euclidean point costs and the soft minimum
``-γ log Σ exp(-a/γ)``; the dynamic programme runs along anti-diagonals, so one step handles
every cell of a diagonal of every pair in the batch (2L - 1 steps, each a batched tensor op),
on any device, with autograd for the gradient. ``soft_dtw_divergence`` (Blondel, Mensch &
Vert, AISTATS 2021) subtracts the self-alignment terms, so it is >= 0 and 0 when x = y; ganad's
``search_distance="dtw"`` and the series DTW residual use it, divided by length x channels so
that it is on the scale of the mean squared error (equal to it when the best alignment is the
identity and γ -> 0).

Maintained packages were checked (`pysdtw`, `tslearn`: both install); this 50-line version is
used instead because it batches pairs on any device without a new dependency (tslearn's torch
loss loops over samples in numba on the CPU, pysdtw last released in 2022).
"""

from __future__ import annotations

import torch


def _softmin3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, gamma: float) -> torch.Tensor:
    """``-γ log Σ exp(-v/γ)`` over the three, with the largest term taken out before the exponentials
    (as ``torch.logsumexp`` does) written out: ONNX's ``ReduceLogSumExp``, which ``torch.logsumexp``
    exports to, sums the raw exponentials in onnxruntime, so terms below about -100 underflowed there
    (an exported TadGAN with ``rec_error='dtw'`` scored rows 10 units off). The maximum is held
    constant for autograd: the gradient is the same softmin weights either way."""
    s = torch.stack([a, b, c]) / -gamma
    m = s.detach().amax(0)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # all three +inf costs: the sum is 0 and the result +inf
    return -gamma * (m + torch.log(torch.exp(s - m).sum(0)))


def soft_dtw(x: torch.Tensor, y: torch.Tensor, gamma: float = 0.1) -> torch.Tensor:
    """Soft-DTW value per pair: x (n, C, L1), y (n, C, L2) -> (n,). Differentiable in x and y."""
    if x.dim() == 2:
        x, y = x.unsqueeze(1), y.unsqueeze(1)
    if x.dim() != 3 or y.dim() != 3 or x.shape[:2] != y.shape[:2]:
        raise ValueError(f"soft_dtw: x and y must be (n, channels, length) with the same n and channels, got {tuple(x.shape)} and {tuple(y.shape)}. "
                         "Fix: pass series windows")
    if not gamma > 0:
        raise ValueError(f"soft_dtw: gamma is {gamma!r}. Fix: pass a positive smoothing such as 0.1")
    n, L1, L2 = x.shape[0], x.shape[2], y.shape[2]
    # squared Euclidean cost of every pair of time steps: (n, L1, L2)
    cost = (x.square().sum(1).unsqueeze(2) + y.square().sum(1).unsqueeze(1) - 2 * torch.bmm(x.transpose(1, 2), y)).clamp_min(0)
    inf = torch.full((n, 1), float("inf"), dtype=x.dtype, device=x.device)
    # R on the previous two anti-diagonals, indexed by row i (padded with +inf outside the matrix)
    prev2 = None   # diagonal d-2
    prev1 = None   # diagonal d-1
    for d in range(L1 + L2 - 1):
        i = torch.arange(max(0, d - L2 + 1), min(d, L1 - 1) + 1, device=x.device)
        j = d - i
        c = cost[:, i, j]                                                  # (n, len)
        if d == 0:
            cur = c
        else:
            # neighbours of cell (i, j): (i-1, j-1) on d-2, (i-1, j) and (i, j-1) on d-1
            lo1 = max(0, d - 1 - L2 + 1)                                   # first row of diagonal d-1
            p1 = torch.cat([inf, prev1, inf], 1)                           # row r of d-1 at column r - lo1 + 1
            up = p1[:, (i - 1) - lo1 + 1]                                  # R[i-1, j]
            left = p1[:, i - lo1 + 1]                                      # R[i, j-1]
            if d >= 2:
                lo2 = max(0, d - 2 - L2 + 1)
                p2 = torch.cat([inf, prev2, inf], 1)
                diag = p2[:, (i - 1) - lo2 + 1]                            # R[i-1, j-1]
            else:
                diag = inf.expand(-1, len(i))
            # outside the matrix: the row index i-1 < lo means +inf (handled by the padding)
            cur = c + _softmin3(diag, up, left, gamma)
        prev2, prev1 = prev1, cur
    return prev1[:, -1]


def soft_dtw_divergence(x: torch.Tensor, y: torch.Tensor, gamma: float = 0.1) -> torch.Tensor:
    """sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2 per pair, divided by length x channels: >= 0, 0 when x = y."""
    xy = soft_dtw(torch.cat([x, x, y]), torch.cat([y, x, y]), gamma)
    n = x.shape[0]
    scale = float(x.shape[-1] * (x.shape[1] if x.dim() == 3 else 1))
    return (xy[:n] - 0.5 * (xy[n:2 * n] + xy[2 * n:])) / scale
