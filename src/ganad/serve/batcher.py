"""Micro-batching: concurrent requests to one model are scored in one forward pass.

Requests wait in a bounded queue. A worker task takes what is queued (up to ``max_batch_rows``
rows; it waits up to ``max_wait_ms`` for more only when that is set: by default it takes
what arrived while the previous pass ran, so a lone request never waits), concatenates it,
and calls the detector once on a scoring thread, off the event loop. The results are split
back per request. A multi-view model's request is a dict of views (equal row counts): the
batch concatenates each view's rows. Every request was validated before it was queued, so a batch cannot fail
on one request's data; if a pass fails anyway, each request is scored on its own so that an
error stays with the request that caused it, and the worker keeps running. With ``workers`` > 1
(``ganad serve --workers N``) N workers take batches from the same queue, each with one pass in flight;
a request that did not fit a worker's pass waits for that worker's next one.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from ganad.exceptions import GanadError, _fmt
from ganad.serve.errors import Refusal

log = logging.getLogger("ganad.serve")


@dataclass
class BatchResult:
    scores: np.ndarray
    components: dict[str, np.ndarray] | None = None
    map: np.ndarray | None = None


@dataclass
class _Item:
    X: np.ndarray | dict[str, np.ndarray]  # a multi-view model's request: {view: rows}
    components: bool
    map: bool
    future: asyncio.Future = field(repr=False)

    def __len__(self) -> int:
        return _rows(self.X)


def _rows(X) -> int:
    return len(next(iter(X.values()))) if isinstance(X, dict) else len(X)


def _concat(Xs: list):
    if isinstance(Xs[0], dict):
        return {v: np.concatenate([X[v] for X in Xs]) for v in Xs[0]}
    return np.concatenate(Xs)


def score_batch(det, X, components: bool, want_map: bool) -> BatchResult:
    """The detector's own scoring path on validated data (runs on the scoring thread). A
    multi-view model (``X`` a dict of views): the sum of the views' standardised scores, and with
    ``components`` each view's as ``view_NAME``."""
    if isinstance(X, dict):
        z = det.score_views(X)
        scores = np.sum([z[v] for v in det.views_], axis=0)
        return BatchResult(scores, {f"view_{v}": z[v] for v in det.views_} if components else None)
    if components or want_map:  # the components only where asked for: one nobody asked for must not refuse the row
        r = det.score_components(X, return_map=want_map) if components else det._score_with_map(X)
        return BatchResult(r.scores, r.components if components else None, r.map if want_map else None)
    return BatchResult(det.decision_function(X))


class MicroBatcher:
    def __init__(self, det, executor: Executor, *, name: str, max_batch_rows: int = 4096, max_wait_ms: float = 0.0,
                 max_queue: int = 1024, metrics=None, workers: int = 1):
        self.det, self.executor, self.name = det, executor, name
        self.max_batch_rows, self.max_wait = int(max_batch_rows), float(max_wait_ms) / 1000.0
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=int(max_queue))
        self.metrics = metrics
        self.workers = max(1, int(workers))
        self._tasks: list[asyncio.Task] = []
        self._closing = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(), name=f"batcher-{self.name}-{i}") for i in range(self.workers)]

    @property
    def alive(self) -> bool:
        return bool(self._tasks) and all(not t.done() for t in self._tasks) and not self._closing

    async def close(self) -> None:
        """Score everything already queued, then stop."""
        if not self._tasks:
            return
        self._closing = True
        await self.queue.put(None)  # each worker puts it back for the next one (_next_batch)
        await asyncio.gather(*self._tasks)

    # ------------------------------------------------------------------ requests
    def submit(self, X, components: bool = False, want_map: bool = False) -> asyncio.Future:
        if not self.alive:
            raise Refusal(503, _fmt(f"model {self.name!r}", "is being replaced or shut down", "retry the request"),
                          "Unavailable", {"Retry-After": "1"})
        if isinstance(X, dict) and len({len(x) for x in X.values()}) != 1:
            # a batch concatenates each view: unequal views would shift every later request's rows
            raise Refusal(422, _fmt("views", f"have different lengths {({v: len(x) for v, x in X.items()})}",
                                    "send the same samples, in the same order, in every view"), "InputError")
        fut = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(_Item(X, components, want_map, fut))
        except asyncio.QueueFull:
            raise Refusal(503, _fmt(f"model {self.name!r}", f"has {self.queue.maxsize} requests queued already (the server is at capacity)",
                                    "retry after a short wait, send fewer larger requests, or start the server with a larger --max-queue"),
                          "Overloaded", {"Retry-After": "1"}) from None
        return fut

    # ------------------------------------------------------------------ worker
    async def _next_batch(self, carry: _Item | None) -> tuple[list[_Item] | None, _Item | None]:
        """The next pass's requests, and the request held back for the worker's pass after it (one
        that would not fit): each worker keeps its own, so a worker waiting on the queue never
        drops what another held back."""
        first = carry or await self.queue.get()
        if first is None:  # close(): leave the marker for the other workers
            self.queue.put_nowait(None)
            return None, None
        batch, rows = [first], len(first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while rows < self.max_batch_rows:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except (asyncio.TimeoutError, TimeoutError):
                    break
            if item is None:  # close(): finish this batch, then stop
                self.queue.put_nowait(None)
                break
            if rows + len(item) > self.max_batch_rows:
                return batch, item
            batch.append(item)
            rows += len(item)
        return batch, None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        carry = None
        while True:
            try:
                batch, carry = await self._next_batch(carry)
                if batch is None:
                    return
                if self.metrics is not None:
                    self.metrics.queue_depth.set(self.name, value=self.queue.qsize())
                await self._score(loop, batch)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # never let the worker die: log it and go on
                log.exception("batcher %s: unexpected error", self.name, extra={"model": self.name, "error": repr(exc)})

    async def _score(self, loop, batch: list[_Item]) -> None:
        comps = any(i.components for i in batch)
        want_map = any(i.map for i in batch)
        X = batch[0].X if len(batch) == 1 else _concat([i.X for i in batch])
        try:
            res = await loop.run_in_executor(self.executor, score_batch, self.det, X, comps, want_map)
        except Exception as exc:
            if len(batch) > 1:
                log.warning("batcher %s: a pass of %d requests failed (%r); scoring them one by one", self.name, len(batch), exc)
                for item in batch:
                    await self._score(loop, [item])
                return
            _fail(batch[0].future, exc)
            return
        if self.metrics is not None:
            self.metrics.rows.inc(self.name, value=_rows(X))
            self.metrics.batch_rows.observe(self.name, value=_rows(X))
            self.metrics.batch_requests.observe(self.name, value=len(batch))
        start = 0
        for item in batch:
            sl = slice(start, start + len(item))
            start = sl.stop
            if item.future.done():  # the client went away
                continue
            item.future.set_result(BatchResult(
                res.scores[sl],
                {k: v[sl] for k, v in res.components.items()} if item.components else None,
                res.map[sl] if item.map else None))


def _fail(fut: asyncio.Future, exc: Exception) -> None:
    if fut.done():
        return
    if isinstance(exc, GanadError) or isinstance(exc, ValueError):
        fut.set_exception(Refusal(422, str(exc), type(exc).__name__))
    else:
        fut.set_exception(exc)
