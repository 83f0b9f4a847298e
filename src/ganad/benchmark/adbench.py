"""The ADBench protocol: per data set, its distinct rows; per seed, 60 % of the normal samples train; see :func:`run_adbench`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

from ganad.benchmark.environment import resolve_data_dir
from ganad.benchmark.runner import _base, _methods_plan, _metrics, _record, _secs, _subsample, _variant_metrics, run_one
from ganad.benchmark.summary import _per_unit, _summary_units
from ganad.exceptions import DataFileError, InputError, _fmt


def adbench_split(y: np.ndarray, seed: int, train_fraction: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): ``train_fraction`` of the normal samples train; the other normals and
    every anomaly test."""
    rng = np.random.RandomState(seed)
    normal = np.flatnonzero(y == 0)
    perm = rng.permutation(normal)
    k = int(round(train_fraction * len(normal)))
    train = np.sort(perm[:k])
    test = np.sort(np.concatenate([perm[k:], np.flatnonzero(y == 1)]))
    return train, test


def adbench_unique(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """The distinct rows of a data set, each once, before it is split: ADBench's files hold repeated
    rows (breastw: 59 % of a split's test normals were copies of a training row, mammography 32 %), so a
    random split put copies of training rows into the test set, where every method that measures
    distances to the training data scored them 0: a test of memory, not of detection (KNN's AUROC
    0.990 → 0.977 on breastw, 0.877 → 0.855 on mammography without them). A row that occurs with both
    labels is left out (it cannot be ranked right). Returns (X, y, counts); the rows keep their first
    order of appearance."""
    X = np.asarray(X)
    y = np.asarray(y).astype(np.int64).ravel()
    rows = np.ascontiguousarray(X.reshape(len(X), -1))
    if rows.dtype.kind == "f":  # equal numbers, equal bytes: -0.0 as 0.0, every NaN as one NaN
        rows = np.ascontiguousarray(np.where(np.isnan(rows), np.nan, rows + 0.0), dtype=rows.dtype)
    key = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    inv = inv.ravel()
    lo = np.full(len(first), 2, dtype=np.int64)
    hi = np.full(len(first), -1, dtype=np.int64)
    np.minimum.at(lo, inv, y)
    np.maximum.at(hi, inv, y)
    keep = np.sort(first[lo == hi])
    counts = {"rows": int(len(X)), "distinct": int(len(first)), "repeats_dropped": int(len(X) - len(first)),
              "both_labels_dropped": int((lo != hi).sum())}
    return X[keep], y[keep], counts


def run_adbench(data, *, methods=None, peers=None, seeds: Iterable[int] = (0, 1, 2), datasets=None,
                max_train: int | None = 5000, max_test: int | None = 5000, epochs: int | None = 30, peer_epochs: int = 20,
                log: Callable = print) -> dict:
    """ADBench classical datasets: per dataset and seed, 60 % of the normals train; test = the rest + all anomalies."""
    from ganad.data.tabular import adbench_names, load_adbench
    plan, notes = _methods_plan(methods, peers, log, epochs, peer_epochs)  # bad options refused before the data is looked for
    directory = resolve_data_dir(data, "adbench")
    names = adbench_names(directory)
    if not names:  # an empty or incomplete copy: refused, not a run of no dataset that writes an empty report
        raise DataFileError(_fmt(str(directory), "holds no ADBench .npz file",
                                 "copy the ADBench datasets (e.g. 6_cardio.npz, with arrays X and y) there, or pass --data the folder holding adbench/"))
    if datasets is not None:
        want = [d.lower() for d in datasets]
        sel = [n for n in names if n.lower() in want or n.split("_", 1)[-1].lower() in want]
        missing = [d for d in want if not any(d in (n.lower(), n.split("_", 1)[-1].lower()) for n in names)]
        if missing:
            raise InputError(_fmt("--datasets", f"names unknown dataset(s) {missing}", f"use some of {names}"))
        names = sel
    seeds = [int(s) for s in seeds]
    res = _base("adbench", seeds[0], [m for k, m in plan if k == "ganad"], [m for k, m in plan if k == "peer"], epochs,
                peer_epochs, seeds=seeds, datasets=names, max_train=max_train, max_test=max_test, train_fraction=0.6)
    res["notes"] = notes + ["every data set is reduced to its distinct rows before it is split (a row that occurs with both "
                            "labels is left out): a repeated row would otherwise sit in training and test alike",
                            f"per dataset and seed: 60% of the normal samples train (random subsample of at most {max_train}), "
                            f"the other 40% + all anomalies test (class-stratified random subsample of at most {max_test}); "
                            "no threshold is fitted (ranking metrics only)"]
    rows = []
    for name in names:
        X, y = load_adbench(directory / f"{name}.npz")
        X, y, counts = adbench_unique(X, y)
        if counts["repeats_dropped"] or counts["both_labels_dropped"]:
            why = (f"{name}: {counts['repeats_dropped']} repeated row(s) of {counts['rows']} dropped before the split"
                   + (f", and {counts['both_labels_dropped']} row(s) that occur with both labels" if counts["both_labels_dropped"] else ""))
            log(why)
            res["notes"].append(why)
        if y.min() == y.max():  # every model would train for an AUROC that is undefined: left out, said so (as nab skips series)
            why = f"{name}: left out: its labels y are all {int(y[0])} (AUROC needs normal and anomalous rows)"
            log(why)
            res["notes"].append(why)
            continue
        for seed in seeds:
            tr, te = adbench_split(y, seed)
            rng = np.random.RandomState(seed + 1000)
            tr = tr[_subsample(len(tr), max_train, rng)]
            te = te[_subsample(len(te), max_test, rng, y[te])]
            assert not np.intersect1d(tr, te).size and (y[tr] == 0).all()
            log(f"adbench {name} seed {seed}: d={X.shape[1]} train {len(tr)}, test {len(te)} ({int(y[te].sum())} anomalies)")
            for kind, m in plan:
                r = run_one(kind, m, X[tr], X[te], seed=seed, epochs=epochs, peer_epochs=peer_epochs, log=log)
                rec = {"dataset": name, "seed": seed, "n_train": int(len(tr)), "n_test": int(len(te)),
                       "n_test_anomalies": int(y[te].sum()), **_record(r), **_metrics(y[te], r["scores"]),
                       **_variant_metrics(y[te], r)}
                rows.append(rec)
                log(f"    {rec['method']}: auroc={rec['auroc']} fit={_secs(rec.get('fit_s'))} {rec['error'] or ''}")
    if not rows and names:
        raise DataFileError(_fmt(str(directory), f"holds no dataset with both normal and anomalous rows among {names[:8]}",
                                 "pass ADBench files whose y holds 0 (normal) and 1 (anomaly)"))
    res["results"] = rows
    res["per_dataset"] = _per_unit(rows, "dataset")
    res["summary"] = _summary_units(res["per_dataset"])
    res["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return res
