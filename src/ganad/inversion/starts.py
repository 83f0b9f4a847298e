"""Per-sample initial latent codes that depend only on the sample and the seed.

The latent search's starting point for a sample is drawn from a counter-based hash of the
sample's own values, the detector's ``random_state`` and the restart index. A sample
therefore gets the same start, and the same score, whether it is scored alone, in another
order or inside a larger set; and the whole computation stays vectorised (no per-sample
Python work).
"""

from __future__ import annotations

import torch

_M64 = (1 << 64) - 1


def _s64(c: int) -> int:
    c &= _M64
    return c - (1 << 64) if c >= 1 << 63 else c


_GOLDEN = _s64(0x9E3779B97F4A7C15)
_MIX1 = _s64(0xBF58476D1CE4E5B9)
_MIX2 = _s64(0x94D049BB133111EB)


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch shifts arithmetically)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def splitmix64(z: torch.Tensor) -> torch.Tensor:
    """The SplitMix64 finaliser on int64 tensors (wrap-around arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ _srl(z, 30)) * _MIX1
    z = (z ^ _srl(z, 27)) * _MIX2
    return z ^ _srl(z, 31)


def row_seeds(x: torch.Tensor, salt: int) -> torch.Tensor:
    """One int64 seed per sample from the bit patterns of its float32 values."""
    flat = x.detach().to("cpu", torch.float32).flatten(1).contiguous()
    # drop the 12 lowest mantissa bits: a value that went through a text file and back (last-bit
    # rounding) still gets the same start
    bits = (flat.view(torch.int32) & ~0xFFF).to(torch.int64)
    pos = splitmix64(torch.arange(flat.shape[1], dtype=torch.int64) + _s64(salt * 0x632BE59BD9B4E019))
    return splitmix64((bits * pos).sum(1) ^ _s64(salt))


def hashed_uniform(seeds: torch.Tensor, restarts: int, dim: int) -> torch.Tensor:
    """Uniform numbers in (0, 1) of shape (restarts, n, dim), a pure function of (seed, restart, index)."""
    counter = torch.arange(restarts * dim, dtype=torch.int64).reshape(restarts, 1, dim)
    h = splitmix64(splitmix64(seeds.reshape(1, -1, 1) ^ (counter * _GOLDEN)))
    u = _srl(h, 11).to(torch.float64) / float(1 << 53)
    return u.clamp(1e-7, 1 - 1e-7).to(torch.float32)
