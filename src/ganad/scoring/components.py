"""Score components: each maps a batch to one number per sample (higher = more anomalous).

All functions take scaled tensors and return tensors; the per-element residual map is the
basis of localisation (which feature / time step / pixel is anomalous).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def residual_map(x: torch.Tensor, x_hat: torch.Tensor, p: int = 1) -> torch.Tensor:
    """|x - x̂|^p element-wise, the same shape as ``x``."""
    d = (x - x_hat).abs()
    return d if p == 1 else d.pow(p)


def residual(x: torch.Tensor, x_hat: torch.Tensor, p: int = 1) -> torch.Tensor:
    """Mean |x - x̂|^p per sample (L1 for p = 1, mean squared error for p = 2)."""
    return residual_map(x, x_hat, p).flatten(1).mean(1)


def feature_matching(f_x: torch.Tensor, f_hat: torch.Tensor) -> torch.Tensor:
    """Mean |f(x) - f(x̂)| per sample on an intermediate discriminator layer."""
    return (f_x - f_hat).abs().flatten(1).mean(1)


def discriminator_ce(logit_hat: torch.Tensor) -> torch.Tensor:
    """Cross entropy of the discriminator judging x̂ real: -log σ(D(x̂))."""
    return F.softplus(-logit_hat)


def latent_norm_deviation(z: torch.Tensor, mode: float) -> torch.Tensor:
    """| ‖z‖ - mode |: distance of the code's norm from the prior's most likely norm."""
    return (z.norm(dim=1) - mode).abs()
