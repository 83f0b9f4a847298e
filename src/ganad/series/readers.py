"""Reading series files for the command line: CSV / Parquet tables (time column, channels,
series-id column optional) and NPY arrays (T,) or (T, C)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ganad.data.windows import TIME_COLUMN_NAMES, _numeric_column, _read_table, _time_axis, table_read_errors
from ganad.exceptions import DataFileError, _fmt


def unnamed_channels(channels) -> bool:
    """Whether a series model's channels carry no names: ``ch0, ch1, ...`` (an array, a header-less
    file) or ``0, 1, ...`` (``pd.DataFrame(array)``). Such a model reads any columns by position; a
    model with named channels takes them by name and refuses other names (one rule for the API,
    ``ganad stream`` and the service)."""
    c = [str(x) for x in channels]
    return c in ([f"ch{i}" for i in range(len(c))], [str(i) for i in range(len(c))])


def channel_columns(names, channels) -> list[int] | None:
    """The position of each of a series model's ``channels`` among a header's column ``names``, or None
    when the header does not name them all. Names are matched as they are, else without surrounding
    spaces: a header written with a space after each comma (``time, temp, pressure``) names
    ``' temp'``, which pandas keeps (as long as the stripped names stay distinct). One rule for
    ``ganad stream`` and the service's series endpoint."""
    names, channels = [str(n) for n in names], [str(c) for c in channels]
    if names == channels or [n.strip() for n in names] == [c.strip() for c in channels]:
        return list(range(len(channels)))  # in the model's order (the only reading where names repeat)
    if all(names.count(c) == 1 for c in channels):
        return [names.index(c) for c in channels]
    names, channels = [n.strip() for n in names], [c.strip() for c in channels]
    if len(set(channels)) == len(channels) and all(names.count(c) == 1 for c in channels):
        return [names.index(c) for c in channels]
    return None


class SeriesTable(NamedTuple):
    values: np.ndarray          # float64 (T, C)
    time: np.ndarray | None     # (T,) or None
    series_id: np.ndarray | None
    columns: list[str]
    time_column: str | None
    series_column: str | None
    utc: bool = False           # the time column held zoned times (+01:00, Z): ``time`` is their UTC instant, naive


def _check_column_options(channels, exclude, time_column, series_id) -> None:
    """Column options that contradict each other, refused before reading: a channel named twice (the
    model would hold two channels of one name, whose contributions and event shares collapse into one
    column), a channel also excluded (it was read anyway), a channel that is the time or series-id column."""
    chans = [str(c) for c in channels] if channels else []
    twice = sorted({c for c in chans if chans.count(c) > 1})
    if twice:
        raise DataFileError(_fmt(f"--channels {','.join(chans)}", f"names {twice} more than once", "name each channel once"))
    both = [c for c in chans if c in {str(e) for e in exclude}]
    if both:
        raise DataFileError(_fmt(f"--channels {','.join(chans)}", f"and --exclude both name {both}",
                                 "drop the column from --exclude to read it as a channel, or from --channels to leave it out"))
    for name, col in (("--time-column", time_column), ("--series-id", series_id)):
        if col is not None and str(col) in chans:
            raise DataFileError(_fmt(f"--channels {','.join(chans)}", f"names the {name} column {col!r}", f"drop {col!r} from --channels"))


