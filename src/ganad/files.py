"""Writing files and folders so that a crash never leaves a half-written one.

One helper for the whole package (model files, score CSVs, reports, figures, benchmark
outputs, the MIT-BIH download): the new content goes to a temporary beside the target (same
file system), is flushed and fsynced, and is renamed into place in one step. On any error the
temporary is removed and the previous file, if any, is untouched. Temporaries are named after
the writing process, so those of a process killed while writing are recognised and removed by
the next write to the same path. New files follow the process's umask; a replaced file keeps
its permissions.

Folders (a model directory) are replaced by :func:`replace_dir`: exchanged with the previous
version in one atomic step where the system allows it (Linux ``renameat2(RENAME_EXCHANGE)``),
else by two renames whose interruption :func:`recover_dir` repairs.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ganad.exceptions import GanadError, ModelFileError, _fmt

__all__ = ["atomic_file", "atomic_path", "write_bytes", "write_text", "temp_file_beside", "temp_dir_beside", "new_folders_undone", "replace_dir", "output_set", "atomic_paths",
           "recover_dir", "check_output_file", "check_writable_parent", "umask_mode", "fsync_path", "alive"]


_WINDOWS = os.name == "nt"
_LINUX = sys.platform.startswith("linux")


def _windows_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    """Windows: whether ``pid`` is a running process (OpenProcess, then its exit code STILL_ACTIVE)."""
    import ctypes
    k = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    h = k.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not h:
        return ctypes.get_last_error() == 5  # type: ignore[attr-defined]  # ERROR_ACCESS_DENIED: it exists, another user's
    try:
        code = ctypes.c_ulong()
        return bool(k.GetExitCodeProcess(h, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        k.CloseHandle(h)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (owned by anyone). On Windows ``os.kill(pid, 0)`` is no such test:
    signal 0 is CTRL_C_EVENT there (it sends Ctrl+C to a process group, and raises for any other pid,
    which read as alive, so the temporaries of killed saves were never removed)."""
    if _WINDOWS:
        return _windows_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def umask_mode() -> int:
    """Permission bits the process's umask allows. Read from /proc/self/status where the kernel says
    it (Linux 4.7+): setting the umask to read it changes it for a moment for every thread of the
    process, whose files made in that moment got the wrong mode (world-readable under a caller's 077)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o777 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    m = os.umask(0o022)  # elsewhere: set and restore at once (the only portable way to read it)
    os.umask(m)
    return 0o777 & ~m


def fsync_path(p: str | os.PathLike) -> None:
    """fsync a file or folder by path (best effort: some file systems refuse folders)."""
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale(parent: Path, prefix: str, suffix: str, remove: Callable[[Path], None]) -> None:
    """Remove ``<prefix><pid>...<suffix>`` entries in ``parent`` whose process is no longer running."""
    for f in parent.glob(f"{glob.escape(prefix)}*{suffix}"):
        pid = f.name[len(prefix):].split(".", 1)[0].split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            with contextlib.suppress(OSError):
                remove(f)


#: names longer than this (in bytes) are shortened in the names of their temporaries, which add up to
#: 30 bytes (``.<name>.new-<pid>-<random>``): a name the file system takes (NAME_MAX, 255 bytes) must
#: leave room for them, or the write failed naming the temporary (after a whole fit)
_LONG_NAME = 200


def temp_name(name: str) -> str:
    """``name`` as the temporaries (and the ``.old`` folder) beside it spell it: as it is up to 200 bytes;
    a longer one becomes its first 60 bytes' characters, '~' and 16 hex digits of its SHA-256, so that a
    temporary's name stays within NAME_MAX. The same name gives the same spelling (stale temporaries of
    killed writers are found by it)."""
    raw = os.fsencode(name)
    if len(raw) <= _LONG_NAME:
        return name
    import hashlib
    keep = ""
    for ch in name:
        if len(os.fsencode(keep + ch)) > 60:
            break
        keep += ch
    return f"{keep}~{hashlib.sha256(raw).hexdigest()[:16]}"


def temp_file_beside(path: str | os.PathLike) -> tuple[int, str]:
    """``(fd, name)`` of a new temporary file beside ``path``, named after this process
    (``.<name>.<pid>.<random>.tmp``, a long name shortened by :func:`temp_name`); the temporaries of
    processes no longer running (killed while writing) are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{temp_name(path.name)}."
    _remove_stale(path.parent, prefix, ".tmp", Path.unlink)
    return tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=path.parent)


