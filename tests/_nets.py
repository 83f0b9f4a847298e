"""Helpers shared by the fast-path tests."""

import torch


def trained_like(module, seed=0):
    """Random weights and BatchNorm statistics away from their initial values, so folding matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
        for b in module.buffers():
            if b.dtype.is_floating_point and b.ndim:
                b.copy_(b.abs() + 0.5 * torch.rand(b.shape, generator=g))
    return module
