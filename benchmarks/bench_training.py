"""Training throughput per method and data shape, before and after issue 15, in one run.

"before" is the landed code before issue 15 (``--baseline-src``: a checkout of it, e.g.
``git worktree add /tmp/ganad-base 010d7cf``) with its defaults (batch 64, no held-out slice, no
weight averaging); "after" is this checkout with today's defaults (batch_size='auto', 10 % held
out with the per-epoch selection criterion, EMA of the weights, frozen D in generator steps).
Every measurement runs in a fresh worker process with the given thread count, and the two
configurations alternate round by round. Samples/s per epoch: the training loop's per-epoch
callback stamps every epoch (the same hook before and after); the first epoch of each stage is
left out (one-time costs), the others count with everything that runs per epoch (steps, the
held-out criterion, EMA updates). Scoring the training set after training is not included.

    git worktree add /tmp/ganad-base 010d7cf
    python benchmarks/bench_training.py --baseline-src /tmp/ganad-base/src            # 2 threads
    python benchmarks/bench_training.py --baseline-src /tmp/ganad-base/src --threads 1 --shapes beats

Two checkouts of today's code, each with its own defaults (e.g. before and after a change)::

    git worktree add /tmp/ganad-prev 3387d43
    python benchmarks/bench_training.py --baseline-src /tmp/ganad-prev/src --baseline-kw '{}' --shapes beats,table
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

METHODS = {"beats": ["fanogan", "ganomaly", "bigan", "alad", "vaegan", "anogan"],
           "table": ["fanogan", "ganomaly", "bigan", "alad", "vaegan", "anogan"],
           "image": ["fanogan", "ganomaly", "vaegan"]}


def data(shape: str, n: int, data_dir):
    import numpy as np
    from common import synthetic_beats
    if shape == "beats":
        if data_dir is not None and (Path(data_dir) / "mitdb").is_dir():
            from ganad.data.mitbih import DS1, load_mitbih
            b = load_mitbih(Path(data_dir) / "mitdb", records=DS1)
            X = b.X[b.aami == "N"]
            return X[np.random.RandomState(0).permutation(len(X))[:n]], f"MIT-BIH DS1 N beats ({n} of a seeded shuffle)"
        return synthetic_beats(n), "synthetic beats"
    if shape == "table":
        return np.random.RandomState(0).randn(n, 32).astype(np.float32), "Gaussian table, 32 features"
    if data_dir is not None and (Path(data_dir) / "mnist").is_dir():
        from ganad.data.mnist import load_mnist
        X, _ = load_mnist(Path(data_dir) / "mnist", "train")
        return (X[:n].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28), f"MNIST train images ({n})"
    return np.random.RandomState(0).rand(n, 1, 28, 28).astype(np.float32), "uniform noise images"


def worker(a):
    """One fit in this process, every epoch timed by a callback of the training loop (the same
    hook in the code before and after issue 15); prints {'rate', 'n_train', 'batch', 'epochs'}.
    The rate leaves out the first epoch of every stage (one-time costs: allocations, warm-up)."""
    import torch
    import ganad
    import ganad.detectors.base as base
    torch.set_num_threads(a.threads)
    X, _ = data(a.shape, a.n, a.data)
    kw = json.loads(a.kw)
    cls = ganad.DETECTORS[a.method]
    stamps = []
    inner = base.train

    def timed_train(stages, Xt, **k):
        stamps.append(("start", -1, time.perf_counter(), Xt.shape[0]))
        k["callbacks"] = list(k.get("callbacks") or []) + [lambda st, ep, m: stamps.append((st, ep, time.perf_counter(), Xt.shape[0]))]
        return inner(stages, Xt, **k)

    base.train = timed_train
    kw["epochs"] = a.epochs
    if a.method == "fanogan":
        kw["encoder_epochs"] = a.epochs
    if a.method == "anogan":
        kw["search_n_max"] = 20  # scoring is not what is measured
    det = cls(random_state=0, **kw).fit(X)
    n_train = stamps[0][3]
    samples, seconds = 0, 0.0
    for prev, cur in zip(stamps, stamps[1:]):
        if cur[1] >= 1:  # not the first epoch of its stage
            samples += n_train
            seconds += cur[2] - prev[2]
    timing = getattr(det, "timing_", None) or {}
    print(json.dumps({"rate": samples / seconds, "n_train": n_train, "epochs": len(stamps) - 1,
                      "batch": timing.get("batch_size", kw.get("batch_size", 64))}))


def run_worker(src, threads, shape, method, n, epochs, kw, data_dir):
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--shape", shape, "--method", method,
           "--n", str(n), "--epochs", str(epochs), "--kw", json.dumps(kw)] + (["--data", str(data_dir)] if data_dir else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-src", default=None, help="src/ folder of the code before issue 15 (omit: after only)")
    ap.add_argument("--baseline-kw", default='{"batch_size": 64}',
                    help="JSON parameters of the baseline's fits (default: the pre-issue-15 batch of 64; '{}' = its own defaults, "
                         "to compare two checkouts of today's code)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shapes", default="beats,table,image")
    ap.add_argument("--methods", default=None, help="comma-separated subset (tadgan, in no default list, only when named)")
    ap.add_argument("--n", type=int, default=16384, help="training samples (images: a quarter)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="training.json")
    # worker mode
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per fit (the first of each stage is not counted)")
    ap.add_argument("--kw", default="{}", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a)
    from common import machine, markdown_table, shared_data, write_json
    data_dir = shared_data(a.data)
    here_src = HERE.parent / "src"
    configs = {"after": (here_src, {})}
    if a.baseline_src:
        configs = {"before": (Path(a.baseline_src).resolve(), json.loads(a.baseline_kw)), **configs}
    rows = []
    for shape in a.shapes.split(","):
        n = a.n // 4 if shape == "image" else a.n
        # --methods: those of the shape's default list, plus any method named that no list holds (tadgan)
        methods = METHODS[shape] if a.methods is None else [m for m in a.methods.split(",")
                                                           if m in METHODS[shape] or not any(m in v for v in METHODS.values())]
        for method in methods:
            rates = {c: [] for c in configs}
            info = {}
            for r in range(a.rounds):
                for cname, (src, kw) in configs.items():
                    t = run_worker(src, a.threads, shape, method, n, a.epochs, kw, data_dir)
                    rates[cname].append(t["rate"])
                    info[cname] = t
            row = {"shape": shape, "method": method, "n": n}
            for cname in configs:
                row[f"{cname} batch"] = info[cname]["batch"]
                row[f"{cname} samples/s per epoch"] = statistics.median(rates[cname])
            if "before" in configs:
                # paired by round (the two runs of a round are back to back, so they share the
                # machine's load): the median of the per-round ratios and their range
                paired = [a_ / b_ for a_, b_ in zip(rates["after"], rates["before"])]
                row["ratio"] = statistics.median(paired)
                row["ratio range"] = f"{min(paired):.3f}-{max(paired):.3f}"
            rows.append(row)
            print(markdown_table([row], list(row)), flush=True)
            row["per round"] = {c: [round(v, 1) for v in rates[c]] for c in configs}
    print(f"\nthreads {a.threads}, {a.rounds} rounds (medians; ratio = median of the per-round ratios), configurations alternating; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(markdown_table(rows, [k for k in rows[0] if k != "per round"]))
    write_json(a.out, {"machine": machine(), "threads": a.threads, "rounds": a.rounds, "rows": rows,
                       "baseline_src": a.baseline_src})


if __name__ == "__main__":
    main()
