"""ganad.files: the one atomic-writing helper every writer uses (model files, scores, reports, downloads)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ganad import files
from ganad.exceptions import ModelFileError


def test_atomic_file_keeps_previous_content_on_error_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "scores.csv"
    files.write_text(p, "old\n")
    with pytest.raises(RuntimeError, match="boom"), files.atomic_file(p) as fh:
        fh.write("half a ")
        raise RuntimeError("boom")
    assert p.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["scores.csv"]
    with files.atomic_file(p) as fh:
        fh.write("new\n")
    assert p.read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["scores.csv"]


def test_replaced_file_keeps_its_permissions_new_file_follows_umask(tmp_path):
    p = tmp_path / "a.bin"
    files.write_bytes(p, b"1")
    assert p.stat().st_mode & 0o777 == 0o666 & files.umask_mode()
    os.chmod(p, 0o600)
    files.write_bytes(p, b"2")
    assert p.read_bytes() == b"2" and p.stat().st_mode & 0o777 == 0o600


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    stale_file = tmp_path / f".out.csv.{pid}.abc.tmp"
    stale_file.write_text("partial")
    mine = tmp_path / f".out.csv.{os.getpid()}.xyz.tmp"  # a live process's temporary stays
    mine.write_text("in progress")
    stale_dir = tmp_path / f".m.new-{pid}-abc"
    stale_dir.mkdir()
    files.write_text(tmp_path / "out.csv", "x")
    assert not stale_file.exists() and mine.exists()
    tmp = files.temp_dir_beside(tmp_path / "m")
    assert not stale_dir.exists() and tmp.is_dir() and tmp.name.startswith(f".m.new-{os.getpid()}-")


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_dir_and_recovery(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    target = tmp_path / "model"
    for version in ("v1", "v2"):
        tmp = files.temp_dir_beside(target)
        (tmp / "config.json").write_text(version)
        files.replace_dir(tmp, target)
        if tmp.exists():  # the exchange leaves the previous version in tmp
            shutil.rmtree(tmp)
        assert (target / "config.json").read_text() == version
    assert sorted(os.listdir(tmp_path)) == ["model"]
    # a fall-back replacement killed between its two renames: recover_dir moves the previous version back
    os.replace(target, files.old_path(target))
    assert files.recover_dir(target, "config.json") == target
    assert (target / "config.json").read_text() == "v2"
    assert files.recover_dir(target, "config.json") is None


def test_check_output_file_refuses_folders_and_paths_under_files(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder"):
        files.check_output_file(tmp_path)
    (tmp_path / "f").write_text("")
    with pytest.raises(ModelFileError, match="lies under"):
        files.check_output_file(tmp_path / "f" / "x.csv")
    assert files.check_output_file(tmp_path / "new" / "x.csv") == tmp_path / "new" / "x.csv"
    with pytest.raises(ValueError, match="mode"):
        with files.atomic_file(tmp_path / "x", "a"):
            pass


def test_a_pipe_is_written_directly_and_a_link_kept(tmp_path):
    """-o /dev/stdout or a named pipe: the temporary file was renamed over it, replacing the pipe (or,
    as root, a device node such as /dev/null) with a regular file. It is now written directly. A link
    to a file stands for its target: the target gets the content, the link stays a link."""
    import stat
    import threading

    from ganad.files import check_output_file, write_text
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    assert check_output_file(fifo) == fifo
    write_text(fifo, "a,b\n1,2\n")
    reader.join(10)
    assert got == ["a,b\n1,2\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    target = tmp_path / "real.csv"
    target.write_text("old")
    (tmp_path / "link.csv").symlink_to(target)
    write_text(tmp_path / "link.csv", "new")
    assert (tmp_path / "link.csv").is_symlink() and target.read_text() == "new"


def _two_models(tmp_path):
    import numpy as np

    from ganad import GANomaly, SeriesDetector
    X = np.random.RandomState(0).randn(200, 4).astype("float32")
    det = GANomaly(epochs=1, width=8, random_state=0).fit(X)
    t = np.sin(np.linspace(0, 60, 1200)).astype("float32") + 0.05 * np.random.RandomState(1).randn(1200).astype("float32")
    sd = SeriesDetector("ganomaly", window=32, stride=4, detector_params=dict(epochs=1, width=8, random_state=0)).fit(t)
    return X, det, sd


def test_model_folders_saved_as_dot_replaced_by_another_kind_recovered_and_checked(tmp_path, monkeypatch):
    """Four persistence gaps (twenty-first session's audit): save('.') failed after all the work ('has an
    empty name'); a plain model over a series model was refused after training (the reverse was allowed);
    a series / multi-view save killed between its two renames was not recovered by ganad.load; a series
    model's parameters were not checked when loaded."""
    import json

    import numpy as np

    import ganad
    X, det, sd = _two_models(tmp_path)
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path / "m")
    det.save(".")
    monkeypatch.chdir(tmp_path / "m")  # the folder was replaced: the process's working directory is the old one
    ganad.load(".").save(".")  # `ganad calibrate .` in the model's folder
    monkeypatch.chdir(tmp_path)
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]
    np.testing.assert_array_equal(ganad.load(tmp_path / "m").decision_function(X[:5]), det.decision_function(X[:5]))

    sd.save(tmp_path / "s")
    det.save(tmp_path / "s")  # a ganad model of another kind: replaced, as the other way round
    assert type(ganad.load(tmp_path / "s")).__name__ == "GANomaly"
    sd.save(tmp_path / "s")
    os.rename(tmp_path / "s", tmp_path / ".s.old")  # what a save killed between replace_dir's two renames leaves
    assert type(ganad.load(tmp_path / "s")).__name__ == "SeriesDetector" and (tmp_path / "s" / "series.json").is_file()

    good = json.loads((tmp_path / "s" / "series.json").read_text())
    for edit, words in ((lambda c: c["params"].__setitem__("gaps", "bogus"), "gaps: is 'bogus'"),
                        (lambda c: c["params"].__setitem__("contamination", 5), "contamination"),
                        (lambda c: c["state"].__setitem__("threshold", "1.5"), "threshold '1.5' is not a finite number"),
                        (lambda c: c.__setitem__("params", []), "params and state must be objects")):
        cfg = json.loads(json.dumps(good))
        edit(cfg)
        (tmp_path / "s" / "series.json").write_text(json.dumps(cfg))
        with pytest.raises(ModelFileError, match="series.json"):
            try:
                ganad.load(tmp_path / "s")
            except ModelFileError as exc:
                assert words in str(exc), str(exc)
                raise


