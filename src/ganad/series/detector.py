"""A series wrapper around any ganad detector: long series in, a score per time point and events out.

``SeriesDetector(detector, window=W, stride=S)`` cuts every series into windows of ``W`` points
(one every ``S``), trains the wrapped detector on the windows (its ``scaler`` scales each channel
on the training windows), and maps window scores back to time points: a point's score is the
mean of the scores of the windows that cover it. A point is anomalous when its score exceeds
``threshold_``, the ``1 - contamination`` quantile of the training points' scores. Contiguous
anomalous points form an **event** (start, end, peak score, and the channels that drive it,
from the per-channel reconstruction residual of the windows, relative to its training mean);
runs of anomalous points with at most ``event_gap`` normal points between them (default: one
window, so every point of the gap shares a window with one of the runs) are one event.

Batch scoring (:meth:`SeriesDetector.score_series`) and streaming scoring
(:class:`ganad.series.stream.StreamScorer`) share the window layout, the aggregation and the
event extraction, so the same series gives the same scores both ways.

Handling of awkward input (documented, tested):

- **several series**: a list of arrays, or ``series_id=`` (one id per row; rows of one id keep
  their order and need not be contiguous). Windows never cross series.
- **gaps / irregular time**: with ``time=``, a step longer than ``gap_factor`` x the median step
  is a gap. ``gaps='split'`` (default) scores the parts on either side as separate series,
  ``'ignore'`` treats the rows as evenly spaced, ``'error'`` refuses. Jitter below the factor
  is ignored (points are taken as evenly spaced). Time going backwards is an error.
- **NaN / inf inside a series**: an error naming the row and channel (fill them first).
- **a series (or a part between gaps) shorter than the window**: an error at scoring time
  naming it; at fit time such parts are skipped with a warning (an error if nothing is left).

Example::

    import numpy as np
    from ganad.series import SeriesDetector
    t = np.arange(4000)
    X = np.c_[np.sin(t / 20), np.cos(t / 33)]                  # (T, C) normal telemetry
    sd = SeriesDetector("fanogan", window=64, stride=8, detector_params={"epochs": 5}).fit(X)
    res = sd.score_series(X)                                   # res.scores (T,), res.events (DataFrame)
    sd.save("series-model/"); sd2 = ganad.load("series-model/")
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator

from ganad.data.validation import as_pandas_frame, plain_input
from ganad.data.windows import make_windows
from ganad.exceptions import InputError, ModelFileError, NotFittedError, _fmt
from ganad.params import is_int, kept_on_failure
from ganad.series.readers import unnamed_channels
from ganad.io import SERIES_CONFIG, check_model_path, finite_number, write_wrapper_model  # one definition of what a model directory is

SERIES_FORMAT = "ganad-series"
SERIES_FORMAT_VERSION = 1
DETECTOR_DIR = "detector"
GAPS = ("split", "ignore", "error")
WINDOW_SCORES = ("detector", "dtw")


@dataclass
class SeriesScores:
    """What :meth:`SeriesDetector.score_series` returns; every per-point array follows the input rows."""

    scores: np.ndarray
    """float64 (T,) score per time point (higher = more anomalous)."""
    labels: np.ndarray
    """int64 (T,) 1 where ``scores > threshold``."""
    contributions: np.ndarray
    """float64 (T, C) per-channel residual at each point, divided by its training mean (1 = typical)."""
    events: Any
    """pandas DataFrame, one row per event (see :func:`events_frame`)."""
    threshold: float
    in_event: np.ndarray | None = None
    """int64 (T,) 1 for the points inside an event (``labels`` plus the gaps of at most
    ``event_gap`` points an event bridges): the predictions event-wise metrics read."""
    part: np.ndarray | None = None
    """int64 (T,) the number of the part each point was scored in: the series, each cut at its gaps
    in time (``gaps='split'``), numbered in order from 0; events never span two parts."""


# ---------------------------------------------------------------------------------------------- input
def _frames(X):
    """A polars / pyarrow frame (or a list of them) as pandas, so that its channel names are read
    (by name at scoring, naming the channels at fit) as a pandas DataFrame's are."""
    return [as_pandas_frame(x) for x in X] if isinstance(X, (list, tuple)) else as_pandas_frame(X)


def _as_series(X, name: str = "X", channels=None, row0: int = 0) -> np.ndarray:
    """One series as a (T, channels) float64 array, checked. ``channels``: the names of its columns, for
    the messages (a DataFrame's own columns otherwise); ``row0``: the index of its first row (a stream's
    chunk), so that a message names the row the user sent."""
    X = plain_input(X, name)
    if channels is None and getattr(X, "columns", None) is not None:
        channels = [str(c) for c in X.columns]
    frame = X if getattr(X, "columns", None) is not None and hasattr(X, "iloc") else None  # a DataFrame: its text column named
    if hasattr(X, "to_numpy") and type(X).__module__.split(".")[0] == "pandas":
        # a table's time column passed among the channels: a zoned one became its nanoseconds, a channel, without a word
        from pandas.api.types import is_datetime64_any_dtype, is_timedelta64_dtype
        for c, t in (list(zip(X.columns, X.dtypes)) if frame is not None else [(getattr(X, "name", None), X.dtype)]):  # names may repeat
            if is_datetime64_any_dtype(t) or is_timedelta64_dtype(t):
                if frame is None:
                    raise InputError(_fmt(name, f"holds times ({t})", "pass the times as time=... and the channel values as X"))
                raise InputError(_fmt(name, f"channel {str(c)!r} holds times ({t})",
                                      f"pass them as time=df[{str(c)!r}] and the channels without them (df.drop(columns=[{str(c)!r}]))"))
    if hasattr(X, "to_numpy"):
        from pandas.api.types import is_extension_array_dtype
        dtypes = X.dtypes if hasattr(X, "dtypes") and not hasattr(X, "to_frame") else [X.dtype]
        if any(is_extension_array_dtype(t) for t in dtypes):  # nullable Float64 / Int64: pd.NA as NaN, named below
            try:
                X = X.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise (_text_column(frame, name, row0) or
                       InputError(_fmt(name, f"cannot be read as numbers ({exc})", "pass a (T,) or (T, channels) numeric array"))) from exc
        else:
            X = X.to_numpy()

    def chan(col: int) -> str:  # by name where the names are one per column, else by position
        return f"channel {channels[col]!r}" if channels is not None and len(channels) == arr.shape[1] else f"channel {col}"
    try:
        is_complex = np.iscomplexobj(X)
    except (TypeError, ValueError):  # ragged lists: np.asarray below names the problem
        is_complex = False
    if is_complex:  # np.asarray(..., float64) would drop the imaginary part with a mere warning
        raise InputError(_fmt(name, "holds complex numbers", "pass real-valued data (for example the magnitude)"))
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise (_text_column(frame, name, row0) or
               InputError(_fmt(name, f"cannot be read as numbers ({exc})", "pass a (T,) or (T, channels) numeric array"))) from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(_fmt(name, f"has shape {arr.shape}", "pass one series as a (T,) or (T, channels) array, or a list of them"))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(_fmt(name, f"is empty (shape {arr.shape})", "pass a series with at least one point and one channel"))
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(_fmt(name, f"has {int(bad.sum())} NaN or infinite value(s) inside the series, the first at row {row0 + row}, {chan(col)}",
                              "fill them before scoring (e.g. pandas' df.interpolate().ffill().bfill()) or drop those rows"))
    big = np.abs(arr) > np.finfo(np.float32).max  # the networks are float32: these would become inf there
    if big.any():
        row, col = (int(v) for v in np.argwhere(big)[0])
        raise InputError(_fmt(name, f"has {int(big.sum())} value(s) beyond the float32 range (|x| > 3.4e+38), the first at row {row0 + row}, "
                                    f"{chan(col)} (value {arr[row, col]:.3g})", "fix or drop these points, or rescale the channel"))
    return arr


