"""Where the database lies (argument, ``$GANAD_MITBIH_DIR``, user cache) and its download from PhysioNet,
checked file by file against ``SHA256SUMS.txt`` and moved into place only when complete."""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from collections.abc import Iterable
from pathlib import Path

from ganad.data.mitbih.catalogue import _PHYSIONET_DB, _SUMS_FILE, ENV_VAR
from ganad.exceptions import DataFileError, _fmt
from ganad.files import replace_dir, temp_dir_beside


def _import_wfdb():
    """wfdb, imported without the pandas deprecation warnings its import emits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import wfdb
    return wfdb


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
