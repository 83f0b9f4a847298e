"""How much of f-AnoGAN's training the gradient penalty costs, per stage (the profile behind ``gp_every``).

One fit per configuration and round (the configurations alternate), in this process, every epoch stamped by the training loop's epoch
callback (as ``bench_training.py`` does); per stage the median seconds per epoch, the first epoch of
each stage left out. Configurations: the penalty on every critic step (``gp_every=1``), on every
second (the default, ``gp_every=2``), and none at all (``gp_weight=0``: not a usable setting, the
floor the option approaches).

    OMP_NUM_THREADS=2 python benchmarks/bench_gp_share.py --shape image --n 6000
    OMP_NUM_THREADS=2 python benchmarks/bench_gp_share.py --shape beats --n 16384
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402

CONFIGS = {"gp_every=1": {"gp_every": 1}, "gp_every=2 (default)": {}, "gp_weight=0 (no penalty)": {"gp_weight": 0.0}}


def stage_seconds(X, kw: dict, epochs: int) -> dict[str, float]:
    import ganad
    import ganad.detectors.base as base
    stamps: list = []
    inner = base.train

    def timed(stages, Xt, **k):
        stamps.append(("start", -1, time.perf_counter()))
        k["callbacks"] = list(k.get("callbacks") or []) + [lambda st, ep, m: stamps.append((st, ep, time.perf_counter()))]
        return inner(stages, Xt, **k)

    base.train = timed
    try:
        ganad.FAnoGAN(epochs=epochs, encoder_epochs=epochs, random_state=0, **kw).fit(X)
    finally:
        base.train = inner
    per: dict[str, list[float]] = {}
    for prev, cur in zip(stamps, stamps[1:]):
        if cur[1] >= 1:
            per.setdefault(cur[0], []).append(cur[2] - prev[2])
    return {k: statistics.median(v) for k, v in per.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=["beats", "table", "image"], default="image")
    ap.add_argument("--n", type=int, default=6000, help="training samples (images too: not a quarter, as in bench_training.py)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="the configurations alternate round by round; medians over rounds")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="gp_share.json")
    a = ap.parse_args(argv)
    import torch

    from bench_training import data
    torch.set_num_threads(a.threads)
    X, what = data(a.shape, a.n, shared_data(a.data))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    for _ in range(a.rounds):
        for name, kw in CONFIGS.items():
            runs[name].append(stage_seconds(X, kw, a.epochs))
    rows = []
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        both = [sum(r.values()) for r in rs]
        rows.append({"configuration": name, **{f"{k} s/epoch": round(v, 3) for k, v in med.items()},
                     "both stages s/epoch": round(statistics.median(both), 3),
                     "both, per round": " ".join(f"{b:.2f}" for b in both)})
    print(f"f-AnoGAN, {what}, n = {len(X)}, {a.threads} threads, {a.rounds} rounds (medians)")
    print(markdown_table(rows, list(rows[0])))
    write_json(a.out, {"machine": machine(), "args": vars(a), "data": what, "rows": rows})


if __name__ == "__main__":
    main()
