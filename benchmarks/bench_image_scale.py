"""The seventeenth session's changes on the paths they touch, this checkout against another
(``--baseline-src DIR/src``), each task in a fresh process (peak memory is its own):

- ``fit 100x100x3``: GANomaly, 40 random RGB images of 100 x 100, one epoch (the Mahalanobis knn
  whitening of 9,216 discriminator features: a d x d eigendecomposition before, the Gram matrix now);
- ``score 224x224x3``: ``decision_function`` on 300 random RGB images of 224 x 224 by a GANomaly fitted
  on 40 (``knn_space='code'``, ``knn_weight=0``: with the default feature space the baseline's fit
  needs its d x d matrix, 20 GB, and was killed for memory on a 24 GB machine): the scoring step
  (1,024 images before, at most 2**21 input values now);
- ``predict, one table row`` and ``decision_function, 20,000 rows`` (20 features), and
  ``decision_function, 5,000 beats`` (1 x 256 windows): paths the change must leave as fast as they
  were (``predict`` now checks the scoring settings its threshold was fitted under).

    OMP_NUM_THREADS=2 python benchmarks/bench_image_scale.py --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code_runs, machine, markdown_table, run_child, write_json  # noqa: E402

CHILD = r"""
import json, resource, statistics, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
import ganad
task = sys.argv[1]
rng = np.random.RandomState(0)
rss = lambda: next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))  # kB, Linux
if task == "fit 100x100x3":
    X = rng.rand(40, 3, 100, 100).astype(np.float32)
    det = ganad.GANomaly(epochs=1, random_state=0, verbose=False)
    cur = rss(); t0 = time.perf_counter(); det.fit(X); dt = time.perf_counter() - t0
    check = float(det.threshold_)
elif task == "score 224x224x3":
    det = ganad.GANomaly(epochs=1, random_state=0, verbose=False, knn_space="code", knn_weight=0.0).fit(rng.rand(40, 3, 224, 224).astype(np.float32))
    Q = rng.rand(300, 3, 224, 224).astype(np.float32)
    cur = rss(); t0 = time.perf_counter(); s = det.decision_function(Q); dt = time.perf_counter() - t0
    check = float(s.sum())
elif task == "predict, one table row":
    X = rng.randn(2000, 20).astype(np.float32)
    det = ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(X)
    for i in range(50):
        det.predict(X[i:i + 1])
    cur = rss(); times = []
    for i in range(1000):
        t0 = time.perf_counter(); det.predict(X[i:i + 1]); times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    check = float(det.predict(X[:100]).sum())
else:
    beats = task.endswith("beats")
    X = (rng.randn(5000, 1, 256) if beats else rng.randn(20000, 20)).astype(np.float32)
    det = ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(X[:2000])
    det.decision_function(X[:500])
    cur = rss(); times = []
    for _ in range(5):
        t0 = time.perf_counter(); s = det.decision_function(X); times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    check = float(s.sum())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_extra_mb": (peak - cur) / 1024, "check": check}))
"""

TASKS = ("fit 100x100x3", "score 224x224x3", "predict, one table row", "decision_function, 20,000 rows", "decision_function, 5,000 beats")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-src", default=None)
    ap.add_argument("--only", default="", help="run only the tasks whose name holds one of these texts, '|'-separated, e.g. 'fit' or 'score|beats'")
    a = ap.parse_args(argv)
    rows = []
    for task in [t for t in TASKS if any(o in t for o in a.only.split("|"))]:
        for name, src in code_runs(a.baseline_src):
            r = run_child(CHILD, [task], src)
            unit = 1e6 if task.startswith("predict") else 1.0
            rows.append({"task": task, "code": name, "time": round(r["seconds"] * unit, 2 if unit == 1.0 else 0),
                         "unit": "µs median" if unit != 1.0 else ("s median of 5" if task.startswith("decision") else "s"),
                         "peak_extra_mb": round(r["peak_extra_mb"], 1), "check": r["check"]})
            print(rows[-1], flush=True)
    print(markdown_table(rows, list(rows[0])))
    write_json("image_scale", {"args": vars(a), "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
