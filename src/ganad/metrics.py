"""Evaluation metrics. Ranking metrics (AUROC, AUPRC) always take continuous scores.

Labels follow the anomaly-detection convention: 1 = anomaly (the positive class), 0 = normal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn import metrics as skm

from ganad.data.validation import check_labels
from ganad.exceptions import InputError, _fmt


def _scores(scores, n=None, name="scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if n is not None and s.shape[0] != n:
        raise InputError(_fmt(name, f"has {s.shape[0]} values for {n} labels", "pass one score per labelled sample"))
    if not np.isfinite(s).all():
        raise InputError(_fmt(name, "contains NaN or infinite values", "check the detector's input for NaN/inf"))
    return s


def _inf_on_top(s: np.ndarray, floor: float | None = None) -> tuple[np.ndarray, int]:
    """`ganad score --nonfinite max` writes inf for the rows it scores as the most anomalous: those are
    ranked above every other score (the ranking metrics need finite scores) and above ``floor`` (the
    model's threshold, which an inf score exceeds: the decisions and the plots' operating point taken
    from the replaced scores must still flag them); (scores, how many were inf).
    Scores holding NaN or -inf are returned as they are, for :func:`_scores` to refuse."""
    top = np.isposinf(s)
    if not top.any() or not np.isfinite(s[~top]).all():
        return s, 0
    hi = float(s[~top].max()) if (~top).any() else 0.0
    if floor is not None and np.isfinite(floor):
        hi = max(hi, float(floor))
    return np.where(top, hi + max(1.0, abs(hi)), s), int(top.sum())


def _finite_scores_file(s: np.ndarray, path) -> None:
    """Refuse a scores file's 'score' column (after :func:`_inf_on_top`) holding NaN, -inf or
    non-numbers, naming the file and the first such row (``evaluate`` would name only "scores")."""
    from ganad.exceptions import DataFileError
    bad = ~np.isfinite(s)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataFileError(_fmt(str(path), f"has {int(bad.sum())} NaN, -inf or non-numeric value(s) in its 'score' column, the first at row {first} "
                                 "(counting from 0 below the header)",
                                 "score the data again (`ganad score --nonfinite max` ranks rows whose score overflows first), "
                                 "or drop those rows from the scores and the labels"))


def _both_classes(y, name="y_true"):
    if y.size == 0:
        raise InputError(_fmt(name, "is empty", "pass scored samples with both normal (0) and anomalous (1) labels"))
    if y.min() == y.max():
        raise InputError(_fmt(name, "holds only one class", "ranking metrics need both normal (0) and anomalous (1) samples"))


def auroc(y_true, scores) -> float:
    """Area under the ROC curve from continuous scores (higher = more anomalous)."""
    y = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), "y_true")
    _both_classes(y)
    return float(skm.roc_auc_score(y, _scores(scores, len(y))))


def average_precision(y, s) -> float:
    """scikit-learn's average precision, kept in [0, 1]: its sum of recall steps × precision can round
    to 1 + 4e-16 on a perfect ranking, which a table (or a check of the range) should not show."""
    return min(1.0, max(0.0, float(skm.average_precision_score(y, s))))


def auprc(y_true, scores) -> float:
    """Area under the precision-recall curve (average precision) from continuous scores."""
    y = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), "y_true")
    _both_classes(y)
    return average_precision(y, _scores(scores, len(y)))


def f_beta(y_true, y_pred, beta: float = 1.0) -> float:
    y = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), "y_true")
    p = check_labels(y_pred, len(y), "y_pred")
    return float(skm.fbeta_score(y, p, beta=beta, zero_division=0))


def mcc(y_true, y_pred) -> float:
    """Matthews correlation coefficient of hard labels."""
    y = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), "y_true")
    p = check_labels(y_pred, len(y), "y_pred")
    return float(skm.matthews_corrcoef(y, p))


@dataclass
class Evaluation:
    """What :func:`evaluate` returns. ``None`` marks a metric the labels and predictions do not define:
    AUROC, AUPRC, precision, F1 and MCC need both classes; recall needs anomalies, the false-positive
    rate normal samples; the hard-label metrics need a threshold or predictions."""
    n: int
    n_anomalies: int
    auroc: float | None
    auprc: float | None
    threshold: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    mcc: float | None
    #: flagged normal samples / normal samples (the false-alarm rate a monitor sees)
    false_positive_rate: float | None = None
    #: samples flagged as anomalies (predicted 1)
    n_flagged: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(y_true, scores, threshold: float | None = None, y_pred=None) -> Evaluation:
    """All metrics at once: AUROC/AUPRC from ``scores``; precision, recall, F1, MCC and the
    false-positive rate at ``threshold``.

    Hard-label metrics use ``y_pred`` when given, else ``scores > threshold``; they are
    ``None`` when neither is given (ranking metrics never need a threshold).

    Labels of one class are evaluated too, for what they define: a batch of known-normal data gives
    the false-positive rate at the threshold (how often a monitor would raise a false alarm), a
    batch of known anomalies the recall (how many it catches); AUROC, AUPRC, precision, F1 and MCC
    compare the two classes and are ``None``. :func:`auroc` and :func:`auprc` alone still refuse
    one class.

    A ``+inf`` score (what ``on_nonfinite='max'`` makes of a row the networks overflow on) ranks
    above every other score and above ``threshold``, as ``ganad evaluate`` ranks it; NaN and
    ``-inf`` are refused.
    """
    y = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), "y_true")
    s, _ = _inf_on_top(np.asarray(scores, dtype=np.float64).reshape(-1), floor=threshold)
    s = _scores(s, len(y))
    if y.size == 0:
        raise InputError(_fmt("y_true", "is empty", "pass at least one scored, labelled sample"))
    both = bool(y.min() != y.max())
    if y_pred is None and threshold is not None:
        y_pred = (s > threshold).astype(np.int64)
    prec = rec = f1 = m = fpr = None
    flagged = None
    if y_pred is not None:
        p = check_labels(y_pred, len(y), "y_pred")
        flagged = int(p.sum())
        if y.any():
            rec = float(p[y == 1].mean())
        if not y.all():
            fpr = float(p[y == 0].mean())
        if both:
            prec = float(skm.precision_score(y, p, zero_division=0))
            f1 = float(skm.f1_score(y, p, zero_division=0))
            m = float(skm.matthews_corrcoef(y, p))
    return Evaluation(
        n=int(len(y)), n_anomalies=int(y.sum()),
        auroc=float(skm.roc_auc_score(y, s)) if both else None,
        auprc=average_precision(y, s) if both else None,
        threshold=None if threshold is None else float(threshold),
        precision=prec, recall=rec, f1=f1, mcc=m, false_positive_rate=fpr, n_flagged=flagged,
    )
