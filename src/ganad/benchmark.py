"""Quality benchmarks with honest protocols: ganad's detectors against PyOD peers on the same splits.

Three protocols, each a library function that returns a JSON-ready dict and is reproducible
from its arguments and one seed (the CLI's ``ganad benchmark {mitbih,adbench,mnist}`` calls them):

* :func:`run_mitbih` — inter-patient MIT-BIH (de Chazal et al. 2004). Train on N beats of
  DS1 records; a random 20 % of the DS1 records (by patient, chosen by the seed) is held out
  for calibration: the threshold τ is set on those held-out records only, **never on test
  labels** (default: the 95th percentile of their N beats, i.e. 5 % false-positive rate, no labels
  at all; ``calibration='mcc'`` or ``'f1'`` instead picks τ on every beat of the held-out DS1
  records with their labels). Test on DS2 beats (all, or a class-stratified subsample).
  AUROC / AUPRC overall (anomaly = every class but N) and N-vs-S, N-vs-V, N-vs-F; F1 and MCC at τ.
* :func:`run_adbench` — for each dataset and seed: a random 60 % of the normal samples train,
  the other 40 % plus every anomaly test. AUROC / AUPRC.
* :func:`run_mnist` — one-class per digit: train on that digit's training images, test on the
  test set (anomaly = any other digit). AUROC / AUPRC per digit and their mean.

Every method sees the same split. ganad's detectors take the data in its natural shape (beats
(n, 1, 256), images (n, 1, 28, 28), vectors (n, d)); PyOD peers take flattened vectors. Peers
keep PyOD's defaults except the number of epochs of its deep models (``peer_epochs``). Fit and
score wall-clock seconds are recorded for every method. AUROC / AUPRC always come from
continuous scores. A method that fails is recorded with its error and skipped, never silently.

:func:`write_outputs` writes ``results.json``, ``results.md``, PNG figures and a
self-contained ``report.html``.
"""

from __future__ import annotations

import json
import os
import platform
import time
import traceback
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ganad.exceptions import InputError, _fmt
from ganad.files import write_text

#: PyOD peers run by default, in this order
PEERS: tuple[str, ...] = ("iforest", "knn", "ocsvm", "ecod", "autoencoder", "vae", "deepsvdd", "anogan", "alad")
#: environment variable naming the reference-data folder (holding mitdb/, adbench/, mnist/)
ENV_VAR = "GANAD_DATA_DIR"
PROTOCOLS = ("mitbih", "adbench", "mnist")
MITBIH_CALIBRATIONS = ("fpr", "mcc", "f1")
_PEER_PREFIX = "pyod:"


# --------------------------------------------------------------------------- helpers


