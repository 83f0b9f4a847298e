"""Generic time series: reading CSV / Parquet tables, cutting windows, mapping scores back.

A series is a ``(T, C)`` array: ``T`` time points, ``C`` channels. Detectors see windows
``(n_windows, C, length)``; :func:`windows_to_points` turns their per-window (or
per-window-per-step) scores back into one score per time point.

Example::

    from ganad.data.windows import read_series, make_windows, windows_to_points
    s = read_series("machine.parquet", time_column="time")        # s.values: (T, C)
    W, starts = make_windows(s.values, length=128, stride=16, cover_end=True)
    scores = detector.decision_function(W)                          # (n_windows,)
    per_point = windows_to_points(scores, starts, 128, len(s.values), reduce="max")
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ganad.data.readers import first_row_longer
from ganad.exceptions import DataFileError, InputError, _fmt
from ganad.params import is_int

#: column names taken as the time axis when ``time_column`` is None (case-insensitive)
TIME_COLUMN_NAMES = ("timestamp", "time", "datetime", "date", "ts")


class Series(NamedTuple):
    """A table read by :func:`read_series`."""

    values: np.ndarray
    """float64 (T, C): the value columns, in the order of ``columns``."""
    time: np.ndarray | None
    """(T,) the time column (datetime64[ns] when it parses as dates, else numeric), or None."""
    columns: list[str]
    """Names of the value columns."""


@contextlib.contextmanager
def table_read_errors(p: Path):
    """A CSV / Parquet file's reading errors (pandas' and pyarrow's: missing, not text, empty, malformed)
    as DataFileErrors naming the file and the fix; ganad's own errors pass through."""
    try:
        yield
    except (DataFileError, InputError):
        raise
    except FileNotFoundError as exc:
        raise DataFileError(_fmt(str(p), "does not exist", "pass the path of an existing CSV or Parquet file")) from exc
    except UnicodeDecodeError as exc:
        raise DataFileError(_fmt(str(p), "is not a text CSV file (cannot decode it)", "pass a UTF-8 CSV, or a Parquet / NPY file")) from exc
    except Exception as exc:  # pandas / pyarrow parser errors (an empty file: pandas' EmptyDataError)
        raise DataFileError(_fmt(str(p), f"cannot be parsed ({type(exc).__name__}: {exc})",
                                 "check the file is a complete CSV (comma-separated, header row) or Parquet file")) from exc


def _read_table(p: Path, sep: str | None = None, decimal: str = ".", header: int | None = 0):
    import pandas as pd

    name = p.name.lower()
    with table_read_errors(p):
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            from ganad.data.readers import arrow_decimals_as_float
            df = arrow_decimals_as_float(pq.read_table(p)).to_pandas()  # pd.read_parquet, with decimal columns as floats
            if any(n is not None for n in df.index.names):  # a named index (a frame indexed by time): a column, as in the file's schema
                df = df.reset_index()
            return df
        if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            sep = sep or ("\t" if name.endswith(".tsv") else ",")
            df = pd.read_csv(p, sep=sep, decimal=decimal, header=header)
            # pandas made the extra leading fields of long rows an index (0, 1, 2, ... look like none)
            if not isinstance(df.index, pd.RangeIndex) or (header is not None and first_row_longer(p, sep)):
                raise DataFileError(_fmt(str(p), f"has rows with more fields than the header's {df.shape[1]} column(s) {[str(c) for c in df.columns[:5]]}",
                                         "check the separator and decimal mark (for example --sep ';' --decimal ',') "
                                         "and that every row has one value per header column"))
            return df
    raise DataFileError(_fmt(str(p), "has an unknown suffix", "pass a .csv, .csv.gz, .parquet or .pq file"))


