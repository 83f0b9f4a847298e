"""Issue 15's full-scale, multi-seed quality benchmark: every protocol over several seeds, the
PyOD peers on the same splits (features standardised on the training data for tables and beats),
mean ± standard deviation over seeds.

    # MIT-BIH inter-patient: all DS1 N beats of the training records -> all 49,691 DS2 beats, 5 seeds,
    # with the patient-adaptive rows (first 300 beats of each record) beside the pure ones
    python benchmarks/full_scale.py mitbih --seeds 0 1 2 3 4 --max-train 0 --max-test 0 --adaptive 300
    python benchmarks/full_scale.py mitbih --seeds 0 1 2 3 4 --max-train 0 --max-test 0 --rhythm
    # ADBench: 12 dev sets x 5 seeds, at most 10k training rows, every test row (each set's distinct rows)
    python benchmarks/full_scale.py adbench --seeds 0 1 2 3 4 --max-train 10000 --max-test 0
    # MNIST one-class: every training image of the digit, the full test set, 3 seeds
    python benchmarks/full_scale.py mnist --seeds 0 1 2 --max-train 0 --max-test 0

Each run writes ``benchmarks/out/full-<protocol>[-tag].json`` and prints a markdown table. Columns:
``auroc`` is each method's default score (for ganad: its own score blended with the ``knn``
component), ``auroc_own`` the method's own score alone, ``auroc_knn`` the knn component alone.
``--set n_members=3`` (any detector parameter) applies to every ganad method.
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
from common import OUT, shared_data  # noqa: E402

from ganad import benchmark as B  # noqa: E402

METRICS = ("auroc", "auroc_own", "auroc_knn", "auprc", "auroc_N_vs_S", "auroc_N_vs_V", "auroc_N_vs_F",
           "auroc_unadapted_same_beats", "fpr_test", "fpr_test_unadapted_same_beats", "recall", "recall_unadapted_same_beats",
           "records_over_2x_fpr", "records_over_2x_fpr_unadapted_same_beats", "fit_s")


def _ms(v):
    v = [x for x in v if x is not None]
    if not v:
        return None, None
    return float(np.mean(v)), float(np.std(v))


def _fmt(m, s):
    return "" if m is None else (f"{m:.3f} ± {s:.3f}" if s is not None else f"{m:.3f}")


def _sd_of_seed_means(rs: list[dict], k: str, unit: str, units: set) -> float | None:
    """The sd over seeds of each seed's mean over every unit (None unless at least two seeds have a value
    on every unit): how much the headline mean itself moves with the seed."""
    per_seed = defaultdict(dict)
    for r in rs:
        if r.get(k) is not None:
            per_seed[r.get("seed")][r[unit]] = r[k]
    means = [float(np.mean(list(v.values()))) for v in per_seed.values() if set(v) == units]
    return float(np.std(means)) if len(means) >= 2 else None


def aggregate(rows: list[dict], unit: str | None) -> list[dict]:
    """Per method: mean ± sd over seeds (np.std: the population sd, ddof 0). With a unit (dataset,
    digit): the seed mean and sd per unit first, then their means over units (the sd column is the mean
    over units of the seed sd: issue 15's "seed sd, mean over sets"); ``auroc_sd_of_mean`` is the sd over
    seeds of each seed's mean over units, the spread of the headline mean itself (smaller: the sets'
    seed noise partly averages out). A method with no value on some unit (it failed on every seed
    there) gets no mean: one over the other units only would not compare with the methods averaged
    over all of them."""
    units = {r[unit] for r in rows} if unit is not None else set()
    by = defaultdict(list)
    for r in rows:
        by[r["method"]].append(r)
    out = []
    for method, rs in by.items():
        row = {"method": method, "n_runs": len(rs)}
        for k in METRICS:
            if not any(r.get(k) is not None for r in rs):
                continue
            if unit is None:
                row[k] = _ms([r.get(k) for r in rs])
            else:
                per = defaultdict(list)
                for r in rs:
                    per[r[unit]].append(r.get(k))
                stats = [_ms(v) for v in per.values()]
                stats = [s for s in stats if s[0] is not None]
                complete = len(stats) == len(units)
                row[k] = (float(np.mean([s[0] for s in stats])), float(np.mean([s[1] for s in stats]))) if stats and complete else (None, None)
                if k == "auroc":
                    row["auroc_sd_of_mean"] = _sd_of_seed_means(rs, k, unit, units) if complete else None
        out.append(row)
    return out


def table(agg: list[dict]) -> str:
    cols = (["method"] + [k for k in METRICS if any(k in r for r in agg)]
            + (["auroc_sd_of_mean"] if any(r.get("auroc_sd_of_mean") is not None for r in agg) else []) + ["n_runs"])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in sorted(agg, key=lambda r: (r["method"].startswith(B._PEER_PREFIX), r["method"])):
        cells = []
        for c in cols:
            v = r.get(c)
            if isinstance(v, tuple):
                cells.append(_fmt(*v) if c != "fit_s" else (f"{v[0]:.0f}" if v[0] is not None else ""))
            elif isinstance(v, float):
                cells.append(f"{v:.3f}")
            else:
                cells.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("protocol", choices=["mitbih", "adbench", "mnist"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", default="fanogan,ganomaly,vaegan")
    ap.add_argument("--peers", default="iforest,knn,ocsvm,ecod,autoencoder,vae,deepsvdd")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--peer-epochs", type=int, default=20)
    ap.add_argument("--max-train", type=int, default=0, help="0 = all")
    ap.add_argument("--max-test", type=int, default=0, help="0 = all")
    ap.add_argument("--datasets", default=None)
    ap.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--adaptive", type=int, default=None)
    ap.add_argument("--rhythm", action="store_true")
    ap.add_argument("--beat-input", default="beat", choices=("beat", "change", "both"),
                    help="mitbih: the beat, the beat minus its record's causal template of 8 beats, or both as channels")
    ap.add_argument("--peer-rhythm", default="append", choices=("append", "views", "both"),
                    help="with --rhythm: peers get the RR features appended (append), run as two views like ganad (views), or both")
    ap.add_argument("--set", action="append", default=[], help="k=v detector parameter for every ganad method")
    ap.add_argument("--tag", default="")
    ap.add_argument("--data", default=None)
    a = ap.parse_args(argv)
    for kv in a.set:
        k, v = kv.split("=", 1)
        try:  # a number, list, object, true / false / null as JSON; anything else ('input', 'none') as text
            B.GANAD_PARAMS[k] = json.loads(v)
        except json.JSONDecodeError:
            B.GANAD_PARAMS[k] = v
    data = shared_data(a.data)
    methods = [m for m in a.methods.split(",") if m]
    peers = [p for p in a.peers.split(",") if p and p != "none"]
    mt, mte = a.max_train or None, a.max_test or None
    rows, meta = [], []
    t0 = time.time()
    for seed in a.seeds:
        common = dict(methods=methods, peers=peers, epochs=a.epochs, peer_epochs=a.peer_epochs, max_train=mt, max_test=mte)
        if a.protocol == "mitbih":
            res = B.run_mitbih(data, seed=seed, rhythm=a.rhythm, adaptive=a.adaptive, keep_scores=False, peer_rhythm=a.peer_rhythm,
                               beat_input=a.beat_input, **common)
            for r in res["results"]:
                rows.append({**r, "seed": seed})
        elif a.protocol == "adbench":
            res = B.run_adbench(data, seeds=[seed], datasets=a.datasets.split(",") if a.datasets else None, **common)
            rows += res["results"]
        else:
            res = B.run_mnist(data, seed=seed, digits=[int(d) for d in a.digits.split(",")], **common)
            rows += [{**r, "seed": seed} for r in res["results"]]
        meta.append({k: res.get(k) for k in ("notes", "split", "machine", "config", "started", "finished")})
        unit = {"mitbih": None, "adbench": "dataset", "mnist": "digit"}[a.protocol]
        agg = aggregate(rows, unit)
        print(f"\n## {a.protocol} after seeds {a.seeds[:a.seeds.index(seed) + 1]} ({time.time() - t0:.0f} s)\n")
        print(table(agg), flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        name = f"full-{a.protocol}{'-' + a.tag if a.tag else ''}.json"
        (OUT / name).write_text(json.dumps({"args": vars(a), "ganad_params": B.GANAD_PARAMS, "rows": rows, "meta": meta,
                                            "aggregate": agg, "table": table(agg)}, indent=1, default=B._json_default))


if __name__ == "__main__":
    main()