def machine() -> dict:
    """CPU, cores, threads and versions of the machine running the benchmark."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "cuda": torch.cuda.is_available()}
    try:
        import pyod
        info["pyod"] = pyod.__version__
    except ImportError:
        info["pyod"] = None
    info.update(_git_state())
    return info


def _git_state() -> dict:
    """Commit and uncommitted files of the checkout ganad is imported from (empty outside a git checkout)."""
    import subprocess
    root = Path(__file__).resolve().parents[2]
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=10).stdout  # noqa: E731
        commit = run("rev-parse", "--short", "HEAD").strip()
        if not commit:
            return {}
        dirty = [ln[3:] for ln in run("status", "--porcelain", "--untracked-files=no").splitlines() if len(ln) > 3]
        return {"git_commit": commit, "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {}


def resolve_data_dir(data: str | os.PathLike | None, sub: str) -> Path:
    """``data`` (or ``$GANAD_DATA_DIR``) / ``sub`` when that folder exists, else ``data`` itself
    when it already is the ``sub`` folder; raises :class:`InputError` naming the fix."""
    if data is None:
        data = os.environ.get(ENV_VAR)
        if not data:
            raise InputError(_fmt("--data", f"is not given and ${ENV_VAR} is unset",
                                  f"pass --data DIR (the folder holding {sub}/) or set {ENV_VAR}"))
    base = Path(data).expanduser()
    for p in (base / sub, base):
        if p.is_dir() and (p.name == sub or p == base / sub):
            return p
    raise InputError(_fmt("--data", f"{str(base)!r} holds no {sub}/ folder", f"pass the folder that holds {sub}/ (or {sub}/ itself)"))


def default_methods() -> list[str]:
    """Every ganad method in the registry, aliases of one class counted once (read at run time)."""
    from ganad.detectors import DETECTORS
    seen, names = set(), []
    for name, cls in DETECTORS.items():
        if cls not in seen:
            seen.add(cls)
            names.append(name)
    return names


def pyod_available() -> bool:
    try:
        import pyod  # noqa: F401
        return True
    except ImportError:
        return False


def _check_names(methods: Sequence[str], peers: Sequence[str]) -> None:
    from ganad.detectors import DETECTORS
    bad = [m for m in methods if m not in DETECTORS]
    if bad:
        raise InputError(_fmt("--methods", f"names unknown method(s) {bad}", f"use some of {', '.join(sorted(DETECTORS))}"))
    badp = [p for p in peers if p not in PEERS]
    if badp:
        raise InputError(_fmt("--peers", f"names unknown peer(s) {badp}", f"use some of {', '.join(PEERS)}"))


def make_peer(name: str, seed: int, epochs: int, n_features: int):
    """A PyOD detector with its defaults, but ``epochs`` for the deep models and ``seed`` where it takes one.
    Raises ImportError when PyOD is missing."""
    quiet = {"verbose": 0}
    if name == "iforest":
        from pyod.models.iforest import IForest
        return IForest(random_state=seed)
    if name == "knn":
        from pyod.models.knn import KNN
        return KNN()
    if name == "ocsvm":
        from pyod.models.ocsvm import OCSVM
        return OCSVM()
    if name == "ecod":
        from pyod.models.ecod import ECOD
        return ECOD()
    if name == "autoencoder":
        from pyod.models.auto_encoder import AutoEncoder
        return AutoEncoder(epoch_num=epochs, random_state=seed, **quiet)
    if name == "vae":
        from pyod.models.vae import VAE
        return VAE(epoch_num=epochs, random_state=seed, **quiet)
    if name == "deepsvdd":
        from pyod.models.deep_svdd import DeepSVDD
        return DeepSVDD(n_features=n_features, epochs=epochs, random_state=seed, **quiet)
    if name == "anogan":
        from pyod.models.anogan import AnoGAN
        return AnoGAN(epochs=epochs, **quiet)
    if name == "alad":
        from pyod.models.alad import ALAD
        return ALAD(epochs=epochs, **quiet)
    raise InputError(_fmt("--peers", f"names unknown peer {name!r}", f"use some of {', '.join(PEERS)}"))


#: parameters set on every ganad detector a benchmark builds (``ganad benchmark --set k=v``), e.g.
#: ``{"n_members": 3}``; empty = each method's defaults
GANAD_PARAMS: dict = {}


def make_ganad(name: str, seed: int, epochs: int | None):
    """A ganad detector with its defaults (and :data:`GANAD_PARAMS`), ``random_state=seed`` and
    ``epochs`` when given."""
    from ganad.detectors import DETECTORS
    kw = {**GANAD_PARAMS, "random_state": seed}
    if epochs is not None:
        kw["epochs"] = int(epochs)
    return DETECTORS[name](**kw)


def _seed_torch(seed: int) -> None:
    import torch
    np.random.seed(seed)
    torch.manual_seed(seed)


def _flat(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X.reshape(len(X), -1), dtype=np.float32)


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
            det = make_peer(name, seed, peer_epochs, int(np.prod(X_train.shape[1:])))
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
        if threshold is not None and Xc is not None:
            if kind == "ganad":
                # compose='method': the method's default composer, only τ is fitted; 'default': the components
                # robust-standardised (median / MAD of the calibration set's normal samples) and summed, then τ
                det.calibrate(Xc, y_cal, compose="weights" if compose == "method" else compose, threshold=threshold, fpr=fpr)
                out["threshold"] = float(det.threshold_)
            else:
                tau, _ = fit_threshold(np.asarray(det.decision_function(Xc), np.float64), y_cal, threshold=threshold, fpr=fpr)
                out["threshold"] = float(tau)
        t = time.perf_counter()
        s = np.asarray(det.decision_function(Xte), dtype=np.float64).reshape(-1)
        out["score_s"] = time.perf_counter() - t
        inner = getattr(det.__dict__.get("composer_"), "inner", None)
        if kind == "ganad" and inner is not None:  # the method's own score beside the default (own + knn)
            comps = det.score_components(Xte).components
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
        log(f"  {label} failed: {out['error']}\n{traceback.format_exc(limit=3)}")
    return out


def run_two_views(name: str, train: tuple, test: tuple, cal: tuple, cal_normal: np.ndarray, *, seed: int,
                  epochs: int | None, y_cal=None, threshold: str = "fpr", fpr: float = 0.05, log: Callable = print) -> dict:
    """One ganad method per view (for example beat morphology and rhythm); the per-view scores are
    standardised by median / MAD on the calibration set's *normal* samples and summed (no labels),
    then τ is fitted on the calibration set. Returns what :func:`run_one` returns."""
    from ganad.scoring.calibration import fit_threshold
    from ganad.scoring.composition import RobustStandardised
    label = f"{name}+rhythm"
    out = {"method": label, "kind": "ganad", "scores": None, "fit_s": None, "score_s": None, "threshold": None, "error": None}
    try:
        _seed_torch(seed)
        views = ("morphology", "rhythm")
        dets = {}
        t = time.perf_counter()
        for v, Xv in zip(views, train):
            dets[v] = make_ganad(name, seed, epochs).fit(Xv)
        out["fit_s"] = time.perf_counter() - t
        cal_c = {v: np.asarray(dets[v].decision_function(Xv), np.float64) for v, Xv in zip(views, cal)}
        composer = RobustStandardised.fit({v: c[cal_normal] for v, c in cal_c.items()}, names=list(views))
        tau, _ = fit_threshold(composer(cal_c), y_cal, threshold=threshold, fpr=fpr)
        out["threshold"] = float(tau)
        t = time.perf_counter()
        s = composer({v: np.asarray(dets[v].decision_function(Xv), np.float64) for v, Xv in zip(views, test)})
        out["score_s"] = time.perf_counter() - t
        out["scores"] = np.asarray(s, np.float64)
    except Exception as exc:  # recorded, like run_one
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(f"  {label} failed: {out['error']}\n{traceback.format_exc(limit=3)}")
    return out


def _metrics(y: np.ndarray, s: np.ndarray | None) -> dict:
    from sklearn import metrics as skm
    if s is None or y.min() == y.max():
        return {"auroc": None, "auprc": None}
    return {"auroc": float(skm.roc_auc_score(y, s)), "auprc": float(skm.average_precision_score(y, s))}


def _subsample(n: int, k: int | None, rng: np.random.RandomState, strata: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of ``k`` of ``n`` items (all when k is None or >= n), stratified by ``strata``."""
    if k is None or k >= n:
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


