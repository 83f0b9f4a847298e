"""Would the validation data choose a DeepSVDD-style score beside ganad's default on MIT-BIH beats?

On the inter-patient test split (DS2) PyOD's DeepSVDD leads every beat-only detector (benchmarks/
RESULTS.md), and held-out DS1 records do not choose it alone (``mitbih_validation_peers.py``). This
script asks the next question on validation data only: does the *blend* of the two (each standardised
by median / MAD on GANomaly's own held-out slice of the training beats, then averaged) beat GANomaly's
default score on DS1 records held out by patient (``ds1_validation``)? DS2 is never read.

Rule, written before the first run: an SVDD-style component is worth building into ganad only if the
blend's mean AUROC over the seeds is higher than the default's by at least 0.005 and the blend is
worse on at most one seed.

    OMP_NUM_THREADS=1 python benchmarks/check_svdd_blend.py --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ds1_validation, markdown_table, shared_data, write_json  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder holding mitdb/ (default: $GANAD_SHARED_DATA or ../shared/data)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--epochs", type=int, default=10, help="GANomaly's and DeepSVDD's epochs")
    ap.add_argument("--max-train", type=int, default=10000)
    ap.add_argument("--out", default="check_svdd_blend.json", help="file name under benchmarks/out/")
    a = ap.parse_args(argv)
    import torch
    from sklearn.metrics import roc_auc_score

    import ganad
    from ganad.benchmark.peers import _seed_torch, make_peer
    from ganad.data import mitbih as mb
    from ganad.scoring.composition import robust_location_scale
    torch.set_num_threads(1)
    data = shared_data(a.data)
    if data is None:
        sys.exit("check_svdd_blend: no data folder; pass --data /path/holding/mitdb or set GANAD_SHARED_DATA")
    b1 = mb.load_mitbih(data / "mitdb", mb.DS1)

    def z(ref, x):
        loc, scale = robust_location_scale(np.asarray(ref, dtype=np.float64)[:, None])
        return (np.asarray(x, dtype=np.float64) - loc[0]) / scale[0]

    rows = []
    for seed in a.seeds:
        _, _, tr, va = ds1_validation(b1, seed, a.max_train)
        Xtr, Xva, y = b1.X[tr], b1.X[va], (b1.aami[va] != "N").astype(int)
        det = ganad.DETECTORS["ganomaly"](epochs=a.epochs, random_state=seed, verbose=False).fit(Xtr)
        vi = np.asarray(det.validation_index_)
        fit_rows = np.setdiff1d(np.arange(len(Xtr)), vi)  # the rows GANomaly trained on; DeepSVDD gets the same
        g_ref, g_va = det.decision_function(Xtr[vi]), det.decision_function(Xva)
        F = Xtr.reshape(len(Xtr), -1)
        mu, sd = F[fit_rows].mean(0), F[fit_rows].std(0) + 1e-8  # standardised per time step, as the benchmark's peers

        def Z(A):
            return (A.reshape(len(A), -1) - mu) / sd

        _seed_torch(seed)
        svdd = make_peer("deepsvdd", seed, a.epochs, F.shape[1]).fit(Z(Xtr[fit_rows]))
        s_ref, s_va = svdd.decision_function(Z(Xtr[vi])), svdd.decision_function(Z(Xva))
        row = {"seed": seed, "GANomaly default": roc_auc_score(y, g_va), "DeepSVDD": roc_auc_score(y, s_va),
               "mean of the two z": roc_auc_score(y, (z(g_ref, g_va) + z(s_ref, s_va)) / 2)}
        rows.append(row)
        print(markdown_table([row], list(row)), flush=True)
    cols = ["GANomaly default", "DeepSVDD", "mean of the two z"]
    summary = [{"score": c, "AUROC": f"{np.mean([r[c] for r in rows]):.3f} ± {np.std([r[c] for r in rows]):.3f}",
                "per seed": " ".join(f"{r[c]:.3f}" for r in rows)} for c in cols]
    print(markdown_table(summary, ["score", "AUROC", "per seed"]))
    gain = np.mean([r["mean of the two z"] - r["GANomaly default"] for r in rows])
    worse = sum(r["mean of the two z"] < r["GANomaly default"] for r in rows)
    print(f"blend - default: {gain:+.4f} mean, worse on {worse} of {len(rows)} seeds -> "
          + ("the rule holds" if gain >= 0.005 and worse <= 1 else "the rule does not hold: not pursued"))
    write_json(a.out, {"rows": rows, "summary": summary, "seeds": a.seeds, "epochs": a.epochs, "max_train": a.max_train})


if __name__ == "__main__":
    main()
