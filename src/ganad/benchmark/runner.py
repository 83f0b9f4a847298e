"""Running one method on one split: fit, optional calibration on the calibration set only, scores, timings;
a failing method is recorded, never silently dropped."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

import numpy as np
from ganad.params import is_int

from ganad.benchmark import peers
from ganad.benchmark.environment import machine
from ganad.benchmark.peers import PEERS, _PEER_PREFIX, _check_names, _seed_torch, available_peers, default_methods, make_ganad


def _flat(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X.reshape(len(X), -1), dtype=np.float32)


#: the own score's diagnostic column (``auroc_own``) of a method that scores by latent search (AnoGAN) costs a search
#: per test sample (a DCGAN image: tens of ms); above this many test input values it is left out, the default score
#: (which does not read it) and its AUROC are unaffected
OWN_SEARCH_MAX_VALUES = 2_000_000


def run_one(kind: str, name: str, X_train, X_test, *, seed: int, epochs: int | None, peer_epochs: int,
            X_cal=None, y_cal=None, threshold: str | None = None, fpr: float = 0.05, compose: str = "method",
            scale_peers: bool = True, log: Callable = print) -> dict:
    """Fit one method on ``X_train``, score ``X_test`` (and ``X_cal``), optionally calibrate τ on the
    calibration set only. Returns ``{'scores', 'fit_s', 'score_s', 'threshold', 'error'}``."""
    from ganad.scoring.calibration import fit_threshold
    label = name if kind == "ganad" else _PEER_PREFIX + name
    out = {"method": label, "kind": kind, "scores": None, "fit_s": None, "score_s": None, "threshold": None, "error": None}
    try:
        _seed_torch(seed)
        if kind == "ganad":
            det = make_ganad(name, seed, epochs)
            Xtr, Xte, Xc = X_train, X_test, X_cal
        else:
            det = peers.make_peer(name, seed, peer_epochs, int(np.prod(X_train.shape[1:])))
            Xtr, Xte = _flat(X_train), _flat(X_test)
            Xc = None if X_cal is None else _flat(X_cal)
            if scale_peers:  # as a careful user would: standardise on the training data only (distance-based peers need it)
                from sklearn.preprocessing import StandardScaler
                sc = StandardScaler().fit(Xtr)
                Xtr, Xte = sc.transform(Xtr).astype(np.float32), sc.transform(Xte).astype(np.float32)
                Xc = None if Xc is None else sc.transform(Xc).astype(np.float32)
        t = time.perf_counter()
        det.fit(Xtr)
        out["fit_s"] = time.perf_counter() - t
        if kind == "ganad" and det.__dict__.get("knn_blocks_") is not None:  # knn_space='auto': the blocks fit chose
            out["knn_blocks"] = det.knn_blocks_
        if kind == "ganad" and det.__dict__.get("members_"):  # an ensemble: each member's own choice (None: no choice made)
            out["knn_blocks_members"] = [m.__dict__.get("knn_blocks_") for m in det.members_]
        if threshold is not None and Xc is not None:
            if kind == "ganad":
                # compose='method': the method's default composer, only τ is fitted; 'default': the components
                # robust-standardised (median / MAD of the calibration set's normal samples) and summed, then τ
                det.calibrate(Xc, y_cal, compose={"method": "weights", "default": "standardised"}.get(compose, compose),
                              threshold=threshold, fpr=fpr)
                out["threshold"] = float(det.threshold_)
            else:
                tau, _ = fit_threshold(np.asarray(det.decision_function(Xc), np.float64), y_cal, threshold=threshold, fpr=fpr)
                out["threshold"] = float(tau)
        t = time.perf_counter()
        s = np.asarray(det.decision_function(Xte), dtype=np.float64).reshape(-1)
        out["score_s"] = time.perf_counter() - t
        inner = getattr(det.__dict__.get("composer_"), "inner", None)
        if kind == "ganad" and inner is not None and det._search_scoring() and Xte.size > OWN_SEARCH_MAX_VALUES:
            out["own_skipped"] = f"the own score's latent search over {Xte.shape[0]} test samples (the default score does not read it)"
        elif kind == "ganad" and inner is not None:  # the method's own score beside the default (own + knn)
            comps = det._score(Xte, None).components  # diagnostic columns: a non-finite one stays as it is, the run is not an error
            out["scores_own"] = np.asarray(inner(comps), dtype=np.float64)
            out["scores_knn"] = np.asarray(comps["knn"], dtype=np.float64)
        if s.shape[0] != len(X_test) or not np.isfinite(s).all():
            raise ValueError(f"{label} returned {s.shape[0]} scores for {len(X_test)} samples"
                             + ("" if np.isfinite(s).all() else " with NaN/inf values"))
        out["scores"] = s
    except ImportError as exc:
        out["error"] = f"skipped: PyOD is not installed ({exc}); pip install 'ganad[bench]'"
    except Exception as exc:  # one failing method must not stop the benchmark; the error is recorded
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(_failure(label, out["error"], exc))
    return out


def _failure(label: str, error: str, exc: BaseException) -> str:
    """The log line of a failed method: a ganad error (bad input, a setting out of range) says what and
    how to fix it; anything else comes with its traceback's last frames."""
    from ganad.exceptions import GanadError
    return f"  {label} failed: {error}" + ("" if isinstance(exc, GanadError) else f"\n{traceback.format_exc(limit=3)}")


