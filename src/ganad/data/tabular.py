"""Tabular outlier-detection benchmarks: ADBench ``.npz`` and ODDS ``.mat`` files.

Both formats hold a feature matrix ``X`` (n, d) and labels ``y`` (1 = anomaly). The
loaders return ``(X float32 (n, d), y int64 (n,))`` after checking the file: missing
keys, non-numeric or non-finite values, a ``y`` that is not 0/1 or whose length differs
from ``X`` all raise :class:`~ganad.exceptions.DataFileError` naming the file, the
problem and the fix.

Example::

    from ganad.data.tabular import adbench_names, load_adbench
    adbench_names("/data/adbench")            # ['2_annthyroid', '4_Arrhythmia', ...]
    X, y = load_adbench("/data/adbench", "cardio")
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ganad.data.validation import check_array, check_labels
from ganad.exceptions import DataFileError, InputError, _fmt


def _check_xy(X, y, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate arrays read from ``source``; every problem becomes a DataFileError."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise DataFileError(_fmt(f"{source} array 'X'", f"has shape {X.shape}, expected a 2-D (samples, features) table",
                                 "store X as a matrix with one row per sample"))
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataFileError(_fmt(source, f"has {X.shape[0]} rows in 'X' but 'y' has shape {y.shape}",
                                 "store exactly one label per row of X"))
    try:
        Xc = check_array(X, name=f"{source} array 'X'", allowed_ndim=(2,))
        yc = check_labels(y, X.shape[0], name=f"{source} array 'y'")
    except InputError as exc:
        raise DataFileError(str(exc)) from exc
    return Xc.astype(np.float32, copy=False), yc


def load_npz(path: str | os.PathLike, x_key: str = "X", y_key: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Read ``(X, y)`` from a NumPy ``.npz`` archive (the ADBench format).

    Object arrays are refused (no unpickling). Returns ``X`` float32 (n, d) and ``y``
    int64 (n,) with 1 = anomaly.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(_fmt(str(p), "does not exist", "pass the path of an existing .npz file"))
    try:
        # open the file ourselves: np.load leaks the handle when the zip is corrupt
        with open(p, "rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise DataFileError(_fmt(str(p), "holds a single .npy array, not an .npz archive",
                                         f"save the data with np.savez(path, {x_key}=X, {y_key}=y)"))
            keys = list(data.files)
            missing = [k for k in (x_key, y_key) if k not in keys]
            if missing:
                raise DataFileError(_fmt(str(p), f"has no array(s) {missing} (it holds {keys})",
                                         f"save the features as '{x_key}' and the 0/1 labels as '{y_key}', "
                                         f"e.g. np.savez(path, {x_key}=X, {y_key}=y)"))
            X, y = data[x_key], data[y_key]
    except DataFileError:
        raise
    except ValueError as exc:  # object arrays (they would need unpickling) or a file that is no .npz/.npy at all
        raise DataFileError(_fmt(str(p), f"cannot be read as an .npz archive of plain arrays ({exc})",
                                 "save X and y as numeric arrays with np.savez (object arrays would need unpickling, "
                                 "which ganad refuses)")) from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFileError(_fmt(str(p), f"is not a readable .npz archive ({type(exc).__name__}: {exc})",
                                 "check the file is complete; re-download or re-save it with np.savez")) from exc
    return _check_xy(X, y, str(p))


def load_odds(path: str | os.PathLike, x_key: str = "X", y_key: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Read ``(X, y)`` from an ODDS ``.mat`` file with :func:`scipy.io.loadmat`.

    MATLAB v7.3 files are HDF5 files that scipy cannot read; they raise a
    :class:`DataFileError` explaining how to convert them. Returns ``X`` float32 (n, d)
    and ``y`` int64 (n,) with 1 = anomaly.
    """
    import scipy.io

    p = Path(path)
    if not p.is_file():
        raise DataFileError(_fmt(str(p), "does not exist", "pass the path of an existing .mat file"))
    try:
        data = scipy.io.loadmat(p)
    except NotImplementedError as exc:  # "Please use HDF reader for matlab v7.3 files"
        raise DataFileError(_fmt(str(p), "is a MATLAB v7.3 (HDF5) file, which scipy.io.loadmat cannot read",
                                 "re-save it in MATLAB/Octave with save(path, 'X', 'y', '-v7'), or read it with h5py "
                                 "(note the arrays come transposed) and use np.savez")) from exc
    except Exception as exc:  # scipy raises ValueError / MatReadError / TypeError on junk
        raise DataFileError(_fmt(str(p), f"is not a readable MATLAB .mat file ({type(exc).__name__}: {exc})",
                                 "check the file is complete; re-download it")) from exc
    keys = sorted(k for k in data if not k.startswith("__"))
    missing = [k for k in (x_key, y_key) if k not in data]
    if missing:
        raise DataFileError(_fmt(str(p), f"has no variable(s) {missing} (it holds {keys})",
                                 "pass x_key= / y_key= naming the feature matrix and the label vector"))
    return _check_xy(data[x_key], data[y_key], str(p))


def load_tabular(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(X, y)`` from a ``.npz`` (ADBench) or ``.mat`` (ODDS) file, by suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".mat":
        return load_odds(path)
    raise DataFileError(_fmt(str(path), f"has the unknown suffix {suffix!r}",
                             "pass an ADBench .npz or an ODDS .mat file (or use load_npz / load_odds directly)"))


def _sort_key(stem: str):
    m = re.match(r"(\d+)_(.*)", stem)
    return (int(m.group(1)), m.group(2).lower()) if m else (10**9, stem.lower())


def adbench_names(directory: str | os.PathLike) -> list[str]:
    """Dataset names (file stems such as ``'6_cardio'``) of the ``.npz`` files in ``directory``.

    Sorted by ADBench's number prefix, then by name.
    """
    d = Path(directory)
    if not d.is_dir():
        raise DataFileError(_fmt(str(d), "is not a directory", "pass the folder holding the ADBench .npz files"))
    return sorted((p.stem for p in d.glob("*.npz") if p.is_file()), key=_sort_key)


def load_adbench(path: str | os.PathLike, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One ADBench dataset as ``(X float32 (n, d), y int64 (n,))``, 1 = anomaly.

    ``path`` is an ``.npz`` file, or the ADBench folder together with ``name``: the file
    stem (``'6_cardio'``) or the name without its number (``'cardio'``), any case.
    """
    p = Path(path)
    if name is None:
        return load_npz(p)
    names = adbench_names(p)
    wanted = name.lower().removesuffix(".npz")
    hits = [n for n in names if n.lower() == wanted] or [n for n in names if re.sub(r"^\d+_", "", n).lower() == wanted]
    if len(hits) != 1:
        problem = f"no dataset {name!r}" if not hits else f"dataset name {name!r} is ambiguous ({hits})"
        raise DataFileError(_fmt(str(p), f"holds {problem}", f"pass one of {names}"))
    return load_npz(p / f"{hits[0]}.npz")
