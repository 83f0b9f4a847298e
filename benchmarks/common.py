"""Shared helpers of the benchmark scripts: data location, machine description, table output."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def shared_data(arg: str | None = None) -> Path | None:
    """Reference data: an explicit argument, $GANAD_SHARED_DATA, or ../shared/data beside the checkout."""
    for p in (arg, os.environ.get("GANAD_SHARED_DATA"), HERE.parent.parent / "shared" / "data"):
        if p and Path(p).is_dir():
            return Path(p)
    return None


def machine() -> dict:
    """CPU, cores, threads and versions: the library's own description, shared with `ganad benchmark`."""
    from ganad.benchmark import machine as _machine
    return _machine()


def matmul_peak(n: int = 1024, repeats: int = 7) -> float:
    """Median float32 matrix-multiply rate in GFLOP/s on this machine, now."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def median_ms(f, reps: int = 21, warmup: int = 5) -> float:
    """Median wall time of ``f()`` in milliseconds over ``reps`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def synthetic_beats(n: int, length: int = 256, seed: int = 0) -> np.ndarray:
    """ECG-like beats (P wave, QRS complex, T wave as Gaussian bumps with jitter), shape (n, 1, length)."""
    rng = np.random.RandomState(seed)
    t = np.arange(length)[None, :]
    def bump(c, w, a):
        return a[:, None] * np.exp(-0.5 * ((t - c[:, None]) / w[:, None]) ** 2)
    j = lambda s: rng.randn(n) * s  # noqa: E731
    x = (bump(60 + j(3), 8 + j(0.5), 0.15 + j(0.02)) + bump(96 + j(1), 3 + j(0.2), 1.0 + j(0.1))
         - bump(88 + j(1), 2 + j(0.2), 0.2 + j(0.03)) - bump(103 + j(1), 3 + j(0.2), 0.3 + j(0.03))
         + bump(170 + j(5), 14 + j(1), 0.3 + j(0.05)) + rng.randn(n, length) * 0.01)
    return x[:, None, :].astype(np.float32)


def ds1_validation(b1, seed: int, max_train, max_val=None):
    """MIT-BIH DS1 split by patient for choosing defaults (DS2 is never read): ``mitbih_split(DS1, seed,
    0.3)`` holds out 7 records; returns (training records, held-out records, indices of the N beats of
    the training records (at most ``max_train``), indices of every beat of the held-out records (at most
    ``max_val``, stratified by class)) into ``b1``, the loaded DS1 beats."""
    from ganad.benchmark import _subsample, mitbih_split
    from ganad.data import mitbih as mb
    tr_recs, val_recs = mitbih_split(mb.DS1, seed, cal_fraction=0.3)
    rng = np.random.RandomState(seed)
    tr = np.flatnonzero(np.isin(b1.record, tr_recs) & (b1.aami == "N"))
    tr = tr[_subsample(len(tr), max_train, rng)]
    va = np.flatnonzero(np.isin(b1.record, val_recs))
    if max_val is not None:
        va = va[_subsample(len(va), max_val, rng, b1.aami[va])]
    return tr_recs, val_recs, tr, va


def write_json(name: str, payload: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    p = OUT / name
    p.write_text(json.dumps(payload, indent=2))
    return p


def markdown_table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def code_runs(baseline_src: str | None) -> list[tuple[str, str]]:
    """(name, src folder) of the code to measure: this checkout, after ``--baseline-src`` when given."""
    runs = [("this checkout", str(HERE.parent / "src"))]
    return [("baseline", baseline_src)] + runs if baseline_src else runs


def run_child(code: str, args: list[str], src: str) -> dict:
    """Run ``python -c code *args`` in a fresh process with ``src`` as the ganad it imports; its last
    stdout line, as JSON (a failure stops the benchmark with the child's error)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, "PYTHONPATH": src}, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])
