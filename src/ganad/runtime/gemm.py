"""CPU fast path of the frozen 1-D convolutional networks: one GEMM program per network.

The latent search runs the generator forward and backward hundreds of times per sample, and
encoder scoring runs E, G and D once per sample on tens of thousands of samples, so both
are bound by how the small 1-D convolutions of :mod:`ganad.nets.conv1d` map onto the CPU.
Two things cost most in the module path: per-sample boundary handling (a padded copy of every
activation, shifted adds sample by sample) and matrix multiplies with 1-8 output columns,
which MKL runs at 4-20 GFLOP/s instead of 100-150 (see benchmarks/RESULTS.md).

The program here keeps every activation of the whole batch in one *flat padded* buffer,
rows = time steps, columns = channels, with ``P`` zero rows after each sample's ``l`` rows.
Because a zero row separates consecutive samples, the convolutions' shifts can run over the
whole buffer at once (a shift across a sample boundary reads zeros, exactly the layers'
zero padding). Each layer is then one matrix multiply plus two shifted adds over the batch.
A layer whose matrix multiply would have fewer than 16 output columns computes ``g``
consecutive outputs per row from a window of input rows instead (a banded weight, g chosen
so that the product has >= 16 columns): the window copy and the band's zero blocks cost less
than MKL's narrow kernels; where the rows do not split into whole bands it multiplies in
transposed form. Pad rows are re-zeroed after each layer. Model FLOPs are those of the
modules; the pad rows and the bands' zero blocks are
extra arithmetic the program spends to run faster (count the modules' FLOPs under
``ganad.runtime.use("eager")``).

The program is built from a *frozen* network (:func:`ganad.nets.inference.frozen_copy`:
BatchNorm folded, activations fused) by :func:`ganad.runtime.compile`, and runs only where no
autograd is needed (the runner falls back to the module elsewhere):

* ``GeneratorProgram``: ``forward(z)`` and, for the latent search, ``forward_saved`` +
  ``backward`` (the gradient with respect to z, written out layer by layer);
* ``DownProgram``: the encoder and discriminator stacks, returning the outputs the modules
  return (encoder output; discriminator logit and feature layer), in the same order.

The tests (tests/test_runtime.py) compare every program against its module within float32
round-off. Anything the program does not cover (other layouts, lengths not divisible by
2**depth, CUDA, tracing, gradients with respect to the weights) runs the module instead.
"""

from __future__ import annotations

import threading
import weakref

import torch
from torch import nn

from ganad.runtime import layout


#: matrix multiplies with fewer output columns than this run in banded or transposed form
MIN_COLS = 16

#: floats of the widest intermediate of one block of samples (4 MB: ~1000 beats of 256 samples at
#: width 4; larger batches fall out of cache and ran at half speed)
BLOCK_FLOATS = 1 << 20