def read_series_file(path, time_column: str | None = None, channels: Sequence[str] | None = None,
                     series_id: str | None = None, *, no_time: bool = False, sep: str | None = None,
                     decimal: str = ".", exclude: Sequence[str] = ()) -> SeriesTable:
    """Read one series file. ``time_column`` None looks for a column named like a time
    (timestamp, time, datetime, date, ts); ``channels`` None takes every other column except
    ``series_id`` and ``exclude``. ``sep`` / ``decimal``: as in pandas' read_csv (CSV only).
    Missing values raise a DataFileError naming the column and row."""
    p = Path(path)
    _check_column_options(channels, exclude, time_column, series_id)
    if not p.exists():
        raise DataFileError(_fmt(str(p), "does not exist", "check the path"))
    from ganad.data.readers import require_regular
    require_regular(p)
    if p.is_dir():
        return _read_folder(p, time_column, channels, series_id, no_time, sep, decimal, exclude)
    if p.suffix.lower() == ".npy":
        if time_column or series_id or channels or exclude:
            raise DataFileError(_fmt(str(p), "is an NPY array, which has no named columns",
                                     "drop --time-column/--channels/--series-id/--exclude, or pass a CSV / Parquet table"))
        from ganad.data.readers import require_npy_magic
        require_npy_magic(p)
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise DataFileError(_fmt(str(p), f"cannot be read as NPY ({exc})", "write it again with numpy.save")) from exc
        # what float64 cannot hold, named with the file: a record array (df.to_records()) failed with a bare TypeError
        # and a traceback, text with a ValueError naming no file, and complex numbers lost their imaginary part
        if arr.dtype.names is not None:
            raise DataFileError(_fmt(str(p), f"holds a structured array (fields {list(arr.dtype.names)[:6]}), not a numeric series",
                                     "save a plain (T,) or (T, channels) array, e.g. "
                                     "np.save(path, numpy.lib.recfunctions.structured_to_unstructured(X))"))
        if arr.dtype.kind == "c":
            raise DataFileError(_fmt(str(p), "holds complex numbers", "save real values (for example the magnitude, np.abs(X))"))
        if arr.dtype.kind in "mM":  # datetime64 / timedelta64: read as numbers they became channels of their units
            raise DataFileError(_fmt(str(p), f"holds times ({arr.dtype}), not channel values",
                                     "save the channel values alone as a (T,) or (T, channels) array; an NPY series has no time "
                                     "column (pass a CSV / Parquet table with a time column for times)"))
        try:
            arr = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataFileError(_fmt(str(p), f"holds an array of {arr.dtype} that cannot be read as numbers ({exc})",
                                     "save a numeric (T,) or (T, channels) array, e.g. np.save(path, X.astype(np.float64))")) from exc
        arr = arr[:, None] if arr.ndim == 1 else arr
        if arr.ndim != 2:
            raise DataFileError(_fmt(str(p), f"holds an array of shape {arr.shape}", "save one series as a (T,) or (T, channels) array"))
        return SeriesTable(arr, None, None, [f"ch{c}" for c in range(arr.shape[1])], None, None)
    header = 0
    csv = p.name.lower().endswith((".csv", ".csv.gz", ".txt", ".tsv"))
    if csv:  # a first line of numbers only is data, as for tables
        from ganad.data.readers import _csv_header
        with table_read_errors(p):  # an empty or binary file: named, as the table itself would be
            header = _csv_header(p, sep or ("\t" if p.name.lower().endswith(".tsv") else ","), decimal, exclude)
    df = _read_table(p, sep, decimal, header=header)
    # no header: the channels are named as an NPY array's, so that another such file reads the same
    df.columns = cols = [f"ch{c}" for c in range(df.shape[1])] if header is None else [str(c) for c in df.columns]
    # a header with spaces around its names ('time, temp, pressure': pandas keeps them) is named without them in the
    # options (--channels strips its names: ' temp' could not be named at all, nor excluded, nor found as the time)
    channels, exclude = [_column_of(str(c), cols) for c in channels or ()] or None, [_column_of(str(c), cols) for c in exclude]
    time_column, series_id = (None if c is None else _column_of(str(c), cols) for c in (time_column, series_id))
    gone = [str(c) for c in exclude if str(c) not in cols]
    if gone:
        raise DataFileError(_fmt(str(p), f"has no column(s) {gone} to exclude (columns: {cols[:12]})", "check --exclude"))
    src = str(p)
    if len(df) == 0:
        raise DataFileError(_fmt(src, "has no rows", "pass a file with at least one data row"))
    def other_sep(expected) -> str | None:
        """The --sep fix where the header was read as one column of another separator's."""
        from ganad.data.readers import sep_fix
        return None if header is None else sep_fix(cols, p, sep, expected)

    for name, col in (("--time-column", time_column), ("--series-id", series_id)):
        if col is not None and col not in cols:
            raise DataFileError(_fmt(src, f"has no column {col!r} for {name} (columns: {cols[:12]})",
                                     other_sep([col]) or f"pass {name} naming one of the columns"))
    if time_column is None and not no_time:
        # a column named like a time that --channels names is a channel the user asked for, not the time axis
        found = [c for c in cols if c.strip().lower() in TIME_COLUMN_NAMES and c != series_id and c not in [str(x) for x in (channels or ())]]
        time_column = found[0] if found else None
    if no_time:
        time_column = None
    if channels:
        chans = [str(c) for c in channels]
        missing = [c for c in chans if c not in cols]
        if missing:
            raise DataFileError(_fmt(src, f"has no channel column(s) {missing} (columns: {cols[:12]})",
                                     other_sep(missing) or "pass --channels naming existing columns"))
    else:
        chans = [c for c in cols if c not in (time_column, series_id) and c not in [str(e) for e in exclude]]
    if not chans:
        raise DataFileError(_fmt(src, "has no channel columns besides the time / series id", "pass a table with at least one numeric column"))
    used = sep or ("\t" if p.name.lower().endswith(".tsv") else ",")
    values = np.stack([_channel_column(df[c], src, c, cols if header == 0 and csv else None, used, decimal) for c in chans], axis=1)
    sid = None
    if series_id is not None:
        empty = df[series_id].isna().to_numpy()
        if empty.any():  # (pandas 3 keeps them NaN through astype(str): the series' grouping failed on the mixed ids)
            raise DataFileError(_fmt(f"{src} column {series_id!r}", f"has {int(empty.sum())} empty series id(s), the first at row "
                                     f"{int(np.flatnonzero(empty)[0])} (counting from 0 below the header)",
                                     "fill in the series id of every row, or drop the rows without one"))
        sid = df[series_id].astype(str).to_numpy()
    time = _time_axis(df[time_column], src, time_column, check_order=False) if time_column is not None else None
    return SeriesTable(values, time, sid, chans, time_column, series_id, time is not None and _zoned(df[time_column]))


