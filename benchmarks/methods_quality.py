"""The small "Measured quality" tables of docs/methods.md, with today's defaults.

Breast cancer (scikit-learn ``load_breast_cancer``, benign = normal): the benign rows shuffled with
seed 0, the first 250 train, the other 107 benign and all 212 malignant are scored; ``width=32,
latent_dim=8, batch_size=32``, one thread, ``random_state`` 0, 1, 2. Digits (``load_digits``, 8 x 8
images, DCGAN family): the first 120 zeros train, the other 58 zeros and the first 300 other digits
are scored; ``width=16, latent_dim=8``, ``random_state=0``, 30 and 200 epochs.

    OMP_NUM_THREADS=1 python benchmarks/methods_quality.py            # a few minutes on one core

Prints the tables (AUROC of the default score) and writes benchmarks/out/methods_quality.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, write_json  # noqa: E402

#: method -> the epochs of the breast-cancer table
TABLE_EPOCHS = {"anogan": {"epochs": 30}, "fanogan": {"epochs": 20, "encoder_epochs": 20}, "bigan": {"epochs": 30}, "alad": {"epochs": 40},
                "ganomaly": {"epochs": 30}, "vaegan": {"epochs": 30}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--digit-epochs", type=int, nargs="+", default=[30, 200])
    ap.add_argument("--out", default="methods_quality.json")
    a = ap.parse_args(argv)
    import numpy as np
    import torch
    from sklearn.datasets import load_breast_cancer, load_digits

    import ganad
    from ganad.metrics import auroc
    torch.set_num_threads(1)
    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)
    normal, anomalous = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    np.random.RandomState(0).shuffle(normal)
    tr, te = normal[:250], np.r_[normal[250:], anomalous]
    lab = np.r_[np.zeros(len(normal) - 250), np.ones(len(anomalous))]
    rows = []
    for m, ep in TABLE_EPOCHS.items():
        got = [auroc(lab, ganad.DETECTORS[m](width=32, latent_dim=8, batch_size=32, random_state=s, verbose=False, **ep)
                     .fit(X[tr]).decision_function(X[te])) for s in a.seeds]
        rows.append({"method": m, "epochs": " + ".join(str(v) for v in ep.values()), "AUROC": ", ".join(f"{v:.3f}" for v in got),
                     "mean": round(float(np.mean(got)), 3)})
        print(markdown_table([rows[-1]], list(rows[-1])), flush=True)
    D, t = load_digits(return_X_y=True)
    D = D.astype(np.float32).reshape(-1, 1, 8, 8)
    zeros, other = np.flatnonzero(t == 0), np.flatnonzero(t != 0)
    dtr, dte = zeros[:120], np.r_[zeros[120:], other[:300]]
    dlab = np.r_[np.zeros(len(zeros) - 120), np.ones(300)]
    digits = []
    for epochs in a.digit_epochs:
        row = {"epochs": epochs}
        for m in TABLE_EPOCHS:
            kw = {"epochs": epochs, **({"encoder_epochs": epochs} if m == "fanogan" else {})}
            det = ganad.DETECTORS[m](width=16, latent_dim=8, random_state=0, verbose=False, **kw).fit(D[dtr])
            row[m] = round(auroc(dlab, det.decision_function(D[dte])), 3)
        digits.append(row)
        print(markdown_table([row], list(row)), flush=True)
    print(markdown_table(rows, list(rows[0])))
    print(markdown_table(digits, list(digits[0])))
    write_json(a.out, {"machine": machine(), "args": vars(a), "breast_cancer": rows, "digits": digits})


if __name__ == "__main__":
    main()
