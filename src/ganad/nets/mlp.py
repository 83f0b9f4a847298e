"""Multilayer perceptrons for vector data of shape (n, d)."""

from __future__ import annotations

import math

from torch import nn

from ganad.nets.blocks import Dropout, FeatureDiscriminator, maybe_sn, out_activation


def _flat(shape) -> int:
    return int(math.prod(shape))


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, data_shape: tuple[int, ...], width: int = 128, depth: int = 2,
                 out_act: str = "linear"):
        super().__init__()
        self.data_shape = tuple(data_shape)
        layers: list[nn.Module] = []
        d = latent_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2)]
            d = width
        layers += [nn.Linear(d, _flat(data_shape)), out_activation(out_act)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z).reshape(z.shape[0], *self.data_shape)


class MLPEncoder(nn.Module):
    def __init__(self, data_shape: tuple[int, ...], out_dim: int, width: int = 128, depth: int = 2):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = _flat(data_shape)
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2)]
            d = width
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def mlp_discriminator(data_shape, width: int = 128, depth: int = 2, spectral_norm: bool = False,
                      feature_layer: int = -1, dropout: float = 0.2) -> FeatureDiscriminator:
    blocks: list[nn.Module] = []
    d = _flat(data_shape)
    for i in range(depth):
        layers = [nn.Flatten()] if i == 0 else []
        layers += [maybe_sn(nn.Linear(d, width), spectral_norm), nn.LeakyReLU(0.2)]
        if dropout:
            layers.append(Dropout(dropout))
        blocks.append(nn.Sequential(*layers))
        d = width
    return FeatureDiscriminator(blocks, maybe_sn(nn.Linear(d, 1), spectral_norm), feature_layer)
