"""Per-stream state of the series endpoint: one :class:`~ganad.series.stream.StreamScorer` per stream id.

A :class:`StreamTable` belongs to one loaded series model (one registry entry). It maps stream ids
to streams, each with its scorer and an ``asyncio.Lock``: the chunks of one stream are scored one
after the other, in the order they arrived, while different streams proceed independently. The
scoring itself (``StreamScorer.update`` / ``close``) runs on the registry's scoring thread, off the
event loop; the table is only touched on the event loop.

Bounds (settings ``max_streams`` and ``stream_idle_s``):

- at most ``max_streams`` streams per model: a new stream beyond it evicts the least recently used
  idle stream (a stream with a chunk in flight is never evicted; if every stream is busy the new
  one is refused with 503);
- a stream that received nothing for ``stream_idle_s`` seconds is dropped (checked on every
  request to the model; 0 = never).

An evicted or dropped stream loses its unreported points (at most ``window + stride - 2``) and an
open event; a later chunk with its id starts a new stream at index 0, which the answer says
(``"new_stream": true``). A hot reload of the model gives it a new, empty table: streams of the old
model are dropped (chunks already in flight finish on the old model).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ganad.exceptions import _fmt
from ganad.serve.errors import Refusal

MAX_STREAM_ID = 200


def check_stream_id(sid, where: str) -> str:
    """A stream id: 1-200 printable characters (letters, digits and ``-_.:@``)."""
    if not isinstance(sid, str) or not sid:
        raise Refusal(422, _fmt(where, "is missing" if sid in (None, "") else f"is {sid!r}, not a string",
                                'name the stream, e.g. {"stream_id": "sensor-7", "points": [...]}, ?stream_id=sensor-7 '
                                "or the X-Stream-Id header"), "InputError")
    if len(sid) > MAX_STREAM_ID or not all((c.isascii() and c.isalnum()) or c in "-_.:@" for c in sid):
        raise Refusal(422, _fmt(where, f"is {sid[:40]!r}{'...' if len(sid) > 40 else ''}",
                                f"use at most {MAX_STREAM_ID} letters, digits and - _ . : @"), "InputError")
    return sid


async def _on_thread(executor, fn, *args):
    """``fn(*args)`` (a stream's scorer) on a scoring thread. If the request is cancelled meanwhile
    (its client went away, a timeout), a chunk not started yet is dropped, but one already running is
    waited for before this returns, so the stream's lock stays held until the thread is done with the
    scorer: with several scoring threads (``--workers``) the stream's next chunk would otherwise run
    on the same scorer at the same time."""
    cf = executor.submit(fn, *args)
    try:
        return await asyncio.wrap_future(cf)
    except asyncio.CancelledError:
        if not cf.done():  # running (one not started was cancelled with the request)
            done = asyncio.wrap_future(cf)
            while not done.done():
                try:
                    await asyncio.wait([done])
                except asyncio.CancelledError:
                    pass
            if not done.cancelled():
                done.exception()  # nobody waits for this chunk's answer any more
        raise


@dataclass
class Stream:
    scorer: object
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0  # requests holding or waiting for the lock


def clean_event(ev: dict) -> dict:
    """An EventTracker record as JSON: no ``series`` / empty times; shares as a dict."""
    out, shares = {}, {}
    for k, v in ev.items():
        if k == "series" or v is None:
            continue
        if k.startswith("share_"):
            shares[k[6:]] = float(v)
        elif isinstance(v, np.generic):
            out[k] = v.item()
        else:
            out[k] = v
    if shares:
        out["shares"] = shares
    return out


class StreamTable:
    def __init__(self, model, executor, *, name: str, max_streams: int = 10000, idle_s: float = 3600.0, metrics=None):
        self.model, self.executor, self.name = model, executor, name
        self.max_streams, self.idle_s = int(max_streams), float(idle_s)
        self.metrics = metrics
        self.streams: OrderedDict[str, Stream] = OrderedDict()  # least recently used first
        self.closed = False

    def __len__(self) -> int:
        return len(self.streams)

    def _gauge(self):
        if self.metrics is not None:
            self.metrics.streams.set(self.name, value=len(self.streams))

    def _evicted(self, reason: str, n: int = 1):
        if self.metrics is not None and n:
            self.metrics.streams_dropped.inc(self.name, reason, value=n)

    def sweep(self, now: float | None = None) -> int:
        """Drop idle streams (no chunk for ``idle_s``); returns how many."""
        if self.idle_s <= 0:
            return 0
        now = time.monotonic() if now is None else now
        gone, seen = 0, 0
        while self.streams and seen < len(self.streams):  # least recently used first: stop at the first recent one
            sid, st = next(iter(self.streams.items()))
            if now - st.last_used < self.idle_s:
                break
            if st.busy:  # in use: not idle; it goes to the recent end
                self.streams.move_to_end(sid)
                seen += 1
                continue
            del self.streams[sid]
            gone += 1
        self._evicted("idle", gone)
        self._gauge()
        return gone

    def _get(self, sid: str, create: bool) -> tuple[Stream | None, bool]:
        st = self.streams.get(sid)
        if st is not None:
            self.streams.move_to_end(sid)
            return st, False
        if not create:
            return None, False
        if len(self.streams) >= self.max_streams:
            victim = next((k for k, s in self.streams.items() if not s.busy), None)
            if victim is None:
                raise Refusal(503, _fmt(f"model {self.name!r}", f"has {self.max_streams} streams, all with a chunk in flight",
                                        "retry after a short wait, end finished streams with DELETE, or start the server "
                                        "with a larger --max-streams"), "Overloaded", {"Retry-After": "1"})
            del self.streams[victim]
            self._evicted("lru")
        st = self.streams[sid] = Stream(self.model.stream())
        self._gauge()
        return st, True

    def _check_open(self):
        if self.closed:
            raise Refusal(503, _fmt(f"model {self.name!r}", "is being replaced or shut down", "retry the request"),
                          "Unavailable", {"Retry-After": "1"})

    async def update(self, sid: str, points: np.ndarray):
        """Feed a chunk to stream ``sid`` (created on first use); returns (StreamUpdate, new_stream, n_seen)."""
        self._check_open()
        self.sweep()
        st, new = self._get(sid, create=True)
        st.busy += 1
        try:
            async with st.lock:
                if st.scorer.closed:  # a DELETE of this stream came first
                    raise Refusal(409, _fmt(f"stream {sid!r} of model {self.name!r}", "was ended while this chunk waited",
                                            "send the chunk again to start a new stream"), "StreamEnded")
                up = await _on_thread(self.executor, st.scorer.update, points)
                n_seen = st.scorer.n_seen
        except Exception:
            if new and st.busy == 1 and st.scorer.n_seen == 0 and self.streams.get(sid) is st:
                del self.streams[sid]  # a refused first chunk starts no stream (its next chunk is new_stream again)
                self._gauge()
            raise
        finally:
            st.busy -= 1
            st.last_used = time.monotonic()
        if self.metrics is not None:
            self.metrics.stream_points.inc(self.name, value=len(points))
            if up.closed:
                self.metrics.stream_events.inc(self.name, value=len(up.closed))
        return up, new, n_seen

    async def end(self, sid: str):
        """End stream ``sid``: score its remaining points and close an open event; it is removed either way."""
        self._check_open()
        self.sweep()  # a stream idle past stream_idle_s is gone for a DELETE too, as for the next chunk
        st, _ = self._get(sid, create=False)
        if st is None:
            raise Refusal(404, _fmt(f"stream {sid!r} of model {self.name!r}", "does not exist (never started, already ended, "
                                    "or dropped: idle, evicted or the model was reloaded)",
                                    f"start it by POSTing points to /v1/models/{self.name}/series"), "UnknownStream")
        st.busy += 1
        try:
            async with st.lock:
                if self.streams.get(sid) is st:
                    del self.streams[sid]
                    self._gauge()
                try:
                    up = await _on_thread(self.executor, st.scorer.close)
                finally:  # a stream shorter than a window is ended too: a chunk waiting for it must not feed a forgotten scorer
                    st.scorer.closed = True
                n_seen = st.scorer.n_seen
        finally:
            st.busy -= 1
        if self.metrics is not None and up.closed:
            self.metrics.stream_events.inc(self.name, value=len(up.closed))
        return up, n_seen

    def close(self, reason: str = "reload") -> None:
        """Drop every stream (the model is replaced or the server stops)."""
        self.closed = True
        self._evicted(reason, len(self.streams))
        self.streams.clear()
        self._gauge()
