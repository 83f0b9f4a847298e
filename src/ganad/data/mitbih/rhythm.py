"""RR-interval features of the beats (previous, next, local mean RR) and their patient-independent log-ratios."""

from __future__ import annotations

import numpy as np

from ganad.exceptions import InputError, _fmt


def _rr_features(beat_sample: np.ndarray, fs: float, context: int) -> np.ndarray:
    """Previous RR, next RR and local mean RR (over ``context`` surrounding intervals), seconds.

    Interval ``k`` lies between beats ``k`` and ``k+1``; beat ``i`` has previous interval
    ``i-1`` and next interval ``i``. The local mean averages intervals
    ``i - ceil(context/2)`` .. ``i + floor(context/2) - 1`` that exist (10 -> five on each
    side); where that range holds no interval (``context=1``, first beat) it is the
    previous RR. The first beat's previous RR is its next RR and the last beat's next RR
    is its previous RR; a record with a single beat gets NaN.
    """
    m = beat_sample.shape[0]
    out = np.full((m, 3), np.nan, dtype=np.float64)
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
    return out


def rhythm_features(rr: np.ndarray) -> np.ndarray:
    """Patient-independent rhythm features from the RR triplets of :func:`load_mitbih`
    (``rr_features=True``): log(prev / local), log(next / local), log(prev / next).

    Ratios to the beat's own local mean RR remove each patient's heart rate, so a detector
    trained on one set of patients transfers to others; a premature beat has a short
    previous and a long next interval. Returns float32 (n, 3); rows with a missing RR are NaN.
    """
    rr = np.asarray(rr, dtype=np.float64)
    if rr.ndim != 2 or rr.shape[1] != 3:
        raise InputError(_fmt("rr", f"has shape {rr.shape}", "pass the (n, 3) RR array of load_mitbih(..., rr_features=True)"))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.c_[np.log(rr[:, 0] / rr[:, 2]), np.log(rr[:, 1] / rr[:, 2]), np.log(rr[:, 0] / rr[:, 1])]
    f[~np.isfinite(f).all(1)] = np.nan
    return f.astype(np.float32)
