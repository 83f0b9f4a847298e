"""Prometheus text-format metrics without a dependency: counters, gauges and histograms with labels.

Everything is updated on the event loop's thread or under a lock, and rendered in the text
exposition format (``# HELP``, ``# TYPE``, one line per label set; histograms as cumulative
``_bucket{le=...}`` lines plus ``_sum`` and ``_count``).
"""

from __future__ import annotations

import bisect
import threading

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


def _labels(names, values) -> str:
    if not names:
        return ""
    esc = [str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in values]
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, esc)) + "}"


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.label_names = name, help, tuple(labels)
        self._lock = threading.Lock()
        self._values: dict[tuple, object] = {}

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def inc(self, *labels, value: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + value

    def get(self, *labels) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {v:g}" for k, v in items]


class Gauge(Counter):
    kind = "gauge"

    def set(self, *labels, value: float) -> None:
        with self._lock:
            self._values[labels] = float(value)

    def dec(self, *labels, value: float = 1.0) -> None:
        self.inc(*labels, value=-value)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name, help, labels=(), buckets=LATENCY_BUCKETS):
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(buckets))

    def observe(self, *labels, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            st = self._values.get(labels)
            if st is None:
                st = self._values[labels] = [[0] * (len(self.buckets) + 1), 0.0, 0]
            st[0][i] += 1
            st[1] += value
            st[2] += 1

    def count(self, *labels) -> int:
        st = self._values.get(labels)
        return 0 if st is None else st[2]

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, ([*v[0]], v[1], v[2])) for k, v in self._values.items())
        lines = self.header()
        names = self.label_names + ("le",)
        for k, (counts, total, n) in items:
            cum = 0
            for b, c in zip(self.buckets + (float("inf"),), counts):
                cum += c
                le = "+Inf" if b == float("inf") else f"{b:g}"
                lines.append(f"{self.name}_bucket{_labels(names, k + (le,))} {cum}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, k)} {total:.9g}")
            lines.append(f"{self.name}_count{_labels(self.label_names, k)} {n}")
        return lines


class ServeMetrics:
    """The service's metrics: requests, latency, errors, rows, batches, queue depth, reloads."""

    def __init__(self):
        self.requests = Counter("ganad_http_requests_total", "HTTP requests by route, method and status code.",
                                ("route", "method", "status"))
        self.latency = Histogram("ganad_http_request_duration_seconds", "Time from request start to response end.",
                                 ("route",))
        self.errors = Counter("ganad_http_errors_total", "Refused or failed requests by route and error type.",
                              ("route", "type"))
        self.in_flight = Gauge("ganad_http_requests_in_flight", "HTTP requests being handled now (this one included).")
        self.rows = Counter("ganad_rows_scored_total", "Rows (samples) scored, by model.", ("model",))
        self.batch_rows = Histogram("ganad_batch_rows", "Rows per forward pass of the micro-batcher.", ("model",),
                                    buckets=ROW_BUCKETS)
        self.batch_requests = Histogram("ganad_batch_requests", "Requests merged into one forward pass.", ("model",),
                                        buckets=ROW_BUCKETS)
        self.queue_depth = Gauge("ganad_queue_depth", "Requests waiting in the micro-batcher's queue.", ("model",))
        self.reloads = Counter("ganad_model_reloads_total", "Model reloads by model and result.", ("model", "result"))
        self.streams = Gauge("ganad_streams", "Open streams of the series endpoint, by model.", ("model",))
        self.stream_points = Counter("ganad_stream_points_total", "Points received by the series endpoint, by model.", ("model",))
        self.stream_events = Counter("ganad_stream_events_total", "Events closed by the series endpoint, by model.", ("model",))
        self.streams_dropped = Counter("ganad_streams_dropped_total", "Streams dropped without DELETE, by model and reason "
                                       "(lru: over --max-streams, idle: over --stream-idle-s, reload, shutdown; recording_evicted: a recording's "
                                       "per-recording threshold state over --max-streams, with --warm-up).", ("model", "reason"))
        self.recordings_saves = Counter("ganad_recordings_saves_total", "Writes of --recordings-state (the per-recording "
                                        "thresholds of --warm-up) by result (ok, error).", ("result",))
        self._all = [self.requests, self.latency, self.errors, self.in_flight, self.rows, self.batch_rows, self.batch_requests,
                     self.queue_depth, self.reloads, self.streams, self.stream_points, self.stream_events, self.streams_dropped,
                     self.recordings_saves]

    def render(self) -> str:
        return "\n".join(line for m in self._all for line in m.render()) + "\n"
