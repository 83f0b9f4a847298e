"""MIT-BIH Arrhythmia Database: heartbeats cut around the reference R-peak annotations.

The records are read through :mod:`wfdb` from a local directory holding the PhysioNet
files ``NNN.hea`` / ``NNN.dat`` / ``NNN.atr`` (and usually ``RECORDS`` and
``SHA256SUMS.txt``). Conventions follow the AAMI EC57 standard and de Chazal et al.
(2004), "Automatic classification of heartbeats using ECG morphology and heartbeat
interval features", IEEE Trans Biomed Eng 51(7):1196-1206:

* beat classes: N = {N, L, R, e, j}, S = {A, a, J, S}, V = {V, E}, F = {F}, Q = {/, f, Q};
  every other annotation symbol (rhythm changes ``+``, noise ``~``, artefacts ``|``,
  comments ``"``, flutter waves ``!``, non-conducted P waves ``x``, ...) is not a beat
  and is skipped;
* the paced records 102, 104, 107 and 217 are left out by default;
* the inter-patient split DS1 (training) / DS2 (testing), see :data:`DS1` and :data:`DS2`.

Where the data comes from when ``path`` is None: the directory in the environment
variable ``GANAD_MITBIH_DIR``, then the user cache ``~/.cache/ganad/mitdb`` (or
``$XDG_CACHE_HOME/ganad/mitdb``), then a download from PhysioNet into that cache, checked
file by file against PhysioNet's ``SHA256SUMS.txt``. Nothing is ever written next to a
directory the user passes in.

Example::

    from ganad.data.mitbih import load_split
    train = load_split("DS1", "/data/mitdb", rr_features=True)
    normal = train.subset(train.aami == "N")      # one-class training set
    test = load_split("DS2", "/data/mitdb", rr_features=True)
    test.X.shape, test.y.mean()                   # (n, 1, 256), fraction of anomalies
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ganad.exceptions import DataFileError, InputError, _fmt
from ganad.files import replace_dir, temp_dir_beside

#: AAMI EC57 beat classes, in their usual order
AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

#: annotation symbol -> AAMI class; symbols not listed here are not beats
AAMI_MAP: dict[str, str] = {
    **dict.fromkeys(("N", "L", "R", "e", "j"), "N"),
    **dict.fromkeys(("A", "a", "J", "S"), "S"),
    **dict.fromkeys(("V", "E"), "V"),
    "F": "F",
    **dict.fromkeys(("/", "f", "Q"), "Q"),
}

#: records with a pacemaker, excluded by AAMI EC57 and de Chazal et al. (2004)
PACED_RECORDS: tuple[str, ...] = ("102", "104", "107", "217")

#: de Chazal et al. (2004) inter-patient split, first half (training / validation)
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
#: de Chazal et al. (2004) inter-patient split, second half (testing)
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)

#: all 48 records of the database
ALL_RECORDS: tuple[str, ...] = tuple(sorted(DS1 + DS2 + PACED_RECORDS))

#: environment variable naming a local copy of the database
ENV_VAR = "GANAD_MITBIH_DIR"

_PHYSIONET_DB = "mitdb"
#: bytes per sample of the WFDB signal formats whose file size is checked before reading
_BYTES_PER_SAMPLE = {"212": 1.5, "16": 2.0, "80": 1.0}
_SUMS_FILE = "SHA256SUMS.txt"


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
    rr : float32 array (n, 3) or None
        With ``rr_features=True``: previous RR, next RR and local average RR, in seconds.
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


def _import_wfdb():
    """wfdb, imported without the pandas deprecation warnings its import emits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import wfdb
    return wfdb


# --------------------------------------------------------------------------- locating the data


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganad" / "mitdb"


def _has_records(directory: Path) -> bool:
    return directory.is_dir() and ((directory / "RECORDS").is_file() or any(directory.glob("*.hea")))


