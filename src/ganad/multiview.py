"""Several views of the same samples, one detector per view, one anomaly score.

An ECG monitor looks at each heartbeat twice: its shape (the 256 samples around the R peak) and its
timing (the RR intervals around it, :func:`ganad.data.rhythm_features`). A premature beat with a
normal shape is invisible to the first view; a wide ventricular beat on time is plain in it. The
rhythm view is what lifts ganad's MIT-BIH AUROC from about 0.75 (beat alone) to above 0.9
(benchmarks/RESULTS.md). :class:`MultiViewDetector` is that recipe as a model:

* one detector per view (any ganad method, each with its own input shape), trained on the same
  normal samples;
* each view's score turned into its *surprise* among held-out normal samples, −log P(score ≥ s |
  normal) (the views' scores have different units and shapes; an exponential tail keeps extreme
  scores ranked past the largest normal one), the surprises summed (Fisher's combination of
  independent tests): an anomaly in any view raises the sum, and no label is used.
  ``combine='zscore'`` standardises by median / MAD instead (the rule until the thirty-second
  session; benchmarks/RESULTS.md measures both);
* a threshold on the summed score (the ``1 − contamination`` quantile of the held-out normal
  samples' sums, or :meth:`MultiViewDetector.calibrate` on other normal data, e.g. other patients);
* :meth:`MultiViewDetector.score_views` says which view drives a score.

Example::

    import ganad
    from ganad.data import load_split, rhythm_features
    ds1 = load_split("DS1", "/data/mitdb", rr_features=True)
    normal = ds1.subset(ds1.aami == "N")
    mv = ganad.MultiViewDetector({"beat": "fanogan", "rhythm": "fanogan"}).fit(
        {"beat": normal.X, "rhythm": rhythm_features(normal.rr)})
    ds2 = load_split("DS2", "/data/mitdb", rr_features=True)
    scores = mv.decision_function({"beat": ds2.X, "rhythm": rhythm_features(ds2.rr)})
    mv.save("ecg-model/")                          # ganad.load("ecg-model/") reads it back

Files: ``multiview.json`` (JSON) and one ordinary model directory per view under ``views/NAME/``
(safetensors + JSON); nothing is ever unpickled.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state

from ganad.exceptions import InputError, ModelFileError, NotFittedError, _fmt
from ganad.params import kept_on_failure
from ganad.io import MULTIVIEW_CONFIG, finite_number  # one definition: io checks model directories by it

MULTIVIEW_FORMAT = "ganad-multiview"
MULTIVIEW_FORMAT_VERSION = 2  # 2: combine='surprise' (TailSurprise state); files of combine='zscore' are still written as 1
COMBINES = ("surprise", "zscore")
VIEWS_DIR = "views"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # matched whole (fullmatch: '$' let a trailing newline through)
#: names Windows keeps for devices, whatever their extension: not folder names there
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}

__all__ = ["MultiViewDetector", "is_multiview_model", "load_multiview"]


def _view_digest(d: Path) -> str:
    """SHA-256 of a view's model files (configuration and weights): a view changed on its own after
    the multi-view model was saved (recalibrated, retrained in place) no longer matches the
    standardisation and threshold stored for it."""
    import hashlib
    from ganad.io import CONFIG, WEIGHTS
    h = hashlib.sha256()
    for name in (CONFIG, WEIGHTS):
        if not (d / name).is_file():  # a device or a pipe (a link to /dev/zero) would be read for ever
            raise ModelFileError(_fmt(str(d), f"has no {name} (or it is not a regular file)", "the model is incomplete: re-train and save it again"))
        with open(d / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _check_name(name, new: bool = True) -> str:
    """A view name; ``new``: one a model is being made with (a model saved before the Windows rule, with
    a view named 'aux' say, still loads where its folders exist)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(_fmt(f"view name {name!r}", "is not a plain name (letters, digits, '_', '.', '-'; at most 64; it names a folder)",
                              "name the views for example 'beat' and 'rhythm'"))
    if new and (name.endswith(".") or name.split(".")[0].lower() in _RESERVED):
        raise InputError(_fmt(f"view name {name!r}", "names a folder Windows cannot hold (a device name such as 'con' or 'aux', "
                                                    "or a name ending in '.', which Windows drops)",
                              "name the views for example 'beat' and 'rhythm'"))
    return name


