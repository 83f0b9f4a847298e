"""Composition of score components into one anomaly score.

Every composer is a pure function of the components once built: calling it never refits
anything, so a sample's score never depends on the other samples scored with it. Each has
``to_dict()`` (plain JSON: no pickle) and is registered in :data:`COMPOSERS` so that
:func:`composer_from_dict` rebuilds it from a model file.

- :class:`WeightedSum`: Σ λ_i · component_i on the raw components, λ summing to one.
- :class:`RobustStandardised`: each component standardised by the median / MAD of normal
  data, then a (weighted) mean; the label-free default of :meth:`calibrate`.
- :class:`TailSurprise`: each component's −log upper-tail probability among normal data
  (empirical, with an exponential tail), summed: Fisher's combination; how a
  :class:`ganad.MultiViewDetector` joins its views.
- :class:`GridSearch`: a RobustStandardised whose weights were chosen on a simplex grid to
  maximise AUROC, AUPRC, F_β or MCC on labelled validation data.
- :class:`SVMComposer`: class-weighted RBF SVM over the standardised components with Platt
  scaling (Lüer et al. 2023); the score is the log-odds of the anomaly probability (a model
  file from before that stores no ``output`` keeps the probability itself). Stored as support
  vectors, dual coefficients, intercept, γ and Platt's (A, B), re-evaluated with NumPy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ganad.exceptions import InputError, _fmt

#: MAD of a normal distribution times this = its standard deviation
MAD_TO_STD = 1.4826


#: suffix of a component that is the unnormalised twin of another: ``<name>_raw`` is ``<name>`` up
#: to an affine map (GANomaly's ``latent_raw`` and ``latent`` = its training-standardised form)
RAW_SUFFIX = "_raw"


def composable(names, twins=()) -> list[str]:
    """Sorted component names for a composition over all of them, without twins.

    A component ``<name>_raw`` whose normalised twin ``<name>`` is also present is left out:
    after standardisation the two are the same score, and composing both would count it twice.
    So is every name in ``twins``: components a detector computes as another one (TadGAN's
    ``rec_error`` with ``rec_error='point'`` is its ``residual``; the detector's ``_twin_components``).
    """
    names, twins = set(names), set(twins)
    return sorted(k for k in names if k not in twins and not (k.endswith(RAW_SUFFIX) and k[: -len(RAW_SUFFIX)] in names))


def _check_names(names, components) -> list[str]:
    missing = [k for k in names if k not in components]
    if missing:
        raise InputError(_fmt("composition", f"uses component(s) {missing} this detector does not compute",
                              f"use only {sorted(components)}"))
    return list(names)


def _stack(components: dict[str, np.ndarray], names) -> np.ndarray:
    """(n, k) float64 matrix of the named components."""
    _check_names(names, components)
    cols = [np.asarray(components[k], dtype=np.float64).reshape(-1) for k in names]
    n = {c.shape[0] for c in cols}
    if len(n) != 1:
        raise InputError(_fmt("components", f"have different lengths {sorted(n)}", "pass one value per sample for every component"))
    return np.stack(cols, axis=1)


def _normalise_weights(weights: dict[str, float], name="weights") -> dict[str, float]:
    if not weights:
        raise InputError(_fmt(name, "is empty", "give at least one component weight"))
    try:
        w = {k: float(v) for k, v in weights.items()}
    except (TypeError, ValueError) as exc:
        raise InputError(_fmt(name, f"holds a weight that is not a number ({dict(weights)!r})",
                              "pass numbers, for example {'residual': 0.9, 'feature': 0.1}")) from exc
    if any(isinstance(v, (bool, str)) for v in weights.values()):
        raise InputError(_fmt(name, f"holds a weight that is not a number ({dict(weights)!r})",
                              "pass numbers, for example {'residual': 0.9, 'feature': 0.1}"))
    if any(v < 0 or not np.isfinite(v) for v in w.values()) or sum(w.values()) <= 0:
        raise InputError(_fmt(name, f"must be finite, non-negative and not all zero, got {w}", "pass for example {'residual': 0.9, 'feature': 0.1}"))
    total = sum(w.values())
    if abs(total - 1.0) <= 1e-12:  # already normalised (a saved model's weights): keep them bit for bit, since
        return w                   # dividing by a rounded sum again (7 × 1/7 = 0.9999999999999998) would move them
    return {k: v / total for k, v in w.items()}


class WeightedSum:
    """score = Σ λ_i · component_i, with the λ_i normalised to sum to one."""

    kind = "weights"

    def __init__(self, weights: dict[str, float]):
        self.weights = _normalise_weights(weights)

    def __call__(self, components: dict[str, np.ndarray]) -> np.ndarray:
        X = _stack(components, list(self.weights))
        return X @ np.array(list(self.weights.values()))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "weights": self.weights}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(d["weights"])


def residual_feature_composer(lam: float, n_x: int, n_f: int) -> WeightedSum:
    """AnoGAN's / EGBAD's score (1 − λ)·Σ|x − x̂| + λ·Σ|f(x) − f(x̂)| (Schlegl et al. 2017; Zenati et
    al. 2018: sums over the ``n_x`` elements of x and the ``n_f`` discriminator features) from the
    per-element *mean* components ``residual`` and ``feature``: weights (1 − λ)·n_x and λ·n_f.
    WeightedSum normalises them to sum to one, which rescales the score by a constant and keeps
    the ranking of the sums. (Mixing the means with (1 − λ, λ) instead would weight the feature
    term n_x / n_f times more than stated: λ = 0.1 acted like 0.64 on 256-sample beats with 16 features.)"""
    lam = float(lam)
    return WeightedSum({"residual": (1.0 - lam) * int(n_x), "feature": lam * int(n_f)})


def robust_location_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise median and MAD·1.4826 of ``X`` (n, k); a zero MAD falls back to the std, then 1."""
    X = np.asarray(X, dtype=np.float64)
    med = np.median(X, axis=0)
    mad = np.median(np.abs(X - med), axis=0) * MAD_TO_STD
    std = X.std(axis=0)
    scale = np.where(mad > 1e-12, mad, np.where(std > 1e-12, std, 1.0))
    return med, scale


class RobustStandardised:
    """score = Σ λ_i · (c_i − median_i) / MAD_i, median and MAD from normal data.

    Standardising puts components of different units (a residual in input units, a
    cross entropy in nats, a latent-norm deviation) on one scale, robustly (a few anomalies
    in the reference data barely move median and MAD). Weights default to equal.
    """

    kind = "robust"

    def __init__(self, names, median, scale, weights: dict[str, float] | None = None):
        self.names = [str(n) for n in names]
        self.median = np.asarray(median, dtype=np.float64).reshape(-1)
        self.scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        if not (len(self.names) == self.median.shape[0] == self.scale.shape[0]) or not self.names:
            raise InputError(_fmt("RobustStandardised", "needs one median and one scale per component name", "build it with RobustStandardised.fit"))
        if np.any(self.scale <= 0) or not np.all(np.isfinite(self.scale)) or not np.all(np.isfinite(self.median)):
            raise InputError(_fmt("RobustStandardised", "has a non-positive or non-finite scale / median", "refit it on finite normal data"))
        w = _normalise_weights(weights) if weights else {k: 1.0 / len(self.names) for k in self.names}
        unknown = [k for k in w if k not in self.names]
        if unknown:
            raise InputError(_fmt("weights", f"name component(s) {unknown} that are not standardised", f"use only {self.names}"))
        self.weights = {k: w.get(k, 0.0) for k in self.names}

    @classmethod
    def fit(cls, components: dict[str, np.ndarray], names=None, weights: dict[str, float] | None = None):
        """Median / MAD of each component on ``components`` (normal samples only)."""
        names = list(names) if names is not None else (list(weights) if weights else sorted(components))
        med, scale = robust_location_scale(_stack(components, names))
        return cls(names, med, scale, weights)

    def standardise(self, components: dict[str, np.ndarray]) -> np.ndarray:
        return (_stack(components, self.names) - self.median) / self.scale

    def __call__(self, components: dict[str, np.ndarray]) -> np.ndarray:
        return self.standardise(components) @ np.array([self.weights[k] for k in self.names])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "names": self.names, "median": self.median.tolist(),
                "scale": self.scale.tolist(), "weights": self.weights}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(d["names"], d["median"], d["scale"], d["weights"])