def _text_column(frame, name: str, row0: int = 0) -> InputError | None:
    """The error naming a DataFrame's first column that is not numbers (a text or category channel: the
    message named neither the column nor the row), and its first such value; None where none is found."""
    if frame is None:
        return None
    import pandas as pd
    for c in frame.columns:
        v = pd.Series(frame[c].astype(object).to_numpy())
        bad = (pd.to_numeric(v, errors="coerce").isna() & v.notna()).to_numpy()
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            return InputError(_fmt(name, f"channel {str(c)!r} holds non-numeric value {v.iloc[r]!r} at row {row0 + r} "
                                         f"({int(bad.sum())} such value(s))",
                                   "drop the column or encode it as numbers (for example one-hot) before passing the series"))
    return None


#: the fix's addition for naive times that go back by at most an hour (a file whose times carry their zone,
#: read as naive UTC, leaves it out: ``ganad fit`` / ``score`` / ``calibrate``)
DST_HINT = ("; if these are local times, the hour repeated where daylight saving time ends does this: times written "
            "with their UTC offset (e.g. 2024-10-27 02:30:00+01:00) or in UTC avoid it")


def _segments(n: int, time, series_id, gaps: str, gap_factor: float, name: str) -> list[np.ndarray]:
    """Row indices of each contiguous part: one per series id, cut at gaps."""
    if series_id is None:
        groups = [np.arange(n)]
    else:
        sid = np.asarray(series_id)
        if sid.shape != (n,):
            raise InputError(_fmt("series_id", f"has shape {sid.shape} for {n} rows", "pass one series id per row"))
        import pandas as pd
        # ids in order of first appearance; np.unique failed with a bare TypeError on ids of mixed types (3 and 'a')
        # or a None among text ids, and made a NaN id a series of its own
        codes, uniques = pd.factorize(sid)
        if (codes < 0).any():
            row = int(np.flatnonzero(codes < 0)[0])
            raise InputError(_fmt("series_id", f"has {int((codes < 0).sum())} missing id(s) (None or NaN), the first at row {row}",
                                  "give every row a series id, or drop the rows without one"))
        from ganad.data.validation import rows_by_code
        groups = rows_by_code(codes, len(uniques))
    if time is None or gaps == "ignore":
        return groups
    t = np.asarray(time)
    if t.shape != (n,):
        raise InputError(_fmt("time", f"has shape {t.shape} for {n} rows", "pass one time per row"))
    if t.dtype.kind in "OUS":  # tz-aware timestamps (np.asarray of a tz-aware index gives Timestamp objects) or time strings
        import pandas as pd
        try:
            t = pd.to_datetime(pd.Series(t), utc=True).dt.tz_localize(None).to_numpy()
        except (ValueError, TypeError) as exc:
            raise InputError(_fmt("time", f"cannot be read as times or numbers ({exc})",
                                  "pass numbers, datetime64 values or pandas timestamps, one per row")) from exc
    local = t.dtype.kind == "M" and np.asarray(time).dtype.kind == "M"  # naive datetimes (zoned ones came as objects or text)
    if t.dtype.kind == "M":
        missing = np.isnat(t)
        t = t.astype("datetime64[ns]").astype(np.int64).astype(np.float64)
    else:
        t = t.astype(np.float64)
        missing = ~np.isfinite(t)
    if missing.any():  # a NaN time passed every check (it made no gap), a NaT was 'a time going back'
        row = int(np.flatnonzero(missing)[0])
        raise InputError(_fmt(f"{name} time", f"has {int(missing.sum())} missing or infinite time(s) (NaN, NaT, None or inf), "
                                               f"the first at row {row}",
                              "fill or drop those rows, or pass gaps='ignore' to take rows as evenly spaced"))
    out = []
    for g in groups:
        tg = t[g]
        if tg.size < 2:
            out.append(g)
            continue
        step = np.diff(tg)
        # with several series (a folder's files are joined), the row alone may lie in another file: name the series
        # and the row within it
        def where(k: int) -> str:
            row = int(g[k])
            return f"row {row}" if series_id is None else f"row {row} (series {_id(np.asarray(series_id)[row])!r}, its row {k})"
        if (step <= 0).any():
            k = int(np.flatnonzero(step <= 0)[0])
            # naive local times go back up to an hour where daylight saving time ends (02:59 then 02:00 again)
            dst = DST_HINT if local and -3.6e12 <= step[k] < 0 else ""
            raise InputError(_fmt(f"{name} time", f"does not increase at {where(k + 1)} (a repeated or earlier time)",
                                  "sort the rows by time and drop duplicate times, or pass gaps='ignore' to take rows as evenly spaced" + dst))
        med = float(np.median(step))
        cut = np.flatnonzero(step > gap_factor * med) + 1
        if cut.size and gaps == "error":
            row = where(int(cut[0]))
            raise InputError(_fmt(f"{name} time", f"has {cut.size} gap(s) longer than {gap_factor:g} x the median step, the first before {row}",
                                  "pass gaps='split' to score the parts separately, gaps='ignore' to treat rows as evenly spaced, or fill the gap"))
        out.extend(np.split(g, cut))
    return out


def _id(v):
    """A series id as a plain Python value (numpy scalars unwrapped; the str of an object array as it is)."""
    return v.item() if isinstance(v, np.generic) else v


