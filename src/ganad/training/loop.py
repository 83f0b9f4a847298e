"""The one training loop every method shares.

A method contributes its networks and losses as a list of :class:`Stage` objects (most
methods have one stage; f-AnoGAN trains its encoder in a second stage with the GAN frozen).
Each stage has a ``step(x, w)`` that performs one optimisation step on a mini-batch ``x``
with per-sample weights ``w`` (``None`` = uniform; robust training down-weights suspected
anomalies) and returns a dict of detached loss tensors. The loop owns everything else:
shuffling with a seeded generator, batching, devices, the progress bar, the per-epoch
loss history and callbacks. Losses are accumulated on the device and read back once per
epoch, never per step.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import torch

logger = logging.getLogger("ganad")


@dataclass
class Stage:
    name: str
    epochs: int
    step: Callable[[torch.Tensor, torch.Tensor | None], dict[str, torch.Tensor]]
    modules: list[torch.nn.Module] = field(default_factory=list)  # put in train mode during the stage
    on_epoch: Callable[[int], None] | None = None  # called with the epoch index before each epoch (schedules, warm-ups)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' -> cuda when available, else cpu; any other device must exist here, else an
    :class:`~ganad.exceptions.InputError` (a ValueError) naming it, the problem and the fix."""
    from ganad.exceptions import InputError
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fix = "use device='cpu' or 'auto' (CLI: --device cpu or --device auto)"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"device: {device!r} is not a device ({exc}). Fix: {fix}".replace("\n", " ")) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device: {device!r} was requested but CUDA is not available here "
                             f"(torch {torch.__version__} sees no CUDA GPU). Fix: {fix}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device: {device!r} was requested but this machine has {torch.cuda.device_count()} CUDA device(s). "
                             f"Fix: use an index below {torch.cuda.device_count()}, or 'cuda' / 'auto'")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            why = ("this torch build has no MPS support" if mps is None or not mps.is_built()
                   else "no Apple-silicon GPU (Metal) is available on this machine")
            raise InputError(f"device: {device!r} (Apple's Metal GPU) was requested but {why}. Fix: {fix}; "
                             "on a Mac with Apple silicon, install a torch build with MPS")
    elif dev.type != "cpu":
        raise InputError(f"device: {device!r} is not supported by ganad (device type {dev.type!r}). Fix: {fix}, or 'cuda' / 'mps' where available")
    return dev


def train(stages: list[Stage], X: torch.Tensor, *, batch_size: int, generator: torch.Generator,
          device: torch.device, verbose: bool | int = True,
          weight_fn: Callable[[int, str], torch.Tensor | None] | None = None,
          callbacks: list[Callable[[str, int, dict[str, float]], None]] | None = None,
          selector=None, ddp=None) -> dict[str, list[float]]:
    """Run the stages in order on data ``X`` (a CPU tensor, already scaled).

    ``weight_fn(epoch, stage)`` may return per-sample weights for the whole training set
    (robust training); ``callbacks`` are called with ``(stage, epoch, mean_losses)`` after
    every epoch. ``selector`` (a :class:`ganad.training.selection.Selector`) keeps an average of
    the weights and chooses, label-free, the epoch of the last stage whose weights are kept.
    ``ddp`` (a :class:`ganad.training.distributed.DDPContext`): distributed data-parallel training,
    each rank stepping on its slice of every global batch (see :mod:`ganad.training.distributed`).
    Returns the history: ``{"<stage>/<loss>": [per-epoch mean, ...]}``.
    """
    n = X.shape[0]
    bs = max(1, min(int(batch_size), n))
    history: dict[str, list[float]] = {}
    total_epochs = sum(s.epochs for s in stages)
    progress = _Progress(total_epochs * ((n + bs - 1) // bs), verbose and (ddp is None or ddp.rank == 0))
    min_batch = 2 if ddp is None else ddp.min_batch
    try:
        for si, stage in enumerate(stages):
            last = si == len(stages) - 1
            for m in stage.modules:
                m.train()
            for epoch in range(stage.epochs):
                if stage.on_epoch is not None:
                    stage.on_epoch(epoch)
                weights = weight_fn(epoch, stage.name) if weight_fn is not None else None
                if ddp is not None and weights is not None:
                    weights = ddp.broadcast(weights)  # rank 0's, so that every rank weights alike
                perm = torch.randperm(n, generator=generator)
                sums: dict[str, torch.Tensor] = {}
                n_steps = 0
                for start in range(0, n, bs):
                    idx = perm[start:start + bs]
                    if idx.numel() < min_batch and n >= 2:  # BatchNorm needs two samples; fold a lone tail into the epoch's next pass
                        continue
                    with (nullcontext(idx) if ddp is None else ddp.step(idx)) as idx:  # DDP: this rank's slice
                        xb = X[idx].to(device, non_blocking=True)
                        wb = weights[idx].to(device) if weights is not None else None
                        losses = stage.step(xb, wb)
                    for k, v in losses.items():
                        sums[k] = sums[k] + v.detach() if k in sums else v.detach().clone()
                    n_steps += 1
                    if selector is not None:
                        selector.after_step()
                    progress.advance()
                means = {k: float(v) / max(n_steps, 1) for k, v in sums.items()}  # one sync per epoch
                if ddp is not None:
                    means = ddp.average(means)
                for k, v in means.items():
                    history.setdefault(f"{stage.name}/{k}", []).append(v)
                progress.show(stage.name, epoch + 1, stage.epochs, means)
                bad = [k for k, v in means.items() if not torch.isfinite(torch.tensor(v))]
                if bad:
                    raise FloatingPointError(
                        f"training: loss {bad} became non-finite in stage {stage.name!r} epoch {epoch + 1}. "
                        "Fix: lower the learning rates (lr_g, lr_d), use objective='wgan-gp' or spectral_norm=True, "
                        "and check the input scaling")
                for cb in callbacks or ():
                    cb(stage.name, epoch, means)
                if selector is not None and last and selector.after_epoch(epoch, stage.epochs):
                    progress.advance((stage.epochs - epoch - 1) * ((n + bs - 1) // bs))
                    break
            if selector is not None:
                selector.end_stage(last)
            for m in stage.modules:
                m.eval()
        if selector is not None:
            selector.info = selector.finish()
            history.update(selector.history)
    finally:
        progress.close()
    return history


class _Progress:
    """A rich progress bar showing the latest epoch's mean losses; silent when verbose is off."""

    def __init__(self, total: int, verbose):
        self.bar = None
        if verbose:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[losses]}"), transient=False)
            self.task = self.bar.add_task("training", total=total, losses="")
            self.bar.start()

    def advance(self, k: int = 1):
        if self.bar is not None:
            self.bar.advance(self.task, k)

    def show(self, stage, epoch, epochs, means):
        msg = " ".join(f"{k}={v:.3g}" for k, v in means.items())
        logger.debug("%s epoch %d/%d %s", stage, epoch, epochs, msg)
        if self.bar is not None:
            self.bar.update(self.task, description=f"{stage} {epoch}/{epochs}", losses=msg)

    def close(self):
        if self.bar is not None:
            self.bar.stop()
