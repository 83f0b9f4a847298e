"""Encoder scoring throughput vs latent search on the default 1-D beat model.

For each encoder method (default: f-AnoGAN, plus the others with --methods all), trained
briefly on 256-sample beats (MIT-BIH N beats of DS1 when the reference data is found,
otherwise synthetic beats): samples per second and milliseconds per sample of the public
``decision_function`` (validation + scaling + networks + composition) at batch sizes
1, 64, 512 and 4096; the model FLOPs of the scoring path (matrix multiplies, counted by
torch.utils.flop_counter, fast path off); and the fraction of the machine's float32
matrix-multiply peak: FLOPs/sample x samples/s / peak, the peak measured in every round beside
the throughputs (median over rounds of the per-round ratio). Beside it, the AnoGAN latent
search on the same generator (random start and warm start from E(x)) at batch 256.

Reference rows run the same networks through the GEMM programs with the native kernels off
(ganad.runtime.use('gemm'), only where the native kernels are built) and through the torch modules (fast path off).

    python benchmarks/bench_encoder_scoring.py                 # f-AnoGAN, a few minutes
    python benchmarks/bench_encoder_scoring.py --methods all   # every encoder method
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_latent_search import load_beats  # noqa: E402
from common import machine, markdown_table, matmul_peak, shared_data, write_json  # noqa: E402

from ganad.detectors import DETECTORS  # noqa: E402
from ganad import runtime  # noqa: E402
from ganad.runtime import native  # noqa: E402

ENCODER_METHODS = ["fanogan", "bigan", "alad", "ganomaly", "vaegan"]


def scoring_flops(det, x) -> float:
    """Model FLOPs per sample: the modules' own arithmetic (the compiled runners of ganad.runtime
    also multiply pad rows and banded zero blocks, which are not counted as useful work)."""
    with runtime.use("eager"), FlopCounterMode(display=False) as fc:
        det.decision_function(x)
    return fc.get_total_flops() / len(x)


def _path(mode):
    """'fast': native kernels where built, else the GEMM programs; 'programs': the GEMM programs
    (native kernels off); 'module': the torch modules (fast path off)."""
    if mode == "module":
        return runtime.use("eager")
    if mode == "programs":
        return runtime.use("gemm")
    return contextlib.nullcontext()


def throughput(det, X, plan, repeats, flops):
    """plan: [(label, batch, samples, mode)] (mode: see _path). Every entry is timed once per round, over
    ``repeats`` rounds, and each round also measures the matrix-multiply peak, so that the
    machine's slow phases hit every entry and the peak alike. Returns per entry the medians of
    samples/s and ms/sample, and the median over rounds of (FLOPs x samples/s / that round's peak);
    and the median peak."""
    data, times, peaks = [], [[] for _ in plan], []
    for _, batch, n, _mode in plan:
        reps = int(np.ceil(n / len(X)))
        data.append(np.concatenate([X] * reps)[:n] if reps > 1 else X[:n])
    for rep in range(repeats + 1):  # round 0 is a warm-up (frozen copies, caches)
        if rep:
            peaks.append(matmul_peak(repeats=3))
        for i, (_, batch, n, mode) in enumerate(plan):
            det.set_params(score_batch_size=batch)
            with _path(mode):
                t = time.perf_counter()
                det.decision_function(data[i])
                if rep:
                    times[i].append(time.perf_counter() - t)
    out = []
    for (label, batch, n, _), ts in zip(plan, times):
        dt = statistics.median(ts)
        frac = statistics.median(flops * n / t / 1e9 / pk for t, pk in zip(ts, peaks))
        out.append((label, batch, n / dt, dt / n * 1e3, frac))
    return out, statistics.median(peaks)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--methods", default="fanogan", help="comma list or 'all'")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--batches", default="1,64,512,4096")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=None, help="conv1d width (default: the family default, 4)")
    ap.add_argument("--module-batch", type=int, default=512, help="batch of the module-path reference row (0: none)")
    ap.add_argument("--out", default="encoder_scoring.json", help="file name under benchmarks/out/")
    args = ap.parse_args(argv)
    methods = ENCODER_METHODS if args.methods == "all" else args.methods.split(",")
    Xtr, Xev, source = load_beats(shared_data(args.data), args.n_train, 4096, args.seed)
    peak = matmul_peak()
    rows, search_rows = [], []
    for name in methods:
        det = DETECTORS[name](epochs=args.epochs, random_state=args.seed, verbose=False, width=args.width).fit(Xtr)
        flops = scoring_flops(det, Xev[:256])
        plan = [(name, B, 64 if B == 1 else 8192, "fast") for B in [int(b) for b in args.batches.split(",")]]
        if args.module_batch:  # the same networks through the GEMM programs and through their torch modules
            if native.available():
                plan.append((f"{name} (GEMM programs, native off)", args.module_batch, 8192, "programs"))
                plan.append((f"{name} (GEMM programs, native off)", 4096, 8192, "programs"))
            plan.append((f"{name} (module path)", args.module_batch, 8192, "module"))
        measured, round_peak = throughput(det, Xev, plan, args.repeats, flops)
        for label, B, sps, ms, frac in measured:
            rows.append({"method": label, "batch": B, "samples_per_s": sps, "ms_per_sample": ms,
                         "mflop_per_sample": flops / 1e6, "gflop_per_s": flops * sps / 1e9, "fraction_of_peak": frac,
                         "peak_gflops": round_peak})
            print(rows[-1], flush=True)
        if name == methods[0]:
            for init in ("random", "encoder"):
                det.set_params(inversion="search", search_init=init, search_n_max=500, search_eps=0.005, score_batch_size=256)
                t = time.perf_counter()
                r = det.score_components(Xev[:256])
                dt = time.perf_counter() - t
                search_rows.append({"method": f"{name}, latent search ({init} start)", "batch": 256,
                                    "ms_per_sample": dt / 256 * 1e3, "mean_iterations": float(r.extra["iterations"].mean())})
                print(search_rows[-1], flush=True)
            det.set_params(inversion="encoder")
    payload = {"machine": machine(), "matmul_peak_gflops": peak, "data": source, "rows": rows, "search": search_rows,
               "command": "python " + " ".join(sys.argv)}
    payload["width"] = det._width()
    payload["native"] = native.status()
    p = write_json(args.out, payload)
    print(f"\ndata: {source}; float32 matmul peak at the start: {peak:.1f} GFLOP/s, per round: see peak_gflops; {machine()}")
    print(f"native kernels: {native.status()}")
    print(markdown_table(rows, ["method", "batch", "samples_per_s", "ms_per_sample", "mflop_per_sample", "gflop_per_s",
                                "peak_gflops", "fraction_of_peak"]))
    print()
    print(markdown_table(search_rows, ["method", "batch", "ms_per_sample", "mean_iterations"]))
    print("wrote", p)


if __name__ == "__main__":
    main()
