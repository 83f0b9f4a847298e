"""Series benchmark on NAB (or any folder in NAB's layout): ganad series methods vs PyOD peers on
the same windows vs a rolling z-score, with the honest series metrics of :mod:`ganad.series.metrics`.

Protocol, per series (univariate NAB files; labels = NAB's combined anomaly windows):

1. **split by time**: the first ``train_fraction`` of the points (default 0.15, NAB's probationary
   period) is the training part, the rest the test part. Training is unsupervised: labels are
   never read before scoring, and the training part is used as it is (it may hold anomalies).
2. **same windows for everybody**: windows of ``window`` points, stride ``stride``, cut from each
   part; the ganad method is :class:`~ganad.series.SeriesDetector` (its detector's scaler
   standardises on the training windows); PyOD peers get the same windows, flattened and
   standardised with the training part's mean and standard deviation, and their window scores are
   mapped to points by the same aggregation (:func:`ganad.series.detector.aggregate`).
3. **rolling z-score**: |x_t − mean(x_{t−w..t−1})| / std(x_{t−w..t−1}) over the previous
   ``window`` points (causal; the test part's first points look back into the training part).
4. **thresholds, the same rule for all**: the ``1 − contamination`` quantile (default 0.01) of each
   method's scores on the training points. No test label is used for any choice. **Events, the
   same rule for all**: runs of points above the threshold with at most ``event_gap`` normal points between them are
   one event (default: the window, ``SeriesDetector``'s default; ``event_gap=0``: every run is an
   event, the protocol before the fourteenth session).
5. **metrics** on the test part: point AUROC / AUPRC, VUS-PR (buffers 0..``window``), event
   precision / recall / F1 without point adjustment, point-adjusted F1 beside PA%K's area. Series
   whose test part holds no labelled anomaly are skipped (counted in ``skipped``).

    ganad benchmark nab --data /data -o bench-nab/
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ganad.exceptions import InputError, _fmt

NAB_GROUPS = ("realKnownCause", "realAWSCloudwatch", "realTweets", "artificialWithAnomaly")
SERIES_PEERS = ("iforest", "knn", "ocsvm", "ecod")
METRICS = ("vus_pr", "event_f1", "point_auroc", "point_auprc", "event_precision", "event_recall", "pa_f1", "pak_auc_f1", "vus_roc",
           "event_f1_runs")
#: ``event_f1_runs``: event F1 with every run of points above the threshold an event (no gap
#: bridged: the protocol before the fourteenth session), beside ``event_f1`` under the event rule


def nab_root(data) -> Path:
    if data is None:  # never the current directory: --data, else $GANAD_DATA_DIR, as the other protocols
        from ganad.benchmark.environment import ENV_VAR
        data = os.environ.get(ENV_VAR)
        if not data:
            raise InputError(_fmt("--data", f"is not given and ${ENV_VAR} is unset",
                                  f"pass --data DIR (the folder holding nab/, or the NAB root itself) or set {ENV_VAR}"))
    base = Path(data).expanduser()
    for p in (base / "nab", base):
        if (p / "data").is_dir() and (p / "labels").is_dir():
            return p
    raise InputError(_fmt("--data", f"{str(base)!r} holds no NAB folder (data/ and labels/)", "pass the folder holding nab/, or the NAB root itself"))


def rolling_zscore(values: np.ndarray, window: int) -> np.ndarray:
    """|x_t − mean of the previous w points| / their std (first points: the points so far; 0 before two)."""
    x = np.asarray(values, dtype=np.float64)
    c1 = np.r_[0.0, np.cumsum(x)]
    c2 = np.r_[0.0, np.cumsum(x * x)]
    t = np.arange(len(x))
    lo = np.maximum(t - window, 0)
    n = (t - lo).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c1[t] - c1[lo]) / n
        var = np.maximum((c2[t] - c2[lo]) / n - mean * mean, 0)
        z = np.abs(x - mean) / np.sqrt(var + 1e-12 * (1 + mean * mean))
    z[~np.isfinite(z) | (n < 2)] = 0.0  # no spread to compare with before two points
    return z


def _when(t) -> str:
    """A datetime64 as NAB writes times ('2014-02-14 14:30:00')."""
    import pandas as pd
    return str(pd.Timestamp(t))


def _in_series_terms(msg: str, name: str, method: str, part: str) -> str:
    """A detector's message about its data ``X`` naming the NAB series (and its part) and the method."""
    if msg.startswith(("X:", "X ")):
        return f"{name}{part} ({method}){msg[1:]}"
    return f"{name} ({method}): {msg}"


