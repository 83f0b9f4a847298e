"""Adversarial objectives. Each takes raw discriminator outputs (logits / critic values) and
optional per-sample weights (robust training down-weights suspected anomalies).

- ``bce``: the non-saturating GAN of Goodfellow et al. 2014;
- ``wgan-gp``: Wasserstein GAN with gradient penalty (Gulrajani et al. 2017);
- ``hinge``: the hinge loss of Lim & Ye 2017 / Miyato et al. 2018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganad.training import distributed

OBJECTIVES = ("bce", "wgan-gp", "hinge")


def wmean(v: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of the per-sample terms ``v`` over the batch, weighted by ``w`` (None: uniform). Every
    loss of every method reduces through here: under DDP (:mod:`ganad.training.distributed`) a
    rank's value is its share of the *global* batch's mean, so that DDP's gradient average equals the
    single-process gradient (robust weights and an uneven last batch included)."""
    st = distributed.current_step()
    if w is None:
        return v.mean() if st is None else v.mean() * st.mean_scale
    den = w.sum()
    if st is not None:
        den = distributed.global_sum(den) / st.world
    return (v * w).sum() / den.clamp_min(1e-12)


_wmean = wmean


def check_objective(name: str) -> str:
    if name not in OBJECTIVES:
        raise ValueError(f"objective: unknown objective {name!r}. Fix: use one of {', '.join(OBJECTIVES)}")
    return name


def d_loss(objective: str, real: torch.Tensor, fake: torch.Tensor, w: torch.Tensor | None = None,
           w_fake: torch.Tensor | None = None) -> torch.Tensor:
    """Discriminator loss; ``w`` weights the real samples, ``w_fake`` the fake ones (for fakes made
    from a training sample, such as ALAD's (x, G(E(x))) pair; None for fakes from the prior)."""
    if objective == "bce":
        return _wmean(F.softplus(-real), w) + _wmean(F.softplus(fake), w_fake)
    if objective == "wgan-gp":
        return -_wmean(real, w) + _wmean(fake, w_fake)
    if objective == "hinge":
        return _wmean(F.relu(1 - real), w) + _wmean(F.relu(1 + fake), w_fake)
    raise ValueError(check_objective(objective))


def g_loss(objective: str, fake: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """Generator loss (non-saturating for BCE); ``w`` weights the samples (None: uniform)."""
    if objective == "bce":
        return _wmean(F.softplus(-fake), w)
    return -_wmean(fake, w)


def lazy_weight(weight: float, every: int, step: int) -> float:
    """The gradient penalty's weight on discriminator step ``step`` (0, 1, ...) under lazy
    regularisation (Karras et al., CVPR 2020, sec. 3.1): ``weight * every`` on one step in ``every``
    (the first of each ``every``), 0 on the others, so that the penalty pulls as hard on average and
    its double backward runs ``every`` times less often. ``every=1``: ``weight`` on every step."""
    return float(weight) * every if step % every == 0 else 0.0


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(‖∇ D(x̃)‖₂ − 1)² on random interpolates x̃ of real and fake samples."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    a = distributed.batch_random(torch.rand, shape, generator=generator).to(real.device)
    x = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
    out = critic(x)
    out = out[0] if isinstance(out, tuple) else out
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return wmean((grad.flatten(1).norm(dim=1) - 1) ** 2)