def resolve_mitbih_dir(path: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The directory holding the MIT-BIH files.

    ``path`` when given (it must exist). Otherwise ``$GANAD_MITBIH_DIR``, then the user
    cache ``~/.cache/ganad/mitdb``; when neither holds the data and ``download`` is True,
    the database is fetched from PhysioNet into the cache (see :func:`download_mitbih`).

    Raises :class:`DataFileError` when no copy can be found or fetched.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise DataFileError(_fmt("path", f"MIT-BIH directory {str(p)!r} does not exist or is not a directory",
                                     "pass the folder holding the NNN.hea / NNN.dat / NNN.atr files"))
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not _has_records(p):
            raise DataFileError(_fmt(ENV_VAR, f"points to {str(p)!r}, which holds no MIT-BIH records (no RECORDS or *.hea files)",
                                     f"set {ENV_VAR} to the folder holding the NNN.hea / NNN.dat / NNN.atr files, or unset it"))
        return p
    cache = _cache_root()
    if _has_records(cache):
        return cache
    if not download:
        raise DataFileError(_fmt("path", f"no local copy of MIT-BIH was found (path=None, {ENV_VAR} unset, nothing in {str(cache)!r}) and download=False",
                                 f"pass path= to a folder holding the PhysioNet mitdb files, set {ENV_VAR}, or allow download=True"))
    return download_mitbih(cache)


def download_mitbih(directory: str | os.PathLike | None = None) -> Path:
    """Download MIT-BIH from PhysioNet with ``wfdb.dl_database`` and check every file.

    The files go to a temporary folder beside ``directory`` (default: the user cache
    ``~/.cache/ganad/mitdb``) together with PhysioNet's ``SHA256SUMS.txt``; every
    downloaded file must be listed there with a matching SHA-256. Only then is the
    folder moved into place, so an interrupted download never looks like a complete copy.

    Raises :class:`DataFileError` when offline, when the download fails or when a file
    does not match its checksum.
    """
    target = Path(directory).expanduser() if directory is not None else _cache_root()
    if _has_records(target):
        return target
    if target.exists() and any(target.iterdir()):
        raise DataFileError(_fmt("directory", f"{str(target)!r} exists, is not empty and holds no MIT-BIH records",
                                 "remove it or pass another directory to download into"))
    wfdb = _import_wfdb()

    tmp = temp_dir_beside(target, "partial")  # removes those of killed downloads
    try:
        try:
            wfdb.dl_database(_PHYSIONET_DB, str(tmp))
            wfdb.dl_files(_PHYSIONET_DB, str(tmp), [_SUMS_FILE, "RECORDS"])
        except Exception as exc:  # network errors come from requests / urllib / wfdb
            raise DataFileError(_fmt("MIT-BIH download", f"could not fetch the database from PhysioNet ({type(exc).__name__}: {exc})",
                                     f"check the internet connection, or download https://physionet.org/content/mitdb/ yourself and "
                                     f"pass path= to it or set {ENV_VAR}")) from exc
        files = sorted(str(f.relative_to(tmp)) for f in tmp.rglob("*") if f.is_file() and f.name != _SUMS_FILE)
        verify_checksums(tmp, files, require_listed=True)
        if target.exists():
            target.rmdir()  # empty, checked above
        replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _read_sums(sums_path: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    try:
        lines = sums_path.read_text().splitlines()
    except OSError as exc:
        raise DataFileError(_fmt(str(sums_path), f"cannot be read ({exc})", "restore the file from PhysioNet")) from exc
    for line in lines:
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def verify_checksums(
    directory: str | os.PathLike,
    files: Iterable[str] | None = None,
    *,
    sums_file: str = _SUMS_FILE,
    require_listed: bool = False,
) -> list[str]:
    """Check files in ``directory`` against the SHA-256 list ``sums_file`` found there.

    ``files``: names relative to ``directory`` (default: every listed file that exists).
    A file missing from the list is an error only with ``require_listed=True``.
    Returns the names that were checked. Raises :class:`DataFileError` naming the first
    file that is missing or whose digest differs.
    """
    directory = Path(directory)
    sums_path = directory / sums_file
    if not sums_path.is_file():
        raise DataFileError(_fmt(str(sums_path), "does not exist, so the files cannot be verified",
                                 "download SHA256SUMS.txt from the PhysioNet page of the database into that folder, or pass verify=False"))
    sums = _read_sums(sums_path)
    names = [n for n in sums if (directory / n).is_file()] if files is None else list(files)
    checked = []
    for name in names:
        expected = sums.get(name)
        if expected is None:
            if require_listed:
                raise DataFileError(_fmt(str(directory / name), f"is not listed in {sums_file}",
                                         "delete the folder and download the database again"))
            continue
        fpath = directory / name
        if not fpath.is_file():
            raise DataFileError(_fmt(str(fpath), "is missing", "download the database again"))
        with open(fpath, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        if digest != expected:
            raise DataFileError(_fmt(str(fpath), f"has SHA-256 {digest[:16]}..., but {sums_file} lists {expected[:16]}... "
                                     "(the file is corrupt, truncated or modified)",
                                     "replace it with PhysioNet's original (download the database again)"))
        checked.append(name)
    return checked


# --------------------------------------------------------------------------- reading records


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
        if have < want:
            raise DataFileError(_fmt(f"record {record}", f"{dat} is truncated: {have} bytes, the header announces "
                                     f"{header.sig_len} samples x {header.n_sig} signals ({want} bytes)",
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


def _rr_features(beat_sample: np.ndarray, fs: float, context: int) -> np.ndarray:
    """Previous RR, next RR and local mean RR (over ``context`` surrounding intervals), seconds.

    Interval ``k`` lies between beats ``k`` and ``k+1``; beat ``i`` has previous interval
    ``i-1`` and next interval ``i``. The local mean averages intervals
    ``i - ceil(context/2)`` .. ``i + floor(context/2) - 1`` that exist (10 -> five on each
    side); where that range holds no interval (``context=1``, first beat) it is the
    previous RR. The first beat's previous RR is its next RR and the last beat's next RR
    is its previous RR; a record with a single beat gets NaN.
    """
    m = beat_sample.shape[0]
    out = np.full((m, 3), np.nan, dtype=np.float64)
    if m < 2:
        return out
    rr = np.diff(beat_sample).astype(np.float64) / fs  # m - 1 intervals
    prev = np.empty(m)
    nxt = np.empty(m)
    prev[1:] = rr
    prev[0] = rr[0]
    nxt[:-1] = rr
    nxt[-1] = rr[-1]
    i = np.arange(m)
    lo = np.clip(i - (context + 1) // 2, 0, m - 1)
    hi = np.clip(i + context // 2, 0, m - 1)  # exclusive end in interval indices
    csum = np.concatenate(([0.0], np.cumsum(rr)))
    local = np.where(hi > lo, (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1), prev)
    out[:, 0], out[:, 1], out[:, 2] = prev, nxt, local
    return out


def rhythm_features(rr: np.ndarray) -> np.ndarray:
    """Patient-independent rhythm features from the RR triplets of :func:`load_mitbih`
    (``rr_features=True``): log(prev / local), log(next / local), log(prev / next).

    Ratios to the beat's own local mean RR remove each patient's heart rate, so a detector
    trained on one set of patients transfers to others; a premature beat has a short
    previous and a long next interval. Returns float32 (n, 3); rows with a missing RR are NaN.
    """
    rr = np.asarray(rr, dtype=np.float64)
    if rr.ndim != 2 or rr.shape[1] != 3:
        raise InputError(_fmt("rr", f"has shape {rr.shape}", "pass the (n, 3) RR array of load_mitbih(..., rr_features=True)"))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.c_[np.log(rr[:, 0] / rr[:, 2]), np.log(rr[:, 1] / rr[:, 2]), np.log(rr[:, 0] / rr[:, 1])]
    f[~np.isfinite(f).all(1)] = np.nan
    return f.astype(np.float32)


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
    rr_features : also return ``Beats.rr`` (n, 3): previous RR, next RR and the local
        average RR over the ``rr_context`` surrounding intervals, in seconds. Intervals
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
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise InputError(_fmt("window", f"is {window!r}", "pass a positive number of samples, e.g. 256"))
    if not isinstance(before, (int, np.integer)) or not 0 <= before < window:
        raise InputError(_fmt("before", f"is {before!r} for window={window}", "pass 0 <= before < window, e.g. before=96 with window=256"))
    if not isinstance(rr_context, (int, np.integer)) or rr_context < 1:
        raise InputError(_fmt("rr_context", f"is {rr_context!r}", "pass a positive number of RR intervals, e.g. 10"))
    window, before = int(window), int(before)
    directory = resolve_mitbih_dir(path, download=download)

    if records is None:
        names = _available_records(directory)
        if exclude_paced:
            names = [r for r in names if r not in PACED_RECORDS]
    else:
        names = _normalise_records(records)
        paced = [r for r in names if r in PACED_RECORDS]
        if paced and exclude_paced:
            raise InputError(_fmt("records", f"names the paced record(s) {paced}, which exclude_paced=True leaves out",
                                  "drop them from records, or pass exclude_paced=False to load them"))
        dup = sorted({r for r in names if names.count(r) > 1})
        if dup:
            raise InputError(_fmt("records", f"names record(s) {dup} more than once", "list each record once"))

    if verify:
        if (directory / _SUMS_FILE).is_file():
            # missing files are reported per record when the records are read
            verify_checksums(directory, [f.name for r in names for f in _record_files(directory, r) if f.is_file()])
        else:
            warnings.warn(f"verify=True but {directory / _SUMS_FILE} does not exist; the files were not checked", UserWarning, stacklevel=2)

    offsets = np.arange(window, dtype=np.int64) - before
    parts_X, parts_aami, parts_sym, parts_rec, parts_samp, parts_rr = [], [], [], [], [], []
    leads: dict[str, str] = {}
    dropped: Counter = Counter()
    fs_seen: dict[float, str] = {}
    for name in names:
        rec = _read_record(directory, name, lead, lead_fallback, cache)
        fs_seen.setdefault(rec.fs, name)
        leads[name] = rec.lead
        is_beat = np.isin(rec.ann_symbol, list(AAMI_MAP))
        bsamp = rec.ann_sample[is_beat]
        bsym = rec.ann_symbol[is_beat]
        baami = np.array([AAMI_MAP[s] for s in bsym], dtype="<U1")
        n_sig = rec.signal.shape[0]
        inside = (bsamp - before >= 0) & (bsamp - before + window <= n_sig)
        dropped.update(baami[~inside].tolist())
        idx = bsamp[inside, None] + offsets[None, :]
        x = (rec.signal[idx].astype(np.float64) - rec.baseline) / rec.gain
        parts_X.append(x.astype(np.float32)[:, None, :])
        parts_aami.append(baami[inside])
        parts_sym.append(bsym[inside])
        parts_rec.append(np.full(int(inside.sum()), name))
        parts_samp.append(bsamp[inside])
        if rr_features:
            parts_rr.append(_rr_features(bsamp, rec.fs, int(rr_context))[inside].astype(np.float32))
    if len(fs_seen) > 1:
        raise DataFileError(_fmt("records", f"have different sampling frequencies {dict((v, k) for k, v in fs_seen.items())}",
                                 "load records recorded at one frequency together (resample the others first)"))
    fs = next(iter(fs_seen), 360.0)

    def cat(parts, empty):
        return np.concatenate(parts) if parts else empty

    return Beats(
        X=cat(parts_X, np.zeros((0, 1, window), np.float32)),
        aami=cat(parts_aami, np.zeros(0, "<U1")).astype(str),
        symbol=cat(parts_sym, np.zeros(0, "<U1")).astype(str),
        record=cat(parts_rec, np.zeros(0, "<U3")).astype(str),
        sample=cat(parts_samp, np.zeros(0, np.int64)).astype(np.int64),
        rr=cat(parts_rr, np.zeros((0, 3), np.float32)) if rr_features else None,
        fs=float(fs),
        before=before,
        leads=leads,
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
