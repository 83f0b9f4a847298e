"""What the knn component's space costs at scoring time: ``decision_function`` on 1,000 samples with
the bank of codes (``knn_space='code'``), of discriminator features (``'feature'``, compressed
as the library keeps it, Euclidean k nearest) and the features' Mahalanobis distance to their mean
(``knn_metric='mahalanobis'``, the default in the feature space since the fifth session) and
the mean of that and the inputs' Euclidean k nearest (``'feature+input'``, the default of GANomaly,
f-AnoGAN and β-VAEGAN since the nineteenth session), on the same trained networks (only the bank changes), alternating them in every round; median over
rounds, and the ratio to the code bank per round.

Models: GANomaly and f-AnoGAN on 256-sample beats (MIT-BIH DS1 N beats when the reference data is
found, else synthetic), GANomaly on a synthetic table of 6,000 rows × 20 correlated features, and
GANomaly on MNIST digit 0 (when found), trained briefly: the cost of
scoring does not depend on how well they are trained.

    OMP_NUM_THREADS=1 python benchmarks/bench_knn_space.py --rounds 15
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
from bench_latent_search import load_beats  # noqa: E402
from common import machine, markdown_table, shared_data, write_json  # noqa: E402

import ganad  # noqa: E402


#: variant -> (knn_space, knn_metric)
VARIANTS = {"code": ("code", "euclidean"), "feature": ("feature", "euclidean"), "feature, mahalanobis": ("feature", "mahalanobis"),
            "feature+input": ("feature+input", "auto")}


def rebuild(det, X, variant):
    det.knn_space, det.knn_metric = VARIANTS[variant]
    det._refit_knn(X)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data", default=None)
    a = ap.parse_args(argv)
    data = shared_data(a.data)
    beats = load_beats(data, 6000, 1, 0)[0]  # DS1 N beats (or synthetic)
    rng = np.random.RandomState(0)
    table = (rng.randn(6000, 20) @ rng.randn(20, 20)).astype(np.float32)
    models = [("beats", "ganomaly", beats), ("beats", "fanogan", beats), ("table, 20 features", "ganomaly", table)]
    if data is not None and (data / "mnist").is_dir():
        from ganad.data.mnist import load_mnist
        Xm, ym = load_mnist(data / "mnist", "train")
        models.append(("MNIST digit 0", "ganomaly", (Xm[ym == 0][:5000].astype(np.float32) / 255).reshape(-1, 1, 28, 28)))
    rows = []
    for data_name, method, X in models:
        det = ganad.DETECTORS[method](epochs=2, random_state=0).fit(X)
        Q = X[: a.n]
        times = {v: [] for v in VARIANTS}
        dims = {}
        for space in times:  # warm-up, dims
            rebuild(det, X, space)
            det.decision_function(Q)
            dims[space] = tuple(det.knn_bank_.shape)
        ratios = []
        for _ in range(a.rounds):
            t = {}
            for space in times:
                rebuild(det, X, space)
                det.decision_function(Q[:8])
                t0 = time.perf_counter()
                det.decision_function(Q)
                t[space] = time.perf_counter() - t0
                times[space].append(t[space])
            ratios.append({v: t[v] / t["code"] for v in VARIANTS})
        row = {"data": data_name, "method": method, **{f"bank width {v}": dims[v] for v in VARIANTS},
               **{f"ms per 1000, {v}": 1000 * statistics.median(times[v]) * 1000 / a.n for v in VARIANTS},
               **{f"{v} / code (median of rounds)": statistics.median(r[v] for r in ratios) for v in VARIANTS if v != "code"}}
        rows.append(row)
        print(markdown_table([row], list(row)), flush=True)
    print(markdown_table(rows, list(rows[0])))
    write_json("knn_space_cost.json", {"machine": machine(), "args": vars(a), "threads": torch.get_num_threads(), "rows": rows})


if __name__ == "__main__":
    main()