def _channel_column(col, src: str, name: str, header: list[str] | None, sep: str = ",", decimal: str = ".") -> np.ndarray:
    """A channel column as float64 (:func:`_numeric_column`), its refusal with a hint where a CSV's cause is
    plain (``header``: the CSV's header names, None for another file): a header-less file (its first line
    read as the names), a separator at the end of every line (an empty 'Unnamed: N' column) or numbers written with
    a decimal comma ("0,5" quoted in a comma-separated file)."""
    if header is not None and name.startswith("Unnamed: ") and len(col) and col.isna().all():
        raise DataFileError(_fmt(f"{src} column {name!r}", f"is empty in all {len(col)} rows, likely from a separator at the "
                                 "end of every line (pandas names the empty last field 'Unnamed: N')",
                                 f"leave it out with --exclude '{name}', or remove the trailing separator from the lines"))
    try:
        return _numeric_column(col, src, name)
    except DataFileError as exc:
        if header is None:
            raise
        head, _, fix = str(exc).partition(". Fix: ")
        if _no_header(header):
            raise DataFileError(f"{head}; the file seems to have no header row: its first line ({', '.join(header[:4])}"
                                f"{', ...' if len(header) > 4 else ''}) looks like data, and was read as the column names. "
                                "Fix: add a header line naming the columns (e.g. time,temp,pressure) as the file's first line") from None
        # numbers written another way (a decimal comma, thousands separators, a percent sign): the tables' reader's fix
        from ganad.data.readers import _non_numeric_fix
        why = _non_numeric_fix(col.to_frame(name), [name], sep, decimal)
        if why.startswith("the numbers seem to"):
            raise DataFileError(f"{head}. Fix: {why}; otherwise {fix}") from None
        raise