#: TailSurprise: the share of the normal scores read from their empirical distribution; beyond it, an exponential tail
SURPRISE_BODY = 0.9
#: TailSurprise: quantiles of the normal scores kept per component (the empirical distribution's knots up to SURPRISE_BODY)
SURPRISE_KNOTS = 181


class TailSurprise:
    """score = Σ_i −log P(c_i ≥ value | normal): each component's surprise among normal samples, summed.

    Each component's upper-tail probability p is read from normal reference data: from its empirical
    distribution (interpolated between ``SURPRISE_KNOTS`` quantiles) up to the ``SURPRISE_BODY`` (90 %)
    quantile t, and beyond t from an exponential tail fitted to the reference scores above it
    (peaks over threshold: p = 0.1 · exp(−(c − t) / β), β their mean excess), so that −log p keeps
    growing, linearly, past the largest normal score and extreme samples stay ranked. The sum of the
    −log p is Fisher's combination of independent tests (up to a factor 2). Unlike a median / MAD
    standardisation it does not depend on the shape of a component's normal scores: a component
    whose normal scores are compressed near their median (a two-sided distance folded at it) weighs
    no more for it; what counts is how rare a value is among normal samples. Values are in nats,
    0 for a score at or below the normal minimum, ≈ 2.3 at the 90th percentile, ≈ 4.6 at the 99th.
    """

    kind = "surprise"

    def __init__(self, names, knots, probs, tail_scale, body: float = SURPRISE_BODY):
        self.names = [str(n) for n in names]
        self.body = float(body)
        if not (0.0 < self.body < 1.0):
            raise InputError(_fmt("TailSurprise", f"has body {body!r}", "build it with TailSurprise.fit"))
        self.knots = [np.asarray(k, dtype=np.float64).reshape(-1) for k in knots]
        self.probs = [np.asarray(q, dtype=np.float64).reshape(-1) for q in probs]
        self.tail_scale = np.asarray(tail_scale, dtype=np.float64).reshape(-1)
        if not self.names or not (len(self.names) == len(self.knots) == len(self.probs) == self.tail_scale.shape[0]):
            raise InputError(_fmt("TailSurprise", "needs knots, probabilities and a tail scale per component name", "build it with TailSurprise.fit"))
        for name, x, q in zip(self.names, self.knots, self.probs):
            if (x.size == 0 or x.shape != q.shape or not np.all(np.isfinite(x)) or not np.all(np.isfinite(q)) or np.any(np.diff(x) <= 0)
                    or np.any(np.diff(q) <= 0) or q[0] < 0 or abs(q[-1] - self.body) > 1e-12):
                raise InputError(_fmt(f"TailSurprise component {name!r}", "has knots that are not increasing finite scores with increasing "
                                                                          "probabilities ending at the body share", "refit it on finite normal data"))
        if np.any(self.tail_scale <= 0) or not np.all(np.isfinite(self.tail_scale)):
            raise InputError(_fmt("TailSurprise", "has a non-positive or non-finite tail scale", "refit it on finite normal data"))

    @classmethod
    def fit(cls, components: dict[str, np.ndarray], names=None, body: float = SURPRISE_BODY, n_knots: int = SURPRISE_KNOTS):
        """The components' distributions on ``components`` (normal samples only, at least two)."""
        names = list(names) if names is not None else sorted(components)
        X = np.sort(_stack(components, names), axis=0)
        if X.shape[0] < 2:
            raise InputError(_fmt("components", f"hold {X.shape[0]} sample(s)", "fit on at least two normal samples"))
        grid = np.linspace(0.0, body, n_knots)
        knots, probs, scales = [], [], []
        for j in range(X.shape[1]):
            r = X[:, j]
            x, first = np.unique(np.quantile(r, grid), return_index=True)  # tied quantiles: one knot at the highest probability
            knots.append(x)
            probs.append(grid[np.r_[first[1:] - 1, len(grid) - 1]])
            exc = r[r > x[-1]] - x[-1]
            beta = float(exc.mean()) if exc.size else 0.0
            scales.append(beta if beta > 1e-12 else float(robust_location_scale(r[:, None])[1][0]))  # no spread above t: MAD, std or 1
        return cls(names, knots, probs, scales, body)

    def standardise(self, components: dict[str, np.ndarray]) -> np.ndarray:
        """(n, k) surprises −log P(c ≥ value | normal), one column per component."""
        X = _stack(components, self.names)
        out = np.empty_like(X)
        floor = -math.log1p(-self.body)
        for j, (x, q, beta) in enumerate(zip(self.knots, self.probs, self.tail_scale)):
            c, t = X[:, j], x[-1]
            with np.errstate(invalid="ignore"):  # NaN in, NaN out (np.interp maps NaN to the right end)
                body = -np.log1p(-np.interp(c, x, q, left=0.0, right=self.body)) if x.size > 1 else np.where(c < t, 0.0, floor)
                out[:, j] = np.where(np.isnan(c), np.nan, np.where(c > t, floor + (c - t) / beta, body))
        return out

    def __call__(self, components: dict[str, np.ndarray]) -> np.ndarray:
        return self.standardise(components).sum(axis=1)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "names": self.names, "body": self.body, "knots": [x.tolist() for x in self.knots],
                "probs": [q.tolist() for q in self.probs], "tail_scale": self.tail_scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(d["names"], d["knots"], d["probs"], d["tail_scale"], d["body"])


