"""Patient- (or machine-) adaptive scoring: label-free and causal.

A monitor that watches one patient for hours can learn that patient's own normal from the first
minutes of the recording. :func:`prefix_standardise` standardises each recording's scores by the
median and MAD of its own first ``n_first`` scores (in time order). No label is used, and a score
is only ever standardised with statistics of samples that came *before* it, except inside the
warm-up itself: those first ``n_first`` samples are flagged in the returned mask so that an honest
evaluation leaves them out (a monitor would show unadapted scores during its warm-up).
:func:`prefix_threshold` keeps the scores and adapts the *threshold* instead: each recording's
``(1 − fpr)`` quantile of its own warm-up scores, by default never below the population threshold
(``det.threshold_``), so a patient whose normal scores run higher than the calibration patients' is
not flagged on most of their normal beats.

The pure inter-patient score stays the primary figure; the adapted one is reported beside it,
never in its place (``benchmarks/RESULTS.md``).

Example::

    from ganad.scoring.adaptive import prefix_standardise
    adapted, warm = prefix_standardise(scores, groups=record_ids, order=r_peak_samples, n_first=300)
    auroc(y[~warm], adapted[~warm])

    from ganad.scoring.adaptive import prefix_threshold
    tau, warm = prefix_threshold(scores, record_ids, r_peak_samples, n_first=300, fpr=0.05, threshold=det.threshold_)
    labels = scores > tau
"""

from __future__ import annotations

import numpy as np

from ganad.exceptions import InputError, _fmt
from ganad.scoring.composition import MAD_TO_STD


def _records_in_time_order(s, groups, order, n_first, *, what="n_first"):
    """Validated ``scores`` (float64), and each group's row indices in time order: one array per group."""
    s = np.asarray(s, dtype=np.float64).reshape(-1)
    g = np.asarray(groups).reshape(-1)
    if g.shape[0] != s.shape[0]:
        raise InputError(_fmt("groups", f"has {g.shape[0]} entries for {s.shape[0]} scores", "pass one group id per score"))
    if isinstance(n_first, (bool, np.bool_)) or not isinstance(n_first, (int, np.integer)) or n_first < 2:
        raise InputError(_fmt(what, f"is {n_first!r}", "pass a warm-up of at least 2 samples, e.g. 300"))
    if not np.isfinite(s).all():
        raise InputError(_fmt("scores", "contain NaN or infinite values", "score finite inputs only"))
    t = np.arange(s.shape[0]) if order is None else np.asarray(order).reshape(-1)
    if t.shape[0] != s.shape[0]:
        raise InputError(_fmt("order", f"has {t.shape[0]} entries for {s.shape[0]} scores", "pass one time stamp per score"))
    import pandas as pd
    # ids by value, as pandas groups them: a missing id (NaN, None) was no group of np.unique's (NaN != NaN), so
    # its scores were left as np.empty's leftovers and not flagged as warm-up; ids of mixed types did not sort
    codes, uniques = pd.factorize(g)
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        raise InputError(_fmt("groups", f"has {missing.size} missing id(s) (NaN / None), the first at position(s) "
                                        f"{missing[:5].tolist()}: those scores belong to no recording to adapt them to",
                              "give every score its recording / patient id, or drop the scores without one"))
    bad_t = np.flatnonzero(pd.isna(t))
    if bad_t.size:  # a NaN time sorts last: a score of the warm-up would be taken as one after it, or the other way round
        raise InputError(_fmt("order", f"has {bad_t.size} missing time stamp(s) (NaN / NaT), the first at position(s) "
                                       f"{bad_t[:5].tolist()}", "give every score its time stamp or sample position"))
    from ganad.data.validation import rows_by_code
    return s, [idx[np.argsort(t[idx], kind="stable")] for idx in rows_by_code(codes, len(uniques))]


def prefix_standardise(scores, groups, order=None, n_first: int = 300, min_scale: float = 1e-12):
    """Standardise each group's scores by the median / MAD of its first ``n_first`` samples.

    Parameters
    ----------
    scores : (n,) anomaly scores (higher = more anomalous).
    groups : (n,) recording / patient / machine id of each score.
    order : (n,) time stamps or sample positions; None = the given order.
    n_first : warm-up length per group (e.g. 300 beats ≈ 4 minutes of ECG).

    Returns
    -------
    adapted : (n,) float64, (s − median_g) / (1.4826·MAD_g) with the group's warm-up statistics
        (a zero MAD falls back to the warm-up's standard deviation, then to 1).
    warm : (n,) bool, True for the warm-up samples (leave them out of an evaluation).
    """
    s, runs = _records_in_time_order(scores, groups, order, n_first)
    adapted = np.empty_like(s)
    warm = np.zeros(s.shape[0], dtype=bool)
    for idx in runs:
        head = idx[:n_first]
        ref = s[head]
        med = np.median(ref)
        mad = np.median(np.abs(ref - med)) * MAD_TO_STD
        scale = mad if mad > min_scale else (ref.std() if ref.std() > min_scale else 1.0)
        adapted[idx] = (s[idx] - med) / scale
        warm[head] = True
    return adapted, warm


