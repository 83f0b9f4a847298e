"""Small building blocks shared by the network families."""

from __future__ import annotations

import math

import torch
from torch import nn


def maybe_sn(module: nn.Module, spectral_norm: bool) -> nn.Module:
    """Wrap a layer in spectral normalisation (Miyato et al. 2018) when asked."""
    return nn.utils.parametrizations.spectral_norm(module) if spectral_norm else module


def out_activation(name: str) -> nn.Module:
    if name == "tanh":
        return nn.Tanh()
    if name in ("linear", "identity", None):
        return nn.Identity()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"out_activation: unknown value {name!r}. Fix: use 'linear', 'tanh' or 'sigmoid'")


@torch.no_grad()
def update_running_stats(bn: nn.modules.batchnorm._BatchNorm, mean: torch.Tensor, var_unbiased: torch.Tensor) -> None:
    """The running-average update of a training-mode BatchNorm forward, as ``nn.BatchNorm*`` does it
    (``momentum``, or the cumulative average when it is None), for the BatchNorm forwards ganad
    computes itself (the few-channel kernel, DDP's global-batch statistics)."""
    bn.num_batches_tracked.add_(1)
    m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
    bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
    bn.running_var.mul_(1 - m).add_(var_unbiased.detach(), alpha=m)


def dropout_scale(shape, p: float, dtype: torch.dtype, device) -> torch.Tensor:
    """Dropout's multiplier for a tensor of ``shape``: 1 / (1 − p) where an element is kept, 0 where
    it is dropped, each kept with probability 1 − p (to 1/65,536) from torch's global generator.

    Every 64-bit draw of the generator gives four elements their 16 random bits, where
    ``bernoulli_`` (``nn.Dropout``) draws once per element: on a CPU, whose generator is serial,
    the draws are most of dropout's time and this is about 4× faster (benchmarks/RESULTS.md, issue
    15, twelfth session). The same seed gives the same masks; other masks than ``nn.Dropout``'s."""
    n = math.prod(int(s) for s in shape)
    bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=device).view(torch.int16)[:n]
    below = min(max(round((1.0 - p) * 65536) - 32768, -32768), 32767)  # keep where bits < below
    return (bits.reshape(shape) < below).to(dtype).mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the masks of :func:`dropout_scale` (the same module otherwise: no
    parameters or buffers, so model files are unchanged; the identity in eval mode)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p >= 1:
            return x * 0.0
        return x * dropout_scale(x.shape, float(self.p), x.dtype, x.device)


class FeatureDiscriminator(nn.Module):
    """A discriminator made of a list of blocks and a linear head.

    ``forward(x)`` returns ``(logit, features)``: the raw score of shape ``(n,)`` and the
    flattened output of block ``feature_layer`` (negative indices count from the last
    block), the intermediate layer used for feature matching.
    """

    def __init__(self, blocks: list[nn.Module], head: nn.Module, feature_layer: int = -1):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        n = len(self.blocks)
        if not -n <= feature_layer < n:
            from ganad.exceptions import InputError
            raise InputError(f"feature_layer: {feature_layer} is out of range for a discriminator with {n} blocks. "
                             f"Fix: pick an index in [-{n}, {n - 1}]")
        self.feature_layer = feature_layer % n

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = None
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.feature_layer:
                feats = h
        logit = self.head(h).reshape(-1)
        return logit, feats.flatten(1)