def simplex_grid(k: int, step: float) -> np.ndarray:
    """All weight vectors of length ``k`` on the simplex with entries multiples of ``step``."""
    m = int(round(1.0 / step))
    if m < 1 or abs(m * step - 1.0) > 1e-9:
        raise InputError(_fmt("step", f"is {step}", "pass 1/m for an integer m, such as 0.1 or 0.05"))
    if math.comb(m + k - 1, k - 1) > 200_000:
        raise InputError(_fmt("step", f"gives {math.comb(m + k - 1, k - 1)} weight vectors for {k} components",
                              "use a coarser step or fewer components"))
    rows = []
    for bars in itertools.combinations(range(m + k - 1), k - 1):  # stars and bars
        prev, parts = -1, []
        for b in bars:
            parts.append(b - prev - 1)
            prev = b
        parts.append(m + k - 2 - prev)
        rows.append(parts)
    return np.asarray(rows, dtype=np.float64) / m


def _metric_value(metric: str, y: np.ndarray, s: np.ndarray, beta: float) -> float:
    from sklearn import metrics as skm

    from ganad.scoring.threshold import best_threshold
    if metric == "auroc":
        return float(skm.roc_auc_score(y, s))
    if metric == "auprc":
        return float(skm.average_precision_score(y, s))
    return best_threshold(s, y, metric, beta=beta)[1]


