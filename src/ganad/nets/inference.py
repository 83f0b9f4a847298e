"""Frozen inference copies of trained networks for the hot paths (latent search, scoring).

``frozen_copy`` returns a deep copy in eval mode with gradients off and every BatchNorm that
directly follows a linear layer folded into that layer's weights, so that the latent search's
thousands of forward/backward passes skip the normalisation entirely. The copy computes the
same function as the eval-mode original (checked by the tests).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ganad.nets.conv1d import ChannelNorm, Down1d, Up1d


def _bn_affine(bn: nn.BatchNorm1d):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * scale
    return scale, shift


@torch.no_grad()
def _fold_into(layer: nn.Module, bn: nn.BatchNorm1d) -> bool:
    if not bn.track_running_stats or bn.running_mean is None:
        return False
    scale, shift = _bn_affine(bn)
    if isinstance(layer, nn.Linear):
        layer.weight.mul_(scale[:, None])
        out_dim = layer.weight.shape[0]
    elif isinstance(layer, Up1d):  # weight (c_in, c_out, 4)
        layer.weight.mul_(scale[None, :, None])
        out_dim = layer.weight.shape[1]
    elif isinstance(layer, Down1d):  # weight (c_out, c_in, 4)
        layer.weight.mul_(scale[:, None, None])
        out_dim = layer.weight.shape[0]
    else:
        return False
    bias = layer.bias if layer.bias is not None else torch.zeros(out_dim, device=scale.device)
    new_bias = bias * scale + shift
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias)
    else:
        layer.bias.copy_(new_bias)
    return True


def _fold_sequential(seq: nn.Sequential) -> None:
    mods = list(seq._modules.items())
    for (k_prev, prev), (k, mod) in zip(mods[:-1], mods[1:]):
        bn = mod.bn if isinstance(mod, ChannelNorm) else mod
        if isinstance(bn, nn.BatchNorm1d) and _fold_into(prev, bn):
            seq._modules[k] = nn.Identity()
    # fuse a (Re|LeakyRe)LU that follows a matmul convolution into it (with Identity gaps from folding)
    mods = list(seq._modules.items())
    for i, (k, mod) in enumerate(mods):
        if isinstance(mod, (Up1d, Down1d)) and mod.fused_slope is None:
            j = i + 1
            while j < len(mods) and isinstance(mods[j][1], nn.Identity):
                j += 1
            if j < len(mods) and isinstance(mods[j][1], (nn.ReLU, nn.LeakyReLU)):
                act = mods[j][1]
                mod.fused_slope = 0.0 if isinstance(act, nn.ReLU) else float(act.negative_slope)
                seq._modules[mods[j][0]] = nn.Identity()


def bake_parametrizations(module: nn.Module) -> nn.Module:
    """Replace every parametrised weight (spectral norm) by its current value, in place.
    In eval mode spectral norm does no power iteration, so the function is unchanged."""
    from torch.nn.utils import parametrize

    for sub in module.modules():
        if parametrize.is_parametrized(sub):
            # removal deletes the weight's property from the module's class, which a deep copy
            # shares with the original: give this module a class of its own first, so the
            # original keeps its parametrised weight (ALAD's nets_['Dzz'].head.weight)
            cls = type(sub)
            sub.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            for pname in list(sub.parametrizations.keys()):
                parametrize.remove_parametrizations(sub, pname, leave_parametrized=True)
    return module


def frozen_copy(module: nn.Module) -> nn.Module:
    """Eval-mode, gradient-free copy of ``module`` with spectral norm baked into plain weights
    and BatchNorm folded where possible. Built outside inference mode, so that its tensors are
    ordinary tensors (usable by the latent search's autograd and the matmul-weight cache)."""
    with torch.inference_mode(False):
        m = bake_parametrizations(copy.deepcopy(module).eval())
        return _fold_all(m)


def _fold_all(m: nn.Module) -> nn.Module:
    for sub in list(m.modules()):
        if isinstance(sub, nn.Sequential):
            _fold_sequential(sub)
    for p in m.parameters():
        p.requires_grad_(False)
    return m
