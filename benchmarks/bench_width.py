"""Default network widths, chosen on validation data only.

``--dataset mitbih`` (the conv1d width of beats): patient-wise held-out validation inside DS1.
``--dataset mnist`` (the dcgan width of images, eighteenth session): the MNIST **training split
only**, split as ``select_knn_space.py mnist`` splits it (per digit, 80 % of its training images
train, the other 20 % are the held-out normals and 2,000 training images of the other digits the
anomalies); the test split is never read.

The evidence behind ``ganad.nets.default_width("conv1d")``. DS2 (the test half of the
inter-patient protocol) is never loaded. For each seed, the DS1 records are split by patient
(``ganad.benchmark.mitbih_split``, ``--val-fraction`` of the records held out, chosen by the
seed); each encoder method is trained at each width on N beats of the training records only
and scored on the labelled beats (every AAMI class, class-stratified subsample) of the held-out
records; the table is the AUROC, anomaly = S, V, F or Q. Using DS1's labels is allowed: DS1 is
the training / validation half.

Rule, fixed before running: the default stays at the cheaper width unless a wider one has a mean
AUROC over methods and seeds higher by at least ``--margin`` (0.01); the width costs its square
in arithmetic (latent search, encoder scoring, training).

    OMP_NUM_THREADS=1 python benchmarks/bench_width.py --data /path/to/shared/data   # ~15 min, 1 thread
    OMP_NUM_THREADS=1 python benchmarks/bench_width.py --dataset mnist --widths 8,16,32 --methods ganomaly,fanogan --seeds 0

Writes benchmarks/out/width.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, shared_data, write_json  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="reference data folder (holding mitdb/ or mnist/)")
    ap.add_argument("--dataset", choices=["mitbih", "mnist"], default="mitbih")
    ap.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9", help="mnist: the digits, each one set")
    ap.add_argument("--widths", default="4,8")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--methods", default="fanogan,ganomaly,vaegan")
    ap.add_argument("--max-train", type=int, default=5000, help="N beats of the training records")
    ap.add_argument("--max-val", type=int, default=8000, help="beats of the held-out records (class-stratified)")
    ap.add_argument("--val-fraction", type=float, default=0.3, help="fraction of DS1 records held out")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--margin", type=float, default=0.01)
    ap.add_argument("--out", default="width.json", help="file name under benchmarks/out/")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from sklearn.metrics import roc_auc_score

    from ganad.benchmark import _subsample, mitbih_split
    from ganad.data import mitbih as mb
    from ganad.detectors import DETECTORS

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    data = shared_data(args.data)
    if args.dataset == "mnist":
        return _mnist(args, data, roc_auc_score, DETECTORS)
    if data is None or not (data / "mitdb").is_dir():
        sys.exit("no MIT-BIH data: pass --data DIR holding mitdb/ (or set GANAD_SHARED_DATA)")
    ds1 = mb.load_mitbih(data / "mitdb", mb.DS1)  # DS1 only: DS2 is not read
    widths = [int(w) for w in args.widths.split(",")]
    methods = args.methods.split(",")
    rows, splits = [], {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        rng = np.random.RandomState(seed)
        train_recs, val_recs = mitbih_split(mb.DS1, seed, args.val_fraction)
        in_tr = np.isin(ds1.record, train_recs) & (ds1.aami == "N")
        tr = ds1.subset(np.flatnonzero(in_tr)[_subsample(int(in_tr.sum()), args.max_train, rng)])
        val_idx = np.flatnonzero(np.isin(ds1.record, val_recs))
        va = ds1.subset(val_idx[_subsample(len(val_idx), args.max_val, rng, ds1.aami[val_idx])])
        splits[seed] = {"train_records": train_recs, "val_records": val_recs, "n_train": len(tr),
                        "val_counts": va.counts()}
        print(f"seed {seed}: train {len(tr)} N beats of {len(train_recs)} records; validation records {val_recs}: "
              f"{va.counts()}", flush=True)
        for width in widths:
            row = {"width": width, "seed": seed}
            for m in methods:
                t = time.perf_counter()
                det = DETECTORS[m](width=width, epochs=args.epochs, device="cpu", random_state=seed).fit(tr.X)
                row[m] = float(roc_auc_score(va.y, det.decision_function(va.X)))
                print(f"  width {width} {m}: AUROC {row[m]:.3f} ({time.perf_counter() - t:.0f} s)", flush=True)
            row["mean"] = float(np.mean([row[m] for m in methods]))
            rows.append(row)
    means = {w: float(np.mean([r["mean"] for r in rows if r["width"] == w])) for w in widths}
    best = _choose(widths, means, args.margin)
    cols = ["width", "seed", *methods, "mean"]
    p = write_json(args.out, {"rows": rows, "mean_by_width": means, "chosen": best, "margin": args.margin,
                              "splits": splits, "command": "python " + " ".join(sys.argv),
                              "threads": int(os.environ["OMP_NUM_THREADS"])})
    print(markdown_table(rows, cols))
    print("mean AUROC by width:", {w: round(v, 3) for w, v in means.items()}, "-> default width", best)
    print("wrote", p)


def _choose(widths, means, margin):
    """The cheaper width unless a wider one's mean AUROC is higher by at least ``margin``."""
    best = min(widths)
    for w in sorted(widths):
        if means[w] >= means[best] + margin:
            best = w
    return best


def _mnist(args, data, roc_auc_score, DETECTORS):
    if data is None or not (data / "mnist").is_dir():
        sys.exit("no MNIST data: pass --data DIR holding mnist/ (or set GANAD_SHARED_DATA)")
    from select_knn_space import mnist_sets

    widths = [int(w) for w in args.widths.split(",")]
    methods = args.methods.split(",")
    digits = [int(d) for d in args.digits.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed, name, x_tr, x_ev, y_ev in mnist_sets(data, seeds, digits):
        for width in widths:
            row = {"width": width, "seed": seed, "set": name}
            for m in methods:
                t = time.perf_counter()
                det = DETECTORS[m](width=width, epochs=args.epochs, device="cpu", random_state=seed).fit(x_tr)
                row[m + " s"] = round(time.perf_counter() - t, 1)
                row[m] = float(roc_auc_score(y_ev, det.decision_function(x_ev)))
                print(f"  seed {seed} {name} width {width} {m}: AUROC {row[m]:.3f} (fit {row[m + ' s']:.0f} s)", flush=True)
            row["mean"] = float(np.mean([row[m] for m in methods]))
            rows.append(row)
    means = {w: float(np.mean([r["mean"] for r in rows if r["width"] == w])) for w in widths}
    by_method = {w: {m: float(np.mean([r[m] for r in rows if r["width"] == w])) for m in methods} for w in widths}
    fit_s = {w: {m: float(np.median([r[m + " s"] for r in rows if r["width"] == w])) for m in methods} for w in widths}
    best = _choose(widths, means, args.margin)
    p = write_json(args.out if args.out != "width.json" else "width_mnist.json",
                   {"rows": rows, "mean_by_width": means, "by_method": by_method, "median_fit_s": fit_s, "chosen": best,
                    "margin": args.margin, "command": "python " + " ".join(sys.argv), "threads": int(os.environ["OMP_NUM_THREADS"])})
    summary = [{"width": w, **{m: round(by_method[w][m], 4) for m in methods}, "mean": round(means[w], 4),
                **{m + " fit s": fit_s[w][m] for m in methods}} for w in widths]
    print(markdown_table(summary, list(summary[0])))
    print("mean AUROC by width:", {w: round(v, 4) for w, v in means.items()}, "-> default width", best)
    print("wrote", p)


if __name__ == "__main__":
    main()
