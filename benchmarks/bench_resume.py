"""Issue 13: kill -9 / resume trials and the cost of checkpoints and of the divergence guard.

1. **Kill / resume**: one uninterrupted ``ganad fit`` (the reference), then ``--trials`` runs of
   ``ganad fit --checkpoint DIR --checkpoint-every N``, each SIGKILLed at a random moment after its
   first checkpoint exists (uniform in [0, --max-delay] s after it appears), then
   ``ganad fit --checkpoint DIR --resume``. A trial counts as identical when the resumed model's
   weights and its scores on the training data equal the reference's bit for bit.
2. **Overhead** (in-process, fresh fit each time, the configurations alternating round by round,
   median of ``--rounds``): training time with no checkpoint, with a checkpoint every N steps,
   and with the divergence guard off; the time per checkpoint write (the fit's own counter).

Prints the tables and writes them, with the command line and the load average, to ``--out``
(markdown). Example (the RESULTS.md run)::

    OMP_NUM_THREADS=1 python benchmarks/bench_resume.py --trials 10 --out benchmarks/out/resume.md
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def cli(args, env):
    return subprocess.Popen([sys.executable, "-m", "ganad.cli", "fit", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def same_model(a, b, X) -> bool:
    import torch
    sa, sb = a.nets_.state_dict(), b.nets_.state_dict()
    return (sorted(sa) == sorted(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
            and np.array_equal(a.decision_function(X), b.decision_function(X)))


def kill_trials(args, tmp: Path) -> list[dict]:
    import ganad
    X = np.random.RandomState(1).randn(args.n, args.d).astype(np.float32)
    np.save(tmp / "x.npy", X)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": str(args.threads)}
    common = ["--method", args.method, "--epochs", args.epochs, "--batch-size", args.batch_size, "-q", "--device", "cpu"]
    p = cli([tmp / "x.npy", "-o", tmp / "ref", *common], env)
    if p.wait() != 0:
        raise SystemExit(p.stderr.read())
    ref = ganad.load(tmp / "ref")
    rng = random.Random(args.seed)
    rows = []
    for t in range(args.trials):
        d, out = tmp / f"ck{t}", tmp / f"m{t}"
        p = cli([tmp / "x.npy", "-o", out, *common, "--checkpoint", d, "--checkpoint-every", args.every], env)
        while not (d / "checkpoint.json").exists() and p.poll() is None:
            time.sleep(0.005)
        delay = rng.uniform(0.0, args.max_delay)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        killed = p.wait() == -signal.SIGKILL
        import json
        man = json.loads((d / "checkpoint.json").read_text())
        pos = man["state"]["loop"]
        t0 = time.perf_counter()
        q = cli([tmp / "x.npy", "-o", out, *common, "--checkpoint", d, "--checkpoint-every", args.every, "--resume", "--overwrite"], env)
        rc = q.wait()
        resume_s = time.perf_counter() - t0
        ok = rc == 0 and same_model(ganad.load(out), ref, X)
        rows.append({"trial": t + 1, "delay_s": delay, "killed": killed, "resumed_at": f"stage {pos['stage']} epoch {pos['epoch'] + 1} batch {pos['step']}",
                     "checkpoints_before_kill": man["seq"], "resume_s": resume_s, "identical": ok,
                     "error": q.stderr.read()[-300:] if rc else ""})
        print(rows[-1], flush=True)
    return rows


def overhead(args) -> dict:
    import torch
    from ganad.detectors import DETECTORS
    torch.set_num_threads(args.threads)
    X = np.random.RandomState(1).randn(args.n, args.d).astype(np.float32)
    cls = DETECTORS[args.method]
    kw = dict(epochs=int(args.epochs), batch_size=int(args.batch_size), random_state=0)
    res = {"none": [], "ckpt": [], "noguard": [], "per_ckpt": [], "n_ckpt": []}
    for r in range(args.rounds):
        det = cls(**kw).fit(X)
        res["none"].append(det.timing_["train_s"])
        with tempfile.TemporaryDirectory() as d:
            det = cls(**kw).fit(X, checkpoint_dir=Path(d) / "c", checkpoint_every=int(args.every))
            res["ckpt"].append(det.timing_["train_s"])
            res["per_ckpt"].append(det.checkpoint_["seconds"] / det.checkpoint_["written"])
            res["n_ckpt"].append(det.checkpoint_["written"])
            size = sum(f.stat().st_size for f in (Path(d) / "c").iterdir())
        det = cls(**kw, divergence_guard=False).fit(X)
        res["noguard"].append(det.timing_["train_s"])
        print({k: round(v[-1], 4) for k, v in res.items()}, flush=True)
    out = {k: statistics.median(v) for k, v in res.items()}
    out["bytes"] = size
    out["steps"] = int(args.epochs) * -(-int(0.9 * args.n) // int(args.batch_size))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="ganomaly")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--epochs", default="5")
    ap.add_argument("--batch-size", default="32")
    ap.add_argument("--every", default="20", help="checkpoint every N optimisation steps")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--max-delay", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-kill", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    load0 = os.getloadavg()
    lines = [f"`{' '.join(['python benchmarks/bench_resume.py'] + sys.argv[1:])}` — {args.method}, {args.n}x{args.d} "
             f"float32, {args.epochs} epochs, batch {args.batch_size}, checkpoint every {args.every} steps, "
             f"{args.threads} thread(s); load average at start {load0[0]:.1f}", ""]
    if not args.skip_kill:
        with tempfile.TemporaryDirectory() as tmp:
            rows = kill_trials(args, Path(tmp))
        lines += ["| trial | killed after | killed | resumed at | checkpoints written | resume s | identical weights + scores |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['trial']} | first checkpoint + {r['delay_s']:.2f} s | {'yes' if r['killed'] else 'no (had finished)'} | "
                  f"{r['resumed_at']} | {r['checkpoints_before_kill']} | {r['resume_s']:.1f} | {'yes' if r['identical'] else 'NO ' + r['error']} |"
                  for r in rows]
        lines += ["", f"**Identical: {sum(r['identical'] for r in rows)} of {len(rows)}** "
                      f"({sum(r['killed'] for r in rows)} really killed mid-training).", ""]
    o = overhead(args)
    lines += ["| training (median of %d) | s | vs no checkpoint |" % args.rounds, "|---|---|---|",
              f"| no checkpoint, guard on (default) | {o['none']:.2f} | — |",
              f"| checkpoint every {args.every} steps ({o['n_ckpt']:.0f} written, {o['bytes'] / 1024:.0f} KiB each) | {o['ckpt']:.2f} | "
              f"{100 * (o['ckpt'] / o['none'] - 1):+.1f} % |",
              f"| guard off | {o['noguard']:.2f} | {100 * (o['noguard'] / o['none'] - 1):+.1f} % |",
              "", f"Time per checkpoint write (snapshot + safetensors + fsyncs + atomic replace): {1000 * o['per_ckpt']:.1f} ms; "
                  f"load average at the end {os.getloadavg()[0]:.1f}."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
