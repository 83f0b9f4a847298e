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
    on_epoch: Callable[[int], None] | None = None  # called with the epoch index before each epoch (schedules, warm-ups); must be idempotent (a resumed epoch calls it again)
    optimizers: list[torch.optim.Optimizer] = field(default_factory=list)  # checkpointed; the divergence guard watches them and lowers their learning rates
    state: dict = field(default_factory=dict)  # the step's own counters (n_critic phase, last losses): checkpointed with the run
    collapse: str | None = None  # name of a BCE discriminator loss whose sustained ~0 means collapse (see training/guard.py)


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


#: an epoch's last batch of fewer samples than this joins the batch before it: BatchNorm's batch
#: statistics of a handful of samples are degenerate (two samples normalise every feature to ±1),
#: and ADBench thyroid's 2-sample tail (1,986 rows, batches of 32) gave gradient norms 150 times
#: the median, which the divergence guard rightly refused on every seed
MIN_TAIL = 8


def train(stages: list[Stage], X: torch.Tensor, *, batch_size: int, generator: torch.Generator,
          device: torch.device, verbose: bool | int = True,
          weight_fn: Callable[[int, str], torch.Tensor | None] | None = None,
          callbacks: list[Callable[[str, int, dict[str, float]], None]] | None = None,
          selector=None, nets: torch.nn.Module | None = None, checkpointer=None, resume=None,
          guard=None, ddp=None) -> dict[str, list[float]]:
    """Run the stages in order on data ``X`` (a CPU tensor, already scaled).

    ``weight_fn(epoch, stage)`` may return per-sample weights for the whole training set
    (robust training); ``callbacks`` are called with ``(stage, epoch, mean_losses)`` after
    every epoch. ``selector`` (a :class:`ganad.training.selection.Selector`) keeps an average of
    the weights and chooses, label-free, the epoch of the last stage whose weights are kept.

    Issue 13 (they need ``nets``, the module holding every network): ``checkpointer`` (a
    :class:`ganad.training.checkpoint.Checkpointer`) writes the run's whole state every so many
    steps / seconds and at the end; ``resume`` (a checkpoint's snapshot) continues a run from it;
    ``guard`` (a :class:`ganad.training.guard.DivergenceGuard`) checks every step and rolls back
    to the last good state (the epoch start or the latest checkpoint) on a symptom.
    ``ddp`` (a :class:`ganad.training.distributed.DDPContext`): distributed data-parallel training,
    each rank stepping on its slice of every global batch (see :mod:`ganad.training.distributed`).
    Returns the history: ``{"<stage>/<loss>": [per-epoch mean, ...]}``.
    """
    from ganad.training.checkpoint import LoopState, TrainingState

    n = X.shape[0]
    bs = max(1, min(int(batch_size), n))
    per_epoch = (n + bs - 1) // bs
    if 0 < n % bs < MIN_TAIL and per_epoch > 1:  # a short tail joins the epoch's last full batch
        per_epoch -= 1
    total_epochs = sum(s.epochs for s in stages)
    ts = None
    if nets is not None and (checkpointer is not None or resume is not None or guard is not None):
        ts = TrainingState(nets, stages, generator, device, selector=selector, weighter=weight_fn, guard=guard)
    if resume is not None:
        ts.check(resume, n, per_epoch)  # a hand-edited or damaged checkpoint file: one clear error here, not a traceback below
    ls = ts.restore(resume) if resume is not None else LoopState()
    history = ls.history
    progress = _Progress(total_epochs * per_epoch, verbose and (ddp is None or ddp.rank == 0))
    min_batch = 2 if ddp is None else ddp.min_batch
    progress.advance(ls.done_steps)

    def save():
        snap = ts.capture(ls)
        checkpointer.save(snap)
        return snap  # also the guard's roll-back point, once a good step has followed it

    try:
        for si, stage in enumerate(stages):
            last = si == len(stages) - 1
            if si < ls.stage:  # done before the resumed position: as the uninterrupted run leaves them
                for m in stage.modules:
                    m.eval()
                continue
            for m in stage.modules:
                m.train()
            if guard is not None:
                guard.attach(si, stage, nets)
                if ls.epoch == 0 and ls.step == 0:
                    guard.start_stage()
            # the guard's roll-back point: the latest snapshot (epoch start or checkpoint) that a good
            # step has followed. Retried from a snapshot taken just before the failing step, the step
            # would compute the same gradient from the same weights, batch and random state (the
            # lowered learning rate acts only on its update) and fail the same way every time.
            good = None
            while ls.epoch < stage.epochs:
                epoch = ls.epoch
                snap = ts.capture(ls) if guard is not None and ts is not None else None  # the latest state, not yet followed by a good step
                if stage.on_epoch is not None:
                    stage.on_epoch(epoch)
                if ls.step == 0:
                    ls.weights = weight_fn(epoch, stage.name) if weight_fn is not None else None
                    if ddp is not None and ls.weights is not None:
                        ls.weights = ddp.broadcast(ls.weights)  # rank 0's, so that every rank weights alike
                    ls.perm = torch.randperm(n, generator=generator)
                    ls.sums, ls.n_steps = {}, 0
                weights, perm, sums = ls.weights, ls.perm, ls.sums
                symptom = None
                for bi in range(ls.step, per_epoch):
                    start = bi * bs
                    idx = perm[start:start + bs] if bi < per_epoch - 1 else perm[start:]
                    if idx.numel() < min_batch and n >= 2:  # BatchNorm needs two samples; fold a lone tail into the epoch's next pass
                        ls.step = bi + 1
                        continue
                    with (nullcontext(idx) if ddp is None else ddp.step(idx)) as idx:  # DDP: this rank's slice
                        xb = X[idx].to(device, non_blocking=True)
                        wb = weights[idx].to(device) if weights is not None else None
                        losses = stage.step(xb, wb)
                    if guard is not None:
                        symptom = guard.check(stage, losses)
                        if ddp is not None:  # every rank rolls back together, or none does
                            symptom = ddp.agree_symptom(symptom)
                        if symptom is not None:
                            break
                    good = snap
                    for k, v in losses.items():
                        sums[k] = sums[k] + v.detach() if k in sums else v.detach().clone()
                    ls.n_steps += 1
                    if selector is not None:
                        selector.after_step()
                    progress.advance()
                    ls.step, ls.done_steps = bi + 1, ls.done_steps + 1
                    if checkpointer is not None:
                        checkpointer.step()
                        if bi + 1 < per_epoch and checkpointer.due():
                            s = save()
                            snap = s if guard is not None else None
                if symptom is None and guard is not None:
                    symptom = guard.check_weights(nets)
                    if ddp is not None:
                        symptom = ddp.agree_symptom(symptom)
                if symptom is not None:
                    back = good if good is not None else snap  # none followed by a good step yet (the stage's or a resumed run's first): the latest
                    _roll_back(guard, ts, back, stage, epoch, ls, symptom)
                    ls = ts.restore(back)
                    history = ls.history
                    guard.record(stage, epoch, symptom)
                    # the retry starts from `back` with lowered rates; a roll-back never reaches back past
                    # it (the guard's count of roll-backs lives in the snapshots, so it only grows)
                    good = None
                    continue
                means = {k: float(v) / max(ls.n_steps, 1) for k, v in sums.items()}  # one sync per epoch
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
                ls.epoch, ls.step, ls.perm, ls.weights, ls.sums, ls.n_steps = epoch + 1, 0, None, None, {}, 0
                if selector is not None and last and selector.after_epoch(epoch, stage.epochs):
                    progress.advance((stage.epochs - epoch - 1) * per_epoch)
                    ls.done_steps += (stage.epochs - epoch - 1) * per_epoch
                    break
                if checkpointer is not None and ls.epoch < stage.epochs and checkpointer.due():
                    save()
            if selector is not None:
                selector.end_stage(last)
            for m in stage.modules:
                m.eval()
            ls.stage, ls.epoch, ls.step = si + 1, 0, 0
            if checkpointer is not None and (last or checkpointer.due()):
                save()  # at the end of a stage when due, and always at the end of training
        if guard is not None:
            guard.detach()
        if selector is not None:
            selector.info = selector.finish()
            history.update(selector.history)
    finally:
        progress.close()
        if guard is not None:
            guard.detach()
    return history


