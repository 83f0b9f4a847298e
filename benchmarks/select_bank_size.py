"""How many training rows the default score's knn bank holds, on validation data only (thirty-fifth session).

The default score (``knn_space='feature+input'``) measures a sample's distance to the training data: the
features' Mahalanobis distance (mean and covariance of the bank's features) and the inputs' mean distance
to their k nearest bank rows. The bank holds at most ``_knn_bank_max`` = 4,096 training rows, drawn at
random, a cap set for scoring speed when the knn component was introduced and never put to a quality
test. PyOD's KNN, the peer of the issue's rows, searches every training row; at the issue's full MIT-BIH
protocol the bank holds 4,096 of about 45,000 normal beats.

Here one fit per method and seed (the library's defaults, 30 epochs, one thread), then the same networks'
bank rebuilt with a larger cap (``_refit_knn``: the knn blocks' scales and the per-fit block choice are
refitted with it; the score's AUROC does not depend on the composer's location and scale, which are not).
MIT-BIH DS1 only: 7 records held out by patient per seed (``mitbih_split(DS1, seed, 0.3)``), every N beat
of the other 15 records as training data (``--max-train 0``), every beat of the held-out records scored.
DS2 is never read. The MNIST training split (about 4,250 bank rows per digit) and the synthetic tables of
several modes (3,600) hardly reach the cap, so they cannot tell the caps apart and are not run.

Rule, written before the run (commit of this docstring): the cap rises to the largest candidate (16,384
or every row) whose mean AUROC over AnoGAN and GANomaly, seeds 0-3, is at least 0.005 higher than with
4,096 rows and no method's mean lower; the scoring cost is measured beside it (time to score the
held-out records, one thread) and reported, not part of the rule.

    OMP_NUM_THREADS=1 python benchmarks/select_bank_size.py --methods anogan --seeds 0 1 2 3 --out sel35_bank_anogan.json
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import markdown_table, shared_data, write_json
from sklearn.metrics import roc_auc_score

import ganad

CAPS = (4096, 16384, None)  # None: every training row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="anogan,ganomaly")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-train", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from select_knn_space import mitbih_sets  # the held-out DS1 records of every earlier choice
    rows = []
    for seed, _, Xtr, Xev, yev in mitbih_sets(shared_data(a.data), a.seeds, a.max_train):
        n_train = len(Xtr)
        for method in a.methods.split(","):
            t = time.perf_counter()
            det = ganad.DETECTORS[method](epochs=a.epochs, random_state=seed).fit(Xtr)
            row = {"seed": seed, "method": method, "n_train": n_train, "fit_s": round(time.perf_counter() - t, 1)}
            for cap in CAPS:
                det._knn_bank_max = 10**9 if cap is None else cap
                det._refit_knn(Xtr)
                t = time.perf_counter()
                s = det.decision_function(Xev)
                name = "all" if cap is None else str(cap)
                row[f"auroc {name}"] = round(float(roc_auc_score(yev, s)), 4)
                row[f"score_s {name}"] = round(time.perf_counter() - t, 1)
                row[f"blocks {name}"] = det.__dict__.get("knn_blocks_")
                row[f"bank {name}"] = int(det.knn_bank_.shape[0])
            rows.append(row)
            print(markdown_table([row], list(row)), flush=True)
    summary = []
    for method in a.methods.split(","):
        sel = [r for r in rows if r["method"] == method]
        summary.append({"method": method, **{f"auroc {c}": round(statistics.mean(r[f"auroc {c}"] for r in sel), 4)
                                             for c in ("4096", "16384", "all")},
                        **{f"score_s {c}": statistics.median(r[f"score_s {c}"] for r in sel) for c in ("4096", "16384", "all")}})
    print(markdown_table(summary, list(summary[0])))
    write_json(a.out or "select_bank_size.json", {"args": vars(a), "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
