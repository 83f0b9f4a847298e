"""The heartbeats a loader returns (:class:`Beats`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from ganad.data.mitbih.catalogue import AAMI_CLASSES
from ganad.exceptions import InputError, _fmt


@dataclass(frozen=True)
class Beats:
    """Heartbeats cut from MIT-BIH records, one row per beat, all arrays aligned.

    Attributes
    ----------
    X : float32 array (n, 1, window)
        The chosen lead in millivolts, ``before`` samples before the R peak and
        ``window - before`` samples from it on (the peak is at index ``before``).
    aami : str array (n,)
        AAMI class of each beat, one of ``"N", "S", "V", "F", "Q"``.
    symbol : str array (n,)
        The original MIT-BIH annotation symbol (``"N"``, ``"L"``, ``"V"``, ``"/"``, ...).
    record : str array (n,)
        Record name of each beat (``"100"``, ...): keep patients apart when splitting.
    sample : int64 array (n,)
        Position of the R-peak annotation in its record, in samples.
    rr : float32 array (n, 4) or None
        With ``rr_features=True``: previous RR, next RR, local average RR and local RR spread
        (the median absolute difference of successive intervals around the beat, its own two
        left out), in seconds.
    fs : float
        Sampling frequency in Hz (360 for MIT-BIH).
    before : int
        Samples kept before the R peak.
    leads : dict
        Record name -> the lead (``sig_name``) that was read for it.
    dropped : dict
        AAMI class -> number of beats left out because their window ran past the
        start or end of their record.
    """

    X: np.ndarray
    aami: np.ndarray
    symbol: np.ndarray
    record: np.ndarray
    sample: np.ndarray
    rr: np.ndarray | None = None
    fs: float = 360.0
    before: int = 96
    leads: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        """int64 labels: 1 for every beat whose AAMI class is not N, else 0."""
        return (self.aami != "N").astype(np.int64)

    @property
    def window(self) -> int:
        """Samples per beat."""
        return int(self.X.shape[-1])

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        recs = sorted(set(self.record.tolist()))
        shown = ", ".join(recs[:6]) + (f", ... ({len(recs)} records)" if len(recs) > 6 else "")
        return (f"Beats(n={len(self)}, window={self.window}, before={self.before}, fs={self.fs:g}, "
                f"counts={self.counts()}, records=[{shown}], rr={'yes' if self.rr is not None else 'no'})")

    def counts(self) -> dict[str, int]:
        """Number of beats per AAMI class (every class present, zero where absent)."""
        c = Counter(self.aami.tolist())
        return {k: int(c.get(k, 0)) for k in AAMI_CLASSES}

    def subset(self, index) -> "Beats":
        """The beats selected by a boolean mask or an integer index array.

        ``leads`` and ``dropped`` are carried over unchanged: they describe the loading.
        """
        index = np.asarray(index)
        if index.dtype == bool and index.shape != (len(self),):
            raise InputError(_fmt("index", f"is a boolean mask of shape {index.shape} for {len(self)} beats",
                                  "pass a mask with one entry per beat, e.g. beats.aami == 'N'"))
        return replace(
            self,
            X=self.X[index],
            aami=self.aami[index],
            symbol=self.symbol[index],
            record=self.record[index],
            sample=self.sample[index],
            rr=None if self.rr is None else self.rr[index],
        )
