"""The series side of the command line (`ganad fit --window`, `ganad score` on a series model,
`ganad evaluate --ranges`, `ganad stream`); cli.py only routes here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ganad.data.readers import _number, strict_float  # one rule for "this CSV cell is a number"
from ganad.exceptions import DataFileError, GanadError, InputError, _fmt, in_option_terms
from ganad.files import atomic_paths
# one test of a time column's zone, and one rule for the column a name names, shared with the reader
from ganad.series.readers import _column_of, _zoned, channel_columns, unnamed_channels


def _csv_list(v: str | None) -> list[str] | None:
    """``--channels a,b,c`` as a list; a name holding a comma is quoted as in a CSV header: ``a,"b,c"``."""
    import csv
    return None if v is None else [x.strip() for x in next(csv.reader([v], skipinitialspace=True), []) if x.strip()]


def _csv_field(v: str) -> str:
    """A text field of a stream output line, quoted as in CSV where it holds a comma or a quote
    (a channel named 'valve,open' would otherwise shift the fields of a close line)."""
    return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n\r') else v


def fit_series(data: Path, output: Path, method: str, det_params: dict, window: int, stride: int | None,
               time_column: str | None, channels: str | None, series_id: str | None, gaps: str, contamination: float,
               sep: str | None = None, decimal: str = ".", exclude=(), event_gap: int | None = None):
    """Read a series file, fit a SeriesDetector, save it with the columns it reads."""
    from ganad.detectors import DETECTORS
    from ganad.series import SeriesDetector
    from ganad.series.readers import read_series_file
    try:
        tab = read_series_file(data, time_column, _csv_list(channels), series_id, sep=sep, decimal=decimal, exclude=tuple(exclude))
    except (InputError, DataFileError) as exc:
        msg = _in_fit_terms(str(exc), data)
        if msg != str(exc):
            raise type(exc)(msg) from exc
        raise
    cls = DETECTORS[method]
    params = {k: v for k, v in det_params.items() if k in cls().get_params() and v is not None}  # None = the method's default
    sd = SeriesDetector(method, window=window, stride=stride, contamination=contamination, gaps=gaps, detector_params=params,
                        event_gap=event_gap)
    def in_cli_terms(msg: str) -> str:
        return _in_fit_terms(_zoned_terms(msg, tab), data)

    import warnings
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sd.fit(tab.values, time=tab.time, series_id=tab.series_id, channel_names=tab.columns)
    except InputError as exc:
        msg = in_cli_terms(str(exc))
        if msg != str(exc):
            raise InputError(msg) from exc
        raise
    finally:
        for w in caught:  # the fit's warnings in the same terms as its errors
            warnings.warn_explicit(in_cli_terms(str(w.message)), w.category, w.filename, w.lineno)
    sd.io_ = {"time_column": tab.time_column, "channels": tab.columns, "series_id": tab.series_column}
    from ganad.training import distributed
    if distributed.is_main_process():  # under torchrun every rank holds the same model; rank 0 writes it
        sd.save(output)
    return sd, tab


#: SeriesDetector's parameters and the options of `ganad fit --window` that set them
_FIT_OPTIONS = (("event_gap", "--event-gap"), ("window", "--window"), ("stride", "--stride"), ("contamination", "--point-contamination"),
                ("gaps", "--gaps"))


def _zoned_terms(msg: str, tab) -> str:
    """A message about a file whose times carried their zone (read as naive UTC) without the daylight-saving hint
    for naive local times, which such times cannot be."""
    from ganad.series.detector import DST_HINT
    return msg.replace(DST_HINT, "") if getattr(tab, "utc", False) else msg


def _in_fit_terms(msg: str, data) -> str:
    """A reader's or the API's message in the terms of `ganad fit --window`: the file instead of X, and
    the command's options instead of the API's parameters (``stride: is 0`` -> ``--stride: is 0``,
    ``gaps='ignore'`` -> ``--gaps ignore``, ``value_columns=[...]`` -> ``--exclude`` / ``--channels``)."""
    if msg.startswith(("X:", "X ")):
        msg = f"{data}{msg[1:]}"
    msg = in_option_terms(msg, dict(_FIT_OPTIONS))
    for g in ("split", "ignore", "error"):
        msg = msg.replace(f"gaps='{g}'", f"--gaps {g}")
    return (msg.replace("or None for one window", "or leave --event-gap out for one window")
               .replace("leave the column out with value_columns=[...]",
                        "leave the column out (--exclude COLUMN), name the channels to read (--channels a,b) "
                        "or the time column (--time-column COLUMN)"))


def _exact(t: np.ndarray) -> np.ndarray:
    """A time column as written to a scores / events file: float times as the shortest text that reads
    back as the same number (the files' float formats, 9 and 6 digits, would round 1704067201.5 to
    1.7040672e+09, so that times could no longer be told apart or matched to labelled ranges)."""
    t = np.asarray(t)
    return np.array([repr(v) for v in t.tolist()], dtype=object) if t.dtype.kind == "f" else t


def _zone(t: np.ndarray, utc: bool):
    """UTC instants (naive datetime64) of a zoned time column as tz-aware UTC times, which the files
    write as '2024-01-04 10:20:00+00:00'."""
    import pandas as pd
    return pd.DatetimeIndex(t).tz_localize("UTC") if utc and len(t) and np.asarray(t).dtype.kind == "M" else t


def _in_score_terms(msg: str, data: Path) -> str:
    """A reader's or the API's message in the terms of `ganad score`: the file instead of X, and the
    columns the model reads instead of fit-only options (--time-column, --channels, --series-id, --gaps)."""
    if msg.startswith(("X:", "X ")):
        msg = f"{data}{msg[1:]}"
    for opt, what in (("--time-column", "the model's time column"), ("--series-id", "the model's series-id column")):
        msg = msg.replace(f"for {opt} (", f"({what}; ").replace(f"pass {opt} naming one of the columns",
                                                                    "score a file with the columns the model was trained on")
    msg = msg.replace("pass --channels naming existing columns", "score a file with the channel columns the model was trained on")
    return msg.replace("pass a shorter window, longer series, or gaps='ignore' to join parts across gaps",
                       "pass a series at least one window long (or train a model with a shorter window or --gaps ignore)") \
              .replace("pass a shorter window or a longer series", "pass a series at least one window long (or train a model with a shorter window)") \
              .replace("or pass gaps='ignore' to take rows as evenly spaced", "or train the model with --gaps ignore") \
              .replace(", or leave the column out with value_columns=[...]", " (the model reads this column: it is one of its channels)")


def score_series_file(model_dir: Path, data: Path, output: Path, events: Path | None, components: bool,
                      sep: str | None = None, decimal: str = ".", nonfinite: str = "raise", exclude=()):
    """Score a series file with a series model: a score per time point and an events table
    (``nonfinite``: what a window score that overflows becomes, as for ``ganad score``). Returns
    (points, events, events path, the file's columns that were not read: not a channel, the time or
    the series id of the model, nor in ``exclude``)."""
    import pandas as pd

    import ganad
    sd = ganad.load(model_dir)
    sd.detector_.on_nonfinite = nonfinite
    tab, unread_cols = _read_for_model(sd, data, sep, decimal, exclude)
    try:
        r = sd.score_series(tab.values, time=tab.time, series_id=tab.series_id)
    except (InputError, DataFileError) as exc:
        msg = _in_score_terms(_zoned_terms(str(exc), tab), data)
        if msg != str(exc):
            raise type(exc)(msg) from exc
        raise
    cols = {}
    if tab.series_id is not None:
        cols["series"] = tab.series_id
    cols["index"] = np.arange(len(r.scores))
    if tab.time is not None:  # zoned input times: written as their UTC instants, marked +00:00 (not as bare UTC wall times)
        cols["time"] = _zone(_exact(tab.time), tab.utc)
    cols["score"] = r.scores
    cols["label"] = r.labels
    cols["event"] = r.in_event  # inside an event (labels plus the gaps an event bridges)
    n_series = 1 if tab.series_id is None else len(pd.unique(tab.series_id))
    if r.part is not None and int(r.part.max(initial=0)) + 1 > n_series:
        # a gap in time cut a series: the part of each point, so that `ganad evaluate` does not join
        # two events that meet at the gap into one
        cols["part"] = r.part
    if components:
        cols.update({f"contrib_{c}": r.contributions[:, k] for k, c in enumerate(sd.channels_)})
    df = pd.DataFrame(cols)
    ev = r.events
    if tab.series_id is None:
        ev = ev.drop(columns=["series"])
    for c in ("start_time", "end_time", "peak_time"):
        if c in ev.columns:
            ev[c] = _zone(_exact(ev[c].to_numpy()), tab.utc)
    events = events if events is not None else output.with_name(output.stem + ".events.csv")
    # both written before either is put in place, then renamed together: a failed events write or a Ctrl-C leaves
    # neither new file (never new scores beside an earlier run's events)
    with atomic_paths() as outs:
        t_scores, t_events = outs.add(output), outs.add(events)
        # the score and the threshold with every digit (a score a hair above the threshold, label 1, must not print
        # equal to it); the channels' contributions with 9
        exact = [c for c in ("score", "threshold") if c in df.columns]
        df[exact] = df[exact].map(lambda v: "" if v != v else "%.17g" % v)  # NaN stays an empty field, as to_csv writes it
        df.to_csv(t_scores, index=False, float_format="%.9g")
        ev.to_csv(t_events, index=False, float_format="%.6g")
    return len(df), len(ev), events, unread_cols()


def _read_for_model(sd, data: Path, sep, decimal, exclude):
    """The series table of ``data`` as the series model ``sd`` reads it (its channels by name, its time
    and series-id columns; an NPY array's columns as the channels in the training order), and a function
    giving the file's columns that were not read (not a channel, the time or the series id, nor in
    ``exclude``). Errors are said in `ganad score` / `ganad calibrate` terms."""
    from ganad.series.readers import read_series_file
    io = getattr(sd, "io_", None) or {}
    is_npy = data.suffix.lower() == ".npy" or (data.is_dir() and any(f.suffix.lower() == ".npy" for f in data.iterdir()))
    if is_npy and exclude:  # an NPY array has no named columns: --exclude would be ignored without a word
        raise DataFileError(_fmt(f"--exclude {', '.join(map(str, exclude))}", f"{data} is an NPY array, which has no column names, "
                                 "so there is nothing to leave out by name",
                                 "drop --exclude (the array's columns are the model's channels, in the training order), "
                                 "or pass a CSV / Parquet table"))
    read = [str(c) for c in (io.get("channels") or sd.channels_)]
    if exclude and not is_npy:
        from ganad.series.readers import series_files
        first_file = next(iter(series_files(data)), None)
        cols = [str(c) for c in _columns(first_file, sep, decimal)] if first_file is not None else []
    else:
        cols = []
    # a channel named as the file names it, or without the spaces of a header 'time, temp' (' temp'), unless the
    # file holds a column of exactly that name besides it
    both = [str(e) for e in exclude if _column_of(str(e), cols or read) in read]
    if both and not is_npy:  # it was read anyway: the model reads its channels by name
        raise DataFileError(_fmt(f"--exclude {', '.join(both)}", "names channel(s) of the model, which reads its channels by name "
                                 f"(channels: {read[:12]})", f"drop --exclude {both[0]}; a model without that channel needs a new fit"))
    chans = io.get("channels")
    if not io and not is_npy:
        from ganad.series.readers import series_files
        first = next(iter(series_files(data)), None)
        if first is not None and channel_columns(_columns(first, sep, decimal), sd.channels_) is not None:
            # a model saved from Python: its channels by name (not every other column, in the file's order), in a
            # single file or a folder of them (a folder was read by position: its first file decides, as the reader checks the rest);
            # also without surrounding spaces (a header 'time, b, a' names ' b', ' a'), as `ganad stream` and the service
            # match them: such a file was read by position, its channels swapped without a word
            chans = sd.channels_
    try:  # an NPY array has no named columns: its columns are the channels in the training order, without times
        tab = read_series_file(data, None if is_npy else io.get("time_column"), None if is_npy else chans,
                               None if is_npy or data.is_dir() else io.get("series_id"),
                               no_time=not is_npy and io.get("time_column") is None and bool(io), sep=sep, decimal=decimal,
                               exclude=() if is_npy else tuple(exclude))
    except (InputError, DataFileError) as exc:
        msg = _in_score_terms(str(exc), data)
        if msg != str(exc):
            raise type(exc)(msg) from exc
        raise

    def unread() -> list[str]:
        if not io.get("channels") or is_npy:
            return []
        names = [str(c) for c in (*io["channels"], io.get("time_column"), io.get("series_id"), *exclude) if c is not None]
        # a folder: every series file's columns (the note was only given for a single file)
        from ganad.series.readers import series_files
        return list(dict.fromkeys(c for f in series_files(data) for c in _not_named(names, [str(x) for x in _columns(f, sep, decimal)])))
    return tab, unread


def calibrate_series_file(model_dir: Path, data: Path, output: Path | None, *, threshold: str, contamination: float | None,
                          fpr: float, sep: str | None = None, decimal: str = ".", exclude=()) -> tuple[dict, list[str]]:
    """`ganad calibrate` of a series model: the point threshold set on the normal series in ``data``
    (:meth:`SeriesDetector.calibrate`), the model written to ``output`` (default: in place). Returns the
    calibration record and the file's columns that were not read."""
    import ganad
    sd = ganad.load(model_dir)
    tab, unread_cols = _read_for_model(sd, data, sep, decimal, exclude)
    try:
        sd.calibrate(tab.values, time=tab.time, series_id=tab.series_id, threshold=threshold, contamination=contamination, fpr=fpr)
    except (InputError, DataFileError) as exc:
        msg = _in_score_terms(_zoned_terms(str(exc), tab), data)
        if msg != str(exc):
            raise type(exc)(msg) from exc
        raise
    sd.save(output if output is not None else model_dir)
    return dict(sd.calibration_), unread_cols()


