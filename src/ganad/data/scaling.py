"""Scalers fitted on training data only, stored as plain numbers in the model's JSON."""

from __future__ import annotations

import numbers

import numpy as np
from ganad.params import is_int

SCALERS = ("auto", "per-feature", "standard", "minmax", "none")

#: modes of a 'per-feature' scaler, one per feature (vectors) or channel (series, images)
MODES = ("constant", "discrete", "continuous")


def is_constant(v: np.ndarray, lo: float, hi: float, mean: float) -> bool:
    """Whether a 'per-feature' scaler calls the values ``v`` of one feature constant: a range of at
    most ``tol · max(|lo|, |hi|)``, rounding noise of the precision the values carry (relative to their
    own magnitude: features in small units, 1e-8 ± 1e-9, are not constant). ``tol`` is 1e-6
    (about 8 units in float32's last place) for values float32 holds exactly (float32 data, or
    float64 data that are float32 numbers) and 1e-12 for other float64 values: a feature 1.7e9 + k
    (UNIX timestamps in seconds) moves by 1e-9 of its value and is not constant."""
    rng, ref = hi - lo, max(abs(lo), abs(hi))
    if rng <= 1e-12 * ref:
        return True
    if rng > 1e-6 * ref:
        return False
    if v.dtype.itemsize <= 4:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.array_equal(v.astype(np.float32), v))


#: numbers transformed at a time by :meth:`Scaler.transform_unclipped` (its float64 intermediate: 32 MB)
TRANSFORM_BLOCK = 2 ** 22