def _window_step(window, stride) -> tuple[int, int]:
    for name, v in (("window", window), ("stride", stride)):
        if v is not None and (not is_int(v) or v < 1):
            raise InputError(_fmt(name, f"is {v!r}", "pass a positive integer"))
    window = int(window)
    if window < 2:
        raise InputError(_fmt("window", f"is {window}", "pass a window of at least 2 points"))
    stride = max(1, window // 4) if stride is None else int(stride)
    if stride > window:
        raise InputError(_fmt("stride", f"is {stride}, longer than the window ({window})", "pass stride <= window so that every point is scored"))
    return window, stride


# ---------------------------------------------------------------------------------------------- aggregation
def covering_mean(starts: np.ndarray, scores: np.ndarray, maps: np.ndarray | None, window: int, a: int, b: int):
    """Mean over the windows covering each point of [a, b): window scores (n,) -> (b - a,), and the
    per-step maps (n, C, window) -> (b - a, C); NaN where no window covers a point.

    ``starts`` must be sorted. The sum runs over the covering windows from the nearest start
    backwards, the order :func:`ganad.data.windows.windows_to_points` uses, one vectorised step per
    covering window. Batch scoring and :class:`~ganad.series.stream.StreamScorer` both use it."""
    pts = np.arange(a, b)
    n = len(pts)
    s_acc, cnt = np.zeros(n), np.zeros(n, dtype=np.int64)
    c_acc = None if maps is None else np.zeros((n, maps.shape[1]))
    if starts.size and n:
        last = np.searchsorted(starts, pts, side="right") - 1        # the covering window with the largest start
        first = np.searchsorted(starts, pts - window, side="right")  # the first start > t - window
        for j in range(int(np.max(last - first + 1, initial=0))):
            k = last - j
            ok = k >= first
            kk = np.clip(k, 0, starts.size - 1)
            s_acc += np.where(ok, scores[kk], 0.0)
            if maps is not None:
                off = np.clip(pts - starts[kk], 0, window - 1)
                c_acc += np.where(ok[:, None], maps[kk, :, off], 0.0)
            cnt += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return s_acc / cnt, (None if maps is None else c_acc / cnt[:, None])


def aggregate(window_scores, window_maps, starts, window: int, n_points: int):
    """Per-point scores (n_points,) and per-channel maps (n_points, C) of one series from its
    windows (sorted ``starts``): the mean over covering windows; trailing points that no window
    covers copy the last covered point."""
    s, c = covering_mean(np.asarray(starts), np.asarray(window_scores, dtype=np.float64),
                         None if window_maps is None else np.asarray(window_maps, dtype=np.float64), window, 0, n_points)
    _fill_uncovered(s, c)
    return s, c


def _plain(v):
    """A numpy number as the Python int / float / bool it holds (events are read by JSON writers);
    anything else (a datetime64 time, a string, None) as it is."""
    return v.item() if isinstance(v, np.generic) and v.dtype.kind in "biuf" else v


def _mask_constant_channels(det, windows: np.ndarray, wm):
    """``wm`` (n, C, W) with 0 at the points where a channel the detector's 'per-feature' scaler called
    constant in training holds its training value, unchanged elsewhere (a constant channel that moves keeps
    its residual). "Holds" is judged in the scaled units the networks see, ``|x - shift| / scale`` at most
    1e-6 (the float32 networks see no difference below it), or within two float32 units in the last place
    of the value (a float32 setpoint that rounds between two neighbours, 230.7 and the next float32, is
    constant to the scaler and holds its value): a tolerance relative to the value itself (1e-6 · |shift|)
    hid real moves of a large setpoint, at 2e6 (scale 1) a step of 1 (8 float32 units there), which the
    networks see as 42 -> 43, and the event it drove named another channel."""
    sc = getattr(det, "scaler_", None)
    mode = getattr(sc, "mode", None)
    if not mode or "constant" not in mode or wm is None:
        return wm
    const = [j for j, m in enumerate(mode) if m == "constant"]
    shift = np.asarray(sc.shift, dtype=np.float64).reshape(-1)
    scale = np.asarray(sc.scale, dtype=np.float64).reshape(-1)
    if len(mode) != windows.shape[1] or shift.size != windows.shape[1] or scale.size != windows.shape[1]:
        return wm
    wm = np.array(wm, copy=True)
    for j in const:
        with np.errstate(over="ignore", invalid="ignore"):
            tol = max(1e-6 * scale[j], 2.0 * float(np.spacing(np.float32(min(abs(shift[j]), 3e38)))))
            still = np.abs(np.asarray(windows[:, j, :], dtype=np.float64) - shift[j]) <= tol
        wm[:, j, :][still] = 0.0
    return wm


class EventTracker:
    """Turns labelled points into events, point by point or in blocks (batch and streaming share it).

    Runs of labelled points separated by at most ``gap`` unlabelled points are one event: an open
    event closes once more than ``gap`` unlabelled points follow its last labelled one (in a
    stream, ``gap + 1`` points after it), or at :meth:`finish`.

    ``feed`` returns ``(opened, closed)``: events that opened in this block (dicts with ``start``)
    and events that closed (complete rows, see :func:`events_frame`). Their numbers are plain Python
    ``int`` / ``float`` (``json.dumps`` takes them); times are as given (a datetime64 stays one)."""

    def __init__(self, channels: Sequence[str], series=None, gap: int = 0):
        self.channels = list(channels)
        self.series = _plain(series)
        self.gap = int(gap)
        self.open: dict | None = None
        self.quiet = 0  # unlabelled points since the open event's last labelled one

    def feed(self, index: np.ndarray, scores: np.ndarray, labels: np.ndarray, contrib: np.ndarray, time=None):
        opened, closed = [], []
        if len(index) == 0:
            return opened, closed
        lab = labels.astype(bool)
        # run boundaries inside this block
        change = np.flatnonzero(np.diff(lab.astype(np.int8))) + 1
        bounds = np.r_[0, change, len(lab)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            if not lab[a]:
                if self.open is not None:
                    self.quiet += int(b - a)  # plain ints: an event's length is read by JSON writers (numpy's int64 is not)
                    if self.quiet > self.gap:
                        closed.append(self._close())
                continue
            if self.open is not None:  # a bridged gap: its points belong to the event
                self.open["bridged"] += self.quiet
            self.quiet = 0
            if self.open is None:
                self.open = {"start": int(index[a]), "start_time": None if time is None else _plain(time[a]), "peak_score": -np.inf,
                             "contrib": np.zeros(len(self.channels)), "n": 0, "bridged": 0}
                opened.append({"series": self.series, "start": int(index[a]),
                               "start_time": None if time is None else _plain(time[a])})
            ev = self.open
            seg = scores[a:b]
            k = int(np.argmax(seg))
            if seg[k] > ev["peak_score"]:
                ev["peak_score"], ev["peak"] = float(seg[k]), int(index[a + k])
                ev["peak_time"] = None if time is None else _plain(time[a + k])
            ev["contrib"] = ev["contrib"] + contrib[a:b].sum(axis=0)
            ev["n"] += int(b - a)
            ev["end"] = int(index[b - 1])
            ev["end_time"] = None if time is None else _plain(time[b - 1])
        return opened, closed

    def finish(self):
        return [self._close()] if self.open is not None else []

    def _close(self) -> dict:
        ev, self.open, self.quiet = self.open, None, 0
        mean = ev["contrib"] / max(ev["n"], 1)
        share = mean / mean.sum() if mean.sum() > 0 else np.full(len(mean), 1.0 / len(mean))
        # the driving channels: those that together hold half the event's *excess* residual (each channel's
        # relative residual is 1 on average on the training windows, so with many channels the normal ones'
        # 1s would otherwise fill the half and list up to five channels for a one-channel anomaly); the
        # shares of the whole residual when no channel is above its training mean
        excess = np.maximum(mean - 1.0, 0.0)
        part = excess / excess.sum() if excess.sum() > 0 else share
        order = np.argsort(-part, kind="stable")
        driving, cum = [], 0.0
        for c in order[:5]:  # at most 5
            driving.append(f"{self.channels[c]}={part[c]:.2f}")
            cum += part[c]
            if cum >= 0.5:
                break
        row = {"series": _plain(self.series), "start": ev["start"], "end": ev["end"], "length": int(ev["n"] + ev["bridged"]),
               "peak": ev["peak"], "peak_score": float(ev["peak_score"]), "channels": ";".join(driving)}
        if ev["start_time"] is not None:
            row.update(start_time=ev["start_time"], end_time=ev["end_time"], peak_time=ev["peak_time"])
        row.update({f"share_{c}": float(s) for c, s in zip(self.channels, share)})
        return row


EVENT_COLUMNS = ["series", "start", "end", "length", "peak", "peak_score", "channels"]


def events_frame(rows: list[dict], channels: Sequence[str], has_time: bool = False):
    """The events table: series, start, end (row indices, end included), length (points of the
    event, bridged gaps included), peak (row of the highest score), peak_score, channels (driving
    channels, 'name=share;...', with their share of the event's residual above each channel's training level,
    docs/series.md),
    start_time/end_time/peak_time when a time axis was given (``has_time``: also when no event was
    found, so that the table has the same columns either way), and share_<channel> per channel (its share of the
    whole residual)."""
    import pandas as pd
    cols = list(EVENT_COLUMNS)
    if has_time or any("start_time" in r for r in rows):
        cols += ["start_time", "end_time", "peak_time"]
    cols += [f"share_{c}" for c in channels]
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------------------------- the wrapper
#: ``knn_space`` of a detector SeriesDetector builds by name (chosen on the NAB validation groups
#: realAdExchange and realTraffic: ``benchmarks/select_series_defaults.py``)
SERIES_KNN_SPACE = "input"
#: ``n_neighbors`` of such a detector: the distance of a window to its nearest training window, the
#: discord score of the matrix profile (chosen on the same validation groups, twelfth session)
SERIES_N_NEIGHBORS = 1
#: ``scaler`` of such a detector: the per-channel modes of ``'per-feature'`` (docs/scaling.md) without
#: clipping the values scored to the training range: in a series, a level or spike far outside the
#: training part is the anomaly, and clipping scored a rise to 5 and to 50 training ranges alike
#: (chosen on the same validation groups: VUS-PR 0.567 against 0.547 with the clip, event F1 the
#: same; twenty-sixth session). The bound of a million training ranges is no clip for data, only a
#: guard: a sensor glitch such as 1e20 would otherwise overflow the float32 networks and stop a stream
#: (it scores as the top anomaly instead).
SERIES_SCALER = {"kind": "per-feature", "clip": 1e6}

#: ``feature_layer`` of such a detector: D's last block, as every series default was validated with (GANomaly's
#: own default, 'auto' = its second-to-last block since the thirty-fifth session, was level on the NAB
#: validation groups: mean of VUS-PR and event F1 0.6745 against 0.6755; benchmarks/SERIES_RESULTS.md)
SERIES_FEATURE_LAYER = -1

#: numbers of window data scored at a time by ``score_series`` and ``StreamScorer.update`` (float64:
#: 32 MB, and as much again for the residual maps); a block is never less than one stride of windows
SCORE_BLOCK = 2 ** 22


def block_points(stride: int, channels: int, window: int) -> int:
    """Points of one scoring block: about :data:`SCORE_BLOCK` numbers of new windows, at least one stride."""
    return stride * max(1, SCORE_BLOCK // (channels * window))


def _fill_uncovered(s: np.ndarray, c: np.ndarray | None):
    """Trailing points that no window covers (NaN score) copy the last covered point, in place; an inf
    score (``on_nonfinite='max'``) is covered and stays the top score."""
    miss, covered = np.flatnonzero(np.isnan(s)), np.flatnonzero(~np.isnan(s))
    if miss.size and covered.size:
        s[miss] = s[covered[-1]]
        if c is not None:
            c[miss] = c[covered[-1]]


class SeriesDetector(BaseEstimator):
    """Any ganad detector over windows of long series; see the module docstring.

    Parameters
    ----------
    detector : str or detector instance, default 'ganomaly'
        A method name of :data:`ganad.detectors.DETECTORS` or an unfitted detector (it is cloned).
        The default was chosen on the NAB validation groups realAdExchange and realTraffic only
        (``benchmarks/select_series_defaults.py``; the best mean of VUS-PR and event F1 there) and
        matches ``ganad fit``'s default method.
    window : int, default 64
        Points per window.
    stride : int or None
        Step between window starts; None = window // 4.
    contamination : float, default 0.01
        Fraction of TRAINING points above ``threshold_`` (the training series is taken as normal).
    gaps : {'split', 'ignore', 'error'}, default 'split'
        What a gap in ``time`` does (see the module docstring); ``gap_factor`` defines a gap.
    gap_factor : float > 1, default 3.0
        A step in ``time`` longer than this many times the median step is a gap.
    detector_params : dict or None
        Parameters for a detector given by name (e.g. ``{"epochs": 20, "net": "conv1d"}``). Unless
        they set ``knn_space`` / ``n_neighbors``, a detector given by name measures its knn component
        between the scaled windows themselves (``knn_space='input'``, :data:`SERIES_KNN_SPACE`): on
        the NAB validation groups that beat the codes and the discriminator's features, the default
        of detectors on beats, tables and images (benchmarks/SERIES_RESULTS.md, eleventh session);
        and as the distance to the nearest training window (``n_neighbors=1``,
        :data:`SERIES_N_NEIGHBORS`, the matrix profile's discord score), which beat the mean over 5
        and over 10 there (twelfth session). Unless they set ``scaler``, each channel is scaled by
        the per-feature modes without clipping to the training range (:data:`SERIES_SCALER`, a bound
        of a million ranges against float32 overflow only): a value far beyond the training range
        keeps its distance (twenty-sixth session, the same validation groups). Unless they set
        ``feature_layer``, D's features come from its last block (:data:`SERIES_FEATURE_LAYER`; GANomaly's
        own 'auto' was level there, thirty-fifth session).
    window_score : {'detector', 'dtw'}, default 'detector'
        A window's score: the wrapped detector's composed score, or the DTW residual, the soft-DTW
        divergence (smoothing ``dtw_gamma``) between the scaled window and its reconstruction
        (tolerant to small shifts in time; see :mod:`ganad.inversion.soft_dtw`).
    dtw_gamma : float > 0, default 0.1
        The soft-DTW smoothing of ``window_score='dtw'``.
    event_gap : int or None, default None
        Runs of anomalous points separated by at most this many normal points are one event
        (the gap's points count as the event's: ``SeriesScores.in_event``; ``labels`` stay the
        points above the threshold). None = the window: every point of such a gap shares a window
        with one of the runs around it, and a short dip below the threshold inside one anomaly no
        longer splits it into several alerts. 0 = every run is its own event. Chosen on the NAB
        validation groups among 0 and fractions of the window up to one window
        (benchmarks/SERIES_RESULTS.md, fourteenth session). A stream closes an event
        ``event_gap + 1`` points after its last anomalous point.

    Attributes (after ``fit``): ``threshold_``; ``decision_scores_``, the training points' scores
    (this fit's: a model file keeps their distribution as ``reference_scores_``, at most 10,000
    quantiles, which is what ``predict_proba`` and calibration read, so a loaded model has
    ``reference_scores_`` and not ``decision_scores_``); ``labels_``, the training points' 0 / 1 labels, one
    per row of the training series (in memory only, as ``decision_scores_``); ``detector_``, the wrapped window detector;
    ``channels_``; ``window_``, ``stride_``, ``event_gap_``, ``window_score_``, ``dtw_gamma_`` (what fit scored windows with;
    ``set_params`` changes them at the next fit).
    """

    def __init__(self, detector="ganomaly", window: int = 64, stride: int | None = None, contamination: float = 0.01,
                 gaps: str = "split", gap_factor: float = 3.0, detector_params: dict | None = None,
                 window_score: str = "detector", dtw_gamma: float = 0.1, event_gap: int | None = None):
        self.detector = detector
        self.window = window
        self.stride = stride
        self.contamination = contamination
        self.gaps = gaps
        self.gap_factor = gap_factor
        self.detector_params = detector_params
        self.window_score = window_score
        self.dtw_gamma = dtw_gamma
        self.event_gap = event_gap

    # ---------------------------------------------------------------- helpers
    def _make_detector(self):
        from sklearn.base import clone
        from ganad.detectors import DETECTORS
        if isinstance(self.detector, str):
            if self.detector not in DETECTORS:
                raise InputError(_fmt("detector", f"is {self.detector!r}", f"use one of {sorted(DETECTORS)} or a detector instance"))
            cls = DETECTORS[self.detector]
            # the series default: every method takes the input space (no network involved)
            return cls(**{"knn_space": SERIES_KNN_SPACE, "n_neighbors": SERIES_N_NEIGHBORS, "scaler": dict(SERIES_SCALER),
                          "feature_layer": SERIES_FEATURE_LAYER, **(self.detector_params or {})})
        if not hasattr(self.detector, "fit") or not hasattr(self.detector, "score_components"):
            raise InputError(_fmt("detector", f"is a {type(self.detector).__name__}", "pass a ganad detector or a method name such as 'fanogan'"))
        if self.detector_params:
            raise InputError(_fmt("detector_params", "are given with a detector instance", "set the parameters on the instance instead"))
        return clone(self.detector)

    def _check(self):
        from ganad.scoring.threshold import check_contamination
        check_contamination(self.contamination)
        if self.window_score not in WINDOW_SCORES:
            raise InputError(_fmt("window_score", f"is {self.window_score!r}", f"use one of {', '.join(WINDOW_SCORES)}"))
        if not (isinstance(self.dtw_gamma, (int, float)) and self.dtw_gamma > 0):
            raise InputError(_fmt("dtw_gamma", f"is {self.dtw_gamma!r}", "pass a positive smoothing such as 0.1"))
        if self.gaps not in GAPS:
            raise InputError(_fmt("gaps", f"is {self.gaps!r}", f"use one of {', '.join(GAPS)}"))
        eg = self.event_gap
        from ganad.params import is_int
        if eg is not None and not (is_int(eg) and eg >= 0):
            raise InputError(_fmt("event_gap", f"is {eg!r}", "pass a whole number of points >= 0 (0: every run of anomalous points is an event), or None for one window"))
        if not (isinstance(self.gap_factor, (int, float)) and self.gap_factor > 1):
            raise InputError(_fmt("gap_factor", f"is {self.gap_factor!r}", "pass a number > 1 (a gap is a step this many times the median step)"))
        return _window_step(self.window, self.stride)

    def _check_fitted(self):
        if not hasattr(self, "detector_"):
            raise NotFittedError("SeriesDetector: this detector is not fitted yet. Fix: call fit(series) first, or load a saved model with ganad.load(path)")

    def _inputs(self, X, time, series_id, name, by_name: bool = True):
        X = _frames(X)
        if isinstance(X, (list, tuple)) and len(X) and all(isinstance(x, np.ndarray) or hasattr(x, "to_numpy") for x in X):
            if series_id is not None or time is not None:
                raise InputError(_fmt(name, "is a list of series and series_id/time are given too", "pass either a list of series or one table with series_id="))
            # DataFrames are taken by their channel names, as one DataFrame is: scoring, in the model's
            # order; fit, in the first DataFrame's order (which names the channels)
            first = getattr(X[0], "columns", None)
            known = self.__dict__.get("channels_") if by_name else (None if first is None else [str(c) for c in first])
            parts = [_as_series(self._by_name(x, known), f"{name}[{i}]") for i, x in enumerate(X)]
            C = {p.shape[1] for p in parts}
            if len(C) != 1:
                raise InputError(_fmt(name, f"holds series with different channel counts {sorted(C)}", "pass series with the same channels"))
            sid = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
            return np.concatenate(parts), None, sid
        if by_name:
            X = self._by_name(X, self.__dict__.get("channels_"))
        return _as_series(X, name), time, series_id

    @staticmethod
    def _by_name(X, known):
        """A DataFrame whose columns are the channels ``known`` in another order, reordered by name; one
        whose string column names are other names than a model with named channels has, refused (it
        was scored by position: a renamed column, silently); anything else as it is (a frame without
        names, as one made from an array, or a model whose channels are unnamed, ch0, ch1, ...)."""
        cols = getattr(X, "columns", None)
        if cols is not None and known is not None and hasattr(X, "loc"):
            names = [str(c) for c in cols]
            if names != known and sorted(names) == sorted(known) and len(set(names)) == len(names):
                X = X[[cols[names.index(c)] for c in known]]  # a DataFrame's channels in another order: taken by name
            elif set(names) != set(known) and all(isinstance(c, str) for c in cols) and not unnamed_channels(known):
                unseen, missing = [c for c in names if c not in known], [c for c in known if c not in names]
                raise InputError(_fmt("X", f"has columns {names[:8]}, but the model's channels are {known[:8]} (not seen: {unseen[:5]}; "
                                           f"missing: {missing[:5]})",
                                      "pass the model's channels by name (df.rename(columns=...), or df[model.channels_]), or an array "
                                      "(df.to_numpy(), read by position in the training order)"))
        return X

    def _windows(self, values, segments, skip_short: bool, name: str, series_id=None):
        W, S = self.window_, self.stride_  # (fit sets them first, from the parameters)
        self._check_lengths(segments, skip_short, name, series_id)
        wins, layout = [], []
        for idx in segments:
            if len(idx) < W:
                continue
            w, starts = make_windows(values[idx], W, S)
            wins.append(w)
            layout.append((idx, starts, len(w)))
        return np.concatenate(wins), layout  # float64: the detector's scaler casts to float32 after scaling

    def _check_lengths(self, segments, skip_short: bool, name: str, series_id=None) -> None:
        """Segments shorter than the window: an error naming the first (scoring), or a warning (fit);
        an error when no segment is a window long. The fitted window (``window_``), not the parameter: after
        ``set_params(window=...)`` (which takes effect at the next fit) a segment shorter than the fitted window
        passed a check against a smaller parameter and failed in numpy's sliding_window_view (a ValueError),
        and one long enough for it was refused against a larger one."""
        W = self.window_
        short = [(k, int(idx[0]), len(idx)) for k, idx in enumerate(segments) if len(idx) < W]
        # joining parts across gaps helps only where a series was cut at a gap (more parts than series)
        if series_id is None:
            n_series = 1
        else:
            import pandas as pd
            n_series = len(pd.factorize(np.asarray(series_id))[1])  # (np.unique sorts, and ids of mixed types do not sort)
        cut = len(segments) > n_series
        if short:
            k, row, n = short[0]
            if series_id is None:
                which = ""
            else:  # a folder's rows are joined: name the file, and the row within it
                ids = np.asarray(series_id)
                which = f" (series {_id(ids[row])!r}, its row {int((ids[:row] == ids[row]).sum())})"
            what = "series or part(s) between gaps" if cut else "series"
        if short and not skip_short:
            raise InputError(_fmt(name, f"has {len(short)} {what} shorter than the window ({W} points); "
                                  f"the first starts at row {row}{which} and has {n} point(s)",
                                  "pass a shorter window, longer series, or gaps='ignore' to join parts across gaps" if cut
                                  else "pass a shorter window or a longer series"))
        if short:
            warnings.warn(_fmt(name, f"{len(short)} {what} are shorter than the window ({W}) and were left out of training "
                                     f"(the first starts at row {row}{which} and has {n} point(s))",
                               "pass gaps='ignore' to join parts across gaps, or a shorter window" if cut
                               else "pass a shorter window or longer series"), UserWarning, stacklevel=4)
        if len(short) == len(segments):
            raise InputError(_fmt(name, f"has no series or part at least one window ({W} points) long", "pass a longer series or a shorter window"))

    def _score_windows(self, windows: np.ndarray):
        """Window scores (n,) and per-channel residual maps (n, C, W) of the wrapped detector."""
        from ganad.scoring.composition import required_components
        det = self.detector_
        # the window score fit thresholded: set_params(window_score=...) after fit takes effect at the next fit (it
        # scored DTW divergences against a threshold fitted on the detector's scores: a third of normal points flagged)
        kind, gamma = self.__dict__.get("window_score_", self.window_score), self.__dict__.get("dtw_gamma_", self.dtw_gamma)
        if kind == "dtw":
            import torch
            from ganad.inversion.soft_dtw import soft_dtw_divergence
            r = det._score(windows, required_components(det.composer_), return_map=True, return_reconstruction=True, guard_parts=True)
            xs = torch.from_numpy(det.scaler_.transform(windows))
            xh = torch.from_numpy(det.scaler_.transform(r.reconstruction))
            bs = int(det.score_batch_size)
            with torch.inference_mode():
                d = torch.cat([soft_dtw_divergence(xs[i:i + bs], xh[i:i + bs], float(gamma)) for i in range(0, len(xs), bs)])
            return det._guard_scores(d.double().numpy()), r.map  # the DTW score follows on_nonfinite as the detector's does
        r = det._score(windows, required_components(det.composer_), return_map=True, guard_parts=True)  # the map: per-channel shares
        return r.scores, r.map

    def _score_windows_at(self, windows: np.ndarray, starts: np.ndarray, rows=None, stream: bool = False):
        """:meth:`_score_windows` of the windows starting at ``starts`` (points of the series, or of
        ``rows``, the input rows of a segment); a window whose score overflows is named by its points,
        not by its place in the block of windows scored (which named "row(s) [0]").

        The residual map of a channel the scaler found constant in training is set to 0 where the
        window holds that constant: the channel did not move there, and the networks' small residual on it
        (its training mean, ``channel_baseline_``, near 0) became a large ratio wherever another channel
        disturbed the reconstruction, naming the one channel certain to be normal as an event's driver."""
        try:
            ws, wm = self._score_windows(windows)
            return ws, _mask_constant_channels(self.__dict__.get("detector_"), windows, wm)
        except InputError as exc:
            bad = getattr(exc, "nonfinite_rows", None)
            if bad is None:
                raise
            first = int(starts[bad[0]])
            pts = (first, first + self.window_ - 1) if rows is None else (int(rows[first]), int(rows[first + self.window_ - 1]))
            what = "stream points" if stream else "points (rows)"
            fix = ("check them for extreme values; the stream cannot go past this window while the model's "
                   "detector_.on_nonfinite is 'raise' (every later chunk completes it again): close it and start a new "
                   "stream after those points, or set model.detector_.on_nonfinite = 'max' (CLI: ganad stream --nonfinite max) "
                   "to score such windows as the most anomalous" if stream else
                   "check them for extreme values and rescale or drop them, or set sd.detector_.on_nonfinite = 'max' "
                   "(CLI: ganad score --nonfinite max) to score such windows as the most anomalous")
            new = InputError(_fmt("X" if not stream else "stream", f"{len(bad)} window(s) get a non-finite anomaly score or residual (NaN / inf), the first "
                                  f"over {what} {pts[0]} to {pts[1]}: their values overflow the float32 networks", fix))
            new.nonfinite_rows = bad
            raise new from None

    def _segment_points(self, v: np.ndarray, rows=None):
        """Scores (n,) and per-channel contributions (n, C) of the points of one segment ``v`` (n, C),
        in blocks of points: each block's covering windows are cut, scored and averaged, then dropped,
        so memory holds about :data:`SCORE_BLOCK` window numbers at a time instead of every window of
        the series and its residual map (window / stride copies of every point; 40,000 points × 50
        channels at window 256, stride 16, took 1.6 GB). A point's score is the same mean over the
        same windows as one pass would give (:func:`covering_mean`); windows covering two blocks are
        scored once for each."""
        W, S = self.window_, self.stride_
        n, C = v.shape
        starts = np.arange(0, n - W + 1, S, dtype=np.int64)
        view = np.lib.stride_tricks.sliding_window_view(v, W, axis=0)  # (n - W + 1, C, W), no copy
        base = np.asarray(self.channel_baseline_)[None, :, None]
        scores, contrib = np.full(n, np.nan), np.full((n, C), np.nan)
        step = block_points(S, C, W)
        for a in range(0, n, step):
            b = min(n, a + step)
            sub = starts[np.searchsorted(starts, a - W, side="right"):np.searchsorted(starts, b - 1, side="right")]
            if not sub.size:
                continue
            ws, wm = self._score_windows_at(np.ascontiguousarray(view[sub]), sub, rows)
            scores[a:b], contrib[a:b] = covering_mean(sub, np.asarray(ws, dtype=np.float64), np.asarray(wm, dtype=np.float64) / base, W, a, b)
        _fill_uncovered(scores, contrib)
        return scores, contrib

    def _training_points(self, values, windows, layout):
        """Per-point training scores (T,) and the channels' mean residual (C,) (``channel_baseline_``),
        from the training windows scored in blocks of about :data:`SCORE_BLOCK` numbers: only the
        window scores are kept, never every window's residual map (window / stride copies of every
        point and channel: 1M points × 20 channels took 3.75 GB at the default stride)."""
        n, C, W = windows.shape
        step = max(1, SCORE_BLOCK // (C * W))
        wscores, ch_sum = np.empty(n), np.zeros(C)
        for i in range(0, n, step):
            ws, wm = self._score_windows(windows[i:i + step])
            wscores[i:i + len(ws)] = ws
            ch_sum += np.asarray(wm, dtype=np.float64).sum(axis=(0, 2))
        scores = np.full(values.shape[0], np.nan)
        off = 0
        for idx, starts, k in layout:
            scores[idx], _ = aggregate(wscores[off:off + k], None, starts, self.window_, len(idx))
            off += k
        return scores, ch_sum / (n * W)

    # ---------------------------------------------------------------- API
    def fit(self, X, y=None, *, time=None, series_id=None, channel_names: Sequence[str] | None = None):
        """Train on normal series: ``X`` (T,) / (T, C) / a list of arrays (one per series);
        ``time`` and ``series_id`` one per row; ``channel_names`` name the channels in events."""
        # a refit refused or interrupted on the way leaves the model it had (fitted or not) as it was
        with kept_on_failure(self):
            self.window_, self.stride_ = self._check()
            self.window_score_, self.dtw_gamma_ = str(self.window_score), float(self.dtw_gamma)
            self.__dict__.pop("calibration_", None)  # a refit's threshold comes from its own training points
            self.event_gap_ = self.window_ if self.event_gap is None else int(self.event_gap)
            X = _frames(X)  # (converted once: its names below)
            values, time, series_id = self._inputs(X, time, series_id, "X", by_name=False)  # a refit takes its own order
            segs = _segments(len(values), time, series_id, self.gaps, float(self.gap_factor), "X")
            windows, layout = self._windows(values, segs, skip_short=True, name="X", series_id=series_id)
            if channel_names is not None and len(channel_names) != values.shape[1]:
                raise InputError(_fmt("channel_names", f"has {len(channel_names)} names for {values.shape[1]} channels", "pass one name per channel"))
            frame = X[0] if isinstance(X, (list, tuple)) and len(X) else X
            cols = getattr(frame, "columns", None)
            if channel_names is not None and cols is not None and len(cols) == len(channel_names):
                given, own = [str(c) for c in channel_names], [str(c) for c in cols]
                if given != own and all(isinstance(c, str) for c in cols):
                    # a DataFrame names its channels and is scored by those names: other names (a reorder, or a
                    # rename that scoring the same frame would then refuse) would not be the frame's
                    raise InputError(_fmt("channel_names", f"names the DataFrame's columns {own} otherwise ({given})",
                                          "drop channel_names (a DataFrame names its channels), or rename / reorder the "
                                          "DataFrame's columns first (df.columns = [...])"))
            from ganad.detectors.base import MIN_FIT_SAMPLES
            if len(windows) < MIN_FIT_SAMPLES:
                w, st = self.window_, self.stride_
                raise InputError(_fmt("X", f"gives {len(windows)} window(s) of {w} points (stride {st}), but at least {MIN_FIT_SAMPLES} are needed to train",
                                      f"pass a longer series (at least {w + (MIN_FIT_SAMPLES - 1) * st} points without a gap) or a smaller window / stride"))
            det = self._make_detector()
            det._sample_noun = "windows"
            det._layout_given = True  # windows (n, channels, window): no note when channels == window
            det._flagged_note = f"more than the point contamination ({float(self.contamination):g}) of new normal points are flagged"
            det.fit(windows)
            self.detector_ = det
            self.n_channels_ = int(values.shape[1])
            if channel_names is None and cols is not None and len(cols) == self.n_channels_:
                channel_names = [str(c) for c in cols]  # a DataFrame (or the first of a list) names its channels (in events and messages)
            self.channels_ = [f"ch{c}" for c in range(self.n_channels_)] if channel_names is None else [str(c) for c in channel_names]
            with det._scoring_training_rows():  # a training window in the knn bank does not count itself
                pts, baseline = self._training_points(values, windows, layout)
            del windows
            self.channel_baseline_ = np.maximum(baseline, 1e-12).tolist()
            # (T,) in the rows' order, NaN where no window covers a point: labels_ and decision_scores_ (one copy)
            self._train_point_scores = pts
            finite = pts[np.isfinite(pts)]
            from ganad.scoring.threshold import contamination_threshold
            self.threshold_ = contamination_threshold(finite, self.contamination)
            self.reference_scores_ = _reference_sample(finite)
            return self

    def _training_point_scores(self, name: str) -> np.ndarray:
        pts = self.__dict__.get("_train_point_scores")
        if pts is None:
            if "threshold_" in self.__dict__:
                raise AttributeError(_fmt(name, "are not in this model: the training points' scores stay in memory and are "
                                                "not saved in the model file (its reference_scores_ keep their distribution)",
                                          "score the training series with sd.decision_function(X_train) / sd.predict(X_train)"))
            raise AttributeError(name)
        return pts

    @property
    def decision_scores_(self) -> np.ndarray:
        """The training points' finite scores, in the rows' order (the points no window covers left out)."""
        pts = self._training_point_scores("decision_scores_")
        return pts[np.isfinite(pts)]

    def fit_predict(self, X, y=None, *, time=None, series_id=None, channel_names: Sequence[str] | None = None) -> np.ndarray:
        """``fit``, then the training points' 0 / 1 labels (:attr:`labels_`), one per row of ``X``."""
        return self.fit(X, time=time, series_id=series_id, channel_names=channel_names).labels_

    @property
    def labels_(self) -> np.ndarray:
        """0 / 1 per row of the series ``fit`` was given (a list of series: their rows one after the
        other), as PyOD's ``labels_``: 1 where the point's training score is above ``threshold_`` (after
        :meth:`calibrate`, the calibrated one); 0 for the points no window covers (a series, or a piece
        between gaps in time, shorter than one window), which get no score. ``decision_scores_`` holds
        the finite scores only, so it is shorter than ``labels_`` where such points exist (or a window
        overflowed under ``on_nonfinite='max'``: its points are labelled 1). Kept in memory only: a
        loaded model has none (score the training series with :meth:`predict`)."""
        pts = self._training_point_scores("labels_")
        with np.errstate(invalid="ignore"):
            return (pts > self.threshold_).astype(np.int64)

    def score_series(self, X, *, time=None, series_id=None) -> SeriesScores:
        """Score per time point, labels, per-channel contributions and the events table."""
        self._check_fitted()
        values, time_, sid = self._inputs(X, time, series_id, "X")
        if values.shape[1] != self.n_channels_:
            raise InputError(_fmt("X", f"has {values.shape[1]} channel(s), the model was fitted on {self.n_channels_}",
                                  "pass the same channels, in the same order, as at fit time"))
        segs = _segments(len(values), time_, sid, self.gaps, float(self.gap_factor), "X")
        self._check_lengths(segs, skip_short=False, name="X", series_id=sid)
        scores, contrib = np.full(len(values), np.nan), np.full(values.shape, np.nan)
        for idx in segs:
            scores[idx], contrib[idx] = self._segment_points(values[idx], idx)
        labels = (scores > self.threshold_).astype(np.int64)
        rows = []
        in_event, part = np.zeros(len(scores), dtype=np.int64), np.zeros(len(scores), dtype=np.int64)
        for k, idx in enumerate(segs):
            part[idx] = k
        tarr = None if time_ is None else np.asarray(time_)
        sid_arr = None if sid is None else np.asarray(sid)
        for idx in segs:
            sid0 = None if sid_arr is None else sid_arr[idx[0]]
            tr = EventTracker(self.channels_, series=sid0.item() if hasattr(sid0, "item") else sid0, gap=self.event_gap_)
            _, closed = tr.feed(idx, scores[idx], labels[idx], contrib[idx], None if tarr is None else tarr[idx])
            ev = closed + tr.finish()
            for r in ev:  # idx: the segment's rows in order (not contiguous with series_id)
                a, b = np.searchsorted(idx, [r["start"], r["end"]])
                in_event[idx[a:b + 1]] = 1
            rows += ev
        return SeriesScores(scores=scores, labels=labels, contributions=contrib,
                            events=events_frame(rows, self.channels_, has_time=time_ is not None), threshold=float(self.threshold_), in_event=in_event, part=part)

    def calibrate(self, X, *, time=None, series_id=None, threshold: str = "contamination", contamination: float | None = None,
                  fpr: float = 0.05) -> "SeriesDetector":
        """Set the point threshold on new **normal** series, without labels and without retraining: a model
        moved to another machine, sensor or patient whose normal level differs from the training data's.
        ``X`` / ``time`` / ``series_id`` as :meth:`score_series`. ``threshold='contamination'``: the
        (1 − c) quantile of the calibration points' scores, c = ``contamination`` (default: the model's
        point ``contamination``); ``'fpr'``: at most ``fpr`` of the calibration points above it
        (Neyman–Pearson, as :meth:`ganad.BaseGANDetector.calibrate`). Point scores tie in runs of one
        stride, so only some rates are reachable: the largest at most ``fpr`` is taken, ``calibration_``
        records it (``achieved_fpr``, ``tied_at_threshold``, ``next_fpr``) and a warning says when it is
        under half of ``fpr``. The window detector is not changed
        (its scores, and so every point score, stay as they are); the calibration points' scores become
        the reference of :meth:`predict_proba` / :meth:`predict_confidence`. Returns self."""
        self._check_fitted()
        from ganad.scoring.threshold import check_contamination, contamination_threshold, fpr_achieved, fpr_shortfall, fpr_threshold
        if threshold not in ("contamination", "fpr"):
            raise InputError(_fmt("threshold", f"is {threshold!r}; a series model is calibrated without labels",
                                  "use 'contamination' or 'fpr' (label-based thresholds need labelled points: evaluate with "
                                  "`ganad evaluate` and labelled ranges instead)"))
        if contamination is not None and threshold != "contamination":
            raise InputError(_fmt("contamination", f"is {contamination!r}, but threshold={threshold!r} does not read it",
                                  "pass threshold='contamination' with it, or drop it"))
        c = check_contamination(self.contamination if contamination is None else contamination)
        if threshold == "fpr" and not (isinstance(fpr, (int, float)) and not isinstance(fpr, bool) and 0 < fpr < 1):
            raise InputError(_fmt("fpr", f"is {fpr!r}", "pass a false-positive rate between 0 and 1, such as 0.01"))
        pts = self.score_series(X, time=time, series_id=series_id).scores
        pts = pts[np.isfinite(pts)]
        if pts.size < 2:
            raise InputError(_fmt("X", f"gives {pts.size} scored point(s)", "pass a normal series of at least one window and a few more points"))
        tau = contamination_threshold(pts, c, "calibration points") if threshold == "contamination" else fpr_threshold(pts, float(fpr))
        info = fpr_achieved(pts, tau) if threshold == "fpr" else {}
        short = None if not info else fpr_shortfall(
            info, float(fpr), int(pts.size), unit="calibration points",
            ties=f"a series' point scores tie in runs: at stride {self.stride_} the {self.stride_} points between two window "
                 "starts share their windows' mean",
            finer=f"calibrate on a longer normal series (a run is then a smaller share of its points), or fit with a smaller "
                  f"stride than {self.stride_} (CLI: ganad fit --stride)")
        if short:
            import warnings
            warnings.warn(short, UserWarning, stacklevel=2)
        self.threshold_ = float(tau)
        self.reference_scores_ = _reference_sample(pts)
        self.calibration_ = {"threshold": threshold, "threshold_value": float(tau), "n_points": int(pts.size),
                             **({"contamination": float(c)} if threshold == "contamination" else {"fpr": float(fpr), **info})}
        return self

    def decision_function(self, X, *, time=None, series_id=None) -> np.ndarray:
        """Score per time point (T,)."""
        return self.score_series(X, time=time, series_id=series_id).scores

    def predict(self, X, *, time=None, series_id=None, return_confidence: bool = False):
        """0 / 1 per time point; ``return_confidence=True`` also returns :meth:`predict_confidence`."""
        r = self.score_series(X, time=time, series_id=series_id)
        if return_confidence:
            return r.labels, self._confidence(r.scores)
        return r.labels

    # PyOD's probability and confidence, per time point (see BaseGANDetector.predict_proba)
    _estimator_type = "outlier_detector"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "outlier_detector"
        return tags

    def _reference(self) -> np.ndarray:
        self._check_fitted()
        ref = getattr(self, "reference_scores_", None)
        if ref is None or len(ref) < 2:
            raise InputError(_fmt("SeriesDetector", "has no reference point scores for predict_proba / predict_confidence (a model "
                                                    "saved by a ganad from before 29 Nov 2026 00:19, 0c830ed, which kept none; its "
                                                    "scores and labels are unaffected)",
                                  "calibrate it on normal series (SeriesDetector.calibrate(X_normal), or ganad calibrate MODEL "
                                  "NORMAL_FILE), which keeps their point scores as the reference, or fit it again"))
        return np.asarray(ref, dtype=np.float64)

    def predict_proba(self, X, method: str = "linear", return_confidence: bool = False, *, time=None, series_id=None):
        """(T, 2) [P(normal), P(anomaly)] per time point, as PyOD: ``'linear'`` (min-max of the reference
        scores) or ``'unify'`` (erf of the standardised score). The reference is the training point
        scores (after :meth:`calibrate`, the calibration points'), or 10,000 evenly spaced quantiles of
        them for longer series (saved with the model)."""
        from ganad.detectors.base import proba_from_scores
        scores = self.decision_function(X, time=time, series_id=series_id)
        finite = np.where(np.isnan(scores), -np.inf, scores)  # a point no window covers: NaN score, treated as normal (inf: the top)
        probs = proba_from_scores(finite, self._reference(), method)
        if return_confidence:
            return probs, self._confidence(scores)
        return probs

    def predict_confidence(self, X, *, time=None, series_id=None) -> np.ndarray:
        """ExCeed confidence of each point's label (see :func:`ganad.detectors.base.exceed_confidence`)."""
        return self._confidence(self.decision_function(X, time=time, series_id=series_id))

    def _confidence(self, scores) -> np.ndarray:
        from ganad.detectors.base import exceed_confidence
        return exceed_confidence(np.where(np.isnan(scores), -np.inf, scores), self._reference(), self.threshold_)

    def stream(self):
        """A :class:`ganad.series.stream.StreamScorer` for one live series."""
        from ganad.series.stream import StreamScorer
        return StreamScorer(self)

    # ---------------------------------------------------------------- files
    def save(self, path) -> Path:
        """Write ``path/series.json`` and the wrapped detector in ``path/detector/`` (safetensors + JSON), atomically."""
        self._check_fitted()
        path = check_model_path(path)  # a file, under a file, a foreign folder, read-only: before any work
        params = self.get_params(deep=False)
        params["detector"] = params["detector"] if isinstance(params["detector"], str) else type(self.detector_).__name__
        cfg = {"format": SERIES_FORMAT, "format_version": SERIES_FORMAT_VERSION, "params": params,
               "state": {"window": self.window_, "stride": self.stride_, "threshold": float(self.threshold_),
                         "window_score": self.__dict__.get("window_score_", self.window_score),
                         "dtw_gamma": float(self.__dict__.get("dtw_gamma_", self.dtw_gamma)),
                         "event_gap": int(self.event_gap_),
                         "n_channels": self.n_channels_, "channels": self.channels_, "channel_baseline": list(self.channel_baseline_),
                         "io": getattr(self, "io_", None),
                         **({"calibration": self.calibration_} if getattr(self, "calibration_", None) is not None else {}),
                         **({"reference_scores": [float(v) for v in self.reference_scores_]}
                            if getattr(self, "reference_scores_", None) is not None else {})}}
        write_wrapper_model(path, SERIES_CONFIG, "series parameters", cfg, lambda tmp: self.detector_.save(tmp / DETECTOR_DIR))
        return path

    @classmethod
    def load(cls, path) -> "SeriesDetector":
        return load_series(path)


#: at most this many training point scores are kept as the reference of predict_proba / predict_confidence
_REFERENCE_MAX = 10_000


def _reference_sample(pts: np.ndarray) -> np.ndarray:
    """The training point scores, or ``_REFERENCE_MAX`` evenly spaced quantiles of them (sorted)."""
    pts = np.sort(np.asarray(pts, dtype=np.float64))
    if pts.size <= _REFERENCE_MAX:
        return pts
    return np.quantile(pts, np.linspace(0.0, 1.0, _REFERENCE_MAX))


def load_any(path):
    """``ganad.load``: a series model (``series.json``), a multi-view model (``multiview.json``) or a
    detector model directory; never unpickles."""
    import os
    import ganad.detectors  # noqa: F401  (the built-in methods register on import, which `import ganad` leaves to first use)
    from ganad.io import recover_model_dir
    if not os.path.lexists(path):  # a save killed between its two renames: the previous model, of whichever kind
        path = recover_model_dir(path) or path
    if is_series_model(path):
        return load_series(path)
    from ganad.multiview import is_multiview_model, load_multiview
    if is_multiview_model(path):
        return load_multiview(path)
    from ganad.io import load_model
    return load_model(path)


def is_series_model(path) -> bool:
    return (Path(path) / SERIES_CONFIG).is_file()


def load_series(path) -> SeriesDetector:
    """Rebuild a SeriesDetector from ``path`` (JSON + the wrapped detector's safetensors; never unpickles),
    all from one save (:func:`ganad.io.read_whole`)."""
    from ganad.io import read_whole
    return read_whole(path, _load_series_once)


def _load_series_once(path) -> SeriesDetector:
    import ganad.detectors  # noqa: F401  (registers the built-in methods)
    from ganad.io import _tuples, load_model, read_wrapper_config
    path = Path(path)
    f = path / SERIES_CONFIG
    cfg = read_wrapper_config(path, SERIES_CONFIG, SERIES_FORMAT, SERIES_FORMAT_VERSION, "SeriesDetector.save or `ganad fit --window`")
    det = load_model(path / DETECTOR_DIR)
    try:
        if not isinstance(cfg.get("params"), dict) or not isinstance(cfg.get("state"), dict):
            raise TypeError("params and state must be objects")
        p, st = dict(cfg["params"]), cfg["state"]
        if not isinstance(p.get("detector"), str) or p["detector"] not in __import__("ganad").DETECTORS:
            p["detector"] = det  # an instance was wrapped: keep the loaded one as the parameter
        if isinstance(p.get("detector_params"), dict):  # JSON lists back as tuples where the detector's default is one (betas)
            p["detector_params"] = _tuples(type(det), p["detector_params"])
        if "event_gap" not in st:  # written before event_gap existed: one event per run of anomalous points,
            p["event_gap"] = 0     # and the parameters say so (None would mean one window)
        sd = SeriesDetector(**p)
        sd.detector_ = det
        for key in ("window", "stride", "n_channels", *(("event_gap",) if "event_gap" in st else ())):
            v = st[key]  # whole numbers as written: int() would take 16.9 as 16 and "4" as 4
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "event_gap" else 1):
                raise ValueError(f"{key} {v!r} is not a {'non-negative' if key == 'event_gap' else 'positive'} whole number")
        sd.window_, sd.stride_ = int(st["window"]), int(st["stride"])
        if not finite_number(st["threshold"]):
            raise TypeError(f"threshold {st['threshold']!r} is not a finite number")
        sd.threshold_ = float(st["threshold"])
        # files written before event_gap existed made one event per run of anomalous points
        sd.event_gap_ = int(st.get("event_gap", 0))
        if sd.event_gap_ < 0:
            raise ValueError(f"event_gap {sd.event_gap_} is negative")
        sd.n_channels_ = int(st["n_channels"])
        sd.channels_ = [str(c) for c in st["channels"]]
        base = st["channel_baseline"]
        if not isinstance(base, list) or not all(finite_number(v) and v > 0 for v in base):
            # fit floors each at 1e-12: NaN made every contribution NaN, 0 infinite, a negative one negative
            raise ValueError(f"channel_baseline {str(base)[:60]} is not a list of finite positive numbers")
        sd.channel_baseline_ = [float(v) for v in base]
        if len(sd.channels_) != sd.n_channels_ or len(sd.channel_baseline_) != sd.n_channels_:
            raise ValueError("channel names / baselines do not match n_channels")
        shape = tuple(int(v) for v in getattr(det, "data_shape_", ()) or ())
        if shape and shape != (sd.n_channels_, sd.window_):  # an edited window / n_channels would index past the windows
            raise ValueError(f"window {sd.window_} and n_channels {sd.n_channels_} do not match the detector's "
                             f"windows of shape {shape} (channels, length)")
        if not 1 <= sd.stride_ <= sd.window_:
            raise ValueError(f"stride {sd.stride_} is not in [1, window]")
        if st.get("io") is not None:
            io = st["io"]
            if not isinstance(io, dict) or (io.get("channels") is not None and [str(c) for c in io["channels"]] != sd.channels_):
                raise ValueError(f"io.channels {io.get('channels') if isinstance(io, dict) else io!r} differ from the "
                                 f"model's channels {sd.channels_} (the file columns would be read in another order)")
            sd.io_ = io
        if st.get("calibration") is not None:
            if not isinstance(st["calibration"], dict):
                raise ValueError("calibration is not an object")
            sd.calibration_ = st["calibration"]
        if st.get("reference_scores") is not None:
            ref = np.asarray(st["reference_scores"], dtype=np.float64)
            if ref.ndim != 1 or not np.isfinite(ref).all():
                raise ValueError("reference_scores is not a list of finite numbers")
            sd.reference_scores_ = ref
        sd._check()  # the parameters, as fit checks them (contamination, window_score, gaps, ...)
        # the window score the threshold was fitted on (files written before it was recorded: the parameters')
        ws, gamma = st.get("window_score", sd.window_score), st.get("dtw_gamma", sd.dtw_gamma)
        if ws not in WINDOW_SCORES or isinstance(gamma, bool) or not finite_number(gamma) or not gamma > 0:
            raise ValueError(f"window_score {ws!r} / dtw_gamma {gamma!r} is not one of {WINDOW_SCORES} / a positive number")
        sd.window_score_, sd.dtw_gamma_ = str(ws), float(gamma)
    except InputError as exc:
        raise ModelFileError(_fmt(str(f), f"holds a parameter the series detector refuses ({exc})", "re-train and save the model")) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(_fmt(str(f), f"is inconsistent or corrupt ({type(exc).__name__}: {exc})", "re-train and save the model")) from exc
    return sd
