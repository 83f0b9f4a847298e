"""The runner: one frozen network, its eager module and (conv1d, CPU) its GEMM program and native
kernels, and the choice of one of them per call (see :mod:`ganad.runtime`)."""

from __future__ import annotations

import torch
from torch import nn

from ganad.runtime import gemm, native

def usable(x: torch.Tensor) -> bool:
    """True where a compiled runner may replace the module: CPU float32, no autograd, no tracing."""
    return (x.device.type == "cpu" and x.dtype == torch.float32
            and not (torch.is_grad_enabled() and x.requires_grad)
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())


#: with ``runtime.use("auto")`` the gemm runner (the fallback where the native kernels cannot be built)
#: takes batches of at least this many samples only: on the idle 2-core machine it was >= 1.5x
#: eager in 6 of 6 beat cells at batch 4,096, 4 of 6 at 1,024 (1.45x and 1.47x in the other two),
#: 3 of 6 at 256, 2 of 6 at 64 and 1 of 6 at batch 1 (benchmarks/bench_runtime.py; RESULTS.md,
#: issue 11), so below this it does not earn its place and eager runs. ``use("gemm")`` forces it.
GEMM_AUTO_MIN_BATCH = 512


def _order(n: int | None = None) -> tuple[str, ...]:
    from ganad.runtime import selected
    kind = selected()
    order = {"auto": ("native", "gemm"), "native": ("native", "gemm"), "gemm": ("gemm",)}.get(kind, ())
    if kind == "auto" and n is not None and n < GEMM_AUTO_MIN_BATCH:
        order = tuple(k for k in order if k != "gemm")
    return order


class Runner:
    """A frozen network and the runners that compute it. Calls go to the first runner of the selected
    runtime that covers the input (native → gemm → eager), and give what the module gives."""

    role = "module"

    def __init__(self, module: nn.Module):
        self.module = module
        self._gemm = None
        self._native, self._native_tried = None, False

    # ------------------------------------------------------------------ choice
    def _build_native(self):
        return None

    def native_runner(self):
        """The native kernels' form of this network (built, and the library compiled, on first use), or None."""
        if not self._native_tried:
            self._native = self._build_native() if self._gemm is not None else None
            self._native_tried = True
        return self._native

    def runner_for(self, x: torch.Tensor) -> str:
        """Which runner a call on ``x`` uses now: 'native', 'gemm' or 'eager'."""
        if self._gemm is not None and usable(x):
            for kind in _order(x.shape[0] if x.dim() else None):
                prog = self._gemm if kind == "gemm" else self.native_runner()
                if prog is not None and prog.accepts(x):
                    return kind
        return "eager"

    def preferred_batch(self) -> int | None:
        """Samples per step at which the compiled runners keep their intermediates in cache (None: any)."""
        return self._gemm.block if self._gemm is not None and _order() else None

    # ------------------------------------------------------------------ API
    def __call__(self, *args):
        return self.forward(*args)

    def forward(self, *args):
        return self.module(*args)

    def forward_features(self, x: torch.Tensor):
        """(output, kept features): a discriminator's (logit, feature layer)."""
        return self.forward(x)

    def parameters(self):
        return self.module.parameters()

    def objective(self, x: torch.Tensor, loss, distance: str | None = None, sigma: float = 1.0):
        """The latent search's objective on targets ``x`` (a generator's runner): ``loss(x_hat, x) ->
        (loss, distance)`` per sample; ``value_and_grad_z`` differentiates it with autograd here
        (compiled runners of conv1d generators use their own backward, see :class:`GeneratorRunner`)."""
        return _EagerObjective(self.module, x, loss)

    def __repr__(self):
        return f"Runner({type(self.module).__name__}, gemm={self._gemm is not None})"


class GeneratorRunner(Runner):
    role = "generator"

    def __init__(self, module):
        super().__init__(module)
        self._gemm = gemm.generator_program(module)

    def _build_native(self):
        p = self._gemm
        out_act = p.out_act
        try:
            return native.NativeGenerator(p.lin, p.up_mods, p.base, p.c0, p.channels, p.length, out_act)
        except RuntimeError:
            return None

    def forward(self, z):
        kind = self.runner_for(z)
        if kind == "native":
            return self.native_runner()(z)
        if kind == "gemm":
            return self._gemm(z)
        return self.module(z)

    def objective(self, x: torch.Tensor, loss, distance: str | None = None, sigma: float = 1.0):
        """The latent search's objective on targets ``x``: ``loss(x_hat, x) -> (loss, distance)`` per
        sample (the eager runner differentiates it with autograd), and ``distance`` ('l2', 'l1' or
        'rbf' with ``sigma``) where that loss is exactly the distance: then the gemm and native
        runners compute the value and dL/dz with their hand-written backward."""
        if distance in ("l2", "l1", "rbf") and self._gemm is not None and usable(x) \
                and tuple(x.shape[1:]) == (self._gemm.channels, self._gemm.length):
            for kind in _order(x.shape[0]):
                prog = self._gemm if kind == "gemm" else self.native_runner()
                if prog is not None:
                    return _CompiledObjective(kind, prog, x, distance, sigma)
        return super().objective(x, loss, distance, sigma)