GRID_METRICS = ("auroc", "auprc", "f1", "fbeta", "mcc")


class GridSearch(RobustStandardised):
    """RobustStandardised whose weights maximise a metric on labelled validation data.

    Ranking metrics (AUROC, AUPRC) are computed from the continuous score; F_β and MCC at the
    best threshold of each candidate. Ties go to the first weight vector in grid order.
    """

    kind = "grid"

    def __init__(self, names, median, scale, weights=None, metric="auroc", value=float("nan"), step=0.1, beta=1.0):
        super().__init__(names, median, scale, weights)
        self.metric, self.value, self.step, self.beta = str(metric), float(value), float(step), float(beta)

    @classmethod
    def fit(cls, components, y, names=None, *, metric="auroc", step=0.1, beta=1.0, normal_mask=None):
        y = np.asarray(y).reshape(-1).astype(np.int64)
        if metric not in GRID_METRICS:
            raise InputError(_fmt("metric", f"is {metric!r}", f"use one of {', '.join(GRID_METRICS)}"))
        if y.min() == y.max():
            raise InputError(_fmt("y_val", "holds only one class", "grid search needs labelled normal (0) and anomalous (1) samples"))
        names = list(names) if names is not None else sorted(components)
        X = _stack(components, names)
        ref = X[y == 0] if normal_mask is None else X[np.asarray(normal_mask, bool)]
        med, scale = robust_location_scale(ref)
        Z = (X - med) / scale
        grid = simplex_grid(len(names), step)
        if metric == "auroc":  # vectorised: AUROC = P(s_anomaly > s_normal) via ranks
            from scipy.stats import rankdata
            S = Z @ grid.T  # (n, g)
            R = rankdata(S, axis=0)
            n1, n0 = int(y.sum()), int((y == 0).sum())
            vals = (R[y == 1].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)
        else:
            vals = np.array([_metric_value(metric, y, Z @ g, beta) for g in grid])
        best = int(np.argmax(vals))  # first maximum: deterministic
        return cls(names, med, scale, dict(zip(names, grid[best].tolist())), metric, float(vals[best]), step, beta)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "metric": self.metric, "value": self.value, "step": self.step, "beta": self.beta}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(d["names"], d["median"], d["scale"], d["weights"], d.get("metric", "auroc"),
                   d.get("value", float("nan")), d.get("step", 0.1), d.get("beta", 1.0))


