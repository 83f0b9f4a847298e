"""Batched latent search, the inversion of AnoGAN (Schlegl et al. 2017): find z* = argmin_z d(x, G(z)).

Every sample is its own optimisation problem, run side by side in one batch:

* each sample (and each restart) has its own z and its own Adam moments and step count,
  so its trajectory does not depend on what else is in the batch (the loss is a *sum* of
  per-sample losses, never a batch mean, and the generator runs in eval mode);
* each sample stops on its own as soon as its distance falls below the target
  similarity ``eps``; the rest of the batch keeps running, and finished samples are
  compacted out of the batch every ``check_every`` iterations so they cost nothing;
* a sample whose distance becomes NaN or infinite (the search diverged: G overflowed, or the
  step took z to NaN) stops too, but is *not* converged: its ``converged`` is False and its
  distance stays non-finite, so the detector's score check refuses it (an ``InputError``
  naming the rows, or ``on_nonfinite``) instead of scoring it as a perfect reconstruction;
* ``restarts = k`` starts k initial codes per sample (Deecke et al. 2018) and keeps each
  sample's best by the search loss (the distance, plus the feature term when
  ``feature_weight`` > 0); restart 0 is exactly the single-start search, so more restarts
  never give a worse loss.

The only host synchronisation is the compaction check every ``check_every`` iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganad import runtime
from ganad.inversion.starts import hashed_uniform, row_seeds
from ganad.params import Param, constraints_of, integer, options, real, validate_params
from ganad.progress import within_batch
from ganad.training.priors import Prior

DISTANCES = ("l2", "l1", "rbf", "dtw")
#: smoothing γ of the soft-DTW divergence that ``distance="dtw"`` minimises
DTW_GAMMA = 0.1

#: what the detectors' ``search_*`` parameters accept (AnoGAN and every encoder method): checked at
#: ``fit`` and load, and again when a search runs (a value set after fit, before scoring)
SEARCH_CONSTRAINTS: dict[str, Param] = {
    "search_distance": Param(options(*DISTANCES), fix=f"use one of {', '.join(repr(d) for d in DISTANCES)}"),
    "search_eps": Param(real(0), fix="pass a target distance >= 0 such as 0.005 (0: every sample runs search_n_max steps)"),
    "search_n_max": Param(integer(0), fix="pass a number of steps >= 0 such as 500"),
    "search_lr": Param(real(0, open="left"), fix="pass a positive learning rate such as 0.05"),
    "search_restarts": Param(integer(1), fix="pass a positive number of starts per sample such as 1"),
    "search_feature_weight": Param(real(0, 1), fix="pass a weight in [0, 1] such as 0.1 (0 = the distance only)"),
}


def check_search_params(detector, *others: str) -> None:
    """Refuse a detector's ``search_*`` value (and the class's constraints on ``others``) that its
    class's table (:data:`SEARCH_CONSTRAINTS`, or a narrower rule of the class) does not accept,
    before a search runs on it: ``fit`` checks them, but ``set_params`` after fit does not."""
    table = constraints_of(type(detector))
    rules = {k: table.get(k, SEARCH_CONSTRAINTS.get(k)) for k in (*SEARCH_CONSTRAINTS, *others)}
    validate_params(detector, {k: r for k, r in rules.items() if r is not None})  # a name with no rule: nothing to check


def sample_distance(x: torch.Tensor, x_hat: torch.Tensor, kind: str = "l2", sigma: float = 1.0, gamma: float = DTW_GAMMA) -> torch.Tensor:
    """Distance per sample, averaged over features so that ``eps`` does not depend on the data size.

    ``"dtw"``: soft-DTW divergence (smoothing ``gamma``) of series windows (n, channels, length),
    divided by length x channels; see :mod:`ganad.inversion.soft_dtw`."""
    if kind == "dtw":
        if x.dim() != 3:
            raise ValueError(f"search_distance: 'dtw' compares series windows (n, channels, length), got samples of shape {tuple(x.shape[1:])}. "
                             "Fix: use 'l2', 'l1' or 'rbf' for vectors and images")
        from ganad.inversion.soft_dtw import soft_dtw_divergence
        return soft_dtw_divergence(x, x_hat, gamma)
    diff = (x - x_hat).flatten(1)
    if kind == "l2":
        return diff.square().mean(1)
    if kind == "l1":
        return diff.abs().mean(1)
    if kind == "rbf":  # 1 - k(x, x̂) with a Gaussian kernel on the mean squared difference
        return 1.0 - torch.exp(-diff.square().mean(1) / (2.0 * sigma * sigma))
    raise ValueError(f"distance: unknown distance {kind!r}. Fix: use one of {', '.join(DISTANCES)}")


@dataclass
class SearchResult:
    z: torch.Tensor  # (n, d) best code per sample
    x_hat: torch.Tensor  # G(z)
    distance: torch.Tensor  # (n,) distance d(x, G(z))
    iterations: torch.Tensor  # (n,) Adam steps used by the kept restart
    converged: torch.Tensor  # (n,) bool: reached a finite distance < eps before n_max (never for NaN / inf)


@dataclass
class LatentSearch:
    distance: str = "l2"
    eps: float = 0.005
    n_max: int = 500
    lr: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    restarts: int = 1
    feature_weight: float = 0.0
    rbf_sigma: float = 1.0
    check_every: int = 10

    def __post_init__(self):
        if self.distance not in DISTANCES:
            raise ValueError(f"search_distance: unknown distance {self.distance!r}. Fix: use one of {', '.join(DISTANCES)}")
        if int(self.n_max) < 0 or int(self.restarts) < 1:
            raise ValueError("search: n_max must be >= 0 and restarts >= 1. Fix: for example n_max=500, restarts=1")

    def _loss(self, G, D, z, x):
        return self._loss_of(G(z), D, x)

    def _loss_of(self, x_hat, D, x):
        """(search loss, distance) per sample. With ``feature_weight`` = λ > 0 the loss is
        (1 − λ)·Σ d(x, x̂) + λ·Σ|f(x) − f(x̂)| over the n_x elements of x and the n_f
        discriminator features (Schlegl et al.'s mapping loss, sums as in the paper), divided by
        (1 − λ)·n_x + λ·n_f to stay in the distance's per-element units (Adam does not see the
        constant). The RBF distance is one kernel value per sample: n_x = 1 for it."""
        dist = sample_distance(x, x_hat, self.distance, self.rbf_sigma)
        if self.feature_weight > 0 and D is not None:
            _, f_real = D(x)
            _, f_fake = D(x_hat)
            feat = (f_real - f_fake).abs().flatten(1).mean(1)
            a = (1 - self.feature_weight) * (1 if self.distance == "rbf" else x[0].numel())
            b = self.feature_weight * f_real[0].numel()
            loss = (a * dist + b * feat) / (a + b)
        else:
            loss = dist
        return loss, dist

    def run(self, G, x: torch.Tensor, prior: Prior, *, latent_dim: int, D=None, z0: torch.Tensor | None = None,
            seed: int = 0) -> SearchResult:
        """Invert a batch ``x`` (already scaled, on G's device).

        Starting codes come from :func:`ganad.inversion.starts.hashed_uniform` of each sample's
        values and ``seed``, so a sample's result does not depend on the rest of the batch.
        ``z0`` (for example an encoder's E(x)) replaces restart 0's start. ``G`` is a network or its
        runner (:func:`ganad.runtime.compile`); the runner computes each step's loss and dL/dz
        (autograd on the modules, or a compiled runner's hand-written backward where the loss is
        a plain distance).
        """
        G = runtime.compile(G)
        n = x.shape[0]
        R = int(self.restarts)
        d = int(latent_dim)
        dev = x.device
        u = hashed_uniform(row_seeds(x, seed), R, d)  # (R, n, d)
        z = prior.from_uniform(u).reshape(R * n, d).to(dev)  # restart-major: row r*n + i
        if z0 is not None:
            z[:n] = z0.detach().to(dev, z.dtype)
        z = prior.project(z)
        xr = x.repeat((R,) + (1,) * (x.dim() - 1)) if R > 1 else x
        m = torch.zeros_like(z)
        v = torch.zeros_like(z)
        b1, b2 = self.betas
        z_out = z.clone()
        iters_out = torch.zeros(R * n, dtype=torch.long, device=dev)
        conv_out = torch.zeros(R * n, dtype=torch.bool, device=dev)
        idx = torch.arange(R * n, device=dev)
        alive = torch.ones(R * n, dtype=torch.bool, device=dev)
        hit = torch.zeros(R * n, dtype=torch.bool, device=dev)  # stopped because its distance was < eps
        steps = torch.zeros(R * n, device=dev)
        x_a = xr
        req = [p.requires_grad for p in G.parameters()]
        for p in G.parameters():  # gradients w.r.t. z only: skip the weight gradients
            p.requires_grad_(False)
        # a plain distance (no feature term; soft-DTW has no hand-written backward) may run compiled
        plain = self.distance if self.distance != "dtw" and not (self.feature_weight > 0 and D is not None) else None
        objective = G.objective(x_a, lambda x_hat, target: self._loss_of(x_hat, D, target), distance=plain,
                                sigma=self.rbf_sigma)
        x_a = objective.target  # the target in the runner's layout, once
        try:
            for it in range(int(self.n_max)):
                loss, dist, grad = objective.value_and_grad_z(z, x_a)
                # a sample stops the first time its distance is below eps (judged per sample): converged.
                # A NaN / inf distance stops it too (Adam cannot bring z back from NaN), not converged:
                # `NaN >= eps` is False, so the plain test would have counted it as reaching eps
                dd = dist.detach()
                below = dd < self.eps
                hit |= alive & below
                alive &= ~below & torch.isfinite(dd)
                steps += alive
                # Adam with per-sample moments. Every sample still in the batch has been alive
                # since iteration 0 (finished ones are compacted out), so its step count is it + 1
                # and the bias corrections are scalars; a finished sample's moments are never used
                # again, and its z is frozen by the mask until the next compaction.
                t = it + 1
                m.mul_(b1).add_(grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                denom = v.mul(1.0 / (1 - b2 ** t)).sqrt_().add_(self.adam_eps)
                upd = m.div(denom).mul_(alive.unsqueeze(1)).mul_(self.lr / (1 - b1 ** t))
                z = prior.project(z.detach() - upd)
                if (it + 1) % self.check_every == 0 or it + 1 == self.n_max:
                    n_alive = int(alive.sum())  # the one host sync, every check_every iterations
                    if n_alive < alive.numel():
                        done = ~alive
                        z_out[idx[done]] = z[done]
                        iters_out[idx[done]] = steps[done].long()
                        conv_out[idx[done]] = hit[done]
                        keep = alive
                        idx, z, m, v, steps, x_a = idx[keep], z[keep], m[keep], v[keep], steps[keep], x_a[keep]
                        alive, hit = alive[keep], hit[keep]
                    if n_alive == 0:
                        break
                    # the progress bar of ganad score / verbose detectors (no-op without one)
                    within_batch(max(1.0 - n_alive / (R * n), (it + 1) / max(int(self.n_max), 1)),
                                 f"search {it + 1}/{int(self.n_max)}, {R * n - n_alive}/{R * n} at eps")
            if idx.numel():
                z_out[idx] = z.detach()
                iters_out[idx] = steps.long()
            with torch.inference_mode():
                x_hat = G(z_out)
                loss_all, dist_all = self._loss_of(x_hat, D, xr)
        finally:
            for p, r in zip(G.parameters(), req):
                p.requires_grad_(r)
        conv_out &= torch.isfinite(dist_all)
        if R > 1:  # each sample keeps the restart with the lowest search loss (= distance without a feature term);
            # a diverged restart (NaN / inf loss) loses to any finite one (argmin would pick a NaN)
            loss_all = torch.where(torch.isfinite(loss_all), loss_all, torch.full_like(loss_all, float("inf")))
            best = loss_all.reshape(R, n).argmin(0)
            rows = best * n + torch.arange(n, device=dev)
        else:
            rows = torch.arange(n, device=dev)
        return SearchResult(z=z_out[rows].clone(), x_hat=x_hat[rows].clone(), distance=dist_all[rows].clone(),
                            iterations=iters_out[rows].clone(), converged=conv_out[rows].clone())
