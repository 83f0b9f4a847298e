"""Joint discriminators of the bidirectional methods (BiGAN / EGBAD, ALAD), built from the
data-shape families' feature extractors so that they work on vectors, series and images.

* :class:`JointDiscriminator` ``D(x, z)``: the family's discriminator blocks read ``x``, a small
  MLP reads ``z``, and a joint layer reads both (Donahue et al. 2017; Zenati et al. 2018).
* :class:`PairDiscriminator` ``Dxx(x, x')``: the family's discriminator on the two samples
  stacked along the channel axis (ALAD's cycle-consistency discriminator on x).
* :class:`LatentPairDiscriminator` ``Dzz(z, z')``: an MLP on the concatenated codes.

Every one returns ``(logit, features)`` like :class:`ganad.nets.blocks.FeatureDiscriminator`;
``features`` is the joint layer's output, the layer used for feature-matching scores.
"""

from __future__ import annotations

import torch
from torch import nn

from ganad.nets import build_discriminator
from ganad.nets.blocks import Dropout, maybe_sn


def _feature_width(blocks: nn.Module, data_shape) -> int:
    with torch.no_grad():
        h = torch.zeros(2, *data_shape)
        for b in blocks:
            h = b(h)
    return int(h[0].numel())


class JointDiscriminator(nn.Module):
    """D(x, z) -> (logit, joint features)."""

    def __init__(self, family: str, data_shape, latent_dim: int, width: int, depth: int,
                 spectral_norm: bool = False, dropout: float = 0.2):
        super().__init__()
        base = build_discriminator(family, data_shape, width, depth, spectral_norm, -1)
        self.x_blocks = base.blocks  # the family's feature extractor, its head dropped
        self.data_shape = getattr(base, "data_shape", None)  # for the CPU runners of frozen conv1d copies (ganad.runtime)
        n_x = _feature_width(self.x_blocks, data_shape)
        hz = max(16, min(width, 128))
        self.z_net = nn.Sequential(maybe_sn(nn.Linear(latent_dim, hz), spectral_norm), nn.LeakyReLU(0.2))
        hj = max(16, min(2 * width, 256))
        self.joint = nn.Sequential(maybe_sn(nn.Linear(n_x + hz, hj), spectral_norm), nn.LeakyReLU(0.2), Dropout(dropout))
        self.head = maybe_sn(nn.Linear(hj, 1), spectral_norm)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for b in self.x_blocks:
            h = b(h)
        return self.joint_head(h, z)

    def joint_head(self, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logit, joint features) from the x blocks' output ``h`` and the code ``z``."""
        f = self.joint(torch.cat([h.flatten(1), self.z_net(z)], dim=1))
        return self.head(f).reshape(-1), f


class PairDiscriminator(nn.Module):
    """Dxx(x, x') -> (logit, features): the family's discriminator on (x, x') stacked on the channel axis."""

    def __init__(self, family: str, data_shape, width: int, depth: int, spectral_norm: bool = False,
                 feature_layer: int = -1):
        super().__init__()
        shape = (2 * data_shape[0],) + tuple(data_shape[1:])
        self.d = build_discriminator(family, shape, width, depth, spectral_norm, feature_layer)

    def forward(self, x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d(torch.cat([x, x2], dim=1))


class LatentPairDiscriminator(nn.Module):
    """Dzz(z, z') -> (logit, features): an MLP on the concatenated codes."""

    def __init__(self, latent_dim: int, width: int, spectral_norm: bool = False, dropout: float = 0.2):
        super().__init__()
        h = max(16, min(2 * width, 256))
        self.net = nn.Sequential(maybe_sn(nn.Linear(2 * latent_dim, h), spectral_norm), nn.LeakyReLU(0.2), Dropout(dropout),
                                 maybe_sn(nn.Linear(h, h), spectral_norm), nn.LeakyReLU(0.2), Dropout(dropout))
        self.head = maybe_sn(nn.Linear(h, 1), spectral_norm)

    def forward(self, z: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.net(torch.cat([z, z2], dim=1))
        return self.head(f).reshape(-1), f