class _EagerObjective:
    runner = "eager"

    def __init__(self, G, x, loss):
        self.G, self.target, self.loss = G, x, loss

    def value_and_grad_z(self, z: torch.Tensor, target: torch.Tensor):
        """(loss, distance, dL/dz) per sample for the codes ``z`` and targets ``target`` (rows of
        :attr:`target`, in its layout)."""
        z_a = z.detach().requires_grad_(True)
        with torch.enable_grad():
            loss, dist = self.loss(self.G(z_a), target)
            (grad,) = torch.autograd.grad(loss.sum(), z_a)
        return loss.detach(), dist.detach(), grad


class _CompiledObjective:
    """Value and dL/dz of a per-sample distance through a program's hand-written backward (the gemm
    and native generators share the interface: pad_target, forward_saved, backward)."""

    def __init__(self, kind, prog, x, distance, sigma):
        self.runner, self.prog, self.distance, self.sigma = kind, prog, distance, float(sigma)
        self.target = prog.pad_target(x)

    def value_and_grad_z(self, z: torch.Tensor, target: torch.Tensor):
        prog = self.prog
        with torch.no_grad():
            out, acts = prog.forward_saved(z)
            diff = out - target
            diff[:, prog.length:] = 0  # rows the module slices off
            f = float(prog.length * prog.channels)
            if self.distance == "l1":
                dist = diff.abs().sum((1, 2)) / f
                g = diff.sign_().div_(f)
            else:
                mse = diff.square().sum((1, 2)) / f
                g = diff.mul_(2.0 / f)
                if self.distance == "l2":
                    dist = mse
                else:  # rbf: 1 - exp(-mse / (2 sigma^2))
                    s2 = 2.0 * self.sigma * self.sigma
                    k = torch.exp(-mse / s2)
                    dist = 1.0 - k
                    g = g.mul_((k / s2).view(-1, 1, 1))
            return dist, dist, prog.backward(g, out, acts)


class _DownRunner(Runner):
    """Shared part of the conv1d encoder / discriminators: the stride-2 stack as a program."""

    def _stack(self, blocks, shape, head=None):
        try:
            self._downs = gemm.down_layers(blocks)
        except (TypeError, AttributeError):
            return
        if shape is not None:
            self._gemm = gemm.down_program(self._downs, shape)
        self._shape, self._head = shape, head

    def _build_native(self):
        try:
            return native.NativeDown(self._downs, *self._shape, head=self._head)
        except RuntimeError:
            return None


class EncoderRunner(_DownRunner):
    role = "encoder"

    def __init__(self, module):
        super().__init__(module)
        lin = module.net[-1] if isinstance(module.net[-1], nn.Linear) else None
        if lin is not None:
            self._stack(list(module.net)[:-2], module.data_shape, head=lin)

    def forward(self, x):
        kind = self.runner_for(x)
        if kind == "native" and self.native_runner().head is not None:
            return self.native_runner().run_head(x.transpose(1, 2))[0]
        if kind != "eager":
            h = self._gemm.run(x)[len(self._gemm.layers) - 1]
            lin = self._head
            return torch.addmm(lin.bias, h, lin.weight.t()) if lin.bias is not None else h @ lin.weight.t()
        return self.module(x)


class DiscriminatorRunner(_DownRunner):
    role = "discriminator"

    def __init__(self, module):
        super().__init__(module)
        kids = list(module.head.children())
        plain = len(kids) == 2 and isinstance(kids[0], nn.Flatten) and isinstance(kids[1], nn.Linear)
        if any(type(m).__name__ == "Down1d" for m in module.blocks.modules()):
            # the native stack computes Flatten + Linear itself where the head is that plain
            self._stack(list(module.blocks), getattr(module, "data_shape", None), head=kids[1] if plain else None)
        self.feature_layer = module.feature_layer

    def forward(self, x):
        kind = self.runner_for(x)
        nat = self.native_runner() if kind == "native" else None
        if nat is not None and nat.head is not None:
            logit, feats = nat.run_head(x.transpose(1, 2), self.feature_layer)
            return logit.reshape(-1), feats
        if kind != "eager":
            outs = self._gemm.run(x, keep=(self.feature_layer,))
            return self.module.head(outs[len(self._gemm.layers) - 1]).reshape(-1), outs[self.feature_layer]
        return self.module(x)


