"""DDP scaling: training samples/s with 1 process (1 and 2 threads) and N processes (torchrun).

Configurations (each a fresh launch, alternating round by round):

* ``1p x 1t``  one process, 1 thread, no process group (the plain single-process fit);
* ``1p x 2t``  one process, 2 threads;
* ``2p x 1t``  ``torchrun --standalone --nproc-per-node 2``: DistributedDataParallel over gloo,
  1 thread per process, the same global batch (each rank trains on half of every batch);
* with ``--device cuda``: ``1 GPU`` (one process) and ``{N} GPUs`` (torchrun, nccl, one process per
  GPU, ``--gpus N``; default: every visible GPU). Prepared for a GPU machine, not run on this one.

Samples/s per epoch: the training loop's per-epoch callback stamps every epoch on rank 0; the first
epoch of each stage is left out (one-time costs), the others count with everything that runs per
epoch (steps, gradient all-reduce, the held-out criterion on rank 0, EMA). Global training rows /
epoch seconds (wall clock); also global rows per CPU-second of rank 0's process (all its threads),
which on a busy shared machine estimates the rate each configuration would reach with a free core
per thread (for 1p x 2t it counts both threads' CPU time, so it is not that estimate there). Scoring after training is not included. Each launch also writes the scores of the
first 512 training rows, so the table gives how far each configuration's scores are from the
``1p x 1t`` scores (max |difference| / score range); ``1p x 2t`` is the noise floor: the same
single-process fit, whose reductions only change order with the thread count.

    python benchmarks/bench_ddp.py                          # beats (conv1d) and table (MLP), GANomaly
    python benchmarks/bench_ddp.py --shapes table --rounds 5
    python benchmarks/bench_ddp.py --device cuda --gpus 8   # on a GPU machine (nccl)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def data(shape: str, n: int, data_dir):
    """The beats (MIT-BIH DS1 N beats when the data is there) or the Gaussian table of bench_training."""
    from bench_training import data as training_data
    return training_data(shape, n, data_dir)


def worker(a):
    """One fit in this process (one rank under torchrun); rank 0 prints the rate and saves scores."""
    import numpy as np
    import torch
    import ganad
    import ganad.detectors.base as base
    from ganad.training import distributed
    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    X, desc = data(a.shape, a.rows, a.data)
    stamps = []
    inner = base.train

    def timed_train(stages, Xt, **k):
        stamps.append(("start", -1, time.perf_counter(), Xt.shape[0], time.process_time()))
        k["callbacks"] = list(k.get("callbacks") or []) + [
            lambda st, ep, m: stamps.append((st, ep, time.perf_counter(), Xt.shape[0], time.process_time()))]
        return inner(stages, Xt, **k)

    base.train = timed_train
    kw = {"epochs": a.epochs, "device": a.device, **json.loads(a.kw)}
    if a.method == "fanogan":
        kw["encoder_epochs"] = a.epochs
    det = ganad.DETECTORS[a.method](random_state=0, **kw).fit(X)
    if not distributed.is_main_process():
        distributed.shutdown()
        return
    n_train = stamps[0][3]
    rates = [n_train / (cur[2] - prev[2]) for prev, cur in zip(stamps, stamps[1:]) if cur[1] >= 1]
    # rows per CPU-second of this process (all its threads): what the rate would be with a core of its own
    cpu_rates = [n_train / max(cur[4] - prev[4], 1e-9) for prev, cur in zip(stamps, stamps[1:]) if cur[1] >= 1]
    np.save(a.scores, det.decision_function(X[:512]))
    distributed.shutdown()
    print(json.dumps({"rate": statistics.median(rates), "cpu_rate": statistics.median(cpu_rates), "n_train": n_train, "batch": det.timing_["batch_size"],
                      "threads": torch.get_num_threads(), "data": desc}))


CONFIGS = {"1p x 1t": (1, 1), "1p x 2t": (1, 2), "2p x 1t": (2, 1)}


def launch(procs, threads, a, shape, scores):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    args = [__file__, "--worker", "--shape", shape, "--method", a.method, "--rows", str(a.n if shape == "table" else a.n_beats),
            "--epochs", str(a.epochs), "--kw", a.kw, "--device", a.device, "--scores", scores] + (["--data", str(a.data)] if a.data else [])
    cmd = [sys.executable] + args if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                         "--nproc-per-node", str(procs)] + args
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"launch failed ({' '.join(cmd)}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="beats,table")
    ap.add_argument("--method", default="ganomaly")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=4, help="epochs per fit (the first is not counted)")
    ap.add_argument("--n", type=int, default=16384, help="table rows")
    ap.add_argument("--n-beats", type=int, default=8192, help="beats")
    ap.add_argument("--kw", default="{}", help="extra detector parameters as JSON")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU variant (nccl)")
    ap.add_argument("--gpus", type=int, default=None, help="with --device cuda: processes / GPUs of the DDP run")
    ap.add_argument("--configs", default=None, help="comma-separated subset of the CPU configurations, e.g. '1p x 1t,2p x 1t'")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="ddp.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    ap.add_argument("--scores", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, help=argparse.SUPPRESS)  # not --n: torchrun would take it for --nnodes
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a)
    import numpy as np
    from common import machine, markdown_table, shared_data, write_json
    a.data = shared_data(a.data)
    configs = dict(CONFIGS) if a.configs is None else {c.strip(): CONFIGS[c.strip()] for c in a.configs.split(",")}
    if a.device == "cuda":
        import torch
        g = a.gpus or torch.cuda.device_count()
        configs = {"1 GPU": (1, 1), f"{g} GPUs": (g, 1)}
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in a.shapes.split(","):
            rates = {c: [] for c in configs}
            cpu_rates = {c: [] for c in configs}
            info = {}
            for r in range(a.rounds):
                for cname, (procs, threads) in configs.items():
                    path = os.path.join(tmp, f"{shape}-{cname.replace(' ', '')}-{r}.npy")
                    t = launch(procs, threads, a, shape, path)
                    rates[cname].append(t["rate"])
                    cpu_rates[cname].append(t["cpu_rate"])
                    info[cname] = (t, path)
            ref_name = next(iter(configs))
            ref = np.load(info[ref_name][1])
            row = {"shape": shape, "data": info[ref_name][0]["data"], "n_train": info[ref_name][0]["n_train"],
                   "batch (global)": info[ref_name][0]["batch"]}
            for cname in configs:
                row[f"{cname} samples/s"] = statistics.median(rates[cname])
            for cname in list(configs)[1:]:
                row[f"{cname} / {ref_name}"] = row[f"{cname} samples/s"] / row[f"{ref_name} samples/s"]
            # load-independent estimate: rows per CPU-second of (rank 0's) process, i.e. the rate with
            # one free core per thread (ignores waiting for the other rank and a busy machine's contention)
            for cname in configs:
                row[f"{cname} rows per CPU-s"] = statistics.median(cpu_rates[cname])
            for cname in list(configs)[1:]:  # how far from the reference scores (1p x 2t: the thread-count noise floor)
                row[f"{cname} score diff / range"] = float(np.abs(np.load(info[cname][1]) - ref).max() / np.ptp(ref))
            rows.append(row)
            print(markdown_table([row], list(row)), flush=True)
    load_after = os.getloadavg()
    print(f"\n{a.method}, {a.rounds} rounds (medians of per-epoch rates; configurations alternating), device {a.device}; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(markdown_table(rows, list(rows[0])))
    write_json(a.out, {"machine": machine(), "method": a.method, "rounds": a.rounds, "epochs": a.epochs, "device": a.device,
                       "load_before": load_before, "load_after": load_after, "rows": rows})


if __name__ == "__main__":
    main()
