"""Composition of score components into one anomaly score."""

from __future__ import annotations

import numpy as np

from ganad.exceptions import InputError, _fmt


class WeightedSum:
    """score = Σ λ_i · component_i, with the λ_i normalised to sum to one."""

    kind = "weights"

    def __init__(self, weights: dict[str, float]):
        if not weights:
            raise InputError(_fmt("weights", "is empty", "give at least one component weight"))
        w = {k: float(v) for k, v in weights.items()}
        if any(v < 0 or not np.isfinite(v) for v in w.values()) or sum(w.values()) <= 0:
            raise InputError(_fmt("weights", f"must be finite, non-negative and not all zero, got {w}", "pass for example {'residual': 0.9, 'feature': 0.1}"))
        total = sum(w.values())
        self.weights = {k: v / total for k, v in w.items()}

    def __call__(self, components: dict[str, np.ndarray]) -> np.ndarray:
        missing = [k for k in self.weights if k not in components]
        if missing:
            raise InputError(_fmt("weights", f"name component(s) {missing} this detector does not compute",
                                  f"use only {sorted(components)}"))
        return sum(w * np.asarray(components[k], dtype=np.float64) for k, w in self.weights.items())

    def to_dict(self) -> dict:
        return {"kind": self.kind, "weights": self.weights}


COMPOSERS = {"weights": WeightedSum}


def composer_from_dict(d: dict):
    kind = d["kind"]
    if kind not in COMPOSERS:
        raise ValueError(f"unknown composition {kind!r}")
    return COMPOSERS[kind].from_dict(d) if hasattr(COMPOSERS[kind], "from_dict") else COMPOSERS[kind](d["weights"])
