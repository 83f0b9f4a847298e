"""Streaming scoring of one live series with a fitted :class:`~ganad.series.SeriesDetector`.

``StreamScorer.update(points)`` takes the next points (any number, (n,) or (n, C)) and returns
the points whose score is final, with event open / close records as they happen;
``close()`` ends the stream and returns the rest. A stream is one series without gaps (no time
is given; windows run across pauses): its scores equal those of ``SeriesDetector.score_series``
on the whole series scored as one part (no gap in it, or ``gaps='ignore'``; same windows, same
aggregation, same events): a point's score is final once every regular window that covers it has been scored,
so a point is reported at most ``window - 1 + stride - 1`` points after it arrives (the
**latency** in points). An event opens with its first anomalous point and closes once more than
the model's ``event_gap`` points (default: one window) have followed its last one, so a close
record comes ``event_gap + 1`` points after the event's end. Memory is bounded: the scorer keeps the last ``window + stride`` points
and the scores of the windows that still cover unreported points, whatever the stream's length.

Example::

    sc = ganad.load("series-model/").stream()
    for chunk in chunks:                      # e.g. lines read from a socket
        up = sc.update(chunk)
        for i, s in zip(up.index, up.scores): ...
        for ev in up.closed: print("event", ev["start"], ev["end"], ev["channels"])
    last = sc.close()
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ganad.data.validation import as_pandas_frame, plain_input
from ganad.exceptions import InputError, _fmt
from ganad.series.detector import EventTracker, _as_series, block_points, covering_mean


@dataclass
class StreamUpdate:
    """Points finalised by one ``update`` / ``close`` call, and the events that opened or closed."""

    index: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    contributions: np.ndarray
    opened: list = field(default_factory=list)
    closed: list = field(default_factory=list)


class StreamScorer:
    """See the module docstring. Build it with ``SeriesDetector.stream()`` (``model``: a fitted
    :class:`~ganad.series.SeriesDetector`; the scorer keeps at most a window and a stride of its points)."""

    def __init__(self, model):
        model._check_fitted()
        self.model = model
        self.W, self.S, self.C = int(model.window_), int(model.stride_), int(model.n_channels_)
        self._baseline = np.asarray(model.channel_baseline_, dtype=np.float64)[None, :, None]
        self._buf = np.empty((0, self.C), dtype=np.float64)
        self._buf_start = 0          # global index of _buf[0]
        self.n_seen = 0              # points received
        self._next_start = 0         # start of the next regular window
        self._emitted = 0            # points reported
        self._starts = np.empty(0, dtype=np.int64)
        self._scores = np.empty(0)
        self._maps = np.empty((0, self.C, self.W))
        self._last = None            # (score, contributions) of the last reported point
        self._tracker = EventTracker(model.channels_, gap=getattr(model, "event_gap_", 0))
        self.closed = False

    @property
    def latency_points(self) -> int:
        """Most points a score can wait for: window - 1 + stride - 1."""
        return self.W - 1 + self.S - 1

    def _block(self, a: int, b: int):
        """Scores and contributions of points [a, b) from the stored windows (NaN where none covers)."""
        return covering_mean(self._starts, self._scores, self._maps, self.W, a, b)

    def _report(self, a: int, b: int, final: bool = False) -> StreamUpdate:
        if b <= a:  # nothing became final (most calls when points arrive one at a time)
            return StreamUpdate(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int64), np.empty((0, self.C)))
        s, c = self._block(a, b)
        if final:  # trailing points no window covers copy the last covered point (as batch scoring does)
            miss = np.flatnonzero(np.isnan(s))  # an inf score (on_nonfinite='max') is covered: it stays the top score
            if miss.size:
                covered = np.flatnonzero(~np.isnan(s))
                ref = (s[covered[-1]], c[covered[-1]]) if covered.size else self._last
                if ref is None:  # no window was ever scored (cannot happen once n_seen >= window)
                    raise InputError(_fmt("stream", "has no scored window to take the last points' score from",
                                          "send at least one window of points"))
                s[miss], c[miss] = ref[0], ref[1]
        lab = (s > self.model.threshold_).astype(np.int64)
        idx = np.arange(a, b)
        opened, closed = self._tracker.feed(idx, s, lab, c)
        if b > a:
            self._last = (s[-1], c[-1].copy())
        self._emitted = b
        # forget windows that cover no point from b on
        keep = self._starts + self.W > b
        self._starts, self._scores, self._maps = self._starts[keep], self._scores[keep], self._maps[keep]
        return StreamUpdate(idx, s, lab, c, opened, closed)

    def update(self, points) -> StreamUpdate:
        """Feed the next points; returns the points whose score became final. A large chunk is scored
        in blocks of about :data:`ganad.series.detector.SCORE_BLOCK` window numbers, as batch scoring
        is (its windows and their maps are never all in memory at once: a 2-million-point chunk at
        window 256 and stride 1 would hold 8 GB), with the same scores and events; a chunk refused
        anywhere leaves the stream as it was."""
        if self.closed:
            raise InputError(_fmt("StreamScorer", "is closed", "make a new one with model.stream()"))
        points = plain_input(points, "points", row0=self.n_seen)  # a masked chunk refused (naming the stream's row), a tensor as an array
        try:  # (no cast here: _as_series checks the values and names what is wrong with them)
            a = np.asarray(points)
        except (TypeError, ValueError):
            a = None
        if a is not None and a.size == 0 and (a.shape in ((0,), (0, self.C))):
            return self._report(self._emitted, self._emitted)  # nothing new (a polling loop with no data): nothing final
        # the model's channel names (a chunk in the model's order) and the stream's point index in the messages
        # a DataFrame is taken by its channel names, as batch scoring takes it (it was read by position)
        x = _as_series(self.model._by_name(as_pandas_frame(points), getattr(self.model, "channels_", None)), "points",
                       channels=getattr(self.model, "channels_", None), row0=self.n_seen)
        if x.shape[1] != self.C:
            raise InputError(_fmt("points", f"have {x.shape[1]} channel(s), the model has {self.C}", "send every channel, in the order of fit time"))
        step = block_points(self.S, self.C, self.W)
        if len(x) <= step:
            return self._update(x)
        import copy
        saved = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "model"}
        parts = []
        try:
            for i in range(0, len(x), step):
                parts.append(self._update(x[i:i + step]))
        except BaseException:
            self.__dict__.update(saved)  # all or nothing, as for a chunk scored at once
            raise
        return StreamUpdate(np.concatenate([u.index for u in parts]), np.concatenate([u.scores for u in parts]),
                            np.concatenate([u.labels for u in parts]), np.concatenate([u.contributions for u in parts]),
                            [e for u in parts for e in u.opened], [e for u in parts for e in u.closed])

    def _update(self, x: np.ndarray) -> StreamUpdate:
        buf = np.concatenate([self._buf, x])
        n_seen = self.n_seen + len(x)
        last = n_seen - self.W
        if last >= self._next_start:
            starts = np.arange(self._next_start, last + 1, self.S, dtype=np.int64)
            view = np.lib.stride_tricks.sliding_window_view(buf, self.W, axis=0)  # (n, C, W)
            wins = np.ascontiguousarray(view[starts - self._buf_start])  # float64, scaled by the detector
            # may raise (a non-finite score): nothing of this chunk is kept then, so that a refused
            # chunk leaves the stream as it was (its points are not scored again with every later chunk)
            sc, mp = self.model._score_windows_at(wins, starts, stream=True)
        self._buf, self.n_seen = buf, n_seen
        if last >= self._next_start:
            self._starts = np.r_[self._starts, starts]
            self._scores = np.r_[self._scores, sc]
            self._maps = np.concatenate([self._maps, mp / self._baseline])
            self._next_start = int(starts[-1]) + self.S
            drop = min(self._next_start, self.n_seen) - self._buf_start
            self._buf, self._buf_start = self._buf[drop:], self._buf_start + drop
        if self._next_start > self._emitted:
            return self._report(self._emitted, self._next_start)
        return self._report(self._emitted, self._emitted)

    def close(self) -> StreamUpdate:
        """End of the stream: report the remaining points and close an open event."""
        if self.closed:
            raise InputError(_fmt("StreamScorer", "is already closed", "make a new one with model.stream()"))
        if self.n_seen < self.W:
            raise InputError(_fmt("stream", f"ended after {self.n_seen} point(s), shorter than the window ({self.W})",
                                  "send at least one window of points"))
        up = self._report(self._emitted, self.n_seen, final=True)
        up.closed += self._tracker.finish()
        self.closed = True
        return up