def _check_distinct(names, source: str = "views") -> None:
    """View names name folders (``views/NAME``): two that differ only by case (``beat``, ``Beat``) are one
    folder on a case-insensitive file system (macOS, Windows), where one view's model would replace the other's."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(str(name).casefold(), name)
        if other != name:
            raise InputError(_fmt(source, f"has the view names {other!r} and {name!r}, which differ only by case; each view's model "
                                          "is saved in a folder named after it, and on a case-insensitive file system (macOS, Windows) "
                                          "the two are one folder",
                                  "give the views names that differ in more than case, e.g. 'beat' and 'beat2'"))


class MultiViewDetector(BaseEstimator):
    """One detector per view of the same samples; each view's score read as its surprise among held-out
    normal samples, the surprises summed (module docstring).

    Parameters
    ----------
    views : dict of view name -> detector
        A ganad method name (``"fanogan"``, ``"ganomaly"``, ...; built with ``detector_params``) or an
        unfitted detector instance (cloned at fit). At least one view; names are plain words. Other
        detectors with ``fit`` / ``decision_function`` (PyOD's, a scikit-learn pipeline) work in memory
        but cannot be saved; their scores must grow with anomaly, as ganad's and PyOD's do
        (scikit-learn's own outlier detectors score the other way round).
    detector_params : dict, optional
        Parameters for the detectors given by name (e.g. ``{"epochs": 30}``); ``random_state`` defaults
        to this model's.
    reference_fraction : float, default 0.1
        Share of the training samples held out from every view's training (the same samples for all
        views) whose scores fix each view's standardisation and the threshold. 0 uses the training
        scores themselves (optimistic: call :meth:`calibrate` on other normal data then).
    contamination : float, default 0.1
        Expected anomaly fraction: the threshold is the ``1 − contamination`` quantile of the held-out
        samples' summed scores.
    random_state : int, default 0
        Chooses the held-out samples; passed to detectors built by name.
    combine : {'surprise', 'zscore'}, default 'surprise'
        How a view's score enters the sum. ``'surprise'``: −log P(score ≥ s | normal), read from the
        held-out normal samples' scores (empirical up to their 90th percentile, an exponential tail
        beyond; :class:`ganad.scoring.composition.TailSurprise`), in nats: 0 below every normal
        score, ≈ 2.3 at the 90th percentile, ≈ 4.6 at the 99th. ``'zscore'``: (s − median) / MAD
        (models saved before this parameter existed score so). The surprise does not depend on the
        shape of a view's normal scores, only on how rare a score is among them; on held-out MIT-BIH
        DS1 records it raised the beat + rhythm AUROC from 0.926 to 0.944 (benchmarks/RESULTS.md).
    """

    def __init__(self, views: dict | None = None, *, detector_params: dict | None = None, reference_fraction: float = 0.1,
                 contamination: float = 0.1, random_state: int | None = 0, combine: str = "surprise"):
        self.views = views
        self.detector_params = detector_params
        self.reference_fraction = reference_fraction
        self.contamination = contamination
        self.random_state = random_state
        self.combine = combine

    # ---------------------------------------------------------------- checks
    def _check_params(self) -> None:
        from ganad.detectors import DETECTORS
        from ganad.scoring.threshold import check_contamination
        if not isinstance(self.views, dict) or not self.views:
            raise InputError(_fmt("views", f"is {self.views!r}", "pass a dict of view name -> method name or detector, e.g. "
                                                                  "{'beat': 'fanogan', 'rhythm': 'fanogan'}"))
        for name, spec in self.views.items():
            _check_name(name, new=False)  # the rules for new folder names: fit's (a saved model still loads)
            if isinstance(spec, str):
                if spec not in DETECTORS:
                    raise InputError(_fmt(f"views[{name!r}]", f"names unknown method {spec!r}", f"use one of {', '.join(sorted(DETECTORS))}"))
            elif not (hasattr(spec, "fit") and hasattr(spec, "decision_function") and hasattr(spec, "get_params")):
                raise InputError(_fmt(f"views[{name!r}]", f"is a {type(spec).__name__}, not a detector",
                                      "pass a ganad method name or an unfitted ganad detector"))
        if self.detector_params is not None and not isinstance(self.detector_params, dict):
            raise InputError(_fmt("detector_params", f"is {self.detector_params!r}", "pass a dict of detector parameters, e.g. {'epochs': 30}"))
        rf = self.reference_fraction
        if isinstance(rf, bool) or not isinstance(rf, (int, float, np.integer, np.floating)) or not 0.0 <= float(rf) < 0.5:
            raise InputError(_fmt("reference_fraction", f"is {rf!r}", "pass a fraction in [0, 0.5), e.g. 0.1"))
        check_contamination(self.contamination)
        _check_combine(self.combine)
        from ganad.detectors.base import BaseGANDetector
        from ganad.params import constraints_of
        constraints_of(BaseGANDetector)["random_state"].check("random_state", self.random_state)  # not numpy's bare error

    def _check_views(self, X, name: str = "X", *, fitting: bool = False) -> tuple[dict[str, Any], int]:
        """``X`` a dict holding every view (and no other key), each with the same number of samples: the
        fitted views, or when ``fitting`` (or not fitted) those of the ``views`` parameter."""
        names = list(self.views_ if hasattr(self, "views_") and not fitting else self.views)
        if not isinstance(X, dict):
            raise InputError(_fmt(name, f"is a {type(X).__name__}, not a dict of view name -> samples",
                                  f"pass {{{', '.join(repr(v) + ': ...' for v in names)}}}"))
        missing, extra = [v for v in names if v not in X], [k for k in X if k not in names]
        if missing or extra:
            raise InputError(_fmt(name, f"has views {sorted(map(str, X))}" + (f"; missing {missing}" if missing else "")
                                  + (f"; unknown {extra}" if extra else ""), f"pass exactly the views {names}"))
        lengths = {}
        for v in names:
            try:
                lengths[v] = len(X[v])
            except TypeError as exc:
                raise InputError(_fmt(f"{name}[{v!r}]", f"is a {type(X[v]).__name__} without a length", "pass an array with one row per sample")) from exc
        if len(set(lengths.values())) != 1:
            raise InputError(_fmt(name, f"has views of different lengths {lengths}", "pass the same samples, in the same order, in every view"))
        n = next(iter(lengths.values()))
        if n == 0:
            raise InputError(_fmt(name, "holds no samples", "pass at least one sample in every view"))
        from ganad.data.validation import as_pandas_frame
        return {v: as_pandas_frame(X[v]) for v in names}, n  # a polars / pyarrow view: rows and names as a pandas one

    def _check_fitted(self) -> None:
        if not hasattr(self, "detectors_"):
            raise NotFittedError("This MultiViewDetector is not fitted yet. Fix: call fit({view: samples, ...}) first")

    # ---------------------------------------------------------------- fit
    def _build(self, spec):
        if isinstance(spec, str):
            from ganad.detectors import DETECTORS
            kw = {"random_state": self.random_state, **(self.detector_params or {})}
            return DETECTORS[spec](**kw)
        return clone(spec)

    def fit(self, X, y=None) -> "MultiViewDetector":
        """Train one detector per view on the same normal samples (``y`` is ignored, as in scikit-learn)."""
        # a refit refused or interrupted on the way leaves the model it had (fitted or not) as it was
        with kept_on_failure(self):
            self._check_params()
            _check_distinct(self.views)  # here, not in _check_params: a model saved before this check still loads
            for name in self.views:  # likewise the names Windows cannot give a folder
                _check_name(name)
            Xv, n = self._check_views(X, fitting=True)  # a refit after set_params(views=...) takes the new views
            from ganad.data.validation import check_array
            for v in self.views:  # on the whole view, so that a refusal names the user's row, not one of the training split
                check_array(Xv[v], f"X[{v!r}]")
            rf = float(self.reference_fraction)
            if rf > 0:
                n_ref = max(2, int(round(rf * n)))
                if n - n_ref < 2:
                    raise InputError(_fmt("X", f"has {n} samples: too few to hold {n_ref} out and train on the rest",
                                          "pass more samples, or reference_fraction=0 and then calibrate() on other normal data"))
                perm = check_random_state(self.random_state).permutation(n)  # an int, None or a RandomState, as the detectors take
                ref_idx, train_idx = np.sort(perm[:n_ref]), np.sort(perm[n_ref:])
            else:
                ref_idx = train_idx = np.arange(n)
            from ganad.detectors.base import MIN_FIT_SAMPLES
            if len(train_idx) < MIN_FIT_SAMPLES:  # said here in the user's numbers, not the split's
                need = next(m for m in range(n, 10**7) if m - (max(2, int(round(rf * m))) if rf > 0 else 0) >= MIN_FIT_SAMPLES)
                held = f", of which reference_fraction={rf:g} holds {len(ref_idx)} out to set the threshold" if rf > 0 else ""
                raise InputError(_fmt("X", f"has {n} samples{held}, leaving {len(train_idx)} to train each view's detector on; "
                                           f"at least {MIN_FIT_SAMPLES} are needed", f"pass at least {need} samples (a few hundred give reliable scores)"))
            dets = {}
            for v, spec in self.views.items():
                det = self._build(spec)
                if getattr(det, "verbose", False):  # its training progress follows: say which view it belongs to
                    from rich.markup import escape

                    from ganad.progress import plain_console
                    plain_console().print(escape(f"view {v!r}: training {type(det).__name__}"))
                try:
                    det.fit(_rows(Xv[v], train_idx))
                except InputError as exc:
                    raise InputError(f"view {v!r}: {exc}") from exc
                dets[v] = det
            self.views_ = list(self.views)
            self.detectors_ = dets
            self.reference_index_ = ref_idx
            if rf > 0:
                raw = self._raw({v: _rows(Xv[v], ref_idx) for v in self.views_})
            else:  # the training rows themselves: each detector's own training scores (ganad's and PyOD's leave a
                # row's own knn entry out; scored again as new data, a row would find itself at distance 0)
                raw = {v: self._training_scores(v, Xv[v], n) for v in self.views_}
            self.composer_ = _composer_class(self.combine).fit(raw, names=self.views_)
            self._train_pending = {}
            if rf > 0:  # every row's raw view scores (decision_scores_ / labels_): the held-out rows' as above, the
                # trained rows' from each view's own training scores (a row leaves its own knn entry out)
                self._train_raw = {v: np.full(n, np.nan) for v in self.views_}
                for v in self.views_:
                    self._train_raw[v][ref_idx] = raw[v]
                    if _training_scores_pending(self.detectors_[v]):
                        # a latent-search view computes its training scores on first access (a search per row, the
                        # cost its fit avoids): so do decision_scores_ / labels_, not fit
                        self._train_pending[v] = train_idx
                    else:
                        self._train_raw[v][train_idx] = self._training_scores(v, _rows(Xv[v], train_idx), len(train_idx))
            else:
                self._train_raw = raw
            s = self._sum(raw)
            from ganad.scoring.threshold import check_contamination, contamination_threshold
            self.threshold_ = float(contamination_threshold(s, check_contamination(self.contamination)))
            self.reference_scores_ = np.sort(s)
            self.threshold_rule_ = f"contamination={float(self.contamination)} on {len(ref_idx)} " + ("held-out" if rf > 0 else "training") + " samples"
            self.calibration_ = None  # a calibrate's record: cleared by fit, as a detector's
            return self

    def _training_scores(self, v: str, X, n: int) -> np.ndarray:
        """View ``v``'s scores of the rows it was fit on: its ``decision_scores_`` where it keeps them
        (ganad's detectors, PyOD's), else ``decision_function`` of the rows."""
        s = getattr(self.detectors_[v], "decision_scores_", None)
        if s is not None and np.ndim(s) == 1 and len(s) == n:
            return np.asarray(s, dtype=np.float64)
        return self._view_scores(v, X)

    def _view_scores(self, v: str, X) -> np.ndarray:
        try:
            return np.asarray(self.detectors_[v].decision_function(X), dtype=np.float64)
        except InputError as exc:
            raise InputError(f"view {v!r}: {exc}") from exc

    def _raw(self, Xv: dict) -> dict[str, np.ndarray]:
        return {v: self._view_scores(v, Xv[v]) for v in self.views_}

    def _sum(self, raw: dict) -> np.ndarray:
        return self.composer_.standardise(raw).sum(axis=1)

    # ---------------------------------------------------------------- scores
    def _train_raw_scores(self, name: str) -> dict:
        raw = self.__dict__.get("_train_raw")
        if raw is None:
            if "threshold_" in self.__dict__:
                raise AttributeError(_fmt(name, "are not in this model: the training samples' scores stay in memory and are not "
                                                "saved in the model file", "score the training samples with mv.decision_function(X_train)"))
            raise AttributeError(name)
        pending = self.__dict__.get("_train_pending") or {}
        for v in list(pending):
            idx = pending[v]
            s = np.asarray(self.detectors_[v].decision_scores_, dtype=np.float64)  # the view's search, now
            if s.shape != (len(idx),):
                raise AttributeError(_fmt(name, f"cannot be computed: view {v!r} has {s.shape} training scores for {len(idx)} rows",
                                          "score the training samples with mv.decision_function(X_train)"))
            raw[v][idx] = s
            del pending[v]
        return raw

    @property
    def decision_scores_(self) -> np.ndarray:
        """The summed standardised scores of the samples ``fit`` was given, in their order (PyOD's
        ``decision_scores_``): the held-out reference samples' as scored for the threshold, the others'
        from each view's own training scores (a sample leaves its own ``knn`` entry out). Standardised as
        the model now standardises (``combine``), so after :meth:`calibrate` by the calibrated distributions. In memory
        only: a loaded model has none."""
        return self._sum(self._train_raw_scores("decision_scores_"))

    @property
    def labels_(self) -> np.ndarray:
        """0 / 1 per sample ``fit`` was given: ``decision_scores_ > threshold_``."""
        return (self._sum(self._train_raw_scores("labels_")) > self.threshold_).astype(np.int64)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit``, then :attr:`labels_`."""
        return self.fit(X).labels_

    def score_views(self, X) -> dict[str, np.ndarray]:
        """Each view's contribution to :meth:`decision_function`: its surprise among normal samples in nats
        (``combine='surprise'``) or its robust z-score (``'zscore'``)."""
        self._check_fitted()
        Xv, _ = self._check_views(X)
        z = self.composer_.standardise(self._raw(Xv))
        return {v: np.ascontiguousarray(z[:, i]) for i, v in enumerate(self.views_)}

    def decision_function(self, X) -> np.ndarray:
        """The sum of the views' surprises (or z-scores: ``combine``); higher = more anomalous."""
        self._check_fitted()
        Xv, _ = self._check_views(X)
        return self._sum(self._raw(Xv))

    def predict(self, X) -> np.ndarray:
        """1 where :meth:`decision_function` exceeds ``threshold_``, else 0."""
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def predict_proba(self, X, method: str = "linear") -> np.ndarray:
        """(n, 2) [P(normal), P(anomaly)] as PyOD computes it (``'linear'``: min-max of the reference
        sums; ``'unify'``: erf of the standardised sum), the reference being the held-out normal
        samples' summed scores, or after :meth:`calibrate` every calibration sample's."""
        from ganad.detectors.base import proba_from_scores
        return proba_from_scores(self.decision_function(X), self.reference_scores_, method)

    def predict_confidence(self, X) -> np.ndarray:
        """ExCeed confidence of each label (:func:`ganad.detectors.base.exceed_confidence`) against the
        reference sums the threshold was fitted on."""
        from ganad.detectors.base import exceed_confidence
        return exceed_confidence(self.decision_function(X), self.reference_scores_, self.threshold_)

    def calibrate(self, X, y=None, *, threshold: str = "fpr", fpr: float = 0.05, contamination: float | None = None,
                  beta: float = 1.0) -> "MultiViewDetector":
        """Re-fit each view's standardisation (its normal score distribution, or median / MAD) on the normal
        samples of ``X`` (those with ``y == 0``, or all without labels), of the kind ``combine`` names now
        (``set_params(combine="surprise")`` first turns a model saved with z-scores into one that sums surprises,
        without retraining a view) and the threshold on ``X``'s summed scores: ``'fpr'`` (the ``1 − fpr`` quantile
        of the normal samples), ``'contamination'``, or with labels ``'f1'`` / ``'fbeta'`` / ``'mcc'``.
        Use data the detectors never trained on: other patients, another machine of the fleet."""
        self._check_fitted()
        _check_combine(self.combine)  # (set_params since fit: refused before any scoring)
        Xv, n = self._check_views(X)
        if y is not None:
            y = np.asarray(y).reshape(-1)
            if y.shape[0] != n:
                raise InputError(_fmt("y", f"has {y.shape[0]} labels for {n} samples", "pass one 0/1 label per sample"))
            if not np.isin(y, (0, 1)).all():
                raise InputError(_fmt("y", "holds values other than 0 and 1", "pass 0 for normal and 1 for anomalous samples"))
        normal = np.ones(n, bool) if y is None else (y == 0)
        if normal.sum() < 2:
            raise InputError(_fmt("X", f"has {int(normal.sum())} normal sample(s); standardising each view needs at least two",
                                  "pass several normal samples"))
        raw = self._raw(Xv)
        from ganad.scoring.calibration import _refuse_nonfinite, fit_threshold
        # a view's overflow (on_nonfinite='max': inf) would make a NaN threshold: refused before anything is fitted
        _refuse_nonfinite(np.column_stack([raw[v] for v in self.views_]), "view scores", "X")
        composer = _composer_class(self.combine).fit({v: r[normal] for v, r in raw.items()}, names=self.views_)
        s = composer.standardise(raw).sum(axis=1)
        _refuse_nonfinite(s, "scores", "X")
        try:
            tau, info = fit_threshold(s, y, threshold=threshold, fpr=fpr,
                                      contamination=self.contamination if contamination is None else contamination, beta=beta)
        except InputError as exc:  # a single model's terms (y_val, compose=...): said in this method's
            if not str(exc).startswith("y_val"):
                raise
            raise InputError(_fmt("y", "is missing or holds only one class" if y is not None else "is missing",
                                  f"threshold={threshold!r} needs labels with normal (0) and anomalous (1) samples; pass y "
                                  "(CLI: --labels), or use threshold='contamination' or 'fpr'")) from exc
        if threshold == "fpr":
            from ganad.scoring.threshold import fpr_shortfall
            short = fpr_shortfall(info, fpr, info["n_normal"], unit="normal samples" if y is not None else "samples",
                                  ties="identical samples score the same",
                                  finer="calibrate on more varied normal data (samples that repeat tie in the same shares "
                                        "however many there are)")
            if short:
                import warnings
                warnings.warn(short, UserWarning, stacklevel=2)
        self.composer_ = composer
        self.threshold_ = float(tau)
        self.reference_scores_ = np.sort(s)  # every calibration sum, as the threshold was fitted on (a detector's calibration_scores_)
        self.threshold_rule_ = f"calibrate(threshold={threshold!r}) on {n} samples"
        # what was fitted, as a detector's calibration_ (with threshold='fpr': the rate achieved beside the target)
        self.calibration_ = {"threshold": threshold, "threshold_value": float(tau), "n_samples": int(n), "labelled": y is not None,
                             **info}
        return self

    # ---------------------------------------------------------------- files
    def save(self, path) -> Path:
        """Write ``path/multiview.json`` and each view's detector under ``path/views/NAME/``, atomically."""
        from ganad.io import check_model_path, write_wrapper_model
        self._check_fitted()
        from ganad.detectors.base import BaseGANDetector
        foreign = [v for v in self.views_ if not isinstance(self.detectors_[v], BaseGANDetector)]
        if foreign:
            raise InputError(_fmt(f"views {foreign}", "hold detectors that are not ganad's, which ganad cannot write without pickling",
                                  "use ganad methods for a model you save (other detectors work for scoring in memory)"))
        path = check_model_path(path)
        params = self.get_params(deep=False)
        params["views"] = {v: (s if isinstance(s, str) else type(self.detectors_[v]).__name__) for v, s in self.views.items()}
        if isinstance(params.get("random_state"), (np.random.RandomState, np.random.Generator)):
            # accepted by fit, not a value a file holds: saved as None, as a detector's save does (the scores are unaffected)
            import logging
            logging.getLogger("ganad").warning("MultiViewDetector.save: random_state is a %s object; it is saved as None (the model's "
                                                  "scores are unaffected; pass an integer seed to keep refits reproducible)",
                                                  type(params["random_state"]).__name__)
            params["random_state"] = None
        from ganad.scoring.composition import TailSurprise
        surprise = isinstance(self.composer_, TailSurprise)
        standardisation = ({"surprise": self.composer_.to_dict()} if surprise
                           else {"median": self.composer_.median.tolist(), "scale": self.composer_.scale.tolist()})
        if surprise:  # the fitted kind, whatever set_params said since
            params["combine"] = "surprise"
        else:  # a format-1 file, as before the parameter (whose absence reads as 'zscore'): an older ganad reads it too
            params.pop("combine", None)
        cfg = {"format": MULTIVIEW_FORMAT, "format_version": MULTIVIEW_FORMAT_VERSION if surprise else 1, "params": params,
               "state": {"views": self.views_, **standardisation,
                         "threshold": float(self.threshold_), "threshold_rule": self.threshold_rule_,
                         "reference_scores": [float(v) for v in self.reference_scores_],
                         **({"calibration": self.calibration_} if getattr(self, "calibration_", None) is not None else {})}}

        def save_views(tmp):  # the views' directories, and their digests into cfg before it is written
            for v in self.views_:
                self.detectors_[v].save(tmp / VIEWS_DIR / v)
            cfg["state"]["view_digests"] = {v: _view_digest(tmp / VIEWS_DIR / v) for v in self.views_}

        write_wrapper_model(path, MULTIVIEW_CONFIG, "multi-view parameters", cfg, save_views)
        return path

    @classmethod
    def load(cls, path) -> "MultiViewDetector":
        return load_multiview(path)