def _names_time(cell: str, time_name: str | None) -> bool:
    """Whether a first stream line's time cell is a header's: the model's time column's name, or for a model
    that keeps none (fitted from Python) a cell that is neither a number nor a time, or empty (df.to_csv()'s unnamed index)."""
    if time_name is not None:
        return cell == time_name
    if _number(cell):
        return False
    if not cell:  # the empty name of an unnamed index, df.to_csv()'s header ',0,1', which numpy reads as NaT: no time
        return True
    import warnings

    import pandas as pd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a zoned time: numpy warns that it drops the zone; pandas that it infers a format
        try:
            np.datetime64(cell)
            return False
        except ValueError:
            pass
        # a time as `ganad fit` / `ganad score` read a time column (pandas): '10:00:00', '01/02/2024 10:00', which numpy
        # refuses; read as a header's name, a first data line whose values equal number-named channels ('0', '1' of a
        # model fitted from pd.DataFrame(array)) was dropped and every later line's channels reordered ('10:00:00,1,0')
        try:
            pd.to_datetime(pd.Series([cell]))
            return False
        except (ValueError, TypeError, OverflowError):
            return True


def _not_named(names, columns: list[str]) -> list[str]:
    """The columns that none of ``names`` names: a name takes the column of exactly its name, else the one column
    that is it without surrounding spaces (a header 'time, temp' holds ' temp'); so ' temp' beside 'temp' stays
    unnamed by 'temp'."""
    named = {_column_of(n, columns) for n in names}
    return [c for c in columns if c not in named]


