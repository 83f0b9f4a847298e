"""The adversarial stage shared by the GAN-based methods: D steps every batch, G every ``n_critic``."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ganad.training.loop import Stage
from ganad.training.objectives import d_loss, g_loss, gradient_penalty, lazy_weight
from ganad.training.priors import Prior


def _fused_devices() -> set[str]:
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
        return set(_get_fused_kernels_supported_devices())
    except (ImportError, AttributeError):  # an older torch: no fused kernels
        return set()


def make_optimizer(params, lr: float, betas) -> torch.optim.Adam:
    """Adam over the trainable ``params``, with PyTorch's fused kernel where the device has one
    (CPU and CUDA): one kernel for every parameter's update instead of about ten small ops per
    parameter. It computes Adam's update with the same formula; on the conv1d beat models the
    optimiser steps went from ~14 % of a training step to ~3 % (benchmarks/RESULTS.md, issue 15)."""
    params = [p for p in params if p.requires_grad]
    devices = {p.device.type for p in params}
    fused = len(devices) == 1 and devices <= _fused_devices() and all(p.is_floating_point() for p in params)
    opt = torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=True if fused else None)
    opt.register_step_post_hook(_bump_versions)
    return opt


def _bump_versions(opt, args, kwargs) -> None:
    """Mark the parameters as modified in place after every step. The fused kernel writes them
    without bumping their autograd version counters, which the conv1d layers' matmul-weight cache
    is keyed on (ganad.nets.conv1d._MatmulConv): without this, every no-grad / frozen forward
    (G(z) for the discriminator's fakes, D under ``frozen``, a frozen G in f-AnoGAN's encoder
    stage) kept using the weights of the time its cache was built, and a resumed run (whose
    restore refreshes the caches) differed from an uninterrupted one. Only metadata: no kernel."""
    for g in opt.param_groups:
        for p in g["params"]:  # one at a time: torch < 2.5 takes a single tensor
            torch.autograd.graph.increment_version(p)


@contextmanager
def frozen(*modules):
    """No weight gradients for ``modules`` inside the block (a generator step through the
    discriminator needs the gradient with respect to D's *input* only: skipping D's weight
    gradients saves their matrix multiplies, and the step's result is the same)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def stacks_batches(D: torch.nn.Module) -> bool:
    """Whether one forward of ``D`` on real and fake samples stacked gives exactly the outputs of two
    forwards: every sample computed on its own (no BatchNorm, whose batch statistics would mix them)
    and no spectral norm (whose power iteration runs once per forward in training). Dropout draws its
    masks for the stacked batch at once: other draws than two forwards, from the same distribution."""
    from torch.nn.utils import parametrize
    return not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) or parametrize.is_parametrized(m)
                   for m in D.modules())


def d_pair(D, real: tuple, fake: tuple):
    """``(D(*real), D(*fake))``, each D's (logit, features), from one forward of the two stacked where
    :func:`stacks_batches` allows: the same values, with each layer's per-call costs (and its
    backward's) paid once instead of twice, which at the conv1d beat models' small channel counts is
    a large part of a layer's time (benchmarks/RESULTS.md, issue 15)."""
    if stacks_batches(D) and all(r.shape[1:] == f.shape[1:] for r, f in zip(real, fake)):
        n = real[0].shape[0]
        logit, feat = D(*[torch.cat([r, f]) for r, f in zip(real, fake)])
        return (logit[:n], feat[:n]), (logit[n:], feat[n:])
    return D(*real), D(*fake)


def pair_logits(D, real: tuple, fake: tuple):
    """(D's logit of the real inputs, of the fake ones), as :func:`d_pair` computes them."""
    (real_logit, _), (fake_logit, _) = d_pair(D, real, fake)
    return real_logit, fake_logit


def gan_stage(G, D, prior: Prior, *, latent_dim: int, objective: str, epochs: int, lr_g: float, lr_d: float,
              betas, n_critic: int, gp_weight: float, generator: torch.Generator, name: str = "gan",
              gp_every: int = 1) -> Stage:
    opt_g = make_optimizer(G.parameters(), lr_g, betas)
    opt_d = make_optimizer(D.parameters(), lr_d, betas)
    state = {"i": 0}
    zero = torch.zeros(())

    def step(x, w):
        n = x.shape[0]
        z = prior.sample(n, latent_dim, generator=generator).to(x.device)
        with torch.no_grad():
            fake = G(z)
        (real_logit, _), (fake_logit, _) = d_pair(D, (x,), (fake,))
        loss_d = d_loss(objective, real_logit, fake_logit, w)
        gp = state.get("gp_last", zero).to(x.device)  # a lazy step without the penalty reports the last one
        gp_w = lazy_weight(gp_weight, gp_every, state["i"])
        if objective == "wgan-gp" and gp_w > 0:
            gp = gradient_penalty(D, x, fake, generator=generator)
            loss_d = loss_d + gp_w * gp
            state["gp_last"] = gp.detach()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        out = {"d_loss": loss_d.detach(), "gp": gp.detach()} if objective == "wgan-gp" else {"d_loss": loss_d.detach()}
        state["i"] += 1
        if state["i"] % n_critic == 0:
            z = prior.sample(n, latent_dim, generator=generator).to(x.device)
            with frozen(D):
                fake_logit, _ = D(G(z))
            loss_g = g_loss(objective, fake_logit)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            state["g_last"] = loss_g.detach()
        out["g_loss"] = state.get("g_last", zero.to(x.device))
        return out

    return Stage(name, epochs, step, modules=[G, D], optimizers=[opt_d, opt_g], state=state,
                 collapse="d_loss" if objective == "bce" else None)