def test_a_changed_byte_in_the_weights_is_refused_by_their_digest(tmp_path):
    """One flipped bit in model.safetensors passed every structural check and loaded with other scores:
    config.json records the weights' SHA-256 at save, load compares it. A file without it (saved before)
    loads as it did."""
    import json

    import numpy as np

    import ganad
    from ganad import GANomaly
    X = np.random.RandomState(0).randn(200, 4).astype("float32")
    det = GANomaly(epochs=1, width=8, random_state=0).fit(X)
    det.save(tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    good = w.read_bytes()
    bad = bytearray(good)
    bad[-5] ^= 1  # inside the last tensor's data
    w.write_bytes(bytes(bad))
    with pytest.raises(ModelFileError, match="model.safetensors: does not match the SHA-256 digest"):
        ganad.load(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    del cfg["weights_sha256"]  # a model saved before the digest: not compared
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    w.write_bytes(good)
    np.testing.assert_array_equal(ganad.load(tmp_path / "m").decision_function(X[:5]), det.decision_function(X[:5]))


@pytest.mark.parametrize("exchange", [True, False])
def test_output_names_near_name_max_are_written(tmp_path, monkeypatch, exchange):
    """A name the file system takes (up to NAME_MAX, 255 bytes) failed with 'File name too long' naming
    the temporary beside it ('.<name>.<pid>.<random>.tmp', '.<name>.new-<pid>-...', '.<name>.old'),
    after a whole fit: a long name is shortened in its temporaries' names, stale ones still found."""
    if not exchange:
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    for n in (201, 240, 255):
        f = tmp_path / ("é" * 20 + "s" * (n - 44) + ".csv")  # 'é' is 2 bytes: n bytes in all
        assert len(os.fsencode(f.name)) == n
        files.write_text(f, "a\n")
        files.write_text(f, "b\n")
        assert f.read_text() == "b\n"
        d = tmp_path / ("m" * (n - 1) + "d")
        for version in ("v1", "v2"):
            tmp = files.temp_dir_beside(d)
            (tmp / "config.json").write_text(version)
            files.replace_dir(tmp, d)
            if tmp.exists():
                shutil.rmtree(tmp)
        assert (d / "config.json").read_text() == "v2"
        assert sorted(os.listdir(tmp_path)) == sorted([f.name, d.name]), os.listdir(tmp_path)
        shutil.rmtree(d)
        f.unlink()
    long = "x" * 250
    assert files.temp_name("x" * 200) == "x" * 200 and files.temp_name(long) == files.temp_name(long)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".{files.temp_name(long)}.{int(dead.stdout)}.abc.tmp"  # a killed writer's temporary of that name
    stale.write_text("partial")
    files.write_text(tmp_path / long, "x")
    assert not stale.exists() and (tmp_path / long).read_text() == "x"


def test_write_errors_name_the_output(tmp_path):
    """A write or flush error carries no file name (os.write, a full disk): `ganad score -o /dev/full`
    said "error: No space left on device" without saying which file. atomic_path / atomic_file raise
    it naming the output (not the temporary); an error naming another file is left as it is."""
    with pytest.raises(OSError) as e:
        files.write_text("/dev/full", "x" * 100_000)
    assert e.value.filename == "/dev/full" and "No space left" in e.value.strerror
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000)); from ganad import files\n"
            "try:\n    files.write_bytes(sys.argv[1], b'x' * 100_000)\nexcept OSError as e:\n    print(e.filename, '|', e.strerror)")
    src = str(files.__file__).rsplit("/ganad/", 1)[0]
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out.bin")], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=src), timeout=60)
    assert r.stdout.strip() == f"{tmp_path / 'out.bin'} | File too large", r.stdout + r.stderr
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError) as e2, files.atomic_file(tmp_path / "o.txt") as fh:
        fh.write("x")
        open(tmp_path / "missing.txt")
    assert e2.value.filename == str(tmp_path / "missing.txt")


