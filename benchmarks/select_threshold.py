"""Thresholds that hold on new patients: the population threshold against each record's own, on MIT-BIH DS1 only.

A ganad model's threshold (``calibrate(threshold='fpr', fpr=0.05)``) is the 95th percentile of the
combined score of normal beats of *calibration* patients. On a new patient whose normal beats score
higher (an irregular but normal rhythm, a noisier electrode) it flags far more than 5 % of them: on DS2
the rhythm-view row's seed 2 flagged 38 % (thirty-second session). Compared here, label-free, on held-out
DS1 records (DS2 is never read):

* ``population``: the calibration patients' threshold τ, for every beat;
* ``own``: after each record's first ``--warm-up`` beats (in time order), the (1 − fpr) quantile of the
  record's own warm-up scores (``prefix_threshold(..., raise_only=False)``);
* ``own, floored``: ``max(τ, own)`` (``prefix_threshold(..., raise_only=True)``): never more sensitive
  than the population threshold, less where the patient's own normal runs higher.

Protocol (as ``select_rhythm.py --split-reference records``): per seed, ``mitbih_split(DS1, seed, 0.3)``;
GANomaly on the beat (256 samples) and on the four RR features, each trained on at most ``--max-train``
N beats of the training records; the held-out records split in two halves by record (seeded), the two
views joined as surprises (``MultiViewDetector(combine='surprise')``'s transform) fitted on one half's N
beats, τ = their (1 − fpr) quantile, and every beat of the other half's records scored; then the halves
swap (two folds). Read on the beats after each record's warm-up: the pooled FPR on N beats, the number
of records (with ≥ 100 N beats after the warm-up) whose own FPR exceeds twice the target, the worst
record's FPR, the recall of the non-N beats, and the AUROC of the scores as they are and standardised
by each record's warm-up (``prefix_standardise``, the benchmark's ``--adaptive`` row).

The rule (thirty-third session, written before the first run): over GANomaly × seeds 0–3 × the two
folds, the variant that ``docs/training.md`` recommends to monitors (and whose ``raise_only`` value
``prefix_threshold`` takes by default) is the one with the fewest records above twice the target FPR,
provided its recall is at most 0.05 below the population threshold's (ties: the higher recall); if
neither adaptive variant passes, the population threshold stays the recommendation and
``prefix_threshold`` keeps ``raise_only=True`` as the cautious default.

    OMP_NUM_THREADS=1 python benchmarks/select_threshold.py --seeds 0 1 2 3 --epochs 30

``--robust`` (second round, thirty-third session): the own quantile of a warm-up counts the abnormal beats
inside it (runs of premature beats raise it, and recall falls: 0.674 → 0.385 floored above). Two
variants that read the warm-up by its median (and MAD), which abnormal beats move little while they
are under half of it, and take the tail's shape from the population's normal beats (median m, MAD
scale d, of the calibration half's N beats, τ their (1 − fpr) quantile):

* ``shifted, floored``: ``max(τ, τ + median_r − m)``: the population threshold moved by the record's
  shift of location;
* ``robust, floored``: ``max(τ, median_r + (τ − m) · MAD_r / d)``: and scaled by its spread.

The rule (written before the second round's run): the candidate of the two with the higher recall
becomes what ``prefix_threshold`` computes when given the population's normal scores
(``reference=``) if it has at most 4 of the 28 record evaluations above twice the target (``own,
floored``: 3, population: 10) and a recall at least 0.03 above ``own, floored``'s; otherwise neither is
built into the library.

    OMP_NUM_THREADS=1 python benchmarks/select_threshold.py --seeds 0 1 2 3 --epochs 30 --robust

Outcome: ``shifted, floored`` had the higher recall (0.630) but 6 records above twice the target, so by
the rule neither was built in; ``robust, floored`` (4 records, recall 0.490) met both bounds, but the rule
did not let it be chosen after looking. A confirmatory check on splits not used so far (third round,
rule written before its run): on seeds 4–7 (other held-out records and training sets of DS1), ``robust,
floored`` is built into ``prefix_threshold`` (given the population's normal scores) if it has at most
one more record evaluation above twice the target than ``own, floored`` and a recall at least 0.03
above it; otherwise not.

    OMP_NUM_THREADS=1 python benchmarks/select_threshold.py --seeds 4 5 6 7 --epochs 30 --robust

Outcome: on seeds 4–7 ``robust, floored`` had recall 0.759 against 0.653 but 5 record evaluations above
twice the target against 3: not built in.

``--calibration-sizes 1 2 3 4 5 6`` (a report, nothing chosen on it): how many calibration patients a
population threshold needs. For every subset of k of a seed's 7 held-out records, the views' surprise
transform and τ are fitted on the subset's N beats and read on the other records' beats: the pooled
false-positive rate and the share of those records flagged at more than twice the target, summarised
over subsets and seeds (median and 90th percentile of the pooled rate).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402
from select_rhythm import combine, held_out_split  # noqa: E402

VARIANTS = ("population", "own", "own, floored")
ROBUST = ("shifted, floored", "robust, floored")


def robust_thresholds(s, record, order, n_first, tau, ref):
    """Per score: the two robust floored thresholds (``ROBUST``) of its record after its warm-up, τ inside it."""
    from ganad.scoring.composition import MAD_TO_STD
    m = np.median(ref)
    d = np.median(np.abs(ref - m)) * MAD_TO_STD
    shifted, robust = np.full(len(s), tau), np.full(len(s), tau)
    for r in np.unique(record):
        idx = np.flatnonzero(record == r)
        idx = idx[np.argsort(order[idx], kind="stable")]
        head, rest = idx[:n_first], idx[n_first:]
        med = np.median(s[head])
        mad = np.median(np.abs(s[head] - med)) * MAD_TO_STD
        shifted[rest] = max(tau, tau + med - m)
        robust[rest] = max(tau, med + (tau - m) * (mad / d if d > 0 else 1.0))
    return shifted, robust


def threshold_metrics(score, tau, y, record, keep, fpr, min_normal=100):
    """FPR / recall figures of labels ``score > tau`` on the beats ``keep``."""
    flag = score > tau
    n = keep & (y == 0)
    a = keep & (y == 1)
    per = {}
    for r in np.unique(record[keep]):
        m = n & (record == r)
        if m.sum() >= min_normal:
            per[str(r)] = float(flag[m].mean())
    return {"fpr": float(flag[n].mean()), "recall": float(flag[a].mean()) if a.any() else float("nan"),
            "records_over_2x": int(sum(v > 2 * fpr for v in per.values())), "records": len(per),
            "worst_record_fpr": max(per.values()) if per else float("nan"), "per_record_fpr": per}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder holding mitdb/ (default: the shared data folder)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--method", default="ganomaly")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-train", type=int, default=10000)
    ap.add_argument("--warm-up", type=int, default=300)
    ap.add_argument("--fpr", type=float, default=0.05)
    ap.add_argument("--out", default="select_threshold.json")
    ap.add_argument("--robust", action="store_true", help="also the two robust floored variants (second round)")
    ap.add_argument("--calibration-sizes", type=int, nargs="*", default=[],
                    help="also report the population threshold fitted on every subset of k held-out records, read on the others")
    a = ap.parse_args(argv)
    from sklearn.metrics import roc_auc_score

    from ganad.benchmark.peers import _seed_torch, make_ganad
    from ganad.data import mitbih as mb
    from ganad.scoring.adaptive import prefix_standardise, prefix_threshold
    from ganad.scoring.threshold import fpr_threshold

    data = shared_data(a.data)
    if data is None:
        raise SystemExit("no MIT-BIH data: pass --data (the folder holding mitdb/) or set GANAD_SHARED_DATA")
    b = mb.load_mitbih(data / "mitdb" if (data / "mitdb").is_dir() else data, list(mb.DS1), rr_features=True)
    F = mb.rhythm_features(b.rr)
    rows, sizes = [], []
    for seed in a.seeds:
        t0 = time.perf_counter()
        va_recs, itr, iva = held_out_split(b, seed, a.max_train)
        views = {}
        for name, X in (("beat", b.X), ("rhythm", F)):
            _seed_torch(seed)
            det = make_ganad(a.method, seed, a.epochs).fit(X[itr])
            views[name] = np.asarray(det.decision_function(X[iva]), np.float64)
        cls, rec, order = b.aami[iva], b.record[iva], b.sample[iva]
        y = (cls != "N").astype(int)
        for k in a.calibration_sizes:
            from itertools import combinations
            for sub in combinations(sorted(va_recs), k):
                ref_side = np.isin(rec, sub)
                if ref_side.all():
                    continue
                sc = combine("surprise sum", views, ref_side & (y == 0))
                tau = fpr_threshold(sc[ref_side & (y == 0)], a.fpr)
                m = threshold_metrics(sc, np.full(len(sc), tau), y, rec, ~ref_side, a.fpr)
                sizes.append({"seed": seed, "k": k, "records": list(sub), "fpr": m["fpr"], "recall": m["recall"],
                              "share_over_2x": m["records_over_2x"] / m["records"] if m["records"] else float("nan")})
        recs = np.random.RandomState(1000 + seed).permutation(sorted(va_recs))
        half = np.isin(rec, recs[: len(recs) // 2])
        for fold, (ref_side, ev_side) in enumerate(((half, ~half), (~half, half))):
            sc = combine("surprise sum", views, ref_side & (y == 0))
            tau = fpr_threshold(sc[ref_side & (y == 0)], a.fpr)
            ev = np.flatnonzero(ev_side)
            s, yy, rr, oo = sc[ev], y[ev], rec[ev], order[ev]
            own, warm = prefix_threshold(s, rr, oo, a.warm_up, fpr=a.fpr, threshold=tau, raise_only=False)
            floored, _ = prefix_threshold(s, rr, oo, a.warm_up, fpr=a.fpr, threshold=tau, raise_only=True)
            keep = ~warm
            adapted, _ = prefix_standardise(s, rr, oo, a.warm_up)
            row = {"seed": seed, "fold": fold, "tau": tau, "ref_records": sorted(set(rec[ref_side].tolist())),
                   "eval_records": sorted(set(rr.tolist())), "n_eval": int(keep.sum()), "n_anomalies": int(yy[keep].sum()),
                   "auroc": float(roc_auc_score(yy[keep], s[keep])) if len(np.unique(yy[keep])) == 2 else float("nan"),
                   "auroc_adapted": float(roc_auc_score(yy[keep], adapted[keep])) if len(np.unique(yy[keep])) == 2 else float("nan")}
            variants = dict(zip(VARIANTS, (np.full(len(s), tau), own, floored)))
            if a.robust:
                variants.update(zip(ROBUST, robust_thresholds(s, rr, oo, a.warm_up, tau, sc[ref_side & (y == 0)])))
            for v, t in variants.items():
                row[v] = threshold_metrics(s, t, yy, rr, keep, a.fpr)
            rows.append(row)
            print(f"seed {seed} fold {fold} ({time.perf_counter() - t0:.0f} s): tau {tau:.2f} "
                  + "; ".join(f"{v}: fpr {row[v]['fpr']:.3f} recall {row[v]['recall']:.3f} "
                              f">2x {row[v]['records_over_2x']}/{row[v]['records']} worst {row[v]['worst_record_fpr']:.3f}"
                              for v in variants), flush=True)
    table = []
    for v in VARIANTS + (ROBUST if a.robust else ()):
        fp = [r[v]["fpr"] for r in rows]
        rc = [r[v]["recall"] for r in rows if np.isfinite(r[v]["recall"])]
        table.append({"threshold": v, "pooled FPR": f"{np.mean(fp):.3f} ± {np.std(fp):.3f}",
                      "records over 2x target": f"{sum(r[v]['records_over_2x'] for r in rows)} of {sum(r[v]['records'] for r in rows)}",
                      "worst record FPR (median over folds)": f"{np.median([r[v]['worst_record_fpr'] for r in rows]):.3f}",
                      "recall": f"{np.mean(rc):.3f} ± {np.std(rc):.3f}"})
    au = [r["auroc"] for r in rows if np.isfinite(r["auroc"])]
    aa = [r["auroc_adapted"] for r in rows if np.isfinite(r["auroc_adapted"])]
    print(markdown_table(table, list(table[0])))
    print(f"AUROC after the warm-up: as scored {np.mean(au):.3f} ± {np.std(au):.3f}; "
          f"standardised by each record's warm-up {np.mean(aa):.3f} ± {np.std(aa):.3f}")
    size_table = []
    for k in a.calibration_sizes:
        z = [r for r in sizes if r["k"] == k]
        if z:
            f = np.array([r["fpr"] for r in z])
            size_table.append({"calibration records": k, "subsets": len(z), "pooled FPR, median": f"{np.median(f):.3f}",
                               "90th percentile": f"{np.quantile(f, 0.9):.3f}", "subsets over 2x target": f"{np.mean(f > 2 * a.fpr):.0%}",
                               "records over 2x target": f"{np.nanmean([r['share_over_2x'] for r in z]):.0%}",
                               "recall, median": f"{np.nanmedian([r['recall'] for r in z]):.3f}"})
    if size_table:
        print(markdown_table(size_table, list(size_table[0])))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows, "table": table, "sizes": sizes, "size_table": size_table,
                       "auroc": [float(np.mean(au)), float(np.std(au))], "auroc_adapted": [float(np.mean(aa)), float(np.std(aa))]})


if __name__ == "__main__":
    main()