def platt_fit(f: np.ndarray, y: np.ndarray, max_iter: int = 100) -> tuple[float, float]:
    """Platt's (A, B) for P(y=1 | f) = 1 / (1 + exp(A f + B)) with Platt's smoothed targets, by
    Lin, Lin and Weng's algorithm ("A note on Platt's probabilistic outputs for support vector
    machines", Machine Learning 68, 2007; the one LIBSVM uses): Newton steps with a backtracking line
    search on the cross entropy, computed without overflow. Plain Newton steps (what this was) run
    away on well separated decision values, to |A| ≈ 1e13: a step function instead of log-odds."""
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    n1, n0 = int(y.sum()), int((y == 0).sum())
    t = np.where(y == 1, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))

    def objective(a: float, b: float) -> float:
        z = a * f + b  # log(1 + exp(z)) - (1 - t) z, written for either sign of z
        return float(np.sum(np.where(z >= 0, t * z + np.log1p(np.exp(-np.abs(z))), (t - 1) * z + np.log1p(np.exp(-np.abs(z))))))

    A, B = 0.0, math.log((n0 + 1.0) / (n1 + 1.0))
    fval, sigma, eps, min_step = objective(A, B), 1e-12, 1e-5, 1e-10
    for _ in range(max_iter):
        z = A * f + B
        e = np.exp(-np.abs(z))
        p = np.where(z >= 0, e / (1 + e), 1 / (1 + e))  # P(y = 1 | f)
        q = 1 - p
        d2 = p * q
        h11, h22, h21 = sigma + np.dot(f * f, d2), sigma + d2.sum(), np.dot(f, d2)
        d1 = t - p
        g1, g2 = np.dot(f, d1), d1.sum()
        if abs(g1) < eps and abs(g2) < eps:
            break
        det = h11 * h22 - h21 * h21
        dA, dB = -(h22 * g1 - h21 * g2) / det, -(-h21 * g1 + h11 * g2) / det
        gd = g1 * dA + g2 * dB
        step = 1.0
        while step >= min_step:
            nA, nB = A + step * dA, B + step * dB
            nf = objective(nA, nB)
            if nf < fval + 1e-4 * step * gd:
                A, B, fval = nA, nB, nf
                break
            step /= 2.0
        if step < min_step:  # no step lowers the objective: at the optimum up to rounding
            break
    return float(A), float(B)


#: what :class:`SVMComposer` returns: ``"log_odds"`` (new fits) or ``"probability"`` (model files
#: written before ``output`` was stored, which keep the score their threshold was set on)
SVM_OUTPUTS = ("log_odds", "probability")