def _roll_back(guard, ts, snap, stage, epoch, ls, symptom) -> None:
    """Raise TrainingDiverged once the guard's roll-backs are spent, else log the roll-back."""
    from ganad.exceptions import TrainingDiverged
    where = f"stage {stage.name!r} epoch {epoch + 1} step {ls.step + 1}"
    if snap is None or guard.used >= guard.retries:
        tried = (f"after {guard.used} roll-back(s) to the last good state with the learning rates lowered x{guard.lr_factor:g} each time"
                 if guard.used else "with no roll-back allowed (divergence_retries=0)")
        raise TrainingDiverged(
            f"training: diverged in {where}: {symptom}, {tried}. Fix: lower lr_g and lr_d (e.g. 10x), use objective='wgan-gp' "
            "or spectral_norm=True, check the input scaling, or allow more roll-backs with divergence_retries")
    logger.warning("training: %s in %s; rolling back to the last good state (the latest epoch start or checkpoint that a good step followed) and lowering the learning rates x%g",
                   symptom, where, guard.lr_factor)


class _Progress:
    """Training progress on **stderr** (stdout stays the program's own output); silent when verbose is
    off. On a terminal a rich bar (the bar, the count and the time left always shown, the latest
    epoch's mean losses cut short to fit the width); otherwise (a log file, CI) one plain line per
    epoch, which a redrawn bar cannot give there."""

    def __init__(self, total: int, verbose):
        self.bar = None
        self.lines = None
        if verbose:
            from rich.console import Console

            from ganad.progress import is_live, plain_console
            console = Console(stderr=True)
            if not is_live(console):
                self.lines = plain_console()
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            from rich.table import Column
            self.bar = Progress(TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
                                BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=10, max_width=40)),
                                MofNCompleteColumn(table_column=Column(no_wrap=True)), TimeRemainingColumn(table_column=Column(no_wrap=True)),
                                TextColumn("{task.fields[losses]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=2)),
                                console=console, transient=False, expand=True)
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
        elif self.lines is not None:
            from rich.markup import escape
            self.lines.print(escape(f"{stage} epoch {epoch}/{epochs} {msg}"))

    def close(self):
        if self.bar is not None:
            self.bar.stop()
