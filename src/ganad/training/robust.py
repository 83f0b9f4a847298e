"""Robust training on contaminated data: down-weight the training samples that look anomalous.

Given an assumed contamination rate c, after ``warmup`` epochs of plain training, at the
start of every epoch the current networks score every training sample with a *cheap proxy*
(no latent search) and the most anomalous ones are down-weighted in the next epoch's losses:

- ``mode='hard'``: weight 0 for the ``ceil(c · n)`` highest proxy scores, 1 for the rest
  (trimmed / rejected samples);
- ``mode='soft'``: ``w = exp(−max(s − q, 0) / σ_s)`` with q the (1 − c) quantile of the proxy
  scores and σ_s their MAD·1.4826: samples up to q keep weight 1, samples above it decay
  smoothly (one σ_s above q: 0.37), so a borderline sample is not thrown away outright.

The proxy is the method's choice (``BaseGANDetector._robust_proxy``, ``fit(robust_proxy=…)``):

- ``'generated'`` (default): mean squared distance from x to the nearest of 512 fixed samples
  G(z), a latent search reduced to picking the best of 512 codes: one matrix product per
  batch, and it measures what the final score measures (can G produce x?);
- ``'encoder'``: the encoder residual mean |x − G(E(x))|, for methods whose encoder trains
  jointly with G (BiGAN / ALAD / GANomaly-style);
- ``'discriminator'``: −log σ(D(x)) on the real sample. Cheapest, but measured to be
  unreliable: no fake sample ever lands near a far-away real outlier, so the discriminator
  often finds outliers *more* real than inliers (kept for comparison only). The weights enter the losses through the training
loop's ``weight_fn`` hook: every term computed from a training sample (real terms of the
discriminators, the encoder / generator terms on (x, E(x)), fakes made from x such as ALAD's
(x, G(E(x))) pair, reconstruction losses) is weighted; terms of prior samples are not.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ganad.exceptions import InputError, _fmt
from ganad.params import is_int
from ganad.scoring import components as C

ROBUST_MODES = ("hard", "soft")


def check_robust(contamination, warmup, mode) -> tuple[float, int, str]:
    c = float(contamination)
    if not 0.0 < c < 0.5:
        raise InputError(_fmt("robust_contamination", f"is {contamination}", "pass the assumed fraction of anomalies in the training data, in (0, 0.5)"))
    if not is_int(warmup) or warmup < 0:
        raise InputError(_fmt("robust_warmup", f"is {warmup!r}", "pass a non-negative number of plain epochs before down-weighting starts"))
    if mode not in ROBUST_MODES:
        raise InputError(_fmt("robust_mode", f"is {mode!r}", f"use one of {', '.join(ROBUST_MODES)}"))
    return c, int(warmup), mode


def robust_weights(scores: torch.Tensor, contamination: float, mode: str = "hard") -> torch.Tensor:
    """Per-sample weights in [0, 1] from proxy anomaly scores (higher = more anomalous)."""
    s = scores.detach().to(torch.float64).reshape(-1)
    n = s.numel()
    # ⌈c·n⌉ rows; the product's rounding (0.07 · 100 = 7.000000000000001) must not add one more
    k = min(max(int(math.ceil(contamination * n - 1e-9)), 0), n - 1)
    if mode == "hard":
        w = torch.ones(n, dtype=torch.float64)
        if k > 0:
            w[torch.topk(s, k).indices] = 0.0
        return w.to(torch.float32)
    q = torch.quantile(s, 1.0 - contamination)
    mad = (s - s.median()).abs().median() * 1.4826
    scale = mad if float(mad) > 1e-12 else s.std().clamp_min(1e-12)
    return torch.exp(-(s - q).clamp_min(0) / scale).to(torch.float32)


class RobustWeighter:
    """The ``weight_fn(epoch, stage)`` of the training loop for robust training.

    ``proxy(stage) -> (n,) tensor`` scores the whole training set with the current networks.
    ``log`` keeps, per stage, the fraction of samples down-weighted below 0.5 and the mean
    weight of every epoch (0 and 1 during warm-up); ``weights`` the latest weights.
    """

    def __init__(self, proxy: Callable[[str], torch.Tensor], n: int, contamination: float, warmup: int, mode: str = "hard"):
        self.proxy, self.n = proxy, int(n)
        self.contamination, self.warmup, self.mode = check_robust(contamination, warmup, mode)
        self.log: dict[str, list[float]] = {}
        self.weights: torch.Tensor | None = None

    def __call__(self, epoch: int, stage: str) -> torch.Tensor | None:
        if epoch < self.warmup:
            self._record(stage, 0.0, 1.0)
            return None
        w = robust_weights(self.proxy(stage), self.contamination, self.mode)
        self.weights = w
        self._record(stage, float((w < 0.5).float().mean()), float(w.mean()))
        return w

    def _record(self, stage, excluded, mean_w):
        self.log.setdefault(f"{stage}/robust_excluded_fraction", []).append(excluded)
        self.log.setdefault(f"{stage}/robust_mean_weight", []).append(mean_w)


def batched_proxy(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, modules, device, batch_size: int = 1024,
                  flatten: bool = True) -> torch.Tensor:
    """Apply ``fn`` to ``X`` in batches without gradients, ``modules`` in eval mode (restored after)."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            out = [fn(X[i:i + batch_size].to(device)).detach().cpu() for i in range(0, X.shape[0], batch_size)]
            out = [o.reshape(-1) for o in out] if flatten else out
    finally:
        for m, t in zip(modules, modes):
            m.train(t)
    return torch.cat(out)


