"""The per-feature scaler's clip for beats, on validation data only (MIT-BIH DS1 split by patient).

The per-feature scaler clips scaled values to the training range widened by ``clip`` widths on each
side (docs/scaling.md; default 1, set from principle). Series detectors built by name dropped it
after the NAB validation groups (benchmarks/SERIES_RESULTS.md, twenty-sixth session); this script
puts the same question to beats: per seed, 7 DS1 records are held out by patient
(``mitbih_split(DS1, seed, 0.3)``, as ``select_defaults.py``), each method trains with its defaults on
N beats of the other records and scores every beat of the held-out records, once with the clip and
once without (two fits with the same seed: training data are never clipped, so they differ only in
how the held-out beats are scaled). DS2 is never read.

    OMP_NUM_THREADS=1 python benchmarks/select_clip.py --seeds 0 1 2 3 --epochs 10 --max-train 10000
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

VARIANTS = {"clip 1 (default)": {}, "no clip": {"scaler": {"kind": "per-feature", "clip": None}}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="ganomaly,fanogan")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--max-train", type=int, default=10000)
    ap.add_argument("--max-val", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="select_clip.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from sklearn.metrics import roc_auc_score
    b1 = mb.load_mitbih(shared_data(a.data) / "mitdb", mb.DS1)
    rows = []
    for seed in a.seeds:
        tr_recs, val_recs, tr, va = ds1_validation(b1, seed, a.max_train, a.max_val)
        Xtr, Xva, yva = b1.X[tr], b1.X[va], (b1.aami[va] != "N").astype(int)
        for method in a.methods.split(","):
            for vname, cfg in VARIANTS.items():
                t = time.perf_counter()
                det = ganad.DETECTORS[method](epochs=a.epochs, random_state=seed, **cfg).fit(Xtr)
                s = det.decision_function(Xva)
                rows.append({"seed": seed, "method": method, "variant": vname, "auroc": roc_auc_score(yva, s),
                             "seconds": round(time.perf_counter() - t, 1)})
                print(markdown_table([rows[-1]], list(rows[-1])), flush=True)
    summary = []
    for method in a.methods.split(","):
        for vname in VARIANTS:
            v = [r["auroc"] for r in rows if r["method"] == method and r["variant"] == vname]
            summary.append({"method": method, "variant": vname, "mean auroc": statistics.mean(v), "sd": statistics.pstdev(v),
                            "per seed": " ".join(f"{x:.3f}" for x in v)})
    print(markdown_table(summary, ["method", "variant", "mean auroc", "sd", "per seed"]))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