def temp_dir_beside(path: str | os.PathLike, tag: str = "new") -> Path:
    """A new temporary folder beside ``path`` (``.<name>.<tag>-<pid>-*``, a long name shortened by
    :func:`temp_name`); those left by killed processes are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{temp_name(path.name)}.{tag}-"
    _remove_stale(path.parent, prefix, "", lambda p: shutil.rmtree(p, ignore_errors=True))
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=path.parent))


def _final_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777  # keep the permissions of the file replaced
    except FileNotFoundError:
        return 0o666 & umask_mode()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file name beside ``path`` for a writer that takes a path (``df.to_csv``,
    ``fig.savefig``); when the block ends without error it is fsynced and renamed to ``path``.

    A ``path`` that is a device, a pipe or a socket (``-o /dev/stdout``, a named pipe) is written
    directly: it cannot be replaced whole, and renaming a file over it replaced the device node
    itself. A symbolic link to a file stands for its target (the target is replaced, the link kept)."""
    with atomic_paths() as ps:  # one file: the set of one (the same temporary, checks and rename)
        yield ps.add(path)


@contextlib.contextmanager
def naming(path: str | os.PathLike, *also: str | os.PathLike) -> Iterator[None]:
    """Re-raise an OSError of the block as :func:`named` says."""
    try:
        yield
    except OSError as exc:
        new = named(exc, path, *also)
        if new is exc:
            raise
        raise new from exc


def named(exc: OSError, path: str | os.PathLike, *also: str | os.PathLike) -> OSError:
    """``exc`` naming ``path``, the file being written, where it names no file or one of ``also`` (the
    temporary beside it): a write or flush error (a full disk) carries no name, and the command's one
    line said "No space left on device" without saying where. An error naming another file is kept."""
    if exc.filename is not None and str(exc.filename) not in {str(a) for a in also}:
        return exc
    if exc.errno is None:
        return OSError(exc.errno, exc.strerror or str(exc) or type(exc).__name__, str(path))
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


class PathSet:
    """The temporaries of :func:`atomic_paths`: ``add(path)`` gives the name to write ``path``'s content to."""

    def __init__(self) -> None:
        self.items: list[tuple[str | None, Path]] = []  # (temporary, target); None: a device or pipe, written directly

    def add(self, path: str | os.PathLike) -> str:
        path = Path(path)
        if is_stream(path):  # -o /dev/stdout, a named pipe: written directly, as atomic_path does
            self.items.append((None, path))
            return str(path)
        if path.is_symlink() and path.is_file():
            path = Path(os.path.realpath(path))
        with naming(path):
            fd, tmp = temp_file_beside(path)
        os.close(fd)
        self.items.append((tmp, path))
        return tmp


@contextlib.contextmanager
def atomic_paths() -> Iterator[PathSet]:
    """:func:`atomic_path` for files that belong together (scores and their anomaly maps, scores and their
    events): ``with atomic_paths() as ps:`` write each to ``ps.add(path)``; when the block ends without
    error every one is fsynced first, then all are renamed into place together (Ctrl-C held off between
    the renames), so that a failure or an interruption leaves the earlier pair, never a new file beside
    an old one. On any error no file is replaced and the temporaries are removed. An OSError naming no
    file is said of the first path added (the main output)."""
    ps = PathSet()
    try:
        try:
            yield ps
        except OSError as exc:  # named after its file where it names a temporary, after the main output where it names none
            for tmp, path in ps.items if exc.filename is not None else ps.items[:1]:
                new = named(exc, path, *([tmp] if tmp is not None else []))
                if new is not exc:
                    raise new from exc
            raise
        for tmp, path in ps.items:
            if tmp is not None:
                with naming(path, tmp):
                    os.chmod(tmp, _final_mode(path))
                    fsync_path(tmp)
        with sigint_held():
            for tmp, path in ps.items:
                if tmp is not None:
                    with naming(path, tmp):
                        os.replace(tmp, path)
        for parent in {path.parent for tmp, path in ps.items if tmp is not None}:
            fsync_path(parent)
    finally:
        for tmp, _ in ps.items:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """``with atomic_file(path) as fh: fh.write(...)``: ``path`` gets the whole content or, on any
    error, keeps its previous content (or stays absent)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file: mode is {mode!r}. Fix: use 'w' or 'wb'")
    if mode == "w":  # text is UTF-8 whatever the locale (a Windows code page could not hold an id such as '北京-1')
        open_kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as fh:
        yield fh
        fh.flush()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_file(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_file(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


# ---------------------------------------------------------------- folders
def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux >= 3.15); False where not supported (elsewhere: on
    Windows ``ctypes.CDLL(None)`` raised a TypeError, so every save over an existing model failed)."""
    import ctypes
    if not _LINUX:
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0


