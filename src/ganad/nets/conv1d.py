"""1-D convolutional family for series windows (n, channels, length), built for CPU speed.

The layers are the usual stride-2 convolution / transposed convolution with kernel 4 and
padding 1 (DCGAN's choice), computed channels-last as *one matrix multiply each*:

* ``Down1d`` (Conv1d k=4 s=2 p=1): the padded input viewed as pairs of time steps, two
  neighbouring pairs concatenated -> (n, l/2, 4c) @ W (4c, c_out);
* ``Up1d`` (ConvTranspose1d k=4 s=2 p=1), polyphase: the neighbours x[j-1], x[j], x[j+1]
  concatenated -> (n, l, 3c) @ W (3c, 2 c_out), and the even / odd outputs interleave by a
  free reshape.

PyTorch's own CPU kernels for these small channel counts run far below the machine's matrix
multiply rate; as plain matmuls the latent search and encoder scoring run near it. The
weights keep PyTorch's Conv1d / ConvTranspose1d layout and initialisation, and the tests
check both layers against ``torch.nn.functional.conv1d`` / ``conv_transpose1d``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganad.nets.blocks import FeatureDiscriminator, maybe_sn, out_activation


class _MatmulConv(nn.Module):
    """Shared part: the matmul form of the weight, cached while the weight needs no gradient
    (frozen generator in the latent search, scoring under inference_mode)."""

    def _mm_weight(self) -> torch.Tensor:
        w = self.weight
        if w.requires_grad and torch.is_grad_enabled():
            return self._build(w)
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if getattr(self, "_cache_key", None) != key:
            with torch.no_grad():
                self._cache = self._build(w.detach()).contiguous()
            self._cache_key = key
        return self._cache

    def _build(self, w):
        raise NotImplementedError


class Down1d(_MatmulConv):
    """Conv1d(c_in, c_out, 4, stride=2, padding=1) on channels-last input (n, l, c_in) -> (n, ceil(l/2), c_out)."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True):
        super().__init__()
        ref = nn.Conv1d(c_in, c_out, 4, 2, 1, bias=bias)
        self.weight = ref.weight  # (c_out, c_in, 4)
        self.bias = ref.bias

    def _build(self, w):
        return w.permute(2, 1, 0).reshape(4 * w.shape[1], -1)  # (4c, c_out), tap-major

    def forward(self, x):
        n, l, c = x.shape
        extra = l % 2  # odd length: one more zero on the right, as Conv1d's floor((l+2-4)/2)+1 needs
        xp = nn.functional.pad(x, (0, 0, 1, 1 + extra))  # (n, l+2(+1), c)
        pairs = xp.reshape(n, (l + 2 + extra) // 2, 2 * c)
        s = torch.cat([pairs[:, :-1], pairs[:, 1:]], dim=2)  # (n, l_out, 4c): taps 0,1,2,3
        out = s @ self._mm_weight()
        if extra:  # the extra right zero gave one output too many
            out = out[:, : (l - 2) // 2 + 1]
        return out + self.bias if self.bias is not None else out


class Up1d(_MatmulConv):
    """ConvTranspose1d(c_in, c_out, 4, stride=2, padding=1) on channels-last input (n, l, c_in) -> (n, 2l, c_out)."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True):
        super().__init__()
        ref = nn.ConvTranspose1d(c_in, c_out, 4, 2, 1, bias=bias)
        self.weight = ref.weight  # (c_in, c_out, 4)
        self.bias = ref.bias

    def _build(self, w):
        zero = torch.zeros_like(w[:, :, 0])
        # out[2j] = W3 x[j-1] + W1 x[j];  out[2j+1] = W2 x[j] + W0 x[j+1]
        w_even = torch.cat([w[:, :, 3], w[:, :, 1], zero], dim=0)  # (3c, c_out)
        w_odd = torch.cat([zero, w[:, :, 2], w[:, :, 0]], dim=0)
        return torch.cat([w_even, w_odd], dim=1)  # (3c, 2 c_out)

    def forward(self, x):
        n, l, c = x.shape
        xp = nn.functional.pad(x, (0, 0, 1, 1))
        s = torch.cat([xp[:, :-2], xp[:, 1:-1], xp[:, 2:]], dim=2)  # x[j-1], x[j], x[j+1]
        out = (s @ self._mm_weight()).reshape(n, 2 * l, -1)
        return out + self.bias if self.bias is not None else out


class ChannelNorm(nn.Module):
    """BatchNorm over the channels of channels-last (n, l, c) activations."""

    def __init__(self, c: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(c)

    def forward(self, x):
        n, l, c = x.shape
        return self.bn(x.reshape(n * l, c)).reshape(n, l, c)


def channel_plan(width: int, depth: int, cap: int | None = None) -> list[int]:
    """Channels after each downsampling stage: width, 2 width, 4 width, ... capped at ``cap``."""
    cap = cap or width * 4
    return [min(width * 2 ** i, cap) for i in range(depth)]


class Conv1dGenerator(nn.Module):
    def __init__(self, latent_dim: int, data_shape, width: int = 8, depth: int = 4, out_act: str = "linear"):
        super().__init__()
        self.channels, self.length = data_shape
        self.base = max(1, math.ceil(self.length / 2 ** depth))
        plan = channel_plan(width, depth)[::-1]  # widest first
        self.c0 = plan[0]
        self.fc = nn.Sequential(nn.Linear(latent_dim, self.c0 * self.base), nn.BatchNorm1d(self.c0 * self.base), nn.ReLU())
        layers: list[nn.Module] = []
        for c_in, c_out in zip(plan[:-1], plan[1:]):
            layers += [Up1d(c_in, c_out, bias=False), ChannelNorm(c_out), nn.ReLU()]
        layers += [Up1d(plan[-1], self.channels), out_activation(out_act)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        h = self.fc(z).reshape(z.shape[0], self.base, self.c0)
        out = self.net(h)[:, : self.length]  # (n, l, c)
        return out.transpose(1, 2)


class _ToChannelsLast(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)


def _down_stack(channels, width, depth, spectral_norm, norm):
    plan = channel_plan(width, depth)
    blocks: list[nn.Module] = []
    c_in = channels
    for i, c_out in enumerate(plan):
        layers: list[nn.Module] = [_ToChannelsLast()] if i == 0 else []
        layers.append(maybe_sn(Down1d(c_in, c_out), spectral_norm))
        if norm and i > 0:
            layers.append(ChannelNorm(c_out))
        layers.append(nn.LeakyReLU(0.2))
        blocks.append(nn.Sequential(*layers))
        c_in = c_out
    return blocks


def _out_len(length, depth):
    for _ in range(depth):
        length = (length + 2 - 4) // 2 + 1
    return length


def conv1d_discriminator(data_shape, width: int = 8, depth: int = 4, spectral_norm: bool = False,
                         feature_layer: int = -1) -> FeatureDiscriminator:
    channels, length = data_shape
    blocks = _down_stack(channels, width, depth, spectral_norm, norm=False)
    n_flat = _out_len(length, depth) * channel_plan(width, depth)[-1]
    head = nn.Sequential(nn.Flatten(), maybe_sn(nn.Linear(n_flat, 1), spectral_norm))
    return FeatureDiscriminator(blocks, head, feature_layer)


class Conv1dEncoder(nn.Module):
    def __init__(self, data_shape, out_dim: int, width: int = 8, depth: int = 4):
        super().__init__()
        channels, length = data_shape
        blocks = _down_stack(channels, width, depth, False, norm=True)
        n_flat = _out_len(length, depth) * channel_plan(width, depth)[-1]
        self.net = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(n_flat, out_dim))

    def forward(self, x):
        return self.net(x)
