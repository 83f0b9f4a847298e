"""What label-free tuning buys over the defaults: ADBench dev sets, the default method (GANomaly).

Per dataset and seed, the ADBench protocol of ``ganad benchmark adbench`` (``adbench_split``: 60 %
of the normal rows train, at most ``--max-train`` of them; the other normals and every anomaly
test, at most ``--max-test``, class-stratified). Two models, both fitted on the training rows only:

* ``defaults``: GANomaly with its defaults and ``--epochs``;
* ``tuned``: ``ganad.tune.tune`` on the same training rows, label-free (synthetic anomalies made
  from a held-out 20 % of the *training* normals), ``--trials`` trials (the first = the
  defaults), the best trial refitted on all the training rows.

The test split is read only to compute the two AUROCs; nothing is chosen on it. Each (dataset,
seed) row is appended to ``out/tune_adbench.jsonl`` as soon as it is done (partial runs keep
their rows); the summary table is printed and written to ``out/tune_adbench.md``.

    OMP_NUM_THREADS=1 python benchmarks/tune_adbench.py --seeds 0 1 2 --trials 8 --epochs 30 --max-train 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, machine, shared_data  # noqa: E402

from ganad.benchmark import _subsample, adbench_split  # noqa: E402
from ganad.data.tabular import adbench_names, load_adbench  # noqa: E402
from ganad.detectors import DETECTORS  # noqa: E402
from ganad.tune import auroc, tune  # noqa: E402


def run_one(X, y, name, seed, args) -> dict:
    tr, te = adbench_split(y, seed)
    rng = np.random.RandomState(seed + 1000)
    tr = tr[_subsample(len(tr), args.max_train, rng)]
    te = te[_subsample(len(te), args.max_test, rng, y[te])]
    assert not np.intersect1d(tr, te).size and (y[tr] == 0).all()
    cls = DETECTORS[args.method]
    t0 = time.perf_counter()
    det = cls(epochs=args.epochs, random_state=seed).fit(X[tr])
    t1 = time.perf_counter()
    a_def = auroc(y[te], det.decision_function(X[te]))
    res = tune(X[tr], method=args.method, n_trials=args.trials, params={"epochs": args.epochs}, seed=seed)
    t2 = time.perf_counter()
    a_tun = auroc(y[te], res.detector.decision_function(X[te]))
    s = res.summary()
    return {"dataset": name, "seed": seed, "n_train": int(len(tr)), "n_test": int(len(te)),
            "auroc_defaults": round(a_def, 4), "auroc_tuned": round(a_tun, 4),
            "objective_defaults": round(res.study.trials[0].value, 4) if res.study.trials[0].state.name == "COMPLETE" else None,
            "objective_best": round(res.best_value, 4), "best_trial": s["best_trial"], "n_pruned": s["n_pruned"],
            "n_failed": s["n_failed"], "best_params": res.best_params, "fit_s_defaults": round(t1 - t0, 1),
            "tune_s": round(t2 - t1, 1)}


def summarise(rows: list[dict]) -> str:
    sets = sorted({r["dataset"] for r in rows}, key=lambda n: int(n.split("_")[0]))
    seeds = sorted({r["seed"] for r in rows})
    lines = ["| dataset | defaults AUROC | tuned AUROC | Δ | objective: defaults → best | best = defaults (seeds) | tune s |",
             "|---|---|---|---|---|---|---|"]
    per = {}
    for n in sets:
        rs = [r for r in rows if r["dataset"] == n]
        d = [r["auroc_defaults"] for r in rs]
        t = [r["auroc_tuned"] for r in rs]
        per[n] = (d, t)
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        od = [r["objective_defaults"] for r in rs if r["objective_defaults"] is not None]
        lines.append(f"| {n} | {statistics.mean(d):.3f} ± {sd(d):.3f} | {statistics.mean(t):.3f} ± {sd(t):.3f} | "
                     f"{statistics.mean(t) - statistics.mean(d):+.3f} | "
                     f"{statistics.mean(od) if od else float('nan'):.3f} → {statistics.mean(r['objective_best'] for r in rs):.3f} | "
                     f"{sum(r['best_trial'] == 0 for r in rs)}/{len(rs)} | {statistics.mean(r['tune_s'] for r in rs):.0f} |")
    complete = [n for n in sets if len(per[n][0]) == len(seeds)]
    by_seed = {}
    for s in seeds:
        rs = [r for r in rows if r["seed"] == s and r["dataset"] in complete]
        if rs:
            by_seed[s] = (statistics.mean(r["auroc_defaults"] for r in rs), statistics.mean(r["auroc_tuned"] for r in rs))
    if by_seed:
        d = [v[0] for v in by_seed.values()]
        t = [v[1] for v in by_seed.values()]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        lines.append(f"| **mean over {len(complete)} sets** (sd over seeds) | **{statistics.mean(d):.3f} ± {sd(d):.3f}** | "
                     f"**{statistics.mean(t):.3f} ± {sd(t):.3f}** | **{statistics.mean(t) - statistics.mean(d):+.3f}** | | | |")
        lines.append("")
        lines.append("per seed, mean over sets (defaults → tuned): " + ", ".join(f"seed {s}: {a:.3f} → {b:.3f}" for s, (a, b) in by_seed.items()))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="ganomaly")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-train", type=int, default=2000)
    ap.add_argument("--max-test", type=int, default=5000)
    ap.add_argument("--datasets", default=None, help="comma-separated names (default: every dev set)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--tag", default="")
    ap.add_argument("--summarise-only", action="store_true", help="print the table of the rows already in the JSONL")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    jsonl = OUT / f"tune_adbench{args.tag}.jsonl"
    if not args.summarise_only:
        d = shared_data(args.data)
        if d is None:
            sys.exit("no data: set GANAD_SHARED_DATA or pass --data")
        directory = d / "adbench"
        names = adbench_names(directory)
        if args.datasets:
            want = [w.strip().lower() for w in args.datasets.split(",")]
            names = [n for n in names if n.lower() in want or n.split("_", 1)[-1].lower() in want]
        print(json.dumps({"machine": machine(), "args": vars(args)}), flush=True)
        for name in names:
            X, y = load_adbench(directory / f"{name}.npz")
            for seed in args.seeds:
                r = run_one(X, y, name, seed, args)
                print(json.dumps(r), flush=True)
                with open(jsonl, "a") as fh:
                    fh.write(json.dumps(r) + "\n")
    rows = [json.loads(line) for line in open(jsonl)] if jsonl.exists() else []
    table = summarise(rows)
    print(table)
    (OUT / f"tune_adbench{args.tag}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
