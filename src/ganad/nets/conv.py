"""Convolutional families: 1-D for series windows (n, c, l), DCGAN-style 2-D for images (n, c, h, w).

Generators upsample a small base map with stride-2 transposed convolutions and crop to the
data size, so any length / image size works; discriminators and encoders mirror them with
stride-2 convolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganad.nets.blocks import FeatureDiscriminator, maybe_sn, out_activation


def _conv(dim: int):
    return (nn.Conv1d, nn.ConvTranspose1d, nn.BatchNorm1d) if dim == 1 else (OneChannelConv2d, OneChannelConvTranspose2d, nn.BatchNorm2d)


def _s2d_kernel(w: torch.Tensor) -> torch.Tensor:
    """A 4 × 4 kernel (a, b, 4, 4) as the 2 × 2 kernel (a, 4b, 2, 2) over 2 × 2 pixel blocks.

    Kernel tap (2i + p, 2j + q) becomes tap (i, j) of channel b·4 + 2p + q, the channel order of
    ``pixel_unshuffle`` / ``pixel_shuffle``."""
    a, b = w.shape[:2]
    return w.reshape(a, b, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(a, b * 4, 2, 2)


def _is_down4(m) -> bool:
    return (m.kernel_size == (4, 4) and m.stride == (2, 2) and m.padding == (1, 1) and m.dilation == (1, 1)
            and m.groups == 1 and m.padding_mode == "zeros")


class OneChannelConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose 4 × 4, stride-2 form on a one-channel image runs as a 2 × 2, stride-1
    convolution over the image's 2 × 2 pixel blocks (``pixel_unshuffle``).

    The same weights, parameters and results (float32 round-off): oneDNN handles a one-channel input
    badly, above all the input gradient that every generator step takes through the discriminator
    (2.2–2.7× the time of the block form at batches 64–128, 2 threads; `benchmarks/RESULTS.md`,
    "Gray images' outer layers over pixel blocks"). Other shapes take ``nn.Conv2d``'s own path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels != 1 or not _is_down4(self) or x.dim() != 4 or min(x.shape[-2:]) < 2:
            return super().forward(x)
        h, w = x.shape[-2:]
        # an odd side gets one more zero row / column (the block form then gives one output too many)
        blocks = F.pixel_unshuffle(F.pad(x, (1, 1 + w % 2, 1, 1 + h % 2)), 2)
        out = F.conv2d(blocks, _s2d_kernel(self.weight), self.bias)
        return out[..., : (h - 2) // 2 + 1, : (w - 2) // 2 + 1] if h % 2 or w % 2 else out


class OneChannelConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose 4 × 4, stride-2 form onto a one-channel image runs as a 2 × 2,
    stride-1 transposed convolution onto 2 × 2 pixel blocks (``pixel_shuffle``): the adjoint of
    :class:`OneChannelConv2d`'s form, the same weights and results (float32 round-off), 2–5× faster
    forward on oneDNN. Other shapes take ``nn.ConvTranspose2d``'s own path."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if self.out_channels != 1 or output_size is not None or not _is_down4(self) or self.output_padding != (0, 0):
            return super().forward(x, output_size)
        out = F.pixel_shuffle(F.conv_transpose2d(x, _s2d_kernel(self.weight)), 2)[..., 1:-1, 1:-1]
        return out if self.bias is None else out + self.bias.reshape(1, -1, 1, 1)


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
