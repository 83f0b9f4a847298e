"""Issue 10: a killed save never loses the previous model. A real process is SIGKILLed before and
after every file operation of ``save_model`` (atomic exchange, and the two-rename fall-back with
its recovery on load); after each kill the path loads, as the previous or the new model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganad import AnoGAN

REPO = Path(__file__).resolve().parents[1]

# forks one process per kill point; each counts the file operations of save_model and SIGKILLs
# itself at the k-th; the parent then loads the model and records what it found
HELPER = r"""
import json, os, shutil, signal, sys
import ganad, ganad.io as gio, ganad.files as gfiles
path, mode = sys.argv[1], sys.argv[2]
if mode == "fallback":
    gfiles._exchange = lambda a, b: False
det = ganad.load(path)
old_t = float(det.threshold_)
def hooked(kill_at):
    count = [0]
    def tick():
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    def wrap(fn):
        def w(*a, **k):
            tick(); r = fn(*a, **k); tick(); return r
        return w
    os.replace, os.fsync, os.chmod, shutil.rmtree = (wrap(os.replace), wrap(os.fsync), wrap(os.chmod), wrap(shutil.rmtree))
    gio.save_file, gfiles._exchange = wrap(gio.save_file), wrap(gfiles._exchange)
    return count
results, k = [], 1
while True:
    pid = os.fork()
    if pid == 0:
        count = hooked(k)
        det.threshold_ = old_t + 1000.0
        det.save(path)
        os._exit(100 if count[0] < k else 0)  # 100: finished before the k-th operation
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status)
    try:
        t = float(ganad.load(path).threshold_)
        results.append({"k": k, "killed": killed, "found": "new" if t == old_t + 1000.0 else "old" if t == old_t else t})
    except Exception as e:
        results.append({"k": k, "killed": killed, "found": f"ERROR {type(e).__name__}: {e}"})
    if not killed:
        break
    if results[-1]["found"] == "new":  # the next kill points rewrite the same new model: restore the old one
        d = ganad.load(path); d.threshold_ = old_t; d.save(path)
    k += 1
print(json.dumps({"results": results, "left": sorted(os.listdir(os.path.dirname(os.path.abspath(path))))}))
"""


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_sigkill_at_every_step_of_save_never_loses_the_model(tmp_path, mode):
    AnoGAN(epochs=1, random_state=0, search_n_max=5).fit(np.random.RandomState(0).randn(32, 3)).save(tmp_path / "m")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", HELPER, str(tmp_path / "m"), mode], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    res = out["results"]
    assert sum(x["killed"] for x in res) >= 10  # killed at many points
    assert all(x["found"] in ("old", "new") for x in res), res
    assert res[-1] == {"k": res[-1]["k"], "killed": False, "found": "new"}
    assert {x["found"] for x in res if x["killed"]} == {"old", "new"}  # kills before and after the switch
    assert out["left"] == ["m"]  # no temporary or .old folder left once a save completes


def test_model_files_follow_the_umask(tmp_path):
    det = AnoGAN(epochs=1, random_state=0, search_n_max=5).fit(np.random.RandomState(0).randn(32, 3))
    for name, mask, folder, file in (("m", 0o022, 0o755, 0o644), ("p", 0o077, 0o700, 0o600)):
        old = os.umask(mask)
        try:
            det.save(tmp_path / name)
        finally:
            os.umask(old)
        assert (tmp_path / name).stat().st_mode & 0o777 == folder
        assert (tmp_path / name / "config.json").stat().st_mode & 0o777 == file


def test_score_cleans_temporaries_of_killed_runs(tmp_path):
    from typer.testing import CliRunner
    from ganad.cli import app
    X = np.random.RandomState(0).randn(32, 3).astype(np.float32)
    AnoGAN(epochs=1, random_state=0, search_n_max=5).fit(X).save(tmp_path / "m")
    np.save(tmp_path / "x.npy", X)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # a pid that no longer runs
    stale = tmp_path / f".s.csv.{p.pid}.abc.tmp"
    stale.write_text("half")
    live = tmp_path / f".s.csv.{os.getpid()}.abc.tmp"  # this process: still running, kept
    live.write_text("mine")
    r = CliRunner().invoke(app, ["score", str(tmp_path / "m"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "s.csv")])
    assert r.exit_code == 0, r.output
    assert not stale.exists() and live.exists() and (tmp_path / "s.csv").exists()
