"""Choose the rhythm view's features and how its score joins the beat's, on MIT-BIH DS1 only.

The rhythm view (``ganad benchmark mitbih --rhythm``) trains a second detector of the same method
on RR-interval features and adds the two scores, each robust-standardised on normal beats. Compared
here, on DS1 records only (DS2 is never read), with one beat detector per method and seed:

* ``three, sum``: ``rhythm_features(rr[:, :3])`` (log prev/local, log next/local, log prev/next),
  the z-scores summed (the protocol until the sixth session);
* ``four, sum``: the same plus the local RR spread / local mean RR (``rhythm_features(rr)``);
* ``three, max`` / ``four, max``: the larger of the two z-scores instead of their sum.

Validation sets: ``mitbih_split(DS1, seed, 0.3)``: detectors train on N beats of the training
records (at most ``--max-train``), every beat of the held-out records is scored; the two views'
scores are standardised by median / MAD on the held-out records' N beats (the benchmark uses the
held-out calibration records' N beats the same way). AUROC: any class against N, and N against
S, V, F (where a set holds ≥ 10 of the class).

    OMP_NUM_THREADS=1 python benchmarks/select_rhythm.py --seeds 0 1 2 3 --methods fanogan,ganomaly --epochs 10

``--beat-params`` / ``--rhythm-params`` (nineteenth session): JSON parameter sets of the beat and the
rhythm detector to compare (each fitted once per seed and method); every pair is scored, as
``"<features>, sum [beat <i> | rhythm <j>]"`` (the i-th and j-th sets). For example the knn space
of each view, the default ``'feature+input'`` against the previous ``'feature'``:

    OMP_NUM_THREADS=1 python benchmarks/select_rhythm.py --seeds 0 1 2 3 --methods fanogan --features four \
        --beat-params '{}' '{"knn_space": "feature"}' --rhythm-params '{}' '{"knn_space": "feature"}'
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402

VARIANTS = ("three, sum", "four, sum", "three, max", "four, max")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder holding mitdb/ (default: the shared data folder)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--methods", default="fanogan,ganomaly")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--max-train", type=int, default=10000)
    ap.add_argument("--out", default="select_rhythm.json")
    ap.add_argument("--features", default="three,four", help="rhythm feature sets: three, four or both (default)")
    ap.add_argument("--beat-params", nargs="+", default=["{}"], help="JSON parameter sets of the beat detector to compare")
    ap.add_argument("--rhythm-params", nargs="+", default=["{}"], help="JSON parameter sets of the rhythm detector to compare")
    a = ap.parse_args(argv)
    import json
    beat_sets = [json.loads(p) for p in a.beat_params]
    rhythm_sets = [json.loads(p) for p in a.rhythm_params]
    pairs = [(i, j) for i in range(len(beat_sets)) for j in range(len(rhythm_sets))]

    def label(v, i, j):
        return v if len(pairs) == 1 else f"{v} [beat {i} | rhythm {j}]"
    from sklearn.metrics import roc_auc_score

    from ganad.benchmark.mitbih import mitbih_split
    from ganad.benchmark.peers import _seed_torch, make_ganad
    from ganad.data import mitbih as mb
    from ganad.scoring.composition import RobustStandardised

    data = shared_data(a.data)
    if data is None:
        raise SystemExit("no MIT-BIH data: pass --data (the folder holding mitdb/) or set GANAD_SHARED_DATA")
    b = mb.load_mitbih(data / "mitdb" if (data / "mitdb").is_dir() else data, list(mb.DS1), rr_features=True)
    feats = {"three": mb.rhythm_features(b.rr[:, :3]), "four": mb.rhythm_features(b.rr)}
    feats = {k: v for k, v in feats.items() if k in a.features.split(",")}
    rows = []
    for seed in a.seeds:
        tr_recs, va_recs = mitbih_split(list(mb.DS1), seed, 0.3)
        rng = np.random.RandomState(seed)
        itr = np.flatnonzero(np.isin(b.record, tr_recs) & (b.aami == "N"))
        if a.max_train and len(itr) > a.max_train:
            itr = np.sort(rng.choice(itr, a.max_train, replace=False))
        iva = np.flatnonzero(np.isin(b.record, va_recs))
        cls = b.aami[iva]
        y = (cls != "N").astype(int)
        normal = cls == "N"
        for m in a.methods.split(","):
            t0 = time.perf_counter()
            beats = []
            for bp in beat_sets:
                _seed_torch(seed)
                beats.append(np.asarray(make_ganad(m, seed, a.epochs).set_params(**bp).fit(b.X[itr]).decision_function(b.X[iva]), np.float64))
            row = {"seed": seed, "method": m, "counts": {c: int((cls == c).sum()) for c in "NSVFQ"}}
            for i in range(len(beat_sets)):
                row[f"beat only [beat {i}]" if len(beat_sets) > 1 else "beat only"] = roc_auc_score(y, beats[i])
            for fname, F in feats.items():
                for j, rp in enumerate(rhythm_sets):
                    _seed_torch(seed)
                    rh = np.asarray(make_ganad(m, seed, a.epochs).set_params(**rp).fit(F[itr]).decision_function(F[iva]), np.float64)
                    row[f"{fname}, rhythm only [rhythm {j}]" if len(rhythm_sets) > 1 else f"{fname}, rhythm only"] = roc_auc_score(y, rh)
                    for i, beat in enumerate(beats):
                        z = RobustStandardised.fit({"beat": beat[normal], "rhythm": rh[normal]}, names=["beat", "rhythm"]).standardise(
                            {"beat": beat, "rhythm": rh})
                        for comb, sc in (("sum", z.sum(1)), ("max", z.max(1))):
                            v = label(f"{fname}, {comb}", i, j)
                            row[v] = roc_auc_score(y, sc)
                            for c in "SVF":
                                k = np.isin(cls, ["N", c])
                                if (cls == c).sum() >= 10:
                                    row[f"{v} N-{c}"] = roc_auc_score(cls[k] == c, sc[k])
            rows.append(row)
            print(f"seed {seed} {m} ({time.perf_counter() - t0:.0f} s): "
                  + ", ".join(f"{v} {row[v]:.3f}" for v in row if isinstance(row[v], float) and " N-" not in v), flush=True)
    table = []
    for m in a.methods.split(","):
        rr = [r for r in rows if r["method"] == m]
        for v in [k for k in rr[0] if isinstance(rr[0][k], float) and " N-" not in k]:
            vals = [r[v] for r in rr]
            per = {c: np.mean([r[f"{v} N-{c}"] for r in rr if f"{v} N-{c}" in r]) if any(f"{v} N-{c}" in r for r in rr) else float("nan")
                   for c in "SVF"}
            table.append({"method": m, "variant": v, "auroc": f"{np.mean(vals):.3f} ± {np.std(vals):.3f}",
                          "per seed": " ".join(f"{x:.3f}" for x in vals),
                          **{f"N vs {c}": f"{per[c]:.3f}" for c in "SVF"}})
    print(markdown_table(table, list(table[0])))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows, "table": table})


if __name__ == "__main__":
    main()
