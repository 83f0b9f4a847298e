"""Scalers fitted on training data only, stored as plain numbers in the model's JSON."""

from __future__ import annotations

import numpy as np

SCALERS = ("auto", "standard", "minmax", "none")


class Scaler:
    """Per-feature (vectors) or per-channel (series, images) scaling.

    ``standard``: (x - mean) / std; ``minmax``: to [-1, 1] using the training range;
    ``none``: identity. Statistics come from the training data only and are reused, never
    refitted, on the data being scored. Constant features get a scale of 1.
    """

    def __init__(self, kind: str = "standard"):
        if kind not in SCALERS[1:]:
            raise ValueError(f"scaler: unknown scaler {kind!r}. Fix: use one of {', '.join(SCALERS)}")
        self.kind = kind
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    @staticmethod
    def _axes(X: np.ndarray) -> tuple[int, ...]:
        return (0,) if X.ndim == 2 else (0,) + tuple(range(2, X.ndim))

    def fit(self, X: np.ndarray) -> "Scaler":
        axes = self._axes(X)
        if self.kind == "standard":
            shift = X.mean(axis=axes, dtype=np.float64)
            scale = X.std(axis=axes, dtype=np.float64)
        elif self.kind == "minmax":
            lo, hi = X.min(axis=axes).astype(np.float64), X.max(axis=axes).astype(np.float64)
            shift, scale = (hi + lo) / 2, (hi - lo) / 2
        else:
            shift = np.zeros(X.shape[1]); scale = np.ones(X.shape[1])
        scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(shift)), scale, 1.0)
        self.shift, self.scale = shift.astype(np.float32), scale.astype(np.float32)
        return self

    def _bc(self, v: np.ndarray, ndim: int) -> np.ndarray:
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self._bc(self.shift, X.ndim)) / self._bc(self.scale, X.ndim)).astype(np.float32, copy=False)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return (X * self._bc(self.scale, X.ndim) + self._bc(self.shift, X.ndim)).astype(np.float32, copy=False)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        s = cls(d["kind"])
        s.shift = np.asarray(d["shift"], dtype=np.float32)
        s.scale = np.asarray(d["scale"], dtype=np.float32)
        return s
