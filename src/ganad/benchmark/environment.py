"""The machine a benchmark runs on (CPU, threads, versions, git state) and where its reference data lies."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from ganad.exceptions import InputError, _fmt

#: environment variable naming the reference-data folder (holding mitdb/, adbench/, mnist/)
ENV_VAR = "GANAD_DATA_DIR"


def machine() -> dict:
    """CPU, cores, threads and versions of the machine running the benchmark."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "cuda": torch.cuda.is_available()}
    try:
        import pyod
        info["pyod"] = pyod.__version__
    except ImportError:
        info["pyod"] = None
    info.update(_git_state())
    return info


def _git_state() -> dict:
    """Commit and uncommitted files of the checkout ganad is imported from (empty outside a git checkout)."""
    import subprocess
    root = Path(__file__).resolve().parents[3]
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=10).stdout  # noqa: E731
        commit = run("rev-parse", "--short", "HEAD").strip()
        if not commit:
            return {}
        dirty = [ln[3:] for ln in run("status", "--porcelain", "--untracked-files=no").splitlines() if len(ln) > 3]
        return {"git_commit": commit, "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {}


def resolve_data_dir(data: str | os.PathLike | None, sub: str) -> Path:
    """``data`` (or ``$GANAD_DATA_DIR``) / ``sub`` when that folder exists, else ``data`` itself
    when it already is the ``sub`` folder; raises :class:`InputError` naming the fix."""
    if data is None:
        data = os.environ.get(ENV_VAR)
        if not data:
            raise InputError(_fmt("--data", f"is not given and ${ENV_VAR} is unset",
                                  f"pass --data DIR (the folder holding {sub}/) or set {ENV_VAR}"))
    base = Path(data).expanduser()
    for p in (base / sub, base):
        if p.is_dir() and (p.name == sub or p == base / sub):
            return p
    raise InputError(_fmt("--data", f"{str(base)!r} holds no {sub}/ folder", f"pass the folder that holds {sub}/ (or {sub}/ itself)"))
