"""Two label-free ideas checked on validation data only (twenty-eighth session; nothing was adopted).

``beat-norm``: does normalising each MIT-BIH beat before the per-time-step scaling help a distance
detector across patients? PyOD-style KNN (the k-th of 5 nearest, standardised inputs) trained on N
beats of DS1 training records, scored on DS1 records held out by patient (``ds1_validation``);
each beat as it is, minus its median, z-scored, or minus its median over its largest deviation.

``silhouette``: can a k-means silhouette (the best over k = 2..8, on at most 4,096 scaled training
rows) tell normal data of several modes (the synthetic tables of ``check_multimodal.py``, where the
default score's feature block fails) from the training data the default was chosen on (DS1 N beats,
MNIST digits)? Training data only; no labels are read.

    OMP_NUM_THREADS=1 python benchmarks/check_validation_probes.py beat-norm --seeds 0 1 2 3 4
    OMP_NUM_THREADS=1 python benchmarks/check_validation_probes.py silhouette
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ds1_validation, markdown_table, shared_data, write_json  # noqa: E402

NORMS = ("as is", "minus median", "z-score", "median, largest deviation")


def normalise(X: np.ndarray, how: str) -> np.ndarray:
    if how == "as is":
        return X
    if how == "minus median":
        return X - np.median(X, 1, keepdims=True)
    if how == "z-score":
        return (X - X.mean(1, keepdims=True)) / (X.std(1, keepdims=True) + 1e-6)
    m = np.median(X, 1, keepdims=True)
    return (X - m) / (np.abs(X - m).max(1, keepdims=True) + 1e-6)


def beat_norm(data: Path, seeds) -> list[dict]:
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    from ganad.data import mitbih as mb
    b1 = mb.load_mitbih(data / "mitdb", mb.DS1)
    res: dict[str, list[float]] = {h: [] for h in NORMS}
    for seed in seeds:
        _, _, tr, va = ds1_validation(b1, seed, 10000)
        y = b1.aami[va] != "N"
        for how in NORMS:
            Xtr = normalise(b1.X[tr].reshape(len(tr), -1).astype(np.float64), how)
            Xva = normalise(b1.X[va].reshape(len(va), -1).astype(np.float64), how)
            mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-8
            d, _ = NearestNeighbors(n_neighbors=5).fit((Xtr - mu) / sd).kneighbors((Xva - mu) / sd)
            res[how].append(float(roc_auc_score(y, d[:, -1])))
        print(seed, {h: round(v[-1], 3) for h, v in res.items()}, flush=True)
    return [{"beat": h, "KNN AUROC": f"{np.mean(v):.3f} ± {np.std(v):.3f}", "per seed": " ".join(f"{x:.3f}" for x in v)}
            for h, v in res.items()]


def best_silhouette(X: np.ndarray, seed: int = 0) -> tuple[int, float]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    X = X[np.random.RandomState(seed).permutation(len(X))[:4096]].astype(np.float64)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    sil = {k: float(silhouette_score(X, KMeans(k, n_init=3, random_state=seed).fit_predict(X), sample_size=min(2000, len(X)),
                                     random_state=seed)) for k in range(2, 9)}
    k = max(sil, key=sil.get)
    return k, sil[k]


def silhouette(data: Path) -> list[dict]:
    from check_multimodal import data as multimodal

    from ganad.data import mitbih as mb
    from ganad.data.mnist import load_mnist
    rows = []

    def add(name, X, seed=0):
        k, s = best_silhouette(X, seed)
        rows.append({"training data": name, "best k": k, "silhouette": round(s, 3)})
        print(rows[-1], flush=True)

    for dim, spread in ((10, 4.0), (30, 2.0)):
        for seed in range(3):
            Xtr, _, _ = multimodal(seed, SimpleNamespace(modes=4, dim=dim, spread=spread, noise=0.5, n_train=1000))
            add(f"4 modes, {dim} dims, spread {spread:g}, seed {seed}", Xtr, seed)
    b1 = mb.load_mitbih(data / "mitdb", mb.DS1)
    for seed in range(3):
        _, _, tr, _ = ds1_validation(b1, seed, 10000)
        add(f"DS1 N beats, training records of seed {seed}", b1.X[tr].reshape(len(tr), -1), seed)
    X, y = load_mnist(data / "mnist", "train")
    for d in range(10):
        own = np.flatnonzero(y == d)
        add(f"MNIST digit {d}", X[own].reshape(len(own), -1).astype(np.float32) / 255.0)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("probe", choices=["beat-norm", "silhouette"])
    ap.add_argument("--data", default=None, help="folder holding mitdb/ and mnist/ (default: $GANAD_SHARED_DATA or ../shared/data)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    a = ap.parse_args(argv)
    data = shared_data(a.data)
    if data is None:
        sys.exit("check_validation_probes: no data folder; pass --data or set GANAD_SHARED_DATA")
    rows = beat_norm(data, a.seeds) if a.probe == "beat-norm" else silhouette(data)
    print(markdown_table(rows, list(rows[0])))
    write_json(f"check_validation_probes_{a.probe}.json", {"rows": rows, "args": vars(a)})


if __name__ == "__main__":
    main()
