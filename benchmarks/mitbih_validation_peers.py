"""The MIT-BIH beat-only peers on *validation* data: do they rank on held-out DS1 records as on DS2?

On the inter-patient test split (DS2) PyOD's DeepSVDD leads every beat-only detector (0.818 against
KNN's 0.728 and ganad's 0.73; benchmarks/RESULTS.md), and it owes the lead to S beats (N vs S 0.83
where every distance- or reconstruction-based detector is below 0.45). A default may only be chosen
on training or validation data, so before building anything DeepSVDD-like into ganad this script
asks whether the validation data would choose it: per seed, 7 DS1 records are held out by patient
(``mitbih_split(DS1, seed, 0.3)``, as ``select_defaults.py`` and ``select_knn_space.py``), the
detectors train on up to ``--max-train`` N beats of the other 15 and score every beat of the
held-out records. DS2 is never read.

Detectors: PyOD KNN and DeepSVDD with the benchmark's settings (``ganad.benchmark.peers``; inputs
standardised per time step on the training beats, as the benchmark gives them), and the
Mahalanobis distance to the training beats' mean (Ledoit-Wolf) on the standardised beats, in full and
on their top 16 / 64 principal directions (what a whitened input-space component would measure).

    OMP_NUM_THREADS=1 python benchmarks/mitbih_validation_peers.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, shared_data, write_json  # noqa: E402


def scores(name: str, Ztr: np.ndarray, Zva: np.ndarray, seed: int, epochs: int) -> np.ndarray:
    from sklearn.covariance import LedoitWolf
    from sklearn.decomposition import PCA
    from ganad.benchmark.peers import _seed_torch, make_peer
    if name in ("knn", "deepsvdd"):
        _seed_torch(seed)
        return make_peer(name, seed, epochs, Ztr.shape[1]).fit(Ztr).decision_function(Zva)
    if name == "mahalanobis":
        return LedoitWolf().fit(Ztr).mahalanobis(Zva)
    k = int(name.rsplit("pca", 1)[1])
    p = PCA(k, random_state=seed).fit(Ztr)
    return LedoitWolf().fit(p.transform(Ztr)).mahalanobis(p.transform(Zva))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder holding mitdb/ (default: $GANAD_SHARED_DATA or ../shared/data)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-train", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=10, help="DeepSVDD's epochs (the benchmark's peer epochs)")
    ap.add_argument("--detectors", default="knn,deepsvdd,mahalanobis,mahalanobis pca16,mahalanobis pca64")
    ap.add_argument("--out", default="mitbih_validation_peers.json", help="file name under benchmarks/out/")
    a = ap.parse_args(argv)
    from sklearn.metrics import roc_auc_score
    from ganad.benchmark.mitbih import mitbih_split
    from ganad.data import mitbih as mb
    data = shared_data(a.data)
    if data is None:
        sys.exit("mitbih_validation_peers: no data folder; pass --data /path/holding/mitdb or set GANAD_SHARED_DATA")
    b1 = mb.load_mitbih(data / "mitdb", mb.DS1)
    names = [d.strip() for d in a.detectors.split(",")]
    rows = []
    for seed in a.seeds:
        tr_recs, val_recs = mitbih_split(mb.DS1, seed, cal_fraction=0.3)
        rng = np.random.RandomState(seed)
        tr = np.flatnonzero(np.isin(b1.record, tr_recs) & (b1.aami == "N"))
        tr = rng.permutation(tr)[:a.max_train] if a.max_train else tr
        va = np.flatnonzero(np.isin(b1.record, val_recs))
        Xtr, Xva, aami = b1.X[tr].reshape(len(tr), -1), b1.X[va].reshape(len(va), -1), b1.aami[va]
        mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-8
        Ztr, Zva = (Xtr - mu) / sd, (Xva - mu) / sd
        for name in names:
            s = scores(name, Ztr, Zva, seed, a.epochs)
            row = {"seed": seed, "detector": name, "held_out_records": " ".join(sorted(val_recs)),
                   "auroc": float(roc_auc_score(aami != "N", s))}
            for c in "SVF":
                m = (aami == "N") | (aami == c)
                row[f"N_vs_{c}"] = float(roc_auc_score(aami[m] == c, s[m])) if (aami[m] == c).sum() >= 20 else float("nan")
            rows.append(row)
            print(f"seed {seed} {name:22s} AUROC {row['auroc']:.3f}  N/S {row['N_vs_S']:.3f}  N/V {row['N_vs_V']:.3f}  N/F {row['N_vs_F']:.3f}", flush=True)
    agg = []
    for name in names:
        r = [x for x in rows if x["detector"] == name]
        out = {"detector": name}
        for k in ("auroc", "N_vs_S", "N_vs_V", "N_vs_F"):
            v = np.array([x[k] for x in r], dtype=float)
            v = v[np.isfinite(v)]
            out[k] = f"{v.mean():.3f} ± {v.std():.3f}" if v.size else "—"
        out["per seed AUROC"] = " ".join(f"{x['auroc']:.3f}" for x in r)
        agg.append(out)
    print(markdown_table(agg, list(agg[0])))
    write_json(a.out, {"rows": rows, "summary": agg, "seeds": a.seeds, "max_train": a.max_train})


if __name__ == "__main__":
    main()
