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


def _frame_to_array(df, path, exclude: Sequence[str], sep: str = ",", decimal: str = "."):
    missing = [c for c in exclude if c not in df.columns]
    if missing:
        raise InputError(_fmt(str(path), f"has no column(s) {missing} to exclude (columns: {list(df.columns)[:10]})", "check --exclude"))
    df = df.drop(columns=list(exclude))
    import pandas as pd
    if not isinstance(df.index, pd.RangeIndex):  # pandas made the extra leading fields of long rows an index
        raise InputError(_fmt(str(path), f"has rows with more fields than the header's {df.shape[1]} columns (first at data row {len(df) and 0})",
                              "check the separator (--sep) and that every row has one value per header column"))
    if len(df) == 0:  # a header-only file: the caller reports "no data rows", not "non-numeric"
        return np.zeros((0, df.shape[1]), dtype=np.float32)
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    bad = [c for c in df.columns if not (is_numeric_dtype(df[c].dtype) or is_bool_dtype(df[c].dtype))]
    if bad:
        raise InputError(_fmt(str(path), f"has non-numeric column(s) {[str(c) for c in bad[:5]]}", _non_numeric_fix(df, bad, sep, decimal)))
    return df.to_numpy(dtype=np.float64)  # float32 after the range check (1e300 must not turn into inf unseen)


def _non_numeric_fix(df, bad, sep: str, decimal: str) -> str:
    """The likely cause of text columns: another separator, a decimal comma, or a real text column."""
    cells = [str(c) for c in bad[:3]]
    for c in bad[:3]:
        cells += [str(v) for v in df[c].head(5).tolist()]
    for o, flag in ((";", ";"), ("\t", "\\t"), ("|", "|")):
        if o != sep and any(o in v for v in cells):
            return (f"the file seems to be separated by '{flag}', not {sep!r}: pass --sep '{flag}' "
                    f"(API: read_array(path, sep=...)); or leave text columns out with --exclude COLUMN")
    import re
    if decimal != "," and any(re.fullmatch(r"\s*-?\d+,\d+\s*", v) for v in cells):
        return "the numbers seem to use a decimal comma (\"1,5\"): pass --decimal ',' (and --sep ';' if that separates the columns)"
    return "remove or encode them, or leave them out with --exclude COLUMN (for example an id or label column)"


def _number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _csv_header(path, sep: str, decimal: str, exclude: Sequence[str], warn: bool = True):
    """0 when the CSV's first line is a header, None when it is already a data row (all numbers);
    refuses a pandas index column (an unnamed first column) that would become a feature. ``warn``:
    log which reading an all-number first line got (the reader does; :func:`csv_columns`, which
    runs before it on the same file, does not, so the warning comes once)."""
    import pandas as pd
    first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    if first.shape[0] == 0:
        return 0
    cells = [str(v).strip() for v in first.iloc[0].tolist()]
    if len(cells) > 1 and cells[0] == "" and all(cells[1:]) and "Unnamed: 0" not in exclude:
        raise InputError(_fmt(str(path), "has an unnamed first column, the index pandas writes with to_csv(); it would be read as a feature",
                              "write the file with df.to_csv(path, index=False), or leave the column out with --exclude 'Unnamed: 0'"))
    raw = [str(v) for v in first.iloc[0].tolist()]
    dup = sorted({c for c in raw if raw.count(c) > 1 and c != ""})
    if dup and not all(_number(c.replace(decimal, ".") if decimal != "." else c) for c in cells):
        # pandas would rename the copies 'a.1', 'a.2', ... and read them as different features
        raise InputError(_fmt(str(path), f"has duplicate column name(s) {dup[:5]} in its header",
                              "give every column its own name (or drop the copies) before passing the file"))
    cells = [c.replace(decimal, ".") if decimal != "." else c for c in cells]
    import logging
    if all(_number(c) for c in cells) and cells != [str(i) for i in range(len(cells))]:
        if warn:
            logging.getLogger("ganad").warning("%s: the first line holds only numbers; reading it as data (no header row)", path)
        return None
    if all(_number(c) for c in cells) and warn:
        # '0' (one column) or '0,1,...' is both pandas' default header and a plausible first data row
        # (a one-column file of counts or flags starting with 0): say which reading was taken, since the
        # other one silently drops or adds a row and shifts every score's index by one
        logging.getLogger("ganad").warning(
            "%s: the first line %r is read as a header (pandas' default column names), not as data; "
            "if it is a data row, add a header line such as %r", path, ",".join(cells),
            ",".join(f"x{i}" for i in range(len(cells))))
    return 0


def csv_columns(path, *, exclude: Sequence[str] = (), sep: str | None = None, decimal: str = ".") -> list[str] | None:
    """Column names of a CSV or Parquet file after ``exclude`` (None for header-less CSV, NPY, NPZ)."""
    fmt = file_format(path)
    try:
        if fmt == "csv":
            import pandas as pd
            sep = sep or ("\t" if Path(path).suffix.lower() == ".tsv" else ",")
            if _csv_header(path, sep, decimal, exclude, warn=False) is None:
                return None
            cols = list(pd.read_csv(path, sep=sep, nrows=0).columns)
        elif fmt == "parquet":
            import pyarrow.parquet as pq
            cols = list(pq.ParquetFile(path).schema_arrow.names)
            cols = [c for c in cols if not str(c).startswith("__index_level_")]
        else:
            return None
    except (InputError, DataFileError):
        raise
    except Exception:
        return None  # read_array reports unreadable files with the right message
    return [str(c) for c in cols if c not in exclude]


