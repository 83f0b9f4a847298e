"""Latent-search speed: milliseconds per sample at batch sizes 1, 64, 256, 1024.

The settings of the review's inference-time table: n_max = 500 iterations, target
similarity eps = 0.005, a 1-D convolutional model for 256-sample beats (ganad's default
conv1d family). Compared with a naive loop that inverts one sample at a time with the
textbook code (torch.optim.Adam on one z, a Python check of the loss every iteration).

The generator is trained on MIT-BIH N beats of DS1 when the reference data is found
(``--data``, $GANAD_SHARED_DATA or ../shared/data), otherwise on synthetic beats; the beats
inverted are N beats of DS2 (or fresh synthetic beats). Writes benchmarks/out/latent_search.json
and prints a markdown table.

    python benchmarks/bench_latent_search.py            # about 5-10 minutes on 2 cores
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
from common import machine, markdown_table, shared_data, synthetic_beats, write_json  # noqa: E402

from ganad import AnoGAN  # noqa: E402
from ganad.inversion.latent_search import sample_distance  # noqa: E402


def load_beats(data: Path | None, n_train: int, n_eval: int, seed: int):
    if data is not None and (data / "mitdb").is_dir():
        from ganad.data.mitbih import load_split
        tr = load_split("DS1", data / "mitdb")
        te = load_split("DS2", data / "mitdb")
        rng = np.random.RandomState(seed)
        trn = rng.permutation(np.flatnonzero(tr.aami == "N"))[:n_train]
        ten = rng.permutation(np.flatnonzero(te.aami == "N"))[:n_eval]
        return tr.X[trn], te.X[ten], "MIT-BIH (train: N beats of DS1, inverted: N beats of DS2)"
    return synthetic_beats(n_train, seed=seed), synthetic_beats(n_eval, seed=seed + 1), "synthetic beats"


def naive_invert(G, x, latent_dim, n_max, eps, lr, seed):
    """The one-sample-at-a-time loop people write: one z, torch.optim.Adam, a host check per iteration."""
    torch.manual_seed(seed)
    zs, its = [], []
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        z = torch.randn(1, latent_dim, requires_grad=True)
        opt = torch.optim.Adam([z], lr=lr)
        it = 0
        for it in range(n_max):
            opt.zero_grad()
            loss = sample_distance(xi, G(z), "l2").sum()
            if loss.item() < eps:
                break
            loss.backward()
            opt.step()
        zs.append(z.detach())
        its.append(it)
    return torch.cat(zs), its


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="reference data folder (holding mitdb/)")
    ap.add_argument("--n-max", type=int, default=500)
    ap.add_argument("--eps", type=float, default=0.005)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--n-train", type=int, default=8000)
    ap.add_argument("--n-eval", type=int, default=1024)
    ap.add_argument("--batches", default="1,64,256,1024")
    ap.add_argument("--naive-samples", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5, help="rounds; every configuration runs once per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=None, help="conv1d width (default: the family default, 4)")
    ap.add_argument("--out", default="latent_search.json", help="file name under benchmarks/out/")
    args = ap.parse_args(argv)

    Xtr, Xev, source = load_beats(shared_data(args.data), args.n_train, args.n_eval, args.seed)
    t0 = time.perf_counter()
    det = AnoGAN(epochs=args.epochs, random_state=args.seed, search_n_max=args.n_max, search_eps=args.eps,
                 verbose=False, score_batch_size=1024, width=args.width).fit(Xtr)
    fit_s = time.perf_counter() - t0
    G = det._inference_net("G")
    x_all = torch.from_numpy(det.scaler_.transform(Xev))
    search = det.latent_search()
    n_params = sum(p.numel() for p in det.nets_["G"].parameters())
    from ganad import runtime
    from ganad.runtime import native

    worst = type(search)(**{**search.__dict__, "eps": 0.0})  # no sample converges: every one runs n_max

    def batched(s, B, n, rep, mode="fast"):
        """ms per sample of inverting x_all[:n] in batches of B; (time, mean iterations, converged).
        mode: 'fast' (native kernels where built, else the GEMM program), 'programs' (the GEMM
        program, native kernels off), 'module' (autograd through the torch modules)."""
        ctx = runtime.use({"module": "eager", "programs": "gemm"}.get(mode, "auto"))
        its, conv = [], []
        with ctx:
            t = time.perf_counter()
            for i in range(0, n, B):
                r = s.run(G, x_all[i:i + B], det.prior_, latent_dim=det.latent_dim, seed=det.seed_ + rep)
                its.append(r.iterations.float().mean().item())
                conv.append(r.converged.float().mean().item())
            return (time.perf_counter() - t) / n * 1e3, float(np.mean(its)), float(np.mean(conv))

    configs = [("ganad batched", B, min(len(x_all), max(B, 8 if B == 1 else B)), search, "fast")
               for B in [int(b) for b in args.batches.split(",")]]
    configs += [("ganad batched, eps=0 (all n_max iterations)", 256, 256, worst, "fast")]
    if native.available():
        configs += [("ganad batched, GEMM program (native off)", 256, 256, search, "programs")]
    configs += [("ganad batched, module path (autograd)", 256, 256, search, "module")]
    # every configuration once per round, rounds repeated: the machine's slow phases hit all alike
    meas = {i: [] for i in range(len(configs) + 1)}
    ns = args.naive_samples
    for rep in range(args.repeats):
        for i, (_, B, n, s, module) in enumerate(configs):
            meas[i].append(batched(s, B, n, rep, module))
        k = max(1, ns // args.repeats)  # naive loop, one sample at a time, on different samples per round
        lo = (rep * k) % len(x_all)
        t = time.perf_counter()
        _, its = naive_invert(G, x_all[lo:lo + k], det.latent_dim, args.n_max, args.eps, search.lr, args.seed + rep)
        meas[len(configs)].append(((time.perf_counter() - t) / k * 1e3, float(np.mean(its) + 1),
                                   float(np.mean(np.array(its) < args.n_max - 1))))
    rows = []
    for i, (name, B, n, _, _) in enumerate(configs):
        ms, its, conv = zip(*meas[i])
        rows.append({"method": name, "batch": B, "samples": n, "ms_per_sample": statistics.median(ms),
                     "mean_iterations": float(np.mean(its)), "converged": float(np.mean(conv))})
        print(rows[-1], flush=True)
    ms, its, conv = zip(*meas[len(configs)])
    naive_ms = statistics.median(ms)
    rows.append({"method": "naive one-at-a-time loop", "batch": 1, "samples": max(1, ns // args.repeats) * args.repeats,
                 "ms_per_sample": naive_ms, "mean_iterations": float(np.mean(its)), "converged": float(np.mean(conv))})
    print(rows[-1], flush=True)
    by_b = {r["batch"]: r["ms_per_sample"] for r in rows if r["method"] == "ganad batched"}
    speedup = {b: naive_ms / v for b, v in by_b.items()}
    payload = {"machine": machine(), "data": source, "n_max": args.n_max, "eps": args.eps, "generator_params": n_params,
               "width": det._width(),
               "fit_seconds": fit_s, "native": native.status(), "rows": rows, "speedup_vs_naive": speedup, "command": "python " + " ".join(sys.argv)}
    p = write_json(args.out, payload)
    print()
    print(f"data: {source}; generator: {n_params} parameters; n_max={args.n_max}, eps={args.eps}; {machine()}")
    print(f"native kernels: {native.status()}")
    print(markdown_table(rows, ["method", "batch", "samples", "ms_per_sample", "mean_iterations", "converged"]))
    print("speed-up of the batched search over the naive loop:", {b: round(s, 1) for b, s in speedup.items()})
    print("wrote", p)


if __name__ == "__main__":
    main()
