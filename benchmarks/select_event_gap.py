"""Choose the series event rule (``SeriesDetector(event_gap=...)``) on NAB *validation* groups only.

Runs of points above the threshold closer than a few points are usually one anomaly whose score
dipped below the threshold for a moment; reported as several events they are several alerts, and
the event-wise metrics count each. ``event_gap`` bridges gaps of at most that many points. The
candidates are 0 (every run an event, the rule before the fourteenth session) and 1/8, 1/4, 1/2 and
1 window. Larger gaps are not candidates: event F1 without point adjustment rewards merging
without bound (one event spanning a whole series overlapping any labelled range scores precision
and recall 1), and points more than a window apart share no window, so nothing in the score ties
them together.

Protocol: the labelled NAB groups that are *not* the issue's target groups, realAdExchange and
realTraffic (13 series), ``ganad benchmark nab``'s split and windows (first 15 % trains, window 64,
stride 4, the 0.99 quantile of the training points as threshold); the series default (GANomaly,
the library defaults, 30 epochs) for each seed, and the PyOD peers and the rolling z-score on the
same windows with the same event rule, each fitted once and evaluated under every candidate. Rule,
fixed before the run: the largest mean event F1 of the series default over the seeds.

    OMP_NUM_THREADS=1 python benchmarks/select_event_gap.py --data $GANAD_SHARED_DATA --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from select_series_defaults import VALIDATION_GROUPS  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("-o", "--output", default="bench-event-gap")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--peers", default="ecod,knn,iforest,ocsvm")
    a = ap.parse_args(argv)
    from ganad.data.nab import load_nab, nab_series
    from ganad.series import SeriesDetector
    from ganad.series.benchmark import _peer_points, nab_root, rolling_zscore
    from ganad.series.metrics import bridge_gaps, event_prf

    W = a.window
    gaps = [0, W // 8, W // 4, W // 2, W]
    root = nab_root(a.data)
    names = [n for n in nab_series(root) if n.split("/")[0] in VALIDATION_GROUPS]
    per = {}  # method -> gap -> list of per-series event dicts (per seed for ganad)
    t0 = time.perf_counter()
    for name in names:
        _, v, y = load_nab(root, name)
        n_tr = int(round(0.15 * len(v)))
        train, test, y_te = v[:n_tr], v[n_tr:], y[n_tr:]
        if n_tr < W + 1 or len(test) < W or y_te.min() == y_te.max():
            continue
        cand = {}
        for s in a.seeds:
            sd = SeriesDetector("ganomaly", window=W, stride=a.stride, contamination=0.01,
                                detector_params={"epochs": a.epochs, "random_state": s}).fit(train)
            cand[f"ganad ganomaly seed {s}"] = (sd.decision_scores_, sd.decision_function(test))
        for p in [p for p in a.peers.split(",") if p]:
            cand[f"pyod:{p}"] = _peer_points(p, 0, train, test, W, a.stride, 10)
        z = rolling_zscore(v, W)
        cand["rolling z-score"] = (z[:n_tr], z[n_tr:])
        for m, (s_tr, s_te) in cand.items():
            pred = s_te > np.quantile(s_tr[np.isfinite(s_tr)], 0.99)
            for g in gaps:
                per.setdefault(m, {}).setdefault(g, []).append(event_prf(y_te, bridge_gaps(pred, g)))
        print(f"{name} ({time.perf_counter() - t0:.0f} s)", flush=True)

    def mean(rows, k):
        return float(np.mean([r[k] for r in rows]))

    table = {}
    for m, by_gap in per.items():
        key = "ganad ganomaly (series default)" if m.startswith("ganad") else m
        for g, rows in by_gap.items():
            table.setdefault(key, {}).setdefault(g, []).append({k: mean(rows, k) for k in ("event_f1", "event_precision", "event_recall")})
    lines = ["| method | " + " | ".join(f"event F1, gap {g}" for g in gaps) + " | precision / recall at gap 0 → " + str(W) + " |",
             "|---|" + "---|" * (len(gaps) + 1)]
    res = {}
    for key, by_gap in table.items():
        cells, res[key] = [], {}
        for g in gaps:
            f1 = [r["event_f1"] for r in by_gap[g]]
            res[key][g] = {k: float(np.mean([r[k] for r in by_gap[g]])) for k in ("event_f1", "event_precision", "event_recall")}
            res[key][g]["event_f1_sd"] = float(np.std(f1))
            cells.append(f"{np.mean(f1):.3f}" + (f" ± {np.std(f1):.3f}" if len(f1) > 1 else ""))
        pr = f"{res[key][0]['event_precision']:.3f} / {res[key][0]['event_recall']:.3f} → {res[key][W]['event_precision']:.3f} / {res[key][W]['event_recall']:.3f}"
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {pr} |")
    best = max(gaps, key=lambda g: res["ganad ganomaly (series default)"][g]["event_f1"])
    text = "\n".join(lines) + f"\n\nrule (largest mean event F1 of the series default): event_gap = {best}\n"
    print(text)
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(f"validation groups {VALIDATION_GROUPS}, seeds {a.seeds}, epochs {a.epochs}, window {W}, stride {a.stride}\n\n{text}")
    (out / "results.json").write_text(json.dumps({"gaps": gaps, "chosen": best, "results": {k: {str(g): v for g, v in r.items()} for k, r in res.items()}}, indent=1))


if __name__ == "__main__":
    main()
