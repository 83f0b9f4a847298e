"""The default score without the inversion pass it does not read (twentieth session).

Since the nineteenth session the default score of GANomaly, f-AnoGAN and β-VAEGAN is the ``knn``
component alone (``knn_space='feature+input'``, ``knn_weight`` 1): the discriminator's features of
x and x itself. ``decision_function`` still ran the inversion (E and G; AnoGAN's latent search)
for every batch and threw it away. It now skips it where the components asked for need none
(``BaseGANDetector._scores_without_inversion``). This measures the change on one fitted model per
method and shape, the two paths alternating round by round in one process (the "before" path is
the same code with the skip turned off), and checks that both give the same scores. A third
column times ``knn_space='feature'`` (with ``knn_weight='auto'`` = 0.75: the previous default, the
option for scoring-bound uses) on the same networks.

    OMP_NUM_THREADS=1 python benchmarks/bench_default_score.py --threads 1 --rounds 7

Shapes: MIT-BIH DS1 N beats when the shared data is there (else synthetic beats), a Gaussian table
of 20 features, 28 x 28 images (MNIST training images when there, else noise). Writes
benchmarks/out/default_score.json and prints a table (rows per second, median of the rounds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402


def shapes(data, n_train: int, n_score: int):
    import numpy as np
    from common import synthetic_beats
    rng = np.random.RandomState(0)
    if data is not None and (data / "mitdb").is_dir():
        from ganad.data.mitbih import DS1, load_mitbih
        b = load_mitbih(data / "mitdb", records=DS1)
        X = b.X[b.aami == "N"][rng.permutation(int((b.aami == "N").sum()))[: n_train + n_score]]
        yield "MIT-BIH DS1 beats", X[:n_train], X[n_train:]
    else:
        X = synthetic_beats(n_train + n_score)
        yield "synthetic beats", X[:n_train], X[n_train:]
    T = rng.randn(n_train + n_score, 20).astype(np.float32)
    yield "table, 20 features", T[:n_train], T[n_train:]
    if data is not None and (data / "mnist").is_dir():
        from ganad.data.mnist import load_mnist
        I, _ = load_mnist(data / "mnist", "train")
        I = (I[: n_train + n_score].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        yield "MNIST images", I[:n_train], I[n_train:]
    else:
        I = rng.rand(n_train + n_score, 1, 28, 28).astype(np.float32)
        yield "noise images", I[:n_train], I[n_train:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="ganomaly,fanogan,vaegan")
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-score", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="default_score.json")
    a = ap.parse_args(argv)
    import numpy as np
    import torch

    from ganad.detectors import DETECTORS
    from ganad.detectors.base import BaseGANDetector
    torch.set_num_threads(a.threads)
    real = BaseGANDetector._scores_without_inversion
    rows = []
    for shape, Xtr, Xs in shapes(shared_data(a.data), a.n_train, a.n_score):
        for m in a.methods.split(","):
            det = DETECTORS[m](epochs=1, random_state=0, verbose=False).fit(Xtr)
            # the previous default of these methods (the features' distance blended with the own score at
            # 0.75), for the cost of the default against it: the same networks, another bank and blend
            feat = DETECTORS[m](epochs=1, random_state=0, verbose=False, knn_space="feature").fit(Xtr)
            times: dict[str, list[float]] = {"with the inversion (before)": [], "without (now)": [], "feature": []}
            scores = {}
            for _ in range(a.rounds):
                for name in times:
                    BaseGANDetector._scores_without_inversion = real if not name.startswith("with ") else (lambda *_a, **_k: False)
                    t = time.perf_counter()
                    scores[name] = (feat if name == "feature" else det).decision_function(Xs)
                    times[name].append(time.perf_counter() - t)
            BaseGANDetector._scores_without_inversion = real
            before, after, fe = (statistics.median(v) for v in times.values())
            ratios = [b / w for b, w in zip(times["with the inversion (before)"], times["without (now)"])]
            vs_feature = [w / f for w, f in zip(times["without (now)"], times["feature"])]
            rows.append({"shape": shape, "method": m, "knn_space": det.knn_space_, "knn_weight": det._knn_weight_now(),
                         "before rows/s": round(len(Xs) / before), "now rows/s": round(len(Xs) / after),
                         "ratio (median of rounds)": round(statistics.median(ratios), 2),
                         "range": f"{min(ratios):.2f}-{max(ratios):.2f}",
                         "max |score difference|": float(np.max(np.abs(scores["without (now)"] - scores["with the inversion (before)"]))),
                         "knn_space='feature' (w 0.75) rows/s": round(len(Xs) / fe),
                         "time now / 'feature' (median of rounds)": round(statistics.median(vs_feature), 2)})
            print(markdown_table([rows[-1]], list(rows[-1])), flush=True)
    print(markdown_table(rows, list(rows[0])))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows})


if __name__ == "__main__":
    main()
