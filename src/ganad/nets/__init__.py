"""Generator / discriminator / encoder families per data shape, and the factory that picks one."""

from __future__ import annotations

from torch import nn

from ganad.nets.blocks import FeatureDiscriminator
from ganad.nets.conv import ConvEncoder, ConvGenerator, conv_discriminator
from ganad.nets.conv1d import Conv1dEncoder, Conv1dGenerator, conv1d_discriminator
from ganad.nets.mlp import MLPEncoder, MLPGenerator, mlp_discriminator
from ganad.nets.recurrent import LSTMEncoder, LSTMGenerator, lstm_discriminator

#: network family per number of data dimensions (excluding the sample axis)
AUTO_FAMILY = {1: "mlp", 2: "conv1d", 3: "dcgan"}
FAMILIES = ("mlp", "conv1d", "lstm", "dcgan")
_ALLOWED = {"mlp": (1, 2, 3), "conv1d": (2,), "lstm": (2,), "dcgan": (3,)}


def resolve_family(net: str, data_shape: tuple[int, ...]) -> str:
    """Pick the family for ``data_shape`` (one sample's shape) or check the user's choice fits it."""
    if net == "auto":
        return AUTO_FAMILY[len(data_shape)]
    if net not in FAMILIES:
        raise ValueError(f"net: unknown family {net!r}. Fix: use 'auto' or one of {', '.join(FAMILIES)}")
    if len(data_shape) not in _ALLOWED[net]:
        raise ValueError(f"net: family {net!r} does not fit samples of shape {tuple(data_shape)}. "
                         f"Fix: use 'auto', or {'conv1d/lstm for (channels, length) series' if net != 'conv1d' else 'mlp for vectors, dcgan for images'}")
    return net


def default_width(family: str) -> int:
    """Channels of the first stage (units for mlp / lstm) when ``width=None``.

    conv1d: 4 (channels 4, 8, 16, 16 over four stages for 256-sample beats), chosen on MIT-BIH
    DS1 only (``benchmarks/bench_width.py``: train on N beats of 15 DS1 records, AUROC on the
    labelled beats of 7 other DS1 records, patient-wise; DS2 never read): mean AUROC over
    f-AnoGAN, GANomaly and β-VAEGAN and two seeds 0.805 at width 4 vs 0.788 at width 8, with the
    seeds disagreeing, so the cheaper width stays (a quarter of the arithmetic, which is what the
    latent search and encoder scoring spend their time on). Raise it for long or many-channel
    windows.

    dcgan: 8 (channels 8, 16, ... per stage; 16 and 32 for 28 × 28 images), chosen on the MNIST
    training split only (``benchmarks/bench_width.py --dataset mnist``, eighteenth session: per
    digit, 80 % of its training images train, the other 20 % and 2,000 other digits' training
    images are scored; the test split never read), by the same rule (the cheapest width unless a
    wider one is better by 0.01): mean AUROC over GANomaly and f-AnoGAN, 10 digits and two seeds
    0.957 at width 8, 0.955 at 16, 0.949 at 32 (the default until then), with a sixteenth of the
    arithmetic of width 32: `fit` 4.3× faster. Only gray 28 × 28 digits chose it: raise it for
    large or colour images, where the extra capacity may pay.
    """
    return {"mlp": 128, "conv1d": 4, "lstm": 64, "dcgan": 8}[family]


#: the default widths of model files written before files recorded the width their networks were built
#: with (format 1 files without ``state.width``): loading one with ``width=None`` builds these
LEGACY_DEFAULT_WIDTH = {"mlp": 128, "conv1d": 4, "lstm": 64, "dcgan": 32}
#: every default width a family had while files did not record it, newest first: conv1d networks were
#: built 8 wide until 23 Nov 2026 15:12 (6949412), 4 wide after; a file of either time reads width None,
#: and ganad.io.load_model takes the width whose networks have the shapes its weights file holds
LEGACY_DEFAULT_WIDTHS = {"mlp": (128,), "conv1d": (4, 8), "lstm": (64,), "dcgan": (32,)}


def default_depth(family: str, data_shape) -> int:
    if family == "mlp":
        return 2
    if family == "lstm":
        return 1
    smallest = min(data_shape[1:])
    # halve the smallest side until about 4-8 remain, between 1 and 4 stages
    depth = 1
    while depth < 4 and smallest / 2 ** (depth + 1) >= 4:
        depth += 1
    return depth


def build_generator(family, latent_dim, data_shape, width, depth, out_act="linear") -> nn.Module:
    if family == "mlp":
        return MLPGenerator(latent_dim, data_shape, width, depth, out_act)
    if family == "lstm":
        return LSTMGenerator(latent_dim, data_shape, width, depth, out_act)
    if family == "conv1d":
        return Conv1dGenerator(latent_dim, data_shape, width, depth, out_act)
    return ConvGenerator(latent_dim, data_shape, width, depth, out_act)


def build_discriminator(family, data_shape, width, depth, spectral_norm=False, feature_layer=-1) -> FeatureDiscriminator:
    if family == "mlp":
        return mlp_discriminator(data_shape, width, depth, spectral_norm, feature_layer)
    if family == "lstm":
        return lstm_discriminator(data_shape, width, depth, spectral_norm, feature_layer)
    if family == "conv1d":
        return conv1d_discriminator(data_shape, width, depth, spectral_norm, feature_layer)
    return conv_discriminator(data_shape, width, depth, spectral_norm, feature_layer)


def build_encoder(family, data_shape, out_dim, width, depth) -> nn.Module:
    if family == "mlp":
        return MLPEncoder(data_shape, out_dim, width, depth)
    if family == "lstm":
        return LSTMEncoder(data_shape, out_dim, width, depth)
    if family == "conv1d":
        return Conv1dEncoder(data_shape, out_dim, width, depth)
    return ConvEncoder(data_shape, out_dim, width, depth)


__all__ = [
    "FAMILIES", "FeatureDiscriminator", "build_discriminator", "build_encoder", "build_generator",
    "LEGACY_DEFAULT_WIDTH", "LEGACY_DEFAULT_WIDTHS", "default_depth", "default_width", "resolve_family",
]