def _numeric_column(col, source: str, column: str) -> np.ndarray:
    """A pandas column as float64, with DataFileErrors naming the first bad row."""
    import pandas as pd

    if col.dtype == bool:
        return col.to_numpy(dtype=np.float64)
    if pd.api.types.is_datetime64_any_dtype(col.dtype) or pd.api.types.is_timedelta64_dtype(col.dtype):
        # a Parquet timestamp column not named like a time: pd.to_numeric made it a channel of nanoseconds
        # (a CSV's same column is text, refused below)
        raise DataFileError(_fmt(f"{source} column {column!r}", f"holds times ({col.dtype}), not numbers: it is a time column",
                                 "leave the column out with value_columns=[...]"))
    conv = pd.to_numeric(col, errors="coerce")
    bad = conv.isna() & col.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFileError(_fmt(f"{source} column {column!r}", f"holds non-numeric value {col.iloc[row]!r} at row {row} "
                                 f"({int(bad.sum())} such value(s))",
                                 "fix or drop those rows, or leave the column out with value_columns=[...]"))
    arr = conv.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = ~np.isfinite(arr)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataFileError(_fmt(f"{source} column {column!r}", f"has {int(missing.sum())} missing or infinite value(s), the first at row {row}",
                                 "fill them (e.g. df.interpolate()) or drop those rows before loading"))
    return arr


#: a whole ISO 8601 date, or date and time (extended or basic format, to the hour at least), with an optional zone
_FULL_ISO = (r"(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?)?"  # extended: 2024-01-01T00:30:00.5
             r"|\d{8}T\d{2}(?:\d{2}(?:\d{2}(?:[.,]\d+)?)?)?)"                         # basic: 20240101T003000.5
             r"\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?")


def _full_iso(col) -> bool:
    """Whether every time of a text column is written as a whole ISO 8601 date or date and time (missing ones aside)."""
    v = col.dropna().astype(str).str.strip()
    return bool(v.str.fullmatch(_FULL_ISO).all())


def _time_axis(col, source: str, column: str, check_order: bool = True) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        t = pd.to_datetime(col)
    elif pd.api.types.is_numeric_dtype(col.dtype):
        t = col
    else:
        try:
            t = pd.to_datetime(col)
        except ValueError as first:
            # ISO 8601 times written in more than one shape (Python's isoformat() leaves out zero microseconds:
            # '...T00:00:00', '...T00:00:00.500000' at 2 Hz; a date alone at midnight), and offsets that change
            # within the column (daylight saving time: one axis in UTC); pandas infers one format from the first time.
            # (Not both at once: ISO8601 with utc=True reads a naive time beside zoned ones as UTC, where it may be local.)
            kwargs: tuple[dict, ...] = ({"format": "ISO8601"}, {"utc": True})
            for kw in kwargs:
                if "format" in kw and not _full_iso(col):
                    continue  # pandas' ISO 8601 takes '2024-01-01 01:3' as 01:03, '2024' as 1 January: a cut-off time is no time
                try:
                    t = pd.to_datetime(col, **kw)
                    break
                except (ValueError, TypeError):
                    pass
            else:
                raise DataFileError(_fmt(f"{source} column {column!r}", f"cannot be parsed as times ({first})",
                                         "pass --time-column naming the time column (Python: time_column=), or leave the column out")) from first
        except TypeError as exc:
            raise DataFileError(_fmt(f"{source} column {column!r}", f"cannot be parsed as times ({exc})",
                                     "pass time_column= naming the time column, or time_column=False if there is none")) from exc
    if t.isna().any():
        row = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise DataFileError(_fmt(f"{source} column {column!r}", f"has a missing time at row {row}", "fill or drop that row"))
    if isinstance(t.dtype, pd.DatetimeTZDtype):  # tz-aware ('...+00:00'): to_numpy() would give Timestamp objects
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = t.to_numpy()
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[ns]")
    if check_order and arr.shape[0] > 1 and (arr[1:] < arr[:-1]).any():
        back = np.flatnonzero(arr[1:] < arr[:-1]) + 1
        warnings.warn(_fmt(f"{source} column {column!r}", f"goes back in time at {back.size} row(s), the first at row {int(back[0])}; "
                           "the rows are kept in file order",
                           "sort the table by time first (df.sort_values(column)) if the order is a mistake"), UserWarning, stacklevel=3)
    return arr


