"""Normal data of several modes: does the default score miss samples that lie between the modes?

A machine that runs in a few operating modes gives normal data in several clusters. The default
score of GANomaly, f-AnoGAN and β-VAEGAN (``knn_space='feature+input'``) adds the Mahalanobis
distance of D's features to their *one* mean (a Gaussian model, chosen on held-out MIT-BIH DS1
records and the MNIST training split, whose normal classes are one mode each) to a kNN distance among
the scaled inputs. A sample between two modes can be close to the features' mean while far from every
training sample. This synthetic check (no reference data; nothing is chosen on it) plants such samples
and compares the default, its two blocks alone, the Euclidean kNN in D's features, and PyOD-style KNN
on standardised inputs (the k-th of 5 nearest):

- normal: ``--modes`` Gaussian clusters (unit variance) in ``--dim`` dimensions, centres drawn with
  spread ``--spread``; ``--n-train`` rows per mode to train, 250 per mode to test;
- anomalous: 30 samples around each midpoint of two centres and around the centres' mean (sd
  ``--noise``).

    OMP_NUM_THREADS=1 python benchmarks/check_multimodal.py --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/check_multimodal.py --seeds 0 1 2 --dim 30 --spread 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, write_json  # noqa: E402

VARIANTS = {
    "default (feature+input)": {},
    "feature, Mahalanobis alone": {"knn_space": "feature", "knn_weight": 1.0},
    "feature, Euclidean kNN alone": {"knn_space": "feature", "knn_metric": "euclidean", "knn_weight": 1.0},
    "input kNN alone": {"knn_space": "input", "knn_weight": 1.0},
}


def data(seed: int, a):
    rs = np.random.RandomState(seed)
    centres = rs.randn(a.modes, a.dim) * a.spread
    Xtr = np.concatenate([c + rs.randn(a.n_train, a.dim) for c in centres]).astype(np.float32)
    Xn = np.concatenate([c + rs.randn(250, a.dim) for c in centres]).astype(np.float32)
    mids = [(centres[i] + centres[j]) / 2 for i in range(a.modes) for j in range(i + 1, a.modes)] + [centres.mean(0)]
    Xa = np.concatenate([m + a.noise * rs.randn(30, a.dim) for m in mids]).astype(np.float32)
    return Xtr, np.r_[Xn, Xa], np.r_[np.zeros(len(Xn)), np.ones(len(Xa))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--method", default="ganomaly")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--modes", type=int, default=4)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--spread", type=float, default=4.0)
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--out", default="check_multimodal.json")
    a = ap.parse_args(argv)
    import torch
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors
    import ganad
    torch.set_num_threads(1)
    res: dict[str, list[float]] = {}
    for seed in a.seeds:
        Xtr, X, y = data(seed, a)
        mu, sd = Xtr.mean(0), Xtr.std(0)
        nn = NearestNeighbors(n_neighbors=5).fit((Xtr - mu) / sd)
        res.setdefault("KNN (standardised inputs, k-th of 5)", []).append(roc_auc_score(y, nn.kneighbors((X - mu) / sd)[0][:, -1]))
        for name, kw in VARIANTS.items():
            det = ganad.DETECTORS[a.method](epochs=a.epochs, random_state=seed, verbose=False, **kw).fit(Xtr)
            res.setdefault(name, []).append(roc_auc_score(y, det.decision_function(X)))
        print(seed, {k: round(v[-1], 3) for k, v in res.items()}, flush=True)
    rows = [{"score": k, "AUROC": f"{statistics.mean(v):.3f} ± {statistics.pstdev(v):.3f}", "per seed": " ".join(f"{x:.3f}" for x in v)}
            for k, v in res.items()]
    print(markdown_table(rows, ["score", "AUROC", "per seed"]))
    write_json(a.out, {"args": vars(a), "auroc": res})


if __name__ == "__main__":
    main()
