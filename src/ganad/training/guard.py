"""Divergence guard of the one training loop (issue 13): symptoms are detected at the step where
they appear; training then rolls back to the last good state (the start of the epoch, or the
checkpoint written since, so that a resumed run rolls back to the same state), lowers
the stage's learning rates by ``divergence_lr_factor`` and retries; once ``divergence_retries``
roll-backs are spent, the next symptom stops training with :class:`ganad.exceptions.TrainingDiverged`
naming the stage, the epoch, the step and the symptom.

Symptoms, checked after every optimisation step with one device-to-host read of a few numbers:

* **non-finite loss**: any loss the step returns is NaN or ±inf;
* **non-finite gradient**: the gradient norm of an optimiser's parameters (computed in an
  optimiser step pre-hook, before the update is applied) is NaN or ±inf;
* **non-finite weights**: every weight and buffer, checked at the end of every epoch (before
  the epoch counts). A trained *weight* cannot turn NaN / inf without the gradient check firing
  first: Adam's update is bounded by a few learning rates per coordinate whatever the gradient's
  size. BatchNorm's running statistics can overflow while the training-mode forward, which
  normalises with the batch's own statistics, stays finite (seen with ALAD at learning rate
  ×1e8): the end-of-epoch check catches them (a per-step pass over every weight cost about 2 %
  of GANomaly's training time in one profile);
* **exploding gradient norm**: a gradient norm above both ``1e4`` and 100 × the median of that
  optimiser's last 100 norms (after 20 steps of history). Adam divides by the running RMS of the
  gradient, so a gradient that is large *all along* is harmless, but a sudden spike of two orders
  of magnitude moves every weight by up to (1 − β₁) / √(1 − β₂) ≈ 16 learning rates at once
  (β = (0.5, 0.999)) and is how Adam-trained GANs leave their regime; the absolute floor keeps
  the early, noisy steps of small networks (norms well below 1e4) from ever counting;
* **discriminator collapse** (stages with a BCE discriminator loss named in ``Stage.collapse``:
  AnoGAN / f-AnoGAN's GAN stage, BiGAN): the discriminator loss below 1e-4 for 500 consecutive
  steps. With the BCE loss −log σ(D(x)) − log(1 − σ(D(G(z)))) < 1e-4 the discriminator gives
  every fake a probability below 1e-4, so the generator's own loss −log σ(D(G(z))) is above 9
  (exploding) and the discriminator is saturated: the regime where the generator's gradient
  carries no information about the data (Arjovsky & Bottou, ICLR 2017, sec. 2) and never
  recovers. 500 steps rule out a momentary win. Methods whose generator also learns from a
  reconstruction loss (GANomaly, β-VAEGAN, ALAD, TadGAN) keep training usefully when their
  discriminator wins (GANomaly's authors even reinitialise it), so the criterion is not applied
  to them.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from functools import partial

import torch

WINDOW = 100
WARMUP = 20
SPIKE = 100.0
FLOOR = 1e4
COLLAPSE_LOSS = 1e-4
COLLAPSE_STEPS = 500


class DivergenceGuard:
    def __init__(self, lr_factor: float = 0.1, retries: int = 1):
        self.lr_factor = float(lr_factor)
        self.retries = int(retries)
        self.used = 0
        self.events: list[dict] = []
        self._norms: dict[str, deque] = {}
        self._collapse = 0
        self._grads: list = []
        self._handles: list = []

    # ------------------------------------------------------------------ hooks
    def attach(self, si: int, stage, nets=None) -> None:
        """Watch the optimisers of stage ``si`` (replaces the previous stage's hooks); an optimiser
        is named by the networks of ``nets`` (a ModuleDict) whose parameters it updates."""
        self.detach()
        owner = {id(p): k for k, m in nets.items() for p in m.parameters()} if nets is not None and hasattr(nets, "items") else {}
        for j, opt in enumerate(stage.optimizers):
            names = sorted({owner[id(p)] for g in opt.param_groups for p in g["params"] if id(p) in owner})
            key = f"{stage.name}/{'+'.join(names)}" if names else f"{stage.name}/{j}"
            self._handles.append(opt.register_step_pre_hook(partial(self._pre, key)))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._grads = []

    def start_stage(self) -> None:
        self._collapse = 0

    @torch.no_grad()
    def _pre(self, key, opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            self._grads.append((key, torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))))

    # ------------------------------------------------------------------ check
    def check_weights(self, nets) -> str | None:
        from ganad.training.checkpoint import finite_weights
        return None if nets is None or finite_weights(nets) else "non-finite weights or buffers at the end of the epoch"

    def check(self, stage, losses: dict) -> str | None:
        """The symptom of the step that just ran, or None (one host read per step)."""
        names = list(losses)
        vec = [losses[k].detach().float().sum() for k in names] + [v for _, v in self._grads]
        gkeys = [k for k, _ in self._grads]
        self._grads = []
        if not vec:
            return None
        dev = vec[0].device
        vals = torch.stack([v.to(dev) for v in vec]).tolist()
        lv, gv = vals[:len(names)], vals[len(names):]
        bad = [k for k, v in zip(names, lv) if not math.isfinite(v)]
        if bad:
            return f"non-finite loss ({', '.join(f'{k}={v}' for k, v in zip(names, lv) if k in bad)})"
        for k, v in zip(gkeys, gv):
            if not math.isfinite(v):
                return f"non-finite gradient (optimiser {k})"
        for k, v in zip(gkeys, gv):
            dq = self._norms.setdefault(k, deque(maxlen=WINDOW))
            if len(dq) >= WARMUP:
                med = statistics.median(dq)
                if v > FLOOR and v > SPIKE * med:
                    return (f"exploding gradient norm {v:.3g} (optimiser {k}; median of its last {len(dq)} steps "
                            f"{med:.3g}; limit max({FLOOR:g}, {SPIKE:g} x median))")
            dq.append(v)
        key = getattr(stage, "collapse", None)
        if key is not None and key in names:
            v = lv[names.index(key)]
            self._collapse = self._collapse + 1 if v < COLLAPSE_LOSS else 0
            if self._collapse >= COLLAPSE_STEPS:
                self._collapse = 0
                return (f"discriminator collapse ({key} below {COLLAPSE_LOSS:g} for {COLLAPSE_STEPS} consecutive steps: "
                        "the discriminator rejects every generated sample and the generator gets no useful gradient)")
        return None

    def record(self, stage, epoch: int, symptom: str) -> None:
        """After the roll-back: count it, log it, lower the stage's learning rates."""
        self.used += 1
        self._grads, self._collapse = [], 0
        for opt in stage.optimizers:
            for g in opt.param_groups:
                g["lr"] = g["lr"] * self.lr_factor
        self.events.append({"stage": stage.name, "epoch": epoch + 1, "symptom": symptom, "lr_factor": self.lr_factor})

    # ------------------------------------------------------------------ checkpoint
    def state(self) -> dict:
        return {"used": self.used, "events": self.events, "norms": {k: list(v) for k, v in self._norms.items()},
                "collapse": self._collapse}

    def load_state(self, st: dict) -> None:
        self.used = int(st["used"])
        self.events = [dict(e) for e in st["events"]]
        self._norms = {k: deque(v, maxlen=WINDOW) for k, v in st["norms"].items()}
        self._collapse = int(st["collapse"])
