"""Honest metrics for scores over time: points, events and ranges.

- **point AUROC / AUPRC**: every time point is a sample (from :mod:`ganad.metrics`).
- **event precision / recall / F1, without point adjustment**: a true event counts as found
  when at least one predicted point falls inside it; a predicted event (a run of predicted
  points) counts as correct when it overlaps a true event. No point is relabelled. A detector
  whose events bridge short gaps (``SeriesDetector(event_gap=...)``) is measured on its events:
  pass them as ``y_event`` (:func:`bridge_gaps` of the predictions, or ``SeriesScores.in_event``).
- **point-adjusted F1, only beside PA%K** (Kim et al., AAAI 2022): point adjustment marks
  every point of a true event as detected once any point of it is; it inflates F1 (a random
  score reaches high PA-F1 on long events). PA%K adjusts an event only when more than K % of
  its points are detected; :func:`pa_k_f1` gives F1 at each K and the area under F1(K) over
  K = 0..100 (``pak_auc``). K = 0 is classical PA, K = 100 never adjusts (the point F1).
- **VUS-PR** (Paparrizos et al., VLDB 2022): the volume under range-precision / range-recall
  curves whose labels are widened by a soft buffer of 0..``max_buffer`` points, averaged over
  the buffer lengths. It follows the reference implementation of TSB-UAD / VUS
  (``RangeAUC`` with ``extend_postive_range``, 250 thresholds at quantiles of the sorted
  scores, range recall = recall x existence ratio over the buffered ranges, recall's
  denominator the mean of the original and the buffered positive mass). The ``vus`` package
  pulls in TensorFlow, so ganad carries this implementation, tested on hand-computed cases.

Example::

    from ganad.series.metrics import series_metrics, ranges_to_labels
    y = ranges_to_labels([(120, 160), (700, 720)], n=1000)
    m = series_metrics(y, scores, y_pred=scores > tau, max_buffer=64)
"""

from __future__ import annotations

import numpy as np

from ganad.data.validation import check_labels
from ganad.exceptions import InputError, _fmt
from ganad.params import is_int
from ganad.metrics import _both_classes, _scores


def label_ranges(y, breaks=None) -> list[tuple[int, int]]:
    """Runs of 1 in a 0/1 sequence as (start, end) with the end included; ``breaks``: indices
    where a new part of the series starts (after a gap), across which no run continues."""
    y = np.asarray(y).astype(bool).astype(np.int8)
    d = np.diff(np.r_[0, y, 0])
    if breaks is not None and len(breaks):
        b = np.asarray(breaks, dtype=np.int64)
        b = b[(b > 0) & (b < len(y))]
        b = np.unique(b[(y[b] == 1) & (y[b - 1] == 1)])  # a run that goes on across a break: ends before it, starts again at it
        starts = np.sort(np.r_[np.flatnonzero(d == 1), b])
        ends = np.sort(np.r_[np.flatnonzero(d == -1) - 1, b - 1])
        return list(zip(starts.tolist(), ends.tolist()))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))


def bridge_gaps(y_pred, gap: int) -> np.ndarray:
    """0/1 predictions with every run of at most ``gap`` zeros between two runs of ones set to 1:
    the events of :class:`~ganad.series.detector.EventTracker` with that gap, as points."""
    p = np.asarray(y_pred).astype(bool).astype(np.int64).reshape(-1)
    if not is_int(gap) or gap < 0:
        raise InputError(_fmt("gap", f"is {gap!r}", "pass a whole number of points >= 0"))
    if gap > 0:
        ones = np.flatnonzero(p)
        if ones.size > 1:
            d = np.diff(ones) - 1  # zeros between consecutive ones
            for k in np.flatnonzero((d > 0) & (d <= gap)):
                p[ones[k] + 1:ones[k + 1]] = 1
    return p


def ranges_to_labels(ranges, n: int) -> np.ndarray:
    """0/1 labels of ``n`` points from (start, end) index pairs (end included)."""
    y = np.zeros(n, dtype=np.int64)
    for k, (s, e) in enumerate(ranges):
        if not all(np.isfinite(float(v)) and float(v) == int(float(v)) for v in (s, e)):
            raise InputError(_fmt(f"range {k} ({s}, {e})", "holds a fractional or non-finite point index (int() would cut it, labelling a point before the range)",
                                  "pass whole point indices (0-based, end included)"))
        s, e = int(float(s)), int(float(e))
        if e < s or s < 0 or e >= n:
            raise InputError(_fmt(f"range {k} ({s}, {e})", f"is empty or outside the {n} points", "pass start <= end within the scored points"))
        y[s:e + 1] = 1
    return y


def _ok(y_true, y_pred):
    y = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), "y_true")
    p = check_labels(y_pred, len(y), "y_pred")  # 0 / 1 (or bool): scores passed by mistake are refused, not cut to integers
    return y, p


