"""Choose the training defaults of issue 15 on validation data only: MIT-BIH DS1, split by patient.

Train on N beats of the DS1 training records, validate on every beat of held-out DS1 records
(their labels may be used: DS1 is the training / validation half of the inter-patient split; DS2
is never read). Compared, per method and seed, with one refit each:

* ``select+ema``   : 10 % of the training beats held out, best epoch by held-out residual, EMA 0.999
* ``select``       : the same without the weight average
* ``last``         : no held-out slice, the last epoch's raw weights (batch size as above)

and, without refitting, the ``select+ema`` model's score at knn weights 0 (the method's own score),
0.25, 0.5, 0.75 and 1 (the knn component alone), each part standardised on the held-out slice.
The ``auroc`` column is the method's own score in every variant.

    python benchmarks/select_defaults.py --seeds 0 1 --epochs 10 --max-train 10000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ds1_validation, machine, markdown_table, shared_data, write_json  # noqa: E402

import ganad  # noqa: E402
from ganad.data import mitbih as mb  # noqa: E402

VARIANTS = {"select+ema": dict(validation_fraction=0.1, ema=0.999),
            "select": dict(validation_fraction=0.1, ema=None),
            "last": dict(validation_fraction=0.0, ema=None)}


WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def blends(det, X_heldout, X_eval):
    """AUROC inputs for the default score at every knn weight: the method's own composer blended
    with the knn component, standardised on the held-out training slice (as fit does)."""
    from ganad.scoring.composition import KnnBlend
    inner = getattr(det.composer_, "inner", det.composer_)
    ref = det.score_components(X_heldout).components
    ev = det.score_components(X_eval).components
    return {w: KnnBlend.fit(inner, ref, w)(ev) for w in WEIGHTS}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="fanogan,ganomaly,vaegan")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--max-train", type=int, default=10000)
    ap.add_argument("--max-val", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="select_defaults.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from sklearn.metrics import roc_auc_score
    data = shared_data(a.data)
    b1 = mb.load_mitbih(data / "mitdb", mb.DS1)
    rows = []
    for seed in a.seeds:
        tr_recs, val_recs, tr, va = ds1_validation(b1, seed, a.max_train, a.max_val)
        Xtr, Xva, yva = b1.X[tr], b1.X[va], (b1.aami[va] != "N").astype(int)
        print(f"seed {seed}: train records {tr_recs} ({len(tr)} N beats); validation records {val_recs} "
              f"({len(va)} beats, {yva.sum()} not N)", flush=True)
        for method in a.methods.split(","):
            for vname, cfg in VARIANTS.items():
                t = time.perf_counter()
                det = ganad.DETECTORS[method](epochs=a.epochs, random_state=seed, **cfg).fit(Xtr)
                fit_s = time.perf_counter() - t
                row = {"seed": seed, "method": method, "variant": vname, "fit_s": round(fit_s, 1),
                       "best_epoch": (det.selection_ or {}).get("best_epoch")}
                if vname == "select+ema":
                    for w, s in blends(det, Xtr[det.validation_index_], Xva).items():
                        row[f"auroc w={w}"] = roc_auc_score(yva, s)
                    row["auroc"] = row["auroc w=0.0"]
                else:
                    inner = getattr(det.composer_, "inner", det.composer_)
                    row["auroc"] = roc_auc_score(yva, inner(det.score_components(Xva).components))
                rows.append(row)
                print(markdown_table([row], list(row)), flush=True)
    cols = ["seed", "method", "variant", "auroc"] + [f"auroc w={w}" for w in WEIGHTS[1:]] + ["best_epoch", "fit_s"]
    print(markdown_table(rows, cols))
    summary = []
    for method in a.methods.split(","):
        for vname in VARIANTS:
            v = [r["auroc"] for r in rows if r["method"] == method and r["variant"] == vname]
            summary.append({"method": method, "variant": vname, "mean auroc": statistics.mean(v),
                            "sd": statistics.pstdev(v)})
        for w in WEIGHTS[1:]:
            v = [r[f"auroc w={w}"] for r in rows if r["method"] == method and f"auroc w={w}" in r]
            summary.append({"method": method, "variant": f"select+ema, knn weight {w}", "mean auroc": statistics.mean(v),
                            "sd": statistics.pstdev(v)})
    print(markdown_table(summary, ["method", "variant", "mean auroc", "sd"]))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