def _checked(arr: np.ndarray, path, offset: int) -> np.ndarray:
    """A chunk of samples checked at the door under the file's name (NaN / inf / beyond float32,
    non-numeric), as float32; 1-D arrays pass through (labels; the detector refuses 1-D data)."""
    from ganad.data.validation import check_array
    if arr.ndim < 2 or arr.size == 0:
        return arr
    return check_array(arr, f"{path}" + (f" (row numbers counted from row {offset})" if offset else ""))


def _npz_array(path, key):
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataFileError(_fmt(str(path), f"cannot be read as NPZ ({exc})", "check that the file is complete and written by numpy.savez")) from exc
    keys = list(z.keys())
    if key is not None and key not in keys:
        raise DataFileError(_fmt(str(path), f"has no array {key!r} (it holds {keys})", f"pass --key with one of {keys}"))
    if key is None:
        key = "X" if "X" in keys else (keys[0] if len(keys) == 1 else None)
    if key is None:
        raise DataFileError(_fmt(str(path), f"holds arrays {keys}, and it is unclear which is the data", "name the array 'X' or pass --key NAME"))
    try:
        return z[key]
    except Exception as exc:
        raise DataFileError(_fmt(str(path), f"array {key!r} cannot be read ({exc})", "the file is truncated or corrupt: write it again")) from exc


def read_array(path, *, exclude: Sequence[str] = (), key: str | None = None, sep: str | None = None,
               decimal: str = ".") -> np.ndarray:
    """Read a whole data file into an array (rows = samples).

    CSV: ``sep`` (default ',' and tab for .tsv) and ``decimal`` as in pandas. A first line of
    numbers only is read as data (no header); an unnamed first column (the index that pandas'
    ``to_csv`` writes) is refused unless excluded. :func:`csv_columns` gives the column names."""
    return np.concatenate(list(iter_chunks(path, chunk_rows=None, exclude=exclude, key=key, sep=sep, decimal=decimal)), axis=0)


def iter_chunks(path, chunk_rows: int | None = 65536, *, exclude: Sequence[str] = (), key: str | None = None,
                sep: str | None = None, decimal: str = ".") -> Iterator[np.ndarray]:
    """Yield the samples of a data file in chunks of ``chunk_rows`` (all at once when None).

    CSV and Parquet are read incrementally and NPY is memory-mapped, so files larger than
    memory can be scored. NPZ archives are compressed and read whole.
    """
    fmt = file_format(path)
    path = Path(path)
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1):
        raise InputError(_fmt("chunk_rows", f"is {chunk_rows!r}", "pass a positive number of rows, such as 65536 (--chunk-rows)"))
    try:
        if fmt == "csv":
            import pandas as pd
            sep = sep or ("\t" if path.suffix.lower() == ".tsv" else ",")
            header = _csv_header(path, sep, decimal, exclude)
            if header is None and exclude:
                raise InputError(_fmt(str(path), f"has no header row, so there are no columns {list(exclude)} to exclude", "drop --exclude or add a header line"))
            reader = pd.read_csv(path, sep=sep, decimal=decimal, header=header, chunksize=chunk_rows or None)
            chunks = [reader] if chunk_rows is None else reader
            n = 0
            for df in chunks:
                n += len(df)
                yield _checked(_frame_to_array(df, path, exclude, sep, decimal), path, n - len(df))
            if n == 0:
                raise InputError(_fmt(str(path), "has a header but no data rows", "pass a file with at least one sample"))
        elif fmt == "parquet":
            import pyarrow.parquet as pq
            pf = pq.ParquetFile(path)
            if pf.metadata.num_rows == 0:
                raise InputError(_fmt(str(path), "has no rows", "pass a file with at least one sample"))
            n = 0
            for batch in pf.iter_batches(batch_size=chunk_rows or max(pf.metadata.num_rows, 1)):
                yield _checked(_frame_to_array(batch.to_pandas(), path, exclude), path, n)
                n += batch.num_rows
        elif fmt == "npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            step = chunk_rows or max(len(arr), 1)
            if arr.ndim == 0 or len(arr) == 0:
                yield np.asarray(arr)
            for s in range(0, len(arr), step):
                yield _checked(np.asarray(arr[s:s + step]), path, s)
        else:
            arr = _npz_array(path, key)
            step = chunk_rows or max(len(arr), 1)
            if arr.ndim == 0 or len(arr) == 0:
                yield arr
            for s in range(0, len(arr), step):
                yield _checked(arr[s:s + step], path, s)
    except (InputError, DataFileError):
        raise
    except UnicodeDecodeError as exc:
        raise DataFileError(_fmt(str(path), "is not a text CSV file (cannot decode it)", "pass a UTF-8 CSV, or a Parquet / NPY / NPZ file")) from exc
    except Exception as exc:  # pandas / pyarrow / numpy parsing errors on truncated or malformed files
        raise DataFileError(_fmt(str(path), f"cannot be read as {fmt.upper()} ({type(exc).__name__}: {exc})",
                                 "check the file is complete and in the format its extension says")) from exc