def event_prf(y_true, y_pred, breaks=None, true_breaks=None) -> dict:
    """Event-wise precision, recall and F1 without point adjustment (see the module docstring).
    ``breaks``: indices where a new part of the series starts (after a gap in time): predicted
    events never span one (the detector's events end at a gap), so runs are split there.
    ``true_breaks``: indices where a labelled anomaly starts right after another one (two ranges that
    touch: two true events, not the one run their 0 / 1 labels make)."""
    y, p = _ok(y_true, y_pred)
    true_ev, pred_ev = label_ranges(y, true_breaks), label_ranges(p, breaks)
    cs_p = np.r_[0, np.cumsum(p)]
    cs_y = np.r_[0, np.cumsum(y)]
    found = sum(cs_p[e + 1] - cs_p[s] > 0 for s, e in true_ev)
    correct = sum(cs_y[e + 1] - cs_y[s] > 0 for s, e in pred_ev)
    rec = found / len(true_ev) if true_ev else 0.0
    prec = correct / len(pred_ev) if pred_ev else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {"event_precision": float(prec), "event_recall": float(rec), "event_f1": float(f1),
            "n_true_events": len(true_ev), "n_pred_events": len(pred_ev)}


def _f1(y, p) -> float:
    tp = float(np.sum(y & p))
    fp, fn = float(np.sum(~y & p)), float(np.sum(y & ~p))
    return 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0


def pa_k_f1(y_true, y_pred, ks=range(0, 101), true_breaks=None) -> dict:
    """F1 after PA%K adjustment for each K, and the area under F1(K) (K as a fraction, 0..1).

    An event is adjusted (all its points marked detected) when the fraction of its points
    detected is strictly above K / 100. ``true_breaks``: as for :func:`event_prf`."""
    y, p = _ok(y_true, y_pred)
    y, p = y.astype(bool), p.astype(bool)
    ks = np.asarray(list(ks), dtype=np.float64)
    if ks.ndim != 1 or not len(ks) or not np.isfinite(ks).all() or ks.min() < 0 or ks.max() > 100 or (np.diff(ks) <= 0).any():
        raise InputError(_fmt("ks", f"is {ks.tolist()[:8]}{' ...' if ks.size > 8 else ''}",
                              "pass increasing percentages from 0 to 100, e.g. range(0, 101) (the default)"))
    cs = np.r_[0, np.cumsum(p)]
    ev = label_ranges(y, true_breaks)
    frac = np.array([(cs[e + 1] - cs[s]) / (e - s + 1) for s, e in ev])
    f1s = []
    for k in ks:
        q = p.copy()
        for (s, e), f in zip(ev, frac):
            if f > k / 100.0:
                q[s:e + 1] = True
        f1s.append(_f1(y, q))
    f1s = np.asarray(f1s)
    auc = float(np.trapezoid(f1s, ks / 100.0) / max((ks[-1] - ks[0]) / 100.0, 1e-12)) if len(ks) > 1 else float(f1s[0])
    return {"k": ks.tolist(), "f1": f1s.tolist(), "pak_auc": auc}