def test_score_to_a_full_device_names_it(tmp_path):
    import numpy as np

    from ganad import FAnoGAN
    X = np.random.RandomState(0).randn(64, 3)
    FAnoGAN(epochs=1, random_state=0).fit(X).save(tmp_path / "m")
    np.save(tmp_path / "x.npy", X)
    src = str(files.__file__).rsplit("/ganad/", 1)[0]
    r = subprocess.run([sys.executable, "-m", "ganad", "score", "m", "x.npy", "-o", "/dev/full", "-q"], cwd=tmp_path, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1", COLUMNS="300"), timeout=120)
    assert r.returncode == 1 and "error: /dev/full: No space left on device" in r.stderr, r.stderr


def _tree(d):
    return {str(p.relative_to(d)): p.read_text() for p in sorted(d.rglob("*")) if p.is_file()}


def test_output_set_replaces_a_folder_as_one_set_or_not_at_all(tmp_path, monkeypatch):
    """A command's output folder (a demo's model, metrics, plots and report; a benchmark's results and
    report; an evaluation) was written file by file: a failure or Ctrl-C half-way left a folder mixing
    two runs. files.output_set writes them into a temporary folder and switches them in together."""
    out = tmp_path / "out"
    owned = ("model", "metrics.json", "roc.png", "report.html")
    with files.output_set(out, owned) as tmp:
        (tmp / "model").mkdir()
        (tmp / "model" / "config.json").write_text("v1")
        for n in ("metrics.json", "roc.png", "report.html"):
            (tmp / n).write_text("v1")
    old = _tree(out)
    assert old == {"metrics.json": "v1", "model/config.json": "v1", "report.html": "v1", "roc.png": "v1"}
    for boom in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(boom)), files.output_set(out, owned) as tmp:
            (tmp / "metrics.json").write_text("v2")
            raise boom
        assert _tree(out) == old and sorted(os.listdir(tmp_path)) == ["out"]
    with files.output_set(out, owned) as tmp:  # a run that writes no roc.png: the earlier one goes with its set
        (tmp / "model").mkdir()
        (tmp / "model" / "config.json").write_text("v3")
        (tmp / "metrics.json").write_text("v3")
        (tmp / "report.html").write_text("v3")
    assert _tree(out) == {"metrics.json": "v3", "model/config.json": "v3", "report.html": "v3"}
    assert sorted(os.listdir(tmp_path)) == ["out"]
    # a folder holding the user's files too: they stay; the set's files are renamed in, an earlier one not written removed
    (out / "notes.txt").write_text("mine")
    (out / "roc.png").write_text("v3")
    with pytest.raises(KeyboardInterrupt), files.output_set(out, owned) as tmp:
        (tmp / "metrics.json").write_text("v4")
        raise KeyboardInterrupt
    assert _tree(out)["metrics.json"] == "v3" and sorted(os.listdir(out)) == ["metrics.json", "model", "notes.txt", "report.html", "roc.png"]
    with files.output_set(out, owned) as tmp:
        (tmp / "model").mkdir()
        (tmp / "model" / "config.json").write_text("v4")
        (tmp / "metrics.json").write_text("v4")
    assert _tree(out) == {"metrics.json": "v4", "model/config.json": "v4", "notes.txt": "mine"}
    monkeypatch.chdir(out)  # the current folder: never exchanged (the shell's folder would be deleted)
    with files.output_set(".", owned) as tmp:
        (tmp / "metrics.json").write_text("v5")
    assert os.getcwd() == str(out) and _tree(out) == {"metrics.json": "v5", "notes.txt": "mine"}


