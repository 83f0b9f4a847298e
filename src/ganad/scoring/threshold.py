"""Thresholds τ: a sample is labelled anomalous when its score is above τ."""

from __future__ import annotations

import numpy as np

from ganad.exceptions import InputError, _fmt


def check_contamination(c) -> float:
    c = float(c)
    if not 0.0 < c <= 0.5:
        raise InputError(_fmt("contamination", f"is {c}", "pass the expected fraction of anomalies, in (0, 0.5]"))
    return c


def contamination_threshold(scores: np.ndarray, contamination: float) -> float:
    """The (1 - contamination) quantile of scores: that fraction of them lie above τ."""
    return float(np.quantile(np.asarray(scores, dtype=np.float64), 1.0 - check_contamination(contamination)))
