"""Cutting the annotated heartbeats of MIT-BIH records into fixed-length windows: :func:`load_mitbih`, :func:`load_split`."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ganad.data.mitbih.beats import Beats
from ganad.data.mitbih.catalogue import _SUMS_FILE, AAMI_CLASSES, AAMI_MAP, DS1, DS2, PACED_RECORDS
from ganad.data.mitbih.download import resolve_mitbih_dir, verify_checksums
from ganad.data.mitbih.reader import _Record, _read_record, _record_files
from ganad.data.mitbih.rhythm import _rr_features
from ganad.exceptions import DataFileError, InputError, _fmt
from ganad.params import is_int


def _normalise_records(records) -> list[str]:
    if isinstance(records, (str, int, np.integer)):
        records = [records]
    out = []
    for r in records:
        if isinstance(r, (int, np.integer)):
            out.append(f"{int(r):03d}")
        elif isinstance(r, str) and r.strip():
            out.append(r.strip())
        else:
            raise InputError(_fmt("records", f"holds {r!r}, which is not a record name", "pass names such as '100' or numbers such as 100"))
    return out


def _available_records(directory: Path) -> list[str]:
    listing = directory / "RECORDS"
    if listing.is_file():
        names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    else:
        names = sorted(p.stem for p in directory.glob("*.hea"))
    if not names:
        raise DataFileError(_fmt(str(directory), "holds no MIT-BIH records (no RECORDS file and no *.hea files)",
                                 "pass the folder holding the PhysioNet mitdb files NNN.hea / NNN.dat / NNN.atr"))
    return names


def load_mitbih(
    path: str | os.PathLike | None = None,
    records: Iterable[str | int] | str | int | None = None,
    *,
    window: int = 256,
    before: int = 96,
    lead: str = "MLII",
    lead_fallback: str | None = None,
    rr_features: bool = False,
    rr_context: int = 10,
    exclude_paced: bool = True,
    verify: bool = False,
    download: bool = True,
    cache: bool = True,
) -> Beats:
    """Cut every annotated heartbeat of MIT-BIH records into a fixed-length window.

    Parameters
    ----------
    path : folder with the PhysioNet ``mitdb`` files, or None to look in
        ``$GANAD_MITBIH_DIR`` and the user cache ``~/.cache/ganad/mitdb`` and, failing
        both, download (see :func:`resolve_mitbih_dir`).
    records : record names (``"100"`` or ``100``); None = every record in the folder's
        ``RECORDS`` file (all 48 for PhysioNet's copy) less the paced ones.
    window : samples per beat (256 = 0.71 s at 360 Hz).
    before : samples before the R peak; the peak lands at index ``before``.
    lead : ``sig_name`` of the lead to read (MLII is channel 0 in all records except
        114, where it is channel 1, and the paced 102 and 104, which lack it).
    lead_fallback : lead read from records without ``lead`` (e.g. ``"V5"``); None
        raises :class:`DataFileError` for such records.
    rr_features : also return ``Beats.rr`` (n, 4): previous RR, next RR, the local
        average RR over the ``rr_context`` surrounding intervals and the local RR spread
        (median |difference| of successive intervals in that range that do not involve the
        beat's own two; 0 where none), in seconds. Intervals
        are measured between the beats of the record (all AAMI beats, including those
        dropped at the record edges). The first beat of a record uses its next RR as
        previous RR, the last its previous RR as next RR.
    exclude_paced : leave out records 102, 104, 107, 217. With explicit ``records``
        that name a paced record, set it to False to load them.
    verify : check each record's files against ``SHA256SUMS.txt`` in the folder; a
        mismatch raises :class:`DataFileError`, a missing list only warns.
    download : allow downloading from PhysioNet when ``path`` is None and no local copy
        exists.
    cache : keep the records read in memory (about 1.3 MB each) so later calls are fast;
        :func:`clear_mitbih_cache` frees them.

    Beats whose window would run past the first or last sample of the record are
    dropped (about 20 of 50,000 per DS1/DS2 half); their number per class is in
    ``Beats.dropped``. Annotation symbols that are not beats (see :data:`AAMI_MAP`)
    are skipped.

    Returns
    -------
    Beats
        ``X`` float32 (n, 1, window) in mV, ``aami``, ``symbol``, ``record``,
        ``sample``, optional ``rr`` and ``y`` (1 = any class other than N).
    """
    window, before = _check_window(window, before, rr_context)
    directory = resolve_mitbih_dir(path, download=download)
    names = _choose_records(directory, records, exclude_paced)
    if verify:
        _verify(directory, names)
    cuts = {name: _cut_beats(_read_record(directory, name, lead, lead_fallback, cache), window, before,
                             int(rr_context) if rr_features else None) for name in names}
    return _assemble(cuts, window, before, rr_features)


def _check_window(window, before, rr_context) -> tuple[int, int]:
    if not is_int(window) or window < 1:
        raise InputError(_fmt("window", f"is {window!r}", "pass a positive number of samples, e.g. 256"))
    if not is_int(before) or not 0 <= before < window:
        raise InputError(_fmt("before", f"is {before!r} for window={window}", "pass 0 <= before < window, e.g. before=96 with window=256"))
    if not is_int(rr_context) or rr_context < 1:
        raise InputError(_fmt("rr_context", f"is {rr_context!r}", "pass a positive number of RR intervals, e.g. 10"))
    return int(window), int(before)


def _choose_records(directory: Path, records, exclude_paced: bool) -> list[str]:
    """The record names to read: ``records`` checked, or every record of the folder (less the paced ones)."""
    if records is None:
        names = _available_records(directory)
        return [r for r in names if r not in PACED_RECORDS] if exclude_paced else names
    names = _normalise_records(records)
    if not names:
        raise InputError(_fmt("records", "is empty", "name at least one record, e.g. records=['100'], or pass None for every record"))
    paced = [r for r in names if r in PACED_RECORDS]
    if paced and exclude_paced:
        raise InputError(_fmt("records", f"names the paced record(s) {paced}, which exclude_paced=True leaves out",
                              "drop them from records, or pass exclude_paced=False to load them"))
    dup = sorted({r for r in names if names.count(r) > 1})
    if dup:
        raise InputError(_fmt("records", f"names record(s) {dup} more than once", "list each record once"))
    return names


def _verify(directory: Path, names: list[str]) -> None:
    if (directory / _SUMS_FILE).is_file():
        # missing files are reported per record when the records are read
        verify_checksums(directory, [f.name for r in names for f in _record_files(directory, r) if f.is_file()])
    else:
        warnings.warn(f"verify=True but {directory / _SUMS_FILE} does not exist; the files were not checked", UserWarning, stacklevel=3)


def _cut_beats(rec: _Record, window: int, before: int, rr_context: int | None) -> dict:
    """One record's beats: windows in mV, classes, symbols, positions (and RR features with
    ``rr_context``); beats whose window leaves the record are counted in ``dropped``."""
    is_beat = np.isin(rec.ann_symbol, list(AAMI_MAP))
    bsamp = rec.ann_sample[is_beat]
    bsym = rec.ann_symbol[is_beat]
    baami = np.array([AAMI_MAP[s] for s in bsym], dtype="<U1")
    inside = (bsamp - before >= 0) & (bsamp - before + window <= rec.signal.shape[0])
    idx = bsamp[inside, None] + (np.arange(window, dtype=np.int64) - before)[None, :]
    x = (rec.signal[idx].astype(np.float64) - rec.baseline) / rec.gain
    return {"X": x.astype(np.float32)[:, None, :], "aami": baami[inside], "symbol": bsym[inside], "sample": bsamp[inside],
            "rr": None if rr_context is None else _rr_features(bsamp, rec.fs, rr_context)[inside].astype(np.float32),
            "dropped": Counter(baami[~inside].tolist()), "fs": rec.fs, "lead": rec.lead}


def _assemble(cuts: dict[str, dict], window: int, before: int, rr_features: bool) -> Beats:
    """The records' beats in one :class:`Beats` (every record at one sampling frequency)."""
    fs_seen: dict[float, str] = {}
    dropped: Counter = Counter()
    for name, c in cuts.items():
        fs_seen.setdefault(c["fs"], name)
        dropped.update(c["dropped"])
    if len(fs_seen) > 1:
        raise DataFileError(_fmt("records", f"have different sampling frequencies {dict((v, k) for k, v in fs_seen.items())}",
                                 "load records recorded at one frequency together (resample the others first)"))

    def cat(key, empty):
        parts = [c[key] for c in cuts.values()]
        return np.concatenate(parts) if parts else empty

    return Beats(
        X=cat("X", np.zeros((0, 1, window), np.float32)),
        aami=cat("aami", np.zeros(0, "<U1")).astype(str),
        symbol=cat("symbol", np.zeros(0, "<U1")).astype(str),
        record=np.concatenate([np.full(len(c["sample"]), name) for name, c in cuts.items()]).astype(str) if cuts
        else np.zeros(0, "<U3").astype(str),
        sample=cat("sample", np.zeros(0, np.int64)).astype(np.int64),
        rr=cat("rr", np.zeros((0, 4), np.float32)) if rr_features else None,
        fs=float(next(iter(fs_seen), 360.0)),
        before=before,
        leads={name: c["lead"] for name, c in cuts.items()},
        dropped={k: int(dropped.get(k, 0)) for k in AAMI_CLASSES},
    )


def load_split(split: str, path: str | os.PathLike | None = None, **kwargs) -> Beats:
    """Beats of one half of the de Chazal et al. (2004) inter-patient split.

    ``split`` is ``"DS1"`` (training / validation) or ``"DS2"`` (testing); the other
    keyword arguments go to :func:`load_mitbih`. In the one-class setting, train on the
    N beats of DS1 (``beats.subset(beats.aami == "N")``) and test on all of DS2.
    """
    if "records" in kwargs:
        raise InputError(_fmt("records", "cannot be combined with load_split, which chooses the records", "call load_mitbih(records=...) instead"))
    key = str(split).strip().upper()
    if key not in ("DS1", "DS2"):
        raise InputError(_fmt("split", f"is {split!r}", "pass 'DS1' (training half) or 'DS2' (test half)"))
    return load_mitbih(path, DS1 if key == "DS1" else DS2, **kwargs)