def prefix_threshold(scores, groups, order=None, n_first: int = 300, *, fpr: float = 0.05, threshold: float | None = None,
                     raise_only: bool = True):
    """Per-recording thresholds from each recording's own first ``n_first`` scores: label-free and causal.

    A threshold fitted on other patients' normal data (``det.threshold_``, calibrated with
    ``threshold='fpr'``) holds its false-positive rate on *those* patients; on a new one whose normal
    scores sit higher (an irregular but normal rhythm, a noisier electrode) it can flag a large share of
    normal beats. Here each recording's threshold after its warm-up is the ``(1 − fpr)`` quantile of its
    own first ``n_first`` scores (:func:`ganad.scoring.threshold.fpr_threshold`), the same Neyman–Pearson
    rule on the patient's own beats. No label is used; the warm-up is assumed mostly normal (a monitor
    starts on a patient at rest), and anomalies inside it raise that patient's threshold.

    Parameters
    ----------
    scores, groups, order, n_first : as :func:`prefix_standardise`.
    fpr : the tolerated false-positive rate, in [0, 1), as the model's ``threshold='fpr'`` calibration.
    threshold : the population threshold (``det.threshold_``): used during each warm-up and, with
        ``raise_only``, as the floor after it. None: no threshold during the warm-up (NaN; ``score > NaN``
        is False, so nothing is flagged there).
    raise_only : True (default): a recording's threshold is ``max(threshold, own quantile)``, so adapting
        never makes the monitor more sensitive than the population threshold, only less where the
        patient's own normal scores run higher; False: the own quantile alone (lower where the patient's
        normal scores are tighter than the population's). Needs ``threshold``.

    Returns
    -------
    thresholds : (n,) float64, the threshold in force for each score (label = ``scores > thresholds``).
    warm : (n,) bool, True for the warm-up samples.

    Example::

        from ganad.scoring.adaptive import prefix_threshold
        tau, warm = prefix_threshold(det.decision_function(X), groups=record_ids, order=r_peaks,
                                     n_first=300, fpr=0.05, threshold=det.threshold_)
        labels = det.decision_function(X) > tau
    """
    at = AdaptiveThreshold(n_first, fpr=fpr, threshold=threshold, raise_only=raise_only)  # checks the arguments
    s, runs = _records_in_time_order(scores, groups, order, n_first)
    tau = np.empty(s.shape[0])
    warm = np.empty(s.shape[0], dtype=bool)
    for i, idx in enumerate(runs):  # each recording whole, in time order: the live monitor's thresholds, by construction
        tau[idx], warm[idx] = at.update(s[idx], i)
    return tau, warm


