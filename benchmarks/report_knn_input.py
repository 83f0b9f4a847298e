"""The input-space knn variants of ``select_knn_space.py`` on the ADBench protocol (a report, not a choice).

``select_knn_space.py`` measures, on validation data only (held-out DS1 records, the MNIST training
split), blends of the default score with a kNN distance in the scaled input space (tenth session,
``input`` and ``feature, mahalanobis + input``). This script reports the same variants on the ADBench
protocol of ``full_scale.py adbench`` (the same split, subsample and seeds as
``ganad.benchmark.run_adbench``; GANomaly at its defaults) *after* they were measured on validation
data: nothing is chosen here. Each variant is computed from the one fitted model (only the bank and
the blend change), standardised on the model's held-out slice of training normals.

    OMP_NUM_THREADS=1 python benchmarks/report_knn_input.py --seeds 0 1 2 3 4 --epochs 30
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402
from select_knn_space import evaluate  # noqa: E402

VARIANTS = ["feature, mahalanobis", "input", "feature, mahalanobis + input"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--method", default="ganomaly")
    ap.add_argument("--max-train", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="report_knn_input.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from ganad.benchmark.adbench import adbench_split
    from ganad.benchmark.peers import _seed_torch, make_ganad
    from ganad.benchmark.runner import _subsample
    from ganad.data.tabular import adbench_names, load_adbench
    directory = shared_data(a.data) / "adbench"
    rows = []
    for name in adbench_names(directory):
        X, y = load_adbench(directory / f"{name}.npz")
        for seed in a.seeds:
            tr, te = adbench_split(y, seed)
            rng = np.random.RandomState(seed + 1000)
            tr = tr[_subsample(len(tr), a.max_train, rng)]
            te = te[_subsample(len(te), None, rng, y[te])]
            _seed_torch(seed)
            t = time.perf_counter()
            det = make_ganad(a.method, seed, a.epochs).fit(X[tr])
            row = {"dataset": name, "seed": seed, "fit_s": round(time.perf_counter() - t, 1)}
            row.update(evaluate(det, X[tr], X[te], y[te], variants=VARIANTS))
            rows.append(row)
            print(markdown_table([row], list(row)), flush=True)
    cols = [c for c in rows[0] if c not in ("dataset", "seed", "fit_s")]
    per_set = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        sel = [r for r in rows if r["dataset"] == name]
        per_set.append({"dataset": name, **{c: round(statistics.mean(r[c] for r in sel), 4) for c in cols}})
    mean = {"dataset": "mean over sets", **{c: round(statistics.mean(r[c] for r in per_set), 4) for c in cols}}
    print(markdown_table(per_set + [mean], ["dataset"] + cols))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows, "per_dataset": per_set, "mean": mean})


if __name__ == "__main__":
    main()
