"""The end-to-end demo: leave-one-digit-out novelty detection on scikit-learn's bundled digits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ganad.files import output_set, write_text

#: what a demo writes in its output folder
DEMO_FILES = ("model", "metrics.json", "roc.png", "pr.png", "report.html")


def digits_novelty_split(digit: int = 0, seed: int = 0, test_fraction: float = 0.3):
    """Train on normal digits (all but ``digit``); validation and test hold out normal digits plus
    the novelty. Images of shape (n, 1, 8, 8), labels 1 = novelty. Nothing needs a download."""
    from sklearn.datasets import load_digits
    if not 0 <= digit <= 9:
        raise ValueError(f"digit: {digit} is not a digit. Fix: pass 0-9")
    d = load_digits()
    X = d.images.astype(np.float32)[:, None] / 16.0
    y = (d.target == digit).astype(np.int64)
    rng = np.random.RandomState(seed)
    normal = np.flatnonzero(y == 0)
    novel = np.flatnonzero(y == 1)
    rng.shuffle(normal)
    rng.shuffle(novel)
    n_test = int(len(normal) * test_fraction)
    n_val = n_test // 3
    test = np.r_[normal[:n_test], novel[: len(novel) // 2]]
    val = np.r_[normal[n_test:n_test + n_val], novel[len(novel) // 2:]]
    train = normal[n_test + n_val:]
    return (X[train],), (X[val], y[val]), (X[test], y[test])


def run_demo(output, *, digit=0, method="vaegan", epochs=40, seed=0, log=print) -> dict:
    from ganad.detectors import DETECTORS
    from ganad.info import describe, render
    from ganad.metrics import evaluate
    from ganad.report import pr_figure, roc_figure, save_png, write_report

    output = Path(output)
    (X_train,), (X_val, y_val), (X_test, y_test) = digits_novelty_split(digit, seed)
    cls = DETECTORS[method]
    params = {"epochs": epochs, "random_state": seed, "verbose": True}
    params = {k: v for k, v in params.items() if k in cls().get_params()}
    det = cls(**params)
    log(f"training {cls.__name__} on {len(X_train)} images of the digits other than {digit} ...")
    t0 = time.perf_counter()
    det.fit(X_train)
    fit_s = time.perf_counter() - t0
    # threshold from the validation set's normal samples only (no test labels): 5% false-positive rate,
    # set on the model itself (the score kept as fit composed it), so that the saved model flags what the report counts
    det.calibrate(X_val[y_val == 0], compose="weights", threshold="fpr", fpr=0.05)
    threshold = float(det.threshold_)
    t0 = time.perf_counter()
    r = det.score_components(X_test, return_map=True, return_reconstruction=True)
    score_s = time.perf_counter() - t0
    ev = evaluate(y_test, r.scores, threshold=threshold)
    metrics = {"auroc": ev.auroc, "auprc": ev.auprc, "f1": ev.f1, "mcc": ev.mcc, "precision": ev.precision,
               "recall": ev.recall, "threshold": threshold, "fit_seconds": fit_s, "score_seconds": score_s,
               "n_train": int(len(X_train)), "n_test": int(len(X_test)), "n_novel_test": int(y_test.sum())}
    top = np.argsort(-r.scores)[:6]
    examples = [{"x": X_test[i], "reconstruction": r.reconstruction[i], "map": r.map[i], "score": float(r.scores[i]),
                 "label": int(y_test[i]), "title": f"test #{i}", "kind": "image"} for i in top]
    # the model, metrics, plots and report go into a temporary folder and replace the output as one set: a
    # run interrupted or failing half-way leaves the earlier run's folder whole, never the two mixed
    with output_set(output, DEMO_FILES) as tmp:
        det.save(tmp / "model")
        write_text(tmp / "metrics.json", json.dumps(metrics, indent=2))
        save_png(roc_figure(y_test, r.scores, threshold), tmp / "roc.png")
        save_png(pr_figure(y_test, r.scores, threshold), tmp / "pr.png")
        write_report(tmp / "report.html", title=f"ganad demo: {cls.__name__}, novelty = digit {digit}", scores=r.scores,
                     labels=y_test, threshold=threshold, history=det.history_, examples=examples,
                     notes=[f"Trained on {len(X_train)} images of the digits other than {digit}; threshold at a 5% false-positive "
                            f"rate on held-out normal validation images (no test labels used). Fit {fit_s:.1f}s, scoring {score_s:.1f}s.",
                            "What the model chose (ganad info model/):", *render(describe(det))])
    return {"metrics": metrics, "detector": det}
