"""Recurrent (LSTM) family for series windows (n, c, l), after the recurrent-GAN literature
(Esteban et al. 2017 RGAN; Li et al. 2019 MAD-GAN): the generator reads the latent code at
every time step, the discriminator reads the series and pools its hidden states."""

from __future__ import annotations

import torch
from torch import nn

from ganad.nets.blocks import FeatureDiscriminator, maybe_sn, out_activation


class LSTMGenerator(nn.Module):
    def __init__(self, latent_dim: int, data_shape, width: int = 64, depth: int = 1, out_act: str = "linear"):
        super().__init__()
        self.channels, self.length = data_shape
        self.inp = nn.Linear(latent_dim, width)
        self.lstm = nn.LSTM(width, width, num_layers=depth, batch_first=True)
        self.pos = nn.Parameter(torch.randn(1, self.length, width) * 0.1)
        self.out = nn.Sequential(nn.Linear(width, self.channels), out_activation(out_act))

    def forward(self, z):
        h = self.inp(z).unsqueeze(1) + self.pos  # (n, l, width): code at every step + learned position
        y, _ = self.lstm(h)
        return self.out(y).transpose(1, 2)  # (n, c, l)


class _LSTMBlock(nn.Module):
    def __init__(self, channels: int, width: int, depth: int):
        super().__init__()
        self.lstm = nn.LSTM(channels, width, num_layers=depth, batch_first=True)

    def forward(self, x):
        y, _ = self.lstm(x.transpose(1, 2))
        return torch.cat([y.mean(1), y[:, -1]], dim=1)


def lstm_discriminator(data_shape, width: int = 64, depth: int = 1, spectral_norm: bool = False,
                       feature_layer: int = -1) -> FeatureDiscriminator:
    blocks = [_LSTMBlock(data_shape[0], width, depth),
              nn.Sequential(maybe_sn(nn.Linear(2 * width, width), spectral_norm), nn.LeakyReLU(0.2))]
    return FeatureDiscriminator(blocks, maybe_sn(nn.Linear(width, 1), spectral_norm), feature_layer)


class LSTMEncoder(nn.Module):
    def __init__(self, data_shape, out_dim: int, width: int = 64, depth: int = 1):
        super().__init__()
        self.block = _LSTMBlock(data_shape[0], width, depth)
        self.fc = nn.Linear(2 * width, out_dim)

    def forward(self, x):
        return self.fc(self.block(x))