def old_path(path: Path) -> Path:
    """Where :func:`replace_dir`'s fall-back parks the previous version: ``.<name>.old`` (a long name
    shortened by :func:`temp_name`)."""
    return path.with_name(f".{temp_name(path.name)}.old")


def recover_dir(path: str | os.PathLike, marker: str) -> Path | None:
    """Finish a :func:`replace_dir` killed between its two renames: the previous version (a folder
    holding ``marker``) is at ``.<name>.old`` and nothing at ``path``. Moves it back (or, where the
    folder is read-only, returns where it is); None where there is nothing to recover."""
    path = Path(path)
    old = old_path(path)
    if os.path.lexists(path) or not (old / marker).is_file():
        return None
    try:
        os.replace(old, path)
        fsync_path(path.parent)
        return path
    except OSError:
        return old


def replace_dir(tmp: Path, path: Path) -> None:
    """Put the complete folder ``tmp`` at ``path``. An existing ``path`` is exchanged with ``tmp``
    in one step where possible (``tmp`` then holds the previous version: the caller removes it);
    else it is renamed to ``.<name>.old`` first (see :func:`recover_dir`) and removed after."""
    if path.exists() and _exchange(tmp, path):
        fsync_path(path.parent)
        return
    if path.exists():
        old = old_path(path)
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(tmp, path)
        fsync_path(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
        fsync_path(path.parent)


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Hold off Ctrl-C (SIGINT) in the block, then raise the KeyboardInterrupt it would have: a set of
    renames is done whole. Only in the main thread (where Python's handler runs); elsewhere a no-op."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    got: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if got:
        raise KeyboardInterrupt


def _is_cwd_or_above(path: Path) -> bool:
    try:
        cwd = Path(os.getcwd()).resolve()
        path = path.resolve()  # through a linked parent (macOS' /tmp) too: the cwd is resolved
    except OSError:
        return False
    return cwd == path or path in cwd.parents


@contextlib.contextmanager
def output_set(out: str | os.PathLike, owned: Iterable[str] = ()) -> Iterator[Path]:
    """Write a command's output folder as one set (a report with its metrics and figures, a demo's model
    beside them): the block writes the files into the yielded temporary folder; when it ends without
    error they take their places in ``out`` together, else ``out`` is untouched and the temporary removed.

    ``owned``: the names an earlier run of the command writes there. ``out`` new, or holding nothing but
    ``owned`` entries, is replaced whole in one step (:func:`replace_dir`; an earlier run's files not
    written this time go with it). A folder holding other entries (the user's: kept), the current
    folder or one above it gets the new entries renamed into it one by one, Ctrl-C held off until the
    last, and ``owned`` entries not written this time removed, so that no earlier run's file is left
    beside the new ones."""
    out = Path(os.path.abspath(out))
    if out.is_symlink() and out.is_dir():
        out = out.resolve()  # the folder it points to gets the set, the link is kept
    mine = set(owned)
    # whole: a folder of only the command's own files, none of them a link (the link's target is the one to
    # update, and a folder swap would replace the link), not a mount point (it cannot be renamed: EBUSY)
    whole = not out.exists() or (out.is_dir() and not _is_cwd_or_above(out) and not os.path.ismount(out)
                                 and all(e.name in mine and not e.is_symlink() for e in out.iterdir())
                                 and os.access(out.parent, os.W_OK | os.X_OK))
    with new_folders_undone(out):
        if not whole:
            out.mkdir(parents=True, exist_ok=True)
        tmp = temp_dir_beside(out if whole else out / ".ganad-output")  # beside, or hidden inside a folder that keeps other entries
        try:
            try:
                yield tmp
            except OSError as exc:  # a file of the set that could not be written: named as it would be in the output
                where = str(exc.filename) if exc.filename is not None else ""
                if not where.startswith(str(tmp) + os.sep):
                    raise
                raise OSError(exc.errno, exc.strerror or str(exc), str(out / os.path.relpath(where, tmp))) from exc
            new = sorted(os.listdir(tmp))
            for name in new:
                fsync_path(tmp / name)
            if whole:
                prev = out.stat().st_mode & 0o777 if out.exists() else 0o777 & umask_mode()
                os.chmod(tmp, prev)
                fsync_path(tmp)
                with sigint_held():
                    replace_dir(tmp, out)
            else:
                # each entry's way in, decided before the first rename: a link to a file outside the folder
                # keeps the link and gets its target replaced, written first (a failure there leaves the
                # folder untouched); any other link (to a folder, to another entry of the set) is replaced itself
                real_out = out.resolve()
                through, links = [], set()
                for name in new:
                    dst = out / name
                    if not dst.is_symlink():
                        continue
                    target = Path(os.path.realpath(dst))
                    inside = target == real_out or real_out in target.parents
                    if (tmp / name).is_file() and target.is_file() and not inside:
                        through.append(name)
                    else:
                        links.add(name)
                for name in through:
                    with atomic_path(out / name) as t:  # beside the target: any file system
                        shutil.copyfile(tmp / name, t)
                with sigint_held():
                    for name in new:
                        if name in through:
                            continue
                        if name in links:
                            os.unlink(out / name)
                            os.replace(tmp / name, out / name)
                        elif (out / name).is_dir():
                            replace_dir(tmp / name, out / name)  # a model folder: exchanged (tmp then holds the previous one)
                        else:
                            os.replace(tmp / name, out / name)
                    for name in mine - set(new):  # an earlier run's file that this one did not write
                        p = out / name
                        if p.is_dir() and not p.is_symlink():
                            shutil.rmtree(p, ignore_errors=True)
                        elif os.path.lexists(p):
                            with contextlib.suppress(OSError):
                                p.unlink()
                fsync_path(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- checks before any work
def check_writable_parent(path: Path, name: str) -> Path:
    """The nearest existing folder above ``path``; refuses a path under a file or in a read-only folder."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ModelFileError(_fmt(f"{name} {path}", f"lies under {parent}, which is a file", "choose a path under a directory"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ModelFileError(_fmt(f"{name} {path}", f"cannot be written ({parent} is not writable)", "choose a folder you can write to"))
    return parent


def refuse_folders_in_the_way(out: str | os.PathLike, names, what: str) -> None:
    """Refuse, before any work, an output folder holding a folder where ``what`` (the evaluation, the
    demo, the benchmark) writes one of the files ``names``: it would write some, then fail on that one
    naming a temporary file."""
    busy = [n for n in names if (Path(out) / n).is_dir()]
    if busy:
        raise GanadError(f"-o/--output {out}: holds folder(s) {busy} where {what} writes files. "
                         "Fix: move them away, or choose another directory")


def check_output_file(path: str | os.PathLike, name: str = "-o/--output", example: str = "scores.csv") -> Path:
    """Refuse an output file path that cannot be written (a folder, under a file, read-only), before any work."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(_fmt(f"{name} {path}", "is a folder, not a file", f"pass a file path such as {example}"))
    if is_stream(path):  # -o /dev/stdout, a named pipe: written directly (atomic_path), its folder not touched
        if not os.access(path, os.W_OK):
            raise ModelFileError(_fmt(f"{name} {path}", "is a device or pipe that cannot be written", "choose a file path or a writable pipe"))
        return path
    check_writable_parent(path, name)
    return path


def is_stream(path: str | os.PathLike) -> bool:
    """``path`` exists and is a device, a pipe or a socket (links followed): written directly, not replaced."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextlib.contextmanager
def new_folders_undone(*paths: Path):
    """Remove the folders above ``paths`` that did not exist before the block (and are empty) when it
    fails: an output written while its input is read leaves no empty folder when the input is refused."""
    made: list = []
    for path in paths:
        p = Path(path).resolve().parent
        while not p.exists() and p not in made:
            made.append(p)
            p = p.parent
    try:
        yield
    except BaseException:
        for d in sorted(made, key=lambda d: len(d.parts), reverse=True):  # deepest first
            with contextlib.suppress(OSError):
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
        raise