class SVMComposer:
    """RBF SVM over robustly standardised components, class_weight='balanced', Platt-calibrated.

    ``score = −(A·f(x) + B)``, the log-odds of Platt's anomaly probability
    ``P = 1 / (1 + exp(A·f(x) + B))`` (:meth:`probability`), with ``f(x) = Σ_j α_j K(x, sv_j) + b``
    and ``K(x, x') = exp(−γ ‖x − x'‖²)``. Evaluated with NumPy from the stored support vectors,
    so the model file holds no pickle.

    The log-odds rank samples exactly as P does, but never saturate: P itself underflows towards
    0 (and rounds to 1) once |A·f + B| exceeds a few dozen, which happens when Platt's slope A is
    steep (well separated calibration data, or γ = 'scale' shrunk by an extreme sample), and then
    gives many distinct samples one score. ``output="probability"`` is the old score, kept for
    model files that stored no ``output`` (their threshold is a probability).
    """

    kind = "svm"

    def __init__(self, names, median, scale, support_vectors, dual_coef, intercept, gamma, platt_a, platt_b, C=1.0,
                 output="log_odds"):
        self.std = RobustStandardised(names, median, scale)
        self.names = self.std.names
        self.support_vectors = np.asarray(support_vectors, dtype=np.float64).reshape(-1, len(self.names))
        self.dual_coef = np.asarray(dual_coef, dtype=np.float64).reshape(-1)
        self.intercept, self.gamma = float(intercept), float(gamma)
        self.platt_a, self.platt_b, self.C = float(platt_a), float(platt_b), float(C)
        if not (self.support_vectors.shape[0] == self.dual_coef.shape[0] >= 1 and np.all(np.isfinite(self.support_vectors))
                and np.all(np.isfinite(self.dual_coef)) and self.gamma > 0):  # what from_dict reads from a model file
            raise InputError(_fmt("SVMComposer", "needs finite support vectors, one finite dual coefficient per support vector and gamma > 0",
                                  "build it with SVMComposer.fit"))
        if not (isinstance(output, str) and output in SVM_OUTPUTS):
            raise InputError(_fmt("SVMComposer", f"output is {output!r}", f"use one of {', '.join(SVM_OUTPUTS)}"))
        self.output = output

    @classmethod
    def fit(cls, components, y, names=None, *, C=1.0, gamma="scale", normal_mask=None):
        from sklearn.svm import SVC
        y = np.asarray(y).reshape(-1).astype(np.int64)
        if y.min() == y.max():
            raise InputError(_fmt("y_val", "holds only one class", "the SVM composition needs labelled normal (0) and anomalous (1) samples"))
        names = list(names) if names is not None else sorted(components)
        X = _stack(components, names)
        ref = X[y == 0] if normal_mask is None else X[np.asarray(normal_mask, bool)]
        med, scale = robust_location_scale(ref)
        Z = (X - med) / scale
        svc = SVC(kernel="rbf", C=C, gamma=gamma, class_weight="balanced").fit(Z, y)  # deterministic without probability=True
        f = svc.decision_function(Z)  # > 0 means class 1 (anomaly)
        if not np.ptp(f) > 1e-9 * max(1.0, float(np.abs(f).max())):  # identical components: a flat SVM, one score for every input
            raise InputError(_fmt("X_val", f"gives the SVM composition one decision value for all {len(y)} validation samples "
                                           "(their components do not tell the classes apart: identical or near-identical rows), so "
                                           "every input would get the same score",
                                  "calibrate on validation samples whose components differ (more varied normal and anomalous "
                                  "samples), or use compose='default' or 'standardised', which need no labels"))
        a, b = platt_fit(f, y)
        return cls(names, med, scale, svc.support_vectors_, svc.dual_coef_[0], svc.intercept_[0], svc._gamma, a, b, C)

    def decision_values(self, components) -> np.ndarray:
        Z = self.std.standardise(components)
        d2 = (Z * Z).sum(1)[:, None] + (self.support_vectors ** 2).sum(1)[None, :] - 2.0 * Z @ self.support_vectors.T
        K = np.exp(-self.gamma * np.maximum(d2, 0.0))
        return K @ self.dual_coef + self.intercept

    def log_odds(self, components) -> np.ndarray:
        """log P / (1 − P) = −(A·f + B): finite wherever f is, and affine in f."""
        return -(self.platt_a * self.decision_values(components) + self.platt_b)

    def probability(self, components) -> np.ndarray:
        """Platt's anomaly probability P = 1 / (1 + exp(A·f + B)) (underflows to 0 and rounds to 1 far from the boundary)."""
        t = self.log_odds(components)
        e = np.exp(-np.abs(t))  # never overflows
        return np.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def __call__(self, components) -> np.ndarray:
        if self.output == "log_odds":
            return self.log_odds(components)
        f = self.decision_values(components)  # a model file from before "output": the score its threshold was set on
        return 1.0 / (1.0 + np.exp(np.clip(self.platt_a * f + self.platt_b, -500, 500)))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "names": self.names, "median": self.std.median.tolist(), "scale": self.std.scale.tolist(),
                "support_vectors": self.support_vectors.tolist(), "dual_coef": self.dual_coef.tolist(),
                "intercept": self.intercept, "gamma": self.gamma, "platt_a": self.platt_a, "platt_b": self.platt_b, "C": self.C,
                "output": self.output}

    @classmethod
    def from_dict(cls, d: dict):
        # no "output": written before it was stored, when the score was the probability
        return cls(d["names"], d["median"], d["scale"], d["support_vectors"], d["dual_coef"], d["intercept"],
                   d["gamma"], d["platt_a"], d["platt_b"], d.get("C", 1.0), d.get("output", "probability"))


