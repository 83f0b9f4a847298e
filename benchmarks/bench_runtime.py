"""Issue 11: every runner of ganad.runtime against PyTorch eager, torch.compile and ONNX Runtime.

One run times, for the beat (conv1d, 1 x 256, width 4, depth 4), tabular (MLP, 30 features, width
128, depth 2) and image (DCGAN-style conv, 1 x 28 x 28, width 32) models, latent dimension 16:

* ``G``: the generator's forward z -> x̂;
* ``EGD``: the encoder methods' fused pass z = E(x), x̂ = G(z), D(x) and D(x̂) (logit, features);
* ``grad``: one latent-search step's value and dL/dz of the per-sample L2 distance;

at batch 1, 64 and 4,096 and 1 and 2 threads, through the paths that apply:

* ``eager``: ganad's frozen PyTorch modules (``ganad.runtime.use("eager")``; autograd for ``grad``);
* ``gemm`` and ``native`` (beat only): the compiled runners of ganad.runtime;
* ``compile``: ``torch.compile`` of the same eager modules (``dynamic=True``; the first compile's
  time is reported). Only at the first thread count of ``--threads``: dynamo guards on the thread
  count, so every further count would compile everything again (minutes per function here);
* ``onnxruntime``: the modules exported to ONNX (as ``ganad export`` does), run by ONNX Runtime
  with ``intra_op_num_threads`` = threads (forward passes only: no gradients).

Every path of one (model, workload, batch, threads) cell is timed once per round, interleaved,
and the median over rounds is reported (rounds: 7, 3 at batch 4,096), each measurement a loop of
calls lasting at least ``--min-time`` seconds. Prints a markdown table and writes
``benchmarks/out/runtime.md`` and ``runtime.csv`` (plus the speed-up of each runner over the next
simpler one, the figure that decides whether it stays).

    OMP_NUM_THREADS=2 python benchmarks/bench_runtime.py              # about 10 minutes on 2 cores
    python benchmarks/bench_runtime.py --quick                        # batch 64 only, 2 rounds
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import ganad  # noqa: F401  (first: sets OMP_WAIT_POLICY=PASSIVE before torch loads libgomp, as the CLI does)
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, machine, markdown_table  # noqa: E402

from ganad import runtime  # noqa: E402
from ganad.nets import build_discriminator, build_encoder, build_generator, default_depth  # noqa: E402
from ganad.nets.inference import frozen_copy  # noqa: E402

LATENT = 16
MODELS = {  # family, sample shape, width
    "beat": ("conv1d", (1, 256), 4),
    "tabular": ("mlp", (30,), 128),
    "image": ("dcgan", (1, 28, 28), 32),
}


def trained_like(module, seed=0):
    """Random weights and BatchNorm statistics away from their initial values (folding matters)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
        for b in module.buffers():
            if b.dtype.is_floating_point and b.ndim:
                b.copy_(b.abs() + 0.5 * torch.rand(b.shape, generator=g))
    return module.eval()


def build(kind):
    fam, shape, width = MODELS[kind]
    depth = default_depth(fam, shape)
    torch.manual_seed(0)
    G = frozen_copy(trained_like(build_generator(fam, LATENT, shape, width, depth)))
    E = frozen_copy(trained_like(build_encoder(fam, shape, LATENT, width, depth), 1))
    D = frozen_copy(trained_like(build_discriminator(fam, shape, width, depth), 2))
    return G, E, D, shape


class EGD(nn.Module):
    """The fused pass as one module (what torch.compile and the ONNX export see)."""

    def __init__(self, E, G, D):
        super().__init__()
        self.E, self.G, self.D = E, G, D

    def forward(self, x):
        z = self.E(x)
        x_hat = self.G(z)
        logit, feats = self.D(torch.cat([x, x_hat]))
        return z, x_hat, logit, feats


def l2_grad(Gm, z, x):
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        d = (Gm(z) - x).flatten(1).square().mean(1)
        (g,) = torch.autograd.grad(d.sum(), z)
    return d.detach(), g