def _block(per_sample: int) -> int:
    """Samples per block so that a layer's intermediate stays in cache (large batches run in blocks)."""
    return int(min(8192, max(64, BLOCK_FLOATS // max(1, per_sample) // 16 * 16)))


def _blocks(x: torch.Tensor, block: int):
    """``x`` split along the batch into equal parts of at most ``block`` samples."""
    parts = -(-x.shape[0] // block)
    return x.split(-(-x.shape[0] // parts)) if parts > 1 else (x,)


_TLS = threading.local()

#: reuse scratch buffers across layers' calls (off: every intermediate is a fresh allocation)
REUSE = True


def _scratch(owner, name: str, *shape: int) -> torch.Tensor:
    """A float32 scratch tensor of ``shape`` owned by ``owner`` (a layer or program) on this thread,
    reused from call to call: its contents are garbage, and it is overwritten by the owner's next
    call on this thread. Fresh multi-megabyte allocations are what made the programs slow: the
    allocator returns them to the operating system, so every call paid page faults and the
    kernel's zeroing of every page (half of a layer's time at 1000-sample blocks)."""
    need = 1
    for d in shape:
        need *= int(d)
    if not REUSE:
        return torch.empty(shape, dtype=torch.float32)
    cache = _TLS.__dict__.get("cache")
    if cache is None:
        cache = _TLS.cache = weakref.WeakKeyDictionary()
    mine = cache.get(owner)
    if mine is None:
        mine = cache[owner] = {}
    buf = mine.get(name)
    if buf is None or buf.numel() < need:
        with torch.inference_mode(False):  # a normal tensor: usable in and outside inference mode
            buf = mine[name] = torch.empty(need, dtype=torch.float32)
    return buf[:need].view(shape)


def _act_(y: torch.Tensor, slope):
    if slope is None:
        return y
    if slope == 0.0:
        return y.relu_()
    return nn.functional.leaky_relu_(y, slope)


def _wide_bias(b: torch.Tensor):
    """(k, b repeated k times) so that a bias add over rows of len(b) < 16 channels runs on
    rows of >= 16 (a short broadcast inner loop is slow)."""
    k = -(-MIN_COLS // b.numel()) if b.numel() < MIN_COLS else 1
    return k, b.repeat(k).contiguous()


def _add_bias_(y: torch.Tensor, wide) -> None:
    k, bk = wide
    if k > 1 and y.is_contiguous() and y.shape[0] % k == 0:
        y.view(-1, bk.numel()).add_(bk)
    else:
        y.add_(bk[: y.shape[1]])


class _Up:
    """ConvTranspose1d(k=4, s=2, p=1) on the flat padded layout (weights of an ``Up1d``)."""

    def __init__(self, mod):
        w = mod.weight.detach()  # (c, co, 4)
        self.c, self.co = int(w.shape[0]), int(w.shape[1])
        # even output of row r: A[r-1] W3 + A[r] W1; odd: A[r] W2 + A[r+1] W0 (transposed form)
        self.w4t = layout.up_taps(w).t().contiguous()  # (4co, c)
        self.w0123 = layout.up_taps_in_order(w).contiguous()
        b = mod.bias.detach() if mod.bias is not None else None
        self.b2 = torch.cat([b, b]).contiguous() if b is not None else None
        self.b2_wide = _wide_bias(self.b2) if b is not None else None
        self.slope = mod.fused_slope
        # the input gradient of this transposed convolution is the stride-2 convolution of the
        # output gradient with the same weight tensor (no bias, no activation)
        self.grad_conv = _Down(weight=w)
        self.rows_fwd = 4 * self.co >= MIN_COLS
        if not self.rows_fwd:  # banded weight: g input rows -> 2g outputs from a window of g + 2 rows
            self.g = -(-MIN_COLS // (2 * self.co))
            self.band = layout.up_band(w, self.g).contiguous()

    def forward(self, Ag: torch.Tensor, n: int, l: int, P: int) -> torch.Tensor:
        """Ag (n (l + P) + 2, c): a zero row, the input A (pad rows zero), a zero row -> the output
        in the same guarded layout, (2 n (l + P) + 2, co). The result is this layer's scratch."""
        A = Ag[1:-1]
        R, co = A.shape[0], self.co
        Yg = _scratch(self, "y", 2 * R + 2, co)
        Yg[0] = 0
        Yg[-1] = 0
        Y = Yg[1:-1].view(R, 2 * co)
        if self.rows_fwd:
            # Q = A [W0 | W1 | W2 | W3]. Read half a row off, the output sequence is rows
            # [odd_{r-1} | even_r] = [q0_r + q2_{r-1} | q1_r + q3_{r-1}] = Q[r, :2co] + Q[r-1, 2co:]:
            # one add over the whole batch, written straight into the interleaved output.
            Q = torch.mm(A, self.w0123, out=_scratch(self, "q", R, 4 * co))
            Yf = Y.view(-1)
            torch.add(Q[1:, : 2 * co], Q[:-1, 2 * co:], out=Yf[co: co + (R - 1) * 2 * co].view(R - 1, 2 * co))
            Yf[:co] = Q[0, co:2 * co]  # even_0 (q3 of the row before is zero padding)
            Yf[(2 * R - 1) * co:] = Q[R - 1, 2 * co:3 * co]  # odd of the last row (q0 of the row after: padding)
        elif R % self.g == 0:
            g, c = self.g, self.c
            win = _scratch(self, "win", R // g, (g + 2) * c)
            win.copy_(Ag.view(-1).as_strided((R // g, (g + 2) * c), (g * c, 1)))
            torch.mm(win, self.band, out=Y.view(R // g, 2 * g * co))
        else:
            QT = torch.mm(self.w4t, A.t(), out=_scratch(self, "qt", 4 * co, R))  # the batch's rows are the long dimension
            QT[co:2 * co, 1:] += QT[:co, :-1]
            QT[2 * co:3 * co, :-1] += QT[3 * co:, 1:]
            Y3 = Y.view(R, 2, co)
            Y3[:, 0] = QT[co:2 * co].t()
            Y3[:, 1] = QT[2 * co:3 * co].t()
        if self.b2 is not None:
            _add_bias_(Y, self.b2_wide)
        _act_(Y, self.slope)
        Y.view(n, l + P, 2 * co)[:, l:] = 0
        return Yg

    def backward(self, gbuf: torch.Tensor, n: int, l: int, P: int) -> torch.Tensor:
        """Input gradient from the output gradient in a guarded buffer (zero row, n (l + P)
        output rows already through the activation, zero row), in the same layout (``l``, ``P``:
        the output's rows per sample)."""
        return self.grad_conv.forward(gbuf, n, l, P)


class GeneratorProgram:
    """A frozen :class:`~ganad.nets.conv1d.Conv1dGenerator` as a GEMM program (see the module doc)."""

    def __init__(self, G):
        from ganad.nets.conv1d import Up1d

        lin, act = _linear_relu(G.fc)
        self.latent_dim = lin.in_features
        self.base, self.c0 = int(G.base), int(G.c0)
        self.channels, self.length = int(G.channels), int(G.length)
        wt = lin.weight.detach().t().reshape(self.latent_dim, self.base, self.c0)
        self.wfc = torch.cat([wt, wt.new_zeros(self.latent_dim, 1, self.c0)], 1).reshape(self.latent_dim, -1).contiguous()
        self.wfct = self.wfc.t().contiguous()
        b = lin.bias.detach() if lin.bias is not None else lin.weight.new_zeros(self.base * self.c0)
        self.bfc = torch.cat([b, b.new_zeros(self.c0)]).contiguous()
        self.ups, self.out_act = [], None
        for m in G.net:
            if isinstance(m, Up1d):
                self.ups.append(_Up(m))
            elif isinstance(m, nn.Identity):
                continue
            elif isinstance(m, (nn.Tanh, nn.Sigmoid)) and m is list(G.net)[-1]:
                self.out_act = "tanh" if isinstance(m, nn.Tanh) else "sigmoid"
            else:
                raise TypeError(f"no fast path for {type(m).__name__} in a generator")
        if any(u.slope is None for u in self.ups[:-1]) or self.ups[-1].slope is not None:
            raise TypeError("fast path needs ReLU fused into every hidden layer")
        self.lin, self.up_mods = lin, [m for m in G.net if isinstance(m, Up1d)]  # what the native runner is built from
        self.out_len = self.base * 2 ** len(self.ups)
        self.out_pad = 2 ** len(self.ups)
        # widest intermediate per sample: a layer's product (rows x 4 co), in floats
        rows = [(self.base + 1) * 2 ** i for i in range(len(self.ups))]
        self.block = _block(max(r * 4 * u.co for r, u in zip(rows, self.ups)))

    def forward_saved(self, z: torch.Tensor):
        """Output in the flat padded layout (n, out_len + out_pad, channels), and what backward
        needs. Both are this program's scratch: valid until its next call on this thread."""
        n = z.shape[0]
        hg = _scratch(self, "h", n * (self.base + 1) + 2, self.c0)
        hg[0] = 0
        hg[-1] = 0
        h = hg[1:-1].view(n, (self.base + 1) * self.c0)
        torch.addmm(self.bfc, z, self.wfc, out=h).relu_()  # pad row = relu(0) = 0
        acts = [h]
        A, l, P = hg, self.base, 1
        for u in self.ups:
            A = u.forward(A, n, l, P)
            l, P = 2 * l, 2 * P
            acts.append(A[1:-1])
        out = A[1:-1].view(n, l + P, self.channels)
        if self.out_act == "tanh":
            out.tanh_()  # tanh(0) = 0 keeps the pad rows zero
        elif self.out_act == "sigmoid":
            out.sigmoid_()
            out[:, l:] = 0
        return out, acts

    def backward(self, g_out: torch.Tensor, out: torch.Tensor, acts) -> torch.Tensor:
        """dL/dz from dL/d(out) in the padded layout; rows beyond ``length`` must be zero in g_out."""
        n = out.shape[0]
        R = g_out.shape[0] * g_out.shape[1]
        gbuf = _scratch(self, "g", R + 2, self.channels)
        gbuf[0] = 0
        gbuf[-1] = 0
        body = gbuf[1:-1].view(g_out.shape)
        if self.out_act == "tanh":
            torch.mul(g_out, 1 - out * out, out=body)
        elif self.out_act == "sigmoid":
            torch.mul(g_out, out * (1 - out), out=body)
        else:
            body.copy_(g_out)
        l, P = self.out_len, self.out_pad
        for i in range(len(self.ups) - 1, -1, -1):
            u = self.ups[i]
            if u.slope is not None:  # through the fused ReLU: zero where the layer's output is 0
                b = gbuf[1:-1]
                torch.ops.aten.threshold_backward.grad_input(b, acts[i + 1], 0.0, grad_input=b)
            gbuf = u.backward(gbuf, n, l, P)
            l, P = l // 2, P // 2
        g = gbuf[1:-1].reshape(acts[0].shape)
        g = torch.ops.aten.threshold_backward(g, acts[0], 0.0)
        return g @ self.wfct

    def pad_target(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, channels, length) into the output layout, zeros elsewhere."""
        n = x.shape[0]
        xp = x.new_zeros(n, self.out_len + self.out_pad, self.channels)
        xp[:, : self.length] = x.transpose(1, 2)
        return xp

    def accepts(self, z: torch.Tensor) -> bool:
        return z.dim() == 2 and z.shape[1] == self.latent_dim and z.shape[0] > 0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        res = torch.empty(z.shape[0], self.length, self.channels, dtype=torch.float32)
        start = 0
        for zb in _blocks(z, self.block):
            res[start:start + zb.shape[0]] = self.forward_saved(zb)[0][:, : self.length]
            start += zb.shape[0]
        # (n, channels, length) as the module returns it; one channel needs no transposed strides
        # (odd strides put every element-wise op on the result on a slow path)
        return res.view(z.shape[0], 1, self.length) if self.channels == 1 else res.transpose(1, 2)


def _linear_relu(seq):
    mods = [m for m in seq if not isinstance(m, nn.Identity)]
    if len(mods) != 2 or not isinstance(mods[0], nn.Linear) or not isinstance(mods[1], nn.ReLU):
        raise TypeError("fast path needs Linear + ReLU (BatchNorm folded) as the generator's first layer")
    return mods[0], mods[1]


class _Down:
    """Conv1d(k=4, s=2, p=1) on the flat padded layout (weights of a ``Down1d``).

    Wide outputs (2 co >= 16): one matrix multiply of the input's row pairs by [U | V] and one
    shifted add. Narrow outputs: ``g`` outputs per row (g co >= 16) from a window of 2g + 2
    input rows, one banded matrix multiply straight into the output layout (the window copy and
    the band's zero blocks cost less than a matrix multiply with fewer than 16 columns)."""

    def __init__(self, mod=None, weight=None):
        w = (mod.weight if mod is not None else weight).detach()  # (co, c, 4)
        self.co, self.c = int(w.shape[0]), int(w.shape[1])
        self.uv = layout.down_pairs(w).contiguous()
        self.b = mod.bias.detach().contiguous() if mod is not None and mod.bias is not None else None
        self.b_wide = _wide_bias(self.b) if self.b is not None else None
        self.slope = mod.fused_slope if mod is not None else None
        self.rows = 2 * self.co >= MIN_COLS
        self.g = 1 if self.rows else -(-MIN_COLS // self.co)
        if not self.rows:  # banded weight: output k of a group reads window rows 2k .. 2k + 3
            self.band = layout.down_band(w, self.g).contiguous()

    def forward(self, buf: torch.Tensor, n: int, l: int, P: int) -> torch.Tensor:
        """buf (R + 2, c): a zero row, the layer input (R = n (l + P) rows), a zero row.
        Returns the same layout for the output (R / 2 rows of co channels)."""
        R2 = (buf.shape[0] - 2) // 2
        out = _scratch(self, "out", R2 + 2, self.co)
        out[0] = 0
        out[-1] = 0
        body = out[1:-1]
        if self.rows:
            pairs = buf.view(R2 + 1, 2 * self.c)  # pairs[j] = (A[2j-1], A[2j])
            Q = torch.mm(pairs, self.uv, out=_scratch(self, "q", R2 + 1, 2 * self.co))
            torch.add(Q[:-1, : self.co], Q[1:, self.co:], out=body)
        elif R2 % self.g == 0:
            g, c = self.g, self.c
            win = _scratch(self, "win", R2 // g, (2 * g + 2) * c)
            win.copy_(buf.view(-1).as_strided((R2 // g, (2 * g + 2) * c), (2 * g * c, 1)))
            torch.mm(win, self.band, out=body.view(R2 // g, g * self.co))
        else:
            pairs = buf.view(R2 + 1, 2 * self.c)
            QT = torch.mm(self.uv.t(), pairs.t(), out=_scratch(self, "qt", 2 * self.co, R2 + 1))
            torch.add(QT[: self.co, :-1], QT[self.co:, 1:], out=body.t())
        if self.b is not None:
            _add_bias_(body, self.b_wide)
        _act_(body, self.slope)
        body.view(n, (l + P) // 2, self.co)[:, l // 2:] = 0
        return out


class DownProgram:
    """The stride-2 stack of a frozen conv1d encoder or discriminator as a GEMM program."""

    def __init__(self, downs, channels: int, length: int):
        """``downs``: the stack's ``Down1d`` layers, one per block (:func:`down_layers`)."""
        self.layers = [_Down(m) for m in downs]
        self.channels, self.length = int(channels), int(length)
        if self.length % 2 ** len(self.layers) or self.layers[0].c != self.channels:
            raise TypeError("fast path needs a length divisible by 2**depth")
        self.pad = 2 ** len(self.layers)
        self.out_len = [self.length // 2 ** (i + 1) for i in range(len(self.layers))]
        rows = [(self.length + self.pad) // 2 ** (i + 1) for i in range(len(self.layers))]
        self.block = _block(max(r * 2 * d.co for r, d in zip(rows, self.layers)))

    def accepts(self, x: torch.Tensor) -> bool:
        return x.dim() == 3 and tuple(x.shape[1:]) == (self.channels, self.length) and x.shape[0] > 0

    def run(self, x: torch.Tensor, keep=()) -> dict[int, torch.Tensor]:
        """x (n, channels, length) -> the flattened (n, l_i * c_i) outputs of the blocks in ``keep``
        and of the last block (channels-last order, as the modules flatten them); large batches
        run in blocks of ``self.block`` samples."""
        n = x.shape[0]
        last = len(self.layers) - 1
        keep = sorted(set(keep) | {last})
        res = {i: torch.empty(n, self.out_len[i] * self.layers[i].co, dtype=torch.float32) for i in keep}
        start = 0
        for xb in _blocks(x, self.block):
            for i, v in self._run(xb, keep).items():
                res[i][start:start + xb.shape[0]].view(v.shape).copy_(v)
            start += xb.shape[0]
        return res

    def _run(self, x: torch.Tensor, keep) -> dict[int, torch.Tensor]:
        """One block: views of the kept layers' outputs (n, l_i, c_i) in this program's scratch."""
        n = x.shape[0]
        l, P = self.length, self.pad
        buf = _scratch(self, "in", n * (l + P) + 2, self.channels)
        buf[0] = 0
        buf[-1] = 0
        body = buf[1:-1].view(n, l + P, self.channels)
        body[:, :l] = x.transpose(1, 2)
        body[:, l:] = 0
        outs = {}
        for i, layer in enumerate(self.layers):
            buf = layer.forward(buf, n, l, P)
            l, P = l // 2, P // 2
            if i in keep:
                outs[i] = buf[1:-1].view(n, l + P, layer.co)[:, :l]
        return outs


def generator_program(G):
    """A :class:`GeneratorProgram` for a frozen conv1d generator, or None where it does not apply."""
    try:
        return GeneratorProgram(G)
    except (TypeError, AttributeError):
        return None


def down_layers(blocks) -> list:
    """The ``Down1d`` of each block of a frozen conv1d stack; TypeError where a block holds anything
    else (an unfolded normalisation, an activation not fused)."""
    from ganad.nets.conv1d import Down1d, _ToChannelsLast

    downs = []
    for i, block in enumerate(blocks):
        mods = [m for m in block if not isinstance(m, nn.Identity)]
        if i == 0 and mods and isinstance(mods[0], _ToChannelsLast):
            mods = mods[1:]
        if len(mods) != 1 or not isinstance(mods[0], Down1d):
            raise TypeError("fast path needs blocks of one Down1d each (normalisation folded, activation fused)")
        downs.append(mods[0])
    return downs


def down_program(downs, data_shape):
    """A :class:`DownProgram` for the stride-2 layers of a frozen conv1d encoder or discriminator, or None."""
    try:
        return DownProgram(downs, *data_shape)
    except (TypeError, AttributeError, ValueError):
        return None
