"""A beat read against its own patient's recent beats, on MIT-BIH DS1 only (thirty-second session).

The beat view's inter-patient weakness (beat-only AUROC 0.75 on DS2, 0.88-0.89 on held-out DS1
records) is that a model of DS1 patients' beat shapes meets other patients' normal shapes. The
rhythm view does not have it because its features are relative to the patient's own rhythm (each RR
interval over the local mean RR). The morphological analogue: each beat minus a template of the same
record's recent beats, the element-wise median of the ``k`` beats before it (causal, label-free: every
preceding beat counts whatever its class, as a monitor sees them; the first beat of a record, with no
history, is its own template). Compared here with GANomaly at its defaults and a plain KNN (mean
distance to the 5 nearest training beats, inputs standardised on the training beats), on the same
splits as ``select_rhythm.py``: detectors train on N beats of the training records (at most
``--max-train``), every beat of the held-out records is scored, AUROC any class against N and N
against S, V, F. Inputs:

* ``raw``: the beat, (1, 256) (the library's beat view);
* ``diff``: the beat minus its template, (1, 256);
* ``both``: the two as channels, (2, 256).

Rule, written before the run: the template-relative input is worth a library feature (a next step,
with the rhythm view and DS2 reported after) if ``diff`` or ``both`` raises GANomaly's mean AUROC over
seeds 0-3 by at least 0.01 over ``raw`` (30 epochs, k = 8); otherwise it is reported as measured.

    OMP_NUM_THREADS=1 python benchmarks/select_beat_template.py --seeds 0 1 2 3 --epochs 30 --out sel32_template.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, shared_data, write_json  # noqa: E402


def knn_scores(train: np.ndarray, test: np.ndarray, k: int = 5) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors
    a, b = train.reshape(len(train), -1), test.reshape(len(test), -1)
    mu, sd = a.mean(0), a.std(0) + 1e-8
    nn = NearestNeighbors(n_neighbors=k).fit((a - mu) / sd)
    return nn.kneighbors((b - mu) / sd)[0].mean(1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--max-train", type=int, default=10000)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--out", default="select_beat_template.json")
    a = ap.parse_args(argv)
    from sklearn.metrics import roc_auc_score

    from ganad.benchmark.peers import _seed_torch, make_ganad
    from ganad.data import mitbih as mb, template_difference
    from select_rhythm import held_out_split, seed_cells  # the same splits, the same summary cells

    data = shared_data(a.data)
    if data is None:
        raise SystemExit("no MIT-BIH data: pass --data (the folder holding mitdb/) or set GANAD_SHARED_DATA")
    b = mb.load_mitbih(data / "mitdb" if (data / "mitdb").is_dir() else data, list(mb.DS1))
    D = template_difference(b.X, b.record, b.sample, k=a.k)  # (bit-equal to the script's own copy the rule's run used)
    inputs = {"raw": b.X, "diff": D, "both": np.concatenate([b.X, D], axis=1)}
    rows = []
    for seed in a.seeds:
        _, itr, iva = held_out_split(b, seed, a.max_train)
        cls = b.aami[iva]
        y = (cls != "N").astype(int)
        for name, X in inputs.items():
            for det in ("ganomaly", "knn"):
                t0 = time.perf_counter()
                if det == "knn":
                    s = knn_scores(X[itr], X[iva])
                else:
                    _seed_torch(seed)
                    s = np.asarray(make_ganad("ganomaly", seed, a.epochs).fit(X[itr]).decision_function(X[iva]), np.float64)
                row = {"seed": seed, "input": name, "detector": det, "auroc": roc_auc_score(y, s), "s": round(time.perf_counter() - t0, 1)}
                for c in "SVF":
                    k = np.isin(cls, ["N", c])
                    if (cls == c).sum() >= 10:
                        row[f"N-{c}"] = roc_auc_score(cls[k] == c, s[k])
                rows.append(row)
                print(f"seed {seed} {name} {det}: {row['auroc']:.3f} ({row['s']} s)", flush=True)
    table = []
    for det in ("ganomaly", "knn"):
        for name in inputs:
            rr = [r for r in rows if r["input"] == name and r["detector"] == det]
            table.append({"detector": det, "input": name,
                          **seed_cells([r["auroc"] for r in rr], {c: [r[f"N-{c}"] for r in rr if f"N-{c}" in r] for c in "SVF"})})
    print(markdown_table(table, list(table[0])))
    write_json(a.out, {"machine": machine(), "args": vars(a), "rows": rows, "table": table})


if __name__ == "__main__":
    main()