class JointRunner(_DownRunner):
    """BiGAN's / ALAD's D(x, z): the x blocks on a program, the rest on the modules."""

    role = "joint"

    def __init__(self, module):
        super().__init__(module)
        if any(type(m).__name__ == "Down1d" for m in module.x_blocks.modules()):
            self._stack(list(module.x_blocks), getattr(module, "data_shape", None))

    def forward(self, x, z):
        kind = self.runner_for(x)
        if kind == "native":
            return self.module.joint_head(self.native_runner().run_blocks(x.transpose(1, 2)), z)
        if kind == "gemm":
            return self.module.joint_head(self._gemm.run(x)[len(self._gemm.layers) - 1], z)
        return self.module(x, z)


def compile(net: nn.Module) -> Runner:
    """The runner of a frozen network (:func:`ganad.nets.inference.frozen_copy`). Networks the
    compiled runners do not cover (other families, unfolded layers) get the eager runner."""
    if isinstance(net, Runner):
        return net
    from ganad.nets.blocks import FeatureDiscriminator
    from ganad.nets.conv1d import Conv1dEncoder, Conv1dGenerator
    from ganad.nets.joint import JointDiscriminator

    if isinstance(net, Conv1dGenerator):
        return GeneratorRunner(net)
    if isinstance(net, Conv1dEncoder):
        return EncoderRunner(net)
    if isinstance(net, FeatureDiscriminator):
        return DiscriminatorRunner(net)
    if isinstance(net, JointDiscriminator):
        return JointRunner(net)
    r = Runner(net)
    if hasattr(net, "feature_layer"):
        r.feature_layer = net.feature_layer
    return r


# ---------------------------------------------------------------------- fused passes of encoder scoring
def encode_generate(E, G, x: torch.Tensor):
    """z = E(x), x̂ = G(z) -> (z, x̂, handle). On the native kernels both networks run in one pass over
    the batch (each thread takes a piece of samples through E and then G while its codes are in
    cache); ``handle`` keeps the channels-last copies for :func:`discriminate_pair` (opaque; None
    where nothing was kept)."""
    E, G = compile(E), compile(G)
    if E.runner_for(x) == "native" and isinstance(E, EncoderRunner) and isinstance(G, GeneratorRunner):
        ne, ng = E.native_runner(), G.native_runner()
        if ne.head is not None and ng is not None and ne.head.out_shapes[-1][1] == ng.latent_dim:
            n = x.shape[0]
            xt = x.transpose(1, 2).contiguous()  # channels-last, as the kernels read it
            z, _ = ne.head.outputs(n)
            g, _ = ng.forward_stack.outputs(n)
            native.run([(ne.head, xt, z, None, -1), (ng.forward_stack, z.view(n, 1, -1), g, None, -1)])
            x_hat, x_hat_cl = ng.finish(g)
            return z, x_hat, {"x_cl": xt, "x_hat_cl": x_hat_cl}
    z = E(x)
    return z, G(z), None


def discriminate_pair(D, x: torch.Tensor, x_hat: torch.Tensor, handle=None):
    """(D(x), D(x̂)), each (logit, features), in one pass: one native run over both where the
    native kernels cover D, else one call on the two batches concatenated (half the per-call work
    of small networks)."""
    D = compile(D)
    if isinstance(D, DiscriminatorRunner) and x.shape == x_hat.shape and D.runner_for(x) == "native":
        nat = D.native_runner()
        if nat.head is not None:
            stack, keep, n = nat.head, D.feature_layer, x.shape[0]
            xc = (handle or {}).get("x_cl")
            xc = xc if xc is not None else x.transpose(1, 2).contiguous()
            xh = (handle or {}).get("x_hat_cl")
            xh = xh if xh is not None else x_hat.transpose(1, 2).contiguous()
            lx, fx = stack.outputs(n, keep)
            lh, fh = stack.outputs(n, keep)
            native.run([(stack, xc, lx, fx, keep), (stack, xh, lh, fh, keep)])
            return (lx.reshape(-1), fx), (lh.reshape(-1), fh)
    if x.shape[1:] == x_hat.shape[1:]:
        logit, feats = D(torch.cat([x, x_hat]))
        n = x.shape[0]
        return (logit[:n], feats[:n]), (logit[n:], feats[n:])
    return D(x), D(x_hat)


def encode_generate_discriminate(E, G, D, x: torch.Tensor) -> dict:
    """The encoder methods' whole pass: z = E(x), x̂ = G(z), D(x) and D(x̂) as (logit, features)."""
    z, x_hat, handle = encode_generate(E, G, x)
    d_x, d_x_hat = discriminate_pair(D, x, x_hat, handle)
    return {"z": z, "x_hat": x_hat, "d_x": d_x, "d_x_hat": d_x_hat}