def _peer_points(name, seed, train, test, window, stride, epochs):
    from ganad.benchmark import make_peer
    from ganad.data.windows import make_windows
    from ganad.series.detector import aggregate
    mu, sd = float(train.mean()), float(train.std()) or 1.0
    out = []
    Wtr, s_tr = make_windows((train - mu) / sd, window, stride)
    det = make_peer(name, seed, epochs, window)
    det.fit(Wtr.reshape(len(Wtr), -1))
    # the training part: the peer's own training scores (PyOD's KNN leaves a window out of its own
    # neighbours there; decision_function would find each training window at distance 0 and set the
    # threshold too low), as ganad's SeriesDetector does for its windows
    out.append(aggregate(np.asarray(det.decision_scores_, dtype=np.float64), None, s_tr, window, len(train))[0])
    W, s = make_windows((test - mu) / sd, window, stride)
    out.append(aggregate(det.decision_function(W.reshape(len(W), -1)), None, s, window, len(test))[0])
    return out


def run_nab(data, *, groups: Sequence[str] = NAB_GROUPS, series: Sequence[str] | None = None, methods: Sequence[str] = ("ganomaly",),
            peers: Sequence[str] | None = None, window: int = 64, stride: int = 1, train_fraction: float = 0.15,
            contamination: float = 0.01, epochs: int = 20, peer_epochs: int = 10, seed: int = 0,
            event_gap: int | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run the protocol (module docstring); returns {"rows": per series and method, "summary": means, ...}."""
    from ganad.data.nab import load_nab, nab_series
    from ganad.detectors import DETECTORS
    from ganad.series import SeriesDetector
    from ganad.params import is_int
    from ganad.series.metrics import bridge_gaps, event_prf, series_metrics
    root = nab_root(data)
    if not is_int(window) or window < 2:
        raise InputError(_fmt("--window", f"is {window!r}", "pass a whole number of points >= 2, e.g. 64"))
    if event_gap is not None and not (is_int(event_gap) and event_gap >= 0):
        raise InputError(_fmt("--event-gap", f"is {event_gap!r}", "pass a whole number of points >= 0, or leave it out for one window"))
    gap = int(window if event_gap is None else event_gap)
    if not 0 < train_fraction < 1:
        raise InputError(_fmt("--train-fraction", f"is {train_fraction!r}", "pass a fraction between 0 and 1, e.g. 0.15"))
    bad = [m for m in methods if m not in DETECTORS]
    if bad:
        raise InputError(_fmt("--methods", f"names unknown method(s) {bad}", f"use some of {', '.join(sorted(DETECTORS))}"))
    from ganad.benchmark.peers import PEERS, available_peers
    from ganad.detectors.base import MIN_FIT_SAMPLES
    # before any series is trained on, not when the first peer is reached
    badp = [p for p in (peers or ()) if p not in PEERS]
    if badp:
        raise InputError(_fmt("--peers", f"names unknown peer(s) {badp}", f"use some of {', '.join(PEERS)}, or none"))
    peers, notes = available_peers(SERIES_PEERS if peers is None else peers, peers is not None, log or (lambda s: None))
    everything = nab_series(root)
    names = list(series) if series else [n for n in everything if n.split("/")[0] in groups]
    if not names:
        if not everything:
            raise InputError(_fmt("--data", f"{str(root)!r} holds no series: no .csv file under {root}/data",
                                  "put each series in data/<group>/<name>.csv (columns timestamp,value) beside labels/combined_windows.json"))
        found = sorted({n.split("/")[0] for n in everything})
        raise InputError(_fmt("--groups", f"{','.join(groups)} select no series under {root}/data (its groups: {', '.join(found[:20])})",
                              f"pass --groups naming some of {', '.join(found[:20])}"))
    log = log or (lambda s: None)
    from ganad.data.nab import nab_windows
    # every series and its labels read before any training: a missing label entry or an unreadable
    # file stops the run at once, not after the series before it have been trained on
    loaded = {name: load_nab(root, name) for name in names}
    rows, skipped = [], []
    min_train = window + (MIN_FIT_SAMPLES - 1) * stride  # the fewest points giving a detector enough windows
    for name in names:
        t_, v, y = loaded[name]
        back = np.flatnonzero(np.diff(t_) <= np.timedelta64(0, "ns")) + 1 if t_.dtype.kind == "M" else np.empty(0, dtype=np.int64)
        if back.size:  # NAB scores its files in row order (one steps back an hour): kept, but not unnoticed
            note = (f"{name}: its timestamps repeat or step back at {back.size} row(s), the first at data row {int(back[0])} (from 0); "
                    "the rows are taken in file order (sort the file by time if that is not its order)")
            log(note)
            notes.append(note)
        n_tr = int(round(train_fraction * len(v)))
        train, test, y_te = v[:n_tr], v[n_tr:], y[n_tr:]
        if n_tr < min_train or len(test) < window:
            skipped.append((name, f"{n_tr} training and {len(test)} test points: the training part needs {min_train} "
                                  f"({MIN_FIT_SAMPLES} windows of {window} at stride {stride}), the test part {window}"))
            log(f"{name}: skipped ({skipped[-1][1]})")  # on the console too, not only in results.md
            continue
        if y_te.min() == y_te.max():
            if y.max() == 0 and nab_windows(root, name):
                why = (f"its labelled window(s) cover none of its points (times {_when(t_.min())} .. {_when(t_.max())}): "
                       "check the labels' times against the series")
            elif y.max() == 0:
                why = "no labelled anomaly"
            elif y_te.max() == 0:
                why = "its labelled anomalies all lie in the training part"
            else:
                why = "no normal point in the test part"
            skipped.append((name, why))
            log(f"{name}: skipped ({why})")
            continue
        cand: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        for m in methods:
            t0 = time.perf_counter()
            caught: list = []
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    sd = SeriesDetector(m, window=window, stride=stride, contamination=contamination, event_gap=gap,
                                        detector_params={"epochs": epochs, "random_state": seed}).fit(train)
                cand[m] = (sd.decision_scores_, sd.decision_function(test), time.perf_counter() - t0)
            except InputError as exc:  # the API calls the data X: name the series and the method instead
                raise InputError(_in_series_terms(str(exc), name, m, "")) from exc
            finally:  # the fit's warnings (too few windows for a held-out slice, ...) name the series too
                for w in caught:
                    warnings.warn_explicit(_in_series_terms(str(w.message), name, m, " training part"), w.category, w.filename, w.lineno)
        for p in peers:
            t0 = time.perf_counter()
            try:
                s_tr, s_te = _peer_points(p, seed, train, test, window, stride, peer_epochs)
            except ImportError as exc:
                raise InputError(_fmt(f"peer {p!r}", f"needs PyOD ({exc})", "pip install -c constraints.txt -e '.[bench]', or pass --peers none")) from exc
            cand[f"pyod:{p}"] = (s_tr, s_te, time.perf_counter() - t0)
        z = rolling_zscore(v, window)
        cand["rolling_zscore"] = (z[:n_tr], z[n_tr:], 0.0)
        for m, (s_tr, s_te, secs) in cand.items():
            thr = float(np.quantile(s_tr[np.isfinite(s_tr)], 1 - contamination))
            pred = s_te > thr
            met = series_metrics(y_te, s_te, pred, max_buffer=window, y_event=bridge_gaps(pred, gap))
            met["event_f1_runs"] = met["event_f1"] if gap == 0 else event_prf(y_te, pred)["event_f1"]
            rows.append({"series": name, "method": m, "seconds": round(secs, 2), "threshold": thr,
                         **{k: met[k] for k in METRICS}})
        best = max((r for r in rows if r["series"] == name), key=lambda r: r["vus_pr"])
        log(f"{name}: {len(test)} test points, best VUS-PR {best['method']} {best['vus_pr']:.3f}")
    if not rows:
        why = "; ".join(f"{n}: {w}" for n, w in skipped[:5]) + ("; ..." if len(skipped) > 5 else "")
        raise InputError(_fmt("NAB selection", f"left no series to measure (every one skipped: {why})",
                              "select other groups or series, or change --window / --stride / --train-fraction"))
    meths = list(dict.fromkeys(r["method"] for r in rows))
    summary = {m: {k: float(np.mean([r[k] for r in rows if r["method"] == m])) for k in METRICS} for m in meths}
    for m in meths:
        summary[m]["n_series"] = sum(r["method"] == m for r in rows)
    return {"protocol": "nab", "rows": rows, "summary": summary, "skipped": skipped, "notes": notes,
            "config": {"groups": list(groups), "methods": list(methods), "peers": peers, "window": window, "stride": stride,
                       "train_fraction": train_fraction, "contamination": contamination, "epochs": epochs,
                       "peer_epochs": peer_epochs, "seed": seed, "event_gap": gap,
                       # the series selected (by --groups / series, the skipped ones included) and those measured (the
                       # rows; each method's summary 'n_series' counts the series it measured): one name was both before
                       "n_series_selected": len(names), "n_series_measured": len({r["series"] for r in rows}),
                       "n_series_skipped": len(skipped)}}


def markdown(res: dict) -> str:
    cols = ["method", "n_series"] + list(METRICS)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    order = sorted(res["summary"], key=lambda m: -res["summary"][m]["vus_pr"])
    for m in order:
        s = res["summary"][m]
        lines.append("| " + " | ".join([m, str(s["n_series"])] + [f"{s[k]:.3f}" for k in METRICS]) + " |")
    return "\n".join(lines)


def write_nab(res: dict, outdir) -> dict:
    from ganad.files import output_set, refuse_folders_in_the_way, write_text  # the two files replace the earlier ones as a set
    out = Path(outdir)
    refuse_folders_in_the_way(out, ["results.json", "results.md"], "the benchmark")
    cfg = ", ".join(f"{k}={v}" for k, v in res["config"].items())
    md = (f"# ganad benchmark: nab\n\nMean over series of each metric on the test parts ({cfg}).\n\n{markdown(res)}\n\n"
          f"Skipped: {len(res['skipped'])} series " + "; ".join(f"{n} ({why})" for n, why in res["skipped"]) + "\n"
          + "".join(f"\nNote: {n}\n" for n in res.get("notes", [])))
    with output_set(out, ["results.json", "results.md"]) as tmp:
        write_text(tmp / "results.json", json.dumps(res, indent=1, default=float))
        write_text(tmp / "results.md", md)
    return {"json": out / "results.json", "markdown": out / "results.md"}
