"""Worker of tests/test_ddp.py (the Python API path): ``torch.multiprocessing.spawn`` starts N
processes, each initialises a gloo process group, fits the same detector on the same data, and
rank 0 writes the scores of ``X`` (and the model) to --out. Not collected by pytest."""

import argparse
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def data(n=150, d=6, seed=0):
    rng = np.random.RandomState(seed)
    return (rng.randn(n, d) @ rng.randn(d, d) * 0.5).astype(np.float32)


def make(method, **kw):
    import ganad
    cls = {"ganomaly": ganad.GANomaly, "fanogan": ganad.FAnoGAN, "vaegan": ganad.VAEGAN, "bigan": ganad.BiGAN,
           "alad": ganad.ALAD, "anogan": ganad.AnoGAN, "tadgan": ganad.TadGAN}[method]
    params = dict(epochs=2, batch_size=32, width=16, depth=2, latent_dim=4, random_state=0, device="cpu", verbose=False)
    if method == "fanogan":
        params.update(encoder_epochs=1, n_critic=2)
    if method == "anogan":
        params.update(search_n_max=5)
    params.update(kw)
    return cls(**params)


def run(rank, world, port, method, out, robust, kw):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    X = data()
    det = make(method, **kw).fit(X, robust_contamination=0.1 if robust else None)
    scores = det.decision_function(X)
    if rank == 0:
        np.save(os.path.join(out, f"{method}.npy"), scores)
        if os.environ.get("GANAD_DDP_DEBUG"):
            torch.save({k: v.detach().clone() for k, v in det.nets_.state_dict().items()}, os.path.join(out, f"{method}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--method", default="ganomaly")
    ap.add_argument("--robust", action="store_true")
    ap.add_argument("--single", action="store_true", help="one process, no process group (the reference)")
    ap.add_argument("--kw", default="{}", help="detector parameters as JSON")
    a = ap.parse_args()
    import json
    kw = json.loads(a.kw)
    if a.single:
        torch.set_num_threads(int(os.environ.get("GANAD_TEST_THREADS", "1")))
        X = data()
        det = make(a.method, **kw).fit(X, robust_contamination=0.1 if a.robust else None)
        np.save(os.path.join(a.out, f"{a.method}.npy"), det.decision_function(X))
        if os.environ.get("GANAD_DDP_DEBUG"):
            torch.save({k: v.detach().clone() for k, v in det.nets_.state_dict().items()}, os.path.join(a.out, f"{a.method}.pt"))
        sys.exit(0)
    mp.spawn(run, args=(a.world, a.port, a.method, a.out, a.robust, kw), nprocs=a.world, join=True)
