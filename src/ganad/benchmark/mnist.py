"""The one-class MNIST protocol: per digit, train on that digit; see :func:`run_mnist`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from ganad.benchmark.environment import resolve_data_dir
from ganad.benchmark.runner import _base, _methods_plan, _metrics, _record, _secs, _subsample, _variant_metrics, run_one
from ganad.benchmark.summary import _per_unit, _summary_units
from ganad.exceptions import InputError, _fmt
from ganad.params import is_int


def run_mnist(data, *, methods=None, peers=None, seed: int = 0, digits: Iterable[int] = range(10),
              max_train: int | None = 2000, max_test: int | None = 2000, epochs: int | None = 30, peer_epochs: int = 20,
              log: Callable = print) -> dict:
    """One-class MNIST: per digit, train on that digit's training images, test on the test set (anomaly = other digits).
    Pixels scaled to [0, 1] for every method; ganad gets (n, 1, 28, 28) images, peers 784-d vectors."""
    from ganad.data.mnist import load_mnist
    digits = list(digits)
    if not digits or any(not is_int(d) or not 0 <= d <= 9 for d in digits) \
            or len(set(digits)) != len(digits):
        raise InputError(_fmt("--digits", f"is {digits!r}", "pass distinct digits from 0 to 9, e.g. 0,1,2"))
    digits = [int(d) for d in digits]
    directory = resolve_data_dir(data, "mnist")
    plan, notes = _methods_plan(methods, peers, log, epochs, peer_epochs)
    Xtr_all, ytr_all = load_mnist(directory, "train")
    Xte_all, yte_all = load_mnist(directory, "test")
    rng = np.random.RandomState(seed)
    te = _subsample(len(yte_all), max_test, rng, yte_all)  # one test subsample for every digit
    Xte = (Xte_all[te].astype(np.float32) / 255.0)
    res = _base("mnist", seed, [m for k, m in plan if k == "ganad"], [m for k, m in plan if k == "peer"], epochs, peer_epochs,
                digits=digits, max_train=max_train, max_test=max_test)
    res["notes"] = notes + [f"train: per digit, a random subsample of at most {max_train} of its training images; "
                            f"test: {len(te)} test images" + (f" (class-stratified random subsample of {len(yte_all)})" if len(te) < len(yte_all) else "")
                            + ", the same for every digit; pixels / 255; no threshold (ranking metrics only)"]
    rows = []
    for d in digits:
        idx = np.flatnonzero(ytr_all == d)
        idx = idx[_subsample(len(idx), max_train, rng)]
        Xtr = Xtr_all[idx].astype(np.float32) / 255.0
        y = (yte_all[te] != d).astype(np.int64)
        log(f"mnist digit {d}: train {len(idx)}, test {len(te)} ({int(y.sum())} anomalies)")
        for kind, m in plan:
            r = run_one(kind, m, Xtr, Xte, seed=seed, epochs=epochs, peer_epochs=peer_epochs, scale_peers=False, log=log)
            rec = {"digit": d, "n_train": int(len(idx)), "n_test": int(len(te)), **_record(r), **_metrics(y, r["scores"]),
                   **_variant_metrics(y, r)}
            rows.append(rec)
            log(f"    {rec['method']}: auroc={rec['auroc']} fit={_secs(rec.get('fit_s'))} {rec['error'] or ''}")
    res["split"] = {"train_source": "MNIST train (60000)", "test_source": "MNIST test (10000)", "test_index": te.tolist()}
    res["results"] = rows
    res["per_digit"] = _per_unit(rows, "digit")
    res["summary"] = _summary_units(res["per_digit"])
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return res
