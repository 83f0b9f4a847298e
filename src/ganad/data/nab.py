"""Numenta Anomaly Benchmark (NAB): univariate series with labelled anomaly windows.

The NAB folder layout (as in the NAB repository)::

    <root>/data/<category>/<series>.csv       columns timestamp,value
    <root>/labels/combined_windows.json       {"<category>/<series>.csv": [[start, end], ...]}

Every time point inside a window (both ends included, as NAB scores them) is labelled 1.
Rows are kept in file order, as NAB scores them (a few files repeat or step back a time).

Example::

    from ganad.data.nab import load_nab, nab_series
    nab_series("/data/nab")[:2]          # ['artificialNoAnomaly/art_daily_no_noise', ...]
    t, v, y = load_nab("/data/nab", "realKnownCause/nyc_taxi")
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ganad.data.windows import _numeric_column, _time_axis
from ganad.exceptions import DataFileError, _fmt

#: labels file read by default, relative to the NAB root
DEFAULT_LABELS = "labels/combined_windows.json"


class NABSeries(NamedTuple):
    """One NAB series; unpacks as ``timestamps, values, labels``."""

    timestamps: np.ndarray
    """datetime64[ns] (T,)"""
    values: np.ndarray
    """float64 (T,), the ``value`` column as written in the CSV"""
    labels: np.ndarray
    """int64 (T,), 1 inside a labelled anomaly window, else 0"""


def _data_dir(root: str | os.PathLike) -> Path:
    d = Path(root).expanduser() / "data"
    if not d.is_dir():
        raise DataFileError(_fmt(str(root), "has no data/ folder", "pass the NAB root folder, the one holding data/ and labels/"))
    return d


def nab_series(root: str | os.PathLike) -> list[str]:
    """Names ``'<category>/<series>'`` (without ``.csv``) of every CSV under ``<root>/data``, sorted."""
    d = _data_dir(root)
    return sorted(p.relative_to(d).with_suffix("").as_posix() for p in d.rglob("*.csv") if p.is_file())


def _resolve(root, name: str) -> str:
    names = nab_series(root)
    key = name.strip().replace("\\", "/").removesuffix(".csv").removeprefix("data/")
    if key in names:
        return key
    hits = [n for n in names if n.rsplit("/", 1)[-1] == key]
    if len(hits) == 1:
        return hits[0]
    problem = f"has no series {name!r}" if not hits else f"has several series named {name!r}: {hits}"
    raise DataFileError(_fmt(f"NAB root {str(root)!r}", problem, "pass '<category>/<series>' as listed by nab_series(root)"))


def nab_windows(root: str | os.PathLike, name: str, labels_file: str | os.PathLike | None = None) -> list[tuple[np.datetime64, np.datetime64]]:
    """The labelled anomaly windows ``(start, end)`` (both included) of one series."""
    key = _resolve(root, name)
    lp = Path(labels_file) if labels_file is not None else Path(root).expanduser() / DEFAULT_LABELS
    try:
        table = json.loads(lp.read_text())
    except FileNotFoundError as exc:
        raise DataFileError(_fmt(str(lp), "does not exist", "pass the NAB root holding labels/combined_windows.json (CLI: --data; "
                                             "Python: root, or labels_file= naming another windows file)")) from exc
    except (OSError, ValueError) as exc:
        raise DataFileError(_fmt(str(lp), f"is not readable JSON ({exc})", "restore the file from the NAB repository")) from exc
    entry = table.get(key + ".csv", table.get(key)) if isinstance(table, dict) else None
    if entry is None:
        raise DataFileError(_fmt(str(lp), f"has no entry for {key + '.csv'!r}",
                                 f"add \"{key}.csv\": [[start, end], ...] to it (\"{key}.csv\": [] for a series without anomalies)"
                                 + ("" if labels_file is not None else
                                    ", or move the series out of data/ (`ganad benchmark nab` reads --data's "
                                    "labels/combined_windows.json; from Python, labels_file= names another windows file)")))
    out = []
    try:
        for start, end in entry:
            s, e = np.datetime64(str(start).replace(" ", "T"), "ns"), np.datetime64(str(end).replace(" ", "T"), "ns")
            if e < s:
                raise ValueError(f"window ends before it starts: {start} > {end}")
            out.append((s, e))
    except (TypeError, ValueError) as exc:
        raise DataFileError(_fmt(str(lp), f"entry {key + '.csv'!r} is not a list of [start, end] time pairs ({exc})",
                                 "write each window as [\"YYYY-MM-DD hh:mm:ss\", \"YYYY-MM-DD hh:mm:ss\"]")) from exc
    return out


def load_nab(root: str | os.PathLike, name: str, labels_file: str | os.PathLike | None = None) -> NABSeries:
    """One NAB series with per-point labels.

    Parameters
    ----------
    root : the NAB folder holding ``data/`` and ``labels/``.
    name : ``'<category>/<series>'`` (``.csv`` optional), or the bare series name when
        it is unique, e.g. ``'nyc_taxi'``.
    labels_file : windows JSON to use instead of ``<root>/labels/combined_windows.json``.

    Returns
    -------
    NABSeries
        ``timestamps`` datetime64[ns] (T,), ``values`` float64 (T,), ``labels`` int64
        (T,) with 1 for points inside a window (ends included).
    """
    import pandas as pd

    key = _resolve(root, name)
    path = _data_dir(root) / f"{key}.csv"
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise DataFileError(_fmt(str(path), f"cannot be parsed as CSV ({type(exc).__name__}: {exc})",
                                 "restore the file from the NAB repository")) from exc
    missing = [c for c in ("timestamp", "value") if c not in df.columns]
    if missing:
        raise DataFileError(_fmt(str(path), f"has no column(s) {missing} (columns: {list(df.columns)})",
                                 "NAB files have the header 'timestamp,value'"))
    # NAB scores files in row order; one file (realKnownCause/machine_temperature_system_failure)
    # steps back an hour at row 10149, so the order is kept and not checked.
    t = _time_axis(df["timestamp"], str(path), "timestamp", check_order=False)
    if t.dtype.kind != "M":
        t = pd.to_datetime(df["timestamp"]).to_numpy().astype("datetime64[ns]")
    v = _numeric_column(df["value"], str(path), "value")
    labels = np.zeros(t.shape[0], dtype=np.int64)
    for s, e in nab_windows(root, key, labels_file):
        labels[(t >= s) & (t <= e)] = 1
    return NABSeries(timestamps=t, values=v, labels=labels)
