"""Scoring speed of the DCGAN image models at several widths, in one run (eighteenth session).

The default DCGAN width went from 32 to 8 (chosen on the MNIST training split: ``bench_width.py
--dataset mnist``; training throughput: ``bench_training.py --baseline-src src --baseline-kw
'{"width": 32}' --shapes image``). This measures what it does to scoring: each method is fitted
for one epoch at each width on synthetic 28 × 28 gray images (speed does not depend on what was
learned), then ``decision_function`` (the default score: the encoder, the residual, the
discriminator's features and their Mahalanobis distance) scores the same images, the widths
alternating round by round; medians of the rounds.

    OMP_NUM_THREADS=2 python benchmarks/bench_image_width.py --threads 2 --rounds 5

Writes benchmarks/out/image_width.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, write_json  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="ganomaly,fanogan")
    ap.add_argument("--widths", default="32,8")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-score", type=int, default=10000)
    ap.add_argument("--size", type=int, default=28, help="image side (gray, size x size)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="image_width.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch

    from ganad.detectors import DETECTORS

    torch.set_num_threads(args.threads)
    rng = np.random.RandomState(0)
    X = rng.rand(args.n_train, 1, args.size, args.size).astype(np.float32)
    T = rng.rand(args.n_score, 1, args.size, args.size).astype(np.float32)
    widths = [int(w) for w in args.widths.split(",")]
    dets = {(m, w): DETECTORS[m](width=w, epochs=1, device="cpu", random_state=0).fit(X)
            for m in args.methods.split(",") for w in widths}
    times: dict = {k: [] for k in dets}
    for _ in range(args.rounds):
        for k, det in dets.items():
            t = time.perf_counter()
            det.decision_function(T)
            times[k].append(time.perf_counter() - t)
    rows = []
    for (m, w), ts in times.items():
        med = statistics.median(ts)
        ref = statistics.median(times[(m, widths[0])])
        rows.append({"method": m, "width": w, "seconds (median)": round(med, 3), "images/s": round(args.n_score / med),
                     f"speed-up vs width {widths[0]}": round(ref / med, 2)})
    p = write_json(args.out, {"rows": rows, "times": {f"{m} {w}": v for (m, w), v in times.items()}, "machine": machine(),
                              "threads": args.threads, "command": "python " + " ".join(sys.argv)})
    print(markdown_table(rows, list(rows[0])))
    print("wrote", p)


if __name__ == "__main__":
    main()