def test_atomic_paths_put_a_pair_in_place_together(tmp_path, monkeypatch):
    """`ganad score --maps` renamed the maps into place before the scores file was complete (fsynced and
    renamed): a failure or Ctrl-C between left new maps beside old scores. Both are now complete first."""
    for f in ("s.csv", "m.npy"):
        (tmp_path / f).write_text("old")
    real = files.fsync_path

    def interrupted(p):
        if Path(p).name.startswith(".s.csv."):
            raise KeyboardInterrupt
        return real(p)
    monkeypatch.setattr(files, "fsync_path", interrupted)
    with pytest.raises(KeyboardInterrupt), files.atomic_paths() as outs:
        for f in ("m.npy", "s.csv"):
            Path(outs.add(tmp_path / f)).write_text("new")
    assert sorted(os.listdir(tmp_path)) == ["m.npy", "s.csv"]
    assert (tmp_path / "s.csv").read_text() == "old" and (tmp_path / "m.npy").read_text() == "old"
    monkeypatch.setattr(files, "fsync_path", real)
    with files.atomic_paths() as outs:
        for f in ("m.npy", "s.csv"):
            Path(outs.add(tmp_path / f)).write_text("new")
    assert sorted(os.listdir(tmp_path)) == ["m.npy", "s.csv"] and (tmp_path / "m.npy").read_text() == "new"


def test_output_set_names_a_failed_file_as_in_the_output(tmp_path):
    """A full disk while a set's file is written: the error names the output's file, not the temporary folder's."""
    out = tmp_path / "out"
    with pytest.raises(OSError) as e, files.output_set(out, ("report.html",)) as tmp:
        raise OSError(28, "No space left on device", str(tmp / "report.html"))
    assert e.value.filename == str(out / "report.html") and not out.exists()


def test_saves_over_a_model_outside_linux_and_process_checks_on_windows(tmp_path, monkeypatch):
    """Portability audit (twenty-fifth session): replace_dir's exchange called ctypes.CDLL(None), which
    raises TypeError on Windows, so every save over an existing model failed there; alive() used
    os.kill(pid, 0), which on Windows sends Ctrl+C (signal 0 is CTRL_C_EVENT) or raises for a dead pid,
    read as alive, so the temporaries of killed saves were never removed."""
    import numpy as np

    import ganad
    from ganad import files
    monkeypatch.setattr(files, "_LINUX", False)
    X = np.random.RandomState(0).randn(64, 3).astype(np.float32)
    for seed in (0, 1):  # the second save replaces the first through the two renames
        ganad.GANomaly(epochs=1, random_state=seed, verbose=False).fit(X).save(tmp_path / "m")
    assert ganad.load(tmp_path / "m").random_state == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["m"]

    def no_kill(*a):
        raise AssertionError("os.kill called on Windows")
    monkeypatch.setattr(files.os, "kill", no_kill)
    monkeypatch.setattr(files, "_WINDOWS", True)
    monkeypatch.setattr(files, "_windows_alive", lambda pid: pid == 4242)
    assert files.alive(4242) and not files.alive(4243)


