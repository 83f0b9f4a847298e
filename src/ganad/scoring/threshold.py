"""Thresholds τ: a sample is labelled anomalous when its score is above τ (``score > τ``).

- :func:`contamination_threshold`: the (1 − c) quantile of scores (no labels).
- :func:`best_threshold`: the τ maximising F_β or MCC on labelled validation scores.
- :func:`fpr_threshold`: Neyman–Pearson, the (1 − fpr) quantile of *normal* scores, so at
  most that fraction of normal calibration samples lies above τ (:func:`fpr_achieved`: the fraction
  that does, fewer with tied scores; :func:`fpr_shortfall`: a warning when it is under half).
"""

from __future__ import annotations

import math

import numpy as np

from ganad.exceptions import InputError, _fmt

THRESHOLD_METRICS = ("f1", "fbeta", "mcc")


def check_contamination(c) -> float:
    if isinstance(c, (bool, np.bool_)):  # float(True) would pass as 1.0 and be refused under a misleading value
        raise InputError(_fmt("contamination", f"is {c!r}, a boolean", "pass the expected fraction of anomalies, in (0, 0.5], e.g. 0.05"))
    if isinstance(c, (str, bytes)):  # float('0.1') would pass, and the parameter stay a string (scikit-learn refuses it)
        raise InputError(_fmt("contamination", f"is {c!r}, a string", "pass the expected fraction of anomalies as a number, in (0, 0.5], e.g. 0.05"))
    try:
        c = float(c)
    except (TypeError, ValueError):
        raise InputError(_fmt("contamination", f"is {c!r}, not a number", "pass the expected fraction of anomalies, in (0, 0.5]")) from None
    if not 0.0 < c <= 0.5:
        raise InputError(_fmt("contamination", f"is {c}", "pass the expected fraction of anomalies, in (0, 0.5]"))
    return c