def _methods_plan(methods, peers, log):
    methods = default_methods() if methods is None else list(methods)
    peers = list(PEERS) if peers is None else list(peers)
    _check_names(methods, peers)
    notes = []
    if peers and not pyod_available():
        notes.append("PyOD is not installed: every peer was skipped (pip install 'ganad[bench]').")
        log(notes[-1])
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
            out[f"auroc_{name}"] = _metrics(y, v)["auroc"]
    return out


def _base(protocol, seed, methods, peers, epochs, peer_epochs, **config):
    return {"protocol": protocol, "seed": int(seed), "machine": machine(),
            "config": {"methods": methods, "peers": peers, "epochs": epochs, "peer_epochs": peer_epochs, **config},
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


# --------------------------------------------------------------------------- MIT-BIH


def mitbih_split(records: Sequence[str], seed: int, cal_fraction: float = 0.2) -> tuple[list[str], list[str]]:
    """DS1 records -> (training records, calibration records), the calibration ones chosen by ``seed``."""
    rng = np.random.RandomState(seed)
    recs = sorted(records)
    n_cal = max(1, int(round(cal_fraction * len(recs))))
    cal = sorted(rng.choice(recs, n_cal, replace=False).tolist())
    return [r for r in recs if r not in cal], cal


def run_mitbih(data, *, methods=None, peers=None, seed: int = 0, max_train: int | None = 10000,
               max_test: int | None = 20000, max_cal: int | None = 5000, epochs: int | None = 30, peer_epochs: int = 20,
               calibration: str = "fpr", fpr: float = 0.05, cal_fraction: float = 0.2, compose: str = "method", ds1=None, ds2=None,
               rhythm: bool = False, adaptive: int | None = None, log: Callable = print, keep_scores: bool = True) -> dict:
    """Inter-patient MIT-BIH one-class benchmark (see the module docstring).

    ``rhythm``: add the rhythm view, the RR-interval log-ratios of
    :func:`ganad.data.mitbih.rhythm_features`. Each ganad method then trains a second detector
    of its own kind on the rhythm features of the training beats, and the two scores
    (morphology, rhythm) are combined label-free: each standardised by median / MAD on the
    held-out normal DS1 beats, then summed. Peers get the rhythm features appended to the beat.

    ``compose``: 'method' keeps each ganad method's default score; 'default' re-composes its score
    components on the calibration set (robust standardisation on its normal beats, equal weights; no labels).
    ``ds1`` / ``ds2`` override the record lists (for tiny tests); they must stay inside DS1 / DS2.
    ``adaptive=N`` adds, for every method, a separate *patient-adaptive* row: each DS2 record's scores
    standardised by the median / MAD of its own first N beats (label-free, causal; see
    :mod:`ganad.scoring.adaptive`), evaluated on the beats after each record's warm-up, beside the
    unadapted AUROC on those same beats. The pure inter-patient rows are unchanged.
    """
    if compose not in ("method", "default"):
        raise InputError(_fmt("compose", f"is {compose!r}", "use 'method' (each method's own score) or 'default' (robust-standardised components)"))
    from ganad.data import mitbih as mb
    if calibration not in MITBIH_CALIBRATIONS:
        raise InputError(_fmt("calibration", f"is {calibration!r}", f"use one of {', '.join(MITBIH_CALIBRATIONS)}"))
    ds1 = list(mb.DS1 if ds1 is None else ds1)
    ds2 = list(mb.DS2 if ds2 is None else ds2)
    if not set(ds1) <= set(mb.DS1) or not set(ds2) <= set(mb.DS2):
        raise InputError(_fmt("ds1/ds2", "name records outside the de Chazal DS1 / DS2 halves", "pick DS1 records for ds1 and DS2 records for ds2"))
    directory = resolve_data_dir(data, "mitdb")
    plan, notes = _methods_plan(methods, peers, log)
    rng = np.random.RandomState(seed)
    train_recs, cal_recs = mitbih_split(ds1, seed, cal_fraction)
    b1 = mb.load_mitbih(directory, ds1, rr_features=rhythm)
    b2 = mb.load_mitbih(directory, ds2, rr_features=rhythm)
    in_train = np.isin(b1.record, train_recs) & (b1.aami == "N")
    tr = b1.subset(np.flatnonzero(in_train)[_subsample(int(in_train.sum()), max_train, rng)])
    in_cal = np.isin(b1.record, cal_recs)
    if calibration == "fpr":
        in_cal &= b1.aami == "N"
    cal_idx = np.flatnonzero(in_cal)
    cal = b1.subset(cal_idx[_subsample(len(cal_idx), max_cal, rng, b1.aami[cal_idx])])
    te = b2.subset(_subsample(len(b2), max_test, rng, b2.aami))
    y_cal = None if calibration == "fpr" else cal.y
    y = te.y
    res = _base("mitbih", seed, [m for k, m in plan if k == "ganad"], [m for k, m in plan if k == "peer"], epochs, peer_epochs,
                max_train=max_train, max_test=max_test, max_cal=max_cal, calibration=calibration, compose=compose,
                fpr=fpr if calibration == "fpr" else None, cal_fraction=cal_fraction, window=256, before=96, lead="MLII",
                rhythm=rhythm)
    res["split"] = {"train_records": sorted(set(tr.record.tolist())), "cal_records": cal_recs,
                    "test_records": sorted(set(te.record.tolist())), "n_train": len(tr), "n_cal": len(cal),
                    "n_test": len(te), "train_counts": tr.counts(), "cal_counts": cal.counts(), "test_counts": te.counts(),
                    "test_counts_full_ds2": b2.counts(), "cal_labels_used": y_cal is not None}
    res["notes"] = notes + [
        f"train: {len(tr)} N beats of DS1 records {', '.join(res['split']['train_records'])}"
        + (f" (random subsample of {int(in_train.sum())})" if len(tr) < in_train.sum() else ""),
        ("calibration (threshold only, score = each method's default composition)" if compose == "method" else
         "calibration (ganad: components robust-standardised on the held-out normal beats and summed, then threshold)")
        + f": DS1 records {', '.join(cal_recs)} held out by patient; "
        + (f"tau = the (1 - {fpr}) quantile of the scores of {len(cal)} held-out N beats (no labels used)" if calibration == "fpr"
           else f"tau = best {calibration.upper()} on {len(cal)} held-out beats of every class (their labels)"),
        f"test: {len(te)} DS2 beats" + (f" (class-stratified random subsample of {len(b2)})" if len(te) < len(b2) else " (all)")
        + "; anomaly = S, V, F or Q",
    ] + (["rhythm view: RR log-ratios (prev/local, next/local, prev/next); ganad methods: a second detector of the same "
          "method on them, scores combined by median/MAD standardisation on the held-out normal DS1 beats (no labels); "
          "peers: the 3 features appended to the 256-sample beat"] if rhythm else [])
    log(f"mitbih: train {len(tr)}, cal {len(cal)}, test {len(te)} ({te.counts()})")
    rows, scores = [], {}
    for kind, name in plan:
        log(f"  {kind} {name} ...")
        if rhythm and kind == "ganad":
            r = run_two_views(name, (tr.X, mb.rhythm_features(tr.rr)), (te.X, mb.rhythm_features(te.rr)),
                              (cal.X, mb.rhythm_features(cal.rr)), cal.aami == "N", seed=seed, epochs=epochs, y_cal=y_cal,
                              threshold=calibration, fpr=fpr, log=log)
        elif rhythm:
            def with_rr(b):
                return np.c_[_flat(b.X), mb.rhythm_features(b.rr)]
            r = run_one(kind, name, with_rr(tr), with_rr(te), seed=seed, epochs=epochs, peer_epochs=peer_epochs,
                        X_cal=with_rr(cal), y_cal=y_cal, threshold=calibration, fpr=fpr, compose=compose, log=log)
        else:
            r = run_one(kind, name, tr.X, te.X, seed=seed, epochs=epochs, peer_epochs=peer_epochs, X_cal=cal.X, y_cal=y_cal,
                        threshold=calibration, fpr=fpr, compose=compose, log=log)
        rec = _record(r)
        s = r["scores"]
        rec.update(_metrics(y, s))
        rec.update(_variant_metrics(y, r))
        for c in ("S", "V", "F"):
            m = np.isin(te.aami, ["N", c])
            sub = _metrics((te.aami[m] == c).astype(np.int64), None if s is None else s[m])
            rec[f"auroc_N_vs_{c}"], rec[f"auprc_N_vs_{c}"] = sub["auroc"], sub["auprc"]
        if s is not None and r["threshold"] is not None:
            from ganad.metrics import evaluate
            ev = evaluate(y, s, threshold=r["threshold"])
            rec.update(f1=ev.f1, mcc=ev.mcc, precision=ev.precision, recall=ev.recall,
                       fpr_test=float(np.mean(s[y == 0] > r["threshold"])))
        rows.append(rec)
        if s is not None and adaptive:
            from ganad.scoring.adaptive import prefix_standardise
            sa, warm = prefix_standardise(s, te.record, te.sample, int(adaptive))
            keep = ~warm
            ad = {"method": f"{rec['method']} (patient-adaptive, first {int(adaptive)} beats)", "kind": rec["kind"],
                  "fit_s": rec["fit_s"], "score_s": rec["score_s"], "error": None, "threshold": None,
                  **_metrics(y[keep], sa[keep]), "auroc_unadapted_same_beats": _metrics(y[keep], s[keep])["auroc"],
                  "n_evaluated": int(keep.sum())}
            for c in ("S", "V", "F"):
                m = np.isin(te.aami, ["N", c]) & keep
                sub = _metrics((te.aami[m] == c).astype(np.int64), sa[m])
                ad[f"auroc_N_vs_{c}"], ad[f"auprc_N_vs_{c}"] = sub["auroc"], sub["auprc"]
            rows.append(ad)
            log(f"    {ad['method']}: auroc={ad.get('auroc')} (unadapted on the same beats {ad['auroc_unadapted_same_beats']})")
        if s is not None and keep_scores:
            scores[rec["method"]] = s
        log(f"    {rec['method']}: auroc={rec.get('auroc')} fit={rec['fit_s']}s score={rec['score_s']}s {rec['error'] or ''}")
    res["results"] = rows
    res["summary"] = _summary(rows)
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if keep_scores:
        res["_scores"] = scores
        res["_y"] = y
        res["_classes"] = te.aami
    return res


# --------------------------------------------------------------------------- ADBench


def adbench_split(y: np.ndarray, seed: int, train_fraction: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): ``train_fraction`` of the normal samples train; the other normals and
    every anomaly test."""
    rng = np.random.RandomState(seed)
    normal = np.flatnonzero(y == 0)
    perm = rng.permutation(normal)
    k = int(round(train_fraction * len(normal)))
    train = np.sort(perm[:k])
    test = np.sort(np.concatenate([perm[k:], np.flatnonzero(y == 1)]))
    return train, test


def run_adbench(data, *, methods=None, peers=None, seeds: Iterable[int] = (0, 1, 2), datasets=None,
                max_train: int | None = 5000, max_test: int | None = 5000, epochs: int | None = 30, peer_epochs: int = 20,
                log: Callable = print) -> dict:
    """ADBench classical datasets: per dataset and seed, 60 % of the normals train; test = the rest + all anomalies."""
    from ganad.data.tabular import adbench_names, load_adbench
    directory = resolve_data_dir(data, "adbench")
    names = adbench_names(directory)
    if datasets is not None:
        want = [d.lower() for d in datasets]
        sel = [n for n in names if n.lower() in want or n.split("_", 1)[-1].lower() in want]
        missing = [d for d in want if not any(d in (n.lower(), n.split("_", 1)[-1].lower()) for n in names)]
        if missing:
            raise InputError(_fmt("--datasets", f"names unknown dataset(s) {missing}", f"use some of {names}"))
        names = sel
    plan, notes = _methods_plan(methods, peers, log)
    seeds = [int(s) for s in seeds]
    res = _base("adbench", seeds[0], [m for k, m in plan if k == "ganad"], [m for k, m in plan if k == "peer"], epochs,
                peer_epochs, seeds=seeds, datasets=names, max_train=max_train, max_test=max_test, train_fraction=0.6)
    res["notes"] = notes + [f"per dataset and seed: 60% of the normal samples train (random subsample of at most {max_train}), "
                            f"the other 40% + all anomalies test (class-stratified random subsample of at most {max_test}); "
                            "no threshold is fitted (ranking metrics only)"]
    rows = []
    for name in names:
        X, y = load_adbench(directory / f"{name}.npz")
        for seed in seeds:
            tr, te = adbench_split(y, seed)
            rng = np.random.RandomState(seed + 1000)
            tr = tr[_subsample(len(tr), max_train, rng)]
            te = te[_subsample(len(te), max_test, rng, y[te])]
            assert not np.intersect1d(tr, te).size and (y[tr] == 0).all()
            log(f"adbench {name} seed {seed}: d={X.shape[1]} train {len(tr)}, test {len(te)} ({int(y[te].sum())} anomalies)")
            for kind, m in plan:
                r = run_one(kind, m, X[tr], X[te], seed=seed, epochs=epochs, peer_epochs=peer_epochs, log=log)
                rec = {"dataset": name, "seed": seed, "n_train": int(len(tr)), "n_test": int(len(te)),
                       "n_test_anomalies": int(y[te].sum()), **_record(r), **_metrics(y[te], r["scores"]),
                       **_variant_metrics(y[te], r)}
                rows.append(rec)
                log(f"    {rec['method']}: auroc={rec['auroc']} fit={rec['fit_s']}s {rec['error'] or ''}")
    res["results"] = rows
    res["per_dataset"] = _per_unit(rows, "dataset")
    res["summary"] = _summary_units(res["per_dataset"])
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return res


# --------------------------------------------------------------------------- MNIST


def run_mnist(data, *, methods=None, peers=None, seed: int = 0, digits: Iterable[int] = range(10),
              max_train: int | None = 2000, max_test: int | None = 2000, epochs: int | None = 30, peer_epochs: int = 20,
              log: Callable = print) -> dict:
    """One-class MNIST: per digit, train on that digit's training images, test on the test set (anomaly = other digits).
    Pixels scaled to [0, 1] for every method; ganad gets (n, 1, 28, 28) images, peers 784-d vectors."""
    from ganad.data.mnist import load_mnist
    directory = resolve_data_dir(data, "mnist")
    Xtr_all, ytr_all = load_mnist(directory, "train")
    Xte_all, yte_all = load_mnist(directory, "test")
    plan, notes = _methods_plan(methods, peers, log)
    digits = [int(d) for d in digits]
    rng = np.random.RandomState(seed)
    te = _subsample(len(yte_all), max_test, rng, yte_all)  # one test subsample for every digit
    Xte = (Xte_all[te].astype(np.float32) / 255.0)
    res = _base("mnist", seed, [m for k, m in plan if k == "ganad"], [m for k, m in plan if k == "peer"], epochs, peer_epochs,
                digits=digits, max_train=max_train, max_test=max_test)
    res["notes"] = notes + [f"train: per digit, a random subsample of at most {max_train} of its training images; "
                            f"test: {len(te)} test images" + (f" (class-stratified random subsample of {len(yte_all)})" if len(te) < len(yte_all) else "")
                            + ", the same for every digit; pixels / 255; no threshold (ranking metrics only)"]
    rows = []
    for d in digits:
        idx = np.flatnonzero(ytr_all == d)
        idx = idx[_subsample(len(idx), max_train, rng)]
        Xtr = Xtr_all[idx].astype(np.float32) / 255.0
        y = (yte_all[te] != d).astype(np.int64)
        log(f"mnist digit {d}: train {len(idx)}, test {len(te)} ({int(y.sum())} anomalies)")
        for kind, m in plan:
            r = run_one(kind, m, Xtr, Xte, seed=seed, epochs=epochs, peer_epochs=peer_epochs, scale_peers=False, log=log)
            rec = {"digit": d, "n_train": int(len(idx)), "n_test": int(len(te)), **_record(r), **_metrics(y, r["scores"]),
                   **_variant_metrics(y, r)}
            rows.append(rec)
            log(f"    {rec['method']}: auroc={rec['auroc']} fit={rec['fit_s']}s {rec['error'] or ''}")
    res["split"] = {"train_source": "MNIST train (60000)", "test_source": "MNIST test (10000)", "test_index": te.tolist()}
    res["results"] = rows
    res["per_digit"] = _per_unit(rows, "digit")
    res["summary"] = _summary_units(res["per_digit"])
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return res


# --------------------------------------------------------------------------- summaries


def _mean(v):
    v = [x for x in v if x is not None]
    return float(np.mean(v)) if v else None


def _per_unit(rows: list[dict], key: str) -> dict:
    """unit -> method -> mean AUROC / AUPRC over seeds and mean fit / score seconds."""
    out: dict = {}
    for r in rows:
        out.setdefault(str(r[key]), {}).setdefault(r["method"], []).append(r)
    return {u: {m: {"auroc": _mean([x["auroc"] for x in rs]), "auprc": _mean([x["auprc"] for x in rs]),
                    "fit_s": _mean([x["fit_s"] for x in rs]), "score_s": _mean([x["score_s"] for x in rs]),
                    "n_runs": len(rs), "n_failed": sum(x["auroc"] is None for x in rs)}
                for m, rs in ms.items()} for u, ms in out.items()}


def _best(table: dict, kind_is_peer: bool, key="auroc"):
    cands = [(m, v) for m, v in table.items() if m.startswith(_PEER_PREFIX) == kind_is_peer and v.get(key) is not None]
    return max(cands, key=lambda mv: mv[1][key]) if cands else (None, None)


def _summary(rows: list[dict]) -> dict:
    table = {r["method"]: r for r in rows}
    g, gv = _best(table, False)
    p, pv = _best(table, True)
    return {"best_ganad": g, "best_ganad_auroc": gv and gv["auroc"], "best_peer": p, "best_peer_auroc": pv and pv["auroc"]}


def _summary_units(per_unit: dict) -> dict:
    methods = sorted({m for u in per_unit.values() for m in u})
    mean = {}
    for m in methods:
        vals = [per_unit[u][m]["auroc"] for u in per_unit if m in per_unit[u]]
        complete = len(vals) == len(per_unit) and all(v is not None for v in vals)
        mean[m] = {"auroc": _mean(vals) if complete else None,
                   "auprc": _mean([per_unit[u][m]["auprc"] for u in per_unit if m in per_unit[u]]) if complete else None,
                   "fit_s": sum(per_unit[u][m]["fit_s"] or 0 for u in per_unit if m in per_unit[u]),
                   "score_s": sum(per_unit[u][m]["score_s"] or 0 for u in per_unit if m in per_unit[u]),
                   "complete": complete}
    g, gv = _best(mean, False)
    p, pv = _best(mean, True)
    return {"mean": mean, "best_ganad": g, "best_ganad_mean_auroc": gv and gv["auroc"], "best_peer": p,
            "best_peer_mean_auroc": pv and pv["auroc"]}


# --------------------------------------------------------------------------- output


def _f(v, nd=3):
    return "–" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def markdown_tables(res: dict) -> str:
    """The result tables as Markdown."""
    lines = []
    p = res["protocol"]
    if p == "mitbih":
        cols = ["method", "auroc", "auprc", "auroc_N_vs_S", "auroc_N_vs_V", "auroc_N_vs_F", "f1", "mcc", "fpr_test", "fit_s", "score_s"]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in res["results"]:
            if r["error"]:
                lines.append(f"| {r['method']} | " + " | ".join(["–"] * (len(cols) - 1)) + " |")
                continue
            lines.append("| " + " | ".join(_f(r.get(c), 1 if c.endswith("_s") else 3) for c in cols) + " |")
    else:
        unit = "dataset" if p == "adbench" else "digit"
        per = res["per_dataset" if p == "adbench" else "per_digit"]
        mean = res["summary"]["mean"]
        methods = list(mean)
        methods = [m for m in methods if not m.startswith(_PEER_PREFIX)] + [m for m in methods if m.startswith(_PEER_PREFIX)]
        lines += [f"AUROC ({'mean over seeds ' + str(res['config']['seeds']) if p == 'adbench' else 'seed ' + str(res['seed'])}):", "",
                  f"| {unit} | " + " | ".join(m.replace(_PEER_PREFIX, "PyOD ") for m in methods) + " |", "|" + "---|" * (len(methods) + 1)]
        for u, ms in per.items():
            best = max((v["auroc"] for v in ms.values() if v["auroc"] is not None), default=None)
            cells = []
            for m in methods:
                v = ms.get(m, {}).get("auroc")
                cells.append(("**" + _f(v) + "**") if v is not None and v == best else _f(v))
            lines.append(f"| {u} | " + " | ".join(cells) + " |")
        lines.append("| **mean** | " + " | ".join(_f(mean[m]["auroc"]) for m in methods) + " |")
        lines.append("| mean AUPRC | " + " | ".join(_f(mean[m]["auprc"]) for m in methods) + " |")
        per_what = "per seed, summed over datasets" if p == "adbench" else "summed over digits"
        lines.append(f"| fit s ({per_what}) | " + " | ".join(_f(mean[m]["fit_s"], 0) for m in methods) + " |")
        lines.append(f"| score s ({per_what}) | " + " | ".join(_f(mean[m]["score_s"], 0) for m in methods) + " |")
        lines.append("")
        lines.append("Bold: the best AUROC of the row. ganad methods first, then the PyOD peers.")
    errs = [r for r in res["results"] if r["error"]]
    if errs:
        lines += ["", "Failed / skipped runs:"] + sorted({f"- {r['method']}: {r['error']}" for r in errs})
    return "\n".join(lines) + "\n"


def _figures(res: dict) -> dict:
    """name -> matplotlib Figure."""
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve
    figs = {}
    p = res["protocol"]
    if p == "mitbih" and res.get("_scores"):
        fig = Figure(figsize=(7.5, 6))
        ax = fig.add_subplot(111)
        y = res["_y"]
        auc = {r["method"]: r["auroc"] for r in res["results"]}
        for m, s in sorted(res["_scores"].items(), key=lambda kv: -(auc.get(kv[0]) or 0)):
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, lw=1.2, ls="--" if m.startswith(_PEER_PREFIX) else "-", label=f"{m} ({auc[m]:.3f})")
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title("MIT-BIH DS2, N vs all other beats (dashed: PyOD)")
        ax.legend(fontsize=7, loc="lower right")
        figs["roc"] = fig
        # per class AUROC bars
        fig = Figure(figsize=(9, 4))
        ax = fig.add_subplot(111)
        rows = [r for r in res["results"] if r["auroc"] is not None]
        w = 0.2
        x = np.arange(len(rows))
        for i, c in enumerate(["", "_N_vs_S", "_N_vs_V", "_N_vs_F"]):
            ax.bar(x + (i - 1.5) * w, [r.get("auroc" + c) or 0 for r in rows], w, label=c.strip("_").replace("_", " ") or "overall")
        ax.set_xticks(x, [r["method"].replace(_PEER_PREFIX, "pyod\n") for r in rows], fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUROC")
        ax.legend(fontsize=7, ncol=4)
        figs["auroc_by_class"] = fig
    if p in ("adbench", "mnist"):
        per = res["per_dataset" if p == "adbench" else "per_digit"]
        units = list(per)
        methods = list(res["summary"]["mean"])
        methods = [m for m in methods if not m.startswith(_PEER_PREFIX)] + [m for m in methods if m.startswith(_PEER_PREFIX)]
        fig = Figure(figsize=(max(8, 0.9 * len(units) + 2) + 2, 4.5))
        ax = fig.add_subplot(111)
        w = 0.8 / max(1, len(methods))
        x = np.arange(len(units))
        cmap = __import__("matplotlib").colormaps["tab20"]
        for i, m in enumerate(methods):
            vals = [per[u].get(m, {}).get("auroc") or 0 for u in units]
            ax.bar(x - 0.4 + (i + 0.5) * w, vals, w, label=m, color=cmap(i % 20),
                   hatch="//" if m.startswith(_PEER_PREFIX) else None, edgecolor="white", lw=0)
        ax.set_xticks(x, [u.split("_", 1)[-1] for u in units], rotation=30 if p == "adbench" else 0, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUROC")
        ax.set_title(("ADBench: mean AUROC over seeds per dataset" if p == "adbench" else "MNIST one-class: AUROC per digit")
                     + " (hatched: PyOD)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        figs["auroc_per_" + ("dataset" if p == "adbench" else "digit")] = fig
    return figs


def write_outputs(res: dict, outdir: str | os.PathLike) -> dict:
    """Write results.json, results.md, one PNG per figure and report.html into ``outdir``; returns their paths."""
    from ganad.report import fig_to_base64_png, save_png, write_report
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in res.items() if not k.startswith("_")}
    write_text(out / "results.json", json.dumps(clean, indent=1, default=_json_default))
    md = f"# ganad benchmark: {res['protocol']}\n\n" + "\n".join(f"- {n}" for n in res.get("notes", [])) + "\n\n" + markdown_tables(res)
    write_text(out / "results.md", md)
    figs = _figures(res)
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    embedded = []
    for name, fig in figs.items():
        paths[name] = save_png(fig, out / f"{name}.png", close=False)
        embedded.append((name, fig_to_base64_png(fig)))
    # the report's score panel shows the best ganad method (its test scores on the first unit for adbench/mnist)
    rows = [r for r in res["results"] if r["auroc"] is not None]
    tables = {"results": [{k: v for k, v in r.items() if k not in ("kind",)} for r in res["results"]]}
    if "summary" in res and "mean" in res["summary"]:
        tables["mean over units"] = [{"method": m, **v} for m, v in res["summary"]["mean"].items()]
    if res.get("split"):
        tables["split"] = {k: (", ".join(map(str, v)) if isinstance(v, list) and len(v) < 60 else v)
                           for k, v in res["split"].items() if k != "test_index"}
    tables["machine"] = res["machine"]
    tables["config"] = {k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in res["config"].items()}
    best = res["summary"].get("best_ganad")
    if res["protocol"] == "mitbih" and best and best in res.get("_scores", {}):
        thr = next(r["threshold"] for r in rows if r["method"] == best)
        kw = dict(scores=res["_scores"][best], labels=res["_y"], classes=res["_classes"], threshold=thr)
        note = f"Score panels: {best}, the best ganad method by AUROC, on the DS2 test beats; τ from the held-out DS1 records."
    else:
        # no per-sample scores kept: show the AUROC of every run as the 'scores' panel
        vals = np.array([r["auroc"] for r in rows] or [0.0])
        kw = dict(scores=vals, classes=np.array(["ganad" if not r["method"].startswith(_PEER_PREFIX) else "PyOD" for r in rows] or ["-"]))
        note = "Score panels: the distribution of per-run AUROCs (ganad vs PyOD), not per-sample scores."
    path = write_report(out / "report.html", title=f"ganad benchmark — {res['protocol']}", tables=tables,
                        notes=list(res.get("notes", [])) + [note], **kw)
    # append the benchmark figures as one more section (base64 PNG, still self-contained)
    html = path.read_text()
    imgs = "".join(f'<figure><img src="data:image/png;base64,{b64}" alt="{name}"><figcaption>{name}</figcaption></figure>'
                   for name, b64 in embedded)
    section = f'<section id="benchmark-figures"><h2>Benchmark figures</h2>{imgs}</section>\n'
    html = html.replace("</main>", section + "</main>", 1)
    write_text(path, html)
    paths["report"] = path
    return paths


def run_protocol(protocol: str, data, **kwargs) -> dict:
    """Dispatch to :func:`run_mitbih`, :func:`run_adbench` or :func:`run_mnist`."""
    fn = {"mitbih": run_mitbih, "adbench": run_adbench, "mnist": run_mnist}.get(protocol)
    if fn is None:
        raise InputError(_fmt("protocol", f"is {protocol!r}", f"use one of {', '.join(PROTOCOLS)}"))
    return fn(data, **kwargs)


def _json_default(v):  # pragma: no cover - json helper
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


__all__ = ["PEERS", "PROTOCOLS", "run_mitbih", "run_adbench", "run_mnist", "run_protocol", "write_outputs", "markdown_tables",
           "adbench_split", "mitbih_split", "default_methods", "machine", "resolve_data_dir", "make_peer", "make_ganad", "run_one"]
