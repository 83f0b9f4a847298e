"""Calibration: fit the composition and the threshold on validation data, after training.

``fit`` learns the networks from training data; :func:`calibrate` learns the composer and
the threshold from a separate validation set (labels optional); scoring afterwards only
applies them and never refits anything. What was done is recorded in ``det.calibration_``
and saved in the model file with the composer and ``threshold_``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganad.data.validation import check_labels
from ganad.exceptions import InputError, _fmt
from ganad.scoring.composition import GRID_METRICS, GridSearch, KnnBlend, RobustStandardised, SVMComposer, WeightedSum, _stack, composable
from ganad.scoring.threshold import best_threshold, check_contamination, contamination_threshold, fpr_achieved, fpr_shortfall, fpr_threshold

COMPOSE = ("default", "standardised", "weights", "grid", "svm")
THRESHOLDS = ("contamination", "f1", "fbeta", "mcc", "fpr")


def _needs_both(y, what):
    if y is None or y.min() == y.max():
        raise InputError(_fmt("y_val", "is missing or holds only one class" if y is not None else "is missing",
                              f"{what} needs labelled validation data with normal (0) and anomalous (1) samples; "
                              "pass y_val (CLI: --labels), or use compose='default' with threshold='contamination' or 'fpr'"))


def _refuse_nonfinite(values: np.ndarray, what: str, name: str = "X_val") -> None:
    """Refuse validation rows whose ``values`` (n,) or (n, k) hold a NaN or inf: a composition and a
    threshold fitted on them are meaningless (a NaN quantile is a threshold that labels every row normal)."""
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v).reshape(v.shape[0], -1).all(axis=1)  # (n,): a row with any value not finite
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(_fmt(name, f"row(s) {rows[:10].tolist()}{' ...' if len(rows) > 10 else ''} ({len(rows)} of {bad.size}) "
                                       f"get {what} that are not finite (NaN / inf): their values overflow the float32 networks",
                              "drop or rescale these rows: the composition and the threshold are fitted on finite scores"))


def fit_composer(components: dict[str, np.ndarray], y=None, *, compose="default", weights=None, metric="auroc",
                 beta=1.0, step=0.1, default=None, refit=None, twins=()):
    """Build a composer from validation components (``y`` 1 = anomaly, optional). ``default``: the
    detector's fitted default composer ('weights' without weights keeps it); ``refit``: normal components
    -> the default score re-fitted on them ('default'; without it, 'default' is 'standardised');
    ``twins``: components that repeat another one, left out of compositions over all of them."""
    if compose not in COMPOSE:
        raise InputError(_fmt("compose", f"is {compose!r}", f"use one of {', '.join(COMPOSE)}"))
    if weights is not None and not (isinstance(weights, dict) and all(isinstance(k, str) for k in weights)):
        raise InputError(_fmt("weights", f"is {weights!r}, not a mapping of component name to weight",
                              "pass for example {'residual': 0.9, 'feature': 0.1} (CLI: --weights '{\"residual\": 0.9, \"feature\": 0.1}')"))
    normal = {k: np.asarray(v)[y == 0] for k, v in components.items()} if y is not None else components
    names = list(weights) if weights else composable(components, twins)  # a component and its twin count once
    if compose != "weights":  # the components standardised and composed (an SVM fit refuses inf outright)
        _refuse_nonfinite(_stack(components, names), "score components")
    if compose == "default" and weights:
        raise InputError(_fmt("weights", "are given with compose='default', which keeps the score fit composed (its standardisation "
                                         "re-fitted on X_val)",
                              "use compose='standardised' for the weighted mean of the standardised components, or "
                              "compose='weights' for a fixed weighted sum (CLI: --compose standardised / weights)"))
    if compose in ("default", "standardised"):
        if y is not None and (y == 0).sum() < 2:
            raise InputError(_fmt("y_val", "has fewer than two normal samples", "pass a validation set with normal samples"))
        n_ref = min((np.asarray(v).shape[0] for v in normal.values()), default=0)
        if y is None and n_ref < 2:  # a median / MAD of one value: every scale 0, every score that row's own noise
            raise InputError(_fmt("X_val", f"has {n_ref} sample(s); standardising the components needs at least two",
                                  "pass a validation set of several normal samples"))
        if compose == "default" and refit is not None:
            return refit(normal)
        return RobustStandardised.fit(normal, names, weights)
    if compose == "weights":
        if weights:
            return WeightedSum(weights)
        if default is None:
            raise InputError(_fmt("weights", "is missing", "pass weights such as {'residual': 0.9, 'feature': 0.1}"))
        return default
    if compose == "grid":
        _needs_both(y, "compose='grid'")
        return GridSearch.fit(components, y, names, metric=metric, step=step, beta=beta)
    _needs_both(y, "compose='svm'")
    return SVMComposer.fit(components, y, names)


def default_composer_now(det, normal: dict[str, np.ndarray]):
    """``compose='default'``: the score ``fit`` composes, re-fitted on the normal validation samples'
    components ``normal``: the method's own composition (``_default_composer``: its ``lam``, ``kappa`` or
    ``score_weights`` now) blended with the ``knn`` component at the detector's ``knn_weight`` now (values
    set after fit take effect here), each part standardised by its median / MAD on ``normal``, as fit
    standardises them on its held-out slice; ``knn_weight=0``: the own composition alone. An ensemble
    keeps its mean of the members' standardised scores (each member standardised at fit), and only the
    threshold is fitted."""
    stored = det.__dict__.get("default_composer_")
    if det.__dict__.get("members_") is not None:
        return stored if stored is not None else det._default_composer()
    own = det._default_composer()  # a function of the parameters and the fitted shapes only
    w = det._knn_weight_now()
    if w > 0 and "knn" in normal:
        return KnnBlend.fit(own, normal, w)
    return own


def fit_threshold(scores: np.ndarray, y=None, *, threshold="contamination", contamination=0.1, beta=1.0, fpr=0.05):
    """τ on validation scores; returns ``(τ, info dict)``."""
    if threshold not in THRESHOLDS:
        raise InputError(_fmt("threshold", f"is {threshold!r}", f"use one of {', '.join(THRESHOLDS)}"))
    if threshold == "contamination":
        c = check_contamination(contamination)
        return contamination_threshold(scores, c), {"contamination": c}
    if threshold == "fpr":
        ref = scores[y == 0] if y is not None else scores
        tau = fpr_threshold(ref, fpr)
        return tau, {"fpr": float(fpr), "n_normal": int(ref.size), **fpr_achieved(ref, tau)}
    _needs_both(y, f"threshold={threshold!r}")
    tau, val = best_threshold(scores, y, threshold, beta=beta)
    if threshold == "mcc" and val <= 0:  # flagging every sample (MCC 0 by convention) would win: no threshold at all
        raise InputError(_fmt("y_val", f"gives no threshold better than chance on these validation scores (the best Matthews "
                                       f"correlation is {val:.3g} <= 0: the anomalies do not score above the normal samples), so "
                                       "threshold='mcc' would flag every sample",
                              "check that y_val marks the anomalies with 1 and matches the rows of X_val; if it does, the model "
                              "does not separate them (retrain, or try other components / compose='grid'), or use "
                              "threshold='fpr' or 'contamination', which need no labels to separate"))
    return tau, {"beta": float(beta) if threshold == "fbeta" else 1.0, "value": val}


def calibrate(det, X_val, y_val=None, *, compose="default", threshold="contamination", weights=None, metric="auroc",
              beta=1.0, fpr=0.05, contamination=None, step=0.1):
    """Fit ``det.composer_`` and ``det.threshold_`` on validation data; returns ``det``.

    ``compose``: 'default' (the score fit composed, its standardisation re-fitted on the normal
    validation samples, or on all of them without labels, with the score parameters of now:
    :func:`default_composer_now`), 'standardised'
    (RobustStandardised: every component standardised by the median / MAD of the normal validation
    samples; equal weights or ``weights``), 'weights' (fixed λ, :class:`WeightedSum`), 'grid' (λ on a simplex grid maximising ``metric``),
    'svm' (RBF SVM + Platt; the score is the log-odds of the anomaly probability). ``threshold``: 'contamination' (quantile of the validation
    scores; ``contamination`` defaults to the detector's), 'f1' / 'fbeta' / 'mcc' (best on
    labelled data), 'fpr' (the (1 − fpr) quantile of the normal validation scores).
    """
    if metric not in GRID_METRICS:
        raise InputError(_fmt("metric", f"is {metric!r}", f"use one of {', '.join(GRID_METRICS)}"))
    res = det._score(X_val, None, guard_parts=False)  # non-finite components: refused below, in calibration's words
    comps = res.components
    n = len(next(iter(comps.values())))
    y = check_labels(y_val, n, "y_val").astype(np.int64) if y_val is not None else None
    composer = fit_composer(comps, y, compose=compose, weights=weights, metric=metric, beta=beta, step=step,
                            default=det.__dict__.get("default_composer_") or det._default_composer(),
                            refit=lambda normal: default_composer_now(det, normal), twins=det._twin_components())
    scores = np.asarray(composer(comps), dtype=np.float64)
    _refuse_nonfinite(scores, "scores")
    ref = scores if y is None else scores[y == 0]
    import warnings
    one_score = len(ref) > 1 and np.ptp(ref) <= 1e-12 * max(1.0, float(np.abs(ref).max()))
    if one_score:
        warnings.warn(_fmt("X_val", f"gives all {len(ref)} {'normal ' if y is not None else ''}validation samples the same score "
                                    f"({float(ref[0]):.6g}; identical rows?), so the threshold sits on that one value and any new "
                                    "sample that differs from them may score above it",
                           "calibrate on varied normal data, the kind the model will score"), UserWarning, stacklevel=3)
    c = det.contamination if contamination is None else contamination
    tau, info = fit_threshold(scores, y, threshold=threshold, contamination=c, beta=beta, fpr=fpr)
    short = None if threshold != "fpr" or one_score else fpr_shortfall(
        info, fpr, info["n_normal"], unit="normal validation samples" if y is not None else "validation samples",
        ties="identical rows, as discrete data hold, score the same",
        finer="calibrate on more varied normal data (rows that repeat tie in the same shares however many there are)")
    if short:
        warnings.warn(short, UserWarning, stacklevel=3)
    cal = {"compose": compose, "composer": composer.kind, "threshold": threshold, "threshold_value": float(tau),
           "n_val": int(n), "n_val_anomalies": int(y.sum()) if y is not None else None, "labelled": y is not None,
           "components": sorted(comps), **info}
    if compose == "grid":
        cal.update(metric=metric, grid_step=step, grid_value=composer.value)
    if y is not None and 0 < y.sum() < n:
        from sklearn import metrics as skm
        cal["val_auroc"] = float(skm.roc_auc_score(y, scores))  # continuous scores, on the calibration data itself
        cal["val_auprc"] = float(skm.average_precision_score(y, scores))
    det._set_calibration(composer, tau, cal, scores)  # the detector updates its own fitted state
    return det


def calibrate_model(model_dir, X_val, y_val=None, *, output=None, columns=None, name="X_val", **kwargs):
    """Load the model in ``model_dir``, calibrate it on ``X_val`` (``y_val`` optional) and save it
    to ``output`` (default: in place). Returns the calibration record. For the CLI's
    ``ganad calibrate MODEL_DIR VAL_DATA [--labels …] --threshold … --compose …``; ``name`` names the
    data in errors about its ``columns`` (the CLI passes the file)."""
    import ganad  # ganad.load: the built-in methods register on the way (a bare io.load_model in a fresh process knew none)
    det = ganad.load(model_dir)
    if not hasattr(det, "_validate_for_scoring"):
        raise InputError(_fmt(str(model_dir), f"is a {type(det).__name__} model, not a detector's",
                              f"call its own calibrate (ganad.load(path).calibrate(...)), or on the command line: ganad calibrate {model_dir} DATA"))
    det._check_feature_names(columns, name)  # a CSV header (``columns``) must name the training columns, in order
    if name != "X_val":  # the file named in a shape / feature-count error (calibrate would say "X_val")
        det._validate_for_scoring(X_val, name)
    det.calibrate(X_val, y_val, **kwargs)
    det.save(Path(output) if output is not None else Path(model_dir))
    return det.calibration_
