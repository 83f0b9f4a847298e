"""Peak memory and time of scoring (or, ``--mode fit``, training on) a long multichannel series.

A SeriesDetector (f-AnoGAN by default, conv1d, 1 epoch: the networks' size, not their quality,
matters here) is trained on a short synthetic telemetry series (one analog channel, the rest noisy
sine channels and binary command channels) and saved; each configuration then loads it in a fresh
process and scores a long series of the same channels once. Reported: the process's peak resident
memory (``ru_maxrss``) minus its resident memory just before scoring, the scoring seconds, and the
size of the input itself. ``--mode fit`` instead trains the same SeriesDetector on the long series in
each fresh process (1 epoch, tiny networks: the bookkeeping of windows, scaling and training scores
dominates) and reports its threshold as the checksum. ``--baseline-src DIR/src`` runs the same scoring with another checkout's
``src`` (``git archive REV src | tar -x -C DIR``) beside, for a before / after table from one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_series_memory.py
    OMP_NUM_THREADS=1 python benchmarks/bench_series_memory.py --points 40000 --channels 50 --window 256 --stride 16 --baseline-src /tmp/base/src
    OMP_NUM_THREADS=1 python benchmarks/bench_series_memory.py --mode fit --points 200000 --channels 20 --window 64 --stride 16 --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code_runs, machine, markdown_table, run_child, write_json  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import numpy as np
import ganad
sd = ganad.load(sys.argv[1])
X = np.load(sys.argv[2])
cur = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))  # kB, Linux
t0 = time.perf_counter()
r = sd.score_series(X)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_extra_mb": (peak - cur) / 1024, "checksum": float(np.nansum(r.scores)),
                  "ganad": ganad.__file__}))
"""

FIT_CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np
import ganad
from ganad.series import SeriesDetector
warnings.simplefilter("ignore")
X = np.load(sys.argv[1])
method, window, stride = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cur = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))  # kB, Linux
t0 = time.perf_counter()
sd = SeriesDetector(method, window=window, stride=stride,
                    detector_params={"epochs": 1, "width": 8, "latent_dim": 8, "verbose": False, "random_state": 0}).fit(X)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_extra_mb": (peak - cur) / 1024, "checksum": float(sd.threshold_), "ganad": ganad.__file__}))
"""


def telemetry(T, C, seed):
    rng = np.random.RandomState(seed)
    t = np.arange(T)[:, None]
    n_cmd = C // 3
    X = np.sin(t / rng.uniform(10, 80, C - n_cmd)[None, :]) + 0.05 * rng.randn(T, C - n_cmd)
    cmd = (np.sin(t / rng.uniform(30, 300, n_cmd)[None, :]) > 0.7).astype(np.float64)
    return np.c_[X, cmd]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=40000)
    ap.add_argument("--channels", type=int, default=50)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--stride", type=int, default=16)
    ap.add_argument("--method", default="fanogan")
    ap.add_argument("--train-points", type=int, default=3000)
    ap.add_argument("--baseline-src", default=None)
    ap.add_argument("--mode", choices=("score", "fit"), default="score")
    a = ap.parse_args(argv)
    from ganad.series import SeriesDetector
    with tempfile.TemporaryDirectory() as tmp:
        if a.mode == "score":
            sd = SeriesDetector(a.method, window=a.window, stride=a.stride,
                                detector_params={"epochs": 1, "width": 8, "latent_dim": 8, "verbose": False}).fit(telemetry(a.train_points, a.channels, 0))
            sd.save(Path(tmp) / "model")
        X = telemetry(a.points, a.channels, 1)
        np.save(Path(tmp) / "x.npy", X)
        rows = []
        for name, src in code_runs(a.baseline_src):
            if a.mode == "score":
                r = run_child(CHILD, [str(Path(tmp) / "model"), str(Path(tmp) / "x.npy")], src)
            else:
                r = run_child(FIT_CHILD, [str(Path(tmp) / "x.npy"), a.method, str(a.window), str(a.stride)], src)
            rows.append({"code": name, "mode": a.mode, "points": a.points, "channels": a.channels, "window": a.window, "stride": a.stride,
                         "input_mb": round(X.nbytes / 2**20, 1), "peak_extra_mb": round(r["peak_extra_mb"], 1),
                         "seconds": round(r["seconds"], 2), "checksum": r["checksum"]})
    print(markdown_table(rows, list(rows[0])))
    write_json("series_memory" if a.mode == "score" else "series_fit_memory", {"args": vars(a), "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