def _check_combine(combine) -> None:
    if not isinstance(combine, str) or combine not in COMBINES:
        raise InputError(_fmt("combine", f"is {combine!r}", f"use one of {', '.join(map(repr, COMBINES))}"))


def _composer_class(combine: str):
    from ganad.scoring.composition import RobustStandardised, TailSurprise
    return TailSurprise if combine == "surprise" else RobustStandardised


def _training_scores_pending(det) -> bool:
    """Whether a ganad detector computes its training scores on first access (a latent-search method whose
    score reads the search: docs/training.md), which reading ``decision_scores_`` would start."""
    d = getattr(det, "__dict__", {})
    return "_decision_scores" not in d and d.get("_train_ref") is not None


def _rows(a, idx):
    return a.iloc[idx] if hasattr(a, "iloc") else np.asarray(a)[idx]


def is_multiview_model(path) -> bool:
    return (Path(path) / MULTIVIEW_CONFIG).is_file()


def load_multiview(path) -> MultiViewDetector:
    """Rebuild a :class:`MultiViewDetector` from ``path`` (JSON + each view's safetensors; never unpickles),
    all from one save (:func:`ganad.io.read_whole`)."""
    from ganad.io import read_whole
    return read_whole(path, _load_multiview_once)


def _load_multiview_once(path) -> MultiViewDetector:
    import ganad.detectors  # noqa: F401  (registers the built-in methods)
    from ganad.io import _tuples, load_model, read_wrapper_config
    from ganad.scoring.composition import RobustStandardised, TailSurprise
    path = Path(path)
    f = path / MULTIVIEW_CONFIG
    cfg = read_wrapper_config(path, MULTIVIEW_CONFIG, MULTIVIEW_FORMAT, MULTIVIEW_FORMAT_VERSION,
                              "MultiViewDetector.save or `ganad fit --view ...`")
    try:
        p, st = dict(cfg["params"]), cfg["state"]
        if not isinstance(st["views"], list) or not isinstance(p["views"], dict):
            raise ValueError("the views are not a list (state) and a dict (parameters)")
        views = [_check_name(v, new=False) for v in st["views"]]
        if not views or sorted(views) != sorted(p["views"]):
            raise ValueError("the views listed in the state and the parameters differ")
        digests = st.get("view_digests")
        if digests is not None:  # absent in files of the first multi-view version: nothing to compare
            if not isinstance(digests, dict):
                raise ValueError("view_digests is not a dict of view name -> SHA-256")
            changed = [v for v in views if digests.get(v) != _view_digest(path / VIEWS_DIR / v)]
            if changed:
                raise ModelFileError(_fmt(str(f), f"no longer matches its view(s) {changed}, changed after the multi-view model was saved "
                                                  "(recalibrated or retrained in place); the standardisation and threshold stored "
                                                  "for them would be wrong",
                                          "recalibrate the multi-view model from Python (MultiViewDetector.calibrate) or "
                                          "refit it; change a view's model only as a copy (-o OTHER_DIR)"))
        dets = {v: load_model(path / VIEWS_DIR / v) for v in views}
        p["views"] = {v: (s if isinstance(s, str) and s in __import__("ganad").DETECTORS else dets[v]) for v, s in p["views"].items()}
        for d in dets.values():  # JSON lists back as tuples where the detectors' default is one (betas)
            if isinstance(p.get("detector_params"), dict):
                p["detector_params"] = _tuples(type(d), p["detector_params"])
        p.setdefault("combine", "zscore")  # a file from before the parameter: its views were z-scored
        mv = MultiViewDetector(**p)
        mv._check_params()
        if mv.combine == "surprise":
            d = st["surprise"]
            if not isinstance(d, dict) or d.get("names") != views or d.get("kind") != TailSurprise.kind:
                raise ValueError("the surprise standardisation does not name the views")
            for key in ("knots", "probs"):  # numbers as written, one list per view
                if not (isinstance(d[key], list) and all(isinstance(k, list) and all(finite_number(x) for x in k) for k in d[key])):
                    raise ValueError(f"surprise {key} {str(d[key])[:60]} are not lists of numbers, one per view")
            if not (isinstance(d["tail_scale"], list) and all(finite_number(x) for x in d["tail_scale"])) or not finite_number(d["body"]):
                raise ValueError("the surprise tail scales or body are not numbers")
            mv.composer_ = TailSurprise.from_dict(d)
        else:
            for key in ("median", "scale"):  # numbers as written: np.asarray would read "1.0" as 1.0, [[0.1, 0.1]] as 2-D
                if not (isinstance(st[key], list) and all(finite_number(x) for x in st[key])):
                    raise ValueError(f"{key} {str(st[key])[:60]} is not a list of numbers, one per view")
            median, scale = np.asarray(st["median"], dtype=np.float64), np.asarray(st["scale"], dtype=np.float64)
            mv.composer_ = RobustStandardised(views, median, scale)
        if not finite_number(st["threshold"]):
            raise ValueError(f"threshold {st['threshold']!r} is not a number")
        mv.threshold_ = float(st["threshold"])
        ref = np.asarray(st["reference_scores"], dtype=np.float64)
        if not np.isfinite(mv.threshold_) or ref.ndim != 1 or ref.size == 0 or not np.isfinite(ref).all():
            raise ValueError("threshold or reference scores are missing or not finite numbers")
        mv.reference_scores_ = ref
        mv.threshold_rule_ = str(st.get("threshold_rule", ""))
        cal = st.get("calibration")  # absent: fitted, or calibrated by an older ganad
        if cal is not None and not isinstance(cal, dict):
            raise ValueError(f"calibration {str(cal)[:60]} is not a mapping")
        mv.calibration_ = cal
        mv.views_, mv.detectors_ = views, dets
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, InputError, OSError) as exc:
        raise ModelFileError(_fmt(str(f), f"is inconsistent or corrupt ({type(exc).__name__}: {exc})", "re-train and save the model")) from exc
    return mv
