"""Progress bars for scoring, calibration and AnoGAN's latent search (rich, on stderr).

Who decides whether a bar is drawn:

* the command line, through :func:`progress_mode`: ``ganad score`` / ``calibrate`` draw a bar when
  stderr is a terminal or ``--progress`` is given, and never with ``--quiet``;
* in library use (no :func:`progress_mode` around the call), a detector with ``verbose=True``
  draws a bar while it runs a latent search (AnoGAN's scoring, or an encoder method with
  ``inversion="search"``: the only slow scoring path), when stderr is a terminal. A model served
  or scored in a pipeline (stderr not a terminal) stays silent.

The latent search reports progress *within* a batch (samples that reached ε, and the iteration
count) through :func:`within_batch`, so one batch of 1,500 rows does not sit at 0 % for its whole run.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar

#: seconds between two plain progress lines where stderr is not a terminal (``--progress`` in a log)
PLAIN_EVERY = 5.0

#: (enabled, console) set by the CLI; None = library defaults (see the module docstring)
_MODE: ContextVar = ContextVar("ganad_progress_mode", default=None)
_ACTIVE: ContextVar = ContextVar("ganad_progress_bar", default=None)


def is_live(console) -> bool:
    """Whether rich can redraw a bar on ``console``: a terminal or a notebook. Elsewhere (a file, a
    pipe: logs, CI) a bar would show once, when the work is done; progress is plain lines there."""
    return bool(console.is_terminal or console.is_jupyter)


def plain_console():
    """A stderr console for plain progress lines: never wrapped, no highlighting of numbers."""
    from rich.console import Console
    return Console(stderr=True, soft_wrap=True, highlight=False)


@contextmanager
def progress_mode(enabled: bool, console=None):
    """Force progress bars on (``True``; on ``console`` or stderr) or off (``False``) for the calls inside."""
    token = _MODE.set((bool(enabled), console))
    try:
        yield
    finally:
        _MODE.reset(token)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def wanted(verbose, slow: bool = True):
    """(draw a bar?, console or None) for a scoring call of a detector with ``verbose``; ``slow``:
    the call runs a latent search (library mode draws bars for those only)."""
    mode = _MODE.get()
    if mode is not None:
        return mode
    return bool(verbose) and slow and _stderr_is_terminal(), None


class Bar:
    """A rich bar counting samples. ``batch(start, size)`` marks the batch being scored (a range of
    the bar), ``within(fraction)`` moves the bar inside it, ``done_batch()`` completes it; a nested
    :func:`scoring_bar` (the scoring inside one chunk of ``ganad score``) maps its batches into the
    outer bar's current batch."""

    def __init__(self, total: int | None, description: str, console=None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.total = None if total is None else int(total)
        self.lo, self.hi = 0.0, 0.0  # the current batch, in samples
        console = console or Console(stderr=True)
        if not is_live(console):  # a plain line every PLAIN_EVERY seconds instead
            import time
            self.progress, self.console, self.description = None, console, description
            self.t0 = self.last = time.monotonic()
            self.done = 0
            return
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                                 console=console, transient=False)
        self.task = self.progress.add_task(description, total=self.total, note="")
        self.progress.start()

    def _line(self, final: bool = False):
        import time
        from rich.markup import escape
        now = time.monotonic()
        if not final and now - self.last < PLAIN_EVERY:
            return
        self.last = now
        of = "" if self.total is None else f"/{self.total} ({100.0 * self.done / max(self.total, 1):.0f} %)"
        self.console.print(escape(f"{self.description}: {self.done}{of}, {now - self.t0:.0f}s"), soft_wrap=True, highlight=False)

    def _set(self, completed: float, note: str | None = None):
        if self.progress is None:
            self.done = int(round(completed))
            self._line()
            return
        kw = {} if note is None else {"note": note}
        self.progress.update(self.task, completed=int(round(completed)), **kw)

    def batch(self, start: int, size: int):
        self.lo, self.hi = float(start), float(start + size)
        self._set(self.lo)

    def within(self, fraction: float, note: str = ""):
        self._set(self.lo + max(0.0, min(1.0, float(fraction))) * (self.hi - self.lo), note)

    def done_batch(self):
        self._set(self.hi, "")

    def close(self):
        if self.progress is None:
            self.done = self.total if self.total is not None else int(round(self.hi))
            self._line(final=True)
            return
        if self.total is not None:
            self._set(self.total, "")
        else:  # streamed input of unknown length: the count seen becomes the total
            self.progress.update(self.task, total=int(round(self.hi)))
        self.progress.stop()


class _SubBar:
    """A nested scoring call's view of the outer :class:`Bar`: its ``total`` samples span the outer bar's current batch."""

    def __init__(self, outer, total: int):
        outer = outer.outer if isinstance(outer, _SubBar) else outer  # always the root bar
        self.outer, self.total = outer, max(int(total), 1)
        self.lo, self.hi = outer.lo, outer.hi  # the root's current batch, which this view spans

    def batch(self, start: int, size: int):
        w = (self.hi - self.lo) / self.total
        self.outer.lo, self.outer.hi = self.lo + start * w, self.lo + (start + size) * w
        self.outer._set(self.outer.lo)

    def within(self, fraction: float, note: str = ""):
        self.outer.within(fraction, note)

    def done_batch(self):
        self.outer.done_batch()

    def close(self):
        self.outer.lo, self.outer.hi = self.lo, self.hi


@contextmanager
def scoring_bar(total: int | None, description: str, verbose=False, slow: bool = True):
    """A :class:`Bar` (or None when no bar is wanted) for scoring ``total`` samples (None: unknown,
    streamed); inside another bar's batch, a view that maps onto that batch."""
    outer = _ACTIVE.get()
    if outer is not None:
        sub = _SubBar(outer, total or 1)
        token = _ACTIVE.set(sub)
        try:
            yield sub
        finally:
            _ACTIVE.reset(token)
            sub.close()
        return
    draw, console = wanted(verbose, slow)
    if not draw or (total is not None and total <= 0):
        yield None
        return
    bar = Bar(total, description, console)
    token = _ACTIVE.set(bar)
    try:
        yield bar
    finally:
        _ACTIVE.reset(token)
        bar.close()


def within_batch(fraction: float, note: str = "") -> None:
    """Report progress inside the current batch (no-op without an active bar)."""
    bar = _ACTIVE.get()
    if bar is not None:
        bar.within(fraction, note)