def required_components(composer) -> list[str] | None:
    """The component names ``composer`` reads (None where it does not say: compute them all)."""
    names = getattr(composer, "names", None)
    if names is None and isinstance(getattr(composer, "weights", None), dict):
        names = list(composer.weights)
    return list(names) if names is not None else None


class KnnBlend:
    """score = (1 − w)·z(method score) + w·z(knn): the method's own composition and the ``knn``
    component (distance of the sample to its nearest training samples in the discriminator's feature
    space or the code space, ``knn_space``), each standardised by
    its median / MAD on the held-out slice of the training data (no labels).

    The residual asks "can the model reproduce this sample?", the kNN distance "has the model seen
    anything like this sample?"; a sample that is reproduced well but lies away from every training
    sample in the model's representation (the case where a GAN generalises too well) is caught by
    the second.
    """

    kind = "knn-blend"

    def __init__(self, inner, weight: float, loc, scale):
        self.inner, self.weight = inner, float(weight)
        self.loc, self.scale = [float(v) for v in loc], [float(v) for v in scale]
        inner_names = required_components(inner)
        if self.weight == 1.0:  # the own score counts 0: scoring need not compute its components
            self.names: list[str] | None = ["knn"]
        else:
            self.names = None if inner_names is None else list(dict.fromkeys(inner_names + ["knn"]))

    def __call__(self, components: dict[str, np.ndarray]) -> np.ndarray:
        knn = _stack(components, ["knn"])[:, 0]
        if self.weight == 1.0:  # the own score counts 0 (the default of knn_space 'feature+input'): an
            # overflowing own score (inf) must not turn the score into 0·inf = NaN
            return (knn - self.loc[1]) / self.scale[1]
        own = np.asarray(self.inner(components), dtype=np.float64)
        return ((1 - self.weight) * (own - self.loc[0]) / self.scale[0]
                + self.weight * (knn - self.loc[1]) / self.scale[1])

    @classmethod
    def fit(cls, inner, components: dict[str, np.ndarray], weight: float, own: bool = True):
        """Standardisation statistics from the components of held-out normal samples. ``own=False``
        (weight 1 only: the own score counts 0): ``components`` hold ``knn`` alone, and the own
        score's statistics are the identity (0, 1)."""
        knn = np.asarray(components["knn"], dtype=np.float64)
        if not own:
            if weight != 1.0:
                raise ValueError("KnnBlend.fit(own=False) needs weight 1: the own score counts otherwise")
            (loc,), (scale,) = robust_location_scale(knn[:, None])
            return cls(inner, weight, [0.0, float(loc)], [1.0, float(scale)])
        ref = np.stack([np.asarray(inner(components), dtype=np.float64), knn], 1)
        loc, scale = robust_location_scale(ref)
        return cls(inner, weight, loc, scale)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "inner": self.inner.to_dict(), "weight": self.weight, "loc": self.loc, "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict):
        w, loc, scale = d["weight"], d["loc"], d["scale"]
        if not (isinstance(w, (int, float)) and 0 <= w <= 1 and isinstance(loc, list) and isinstance(scale, list)
                and len(loc) == len(scale) == 2 and all(isinstance(v, (int, float)) and np.isfinite(v) for v in loc + scale)
                and min(scale) > 0):
            raise ValueError("knn-blend composition: weight must be in [0, 1], loc and scale two finite numbers, scale > 0")
        return cls(composer_from_dict(d["inner"]), w, loc, scale)


COMPOSERS = {"weights": WeightedSum, "robust": RobustStandardised, "grid": GridSearch, "svm": SVMComposer,
             "knn-blend": KnnBlend}


def composer_from_dict(d: dict):
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in COMPOSERS:
        raise ValueError(f"unknown composition {kind!r}; known: {sorted(COMPOSERS)}")
    return COMPOSERS[kind].from_dict(d)
