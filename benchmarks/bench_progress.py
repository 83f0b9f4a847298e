"""Cost of the scoring progress bar (ganad.progress) on AnoGAN's latent search.

The bar is updated every ``check_every`` search iterations (the one host sync the search already
makes), so it should cost nothing measurable. This scores the same rows with the bar forced off and
forced on (drawn into a string, as a terminal would receive it), alternating, and prints a table.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_progress.py --n 1500 --repeats 3
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1500, help="rows scored")
    ap.add_argument("--d", type=int, default=30, help="features")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="markdown table to write (default: print only)")
    a = ap.parse_args()
    from rich.console import Console

    from ganad import AnoGAN
    from ganad.progress import progress_mode
    rng = np.random.RandomState(0)
    X = rng.randn(600, a.d).astype(np.float32)
    T = rng.randn(a.n, a.d).astype(np.float32)
    det = AnoGAN(epochs=3, random_state=0, search_n_max=200).fit(X)
    times = {"off": [], "on": []}
    for _ in range(a.repeats):
        for mode in ("off", "on"):
            buf = io.StringIO()
            with progress_mode(mode == "on", Console(file=buf, force_terminal=True, width=120)):
                t0 = time.perf_counter()
                det.decision_function(T)
                times[mode].append(time.perf_counter() - t0)
    load = os.getloadavg()[0]
    rows = [f"| {m} | {a.n} | {np.median(v):.2f} | {min(v):.2f} | {max(v):.2f} |" for m, v in times.items()]
    table = ("| bar | rows | median s | min s | max s |\n|---|---:|---:|---:|---:|\n" + "\n".join(rows)
             + f"\n\nAnoGAN search_n_max=200, {a.d} features, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
               f"load average {load:.1f}, {a.repeats} repeats alternating off/on\n")
    print(table)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(table)


if __name__ == "__main__":
    main()