def read_series(
    path: str | os.PathLike,
    time_column: str | bool | None = None,
    value_columns: Sequence[str] | str | None = None,
) -> Series:
    """Read a series table from CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``).

    Parameters
    ----------
    path : the file; a CSV needs a header row.
    time_column : the column holding the time axis. None looks for a column named one
        of :data:`TIME_COLUMN_NAMES` (any case) and uses none if there is none; False
        means the table has no time column. Dates are parsed to ``datetime64[ns]``;
        numeric times are kept as numbers. Rows stay in file order; a time that goes
        back raises a UserWarning.
    value_columns : the value columns (one name or a list); None = every other column.

    Returns
    -------
    Series
        ``values`` float64 (T, C), ``time`` (T,) or None, ``columns``.

    Raises :class:`DataFileError` for an unreadable file, a missing column, or
    non-numeric or missing values (naming the column and the first bad row).
    """
    p = Path(path)
    df = _read_table(p)
    cols = [str(c) for c in df.columns]
    df.columns = cols
    source = str(p)
    if time_column is None:
        found = [c for c in cols if c.lower() in TIME_COLUMN_NAMES]
        time_col = found[0] if found else None
    elif time_column is False:
        time_col = None
    else:
        time_col = str(time_column)
        if time_col not in cols:
            raise DataFileError(_fmt(f"{source}", f"has no time column {time_col!r} (columns: {cols})",
                                     "pass time_column= naming one of the columns, or time_column=False"))
    if value_columns is None:
        values_cols = [c for c in cols if c != time_col]
    else:
        values_cols = [value_columns] if isinstance(value_columns, str) else [str(c) for c in value_columns]
        missing = [c for c in values_cols if c not in cols]
        if missing:
            raise DataFileError(_fmt(source, f"has no column(s) {missing} (columns: {cols})", "pass value_columns= naming existing columns"))
    if not values_cols:
        raise DataFileError(_fmt(source, f"has no value columns (columns: {cols}, time column: {time_col!r})",
                                 "pass a table with at least one numeric column besides the time"))
    if len(df) == 0:
        raise DataFileError(_fmt(source, "has no rows", "pass a file with at least one data row"))
    values = np.stack([_numeric_column(df[c], source, c) for c in values_cols], axis=1)
    time = _time_axis(df[time_col], source, time_col) if time_col is not None else None
    return Series(values=values, time=time, columns=values_cols)


def _as_2d_series(values, name: str = "values") -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(_fmt(name, f"has shape {arr.shape}", "pass a series as a (T,) or (T, channels) array"))
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(_fmt(name, f"holds non-numeric values (dtype {arr.dtype})", "convert the series to numbers first"))
    return arr


def _positive_int(v, name: str) -> int:
    if not is_int(v) or v < 1:
        raise InputError(_fmt(name, f"is {v!r}", "pass a positive integer"))
    return int(v)


