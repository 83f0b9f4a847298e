"""Convolutional families: 1-D for series windows (n, c, l), DCGAN-style 2-D for images (n, c, h, w).

Generators upsample a small base map with stride-2 transposed convolutions and crop to the
data size, so any length / image size works; discriminators and encoders mirror them with
stride-2 convolutions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganad.nets.blocks import FeatureDiscriminator, maybe_sn, out_activation


def _conv(dim: int):
    return (nn.Conv1d, nn.ConvTranspose1d, nn.BatchNorm1d) if dim == 1 else (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)


class ConvGenerator(nn.Module):
    def __init__(self, latent_dim: int, data_shape: tuple[int, ...], width: int = 16, depth: int = 3,
                 out_act: str = "linear"):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.dim = len(data_shape) - 1
        channels, spatial = data_shape[0], data_shape[1:]
        Conv, ConvT, BN = _conv(self.dim)
        self.base = tuple(max(1, math.ceil(s / 2 ** depth)) for s in spatial)
        c0 = width * 2 ** (depth - 1)
        self.c0 = c0
        self.fc = nn.Sequential(nn.Linear(latent_dim, c0 * math.prod(self.base)), nn.BatchNorm1d(c0 * math.prod(self.base)), nn.ReLU())
        layers: list[nn.Module] = []
        c = c0
        for i in range(depth - 1):
            layers += [ConvT(c, c // 2, 4, 2, 1, bias=False), BN(c // 2), nn.ReLU()]
            c //= 2
        layers += [ConvT(c, channels, 4, 2, 1), out_activation(out_act)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        h = self.fc(z).reshape(z.shape[0], self.c0, *self.base)
        out = self.net(h)
        if self.dim == 1:
            return out[:, :, : self.data_shape[1]]
        return out[:, :, : self.data_shape[1], : self.data_shape[2]]


def _down_blocks(data_shape, width, depth, spectral_norm, norm: bool = False) -> list[nn.Module]:
    dim = len(data_shape) - 1
    Conv, _, BN = _conv(dim)
    blocks: list[nn.Module] = []
    c_in = data_shape[0]
    for i in range(depth):
        c_out = width * 2 ** i
        layers = [maybe_sn(Conv(c_in, c_out, 4, 2, 1), spectral_norm)]
        if norm and i > 0:
            layers.append(BN(c_out))
        layers.append(nn.LeakyReLU(0.2))
        blocks.append(nn.Sequential(*layers))
        c_in = c_out
    return blocks


def _flat_size(blocks, data_shape) -> int:
    with torch.no_grad():
        h = torch.zeros(2, *data_shape)
        for b in blocks:
            h = b(h)
    return int(h[0].numel())


def conv_discriminator(data_shape, width: int = 16, depth: int = 3, spectral_norm: bool = False,
                       feature_layer: int = -1) -> FeatureDiscriminator:
    blocks = _down_blocks(data_shape, width, depth, spectral_norm)
    n_flat = _flat_size(blocks, data_shape)
    head = nn.Sequential(nn.Flatten(), maybe_sn(nn.Linear(n_flat, 1), spectral_norm))
    return FeatureDiscriminator(blocks, head, feature_layer)


class ConvEncoder(nn.Module):
    def __init__(self, data_shape, out_dim: int, width: int = 16, depth: int = 3):
        super().__init__()
        blocks = _down_blocks(data_shape, width, depth, False, norm=True)
        n_flat = _flat_size(blocks, data_shape)
        self.net = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(n_flat, out_dim))

    def forward(self, x):
        return self.net(x)