def _no_header(names: list[str]) -> bool:
    """Whether a CSV's header names all look like data (numbers or times, at least one a time): a file
    without a header row, whose first line pandas read as the column names."""
    import warnings

    import pandas as pd

    from ganad.data.readers import _number
    times = 0
    for n in (str(n).strip() for n in names):
        if _number(n):
            continue
        # written like a date (2024-01-01, 01/02/2024, 1.2.2024 with or without a time): pandas also reads
        # sensor names such as 'T1', 'M1', '5m' or '2nd' as times
        if not re.match(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:\b|T)|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b", n):
            return False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pd.Timestamp(n)
        except (ValueError, TypeError, OverflowError):
            return False
        times += 1
    return times > 0


def _column_of(name: str, cols: list[str]) -> str:
    """The column ``name`` names: itself, else the one column that is ``name`` with spaces around it."""
    if name in cols:
        return name
    near = [c for c in cols if c.strip() == name.strip()]
    return near[0] if len(near) == 1 else name


def _zoned(col) -> bool:
    """Whether a time column holds zoned times (a tz-aware column, or text like '...+01:00' / '...Z'),
    which the time axis holds as their UTC instants."""
    import pandas as pd
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return True
    if pd.api.types.is_datetime64_any_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype) or not len(col):
        return False
    try:
        return pd.to_datetime(col.iloc[:1]).dt.tz is not None
    except (ValueError, TypeError):
        return False


SERIES_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".npy")


def series_files(p: Path) -> list[Path]:
    """The series files a path names: itself, or a folder's files with a series suffix, by name."""
    p = Path(p)
    return [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(SERIES_SUFFIXES))


def _read_folder(p: Path, time_column, channels, series_id, no_time, sep=None, decimal=".", exclude=()) -> SeriesTable:
    """Every series file in a folder (sorted by name), one series each, its id the file name."""
    if series_id is not None:
        raise DataFileError(_fmt(str(p), "is a folder of series and --series-id is given too",
                                 "pass either a folder (one series per file) or one file with a series-id column"))
    files = series_files(p)
    if not files:
        raise DataFileError(_fmt(str(p), "is a folder with no .csv, .parquet or .npy file", "pass a series file or a folder of them"))
    parts = [read_series_file(f, time_column, channels, None, no_time=no_time, sep=sep, decimal=decimal, exclude=exclude)
             for f in files]
    cols = parts[0].columns
    for f, t in zip(files, parts):
        if t.columns != cols:
            raise DataFileError(_fmt(str(f), f"has channels {t.columns}, {files[0].name} has {cols}", "give every file the same channel columns"))
    has_time = {t.time is not None for t in parts}
    if len(has_time) > 1:
        raise DataFileError(_fmt(str(p), "holds files with and without a time column", "give every file a time column, or none"))
    zoned = [f.name for f, t in zip(files, parts) if t.utc]
    if zoned and len(zoned) < len(files):  # the naive times may be local wall times: not read as UTC because a neighbour has a zone
        naive = next(f.name for f, t in zip(files, parts) if not t.utc)
        raise DataFileError(_fmt(str(p), f"holds files whose times have a zone ({zoned[0]}) and files whose times have none ({naive})",
                                 "write every file's times with their zone (e.g. 2024-01-01T00:00:00+01:00), or every file's without one"))
    time = np.concatenate([t.time for t in parts]) if parts[0].time is not None else None
    sid = np.concatenate([np.full(len(t.values), f.name, dtype=object) for f, t in zip(files, parts)])
    return SeriesTable(np.concatenate([t.values for t in parts]), time, sid, cols, parts[0].time_column, None,
                       any(t.utc for t in parts))
