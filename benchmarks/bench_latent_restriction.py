"""Latent restriction (issue 4): do bounded priors and the latent-norm component change detection?

For each prior (standard normal; uniform on [-1, 1]; normal truncated to [-2, 2]) AnoGAN is
trained on normal data and the test set is scored with: the default score ((1-λ)·residual +
λ·feature matching), the latent-norm component alone (deviation of ‖z*‖ from the prior's
most likely norm), and the label-free robust composition (median/MAD of the *training*
components) of residual + feature + latent_norm. AUROC from continuous scores, mean ± sd over
seeds. Data: ADBench datasets from the reference data (--data or $GANAD_SHARED_DATA or
../shared/data), 60 % of the normal samples train, the rest + all anomalies test; falls back
to scikit-learn's breast-cancer set when the reference data is absent.

    python benchmarks/bench_latent_restriction.py --datasets cardio,thyroid,WBC --seeds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402

from ganad import AnoGAN  # noqa: E402
from ganad.metrics import auroc  # noqa: E402
from ganad.scoring.composition import RobustStandardised  # noqa: E402

PRIORS = ["normal", "uniform", "truncated_normal"]


def datasets(data, names):
    if data is not None and (data / "adbench").is_dir():
        from ganad.data.tabular import load_adbench
        for name in names:
            X, y = load_adbench(data / "adbench", name)
            yield name, X, y
    else:
        from sklearn.datasets import load_breast_cancer
        X, y = load_breast_cancer(return_X_y=True)
        yield "breast_cancer (sklearn)", X.astype(np.float32), (y == 0).astype(np.int64)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--datasets", default="cardio,thyroid,WBC")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--n-max", type=int, default=100)
    args = ap.parse_args(argv)
    rows = []
    for name, X, y in datasets(shared_data(args.data), args.datasets.split(",")):
        for prior in PRIORS:
            res = {"default": [], "latent_norm": [], "robust(res+feat+latent)": []}
            t0 = time.perf_counter()
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                normal = rng.permutation(np.flatnonzero(y == 0))
                n_tr = int(0.6 * len(normal))
                tr, te = normal[:n_tr], np.r_[normal[n_tr:], np.flatnonzero(y == 1)]
                det = AnoGAN(epochs=args.epochs, prior=prior, search_n_max=args.n_max, random_state=seed).fit(X[tr])
                train_c = det.score_components(X[tr]).components
                r = det.score_components(X[te])
                comp = RobustStandardised.fit(train_c, names=["residual", "feature", "latent_norm"])
                res["default"].append(auroc(y[te], r.scores))
                res["latent_norm"].append(auroc(y[te], r.components["latent_norm"]))
                res["robust(res+feat+latent)"].append(auroc(y[te], comp(r.components)))
            row = {"dataset": name, "prior": prior, "seconds": time.perf_counter() - t0}
            row.update({k: f"{np.mean(v):.3f} ± {np.std(v):.3f}" for k, v in res.items()})
            rows.append(row)
            print(row, flush=True)
    cols = ["dataset", "prior", "default", "latent_norm", "robust(res+feat+latent)", "seconds"]
    p = write_json("latent_restriction.json", {"machine": machine(), "rows": rows, "command": "python " + " ".join(sys.argv)})
    print(markdown_table(rows, cols))
    print("wrote", p)


if __name__ == "__main__":
    main()