def ort_session(module, example, threads, outputs):
    import onnxruntime as ort
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buf, input_names=["x"], output_names=outputs,
                          dynamic_axes={"x": {0: "n"}, **{o: {0: "n"} for o in outputs}}, opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    return lambda a: sess.run(None, {"x": a})


def paths_for(kind, work, G, E, D, shape, threads, compiled, sessions, use_compile, compile_threads):
    """name -> (function of the batch input, prepared once per batch)."""
    Gr, Er, Dr = (runtime.compile(m) for m in (G, E, D))
    out = {}

    def in_runtime(name, fn):
        def call(a):
            with runtime.use(name):
                return fn(a)
        return call

    kinds = ["eager"] + (["gemm", "native"] if kind == "beat" else [])
    if kind == "beat" and not runtime.status()["native_available"]:
        kinds.remove("native")
    for name in kinds:
        if work == "G":
            out[name] = in_runtime(name, lambda z: Gr(z))
        elif work == "EGD":
            out[name] = in_runtime(name, lambda x: runtime.encode_generate_discriminate(Er, Gr, Dr, x))
        else:
            def grad(a, _n=name):
                obj = Gr.objective(a[1], lambda xh, t: ((xh - t).flatten(1).square().mean(1),) * 2, distance="l2")
                return obj.value_and_grad_z(a[0], obj.target)
            out[name] = in_runtime(name, grad)
    if use_compile and threads == compile_threads:
        key = (kind, work)
        if key not in compiled:
            mod = {"G": G, "EGD": EGD(E, G, D), "grad": G}[work]
            t = time.perf_counter()
            try:
                with runtime.use("eager"):
                    cm = torch.compile(mod, dynamic=True)
                    ex = example(kind, work, 8, shape)
                    (l2_grad(cm, *ex) if work == "grad" else cm(ex))
                compiled[key] = (cm, time.perf_counter() - t, None)
            except Exception as e:  # noqa: BLE001 (recorded, not hidden)
                compiled[key] = (None, time.perf_counter() - t, f"{type(e).__name__}: {str(e)[:200]}")
            print(f"torch.compile {kind}/{work}: {compiled[key][1]:.1f} s {compiled[key][2] or ''}", flush=True)
        cm = compiled[key][0]
        if cm is not None:
            def call(a, _cm=cm):
                with runtime.use("eager"):
                    return l2_grad(_cm, *a) if work == "grad" else _cm(a)
            out["compile"] = call
    if work != "grad":
        key = (kind, work, threads)
        if key not in sessions:
            mod = G if work == "G" else EGD(E, G, D)
            try:
                with runtime.use("eager"):
                    sessions[key] = ort_session(mod, example(kind, work, 2, shape), threads,
                                                ["x_hat"] if work == "G" else ["z", "x_hat", "logit", "feats"])
            except Exception as e:  # noqa: BLE001
                sessions[key] = None
                print(f"onnxruntime {kind}/{work}: {type(e).__name__}: {e}", flush=True)
        if sessions[key] is not None:
            sess = sessions[key]
            out["onnxruntime"] = lambda a, _s=sess: _s(a.numpy())
    return out


def example(kind, work, n, shape):
    g = torch.Generator().manual_seed(n)
    z = torch.randn(n, LATENT, generator=g)
    x = torch.randn((n,) + tuple(shape), generator=g)
    return z if work == "G" else x if work == "EGD" else (z, x)


def time_call(fn, a, min_time):
    """Seconds per call: a loop of calls lasting at least min_time."""
    k, total = 0, 0.0
    t0 = time.perf_counter()
    while True:
        fn(a)
        k += 1
        total = time.perf_counter() - t0
        if total >= min_time:
            return total / k


