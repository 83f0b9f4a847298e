"""What label-free calibration does to detection: fit's score vs the two unlabelled compositions.

A user who calibrates a fitted model on normal data (``det.calibrate(X_normal)``, ``ganad calibrate
MODEL NORMAL.csv``; the fix named by the stale-threshold refusals) gets ``compose='default'``. Until the
eighteenth session that replaced the score fit composed (the method's own score blended with ``knn``,
the default chosen on validation data) with the mean of every standardised component
(now ``compose='standardised'``). This reports, per ADBench set, the AUROC of

* ``fit``: the model as fitted, no calibration;
* ``default``: after ``calibrate(X_cal)`` with today's default (fit's score, re-standardised on X_cal);
* ``standardised``: after ``calibrate(X_cal, compose='standardised')`` (the old default).

Split per set and seed: half the normal rows train, a quarter are the calibration rows (normal
only, no labels used), the other quarter and every anomaly are scored. Nothing is chosen here: the
new default follows from keeping the validated score; the figures show what the old one cost.

    OMP_NUM_THREADS=1 python benchmarks/bench_calibrate_default.py --seeds 0 1 2 --epochs 20

Writes benchmarks/out/calibrate_default.json and prints a table.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="reference data folder (holding adbench/)")
    ap.add_argument("--methods", default="ganomaly,fanogan")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--max-train", type=int, default=5000)
    ap.add_argument("--sets", default=None, help="comma-separated set names (default: every .npz in adbench/)")
    ap.add_argument("--out", default="calibrate_default.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from ganad.detectors import DETECTORS

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    data = shared_data(args.data)
    if data is None or not (data / "adbench").is_dir():
        sys.exit("no ADBench data: pass --data DIR holding adbench/ (or set GANAD_SHARED_DATA)")
    files = sorted((data / "adbench").glob("*.npz"))
    if args.sets:  # a set's name as in the file (42_WBC) or without its number (WBC), any case
        want = {w.strip().lower() for w in args.sets.split(",") if w.strip()}
        files = [f for f in files if f.stem.lower() in want or f.stem.split("_", 1)[-1].lower() in want]
        if not files:
            sys.exit(f"--sets {args.sets}: no such set in {data / 'adbench'} (names: 42_WBC or WBC)")
    rows = []
    for f in files:
        d = np.load(f)
        X, y = d["X"].astype(np.float32), d["y"].astype(int)
        for seed in args.seeds:
            rng = np.random.RandomState(seed)
            normal = rng.permutation(np.flatnonzero(y == 0))
            h, q = len(normal) // 2, len(normal) // 4
            tr, cal = normal[:h][: args.max_train], normal[h:h + q]
            te = np.concatenate([normal[h + q:], np.flatnonzero(y == 1)])
            for m in args.methods.split(","):
                det = DETECTORS[m](epochs=args.epochs, random_state=seed).fit(X[tr])
                row = {"set": f.stem, "seed": seed, "method": m, "fit": roc_auc_score(y[te], det.decision_function(X[te]))}
                for compose in ("default", "standardised"):
                    c = copy.deepcopy(det).calibrate(X[cal], compose=compose)
                    row[compose] = roc_auc_score(y[te], c.decision_function(X[te]))
                rows.append(row)
                print(f"{f.stem} seed {seed} {m}: fit {row['fit']:.3f}  default {row['default']:.3f}  "
                      f"standardised {row['standardised']:.3f}", flush=True)
    summary = []
    for m in args.methods.split(","):
        r = [x for x in rows if x["method"] == m]
        summary.append({"method": m, "n": len(r),
                        **{k: round(float(np.mean([x[k] for x in r])), 4) for k in ("fit", "default", "standardised")},
                        "worst drop, standardised": round(float(min(x["standardised"] - x["fit"] for x in r)), 3),
                        "worst drop, default": round(float(min(x["default"] - x["fit"] for x in r)), 3)})
    p = write_json(args.out, {"rows": rows, "summary": summary, "machine": machine(), "command": "python " + " ".join(sys.argv)})
    print(markdown_table(summary, list(summary[0])))
    print("wrote", p)


if __name__ == "__main__":
    main()
