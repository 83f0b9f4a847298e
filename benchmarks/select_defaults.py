"""Choose the training defaults of issue 15 on validation data only: MIT-BIH DS1, split by patient.

Train on N beats of the DS1 training records, validate on every beat of held-out DS1 records
(their labels may be used: DS1 is the training / validation half of the inter-patient split; DS2
is never read). Compared, per method and seed, with one refit each:

* ``select+ema``   : 10 % of the training beats held out, best epoch by held-out residual, EMA 0.999
* ``select``       : the same without the weight average
* ``last``         : no held-out slice, the last epoch's raw weights (batch size as above)

and, without refitting, two scores of the ``select+ema`` model: the method's own score and the
method's score plus the ``knn`` component (each robust-standardised on the held-out training slice).

    python benchmarks/select_defaults.py --seeds 0 1 --epochs 10 --max-train 10000
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
from common import machine, markdown_table, shared_data, write_json  # noqa: E402

import ganad  # noqa: E402
from ganad.benchmark import _subsample, mitbih_split  # noqa: E402
from ganad.data import mitbih as mb  # noqa: E402
from ganad.scoring.composition import robust_location_scale  # noqa: E402

VARIANTS = {"select+ema": dict(validation_fraction=0.1, ema=0.999),
            "select": dict(validation_fraction=0.1, ema=None),
            "last": dict(validation_fraction=0.0, ema=None)}


def knn_blend(det, X_val_train, X_eval):
    """z(method score) + z(knn), standardised on the held-out training slice."""
    from ganad.scoring.composition import required_components
    need = set(required_components(det.composer_) or []) | {"knn"}
    ref = det._score(X_val_train, need)
    ev = det._score(X_eval, need)
    out = 0
    for s_ref, s_ev in ((ref.scores, ev.scores), (ref.components["knn"], ev.components["knn"])):
        loc, sc = robust_location_scale(s_ref[:, None])
        out = out + (s_ev - loc[0]) / sc[0]
    return out, ev.scores


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
        tr_recs, val_recs = mitbih_split(mb.DS1, seed, cal_fraction=0.3)
        rng = np.random.RandomState(seed)
        tr = np.flatnonzero(np.isin(b1.record, tr_recs) & (b1.aami == "N"))
        tr = tr[_subsample(len(tr), a.max_train, rng)]
        va = np.flatnonzero(np.isin(b1.record, val_recs))
        va = va[_subsample(len(va), a.max_val, rng, b1.aami[va])]
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
                    blend, own = knn_blend(det, Xtr[det.validation_index_], Xva)
                    row["auroc"] = roc_auc_score(yva, own)
                    row["auroc +knn"] = roc_auc_score(yva, blend)
                    row["auroc knn alone"] = roc_auc_score(yva, det.score_components(Xva).components["knn"])
                else:
                    row["auroc"] = roc_auc_score(yva, det.decision_function(Xva))
                rows.append(row)
                print(markdown_table([row], list(row)), flush=True)
    cols = ["seed", "method", "variant", "auroc", "auroc +knn", "auroc knn alone", "best_epoch", "fit_s"]
    print(markdown_table(rows, cols))
    summary = []
    for method in a.methods.split(","):
        for vname in VARIANTS:
            v = [r["auroc"] for r in rows if r["method"] == method and r["variant"] == vname]
            summary.append({"method": method, "variant": vname, "mean auroc": statistics.mean(v),
                            "sd": statistics.pstdev(v)})
        v = [r["auroc +knn"] for r in rows if r["method"] == method and "auroc +knn" in r]
        summary.append({"method": method, "variant": "select+ema, score + knn", "mean auroc": statistics.mean(v),
                        "sd": statistics.pstdev(v)})
    print(markdown_table(summary, ["method", "variant", "mean auroc", "sd"]))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
