"""Time and peak memory of VUS-PR / VUS-ROC (``ganad.series.metrics.vus``, buffers 0..64) on long series.

A synthetic series of n points with R labelled ranges (``--ranges``, default 20) of 300 points (at
most n / (2R)) and noisy scores; each row runs in a fresh process. ``--baseline-src DIR/src`` runs the same with another checkout's ``src`` beside
(``git archive REV src | tar -x -C DIR``), for a before / after table from one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_vus.py --points 20000 200000 --baseline-src /tmp/base/src
    OMP_NUM_THREADS=1 python benchmarks/bench_vus.py --points 1000000 --ranges 1000 10000 --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code_runs, machine, markdown_table, run_child, write_json  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import numpy as np
from ganad.series.metrics import vus
n, n_ranges = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.RandomState(0)
y = np.zeros(n, dtype=int)
length = max(1, min(300, n // (2 * n_ranges)))
for a in rng.randint(0, n - length, n_ranges):
    y[a:a + length] = 1
s = rng.randn(n) + y
cur = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))  # kB, Linux
t0 = time.perf_counter()
r = vus(y, s, 64)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_extra_mb": (peak - cur) / 1024, "vus_pr": r["vus_pr"], "vus_roc": r["vus_roc"]}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="+", default=[20000, 200000])
    ap.add_argument("--ranges", type=int, nargs="+", default=[20])
    ap.add_argument("--baseline-src", default=None)
    a = ap.parse_args(argv)
    rows = []
    for n in a.points:
        for n_ranges in a.ranges:
            for name, src in code_runs(a.baseline_src):
                r = run_child(CHILD, [str(n), str(n_ranges)], src)
                rows.append({"code": name, "points": n, "ranges": n_ranges, "seconds": round(r["seconds"], 2), "peak_extra_mb": round(r["peak_extra_mb"], 1),
                             "vus_pr": round(r["vus_pr"], 12), "vus_roc": round(r["vus_roc"], 12)})
    print(markdown_table(rows, list(rows[0])))
    write_json("vus", {"args": vars(a), "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
