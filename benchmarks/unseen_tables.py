"""Tables no default was ever chosen on: scikit-learn's bundled sets as one-class tasks, a report
of how ganad's defaults generalise beside the PyOD peers. Nothing here chooses anything.

No ganad default was chosen on these sets (the defaults come from held-out MIT-BIH DS1 records, the
MNIST training split, NAB validation groups and synthetic tables; benchmarks/RESULTS.md says how each
was chosen), and no choice may be made on this report: it is evidence of generalisation only. The
sets ship inside scikit-learn, so the script needs no download.

Protocol, per task and seed: the normal class's rows split 70 / 30 (the seed draws the split); the
detectors train on the 70 %, every row of the other classes is an anomaly; test = the held-out
30 % of the normal rows + every anomaly. AUROC. PyOD peers get standardised inputs (fitted on the
training rows, as a careful user would: ``ganad.benchmark.run_one``); ganad's detectors get the raw
rows and scale them themselves.

Tasks: ``digits`` (8 x 8 handwritten digits as 64 features, each digit normal in turn: 10 tasks of
about 125 training rows), ``breast_cancer`` (30 features, benign normal, 250 training rows),
``wine`` (13 features, each cultivar normal in turn: 3 tasks of 33-50 training rows).

    python benchmarks/unseen_tables.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, machine  # noqa: E402

from ganad import benchmark as B  # noqa: E402
from ganad.benchmark.adbench import adbench_split  # noqa: E402
from ganad.benchmark.runner import _metrics  # noqa: E402


def tasks(names):
    """(task name, X, normal mask) for every one-class task of the named sets."""
    from sklearn import datasets as skd
    out = []
    for name in names:
        if name == "digits":
            d = skd.load_digits()
            out += [(f"digits {c}", d.data, d.target == c) for c in range(10)]
        elif name == "breast_cancer":
            d = skd.load_breast_cancer()
            out.append(("breast_cancer (benign normal)", d.data, d.target == 1))
        elif name == "wine":
            d = skd.load_wine()
            out += [(f"wine {c}", d.data, d.target == c) for c in range(3)]
        else:
            raise SystemExit(f"--sets: unknown set {name!r}; use digits, breast_cancer, wine")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--sets", default="digits,breast_cancer,wine")
    ap.add_argument("--methods", default="ganomaly", help="ganad methods, each with its defaults")
    ap.add_argument("--peers", default="knn,iforest,ecod,ocsvm,autoencoder")
    ap.add_argument("--epochs", type=int, default=None, help="ganad epochs (default: each method's own default)")
    ap.add_argument("--peer-epochs", type=int, default=30)
    ap.add_argument("--peer-inputs", default="standardised", choices=("standardised", "raw", "both"),
                    help="the peers' inputs: standardised on the training rows (the default), raw, or both (rows '(raw)')")
    ap.add_argument("--out", default="unseen_tables.json")
    a = ap.parse_args(argv)
    methods = [m for m in a.methods.split(",") if m]
    peers = [p for p in a.peers.split(",") if p and p != "none"]
    rows = []
    t0 = time.time()
    for seed in a.seeds:
        for task, X, normal in tasks([s for s in a.sets.split(",") if s]):
            tr, te = adbench_split((~normal).astype(np.int64), seed, train_fraction=0.7)  # the ADBench rows' split
            Xtr, Xte = X[tr].astype(np.float32), X[te].astype(np.float32)
            y = (~normal[te]).astype(np.int64)
            scalings = {"standardised": [True], "raw": [False], "both": [True, False]}[a.peer_inputs]
            jobs = [("ganad", m, True) for m in methods] + [("peer", p, sc) for p in peers for sc in scalings]
            for kind, name, scale in jobs:
                r = B.run_one(kind, name, Xtr, Xte, seed=seed, epochs=a.epochs, peer_epochs=a.peer_epochs, scale_peers=scale,
                              log=lambda *x: None)
                label = r["method"] + ("" if scale else " (raw)")
                rec = {"task": task, "seed": seed, "method": label, "n_train": len(tr), "n_test": len(te),
                       "fit_s": r["fit_s"], "error": r["error"], "knn_blocks": r.get("knn_blocks")}
                rec["auroc"] = None if r["scores"] is None else _metrics(y, r["scores"])["auroc"]
                rows.append(rec)
                print(f"seed {seed} {task:32s} {label:24s} auroc={rec['auroc']} {r['error'] or ''}", flush=True)
    report = summarise(rows)
    print(f"\n({time.time() - t0:.0f} s)\n\n{report}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / a.out).write_text(json.dumps({"args": vars(a), "machine": machine(), "rows": rows, "table": report}, indent=1,
                                        default=B._json_default))


def summarise(rows: list[dict]) -> str:
    """Markdown: per set and method, mean AUROC over its tasks (± the mean over tasks of the seed sd),
    the mean over every task, and the mean paired difference to KNN by seed. A method that failed on
    a task gets no mean over a group or over every task (a mean over the tasks it finished would flatter
    it), and a seed is paired only where both have every task."""
    def group(task):
        return task.split(" ")[0]
    tasks_of = defaultdict(set)  # group -> every task run
    by = defaultdict(lambda: defaultdict(list))  # (group, method) -> task -> [auroc per seed]
    per_seed = defaultdict(lambda: defaultdict(dict))  # method -> seed -> {task: auroc}
    seeds_all = defaultdict(set)
    for r in rows:
        tasks_of[group(r["task"])].add(r["task"])
        seeds_all[r["task"]].add(r["seed"])
        if r["auroc"] is not None:
            by[(group(r["task"]), r["method"])][r["task"]].append(r["auroc"])
            per_seed[r["method"]][r["seed"]][r["task"]] = r["auroc"]
    every = set().union(*tasks_of.values()) if tasks_of else set()
    groups = sorted(tasks_of)
    methods = sorted({r["method"] for r in rows}, key=lambda m: (m.startswith(B._PEER_PREFIX), m))
    lines = ["| method | " + " | ".join(groups) + " | mean of every task | paired vs KNN by seed (mean ± sd; seeds ahead) |",
             "|---|" + "---|" * (len(groups) + 2)]
    knn = per_seed.get(B._PEER_PREFIX + "knn", {})

    def complete(m, task_set):
        """{task: AUROCs} of method m over task_set, or None unless it finished every task on every seed."""
        t = {k: v for g in groups for k, v in by.get((g, m), {}).items() if k in task_set}
        return t if set(t) == task_set and all(len(t[x]) == len(seeds_all[x]) for x in task_set) else None
    for m in methods:
        cells = []
        for g in groups:
            t = complete(m, tasks_of[g])
            cells.append("" if t is None else f"{np.mean([np.mean(v) for v in t.values()]):.3f} ± "
                                              f"{np.mean([np.std(v) for v in t.values()]):.3f}")
        t = complete(m, every) if every else None
        allm = "" if t is None else f"{np.mean([np.mean(v) for v in t.values()]):.3f}"
        d = [np.mean(list(per_seed[m][s].values())) - np.mean(list(knn[s].values()))
             for s in per_seed[m] if s in knn and set(per_seed[m][s]) == set(knn[s]) == every]
        pair = f"{np.mean(d):+.4f} ± {np.std(d):.4f}; {sum(x > 0 for x in d)} of {len(d)}" if d and m != B._PEER_PREFIX + "knn" else ""
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {allm} | {pair} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
