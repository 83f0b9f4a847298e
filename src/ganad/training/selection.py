"""Label-free choice of the weights to keep: an exponential moving average of the weights
and the selection of the best epoch on held-out *normal* data.

GAN training does not converge to a point: the generator and the discriminator keep moving,
and the weights after the last epoch are one draw from that walk. Two standard remedies,
both offered by the one training loop to every method:

* **EMA of the weights** (Yazıcı et al., ICLR 2019, "The unusual effectiveness of averaging in
  GAN training"; Zenati et al.'s EGBAD / ALAD code scores with averaged weights): a shadow copy
  θ̄ ← d·θ̄ + (1 − d)·θ after every optimisation step, with the warm-up d_t = min(d, (1 + t) / (10 + t))
  so that short runs are not dominated by the initial weights. At the end of a stage that is not
  the last (f-AnoGAN's GAN stage) the averaged weights replace the raw ones, so the next stage
  (the encoder) trains against the averaged generator it will be scored with.
* **Selection on held-out normal data**: after every epoch of the last stage the loop asks the
  method for a *label-free criterion* on the held-out slice (lower = better; by default the
  mean L1 reconstruction residual of held-out normal samples, see
  :meth:`ganad.detectors.base.BaseGANDetector._selection_criterion`) and keeps the weights of
  the best epoch. The first third of the epochs is a warm-up that is never selected (the
  adversarial game is still far from its regime there). With ``patience`` the loop stops once
  the criterion has not improved for that many epochs.

No label and no test sample is ever used.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


def _power_vector(key: str) -> bool:
    """Whether a state-dict entry is a spectral norm's power-iteration vector u or v (unit vectors, the
    state of the power method rather than weights: an average of them is not a unit vector and would
    make the eval-mode σ = uᵀWv far smaller than the averaged weight's largest singular value)."""
    return ".parametrizations." in f".{key}" and key.rsplit(".", 1)[-1] in ("_u", "_v")


class Selector:
    """EMA and best-epoch selection over the networks ``nets`` (a ModuleDict)."""

    def __init__(self, nets: nn.ModuleDict, criterion: Callable[[], float] | None, *, ema: float | None = None,
                 patience: int | None = None, warmup_fraction: float = 1 / 3):
        self.nets = nets
        self.criterion = criterion
        self.decay = float(ema) if ema else None
        self.patience = patience
        self.warmup_fraction = warmup_fraction
        self.history: dict[str, list[float]] = {}
        self.info: dict = {}  # the summary of finish(), set by the training loop
        self.best: tuple[float, int, dict] | None = None
        self.stopped_at: int | None = None
        self._t = 0
        # the float weights and buffers but spectral norm's u and v, listed once (training updates
        # them in place): no state_dict walk per optimisation step
        self._live = [t for k, t in self.nets.state_dict(keep_vars=True).items() if t.is_floating_point() and not _power_vector(k)]
        self._reset_shadow()

    # ------------------------------------------------------------------ EMA
    def _tensors(self) -> list[torch.Tensor]:
        return self._live

    def _reset_shadow(self):
        self._t = 0
        if self.decay is None:
            self.shadow = None
            return
        self.shadow = [t.detach().clone() for t in self._tensors()]

    @torch.no_grad()
    def after_step(self):
        if self.shadow is None:
            return
        self._t += 1
        d = min(self.decay, (1 + self._t) / (10 + self._t))
        torch._foreach_lerp_(self.shadow, [t.detach() for t in self._live], 1.0 - d)

    @torch.no_grad()
    def _swap(self):
        """Exchange the live weights and the averaged ones (in place, no allocation)."""
        for s, t in zip(self.shadow, self._tensors()):
            tmp = t.detach().clone()
            t.detach().copy_(s)
            s.copy_(tmp)

    def end_stage(self, last: bool):
        """At the end of a stage that is not the last, the averaged weights become the live ones."""
        if self.shadow is not None and not last:
            self._swap()
            self._reset_shadow()

    # ------------------------------------------------------------------ selection
    def _evaluate(self) -> float:
        modes = {name: m.training for name, m in self.nets.named_modules()}
        self.nets.eval()
        try:
            with torch.no_grad():
                return float(self.criterion())
        finally:
            for name, m in self.nets.named_modules():
                m.training = modes[name]

    def after_epoch(self, epoch: int, epochs: int) -> bool:
        """Called after every epoch of the last stage; returns True to stop training early."""
        if self.criterion is None:
            return False
        if self.shadow is not None:
            self._swap()
        try:
            value = self._evaluate()
            snapshot = None
            warm = epoch + 1 > max(1, int(math.ceil(epochs * self.warmup_fraction))) or epoch == epochs - 1
            if warm and math.isfinite(value) and (self.best is None or value < self.best[0]):
                snapshot = {k: v.detach().clone() for k, v in self.nets.state_dict().items()}
        finally:
            if self.shadow is not None:
                self._swap()
        self.history.setdefault("select/criterion", []).append(value)
        if snapshot is not None:
            self.best = (value, epoch, snapshot)
        if self.patience is not None and self.best is not None and epoch - self.best[1] >= self.patience:
            self.stopped_at = epoch
            return True
        return False

    def finish(self) -> dict:
        """Load the weights to keep (best epoch, else the averaged or last ones); returns a summary."""
        info: dict = {"ema": self.decay, "criterion": "held-out" if self.criterion is not None else None}
        if self.best is not None:
            self.nets.load_state_dict(self.best[2])
            info.update(best_epoch=self.best[1] + 1, best_value=self.best[0])
        elif self.shadow is not None:
            self._swap()
        if self.stopped_at is not None:
            info["stopped_at_epoch"] = self.stopped_at + 1
        self.best = None
        return info

