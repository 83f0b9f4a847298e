"""Streaming throughput: points per second of one stream on one core, conv1d model.

A SeriesDetector (f-AnoGAN, conv1d networks, window 64, stride 16 by default) trained briefly on a
synthetic 3-channel series; then the same 20k-point series is fed to ``StreamScorer.update`` in
chunks of 1, 16, 256 and 4096 points (chunk = points that arrive between two calls), and scored
in batch once for comparison. Throughput is points / wall second of the whole stream, median of
``--repeats`` runs, torch on one thread. The largest difference to the batch scores is printed
beside (it must be ~1e-7: the same windows, aggregation and events).

    OMP_NUM_THREADS=1 python benchmarks/bench_stream.py
    OMP_NUM_THREADS=1 python benchmarks/bench_stream.py --window 128 --stride 32 --points 50000
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
from common import machine, markdown_table, write_json  # noqa: E402

from ganad.series import SeriesDetector  # noqa: E402


def series(T, seed):
    rng = np.random.RandomState(seed)
    t = np.arange(T)
    return np.c_[np.sin(t / 20), np.cos(t / 33), 0.5 * np.sin(t / 7)] + 0.05 * rng.randn(T, 3)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--stride", type=int, default=16)
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--method", default="fanogan")
    ap.add_argument("--chunks", default="1,16,256,4096")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    sd = SeriesDetector(a.method, window=a.window, stride=a.stride,
                        detector_params={"epochs": 2, "net": "conv1d", "random_state": 0}).fit(series(4000, 0))
    X = series(a.points, 1)
    batch = sd.score_series(X).scores  # warm-up: first-call costs (kernel compile / load) are not throughput
    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        sd.score_series(X)
        times.append(time.perf_counter() - t)
    rows = [{"mode": "batch score_series", "chunk": a.points, "points_per_s": round(a.points / statistics.median(times)), "max_abs_diff": 0.0}]
    for chunk in [int(c) for c in a.chunks.split(",")]:
        rates, diff = [], 0.0
        for _ in range(a.repeats):
            sc = sd.stream()
            out = []
            t = time.perf_counter()
            for i in range(0, len(X), chunk):
                out.append(sc.update(X[i:i + chunk]).scores)
            out.append(sc.close().scores)
            rates.append(len(X) / (time.perf_counter() - t))
            diff = float(np.abs(np.concatenate(out) - batch).max())
        rows.append({"mode": "StreamScorer.update", "chunk": chunk, "points_per_s": round(statistics.median(rates)), "max_abs_diff": diff})
    lat = a.window - 1 + a.stride - 1
    title = (f"{a.method} conv1d, window {a.window}, stride {a.stride}, 3 channels, {a.points} points, 1 thread; "
             f"latency at most {lat} points after arrival")
    print(title)
    print(markdown_table(rows, ["mode", "chunk", "points_per_s", "max_abs_diff"]))
    write_json("bench_stream.json", {"title": title, "rows": rows, "machine": machine(), "args": vars(a)})


if __name__ == "__main__":
    main()
