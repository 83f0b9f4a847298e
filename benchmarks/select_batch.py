"""Choose the largest batch of ``batch_size='auto'`` on validation data only: MIT-BIH DS1, split by patient.

``batch_size='auto'`` takes n/32 as a power of two between 32 and a cap. A cap of 512 instead of 256
changes only training sets of at least 16,384 samples (n/32 >= 512): of the reference data only
full MIT-BIH (about 30k-38k normal beats) reaches it; ADBench (at most 10,000 training rows) and
MNIST (about 6,000 images a digit) keep their batches. A batch of 512 halves the
optimiser steps per epoch and trains faster per epoch on a CPU; this script measures whether it costs
detection quality, with the default 30 epochs and every N beat of the training records (the full
protocol's training size), on DS1 records only (DS2 is never read):

* per seed, ``mitbih_split(DS1, seed, 0.3)``: detectors train on every N beat of the DS1 training
  records, every beat of the held-out DS1 records is scored (labels used: DS1 is the validation half);
* per method, fits that differ only in ``batch_size`` (``--batches``: 256 = today's cap, 512; ``512:sqrt``
  also scales both learning rates by sqrt(512 / 256)), same seed;
* the beat model's default score (AUROC, any class against N; N against S, V, F), the fit's
  seconds, and for ``--rhythm-method`` the rhythm view (four RR features, z-scores summed, the
  benchmark's protocol) trained with the same batch.

    OMP_NUM_THREADS=1 python benchmarks/select_batch.py --seeds 0 --out select_batch_s0.json &
    OMP_NUM_THREADS=1 python benchmarks/select_batch.py --seeds 1 --out select_batch_s1.json
    OMP_NUM_THREADS=1 python benchmarks/select_batch.py --seeds 0 1 2 3 --methods ganomaly --batches 512:sqrt,1024 --rhythm-method ''

Result (RESULTS.md, "Larger batches for large training sets"): every larger batch lowered the mean
held-out AUROC, so the cap stays 256.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder holding mitdb/ (default: the shared data folder)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--methods", default="ganomaly,fanogan,vaegan")
    ap.add_argument("--batches", default="256,512",
                    help="comma-separated; 'B:sqrt' also scales lr_g and lr_d by sqrt(B / 256)")
    ap.add_argument("--rhythm-method", default="fanogan", help="method of the rhythm view ('' = none)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the methods' own (30)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="select_batch.json")
    a = ap.parse_args(argv)
    import torch
    from sklearn.metrics import roc_auc_score

    from ganad.benchmark.mitbih import mitbih_split
    from ganad.benchmark.peers import _seed_torch, make_ganad
    from ganad.data import mitbih as mb
    from ganad.scoring.composition import RobustStandardised

    torch.set_num_threads(a.threads)
    data = shared_data(a.data)
    if data is None:
        raise SystemExit("no MIT-BIH data: pass --data (the folder holding mitdb/) or set GANAD_SHARED_DATA")
    b = mb.load_mitbih(data / "mitdb" if (data / "mitdb").is_dir() else data, list(mb.DS1), rr_features=True)
    F = mb.rhythm_features(b.rr)
    batches = a.batches.split(",")
    rows = []

    def fit(method, seed, X, batch):
        _seed_torch(seed)
        det = make_ganad(method, seed, a.epochs)
        size, _, scale = batch.partition(":")
        det.set_params(batch_size=int(size))
        if scale == "sqrt":
            f = (int(size) / 256) ** 0.5
            det.set_params(lr_g=det.lr_g * f, lr_d=det.lr_d * f)
        t = time.perf_counter()
        det.fit(X)
        return det, time.perf_counter() - t

    for seed in a.seeds:
        tr_recs, va_recs = mitbih_split(list(mb.DS1), seed, 0.3)
        itr = np.flatnonzero(np.isin(b.record, tr_recs) & (b.aami == "N"))
        iva = np.flatnonzero(np.isin(b.record, va_recs))
        cls = b.aami[iva]
        y = (cls != "N").astype(int)
        normal = cls == "N"
        print(f"seed {seed}: {len(itr)} training N beats, {len(iva)} validation beats ({y.sum()} not N)", flush=True)
        for m in a.methods.split(","):
            for batch in batches:
                det, fit_s = fit(m, seed, b.X[itr], batch)
                beat = np.asarray(det.decision_function(b.X[iva]), np.float64)
                row = {"seed": seed, "method": m, "batch": batch, "auroc": roc_auc_score(y, beat),
                       **{f"N vs {c}": roc_auc_score(cls[np.isin(cls, ["N", c])] == c, beat[np.isin(cls, ["N", c])])
                          for c in "SVF" if (cls == c).sum() >= 10},
                       "fit s": round(fit_s, 1),
                       "best epoch": (det.selection_ or {}).get("best_epoch")}
                if m == a.rhythm_method:
                    rdet, r_s = fit(m, seed, F[itr], batch)
                    rh = np.asarray(rdet.decision_function(F[iva]), np.float64)
                    z = RobustStandardised.fit({"beat": beat[normal], "rhythm": rh[normal]}, names=["beat", "rhythm"]).standardise(
                        {"beat": beat, "rhythm": rh})
                    row["+ rhythm"] = roc_auc_score(y, z.sum(1))
                    row["rhythm fit s"] = round(r_s, 1)
                rows.append(row)
                print(markdown_table([row], list(row)), flush=True)
    table = []
    for m in a.methods.split(","):
        for batch in batches:
            rr = [r for r in rows if r["method"] == m and r["batch"] == batch]
            ent = {"method": m, "batch": batch}
            for k in ("auroc", "+ rhythm", "N vs S", "N vs V", "N vs F", "fit s"):
                vals = [r[k] for r in rr if k in r]
                if vals:
                    ent[k] = f"{np.mean(vals):.3f} ± {np.std(vals):.3f}" if k != "fit s" else f"{np.median(vals):.0f}"
            ent["per seed"] = " ".join(f"{r['auroc']:.3f}" for r in rr)
            table.append(ent)
    print(markdown_table(table, sorted({k for t in table for k in t}, key=lambda k: list(table[0]).index(k) if k in table[0] else 99)))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows, "table": table})


if __name__ == "__main__":
    main()