def _buffered(y: np.ndarray, window: int) -> np.ndarray:
    """TSB-UAD's extend_postive_range: soft labels sqrt(1 - d / window) next to each range.

    One pass per distance d < window // 2 over every range at once (the reference loops over the
    ranges, four small array operations each: 2.6M calls for 10,000 ranges and 65 buffers); the
    contributions of several ranges to one point add up as there, before the cap at 1."""
    lab = y.astype(np.float64).copy()
    n = len(lab)
    if window <= 0:
        return lab
    ev = label_ranges(y)
    if not ev:
        return lab
    starts, ends = np.array([a for a, _ in ev]), np.array([b for _, b in ev])
    for d in range(window // 2):
        w = np.sqrt(1 - d / window)
        after = ends + d  # x1 = e + d < min(e + window // 2, n)
        lab[after[after < n]] += w
        before = starts - d - 1  # x2 = s - d - 1 >= max(s - window // 2, 0): d + 1 <= window // 2
        lab[before[before >= 0]] += np.sqrt(1 - (d + 1) / window)
    return np.minimum(lab, 1.0)


def _descending(s: np.ndarray, n_thresholds: int):
    """The scores' descending order and the thresholds of :func:`range_pr_roc`: the same for every buffer."""
    order = np.argsort(-s, kind="stable")
    s_desc = s[order]
    thr = s_desc[np.linspace(0, len(s) - 1, n_thresholds).astype(int)]
    npred = np.searchsorted(-s_desc, -thr, side="right")                   # points with s >= t
    return order, thr, npred


#: thresholds of TSB-UAD's RangeAUC (its default), the same for every buffer of VUS
N_THRESHOLDS = 250


def _range_inputs(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Labels of both classes and one finite score each, checked (range AUCs, VUS)."""
    y = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), "y_true")
    s = _scores(scores, len(y))
    _both_classes(y)
    return y, s


def range_pr_roc(y_true, scores, buffer: int = 0, n_thresholds: int = N_THRESHOLDS) -> tuple[float, float]:
    """(range AUC-ROC, range AUC-PR) with a soft buffer of ``buffer`` points (TSB-UAD RangeAUC)."""
    y, s = _range_inputs(y_true, scores)
    return _range_pr_roc(y, s, int(buffer), _descending(s, n_thresholds))


def _range_pr_roc(y: np.ndarray, s: np.ndarray, buffer: int, desc) -> tuple[float, float]:
    order, thr, npred = desc
    P = float(np.count_nonzero(y))
    lab = _buffered(y, buffer)
    segs = label_ranges(lab > 0)
    seg_s = np.array([a for a, _ in segs])
    seg_e = np.array([b for _, b in segs]) + 1
    # every threshold's predicted set is the points scoring >= it: counted from the scores in descending
    # order (prefix sums), never as a thresholds x points matrix (250 x n numbers: GBs for a long series)
    tp = np.concatenate([[0.0], np.cumsum(lab[order])])[npred]
    p_new = (P + lab.sum()) / 2
    recall = np.minimum(tp / p_new, 1.0)
    # a segment exists once its top point is predicted: each segment's maximum in one reduceat over
    # [start, end) pairs (the padding makes an end at n a valid index)
    seg_max = np.maximum.reduceat(np.r_[s, -np.inf], np.column_stack([seg_s, seg_e]).ravel())[::2]
    existence = (seg_max[None, :] >= thr[:, None]).sum(1) / len(segs)
    tpr = recall * existence
    fpr = (npred - tp) / (len(lab) - p_new)
    prec = tp / npred
    tpr_l = np.r_[0.0, tpr, 1.0]
    fpr_l = np.r_[0.0, fpr, 1.0]
    prec_l = np.r_[1.0, prec]
    roc = float(np.sum((fpr_l[1:] - fpr_l[:-1]) * (tpr_l[1:] + tpr_l[:-1]) / 2))
    ap = float(np.sum((tpr_l[1:-1] - tpr_l[:-2]) * (prec_l[1:] + prec_l[:-1]) / 2))
    return roc, ap


def vus(y_true, scores, max_buffer: int = 64, step: int = 1) -> dict:
    """VUS-ROC and VUS-PR: range AUCs averaged over buffers 0, step, ..., max_buffer points."""
    if not is_int(max_buffer) or max_buffer < 0:
        raise InputError(_fmt("max_buffer", f"is {max_buffer!r}", "pass a buffer length >= 0 (points), e.g. the window length"))
    y, s = _range_inputs(y_true, scores)
    desc = _descending(s, N_THRESHOLDS)  # sorted once: the scores are the same at every buffer
    res = np.array([_range_pr_roc(y, s, b, desc) for b in range(0, int(max_buffer) + 1, max(1, int(step)))])
    return {"vus_roc": float(res[:, 0].mean()), "vus_pr": float(res[:, 1].mean()), "max_buffer": int(max_buffer)}


def series_metrics(y_true, scores, y_pred=None, max_buffer: int = 64, y_event=None, breaks=None, true_breaks=None) -> dict:
    """Everything at once: point AUROC/AUPRC, VUS-PR/ROC; with ``y_pred``: point and event
    precision/recall/F1 (no point adjustment), and PA-F1 beside PA%K's area. Event-wise figures
    read ``y_event`` when given (the points inside the detector's events, gaps it bridges
    included), else ``y_pred``; predicted events are split at ``breaks``, labelled ones at
    ``true_breaks`` (:func:`event_prf`; VUS, like its reference, reads the 0 / 1 labels)."""
    from ganad.metrics import auprc, auroc
    y = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), "y_true")
    s = _scores(scores, len(y))
    out = {"n_points": int(len(y)), "n_anomalous_points": int(y.sum()), "point_auroc": auroc(y, s), "point_auprc": auprc(y, s)}
    out.update(vus(y, s, max_buffer))
    if y_pred is not None:
        y_, p = _ok(y, y_pred)
        tp = int(np.sum(y_ & p))
        out["point_precision"] = tp / max(int(p.sum()), 1)
        out["point_recall"] = tp / max(int(y_.sum()), 1)
        out["point_f1"] = _f1(y_.astype(bool), p.astype(bool))
        out.update(event_prf(y_, p if y_event is None else check_labels(y_event, len(y_), "y_event"), breaks, true_breaks))
        pak = pa_k_f1(y_, p, true_breaks=true_breaks)
        out["pa_f1"] = pak["f1"][0]
        out["pak_auc_f1"] = pak["pak_auc"]
    return out
