"""Synthetic anomalies made from normal rows, and the AUROC that tells them apart: the label-free
objective of ``ganad tune`` (:mod:`ganad.tune`) and of the knn component's choice of blocks at fit
(``knn_space='auto'``, :meth:`ganad.detectors.base.BaseGANDetector._select_knn_blocks`)."""

from __future__ import annotations

import numpy as np

from ganad.exceptions import InputError, _fmt


def synthetic_anomalies(X: np.ndarray, seed: int = 0, fraction: tuple[float, float] = (0.1, 0.5)) -> np.ndarray:
    """One corrupted copy of every row of ``X`` (n ≥ 2): each copy has a random fraction in
    ``fraction`` of its features (elements, for series and images) changed; even rows by values
    of the same features in other rows (a draw from the product of the marginals), odd rows by
    Gaussian noise of one per-feature standard deviation (of ``X``) added. Seeded: the same
    ``X`` and ``seed`` give the same copies."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n < 2:
        raise InputError(_fmt("X", f"has {n} row(s)", "give at least 2 held-out rows"))
    flat = X.reshape(n, -1)
    d = flat.shape[1]
    rng = np.random.RandomState(seed)
    out = flat.copy()
    sd = flat.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    for i in range(n):
        k = max(1, int(round(rng.uniform(*fraction) * d)))
        cols = rng.choice(d, size=k, replace=False)
        if i % 2 == 0:
            donors = rng.randint(0, n - 1, size=k)
            donors = donors + (donors >= i)  # another row
            out[i, cols] = flat[donors, cols]
        else:
            out[i, cols] = flat[i, cols] + rng.standard_normal(k) * sd[cols]
    return out.reshape(X.shape)


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    """AUROC of scores ``s`` for labels ``y`` (1 = anomaly); 0.5 when the scores are all alike."""
    from sklearn.metrics import roc_auc_score
    s = np.asarray(s, dtype=np.float64)
    if not np.isfinite(s).all():
        raise FloatingPointError("scores are not finite")
    if np.ptp(s) == 0:
        return 0.5
    return float(roc_auc_score(y, s))