def make_windows(values, length: int, stride: int = 1, *, cover_end: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into windows of ``length`` points, one every ``stride`` points.

    Parameters
    ----------
    values : array (T,) or (T, C).
    length : points per window (at most T).
    stride : step between window starts.
    cover_end : when the last regular window stops before the end of the series, add one
        more window starting at ``T - length`` so that every point is covered (its step
        from the previous start is then smaller than ``stride``).

    Returns
    -------
    windows : array (n_windows, C, length), the dtype of ``values``, a copy.
    starts : int64 array (n_windows,), the index of each window's first point; window
        ``i`` is ``values[starts[i] : starts[i] + length]`` transposed.

    Without ``cover_end`` the last ``(T - length) % stride`` points are in no window.
    """
    arr = _as_2d_series(values)
    length = _positive_int(length, "length")
    stride = _positive_int(stride, "stride")
    T = arr.shape[0]
    if length > T:
        raise InputError(_fmt("length", f"is {length}, longer than the series ({T} points)", f"pass length <= {T} or a longer series"))
    starts = np.arange(0, T - length + 1, stride, dtype=np.int64)
    if cover_end and starts[-1] != T - length:
        starts = np.append(starts, T - length)
    view = np.lib.stride_tricks.sliding_window_view(arr, length, axis=0)  # (T-length+1, C, length)
    return np.ascontiguousarray(view[starts]), starts


def windows_to_points(
    window_scores,
    starts,
    length: int,
    n_points: int,
    reduce: str = "mean",
    fill: float | str = np.nan,
) -> np.ndarray:
    """Per-time-point scores from per-window scores, exactly.

    Parameters
    ----------
    window_scores : (n_windows,) one score per window, or (n_windows, length) a score
        per window and step (e.g. a reconstruction error map).
    starts : (n_windows,) first point of each window (as returned by :func:`make_windows`;
        any order, repeats allowed).
    length : points per window.
    n_points : length T of the series.
    reduce : ``"mean"``: a point gets the mean of the scores that cover it (the
        window scores of every window containing it, or the map entries at that point);
        ``"max"``: their maximum.
    fill : value for points that no window covers (e.g. the trailing
        ``(T - length) % stride`` points when windows were cut without ``cover_end``).
        Default NaN, so that uncovered points stay visible; ``"nearest"`` copies the
        score of the nearest covered point (for trailing points: the point at the end
        of the last window, which for per-window scores is the last window's score).

    Returns
    -------
    float64 array (n_points,).

    NaN scores propagate into every point they cover. Cost: O(n_windows x length) with
    one vectorised NumPy step per window offset.
    """
    if reduce not in ("mean", "max"):
        raise InputError(_fmt("reduce", f"is {reduce!r}", "pass 'mean' or 'max'"))
    length = _positive_int(length, "length")
    n_points = _positive_int(n_points, "n_points")
    starts = np.asarray(starts)
    if starts.ndim != 1 or not np.issubdtype(starts.dtype, np.integer):
        raise InputError(_fmt("starts", f"has shape {starts.shape} and dtype {starts.dtype}",
                              "pass the 1-D integer start indices returned by make_windows"))
    starts = starts.astype(np.int64)
    scores = np.asarray(window_scores, dtype=np.float64)
    n = starts.shape[0]
    if scores.ndim == 2 and scores.shape[1] == 1 and length != 1:
        scores = scores[:, 0]
    if scores.ndim == 1:
        if scores.shape[0] != n:
            raise InputError(_fmt("window_scores", f"has {scores.shape[0]} scores for {n} window starts", "pass one score per window"))
        per_step = False
    elif scores.ndim == 2:
        if scores.shape != (n, length):
            raise InputError(_fmt("window_scores", f"has shape {scores.shape}, expected ({n}, {length}) for {n} windows of length {length}",
                                  "pass one score per window, or one per window and step"))
        per_step = True
    else:
        raise InputError(_fmt("window_scores", f"has shape {scores.shape}", "pass (n_windows,) or (n_windows, length) scores"))
    if n and (starts.min() < 0 or starts.max() + length > n_points):
        raise InputError(_fmt("starts", f"reach from {int(starts.min())} to {int(starts.max()) + length} with length={length}, "
                              f"outside the series of {n_points} points", "pass the starts and n_points of the series the windows came from"))
    if isinstance(fill, str) and fill != "nearest":
        raise InputError(_fmt("fill", f"is {fill!r}", "pass a number (default NaN) or 'nearest'"))

    unique = np.unique(starts).shape[0] == n
    count = np.zeros(n_points, dtype=np.int64)
    if reduce == "mean":
        acc = np.zeros(n_points, dtype=np.float64)
    else:
        acc = np.full(n_points, -np.inf, dtype=np.float64)
    for o in range(length):
        idx = starts + o
        vals = scores[:, o] if per_step else scores
        if unique:  # no repeated index within one offset: plain fancy indexing is exact
            count[idx] += 1
            if reduce == "mean":
                acc[idx] += vals
            else:
                acc[idx] = np.maximum(acc[idx], vals)
        else:
            np.add.at(count, idx, 1)
            if reduce == "mean":
                np.add.at(acc, idx, vals)
            else:
                np.maximum.at(acc, idx, vals)
    covered = count > 0
    out = np.empty(n_points, dtype=np.float64)
    if reduce == "mean":
        out[covered] = acc[covered] / count[covered]
    else:
        out[covered] = acc[covered]
    if covered.all():
        return out
    if isinstance(fill, str):  # "nearest"
        if not covered.any():
            out[:] = np.nan
            return out
        pos = np.arange(n_points)
        cov_idx = np.flatnonzero(covered)
        right = np.searchsorted(cov_idx, pos)  # first covered index >= pos
        left = np.clip(right - 1, 0, cov_idx.size - 1)
        right = np.clip(right, 0, cov_idx.size - 1)
        use_right = np.abs(cov_idx[right] - pos) < np.abs(pos - cov_idx[left])
        nearest = np.where(use_right, cov_idx[right], cov_idx[left])
        out[~covered] = out[nearest[~covered]]
    else:
        out[~covered] = float(fill)
    return out
