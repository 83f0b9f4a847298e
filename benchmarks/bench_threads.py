"""Scoring time on a busy machine: default threads vs one thread (issue 10).

Trains a small f-AnoGAN on synthetic 1-D beats (1 x 256), saves it, then scores N rows with
``decision_function`` in a fresh process per setting, while B busy processes (pure Python spin
loops, like other users' jobs) load the machine. Settings: the default threads, one thread
(``OMP_NUM_THREADS=1``), and the OpenMP environment knobs (passive wait policy, spin count 0),
so the cause of a slowdown shows in the table. "torch imported before ganad" starts libgomp before
ganad can choose its wait policy: the behaviour before issue 10's fix. Prints a Markdown table (median of R rounds).

    python benchmarks/bench_threads.py                       # 200k rows, 2 busy processes
    python benchmarks/bench_threads.py --rows 50000 --busy 0 --rounds 1
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)  # this checkout's ganad, in this process and (PYTHONPATH) in the scoring ones

SCORE = r"""
import os, sys, time
if os.environ.get("BENCH_TORCH_FIRST"):
    import torch  # before ganad: libgomp starts with its default (spinning) wait policy, as before issue 10
import numpy as np, ganad, torch
det = ganad.load(sys.argv[1])
X = np.load(sys.argv[2], mmap_mode="r")
det.decision_function(np.asarray(X[:512]))  # warm: kernels loaded, frozen copies built
t = time.perf_counter()
s = det.decision_function(np.asarray(X))
print(f"{time.perf_counter() - t:.3f} {torch.get_num_threads()} {float(np.sum(s)):.6g}")
"""


def _spin(stop):
    while not stop.is_set():
        sum(i * i for i in range(10000))


def beats(n, rng):
    t = np.linspace(0, 1, 256, dtype=np.float32)
    base = np.exp(-((t - 0.5) ** 2) / 0.002) - 0.2 * np.exp(-((t - 0.3) ** 2) / 0.005)
    return (base[None, None, :] * rng.uniform(0.8, 1.2, (n, 1, 1)) + 0.05 * rng.randn(n, 1, 256)).astype(np.float32)


SETTINGS = {
    "default threads": {},
    "torch imported before ganad": {"BENCH_TORCH_FIRST": "1"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
    "OMP_WAIT_POLICY=passive": {"OMP_WAIT_POLICY": "passive"},
    "GOMP_SPINCOUNT=0": {"GOMP_SPINCOUNT": "0"},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--busy", type=int, default=2, help="busy processes loading the machine while scoring")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of: " + ", ".join(SETTINGS))
    a = ap.parse_args()
    from ganad import FAnoGAN
    rng = np.random.RandomState(0)
    with tempfile.TemporaryDirectory() as tmp:
        FAnoGAN(epochs=1, random_state=0).fit(beats(512, rng)).save(Path(tmp) / "m")
        np.save(Path(tmp) / "x.npy", beats(a.rows, rng))
        env0 = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        env0["PYTHONPATH"] = SRC + os.pathsep + env0.get("PYTHONPATH", "")
        stop = mp.Event()
        busy = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(a.busy)]
        for p in busy:
            p.start()
        rows = []
        try:
            for name in [s.strip() for s in a.settings.split(",") if s.strip()]:
                times, threads, total = [], None, None
                for _ in range(a.rounds):
                    r = subprocess.run([sys.executable, "-c", SCORE, str(Path(tmp) / "m"), str(Path(tmp) / "x.npy")],
                                       env={**env0, **SETTINGS[name]}, capture_output=True, text=True, timeout=1800)
                    if r.returncode:
                        sys.exit(r.stderr)
                    t, threads, total = r.stdout.split()
                    times.append(float(t))
                rows.append((name, threads, statistics.median(times), min(times), total))
        finally:
            stop.set()
            for p in busy:
                p.join(timeout=5)
    print(f"\nscoring {a.rows} rows (f-AnoGAN, 1 x 256 beats) with {a.busy} busy processes on {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.1f}\n")
    print("| setting | torch threads | median s | best s | sum of scores |")
    print("|---|---:|---:|---:|---:|")
    for name, th, med, best, tot in rows:
        print(f"| {name} | {th} | {med:.2f} | {best:.2f} | {tot} |")


if __name__ == "__main__":
    main()