def _moments(X: np.ndarray, axes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature mean, std, min and max in float64, exact at every finite magnitude: a feature whose
    values are below ~1e-100 or above ~1e100 is divided by its largest magnitude first, since its
    squares (and, at 1e300, its sums) would underflow to 0 or overflow to inf in float64."""
    if X.ndim == 2:
        mean = X.mean(axis=axes, dtype=np.float64)
        std = X.std(axis=axes, dtype=np.float64)
    else:  # one channel at a time: std's float64 temporary is a channel's, not the whole windowed array's
        mean = np.array([X[:, j].mean(dtype=np.float64) for j in range(X.shape[1])])
        std = np.array([X[:, j].std(dtype=np.float64) for j in range(X.shape[1])])
    lo, hi = X.min(axis=axes).astype(np.float64), X.max(axis=axes).astype(np.float64)
    ref = np.maximum(np.abs(lo), np.abs(hi))
    for j in np.flatnonzero((ref > 0) & ((ref < 1e-100) | (ref > 1e100))):
        v = np.moveaxis(X, 1, 0)[j].astype(np.float64) / ref[j]  # in [-1, 1]: no under- or overflow
        mean[j], std[j] = v.mean() * ref[j], v.std() * ref[j]
    return mean, std, lo, hi


def constant_scale(lo, hi):
    """The scale of a feature the scaler calls constant: 1 (a deviation at test time shows in the
    input's own units), or the training range where that is wider than 1 (rounding noise of a feature at
    1e18 spans ±1e5: its training values would otherwise reach the networks in those units)."""
    with np.errstate(over="ignore"):  # evaluated for every feature by np.where: ±1e308 spans inf, unused
        return np.maximum(1.0, np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64))


class Scaler:
    """Per-feature (vectors) or per-channel (series, images) scaling.

    ``standard``: (x - mean) / std; ``minmax``: to [-1, 1] using the training range;
    ``none``: identity. Statistics come from the training data only and are reused, never
    refitted, on the data being scored. Constant features get a scale of 1, or their training range where
    that is wider than 1 (:func:`constant_scale`).

    ``per-feature`` (what ``scaler='auto'`` gives vectors and series) chooses, for each feature
    or channel, on the training data:

    - ``constant`` (range ≤ ``tol · max(|min|, |max|)``, ``tol`` = 1e-6 for float32 values, 1e-12
      for other float64 values: :func:`is_constant`): centred on its training value, scale 1
      (a deviation at test time shows in the input's own units and is never divided by a
      near-zero std), or its training range where that is wider than 1 (the rounding noise of
      a feature of magnitude 1e18: :func:`constant_scale`);
    - ``discrete`` (at most ``max_levels`` distinct values: binary, one-hot, flags, small
      counts): mapped by the training min/max to [-1, 1], so a rare level is ±1 and not
      ``1/std`` (a flag on in 1 training row of 1,000 would otherwise be z ≈ 31);
    - ``continuous``: standardised, (x - mean) / std.

    and clips transformed values to the training range widened by ``clip`` times its width on
    each side (a width of at least 1 for constant features), so no input can reach an
    unbounded value however far it lies outside the training data. ``clip=None`` disables
    clipping; it is off by default for the other kinds (as in model files written before the
    per-feature kind existed).

    Statistics are computed, stored (``shift``, ``scale`` as float64) and applied in float64;
    only the transformed values are float32, so that a feature with a large offset and small
    variations (UNIX timestamps, counters) keeps its information.
    """

    def __init__(self, kind: str = "standard", *, clip: float | None = "default", max_levels: int = 10):
        if kind not in SCALERS[1:]:
            raise ValueError(f"scaler: unknown scaler {kind!r}. Fix: use one of {', '.join(SCALERS)}")
        if clip == "default":
            clip = 1.0 if kind == "per-feature" else None
        if clip is not None and not (isinstance(clip, numbers.Real) and not isinstance(clip, bool) and np.isfinite(clip) and clip >= 0):
            raise ValueError(f"scaler: clip is {clip!r}. Fix: pass a non-negative number of training ranges, or None")
        if not is_int(max_levels) or max_levels < 2:
            raise ValueError(f"scaler: max_levels is {max_levels!r}. Fix: pass an integer of at least 2")
        self.kind = kind
        self.clip = None if clip is None else float(clip)
        self.max_levels = int(max_levels)
        self.shift: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.mode: list[str] | None = None  # per feature, 'per-feature' kind only
        self.lo: np.ndarray | None = None  # clip bounds in transformed units (None: no clipping)
        self.hi: np.ndarray | None = None

    @staticmethod
    def _axes(X: np.ndarray) -> tuple[int, ...]:
        return (0,) if X.ndim == 2 else (0,) + tuple(range(2, X.ndim))

    def _n_levels_le(self, v: np.ndarray, k: int) -> bool:
        """Whether the flat array ``v`` takes at most ``k`` distinct values (cheaply for large v)."""
        head = np.unique(v[:100_000])
        if len(head) > k:
            return False
        if len(v) <= 100_000:
            return True
        # all values must be among the levels seen in the head, or the levels, all counted, few
        rest = v[100_000:][~np.isin(v[100_000:], head)]
        return len(rest) == 0 or len(np.unique(np.concatenate([head, rest]))) <= k

    def fit(self, X: np.ndarray) -> "Scaler":
        axes = self._axes(X)
        if self.kind == "standard":
            shift, scale, lo_, hi_ = _moments(X, axes)
        elif self.kind == "minmax":
            lo_, hi_ = X.min(axis=axes).astype(np.float64), X.max(axis=axes).astype(np.float64)
            shift, scale = hi_ / 2 + lo_ / 2, hi_ / 2 - lo_ / 2  # halves first: ±1e308 does not overflow
        elif self.kind == "per-feature":
            shift, scale, lo_, hi_ = self._fit_per_feature(X, axes)
        else:
            shift = np.zeros(X.shape[1]); scale = np.ones(X.shape[1])
            lo_, hi_ = X.min(axis=axes).astype(np.float64), X.max(axis=axes).astype(np.float64)
        # the constant scale where the training range is float64 rounding noise (as is_constant's bound); every
        # other feature keeps its scale however small beside its mean (1e9 ± 1e-3: std 6e-4 < 1e-12 · 1e9)
        with np.errstate(over="ignore"):
            flat = hi_ - lo_ <= 1e-12 * np.maximum(np.abs(hi_), np.abs(lo_))
        if self.kind != "none":
            scale = np.where(flat | ~(scale > 0), constant_scale(lo_, hi_), scale)
        # float64, and stored so: a shift of 1.7e9 (UNIX timestamps) rounded to float32 is off by up to 64
        self.shift, self.scale = np.asarray(shift, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        if self.clip is not None:
            # the training extremes transformed exactly as transform() does, so clip=0 keeps them
            tmin = self.transform_unclipped(X.min(axis=axes, keepdims=True))[0].reshape(-1)
            tmax = self.transform_unclipped(X.max(axis=axes, keepdims=True))[0].reshape(-1)
            width = np.maximum(tmax - tmin, np.float32(1.0))
            self.lo = (tmin - np.float32(self.clip) * width).astype(np.float32)
            self.hi = (tmax + np.float32(self.clip) * width).astype(np.float32)
        return self

    def _fit_per_feature(self, X: np.ndarray, axes):
        mean, std, lo, hi = _moments(X, axes)
        shift, scale, mode = mean.copy(), std.copy(), []
        for j in range(X.shape[1]):
            v = X[:, j].reshape(-1)  # one feature's values (a copy of one channel, not of the whole array)
            if is_constant(v, lo[j], hi[j], mean[j]):
                mode.append("constant"); shift[j], scale[j] = mean[j], constant_scale(lo[j], hi[j])
            elif self._n_levels_le(v, self.max_levels):
                mode.append("discrete"); shift[j], scale[j] = hi[j] / 2 + lo[j] / 2, hi[j] / 2 - lo[j] / 2
            else:
                mode.append("continuous")
        self.mode = mode
        return shift, scale, lo, hi

    def _bc(self, v: np.ndarray, ndim: int) -> np.ndarray:
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def transform_unclipped(self, X: np.ndarray) -> np.ndarray:
        """(X - shift) / scale, computed in float64 and returned as float32 (what the networks take);
        in blocks of rows, so the float64 intermediate is a block's (about 4M numbers), not the whole
        input's (twice the float32 result)."""
        X = np.asarray(X)
        shift, scale = self._bc(self.shift, X.ndim), self._bc(self.scale, X.ndim)
        out = np.empty(X.shape, dtype=np.float32)
        rows = max(1, TRANSFORM_BLOCK // max(1, int(np.prod(X.shape[1:]))))
        for i in range(0, X.shape[0], rows):
            Z = np.subtract(X[i:i + rows], shift, dtype=np.float64)
            Z /= scale
            with np.errstate(over="ignore"):  # beyond float32 becomes inf: a non-finite score, reported as such
                out[i:i + rows] = Z
        return out

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = self.transform_unclipped(X)
        if self.lo is not None:
            Z = np.clip(Z, self._bc(self.lo, X.ndim), self._bc(self.hi, X.ndim), out=Z)
        return Z

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Scaled values back in the input's units, as float64 (float32 would round a 1.7e9 offset by up to 64)."""
        return np.asarray(X, dtype=np.float64) * self._bc(self.scale, X.ndim) + self._bc(self.shift, X.ndim)

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}
        if self.mode is not None:
            d["mode"] = list(self.mode)
        if self.lo is not None:
            d.update(clip=self.clip, lo=self.lo.tolist(), hi=self.hi.tolist())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        """Scaler from :meth:`to_dict`; dicts written before clipping / per-feature modes load unclipped."""
        s = cls(d["kind"], clip=d.get("clip"))
        s.shift = np.asarray(d["shift"], dtype=np.float64)
        s.scale = np.asarray(d["scale"], dtype=np.float64)
        s.mode = list(d["mode"]) if "mode" in d else None
        if "lo" in d and "hi" in d:
            s.lo = np.asarray(d["lo"], dtype=np.float32)
            s.hi = np.asarray(d["hi"], dtype=np.float32)
        return s


def resolve_scaler(spec, image: bool) -> Scaler:
    """Unfitted :class:`Scaler` for a detector's ``scaler`` parameter.

    ``spec`` is a kind name or a dict ``{"kind": ..., "clip": ..., "max_levels": ...}``;
    ``'auto'`` means ``minmax`` for images and ``per-feature`` for vectors and series.
    Raises ValueError naming the problem and the fix.
    """
    opts = {}
    if isinstance(spec, dict):
        unknown = set(spec) - {"kind", "clip", "max_levels"}
        if unknown:
            raise ValueError(f"scaler: unknown key(s) {sorted(unknown)}. Fix: use a dict with keys 'kind', 'clip', 'max_levels'")
        opts = {k: v for k, v in spec.items() if k != "kind"}
        spec = spec.get("kind", "auto")
    if spec not in SCALERS:
        raise ValueError(f"scaler: is {spec!r}. Fix: use one of {', '.join(repr(s) for s in SCALERS)} (or a dict with 'kind')")
    kind = ("minmax" if image else "per-feature") if spec == "auto" else spec
    return Scaler(kind, **opts)