def run_two_views(name: str, train: tuple, test: tuple, cal: tuple, cal_normal: np.ndarray, *, seed: int,
                  epochs: int | None, y_cal=None, threshold: str = "fpr", fpr: float = 0.05, log: Callable = print,
                  kind: str = "ganad", peer_epochs: int = 20) -> dict:
    """One detector per view (for example beat morphology and rhythm) as a
    :class:`ganad.MultiViewDetector`: trained on every training sample, then each view's score read
    as its surprise among the calibration set's *normal* samples and summed (no labels),
    and τ fitted on the calibration set (:meth:`~ganad.MultiViewDetector.calibrate`). ``kind='peer'``
    runs a PyOD peer the same way, each view flattened and standardised on the training samples (as
    :func:`run_one` gives peers their input). Returns what :func:`run_one` returns."""
    from ganad.multiview import MultiViewDetector
    label = f"{name}+rhythm" if kind == "ganad" else f"pyod:{name}+rhythm (two views)"
    out = {"method": label, "kind": kind, "scores": None, "fit_s": None, "score_s": None, "threshold": None, "error": None}
    try:
        _seed_torch(seed)
        views = ("morphology", "rhythm")
        if y_cal is None and not np.asarray(cal_normal).all():
            raise ValueError("without calibration labels every calibration sample must be normal")
        if kind == "peer":
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import FunctionTransformer, StandardScaler
            flat = FunctionTransformer(_flat)
            specs = {v: make_pipeline(flat, StandardScaler(), peers.make_peer(name, seed, peer_epochs, int(np.prod(Xv.shape[1:]))))
                     for v, Xv in zip(views, train)}
        else:
            specs = {v: make_ganad(name, seed, epochs) for v in views}
        mv = MultiViewDetector(specs, reference_fraction=0, random_state=seed)
        t = time.perf_counter()
        mv.fit(dict(zip(views, train)))
        out["fit_s"] = time.perf_counter() - t
        if kind == "ganad":  # each view's knn block choice (knn_space='auto'; None: no choice made)
            out["knn_blocks"] = {v: d.__dict__.get("knn_blocks_") for v, d in mv.detectors_.items()}
        mv.calibrate(dict(zip(views, cal)), y_cal, threshold=threshold, fpr=fpr)
        out["threshold"] = float(mv.threshold_)
        t = time.perf_counter()
        out["scores"] = np.asarray(mv.decision_function(dict(zip(views, test))), np.float64)
        out["score_s"] = time.perf_counter() - t
    except Exception as exc:  # recorded, like run_one
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(_failure(label, out["error"], exc))
    return out


def _metrics(y: np.ndarray, s: np.ndarray | None) -> dict:
    from sklearn import metrics as skm
    if s is None or y.min() == y.max():
        return {"auroc": None, "auprc": None}
    from ganad.metrics import average_precision
    return {"auroc": float(skm.roc_auc_score(y, s)), "auprc": average_precision(y, s)}


def _subsample(n: int, k: int | None, rng: np.random.RandomState, strata: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of ``k`` of ``n`` items (all when k is None, 0 (as on the command line) or >= n),
    stratified by ``strata``."""
    if k is None or k == 0 or k >= n:
        return np.arange(n)
    if strata is None:
        return np.sort(rng.choice(n, k, replace=False))
    classes, counts = np.unique(strata, return_counts=True)
    exact = counts * (k / n)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: k - int(quota.sum())]:  # largest remainders: exactly k
        quota[i] += 1
    idx = [rng.choice(np.flatnonzero(strata == c), q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(idx))


def _check_epochs(epochs, peer_epochs) -> None:
    """Refused before any data is read: a bad value would make every method fail, each recorded as an error."""
    from ganad.exceptions import InputError, _fmt
    for name, v, optional in (("--epochs", epochs, True), ("--peer-epochs", peer_epochs, False)):
        if (v is None and optional) or (is_int(v) and v >= 1):
            continue
        raise InputError(_fmt(name, f"is {v!r}", "pass a positive number of epochs, e.g. 30"))


def _secs(v) -> str:
    """Seconds in a progress line: '1.23s', or '-' for a run that did not happen (a skipped peer)."""
    return "-" if v is None else f"{v}s"


def _methods_plan(methods, peers, log, epochs=None, peer_epochs=20):
    methods = default_methods() if methods is None else list(methods)
    named = peers is not None
    peers = list(PEERS) if peers is None else list(peers)
    _check_names(methods, peers)
    _check_epochs(epochs, peer_epochs)
    _, notes = available_peers(peers, named, log)  # default peers without PyOD stay in the plan, each row recorded as skipped
    return [("ganad", m) for m in methods] + [("peer", p) for p in peers], notes


def _record(r: dict) -> dict:
    return {k: (round(v, 3) if isinstance(v, float) and k.endswith("_s") else v) for k, v in r.items()
            if not k.startswith("scores")}


def _variant_metrics(y: np.ndarray, r: dict, mask=None) -> dict:
    """AUROC of the method's own score and of the knn component alone, where run_one kept them."""
    out = {}
    for key, name in (("scores_own", "own"), ("scores_knn", "knn")):
        if r.get(key) is not None:
            v = r[key] if mask is None else r[key][mask]
            # a diagnostic column with a non-finite value (an overflowing row) has no AUROC: None, not a failed benchmark
            out[f"auroc_{name}"] = _metrics(y, v)["auroc"] if np.isfinite(np.asarray(v, dtype=np.float64)).all() else None
    return out


def _base(protocol, seed, methods, peers, epochs, peer_epochs, **config):
    return {"protocol": protocol, "seed": int(seed), "machine": machine(),
            "config": {"methods": methods, "peers": peers, "epochs": epochs, "peer_epochs": peer_epochs, **config},
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