def _finite(scores, name="scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise InputError(_fmt(name, "is empty", "pass at least one score"))
    if not np.isfinite(s).all():
        raise InputError(_fmt(name, "contains NaN or infinite values", "check the detector's input for NaN/inf"))
    return s


def contamination_threshold(scores: np.ndarray, contamination: float, name: str = "scores") -> float:
    """The (1 - contamination) quantile of scores: that fraction of them lie above τ.

    Every score must be finite: a NaN makes the quantile NaN (every row labelled normal) and an inf
    can make it inf (the same, and a model file cannot hold it), so both are refused naming the rows."""
    c = check_contamination(contamination)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise InputError(_fmt(name, "is empty", "pass at least one score"))
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise InputError(_fmt(name, f"hold {bad.size} NaN or infinite value(s) of {s.size}, at row(s) {bad[:10].tolist()}"
                                    f"{' ...' if bad.size > 10 else ''}: their (1 - contamination) quantile is no threshold",
                              "drop or rescale the rows whose scores are not finite (their values overflow the float32 networks) "
                              "before fitting the threshold"))
    return float(np.quantile(s, 1.0 - c))


def fpr_threshold(normal_scores: np.ndarray, fpr: float) -> float:
    """Neyman–Pearson τ: at most ``floor(fpr · n)`` of the ``n`` normal scores lie strictly above τ.

    τ is the ``(n − k)``-th smallest normal score with ``k = floor(fpr · n)`` (the empirical
    (1 − fpr) quantile, taken at a data point so the bound holds exactly on these data). With tied
    scores fewer than ``k`` may lie above it, but no threshold flags more without passing ``k``: the next
    lower one flags every score tied at τ as well (:func:`fpr_achieved` says what τ achieves).
    """
    fpr = float(fpr)
    if not 0.0 <= fpr < 1.0:
        raise InputError(_fmt("fpr", f"is {fpr}", "pass the tolerated false-positive rate, in [0, 1), such as 0.05"))
    s = np.sort(_finite(normal_scores, "normal scores"))
    k = int(math.floor(fpr * s.size + 1e-9))
    return float(s[s.size - k - 1])


def fpr_achieved(normal_scores: np.ndarray, tau: float) -> dict:
    """What a threshold ``tau`` of :func:`fpr_threshold` achieves on the normal scores it was set on:
    ``achieved_fpr`` (the fraction strictly above τ, at most the target), ``tied_at_threshold`` (how many
    of them equal τ: the run the next lower threshold would flag at once) and ``next_fpr`` (the rate of
    that next lower threshold, the next one the scores allow, above the target). With tied scores (a
    series' points in runs of one stride, identical rows of discrete data) no threshold lies between the
    two: :func:`fpr_threshold`'s τ already takes the largest rate at most the target."""
    s = _finite(normal_scores, "normal scores")
    above, tied = int(np.count_nonzero(s > tau)), int(np.count_nonzero(s == tau))
    return {"achieved_fpr": above / s.size, "tied_at_threshold": tied, "next_fpr": (above + tied) / s.size}


def fpr_shortfall(info: dict, fpr: float, n: int, *, unit: str = "normal calibration samples", ties: str = "",
                  finer: str = "") -> str | None:
    """A warning's text when the rate achieved (``info`` from :func:`fpr_achieved` on ``n`` scores) is under
    half the target ``fpr``, or None. Under half needs a run of ``tied_at_threshold`` > 1 tied scores at τ
    (``ties``: why the scores tie, in the caller's words; ``finer``: what gives finer rates then, instead of
    more normal data) or fewer than 1 / fpr scores (with none tied, the rate ⌊fpr·n⌋ / n reaches half the
    target once ⌊fpr·n⌋ >= 1). The fix also names the next rate the scores allow, if it is below 1."""
    fpr = float(fpr)
    achieved, tied, nxt = info["achieved_fpr"], info["tied_at_threshold"], info["next_fpr"]
    if not achieved < fpr / 2:
        return None
    above = int(round(achieved * n))
    if tied > 1:
        why = (f"{tied} of them tie at the threshold's score{f' ({ties})' if ties else ''}, and the next lower threshold "
               f"would flag all {tied} at once: {above + tied} of {n} (a rate of {nxt:.4g}), above the target")
        fix = finer or "calibrate on more normal data"
    else:
        why = (f"the next lower threshold would flag one more, {above + 1} of {n} (a rate of {nxt:.4g}), above the target: "
               f"{n} {unit} are too few for a rate of {fpr:g} (at least {math.ceil(1 / fpr - 1e-9)} for one to lie above the "
               "threshold, many more for the rate to hold on new data)")
        fix = "calibrate on more normal data"
    if nxt < 1:
        digits = len(str(n)) + 1  # a step under 1 / (10 n): the rate written so takes in that run, and no other
        r = round(nxt, digits)
        if math.floor(r * n + 1e-9) != above + tied:  # rounded down below the run: rounded up instead
            r = math.ceil(nxt * 10 ** digits) / 10 ** digits
        suggest = f"{r:.{digits}f}".rstrip("0").rstrip(".")
        fix += f"; or, if a rate of {nxt:.4g} is acceptable, pass fpr={suggest} (CLI: --fpr {suggest})"
    return _fmt("threshold='fpr'", f"flags {above} of the {n} {unit} (an achieved rate of {achieved:.4g}), under half the "
                                   f"target fpr={fpr:g}: {why}", fix)


def best_threshold(scores, y, metric: str = "f1", *, beta: float = 1.0) -> tuple[float, float]:
    """τ maximising F_β (``'f1'``, ``'fbeta'``) or MCC (``'mcc'``) of ``scores > τ`` against labels ``y``.

    Candidates lie midway between consecutive distinct scores (plus below the minimum), so
    each candidate splits the validation scores the same way with some margin. Ties go to
    the highest τ (fewest alarms). Returns ``(τ, best value)``; vectorised over candidates.
    """
    if metric not in THRESHOLD_METRICS:
        raise InputError(_fmt("threshold metric", f"is {metric!r}", f"use one of {', '.join(THRESHOLD_METRICS)}"))
    s = _finite(scores)
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if y.shape[0] != s.shape[0]:
        raise InputError(_fmt("y", f"has {y.shape[0]} labels for {s.shape[0]} scores", "pass one label per scored sample"))
    if y.min() == y.max():
        raise InputError(_fmt("y", "holds only one class", "a threshold from labels needs normal (0) and anomalous (1) samples"))
    beta = 1.0 if metric == "f1" else float(beta)
    if not beta > 0:
        raise InputError(_fmt("beta", f"is {beta}", "pass a positive β (1 = F1, 2 favours recall)"))
    order = np.argsort(-s, kind="stable")
    ss, yy = s[order], y[order]
    # distinct values, descending; predicting positive all samples with score >= u_j
    last = np.r_[np.nonzero(ss[1:] != ss[:-1])[0], ss.size - 1]  # last index of each distinct value
    tp = np.cumsum(yy)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    P, N = float(y.sum()), float((y == 0).sum())
    fn, tn = P - tp, N - fp
    if metric == "mcc":
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        val = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)
    else:
        b2 = beta * beta
        den = (1 + b2) * tp + b2 * fn + fp
        val = np.where(den > 0, (1 + b2) * tp / np.where(den > 0, den, 1.0), 0.0)
    # first = highest threshold among ties, ties up to round-off (3/√189 and 8/√504, the same MCC, differ in the last bit)
    j = int(np.flatnonzero(val >= val.max() - 1e-12)[0])
    u = ss[last]
    if j + 1 < u.size:
        tau = 0.5 * u[j] + 0.5 * u[j + 1]  # halves first: no overflow near the float maximum
        if not u[j + 1] <= tau < u[j]:  # adjacent floats (saturated SVM probabilities): the midpoint rounds onto u[j]
            tau = u[j + 1]
    else:
        span = u[0] - u[-1]
        tau = u[-1] - max(1e-6 * abs(u[-1]), 1e-6 * span, 1e-12)
    return float(tau), float(val[j])
