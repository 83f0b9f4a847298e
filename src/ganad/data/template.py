"""Samples read against their own source's recent samples: a causal, label-free template.

A heartbeat's shape differs from patient to patient far more than a normal beat differs from the
patient's other normal beats: a model of one set of patients' beats meets other patients' normal
shapes as new. The rhythm view avoids this by its ratios (each RR interval over the local mean RR);
:func:`template_difference` is the same idea for the shape: each sample minus the element-wise median
of the ``k`` samples before it from the same source (a patient's record, a machine, a sensor), so a
detector sees how a beat *changes* from the patient's recent beats rather than the patient's shape.
The template is causal (only earlier samples; a monitor has them) and label-free (every earlier
sample counts, whatever its class: a run of ectopic beats becomes part of the template, as it would
on a monitor). The first sample of a source, with no history, is its own template (a difference of 0).

Example::

    from ganad.data import load_split, template_difference
    ds1 = load_split("DS1", "/data/mitdb")
    change = template_difference(ds1.X, ds1.record, ds1.sample)       # (n, 1, 256), beat minus template
    both = np.concatenate([ds1.X, change], axis=1)                     # (n, 2, 256): shape and change

benchmarks/RESULTS.md measures it ("A beat against its patient's recent beats").
"""

from __future__ import annotations

import warnings

import numpy as np

from ganad.exceptions import InputError, _fmt
from ganad.params import is_int

__all__ = ["template_difference"]


def template_difference(X, groups=None, order=None, k: int = 8) -> np.ndarray:
    """``X`` minus a causal template: per sample, the element-wise median of the ``k`` samples before it
    in its group.

    Parameters
    ----------
    X : array (n, ...)
        Samples, e.g. beats (n, 1, 256) or windows (n, channels, length); finite numbers.
    groups : array (n,), optional
        The source of each sample (a record, a patient, a machine): templates never mix sources.
        None: one source.
    order : array (n,), optional
        Time of each sample within its group (e.g. the beat's R-peak sample): "before" means earlier in
        this order (ties keep their order in ``X``). None: the order of ``X``.
    k : int, default 8
        Samples in the template (fewer at a source's start; the first sample is its own template).

    Returns
    -------
    array like ``X`` (float32 for float32 input, else float64): each sample minus its template.
    """
    if not is_int(k) or int(k) < 1:
        raise InputError(_fmt("k", f"is {k!r}", "pass a whole number of earlier samples >= 1, e.g. 8"))
    try:
        A = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise InputError(_fmt("X", f"cannot be read as an array ({exc})", "pass a numeric array (n, ...)")) from exc
    if A.ndim < 2 or A.shape[0] == 0:
        raise InputError(_fmt("X", f"has shape {A.shape}", "pass one sample per row, at least one: shape (n, ...) with n >= 1"))
    if not (np.issubdtype(A.dtype, np.number) and not np.issubdtype(A.dtype, np.complexfloating)) or A.dtype == bool:
        raise InputError(_fmt("X", f"has dtype {A.dtype}", "pass real numbers (float32 or float64)"))
    work = np.float32 if A.dtype == np.float32 else np.float64
    A = A.astype(work, copy=False)
    if not np.isfinite(A).all():
        bad = np.argwhere(~np.isfinite(A.reshape(A.shape[0], -1)))[0][0]
        raise InputError(_fmt("X", f"holds NaN or infinite values (first at sample {bad})", "clean or drop those samples first"))
    n = A.shape[0]
    g = np.zeros(n, np.int64) if groups is None else np.asarray(groups).reshape(-1)
    t = np.arange(n) if order is None else np.asarray(order).reshape(-1)
    for name, v in (("groups", g), ("order", t)):
        if v.shape[0] != n:
            raise InputError(_fmt(name, f"has {v.shape[0]} entries for {n} samples", "pass one entry per sample of X"))
    if not np.issubdtype(t.dtype, np.number) or not np.isfinite(t.astype(np.float64)).all():
        raise InputError(_fmt("order", "is not finite numbers", "pass each sample's time (e.g. its R-peak sample index)"))
    out = np.empty_like(A)
    kk = int(k)
    for src in np.unique(g):
        idx = np.flatnonzero(g == src)
        idx = idx[np.argsort(t[idx], kind="stable")]
        xs = A[idx].astype(np.float64)
        pad = np.concatenate([np.full((kk,) + xs.shape[1:], np.nan), xs[:-1]])  # row j holds samples j-k .. j-1
        win = np.lib.stride_tricks.sliding_window_view(pad, kk, axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the first sample's window is all NaN
            tpl = np.nanmedian(win, axis=-1)
        tpl[0] = xs[0]
        out[idx] = A[idx] - tpl.astype(work)  # the median in float64, the difference in X's own precision
    return out
