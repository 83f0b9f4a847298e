"""Training throughput per method and data shape: samples/s per epoch, the old defaults against
the new ones, measured in one run with the configurations interleaved round by round.

"before" is the training set-up of the landed code before issue 15 (batch 64, no held-out slice,
no weight averaging); "after" is today's defaults (batch_size='auto': 256 on these sizes, 10 %
held out for label-free epoch selection, EMA of the weights). The figure is the time of the
training loop alone (``timing_['train_s']``, which includes the per-epoch held-out criterion and
the EMA updates) divided into samples x epochs; scoring the training set afterwards is reported
apart (``score_s``).

    python benchmarks/bench_training.py                    # beats, tables, images; 2 threads
    python benchmarks/bench_training.py --threads 1 --rounds 3 --shapes beats
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
from common import machine, markdown_table, matmul_peak, shared_data, synthetic_beats, write_json  # noqa: E402

import ganad  # noqa: E402

METHODS = {"beats": ["fanogan", "ganomaly", "bigan", "alad", "vaegan", "anogan"],
           "table": ["fanogan", "ganomaly", "bigan", "alad", "vaegan", "anogan"],
           "image": ["fanogan", "ganomaly", "vaegan"]}
CONFIGS = {"before": dict(batch_size=64, validation_fraction=0.0, ema=None),
           "after": dict()}


def data(shape: str, n: int, data_dir) -> tuple[np.ndarray, str]:
    if shape == "beats":
        if data_dir is not None and (data_dir / "mitdb").is_dir():
            from ganad.data.mitbih import DS1, load_mitbih
            b = load_mitbih(data_dir / "mitdb", records=DS1)
            X = b.X[b.aami == "N"]
            return X[np.random.RandomState(0).permutation(len(X))[:n]], f"MIT-BIH DS1 N beats (first {n} of a seeded shuffle)"
        return synthetic_beats(n), "synthetic beats"
    if shape == "table":
        rng = np.random.RandomState(0)
        return rng.randn(n, 32).astype(np.float32), "Gaussian table, 32 features"
    if data_dir is not None and (data_dir / "mnist").is_dir():
        from ganad.data.mnist import load_mnist
        X, _ = load_mnist(data_dir / "mnist", "train")
        return (X[:n].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28), f"MNIST train images ({n})"
    return np.random.RandomState(0).rand(n, 1, 28, 28).astype(np.float32), "uniform noise images"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--shapes", default="beats,table,image")
    ap.add_argument("--methods", default=None, help="comma-separated subset")
    ap.add_argument("--n", type=int, default=8192, help="training samples (images: a quarter)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="training.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    data_dir = shared_data(a.data)
    rows, peaks = [], []
    for shape in a.shapes.split(","):
        n = a.n // 4 if shape == "image" else a.n
        X, desc = data(shape, n, data_dir)
        methods = METHODS[shape] if a.methods is None else [m for m in a.methods.split(",") if m in METHODS[shape]]
        for method in methods:
            cls = ganad.DETECTORS[method]
            times = {c: [] for c in CONFIGS}
            info = {}
            for r in range(a.rounds):
                peaks.append(matmul_peak(512, 3))
                for cname, cfg in CONFIGS.items():
                    kw = dict(epochs=a.epochs, random_state=r, **cfg)
                    if method == "fanogan":
                        kw["encoder_epochs"] = a.epochs
                    if method == "anogan":
                        kw["search_n_max"] = 50  # scoring is not measured here
                    det = cls(**kw).fit(X)
                    t = det.timing_
                    epochs = sum(t["epochs_run"].values())
                    times[cname].append(t["n_train"] * epochs / t["train_s"])
                    info[cname] = dict(batch=t["batch_size"], n_train=t["n_train"], score_s=t["score_s"])
            row = {"shape": shape, "data": desc, "method": method}
            for cname in CONFIGS:
                row[f"{cname} samples/s"] = statistics.median(times[cname])
                row[f"{cname} batch"] = info[cname]["batch"]
            row["ratio"] = row["after samples/s"] / row["before samples/s"]
            row["after score_s (training set)"] = info["after"]["score_s"]
            rows.append(row)
            print(markdown_table([row], list(row)), flush=True)
    cols = list(rows[0])
    print()
    print(f"threads {a.threads}, {a.rounds} rounds (medians), {a.epochs} epochs per fit; matmul peak median "
          f"{statistics.median(peaks):.0f} GFLOP/s (min {min(peaks):.0f}, max {max(peaks):.0f})")
    print(markdown_table(rows, cols))
    write_json(a.out, {"machine": machine(), "threads": a.threads, "rounds": a.rounds, "epochs": a.epochs,
                       "matmul_peak_gflops": peaks, "rows": rows, "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())})


if __name__ == "__main__":
    main()
