"""The whole of AnoGAN's ``fit`` with its default settings, two checkouts in one run (twenty-second session).

AnoGAN's default score is the knn component of D(x) and x (``knn_weight`` 1 in 'feature+input'), which
needs no latent search; ``fit`` still searched every training row (up to 2,048; a 2,048-row sample
beyond) and its held-out slice for scores it never read. This script times ``fit`` end to end (training,
the knn bank, the held-out standardisation, ``threshold_``) with the library's defaults, in a fresh
worker process per fit, the two checkouts alternating round by round; it also checks that both give
the same ``threshold_`` and scores (the fix changes what is computed, not the default score).

    git worktree add /tmp/ganad-prev d025579
    OMP_NUM_THREADS=1 python benchmarks/bench_anogan_fit.py --baseline-src /tmp/ganad-prev/src --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def data(shape: str, n: int):
    import numpy as np
    from common import synthetic_beats
    if shape == "beats":
        return synthetic_beats(n).astype(np.float32)
    return np.random.RandomState(0).randn(n, 20).astype(np.float32)


def worker(a):
    import numpy as np
    import torch

    import ganad
    torch.set_num_threads(a.threads)
    X = data(a.shape, a.n)
    t = time.perf_counter()
    det = ganad.AnoGAN(epochs=a.epochs, random_state=0, verbose=False).fit(X)
    fit_s = time.perf_counter() - t
    s = det.decision_function(X[:200] + 0.1)
    print(json.dumps({"fit_s": fit_s, "threshold": float(det.threshold_), "scores": np.asarray(s, dtype=float).tolist()}))


def run_worker(src, a, shape):
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    cmd = [sys.executable, __file__, "--worker", "--threads", str(a.threads), "--shape", shape, "--n", str(a.n),
           "--epochs", str(a.epochs)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-src", default=None, help="src/ folder of the checkout before the change (required)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shapes", default="table,beats")
    ap.add_argument("--n", type=int, default=2000, help="training samples (at most 2,048: fit searched all of them before)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", default="anogan_fit.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a)
    if a.baseline_src is None:
        ap.error("--baseline-src is required: the src/ folder of the checkout to compare with")
    from common import machine, markdown_table, write_json
    configs = {"before": Path(a.baseline_src).resolve(), "after": HERE.parent / "src"}
    rows = []
    for shape in a.shapes.split(","):
        runs = {c: [] for c in configs}
        for _ in range(a.rounds):
            for c, src in configs.items():
                runs[c].append(run_worker(src, a, shape))
        import numpy as np
        same_thr = all(r["threshold"] == runs["before"][0]["threshold"] for r in runs["before"] + runs["after"])
        diff = max(float(np.max(np.abs(np.subtract(r["scores"], runs["before"][0]["scores"])))) for r in runs["after"])
        paired = [b["fit_s"] / f["fit_s"] for b, f in zip(runs["before"], runs["after"])]
        row = {"shape": shape, "n": a.n, "epochs": a.epochs,
               "fit s, before": round(statistics.median(r["fit_s"] for r in runs["before"]), 2),
               "fit s, after": round(statistics.median(r["fit_s"] for r in runs["after"]), 2),
               "speed-up (median of rounds)": round(statistics.median(paired), 2),
               "range": f"{min(paired):.2f}-{max(paired):.2f}",
               "same threshold_": same_thr, "largest score difference": diff}
        rows.append(row)
        print(markdown_table([row], list(row)), flush=True)
    print(f"\nthreads {a.threads}, {a.rounds} rounds alternating; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(markdown_table(rows, list(rows[0])))
    write_json(a.out, {"machine": machine(), "threads": a.threads, "rounds": a.rounds, "rows": rows, "baseline_src": a.baseline_src})


if __name__ == "__main__":
    main()