def _write_partial(name, rows):
    """The rows so far (a long run stopped early still leaves its cells)."""
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{name}.partial.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="beat,tabular,image")
    ap.add_argument("--work", default="G,EGD,grad")
    ap.add_argument("--batches", default="1,64,4096")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.05)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-work", default="G,EGD,grad", help="workloads that torch.compile is measured on")
    ap.add_argument("--quick", action="store_true", help="batch 64, 2 rounds (a smoke run)")
    ap.add_argument("--out", default="runtime")
    args = ap.parse_args(argv)
    if args.quick:
        args.batches, args.rounds = "64", 2
    t_start = time.time()
    load0 = os.getloadavg()
    runtime.status()  # builds the native library first, outside the timings
    torch._dynamo.config.recompile_limit = 32  # batch 1 and batch > 1 compile separately (size specialisation)
    rows, compiled, sessions = [], {}, {}
    for kind in args.models.split(","):
        G, E, D, shape = build(kind)
        for work in args.work.split(","):
            for B in [int(b) for b in args.batches.split(",")]:
                for th in [int(t) for t in args.threads.split(",")]:
                    torch.set_num_threads(th)
                    use_compile = not args.no_compile and work in args.compile_work.split(",")
                    paths = paths_for(kind, work, G, E, D, shape, th, compiled, sessions, use_compile,
                                      int(args.threads.split(",")[0]))
                    a = example(kind, work, B, shape)
                    with torch.no_grad():
                        for fn in paths.values():  # warm-up (caches, lazily built runners)
                            fn(a)
                    rounds = 3 if B >= 4096 else args.rounds
                    times = {p: [] for p in paths}
                    load = os.getloadavg()[0]
                    for _ in range(rounds):
                        for p, fn in paths.items():
                            with torch.no_grad():
                                times[p].append(time_call(fn, a, args.min_time))
                    for p, ts in times.items():
                        dt = statistics.median(ts)
                        rows.append({"model": kind, "work": work, "batch": B, "threads": th, "path": p,
                                     "us_per_sample": dt / B * 1e6, "samples_per_s": B / dt, "load1": load,
                                     "spread": (max(ts) - min(ts)) / dt})
                    _write_partial(args.out, rows)
                    best = {r["path"]: r["us_per_sample"] for r in rows[-len(times):]}
                    print(f"{kind:8s} {work:5s} B={B:5d} T={th}  " + "  ".join(f"{p} {v:9.2f}" for p, v in best.items())
                          + f"  (us/sample, load {load:.2f})", flush=True)
    # speed-up of each runner over the next simpler one (native over gemm, gemm over eager)
    by = {(r["model"], r["work"], r["batch"], r["threads"], r["path"]): r["us_per_sample"] for r in rows}
    for r in rows:
        base = {"native": "gemm", "gemm": "eager"}.get(r["path"])
        ref = by.get((r["model"], r["work"], r["batch"], r["threads"], base)) if base else None
        r["vs_next_simpler"] = ref / r["us_per_sample"] if ref else ""
        eager = by.get((r["model"], r["work"], r["batch"], r["threads"], "eager"))
        r["vs_eager"] = eager / r["us_per_sample"] if eager else ""
    cols = ["model", "work", "batch", "threads", "path", "us_per_sample", "samples_per_s", "vs_eager", "vs_next_simpler",
            "spread", "load1"]
    table = markdown_table(rows, cols)
    head = (f"machine: {machine()}\nload average at start {load0}, at end {os.getloadavg()}; "
            f"wall {time.time() - t_start:.0f} s; native: {runtime.status()['native']}\n"
            "torch.compile: " + "; ".join(f"{k[0]}/{k[1]} {v[1]:.1f} s{' FAILED ' + v[2] if v[2] else ''}"
                                          for k, v in compiled.items()) + "\n")
    print(head)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.out}.md").write_text(head + "\ncommand: python " + " ".join(sys.argv) + "\n\n" + table + "\n")
    with open(OUT / f"{args.out}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    print("wrote", OUT / f"{args.out}.md", OUT / f"{args.out}.csv")


if __name__ == "__main__":
    main()