class RobustTraining:
    """Robust training's part of a detector (``fit(robust_contamination=...)``), mixed into
    :class:`ganad.detectors.base.BaseGANDetector`: configuring it, the proxy scores, the loop's
    ``weight_fn`` and the fitted ``robust_weights_`` / ``robust_``. Also the proxy scores the
    label-free epoch selection uses (``_proxy``)."""

    #: proxy score of robust training: 'generated' = mean squared distance of x to the nearest of 512
    #: samples G(z) (a latent search with the search replaced by picking the best of 512 fixed codes);
    #: 'encoder' = mean |x - G(E(x))| (methods whose encoder trains jointly with G); 'discriminator' =
    #: -log σ(D(x)) on the real sample (cheapest, but a discriminator often finds far-away real
    #: outliers *more* real, since no fake ever lands there: not recommended)
    _robust_proxy_kind: str = "generated"
    _robust_proxy_kinds: tuple[str, ...] = ("generated", "encoder", "discriminator")

    def _set_robust(self, contamination, warmup, mode, proxy=None):
        self.__dict__.pop("_robust_cfg", None)
        for attr in ("robust_", "robust_weights_", "_robust_weighter"):
            self.__dict__.pop(attr, None)
        if contamination is None:
            return
        warmup = max(1, int(self.epochs) // 3) if warmup is None else warmup
        self._robust_cfg = check_robust(contamination, warmup, mode)
        proxy = self._robust_proxy_kind if proxy is None else proxy
        if proxy not in self._robust_proxy_kinds or (proxy == "encoder" and "E" not in self._networks):
            raise InputError(_fmt("robust_proxy", f"is {proxy!r}", f"use one of {[k for k in self._robust_proxy_kinds if k != 'encoder' or 'E' in self._networks]}"))
        self._robust_proxy_used = proxy

    def _robust_proxy(self, Xt: torch.Tensor, stage: str) -> torch.Tensor:
        """Cheap anomaly score of every training sample under the networks being trained."""
        return self._proxy(Xt, self.__dict__.get("_robust_proxy_used", self._robust_proxy_kind))

    def _train_code(self, x: torch.Tensor) -> torch.Tensor:
        """The code of a batch under the encoder being trained (VAEGAN: the posterior mean)."""
        return self.nets_["E"](x)

    def _proxy(self, Xt: torch.Tensor, kind: str) -> torch.Tensor:
        """Per-sample proxy score under the networks being trained (see ``_robust_proxy_kind``)."""
        if kind == "encoder":
            G, E = self.nets_["G"], self.nets_["E"]
            return batched_proxy(lambda x: C.residual(x, G(self._train_code(x)), 1), Xt, [G, E], self.device_,
                                 int(self.score_batch_size))
        if kind == "generated":
            G = self.nets_["G"]
            z = self.prior_.sample(512, self.latent_dim, generator=torch.Generator().manual_seed(self.seed_ + 1))
            fake = batched_proxy(lambda zb: G(zb), z, [G], self.device_, int(self.score_batch_size), flatten=False)
            fake = fake.reshape(fake.shape[0], -1).to(self.device_)
            return batched_proxy(lambda x: torch.cdist(x.flatten(1), fake).min(1).values.pow(2) / fake.shape[1], Xt, [G],
                                 self.device_, int(self.score_batch_size))
        D = self.nets_["D"]
        return batched_proxy(lambda x: torch.nn.functional.softplus(-D(x)[0].reshape(-1)), Xt, [D], self.device_,
                             int(self.score_batch_size))

    def _finish_robust(self):
        w = self.__dict__.pop("_robust_weighter", None)
        cfg = self.__dict__.pop("_robust_cfg", None)
        if w is None or cfg is None:
            return
        self.history_.update(w.log)
        n = w.n
        trained = w.weights.numpy().astype(np.float64) if w.weights is not None else np.ones(n)
        val = self.__dict__.get("validation_index_")
        if val is not None and len(val):  # one weight per row of X; NaN for the held-out rows (never trained on)
            full = np.full(n + len(val), np.nan)
            full[np.setdiff1d(np.arange(n + len(val)), val)] = trained
            trained = full
        self.robust_weights_ = trained
        self.robust_ = {"contamination": cfg[0], "warmup": cfg[1], "mode": cfg[2], "proxy": self.__dict__.pop("_robust_proxy_used"),
                        "final_excluded_fraction": float(np.mean(self.robust_weights_[~np.isnan(self.robust_weights_)] < 0.5))}

    def _weight_fn(self, Xt):
        cfg = self.__dict__.get("_robust_cfg")
        if cfg is None:
            return None
        self._robust_weighter = RobustWeighter(lambda stage: self._robust_proxy(Xt, stage), Xt.shape[0], *cfg)
        return self._robust_weighter
