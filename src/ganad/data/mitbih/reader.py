"""Reading one record (signal of one lead, beat annotations) through wfdb, checked, and kept in memory."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganad.data.mitbih.catalogue import _BYTES_PER_SAMPLE, AAMI_MAP
from ganad.data.mitbih.download import _import_wfdb
from ganad.exceptions import DataFileError, _fmt


@dataclass(frozen=True)
class _Record:
    signal: np.ndarray  # int16 digital samples of the chosen lead
    gain: float
    baseline: float
    fs: float
    lead: str
    ann_sample: np.ndarray  # int64, sorted
    ann_symbol: np.ndarray  # str


def _record_files(directory: Path, record: str) -> list[Path]:
    return [directory / f"{record}.{ext}" for ext in ("hea", "dat", "atr")]


def _stamp(files: Sequence[Path]) -> tuple:
    return tuple((st.st_mtime_ns, st.st_size) for st in (f.stat() for f in files))


def _read_record(directory: Path, record: str, lead: str, lead_fallback: str | None, cache: bool) -> _Record:
    files = _record_files(directory, record)
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataFileError(_fmt(f"record {record}", f"file(s) {missing} missing in {str(directory)!r}",
                                 "download the complete record (NNN.hea, NNN.dat, NNN.atr) from PhysioNet mitdb, "
                                 "or leave the record out with records=[...]"))
    args = (str(directory.resolve()), record, lead, lead_fallback, _stamp(files))
    return _read_record_cached(*args) if cache else _read_record_uncached(*args)


def _read_record_uncached(directory: str, record: str, lead: str, lead_fallback: str | None, stamp: tuple) -> _Record:
    wfdb = _import_wfdb()

    base = os.path.join(directory, record)
    try:
        header = wfdb.rdheader(base)
    except Exception as exc:
        raise DataFileError(_fmt(f"record {record}", f"header {base}.hea cannot be read ({type(exc).__name__}: {exc})",
                                 "replace the file with PhysioNet's original")) from exc
    names = list(header.sig_name or [])
    if lead in names:
        used = lead
    elif lead_fallback is not None and lead_fallback in names:
        used = lead_fallback
    else:
        tried = repr(lead) if lead_fallback is None else f"{lead!r} nor the fallback {lead_fallback!r}"
        raise DataFileError(_fmt(f"record {record}", f"has no lead {tried} (its leads: {names}) in {base}.hea",
                                 f"pass lead_fallback='{names[0] if names else 'V5'}' to read another lead for such records, "
                                 "or leave the record out with records=[...]"))
    channel = names.index(used)
    fmts = {str(f) for f in (header.fmt or [])}
    if len(fmts) == 1 and fmts <= set(_BYTES_PER_SAMPLE) and header.sig_len and len(set(header.file_name or [])) == 1:
        want = int(np.ceil(header.sig_len * header.n_sig * _BYTES_PER_SAMPLE[fmts.pop()]))
        dat = os.path.join(directory, header.file_name[0])
        have = os.path.getsize(dat) if os.path.isfile(dat) else 0
        if have > want:  # a header announcing fewer samples than the file holds: wfdb would read only those
            raise DataFileError(_fmt(f"record {record}", f"{dat} holds {have} bytes, more than the {want} its header announces "
                                     f"({header.sig_len} samples x {header.n_sig} signals)",
                                     "replace the header with PhysioNet's original (load with verify=True to check the files)"))
        if have < want:
            raise DataFileError(_fmt(f"record {record}", f"{dat} is truncated: {have} bytes, the header announces "
                                     f"{header.sig_len} samples x {header.n_sig} signals ({want} bytes)",
                                     "replace the file with PhysioNet's original (load with verify=True to check the files)"))
    # a WFDB annotation file ends with a zero word (two zero bytes); wfdb reads a file cut short at an
    # even length without a word, and the record would silently lose the beats after the cut
    with open(f"{base}.atr", "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(size - 2, 0))
        tail = fh.read(2)
    if size % 2 or tail != b"\0\0":
        raise DataFileError(_fmt(f"record {record}", f"{base}.atr is truncated or damaged: its {size} bytes do not end with the end-of-file "
                                 "marker (two zero bytes) of a WFDB annotation file",
                                 "replace the file with PhysioNet's original (load with verify=True to check the files)"))
    try:
        with warnings.catch_warnings():  # wfdb's own pandas deprecation warnings are not the user's business
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            rec = wfdb.rdrecord(base, channels=[channel], physical=False, return_res=16)
            ann = wfdb.rdann(base, "atr")
    except Exception as exc:
        raise DataFileError(_fmt(f"record {record}", f"cannot be read from {str(directory)!r} ({type(exc).__name__}: {exc})",
                                 "the files may be truncated or corrupt; replace them with PhysioNet's originals "
                                 "(load with verify=True to check them against SHA256SUMS.txt)")) from exc
    if not (np.isfinite(rec.fs) and rec.fs > 0):
        raise DataFileError(_fmt(f"record {record}", f"{base}.hea gives a sampling frequency of {rec.fs}",
                                 "replace the header with PhysioNet's original (360 Hz for MIT-BIH)"))
    signal = np.array(rec.d_signal[:, 0], dtype=np.int16)
    signal.flags.writeable = False  # shared through the in-process cache
    if rec.sig_len and signal.shape[0] != rec.sig_len:
        raise DataFileError(_fmt(f"record {record}", f"{base}.dat holds {signal.shape[0]} samples, the header says {rec.sig_len}",
                                 "replace the truncated file with PhysioNet's original"))
    sample = np.asarray(ann.sample, dtype=np.int64)
    symbol = np.asarray(ann.symbol, dtype=str)
    if not np.isin(symbol, list(AAMI_MAP)).any():
        raise DataFileError(_fmt(f"record {record}", f"{base}.atr holds no beat annotations ({len(symbol)} annotations in all)",
                                 "replace the annotation file with PhysioNet's original (load with verify=True to check the files)"))
    order = np.argsort(sample, kind="stable")
    return _Record(signal=signal, gain=float(rec.adc_gain[0]), baseline=float(rec.baseline[0]), fs=float(rec.fs),
                   lead=used, ann_sample=sample[order], ann_symbol=symbol[order])


_read_record_cached = functools.lru_cache(maxsize=64)(_read_record_uncached)


def clear_mitbih_cache() -> None:
    """Forget the records kept in memory by earlier :func:`load_mitbih` calls."""
    _read_record_cached.cache_clear()
