"""Reading user data files: CSV, Parquet, NPY, NPZ; whole or in chunks (for files larger than memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ganad.exceptions import DataFileError, InputError, _fmt

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npy": "npy", ".npz": "npz"}


def file_format(path) -> str:
    p = Path(path)
    if not p.exists():
        raise DataFileError(_fmt(str(p), "does not exist", "check the path"))
    if p.is_dir():
        raise DataFileError(_fmt(str(p), "is a directory, not a data file", "pass a CSV, Parquet, NPY or NPZ file"))
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise DataFileError(_fmt(str(p), f"has an unknown extension {p.suffix!r}", "use .csv, .parquet, .npy or .npz"))
    return fmt


def _frame_to_array(df, path, exclude: Sequence[str]):
    missing = [c for c in exclude if c not in df.columns]
    if missing:
        raise InputError(_fmt(str(path), f"has no column(s) {missing} to exclude (columns: {list(df.columns)[:10]})", "check --exclude"))
    df = df.drop(columns=list(exclude))
    bad = [str(c) for c in df.columns if not (np.issubdtype(df[c].dtype, np.number) or df[c].dtype == bool)]
    if bad:
        raise InputError(_fmt(str(path), f"has non-numeric column(s) {bad[:5]}",
                              "remove or encode them, or leave them out with --exclude COLUMN (for example an id or label column)"))
    return df.to_numpy(dtype=np.float32)


def _npz_array(path, key):
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataFileError(_fmt(str(path), f"cannot be read as NPZ ({exc})", "check that the file is complete and written by numpy.savez")) from exc
    keys = list(z.keys())
    if key is None:
        key = "X" if "X" in keys else (keys[0] if len(keys) == 1 else None)
    if key not in keys:
        raise DataFileError(_fmt(str(path), f"holds arrays {keys}, and it is unclear which is the data", "name the array 'X' or pass --key NAME"))
    try:
        return z[key]
    except Exception as exc:
        raise DataFileError(_fmt(str(path), f"array {key!r} cannot be read ({exc})", "the file is truncated or corrupt: write it again")) from exc


def read_array(path, *, exclude: Sequence[str] = (), key: str | None = None) -> np.ndarray:
    """Read a whole data file into an array (rows = samples)."""
    return np.concatenate(list(iter_chunks(path, chunk_rows=None, exclude=exclude, key=key)), axis=0)


def iter_chunks(path, chunk_rows: int | None = 65536, *, exclude: Sequence[str] = (), key: str | None = None) -> Iterator[np.ndarray]:
    """Yield the samples of a data file in chunks of ``chunk_rows`` (all at once when None).

    CSV and Parquet are read incrementally and NPY is memory-mapped, so files larger than
    memory can be scored. NPZ archives are compressed and read whole.
    """
    fmt = file_format(path)
    path = Path(path)
    try:
        if fmt == "csv":
            import pandas as pd
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            reader = pd.read_csv(path, sep=sep, chunksize=chunk_rows or None)
            chunks = [reader] if chunk_rows is None else reader
            n = 0
            for df in chunks:
                n += len(df)
                yield _frame_to_array(df, path, exclude)
            if n == 0:
                raise InputError(_fmt(str(path), "has a header but no data rows", "pass a file with at least one sample"))
        elif fmt == "parquet":
            import pyarrow.parquet as pq
            pf = pq.ParquetFile(path)
            if pf.metadata.num_rows == 0:
                raise InputError(_fmt(str(path), "has no rows", "pass a file with at least one sample"))
            for batch in pf.iter_batches(batch_size=chunk_rows or max(pf.metadata.num_rows, 1)):
                yield _frame_to_array(batch.to_pandas(), path, exclude)
        elif fmt == "npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            step = chunk_rows or max(len(arr), 1)
            if arr.ndim == 0 or len(arr) == 0:
                yield np.asarray(arr)
            for s in range(0, len(arr), step):
                yield np.asarray(arr[s:s + step])
        else:
            arr = _npz_array(path, key)
            step = chunk_rows or max(len(arr), 1)
            if arr.ndim == 0 or len(arr) == 0:
                yield arr
            for s in range(0, len(arr), step):
                yield arr[s:s + step]
    except (InputError, DataFileError):
        raise
    except UnicodeDecodeError as exc:
        raise DataFileError(_fmt(str(path), "is not a text CSV file (cannot decode it)", "pass a UTF-8 CSV, or a Parquet / NPY / NPZ file")) from exc
    except Exception as exc:  # pandas / pyarrow / numpy parsing errors on truncated or malformed files
        raise DataFileError(_fmt(str(path), f"cannot be read as {fmt.upper()} ({type(exc).__name__}: {exc})",
                                 "check the file is complete and in the format its extension says")) from exc
