"""1-D convolutional family for series windows (n, channels, length), built for CPU speed.

The layers are the usual stride-2 convolution / transposed convolution with kernel 4 and
padding 1 (DCGAN's choice), computed channels-last as *one matrix multiply each* plus
shifted in-place adds, with hand-written backward passes (``_DownFn``, ``_UpFn``):

* ``Down1d`` (Conv1d k=4 s=2 p=1): the padded input viewed as pairs of time steps P;
  output j = P[j] U + P[j+1] V;
* ``Up1d`` (ConvTranspose1d k=4 s=2 p=1), polyphase: output j (an even and an odd step side
  by side) = x[j-1] A + x[j] B + x[j+1] C, and the even / odd outputs interleave by a free
  reshape.

PyTorch's own CPU kernels for these small channel counts run far below the machine's matrix
multiply rate; as plain matmuls the latent search and encoder scoring run near it. The
weights keep PyTorch's Conv1d / ConvTranspose1d layout and initialisation, and the tests
check both layers against ``torch.nn.functional.conv1d`` / ``conv_transpose1d``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from ganad.nets.blocks import FeatureDiscriminator, maybe_sn, out_activation, update_running_stats
from ganad.runtime import layout, native


def _bias_act_(y, bias, slope):
    """In place: y += bias, then ReLU (slope 0) or LeakyReLU (slope > 0) when slope is not None."""
    if bias is not None:
        y += bias
    if slope is not None:
        if slope == 0.0:
            y.relu_()
        else:
            torch.nn.functional.leaky_relu_(y, slope)
    return y


def _act_grad(g, y, slope):
    """Gradient through the fused activation, from its output y (same sign as its input)."""
    if slope is None:
        return g
    if slope == 0.0:  # one fused kernel each (not a compare plus a multiply)
        return torch.ops.aten.threshold_backward(g, y, 0.0)
    return torch.ops.aten.leaky_relu_backward(g, y, slope, True)


def _act_grad_into(dst, g, y, slope):
    """:func:`_act_grad` written into ``dst`` (a view of a padded buffer), without a temporary.
    Out-variants are not differentiable: under ``create_graph`` the plain form is copied in."""
    if torch.is_grad_enabled():
        dst.copy_(_act_grad(g, y, slope))
    elif slope is None:
        dst.copy_(g)
    elif slope == 0.0:
        torch.ops.aten.threshold_backward.grad_input(g, y, 0.0, grad_input=dst)
    else:
        torch.ops.aten.leaky_relu_backward.grad_input(g, y, slope, True, grad_input=dst)


def _pad_steps(x: torch.Tensor, right: int) -> torch.Tensor:
    """x (n, l, c) with one zero step on the left and ``right`` on the right: only the border is
    zeroed (``F.pad`` fills the whole output, then copies the input over it). Not for tracing / ONNX
    export (a traced ``new_empty`` would fix the batch size): the layers export through
    :func:`_down_functional` and :func:`_up_functional`, which use ``F.pad``."""
    n, l, c = x.shape
    xp = x.new_empty(n, l + 1 + right, c)
    xp[:, 0].zero_()
    xp[:, l + 1:].zero_()
    xp[:, 1:l + 1] = x
    return xp


class _UpFn(torch.autograd.Function):
    """Polyphase ConvTranspose1d(k=4, s=2, p=1), channels-last, with a hand-written backward.

    ``w`` = [W3 | W1 | W2 | W0] (c, 4 c_out), the kernel taps side by side. The even output
    2j is x[j-1] W3 + x[j] W1, the odd output 2j+1 is x[j] W2 + x[j+1] W0: one matrix
    multiply and two shifted in-place adds. The backward pass is the matching stride-2
    convolution of the output gradient, again one matrix multiply and one shifted add.
    """

    @staticmethod
    def forward(ctx, x, w, bias=None, slope=None):
        n, l, c = x.shape
        co = w.shape[1] // 4
        y = native.up_forward(x, w, bias, slope)  # the stack kernels where they run, else the matmul form
        if y is None:
            q = native.mm(x.reshape(n * l, c), w).reshape(n, l, 4, co)
            y = q[:, :, 1:3].clone()  # (n, l, 2, co): [even | odd] of every input step
            y[:, 1:, 0] += q[:, :-1, 0]
            y[:, :-1, 1] += q[:, 1:, 3]
            y = y.reshape(n, 2 * l, co)
            y = _bias_act_(y, bias, slope)
        ctx.slope = slope
        ctx.save_for_backward(x, w, y if slope is not None else None)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w, y = ctx.saved_tensors
        n, l, c = x.shape
        co = w.shape[1] // 4
        gx = gw = gb = None
        # the output gradient padded to l + 2 pairs of steps per sample, [0, gy_0 .. gy_2l-1, 0, 0, 0]:
        # pair p is P[p] = (gy[2p-1], gy[2p]) = (odd output p-1, even output p), and the rows of all
        # samples form one matrix Pf whose products with x need no copies (see below)
        gyp = gy.new_empty(n, 2 * l + 4, co)
        gyp[:, 0].zero_()
        gyp[:, 2 * l + 1:].zero_()
        _act_grad_into(gyp[:, 1:2 * l + 1], gy, y, ctx.slope)
        pf = gyp.reshape(n * (l + 2), 2 * co)
        if ctx.needs_input_grad[0]:
            # gx[j] = gy[2j-1] W0' + gy[2j] W1' + gy[2j+1] W2' + gy[2j+2] W3' (' = transpose)
            #       = P[j] U + P[j+1] V
            uv = layout.up_input_grad_pairs(w)  # [U | V]
            q = native.mm(pf, uv).reshape(n, l + 2, 2, c)
            gx = q[:, :l, 0] + q[:, 1:l + 1, 1]
        if ctx.needs_input_grad[1]:
            # x padded to l + 2 rows [0, x_0 .. x_l-1, 0], as one matrix xf: row r of a sample is
            # x[r-1], so xf' Pf pairs x[p-1] with P[p] = (odd p-1, even p): [W2 | W3]; shifted by one
            # row, xf[1:]' Pf[:-1] pairs x[p] with P[p]: [W0 | W1] (across samples a zero row of xf
            # meets the padded last pair of the sample before, a zero row of Pf)
            xf = _pad_steps(x, 1).reshape(n * (l + 2), c)
            a = native.mm_tn(xf, pf)  # xf' pf
            b = native.mm_tn(xf[1:], pf[:-1])
            gw = torch.cat([a[:, co:], b[:, co:], a[:, :co], b[:, :co]], dim=1)  # [W3 | W1 | W2 | W0]
        if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
            gb = pf.sum(0).reshape(2, co).sum(0)
        return gx, gw, gb, None


def _act_module(x, slope):
    if slope is None:
        return x
    return torch.relu(x) if slope == 0.0 else nn.functional.leaky_relu(x, slope)


def _up_functional(x, w):
    """The same computation as :class:`_UpFn` without in-place updates (for tracing / ONNX export)."""
    n, l, c = x.shape
    co = w.shape[1] // 4
    q = (x @ w).reshape(n, l, 4, co)
    even = q[:, :, 1] + nn.functional.pad(q[:, :-1, 0], (0, 0, 1, 0))
    odd = q[:, :, 2] + nn.functional.pad(q[:, 1:, 3], (0, 0, 0, 1))
    return torch.stack([even, odd], dim=2).reshape(n, 2 * l, co)


def _down_functional(x, w):
    """The same computation as :class:`_DownFn` in plain differentiable operations (for tracing /
    ONNX export, which would misread the function's second output), without bias or activation."""
    l = x.shape[1]
    xp = nn.functional.pad(x, (0, 0, 1, 1 + l % 2))
    n, L, c = xp.shape
    q = (xp.reshape(n, L // 2, 2 * c) @ layout.taps_to_pairs(w)).reshape(n, L // 2, 2, w.shape[1])
    return q[:, :-1, 0] + q[:, 1:, 1]


class _DownFn(torch.autograd.Function):
    """Conv1d(k=4, s=2, p=1) on channels-last input x (n, l, c), padded inside to the even length
    2m = l + 2 + (l mod 2) (one zero step left, one or two right).

    The padded input viewed as m pairs of time steps P (n, m, 2c); with W = [U; V] (4c, c_out)
    output row j is P[j] U + P[j+1] V: one matrix multiply by [U | V] and one shifted add.

    Returns (out, xp): the padded input is a second output (callers drop it) so that the copy saved
    for the weight gradient stays connected to x in the graph; a double backward (create_graph)
    that differentiates the weight gradient then reaches x, as with ``F.pad`` outside the function.
    Its gradient arrives only in that case (``None`` otherwise: no zero-filled buffer).
    """

    @staticmethod
    def forward(ctx, x, w, bias=None, slope=None):
        l = x.shape[1]
        xp = _pad_steps(x, 1 + l % 2)
        ctx.l = l
        n, L, c = xp.shape
        m = L // 2
        co = w.shape[1]
        # the stack kernels where they run (even lengths: an odd one keeps its extra output row,
        # which the caller slices off and the backward expects), else the matmul form
        out = native.down_forward(x, w, bias, slope) if l % 2 == 0 else None
        if out is None:
            p = xp.reshape(n, m, 2 * c)
            wcols = layout.taps_to_pairs(w)  # [U | V]
            q = native.mm(p.reshape(n * m, 2 * c), wcols).reshape(n, m, 2, co)
            out = _bias_act_(q[:, :-1, 0] + q[:, 1:, 1], bias, slope)
        ctx.slope = slope
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(xp, w, out if slope is not None else None)
        return out, xp

    @staticmethod
    def backward(ctx, go, g_xp):
        xp, w, out = ctx.saved_tensors
        n, L, c = xp.shape
        m = L // 2
        gxp = gw = gb = None
        if go is not None:
            co = go.shape[-1]
            # the output gradient with a zero last row per sample (n, m, co), its rows one matrix gf:
            # pairs of input steps P[j] (rows of pf) meet output j, and shifted by one row output j-1,
            # with the zero row where a shift crosses from one sample to the next
            gop = go.new_empty(n, m, co)
            gop[:, -1].zero_()
            _act_grad_into(gop[:, :-1], go, out, ctx.slope)
            gf = gop.reshape(n * m, co)
            if ctx.needs_input_grad[0]:
                r = native.mm(gf, w.t()).reshape(n * m, 4 * c)  # [grad of P[j] via U | grad of P[j+1] via V]
                gp = xp.new_empty(n * m, 2 * c)  # grad of P[j] = r[j] via U + r[j-1] via V
                gp[0] = r[0, :2 * c]
                if torch.is_grad_enabled():  # double backward: differentiable operations only
                    gp[1:] = r[1:, :2 * c] + r[:-1, 2 * c:]
                else:
                    torch.add(r[1:, :2 * c], r[:-1, 2 * c:], out=gp[1:])
                gxp = gp.reshape(n, L, c)[:, 1:ctx.l + 1]  # the padding's gradient dropped
            if ctx.needs_input_grad[1]:
                pf = xp.reshape(n * m, 2 * c)
                gw = torch.cat([native.mm_tn(pf, gf), native.mm_tn(pf[1:], gf[:-1])])  # [U; V] = [pf' gf; ...]
            if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
                gb = gf.sum(0)
        if g_xp is not None and ctx.needs_input_grad[0]:  # double backward only: through the saved xp
            g = g_xp[:, 1:ctx.l + 1]
            gxp = g if gxp is None else gxp + g
        return gxp, gw, gb, None


class _MatmulConv(nn.Module):
    """Shared part: the matmul form of the weight, cached while the weight needs no gradient
    (frozen generator in the latent search, scoring under inference_mode)."""

    def _mm_weight(self) -> torch.Tensor:
        w = self.weight
        if (w.requires_grad and torch.is_grad_enabled()) or parametrize.is_parametrized(self, "weight"):
            # a parametrized weight (spectral norm) is a new tensor at every access, computed from the
            # original and the parametrization's state: its address (a freed one's comes back) and
            # version say nothing about its values, so it is never cached (inference copies bake it)
            return self._build(w)
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if getattr(self, "_cache_key", None) != key:
            # an ordinary tensor even when first built under inference_mode (encoder scoring), so a
            # later latent search on the same network can use it in autograd
            with torch.inference_mode(False), torch.no_grad():
                self._cache = self._build(w.detach()).contiguous()
            self._cache_key = key
        return self._cache

    def _build(self, w):
        raise NotImplementedError


class Down1d(_MatmulConv):
    """Conv1d(c_in, c_out, 4, stride=2, padding=1) on channels-last input (n, l, c_in) -> (n, floor(l/2), c_out)."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True):
        super().__init__()
        ref = nn.Conv1d(c_in, c_out, 4, 2, 1, bias=bias)
        self.weight = ref.weight  # (c_out, c_in, 4)
        self.bias = ref.bias

    def _build(self, w):
        return layout.down_taps(w)  # (4c, c_out), tap-major

    fused_slope: float | None = None  # activation fused in by ganad.nets.inference.frozen_copy

    def forward(self, x):
        l = x.shape[1]
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            out = _down_functional(x, self._mm_weight())[:, : (l - 2) // 2 + 1]
            out = out + self.bias if self.bias is not None else out
            return _act_module(out, self.fused_slope)
        if l % 2:  # odd length: one more zero on the right to pair up the steps, which gives one
            # output too many: apply bias / activation after slicing
            out = _DownFn.apply(x, self._mm_weight())[0][:, : (l - 2) // 2 + 1]
            out = out + self.bias if self.bias is not None else out
            return _act_module(out, self.fused_slope)
        return _DownFn.apply(x, self._mm_weight(), self.bias, self.fused_slope)[0]


class Up1d(_MatmulConv):
    """ConvTranspose1d(c_in, c_out, 4, stride=2, padding=1) on channels-last input (n, l, c_in) -> (n, 2l, c_out)."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True):
        super().__init__()
        ref = nn.ConvTranspose1d(c_in, c_out, 4, 2, 1, bias=bias)
        self.weight = ref.weight  # (c_in, c_out, 4)
        self.bias = ref.bias

    def _build(self, w):
        # out[2j] = x[j-1] W3 + x[j] W1;  out[2j+1] = x[j] W2 + x[j+1] W0
        return layout.up_taps(w)  # (c, 4 c_out)

    fused_slope: float | None = None  # activation fused in by ganad.nets.inference.frozen_copy

    def forward(self, x):
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            out = _up_functional(x, self._mm_weight())  # exporters cannot follow in-place slice updates
            out = out + self.bias if self.bias is not None else out
            return _act_module(out, self.fused_slope)
        return _UpFn.apply(x.contiguous(), self._mm_weight(), self.bias, self.fused_slope)


class _FewChannelBatchNorm(torch.autograd.Function):
    """Training-mode BatchNorm of rows x (N, C) with few channels C, computed on the rows folded
    to (N / k, k C) so that every reduction and element-wise pass runs over ~64 contiguous
    floats: PyTorch's CPU kernel reduces each of the C strided channels on its own, which for
    C = 4 or 8 takes 2.5-5x as long for the forward and backward together (benchmarks/RESULTS.md,
    issue 15). Two-pass statistics (the mean, then the mean square of x - mean), so no
    cancellation in float32. Returns y, the batch mean and the biased batch variance."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps, k):
        rows, c = x.shape
        xf = x.reshape(rows // k, k * c)
        mean = xf.sum(0).reshape(k, c).sum(0) / rows
        xhat = xf - mean.repeat(k)
        var = (xhat * xhat).sum(0).reshape(k, c).sum(0) / rows
        invstd = torch.rsqrt(var + eps)
        xhat.mul_(invstd.repeat(k))
        y = torch.addcmul(beta.repeat(k), xhat, gamma.repeat(k)).reshape(rows, c)
        ctx.save_for_backward(xhat, invstd, gamma)
        ctx.k = k
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy, _gmean, _gvar):
        xhat, invstd, gamma = ctx.saved_tensors
        k, c = ctx.k, gamma.shape[0]
        gf = gy.contiguous().reshape(xhat.shape)
        rows = gf.numel() // c
        sg = gf.sum(0).reshape(k, c).sum(0)  # the bias gradient
        sgx = (gf * xhat).sum(0).reshape(k, c).sum(0)  # the scale gradient
        a = gamma * invstd
        gx = torch.addcmul((-a * sg / rows).repeat(k), gf, a.repeat(k))
        gx.addcmul_(xhat, (-a * sgx / rows).repeat(k))
        return gx.reshape(rows, c), sgx, sg, None, None


def _fold(rows: int, c: int) -> int:
    """The largest power of two k dividing ``rows`` with k c <= 64."""
    k = 1
    while c * k * 2 <= 64 and rows % (k * 2) == 0:
        k *= 2
    return k


def _folded_applies(bn: nn.BatchNorm1d, x: torch.Tensor, rows: int, c: int) -> bool:
    """Whether ``bn`` may run as :class:`_FewChannelBatchNorm`: a plain, affine, tracking
    BatchNorm1d in training mode on the CPU, at most 8 channels over at least 32,768 values (where
    the folded kernel was measured faster), no hooks (its own or global ones, forward or backward),
    and its forward not replaced (DDP)."""
    return (bn.training and c <= 8 and rows * c >= 32768 and x.device.type == "cpu" and type(bn) is nn.BatchNorm1d
            and "forward" not in bn.__dict__ and bn.affine and bn.track_running_stats
            and not _has_hooks(bn))


def _has_hooks(m: nn.Module) -> bool:
    """Whether calling ``m`` would run any hook: its own forward / backward (pre-)hooks or the global
    module hooks (``torch.nn.modules.module.register_module_*``), the test of ``Module.__call__``'s
    fast path. A full backward hook fires only when the module itself is called."""
    g = torch.nn.modules.module
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
                or getattr(g, "_global_forward_hooks", None) or getattr(g, "_global_forward_pre_hooks", None)
                or getattr(g, "_global_backward_hooks", None) or getattr(g, "_global_backward_pre_hooks", None))


class ChannelNorm(nn.Module):
    """BatchNorm over the channels of channels-last (n, l, c) activations.

    In training mode on the CPU, layers of at most 8 channels over at least 32,768 values take a folded
    kernel (:class:`_FewChannelBatchNorm`, the same statistics and running-average update as
    ``nn.BatchNorm1d``); the rest, and evaluation, use ``nn.BatchNorm1d`` itself. A BatchNorm
    whose forward was replaced (global-batch statistics under DDP) is always called as it is."""

    def __init__(self, c: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(c)

    def forward(self, x):
        n, l, c = x.shape
        bn = self.bn
        rows = n * l
        if _folded_applies(bn, x, rows, c):
            k = _fold(rows, c)
            y, mean, var = _FewChannelBatchNorm.apply(x.contiguous().reshape(rows, c), bn.weight, bn.bias, bn.eps, k)
            update_running_stats(bn, mean, var * (rows / (rows - 1)))
            return y.reshape(n, l, c)
        return bn(x.reshape(rows, c)).reshape(n, l, c)


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
    D = FeatureDiscriminator(blocks, head, feature_layer)
    D.data_shape = (int(channels), int(length))  # for the CPU runners of frozen copies (ganad.runtime)
    return D


class Conv1dEncoder(nn.Module):
    def __init__(self, data_shape, out_dim: int, width: int = 8, depth: int = 4):
        super().__init__()
        channels, length = data_shape
        self.data_shape = (int(channels), int(length))
        blocks = _down_stack(channels, width, depth, False, norm=True)
        n_flat = _out_len(length, depth) * channel_plan(width, depth)[-1]
        self.net = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(n_flat, out_dim))

    def forward(self, x):
        return self.net(x)
