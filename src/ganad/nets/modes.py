"""The torch modes ganad's own work runs under, whatever the caller's session has set."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch


def modes_differ(grad: bool = False) -> bool:
    """True where the caller's session would change ganad's work: a default dtype other than float32,
    inference mode on (its tensors cannot enter autograd: training and the latent search need it),
    and, with ``grad``, gradients off (``torch.no_grad()``)."""
    # a block open in another thread counts too: the float32 default is that block's, and when it ends the
    # session's float64 would come back in the middle of this thread's work (a fit failed with 'mat1 and
    # mat2 must have the same dtype'), so this thread joins the count instead
    with _LOCK:  # the count and the dtype together (a block's entry or exit between the two reads read as neither)
        others = _DEPTH[0] > 0 and not getattr(_MINE, "depth", 0)  # a block open in another thread, none in this one
        dtype = torch.get_default_dtype()
    return others or dtype != torch.float32 or torch.is_inference_mode_enabled() or (grad and not torch.is_grad_enabled())


@contextlib.contextmanager
def own_modes(grad: bool = False) -> Iterator[None]:
    """torch's default dtype float32, inference mode off and, with ``grad``, gradients on inside the
    block; the session's restored after it. The networks, the latent draws and every buffer a fit, a
    scoring pass or a model load makes are float32 also in a session that called
    ``torch.set_default_dtype(torch.float64)`` (fit failed there with 'mat1 and mat2 must have the same
    dtype', and a load called a valid model file corrupt), and a fit or a latent search works inside
    the caller's ``torch.inference_mode()`` / ``torch.no_grad()`` (it failed with 'element 0 of tensors
    does not require grad'). Callers re-enter themselves inside it only where :func:`modes_differ`, so
    that in the usual session no wrapper frame shifts the caller their warnings name.

    torch's default dtype is one for the process: while any thread is inside such a block, every
    thread of the process creates float32 tensors by default (the session's default comes back when
    the last block ends); inference and grad modes are per thread."""
    with _LOCK:  # the default dtype is the process's, not the thread's: the first block in sets it, the last out restores it
        if not _DEPTH[0]:
            _SAVED[0] = torch.get_default_dtype()
            torch.set_default_dtype(torch.float32)
        _DEPTH[0] += 1
        _MINE.depth = getattr(_MINE, "depth", 0) + 1
    try:
        with torch.inference_mode(False), (torch.enable_grad() if grad else contextlib.nullcontext()):
            yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            _MINE.depth -= 1
            if not _DEPTH[0]:
                torch.set_default_dtype(_SAVED[0])


# Blocks of own_modes open in any thread, and the default dtype the first of them found. Each block
# saved and restored the dtype itself, so blocks overlapping in threads (scoring in a float64 session)
# restored each other's float32 and left the session's default changed for good (3 runs of 4 in an audit).
_LOCK = threading.Lock()
_DEPTH = [0]
_MINE = threading.local()  # .depth: the blocks this thread has open (its own work needs no second entry)
_SAVED: list = [None]
