"""Per-recording thresholds of ``ganad serve --warm-up N``: one :class:`~ganad.scoring.adaptive.AdaptiveThreshold`
per served model (table, image or multi-view), keyed by the recording id a request names.

A request to ``POST /v1/models/{name}/score?recording=ID`` (or with the ``X-Recording-Id`` header) is scored
as any other (micro-batched with other requests); then, on the event loop, its scores are fed to the
recording's state in the order the requests finish: the recording's first N scores are its warm-up (the
model's threshold holds there), after which its threshold is the (1 − fpr) quantile of them, never below
the model's. Bounds: at most ``max_recordings`` recordings per model (``--max-streams``), a new one evicting
the least recently used; a reload of the model starts every recording anew (its threshold changed).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ganad.exceptions import _fmt
from ganad.serve.errors import Refusal

MAX_RECORDING_ID = 200


def check_recording_id(rid, where: str) -> str:
    """A recording id: 1-200 printable characters (letters, digits and ``-_.:@``)."""
    if not isinstance(rid, str) or not rid:
        raise Refusal(422, _fmt(where, "is empty", "name the recording, e.g. ?recording=patient-7 or the X-Recording-Id header"),
                      "InputError")
    if len(rid) > MAX_RECORDING_ID or not all((c.isascii() and c.isalnum()) or c in "-_.:@" for c in rid):
        raise Refusal(422, _fmt(where, f"is {rid[:40]!r}{'...' if len(rid) > 40 else ''}",
                                f"use at most {MAX_RECORDING_ID} letters, digits and - _ . : @"), "InputError")
    return rid


class RecordingThresholds:
    """The served model's per-recording thresholds, bounded to ``max_recordings`` (least recently used evicted)."""

    def __init__(self, model, n_first: int, fpr: float | None, max_recordings: int, metrics=None, name: str = ""):
        from ganad.scoring.adaptive import for_model
        self.at = for_model(model, n_first, fpr)
        self.max_recordings = int(max_recordings)
        self._order: OrderedDict[str, None] = OrderedDict()
        self.metrics, self.name = metrics, name
        self.changes = 0  # updates so far: whether the state changed since ``--recordings-state`` last saved it

    def update(self, scores: np.ndarray, rid: str) -> dict:
        """The answer's fields for ``scores`` of recording ``rid``: thresholds, warm-up flags, labels and its state."""
        new = rid not in self._order
        if new:
            while len(self._order) >= self.max_recordings:
                old, _ = self._order.popitem(last=False)
                self.at.forget(old)
                if self.metrics is not None:
                    self.metrics.streams_dropped.inc(self.name, "recording_evicted")
        self._order[rid] = None
        self._order.move_to_end(rid)
        self.changes += 1
        tau, warm = self.at.update(scores, rid)
        return {"recording": rid, "new_recording": new, "thresholds": tau, "warm_up": warm.astype(np.int64),
                "labels": (np.asarray(scores) > tau).astype(np.int64), "recording_state": self.at.state(rid)}

    def __len__(self) -> int:
        return len(self._order)

    def to_dict(self) -> dict:
        """The recordings' state as JSON: the thresholds' state and the recency order (least recent first)."""
        return {"order": list(self._order), "thresholds": self.at.to_dict()}

    def restore(self, d: dict) -> str | None:
        """Take over a state :meth:`to_dict` wrote; None if restored, else why not (the warm-up, rate or the
        model's threshold differ: the saved thresholds belong to other settings or another model)."""
        from ganad.scoring.adaptive import AdaptiveThreshold
        saved = AdaptiveThreshold.from_dict(d["thresholds"])
        for what, a, b in (("warm-up", saved.n_first, self.at.n_first), ("rate", saved.fpr, self.at.fpr),
                           ("model threshold", saved.threshold, self.at.threshold), ("floor", saved.raise_only, self.at.raise_only)):
            if a != b:
                return f"the saved {what} is {a}, this server's {b}"
        order = [str(r) for r in d["order"]]
        if set(order) != saved.recordings():
            return "its recency order does not list the recordings it holds"
        for rid in order[:max(0, len(order) - self.max_recordings)]:  # over --max-streams now: the least recent go
            saved.forget(rid)
        self.at, self._order = saved, OrderedDict((r, None) for r in order[-self.max_recordings:])
        return None
