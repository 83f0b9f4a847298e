"""Default conv1d width, chosen on DS1 only: patient-wise held-out validation inside DS1.

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
    ap.add_argument("--data", default=None, help="reference data folder (holding mitdb/)")
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
    best = min(widths)
    for w in sorted(widths):
        if means[w] >= means[best] + args.margin:
            best = w
    cols = ["width", "seed", *methods, "mean"]
    p = write_json(args.out, {"rows": rows, "mean_by_width": means, "chosen": best, "margin": args.margin,
                              "splits": splits, "command": "python " + " ".join(sys.argv),
                              "threads": int(os.environ["OMP_NUM_THREADS"])})
    print(markdown_table(rows, cols))
    print("mean AUROC by width:", {w: round(v, 3) for w, v in means.items()}, "-> default width", best)
    print("wrote", p)


if __name__ == "__main__":
    main()
