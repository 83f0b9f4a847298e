"""RR-interval features of the beats (previous, next, local mean RR, local RR spread) and their patient-independent ratios."""

from __future__ import annotations

import numpy as np

from ganad.exceptions import InputError, _fmt


def _rr_features(beat_sample: np.ndarray, fs: float, context: int) -> np.ndarray:
    """Previous RR, next RR, local mean RR (over ``context`` surrounding intervals) and the local
    RR spread, seconds.

    Interval ``k`` lies between beats ``k`` and ``k+1``; beat ``i`` has previous interval
    ``i-1`` and next interval ``i``. The local mean averages intervals
    ``i - ceil(context/2)`` .. ``i + floor(context/2) - 1`` that exist (10 -> five on each
    side); where that range holds no interval (``context=1``, first beat) it is the
    previous RR. The first beat's previous RR is its next RR and the last beat's next RR
    is its previous RR; a record with a single beat gets NaN.

    The local spread is the median of |RR_{k+1} − RR_k| over the successive pairs of that same
    range that involve neither of the beat's own two intervals: how irregular the rhythm
    *around* the beat is (small in sinus rhythm even beside one premature beat, large in atrial
    fibrillation), 0 where no such pair exists.
    """
    m = beat_sample.shape[0]
    out = np.full((m, 4), np.nan, dtype=np.float64)
    if m < 2:
        return out
    rr = np.diff(beat_sample).astype(np.float64) / fs  # m - 1 intervals
    prev = np.empty(m)
    nxt = np.empty(m)
    prev[1:] = rr
    prev[0] = rr[0]
    nxt[:-1] = rr
    nxt[-1] = rr[-1]
    i = np.arange(m)
    lo = np.clip(i - (context + 1) // 2, 0, m - 1)
    hi = np.clip(i + context // 2, 0, m - 1)  # exclusive end in interval indices
    csum = np.concatenate(([0.0], np.cumsum(rr)))
    local = np.where(hi > lo, (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1), prev)
    out[:, 0], out[:, 1], out[:, 2] = prev, nxt, local
    out[:, 3] = _local_spread(rr, m, context)
    return out


def _local_spread(rr: np.ndarray, m: int, context: int) -> np.ndarray:
    """Per beat, the median |RR_{k+1} − RR_k| over pairs k (intervals k, k+1) inside the local
    range of :func:`_rr_features` that touch neither interval i-1 nor i (pairs i-2, i-1, i)."""
    diff = np.abs(np.diff(rr))  # pair k: intervals k and k+1, m - 2 pairs
    offs = np.array([o for o in range(-((context + 1) // 2), context // 2 - 1) if o not in (-2, -1, 0)], dtype=np.int64)
    if diff.size == 0 or offs.size == 0:
        return np.zeros(m)
    k = np.arange(m)[:, None] + offs[None, :]
    ok = (k >= 0) & (k < diff.size)
    v = np.where(ok, diff[np.clip(k, 0, diff.size - 1)], np.nan)
    has = ok.any(1)
    out = np.zeros(m)
    out[has] = np.nanmedian(v[has], axis=1)
    return out


def rhythm_features(rr: np.ndarray) -> np.ndarray:
    """Patient-independent rhythm features from the RR array of :func:`load_mitbih`
    (``rr_features=True``): log(prev / local), log(next / local), log(prev / next) and, from the
    (n, 4) array it returns, the local spread / local mean RR.

    Ratios to the beat's own local mean RR remove each patient's heart rate, so a detector
    trained on one set of patients transfers to others; a premature beat has a short
    previous and a long next interval. The fourth feature says how irregular the rhythm around
    the beat is, so that an irregular beat in an irregular rhythm (atrial fibrillation, whose
    beats are labelled normal) can look less surprising than one in a steady rhythm. An (n, 3)
    array (previous, next, local mean) gives the first three only. Returns float32 (n, 3) or
    (n, 4); rows with a missing RR are NaN.
    """
    rr = np.asarray(rr, dtype=np.float64)
    if rr.ndim != 2 or rr.shape[1] not in (3, 4):
        raise InputError(_fmt("rr", f"has shape {rr.shape}", "pass the (n, 4) RR array of load_mitbih(..., rr_features=True) "
                                                               "(or its first three columns)"))
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = [np.log(rr[:, 0] / rr[:, 2]), np.log(rr[:, 1] / rr[:, 2]), np.log(rr[:, 0] / rr[:, 1])]
        if rr.shape[1] == 4:
            cols.append(np.where(rr[:, 3] >= 0, rr[:, 3] / rr[:, 2], np.nan))
        f = np.stack(cols, axis=1)
    f[~np.isfinite(f).all(1)] = np.nan
    return f.astype(np.float32)