class AdaptiveThreshold:
    """:func:`prefix_threshold` for a live monitor: scores arrive chunk by chunk, per recording.

    Each recording (patient, machine) starts with the population ``threshold``; once its first
    ``n_first`` scores have arrived, its threshold becomes the ``(1 − fpr)`` quantile of them (floored
    at ``threshold`` with ``raise_only``) and stays so. Feeding a recording's scores in any chunks gives
    the thresholds :func:`prefix_threshold` gives on the whole recording in time order. The state
    (each recording's warm-up scores or its own threshold) is plain JSON: :meth:`to_dict` /
    :meth:`from_dict` keep it across restarts of the monitor.

    Example::

        from ganad.scoring.adaptive import AdaptiveThreshold
        at = AdaptiveThreshold(n_first=300, fpr=0.05, threshold=det.threshold_)
        for record_id, X_chunk in incoming():               # beats in time order per record
            s = det.decision_function(X_chunk)
            tau, warm = at.update(s, record_id)
            alarms = s > tau
    """

    def __init__(self, n_first: int = 300, *, fpr: float = 0.05, threshold: float | None = None, raise_only: bool = True):
        if isinstance(n_first, (bool, np.bool_)) or not isinstance(n_first, (int, np.integer)) or n_first < 2:
            raise InputError(_fmt("n_first", f"is {n_first!r}", "pass a warm-up of at least 2 samples, e.g. 300"))
        fpr = float(fpr)
        if not 0.0 <= fpr < 1.0:
            raise InputError(_fmt("fpr", f"is {fpr}", "pass the tolerated false-positive rate, in [0, 1), such as 0.05"))
        if threshold is not None:
            threshold = float(threshold)
            if not np.isfinite(threshold):
                raise InputError(_fmt("threshold", f"is {threshold}", "pass the model's finite population threshold (det.threshold_) or None"))
        elif raise_only:
            raise InputError(_fmt("threshold", "is None with raise_only=True: there is no population threshold to keep as the floor",
                                  "pass the model's threshold (threshold=det.threshold_), or raise_only=False for each "
                                  "recording's own quantile alone"))
        self.n_first, self.fpr, self.raise_only, self.threshold = int(n_first), fpr, bool(raise_only), threshold
        self._warm: dict[str, list[float]] = {}
        self._own: dict[str, float] = {}

    def update(self, scores, group) -> tuple[np.ndarray, np.ndarray]:
        """Thresholds for the next ``scores`` of recording ``group`` (in time order); returns
        ``(thresholds, warm)`` as :func:`prefix_threshold`: the population threshold (NaN without one)
        for the scores inside the recording's warm-up, its own after it."""
        if not isinstance(group, (str, int, np.integer)) or isinstance(group, (bool, np.bool_)):
            raise InputError(_fmt("group", f"is {group!r}", "name the recording with a string or an integer, e.g. 'patient-7'"))
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if not np.isfinite(s).all():
            raise InputError(_fmt("scores", "contain NaN or infinite values", "score finite inputs only"))
        g = str(group)
        tau = np.full(s.shape[0], np.nan if self.threshold is None else self.threshold)
        warm = np.zeros(s.shape[0], dtype=bool)
        if g in self._own:
            tau[:] = self._own[g]
            return tau, warm
        buf = self._warm.setdefault(g, [])
        take = min(self.n_first - len(buf), s.shape[0])
        buf.extend(s[:take].tolist())
        warm[:take] = True
        if len(buf) == self.n_first:
            from ganad.scoring.threshold import fpr_threshold
            own = fpr_threshold(np.asarray(buf), self.fpr)
            self._own[g] = max(own, self.threshold) if self.raise_only else own  # (raise_only has a threshold: __init__)
            del self._warm[g]
            tau[take:] = self._own[g]
        return tau, warm

    def forget(self, group) -> None:
        """Drop a recording's state (its warm-up so far or its own threshold): its next scores start a new warm-up."""
        g = str(group)
        self._warm.pop(g, None)
        self._own.pop(g, None)

    def __len__(self) -> int:
        """Recordings with a state (in their warm-up or with their own threshold)."""
        return len(self._warm) + len(self._own)

    def recordings(self) -> set[str]:
        """The ids of the recordings with a state."""
        return set(self._warm) | set(self._own)

    def state(self, group) -> dict:
        """``{"warm_up": k}`` (k of ``n_first`` scores seen) or ``{"threshold": τ}`` (the recording's own)."""
        g = str(group)
        return {"threshold": self._own[g]} if g in self._own else {"warm_up": len(self._warm.get(g, []))}

    def to_dict(self) -> dict:
        return {"kind": "AdaptiveThreshold", "n_first": self.n_first, "fpr": self.fpr, "threshold": self.threshold,
                "raise_only": self.raise_only, "warm": {k: list(v) for k, v in self._warm.items()}, "own": dict(self._own)}

    @classmethod
    def from_dict(cls, d: dict) -> AdaptiveThreshold:
        if not isinstance(d, dict) or d.get("kind") != "AdaptiveThreshold":
            raise InputError(_fmt("state", "is not an AdaptiveThreshold's to_dict()", "pass the dictionary AdaptiveThreshold.to_dict() wrote"))
        at = cls(d["n_first"], fpr=d["fpr"], threshold=d["threshold"], raise_only=d["raise_only"])
        at._warm = {str(k): [float(x) for x in v] for k, v in d.get("warm", {}).items()}
        at._own = {str(k): float(v) for k, v in d.get("own", {}).items()}
        bad = [k for k, v in at._warm.items() if len(v) >= at.n_first]
        if bad:
            raise InputError(_fmt("state", f"holds {len(bad)} recording(s) with a full warm-up but no threshold ({bad[:3]})",
                                  "pass the dictionary AdaptiveThreshold.to_dict() wrote, unedited"))
        return at


def for_model(model, n_first: int = 300, fpr: float | None = None, raise_only: bool = True) -> AdaptiveThreshold:
    """An :class:`AdaptiveThreshold` for a fitted (and perhaps calibrated) detector or multi-view model:
    floored at its ``threshold_``, at the rate ``fpr``, else the rate that threshold was fitted at (a
    ``calibrate(threshold='fpr')``'s ``fpr``, else the model's ``contamination``). What ``ganad score
    --warm-up`` and ``ganad serve --warm-up`` use."""
    if fpr is None:
        cal = getattr(model, "calibration_", None) or {}
        fpr = float(cal["fpr"]) if cal.get("threshold") == "fpr" and "fpr" in cal else float(model.contamination)
    return AdaptiveThreshold(n_first, fpr=fpr, threshold=float(model.threshold_), raise_only=raise_only)