def _columns(data: Path, sep, decimal) -> list[str]:
    """The column names of a series file; none where the table reader does not name them (NPY, a
    header-less CSV) or does not know the suffix (.csv.gz: the series reader reads it)."""
    from ganad.data.readers import csv_columns
    try:
        return csv_columns(data, sep=sep, decimal=decimal) or []
    except (InputError, DataFileError):
        return []


def _utc_naive(t):
    """A time (or a Series of them) with a zone as its naive UTC instant; naive times as they are."""
    import pandas as pd
    if isinstance(t, pd.Series):
        return t.dt.tz_convert("UTC").dt.tz_localize(None) if t.dt.tz is not None else t
    return t.tz_convert("UTC").tz_localize(None) if getattr(t, "tzinfo", None) is not None else t


def _range_labels(df, ranges: Path) -> np.ndarray:
    """Per-row 0/1 labels of a series scores table from a CSV of start,end (rows or times; end included)."""
    return _range_labels_and_starts(df, ranges)[0]


def _range_labels_and_starts(df, ranges: Path) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_range_labels`, and a mask of the rows where a labelled anomaly starts (the rows of ``df``
    in order within each series). Ranges that touch (one ends at row 19, the next starts at 20) are two
    anomalies; ranges that overlap are one (their 0 / 1 labels alone made touching ones one event too)."""
    import pandas as pd
    try:
        # a hand-written 'start, end' (a space after each comma, quoted values too): the column ' end' was not found;
        # the spaces after a separator are skipped (a series id ' b' of the scores file is matched without them below)
        rg = pd.read_csv(ranges, skipinitialspace=True)
        rg.columns = [str(c).strip() for c in rg.columns]
    except Exception as exc:
        raise DataFileError(_fmt(str(ranges), f"cannot be read as CSV ({exc})", "pass a CSV with columns start,end (and series)")) from exc
    missing = [c for c in ("start", "end") if c not in rg.columns]
    if missing:
        raise DataFileError(_fmt(str(ranges), f"has no column(s) {missing} (columns: {list(rg.columns)})",
                                 "write one labelled anomaly per row with columns start,end (row indices or times, end included)"))
    if len(rg) == 0:
        raise DataFileError(_fmt(str(ranges), "holds no range (a header only)", "write one labelled anomaly per row; "
                                 "a series without anomalies cannot be evaluated by AUROC / VUS"))
    if "series" in rg.columns and "series" not in df.columns:
        raise DataFileError(_fmt(str(ranges), "has a 'series' column but the scores file has none, so every range would apply to all points",
                                 "score the series with their series id (--series-id at fit), or drop the column for one series"))
    y = np.zeros(len(df), dtype=np.int64)
    int_ranges = pd.api.types.is_integer_dtype(rg["start"]) and pd.api.types.is_integer_dtype(rg["end"])
    by_time = "time" in df.columns and not int_ranges
    if ("time" in df.columns and int_ranges and pd.api.types.is_numeric_dtype(df["time"])
            and not np.array_equal(df["time"].to_numpy(), df["index"].to_numpy())):
        # whole numbers are both valid row indices and valid times here, and the two readings label other points
        raise DataFileError(_fmt(str(ranges), "holds whole numbers, which could be row indices or times of the scores file's numeric "
                                              "'time' column (they differ)",
                                 "write the ranges as times with a decimal point (e.g. 301.0,310.0), or as row indices in a "
                                 "scores file written without a time column"))
    if by_time:
        t = df["time"]
        if not pd.api.types.is_numeric_dtype(t):
            # zoned times (the scores file's '+00:00', a range's '+01:00') compare as UTC instants; a range
            # without a zone against a zoned file is read as UTC, the zone the file's times are written in
            file_zoned = _zoned(t)
            t = _utc_naive(pd.to_datetime(t, utc=file_zoned))

            def conv(v):
                v = pd.to_datetime(v)
                if not file_zoned and getattr(v, "tzinfo", None) is not None:
                    # naive times may be local wall times: reading them as UTC would shift the labels by the offset
                    raise DataFileError(_fmt(str(ranges), f"holds a time with a zone ({v}) but the scores file's times have none, "
                                             "so the two cannot be matched without guessing the zone of the scores",
                                             "write the ranges without a zone, in the scores file's time, or score a series "
                                             "whose time column carries its zone"))
                return _utc_naive(v)
        else:
            conv = float
        axis = t.to_numpy()
    else:
        axis = df["index"].to_numpy()

        def conv(v):  # a whole row index: int() would cut 3.9 to 3 and label a row before the range
            f = float(v)
            if not np.isfinite(f) or f != int(f):
                raise ValueError(f"{f:g} is not a whole row index")
            return int(f)
    # the ids as written: iterrows makes one row of numbers float, so that a series 1 read as 1.0 matched nothing
    rg_series = rg["series"].astype(str).to_numpy() if "series" in rg.columns else np.empty(0, dtype=object)
    if "series" in rg.columns and "series" in df.columns:
        # an id written with a space after the comma (' b') is the scores file's id where only that matches it
        # without surrounding spaces; an id the scores file holds as written is taken as it is
        ids = list(df["series"].astype(str).unique())
        exact = set(ids)  # (a file of many series: the search without spaces only for the ids that miss)
        rg_series = np.array([v if v in exact else _column_of(v, ids) for v in rg_series], dtype=object)
    bounds = []
    for k, row in rg.iterrows():
        if pd.isna(row["start"]) or pd.isna(row["end"]):
            raise DataFileError(_fmt(f"{ranges} row {k}", "has an empty start or end", "fill in both ends of every range (end included)"))
        try:
            s, e = conv(row["start"]), conv(row["end"])
        except DataFileError:
            raise
        except (TypeError, ValueError) as exc:
            raise DataFileError(_fmt(f"{ranges} row {k}", f"cannot be read as a {'time' if by_time else 'row index'} range ({exc})",
                                     "write start,end as row indices, or as times like the scores file's time column")) from exc
        if e < s:
            raise DataFileError(_fmt(f"{ranges} row {k}", f"ends before it starts ({row['start']} > {row['end']})", "swap start and end"))
        if not by_time and s < 0:
            raise DataFileError(_fmt(f"{ranges} row {k}", f"starts at a negative row index ({s})", "write row indices from 0"))
        if by_time and axis.dtype.kind not in "iuf":  # datetimes: the bounds in the column's unit
            s, e = np.asarray(s).astype(axis.dtype), np.asarray(e).astype(axis.dtype)
        # numbers are compared as they are (cast to whole times, a range 10.5-12 would have taken time 10)
        bounds.append((k, row, s, e))
    # the rows of each series (all rows without a series column), split once: a range marks the rows of its
    # series whose index or time lies in [start, end], found by binary search where the axis is sorted (as
    # `ganad score` writes it), so labelling costs O((points + ranges) log points), not points × ranges
    per_series = "series" in rg.columns and "series" in df.columns
    if per_series:  # one grouping pass (a pass per series was quadratic for files of many short series)
        groups = {str(key): np.asarray(ix) for key, ix in df.groupby(df["series"].astype(str), sort=False).indices.items()}
    else:
        groups = {None: np.arange(len(df))}
    sorted_axis = {g: (ix, axis[ix], bool(len(ix) < 2 or np.all(axis[ix][1:] >= axis[ix][:-1]))) for g, ix in groups.items()}
    spans = []
    for i, (k, row, s, e) in enumerate(bounds):
        ix, ax, ordered = sorted_axis.get(rg_series[i] if per_series else None, (np.empty(0, np.int64), axis[:0], True))
        if ordered:
            lo, hi = np.searchsorted(ax, s, side="left"), np.searchsorted(ax, e, side="right")
            hit = ix[lo:hi] if hi > lo else ix[:0]
        else:
            hit = ix[(ax >= s) & (ax <= e)]
        if len(hit) == 0:
            raise DataFileError(_fmt(f"{ranges} row {k}", f"({row['start']}, {row['end']}) covers none of the scored points",
                                     "check the range is in the same units (row index or time) as the scores file"))
        y[hit] = 1
        spans.append((int(hit.min()), int(hit.max())))
    starts = np.zeros(len(df), dtype=bool)
    end = -1
    for a, b in sorted(spans):
        if a > end:  # not inside the anomaly before it (one that only touches it starts a new one)
            starts[a] = True
        end = max(end, b)
    return y, starts


def _order(df, scores: Path):
    """The order that puts the scores table's rows in the order of their ``index`` within each series
    (series in their order of first appearance), or None where they are in it: the event, PA and VUS
    figures read the rows as a sequence, and a file whose rows were shuffled or concatenated out of order
    gave other figures without a word (event F1 0.13 → 0.55). A point listed twice is refused."""
    import pandas as pd
    idx = pd.to_numeric(df["index"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(idx).all():
        row = int(np.flatnonzero(~np.isfinite(idx))[0])
        raise DataFileError(_fmt(str(scores), f"has an 'index' that is not a number at row {row} ({df['index'].iloc[row]})",
                                 "pass the CSV written by `ganad score`, whose index numbers its rows"))
    group = pd.factorize(df["series"].astype(str))[0] if "series" in df.columns else np.zeros(len(df), dtype=np.int64)
    order = np.lexsort((idx, group))
    g, v = group[order], idx[order]
    dup = np.flatnonzero((g[1:] == g[:-1]) & (v[1:] == v[:-1]))
    if dup.size:
        row = int(order[dup[0] + 1])
        where = f"series {df['series'].iloc[row]!r}, " if "series" in df.columns else ""
        raise DataFileError(_fmt(str(scores), f"lists the point {where}index {df['index'].iloc[row]} more than once (again at row {row})",
                                 "pass each point once (the CSV written by `ganad score`; files of several runs concatenated hold points twice)"))
    return None if np.array_equal(order, np.arange(len(df))) else order


def _parts(df, scores: Path):
    """The scores file's ``part`` column (written where a gap in time cut a series), or None."""
    import pandas as pd
    if "part" not in df.columns:
        return None
    part = pd.to_numeric(df["part"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(part).all() or (part != np.round(part)).any():
        row = int(np.flatnonzero(~np.isfinite(part) | (part != np.round(part)))[0])
        raise DataFileError(_fmt(str(scores), f"has a 'part' column that is not a whole number at row {row} ({df['part'].iloc[row]})",
                                 "pass the CSV written by `ganad score` (or drop the column: events are then not split at gaps)"))
    return part.astype(np.int64)


def _breaks(part, idx=None):
    """Positions (within ``idx``'s rows) where a new part starts: predicted events are split there."""
    if part is None:
        return None
    p = part if idx is None else part[idx]
    return np.flatnonzero(np.diff(p) != 0) + 1


def evaluate_series(scores: Path, ranges: Path, max_buffer: int) -> dict:
    """Series metrics of a scores CSV against labelled ranges; per series when there is a series column (then averaged)."""
    import pandas as pd
    from ganad.series.metrics import series_metrics
    try:
        df = pd.read_csv(scores)
    except Exception as exc:
        raise GanadError(f"{scores}: cannot be read ({exc}). Fix: pass the CSV written by `ganad score`") from exc
    for c in ("index", "score"):
        if c not in df.columns:
            raise GanadError(f"{scores}: has no {c!r} column. Fix: pass the CSV written by `ganad score` with a series model")
    if len(df) == 0:  # before the ranges, which would be blamed for covering none of 0 points
        raise GanadError(f"{scores}: has a header but no data rows. Fix: pass the CSV written by `ganad score` on your series")
    order = _order(df, scores)  # the rows by index within each series: checked here, applied once every row-naming check is done
    from ganad.metrics import _finite_scores_file, _inf_on_top
    scores_, n_inf = _inf_on_top(pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=np.float64))
    _finite_scores_file(scores_, scores)
    df["score"] = scores_  # `ganad score --nonfinite max` rows ranked first, as `ganad evaluate --labels` does
    inf_note = {"n_inf_scores": n_inf} if n_inf else {}
    # event-wise figures from the model's events where the file has them (gaps bridged)
    evp = df["event"].to_numpy() if "label" in df.columns and "event" in df.columns else None
    if evp is not None:
        bad = ~np.isin(pd.to_numeric(df["event"], errors="coerce").to_numpy(), (0, 1))
        if bad.any():  # e.g. rows of a file written before the event column, concatenated with newer ones
            row = int(np.flatnonzero(bad)[0])
            raise DataFileError(_fmt(str(scores), f"has {int(bad.sum())} value(s) in its 'event' column that are not 0 or 1, the first at "
                                                  f"row {row} ({df['event'].iloc[row]})",
                                     "pass the CSV written by `ganad score` (score rows written without an event column again, "
                                     "or drop the column to count events on the labels)"))
        evp = evp.astype(np.int64)
    part = _parts(df, scores)
    if order is not None:  # the file's rows named above; from here on the rows in order
        df = df.iloc[order].reset_index(drop=True)
        evp = None if evp is None else evp[order]
        part = None if part is None else part[order]
    y, starts = _range_labels_and_starts(df, ranges)
    pred = df["label"].to_numpy() if "label" in df.columns else None
    if "series" not in df.columns:
        return {**series_metrics(y, df["score"].to_numpy(), pred, max_buffer=max_buffer, y_event=evp, breaks=_breaks(part),
                                 true_breaks=np.flatnonzero(starts)), **inf_note}
    from ganad.series.metrics import label_ranges
    per, skipped, false_events = {}, [], 0
    for sid, g in df.groupby("series", sort=False):
        idx = g.index.to_numpy()
        if y[idx].min() == y[idx].max():
            # the metrics need both classes within a series: such a series is left out of the means, but
            # not out of sight: its name is listed, and the events predicted where nothing is labelled
            # (every one a false alarm) are counted
            skipped.append(str(sid))
            if pred is not None and y[idx].max() == 0:
                false_events += len(label_ranges(pred[idx] if evp is None else evp[idx], _breaks(part, idx)))
            continue
        per[str(sid)] = series_metrics(y[idx], g["score"].to_numpy(), None if pred is None else pred[idx], max_buffer=max_buffer,
                                       y_event=None if evp is None else evp[idx], breaks=_breaks(part, idx),
                                       true_breaks=np.flatnonzero(starts[idx]))
    if not per:
        raise GanadError(f"{ranges}: no series has both labelled and normal points. Fix: check the ranges and the series column")
    keys = [k for k, v in next(iter(per.values())).items() if isinstance(v, float)]
    out = {f"mean_{k}": float(np.mean([m[k] for m in per.values()])) for k in keys}
    out["n_series"] = len(per)
    out["n_series_skipped"] = len(skipped)
    if pred is not None:
        out["false_events_in_skipped_series"] = false_events
    out.update(inf_note)
    out["skipped_series"] = skipped
    out["per_series"] = per
    return out


def _update(sc, buf, lines_of):
    """``sc.update`` on the buffered points; a refusal names the stdin line(s), not the row of the batch."""
    try:
        return sc.update(np.asarray(buf))
    except InputError as exc:
        if getattr(exc, "nonfinite_rows", None) is not None:  # names the stream points (the output's index) of the window
            raise InputError(f"stdin line {lines_of[-1]} completes a window that cannot be scored: {exc}") from exc
        where = f"stdin line {lines_of[0]}" if len(lines_of) == 1 else f"stdin lines {lines_of[0]}-{lines_of[-1]} (rows count from 0 there)"
        raise InputError(f"{where}: {exc}") from exc


def line_limit(n_channels: int) -> int:
    """The longest stdin line `ganad stream` reads, in characters: 1 MiB, or 4096 per channel (and a time)
    for a model of many channels; far beyond a point's numbers or a header of channel names, and small
    enough that an input without line ends (/dev/zero, a binary producer) is refused instead of kept."""
    return max(1 << 20, 4096 * (int(n_channels) + 1))


def bounded_lines(lines, limit: int):
    """The lines of a text stream, each read with at most ``limit + 1`` characters (one longer than
    ``limit`` is a line without its end: the caller refuses it); any other iterable of lines as it is."""
    if not hasattr(lines, "readline"):
        yield from lines
        return
    while True:
        line = lines.readline(limit + 1)
        if not line:
            return
        yield line


def _quoted_cells(line: str, sep: str) -> list[str]:
    """A stream line holding quotes split as a CSV row; a malformed one (an unterminated quote) as it is split
    plainly, so that its quoted cell is refused as no number instead of read."""
    import csv
    try:
        return next(csv.reader([line], delimiter=sep, strict=True), [])
    except csv.Error:
        return line.split(sep)


class _GapWatch:
    """``ganad stream --has-time``: the stream reads past the time column (it is one series without gaps), so a
    pause in the source is scored across as if the points were adjacent, where batch scoring splits the series
    (``gaps='split'``: a step longer than ``gap_factor`` × the median step). This says so once, at the first such
    step after 10 steps (the median of the first 100 steps as the reference). Times it cannot read quickly
    (numbers, ISO 8601) are passed over without a word: the time column stays unused as before."""

    def __init__(self, factor: float):
        self.factor, self.prev, self.steps, self.med = factor, None, [], None

    @staticmethod
    def _t(cell: str):
        cell = cell.strip().strip('"')
        try:
            return float(cell)
        except ValueError:
            pass
        import datetime
        try:
            t = datetime.datetime.fromisoformat(cell)
        except ValueError:
            return None
        return t.timestamp() if t.tzinfo is not None else (t - datetime.datetime(1970, 1, 1)).total_seconds()

    def see(self, cell: str, n_line: int) -> bool:
        """Take one point's time cell; True once the warning was given (no need to look further)."""
        t = self._t(cell)
        if t is None or t != t:
            self.prev = None
            return False
        prev, self.prev = self.prev, t
        if prev is None:
            return False
        step = t - prev
        if self.med is not None and step > self.factor * self.med > 0:
            import logging
            logging.getLogger("ganad").warning(
                "stdin line %d: the time moves on %.6g (seconds, or the time column's unit) after the previous point, more than "
                "%g x the stream's median step (%.6g): a stream scores across a gap as if the points were adjacent (batch scoring "
                "splits the series there, gaps='split'); for a source that pauses, start a new stream after the pause", n_line, step,
                self.factor, self.med)
            return True
        if len(self.steps) < 100 and step > 0:
            self.steps.append(step)
            if len(self.steps) >= 10:
                import statistics
                self.med = statistics.median(self.steps)
        return False


def stream_lines(model_dir: Path, lines, write, batch: int = 1, has_time: bool = False, sep: str | None = None,
                 decimal: str = ".", nonfinite: str = "raise"):
    """`ganad stream`: read points (one line each: C numbers separated by ``sep`` (default ','), with
    ``decimal`` as their decimal mark, or time,values with has_time), write ``point,index,score,label``
    lines and ``open,start`` / ``close,start,end,peak_score,channels``. A line that repeats the header
    (a file followed with `tail -F` that was rotated: the new file starts with the header again) is skipped."""
    import csv

    import ganad
    sep = "," if sep is None else sep
    if sep == "\\t":  # '--sep \t' typed in a shell: the tab it means
        sep = "\t"
    if len(sep) != 1 or sep in "\r\n\"":
        raise GanadError(f"--sep: is {sep!r}; a stream line is split at one character. Fix: pass one character such as ';' or a tab")
    if len(decimal) != 1 or decimal == sep or decimal in "\r\n\"":
        raise GanadError(f"--decimal: is {decimal!r}" + (" (the same as --sep)" if decimal == sep else "")
                         + ". Fix: pass one character other than the separator, e.g. --sep ';' --decimal ','")
    sd = ganad.load(model_dir)
    if not hasattr(sd, "stream"):
        raise GanadError(f"{model_dir}: is not a series model. Fix: train one with `ganad fit series.csv --window W`")
    sd.detector_.on_nonfinite = nonfinite  # a window that overflows: an error naming its points, or the top score
    sc = sd.stream()
    C = sd.n_channels_
    buf, lines_of, n_line = [], [], 0
    first = True   # the first non-blank line may be a header
    header = None  # that header line, stripped: a line repeating it later is skipped (a rotated file's header)
    order = None   # column order of a header naming the channels in another order
    repeated_numbers = False  # a later line repeating a header of numbers only was read as data (said once)
    gaps = _GapWatch(float(getattr(sd, "gap_factor", 3.0)))  # --has-time: a gap the stream scores across is said once
    # (not without a time, nor for a model fitted with --gaps ignore: batch scoring scores across its gaps too)
    gap_said = not has_time or getattr(sd, "gaps", "split") == "ignore"

    def num(v: str) -> float:
        # the decimal mark of `ganad fit --decimal`: '1,5' with ','; a '.' is then no decimal mark (as pandas reads)
        if decimal != ".":
            if "." in v:
                raise ValueError(v)
            v = v.replace(decimal, ".")
        return strict_float(v)  # '1_0' is text to pandas (ganad score refuses it): float() read it as 10

    def is_num(v: str) -> bool:
        if decimal == ".":
            return _number(v)
        try:
            num(v)
            return True
        except ValueError:
            return False

    gap = int(getattr(sd, "event_gap_", 0) or 0)

    def emit(up):
        # in the order things happen: an event opens just before its first point's line and closes just
        # after the line of the point that ends it (the (gap + 1)-th normal point after its last
        # anomalous one); one update can hold several points, opens and closes (a large --batch)
        out = [((ev["start"], 0), f"open,{ev['start']}\n") for ev in up.opened]
        out += [((i, 1), f"point,{i},{s:.9g},{lab}\n") for i, s, lab in zip(up.index.tolist(), up.scores.tolist(), up.labels.tolist())]
        out += [((ev["end"] + gap + 1, 2), f"close,{ev['start']},{ev['end']},{ev['peak_score']:.6g},{_csv_field(ev['channels'])}\n")
                for ev in up.closed]
        if out:
            write("".join(line for _, line in sorted(out, key=lambda kv: kv[0])))

    # the channels as a header names them, also without surrounding spaces: a file whose header has a space after
    # each comma ('time, temp, pressure') gave the model channels ' temp', ' pressure' (pandas keeps the spaces);
    # channel_columns is the service's rule too
    named_model = not unnamed_channels(sd.channels_)
    default_names = [str(c) for c in sd.channels_] == [str(i) for i in range(C)]  # fitted from pd.DataFrame(array)
    time_name = (getattr(sd, "io_", None) or {}).get("time_column")
    time_name = None if time_name is None else str(time_name).strip()
    how = "one point per line" + ("" if sep == "," and decimal == "." else f" (--sep {sep!r}, --decimal {decimal!r})")
    limit = line_limit(C)
    for line in bounded_lines(lines, limit):
        n_line += 1
        if len(line.rstrip("\n")) > limit:
            raise GanadError(f"stdin line {n_line}: is longer than {limit} characters without a line end (a point of {C} channel(s) "
                             f"needs far fewer; it was not kept in memory). Fix: send {how}, each line ended by a newline")
        # a byte-order mark before the first line (a CSV saved by Excel): `ganad score` reads such a file, and
        # its header would otherwise name a channel '\ufefftemp' that the model does not have (a rotated
        # file's first line may carry one too)
        line = (line.strip().lstrip("\ufeff") if n_line == 1 or header is not None else line).strip()
        if not line:
            continue
        # the header again: a rotated file (`tail -F`) starts with it; not a header of numbers only ('0,1', pandas' default
        # names), which a later data line may equal (a one-channel model's '0' would drop every 0 of the stream)
        if header is not None and line == header:
            if not all(_number(v.strip()) for v in line.split(sep)):
                continue
            if not repeated_numbers:  # a data point, or a rotated file's header scored as one: said once
                repeated_numbers = True
                import logging
                logging.getLogger("ganad").warning(
                    "stdin line %d: %r repeats the header of numbers only and is read as a data point (so is every later such "
                    "line); if a rotated file starts with it, that header is scored as a point: restart the stream at the "
                    "rotation, or name the channels in the file's header", n_line, line)
        # quoted fields (a CSV written with every field quoted, a time holding the separator) as `ganad score` reads
        # them; the plain split otherwise (the per-point path)
        cells = line.split(sep) if '"' not in line else _quoted_cells(line, sep)
        parts = cells[1:] if has_time else cells
        was_first, first = first, False
        # a first line naming the model's channels is its header also where the names are numbers ('time,101,102'
        # with --has-time: it was read as a data point), but only where its time cell names the model's time column
        # (a model fitted from Python keeps none: a time cell that is neither a number nor a time): a data line's
        # values may equal number names too, and read as a header it would drop that point and reorder every later one
        named = (was_first and has_time and (named_model or default_names) and len(parts) == C
                 and _names_time(cells[0].strip(), time_name) and channel_columns(parts, sd.channels_) is not None)
        # a model fitted from pd.DataFrame(array) has pandas' default names '0', '1', ...: a first line '0,1,...' (the
        # header of pd.DataFrame(array).to_csv()) is its header, as `ganad score` and the service read it (pandas'
        # default column names); it was read as a data point, a point more than the file holds, every index shifted by one
        zero_header = (was_first and not has_time and default_names and [p.strip() for p in parts] == [str(i) for i in range(C)])
        if zero_header:
            import logging
            logging.getLogger("ganad").warning("stdin line %d: %r is read as a header (the model's channel names, pandas' default "
                                               "column names), not as data", n_line, line)
        named = named or zero_header
        try:
            if named:
                raise ValueError(line)
            row = [num(v) for v in parts]
        except ValueError:
            # a header line: no cell is a number, or it names the model's channels (some named like numbers, 'temp,7':
            # a cell that is no number makes it no data line; it was refused as 'not 3 numbers' without --has-time)
            if was_first and (named or not any(is_num(v) for v in parts)
                              or (named_model and len(parts) == C and channel_columns(parts, sd.channels_) is not None)):
                # as a CSV header: a quoted name may hold the separator ("valve,open")
                cells = next(csv.reader([line], delimiter=sep, skipinitialspace=True), [])
                raw = cells[1:] if has_time else cells
                names = [p.strip() for p in raw]
                pos = channel_columns(raw, sd.channels_) if len(raw) == C else None
                if pos is not None:
                    if pos != list(range(C)):
                        order = pos  # the model's channel order
                elif named_model:
                    # other names than the model's channels: reading the values by position would
                    # score them as channels they may not be (a model without channel names reads by position)
                    raise GanadError(f"stdin line {n_line}: is a header naming {names[:8]}, but the model's channels are {sd.channels_}. "
                                     "Fix: send the model's channels (in any order, named in the header), or no header line"
                                     + ("" if has_time else " (pass --has-time when a time column comes first)")
                                     + ("" if len(names) != 1 or sep != "," else " (pass --sep when another character separates the columns)"))
                header = line
                continue
            hint = ""
            if decimal == "." and sep != "," and any(re.fullmatch(r"\s*-?\d+,\d+\s*", v) for v in parts):
                hint = " (the numbers seem to use a decimal comma: pass --decimal ',')"
            elif sep == "," and ";" in line:
                hint = " (';' seems to separate the columns: pass --sep ';', with --decimal ',' for decimal commas)"
            raise GanadError(f"stdin line {n_line}: {line[:60]!r} is not {C} numbers separated by {sep!r}{hint}. Fix: send {how}"
                             + (" (a header is read only as the first line, or where it repeats that one)" if header is None and not was_first else ""))
        if len(row) != C:
            raise GanadError(f"stdin line {n_line}: has {len(row)} value(s), the model has {C} channel(s) {sd.channels_}. "
                             "Fix: send every channel in that order (pass --has-time when a time comes first"
                             + (", --sep when another character than ',' separates the columns)" if sep == "," else ")"))
        if not gap_said:
            gap_said = gaps.see(cells[0], n_line)
        buf.append(row if order is None else [row[i] for i in order])
        lines_of.append(n_line)
        if len(buf) >= batch:
            emit(_update(sc, buf, lines_of))
            buf, lines_of = [], []
    if buf:
        emit(_update(sc, buf, lines_of))
    emit(sc.close())
    return sc