def test_text_outputs_are_utf8_whatever_the_locale(tmp_path):
    """Portability audit: `ganad score` wrote its CSV in the locale's encoding, so under a code page (here
    an ASCII locale) an id such as '北京-1', read fine from the UTF-8 input, could not be written."""
    import os
    import subprocess
    import sys

    import numpy as np
    import pandas as pd

    import ganad
    rng = np.random.RandomState(0)
    df = pd.DataFrame(rng.randn(100, 3), columns=list("abc"))
    ganad.GANomaly(epochs=1, random_state=0, verbose=False).fit(df).save(tmp_path / "m")
    t = df.iloc[:5].copy()
    t.insert(0, "site", [f"北京-{i}" for i in range(5)])
    t.to_csv(tmp_path / "t.csv", index=False, encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(ganad.__file__).parents[1]), os.environ.get("PYTHONPATH")) if p)}
    r = subprocess.run([sys.executable, "-m", "ganad", "score", str(tmp_path / "m"), str(tmp_path / "t.csv"), "--id-column", "site",
                        "-o", str(tmp_path / "s.csv"), "-q"], env=env, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert r.returncode == 0, r.stderr[-500:]
    assert pd.read_csv(tmp_path / "s.csv", encoding="utf-8")["site"].tolist() == [f"北京-{i}" for i in range(5)]


def test_output_set_keeps_linked_files_mount_points_and_the_cwd_through_a_linked_parent(tmp_path, monkeypatch):
    """Review of output_set: a folder of only the command's files was swapped whole, which replaced a linked
    report with a plain file (the published copy went stale), failed with EBUSY on a mount point (after all
    the work), and, reached through a linked parent, swapped away the current folder."""
    from ganad import files
    out = tmp_path / "out"
    out.mkdir()
    pub = tmp_path / "published.html"
    pub.write_text("old")
    (out / "report.html").symlink_to(pub)
    with files.output_set(out, owned=("report.html", "metrics.json")) as t:
        (t / "report.html").write_text("new")
        (t / "metrics.json").write_text("{}")
    assert (out / "report.html").is_symlink() and pub.read_text() == "new" and (out / "metrics.json").read_text() == "{}"
    m = tmp_path / "mnt"
    m.mkdir()
    (m / "metrics.json").write_text("old")
    monkeypatch.setattr(files.os.path, "ismount", lambda p: os.fspath(p) == os.fspath(m))
    with files.output_set(m, owned=("metrics.json",)) as t:
        (t / "metrics.json").write_text("new")
    assert (m / "metrics.json").read_text() == "new" and sorted(p.name for p in m.iterdir()) == ["metrics.json"]
    monkeypatch.undo()
    real = tmp_path / "real"
    (real / "work").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(tmp_path / "link" / "work")
    with files.output_set(tmp_path / "link" / "work", owned=("metrics.json",)) as t:
        (t / "metrics.json").write_text("x")
    assert os.getcwd() and (real / "work" / "metrics.json").read_text() == "x"
    assert os.path.samefile(os.getcwd(), real / "work")


def test_output_set_replaces_links_to_folders_and_inside_the_set_as_links(tmp_path):
    """Review of the linked-file rule: a link to a folder (a demo's model) failed with ENOTDIR after
    metrics.json was already replaced (a mixed folder), and a link to another entry of the set
    (report.html -> metrics.json) wrote the report into the new metrics."""
    from ganad import files
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "oldmodel").mkdir()
    (tmp_path / "oldmodel" / "config.json").write_text("old")
    (out / "model").symlink_to(tmp_path / "oldmodel")
    (out / "metrics.json").write_text("old")
    (out / "report.html").symlink_to("metrics.json")
    with files.output_set(out, owned=("model", "metrics.json", "report.html")) as t:
        (t / "model").mkdir()
        (t / "model" / "config.json").write_text("new")
        (t / "metrics.json").write_text("new metrics")
        (t / "report.html").write_text("new report")
    assert (out / "model" / "config.json").read_text() == "new" and (out / "metrics.json").read_text() == "new metrics"
    assert (out / "report.html").read_text() == "new report" and (tmp_path / "oldmodel" / "config.json").read_text() == "old"
