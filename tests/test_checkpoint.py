"""Issue 13: checkpoint / resume (bit-identical on CPU, atomic, fingerprinted) and the divergence guard."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import ganad
from ganad import AnoGAN, FAnoGAN, GANomaly
from ganad.exceptions import InputError, TrainingDiverged
from ganad.training import checkpoint as ck
from ganad.training import guard as gd

REPO = Path(__file__).resolve().parents[1]
X = np.random.RandomState(0).randn(300, 6).astype(np.float32)


def _same_weights(a, b) -> bool:
    sa, sb = a.nets_.state_dict(), b.nets_.state_dict()
    return sorted(sa) == sorted(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _interrupt_after(monkeypatch, k):
    """Make the k-th checkpoint write the last thing the run does (a crash right after it)."""
    orig, count = ck.Checkpointer.save, [0]

    def save(self, snap):
        orig(self, snap)
        count[0] += 1
        if count[0] == k:
            raise KeyboardInterrupt

    monkeypatch.setattr(ck.Checkpointer, "save", save)
    return lambda: monkeypatch.setattr(ck.Checkpointer, "save", orig)


@pytest.mark.parametrize("cls,kw,kills", [
    (GANomaly, {}, (2, 7)),  # mid-epoch and at an epoch boundary
    # 3 checkpoints per epoch: in the GAN stage mid-epoch (n_critic phase), at its end, in the encoder stage
    (FAnoGAN, {"epochs": 2, "n_critic": 2, "encoder_epochs": 2}, (2, 6, 8)),
    # the lazy penalty's phase (gp_every) resumes with the run: the step counter of the GAN stage, and
    # GANomaly's discriminator-step counter (a key added at its first step)
    (FAnoGAN, {"epochs": 2, "n_critic": 2, "encoder_epochs": 2, "gp_every": 3}, (2, 6)),
    (GANomaly, {"objective": "wgan-gp", "gp_every": 4}, (2, 7)),
])
def test_resume_is_bit_identical(tmp_path, monkeypatch, cls, kw, kills):
    kw = {"epochs": 3, "random_state": 0, "batch_size": 32, **kw}
    ref = cls(**kw).fit(X)
    s_ref = ref.decision_function(X)
    if cls is GANomaly:
        plain = cls(**kw).fit(X, checkpoint_dir=tmp_path / "all", checkpoint_every=3)  # writing checkpoints changes nothing
        assert np.array_equal(plain.decision_function(X), s_ref) and plain.checkpoint_["written"] > 5
    stages = set()
    for k in kills:
        d = tmp_path / f"k{k}"
        restore = _interrupt_after(monkeypatch, k)
        with pytest.raises(KeyboardInterrupt):
            cls(**kw).fit(X, checkpoint_dir=d, checkpoint_every=3)
        restore()
        man, _ = ck.load(d)
        stages.add(man["state"]["loop"]["stage"])
        det = cls(**kw).fit(X, checkpoint_dir=d, checkpoint_every=3, resume=True)
        assert det.checkpoint_["resumed"]
        assert _same_weights(det, ref)
        assert np.array_equal(det.decision_function(X), s_ref)
        assert det.history_ == ref.history_ and det.selection_ == ref.selection_
    if cls is FAnoGAN:
        assert stages == {0, 1}  # interrupted in both stages


def test_resume_with_robust_training_and_random_state_none(tmp_path, monkeypatch):
    d = tmp_path / "c"
    restore = _interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        GANomaly(epochs=2, batch_size=32).fit(X, checkpoint_dir=d, checkpoint_every=4, robust_contamination=0.1, robust_warmup=1)
    restore()
    seed = ck.load(d)[0]["extra"]["seed"]
    det = GANomaly(epochs=2, batch_size=32).fit(X, checkpoint_dir=d, checkpoint_every=4, robust_contamination=0.1,
                                                robust_warmup=1, resume=True)
    assert det.seed_ == seed  # random_state=None: the run keeps the seed it started with
    from ganad.detectors import base  # the uninterrupted run that drew the same seed
    monkeypatch.setattr(base, "check_random_state", lambda rs: type("R", (), {"randint": lambda self, a, b: seed})())
    ref = GANomaly(epochs=2, batch_size=32).fit(X, robust_contamination=0.1, robust_warmup=1)
    assert ref.seed_ == seed
    assert np.array_equal(det.decision_function(X), ref.decision_function(X))
    assert np.array_equal(det.robust_weights_, ref.robust_weights_, equal_nan=True)


def test_resume_accepts_equivalent_spellings_of_the_robust_options(tmp_path):
    """The fingerprint held the robust options as spelled: robust_warmup=None and the epochs // 3 it
    means, robust_proxy=None and the method's default, or robust_mode with robust training off, were
    refused as "other fit options"."""
    d, e = tmp_path / "off", tmp_path / "on"
    GANomaly(epochs=2, random_state=0).fit(X, checkpoint_dir=d, checkpoint_every=4)
    GANomaly(epochs=2, random_state=0).fit(X, checkpoint_dir=d, resume=True, robust_mode="soft", robust_warmup=3)
    GANomaly(epochs=2, random_state=0).fit(X, checkpoint_dir=e, checkpoint_every=4, robust_contamination=0.1)
    det = GANomaly(epochs=2, random_state=0).fit(X, checkpoint_dir=e, resume=True, robust_contamination=0.1, robust_warmup=1,
                                                 robust_mode="hard", robust_proxy=GANomaly._robust_proxy_kind)
    assert det.checkpoint_["resumed"]
    with pytest.raises(InputError, match="fit options"):  # a real change is still refused
        GANomaly(epochs=2, random_state=0).fit(X, checkpoint_dir=e, resume=True, robust_contamination=0.1, robust_mode="soft")


def test_resume_refuses_other_data_other_params_and_missing_checkpoints(tmp_path):
    d = tmp_path / "c"
    GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=d, checkpoint_every=2)
    with pytest.raises(InputError, match="other training data: same shape, different values"):
        GANomaly(epochs=1, random_state=0).fit(X + 1, checkpoint_dir=d, resume=True)
    with pytest.raises(InputError, match=r"other training data: shape \(300, 6\) then, \(299, 6\) now"):
        GANomaly(epochs=1, random_state=0).fit(X[:-1], checkpoint_dir=d, resume=True)
    with pytest.raises(InputError, match=r"other parameters: epochs=1 then, 2 now; lr_d=0.0002 then, 0.001 now") as err:
        GANomaly(epochs=2, lr_d=1e-3, random_state=0).fit(X, checkpoint_dir=d, resume=True)
    # the fix names the earlier values in both forms (a default changed since the checkpoint: resume, not restart)
    assert "pass the earlier values (epochs=1, lr_d=0.0002; CLI: --set epochs=1 --set lr_d=0.0002)" in str(err.value)
    with pytest.raises(InputError, match="other parameters: betas=") as err:  # a value --set cannot name: no partial list
        GANomaly(epochs=2, betas=(0.9, 0.99), random_state=0).fit(X, checkpoint_dir=d, resume=True)
    assert "earlier values" not in str(err.value) and "resume with the same data and parameters" in str(err.value)
    with pytest.raises(InputError, match="written by GANomaly, not AnoGAN"):
        AnoGAN(epochs=1, random_state=0).fit(X, checkpoint_dir=d, resume=True)
    with pytest.raises(InputError, match="fit options"):
        GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=d, resume=True, robust_contamination=0.1)
    with pytest.raises(InputError, match="already holds a checkpoint.*resume=True"):
        GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=d)
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=tmp_path / "none", resume=True)
    with pytest.raises(InputError, match="resume: is True but no checkpoint_dir"):
        GANomaly(epochs=1).fit(X, resume=True)
    GANomaly(epochs=1, random_state=0).fit(X).save(tmp_path / "saved")  # a model's folder is not a checkpoint's
    with pytest.raises(InputError, match="is a saved model's directory.*config.json"):
        GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved").iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(InputError, match="not supported with an ensemble"):
        GANomaly(epochs=1, n_members=2).fit(X, checkpoint_dir=tmp_path / "e")
    with pytest.raises(InputError, match="checkpoint_every: is 0"):
        GANomaly(epochs=1).fit(X, checkpoint_dir=tmp_path / "z", checkpoint_every=0)
    # a damaged tensor file is refused by its SHA-256, never half-loaded
    man = ck.load(d)[0]
    f = d / man["tensors"]["file"]
    f.write_bytes(f.read_bytes()[:-8] + b"xxxxxxxx")
    with pytest.raises(ganad.exceptions.ModelFileError, match="does not match its SHA-256"):
        GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=d, resume=True)
    # the CLI: non-zero exits with the message
    from typer.testing import CliRunner
    from ganad.cli import app
    np.save(tmp_path / "x.npy", X)
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--resume", "-q"])
    assert r.exit_code != 0 and "needs --checkpoint DIR" in r.output
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--epochs", "2", "-q",
                                 "--checkpoint", str(tmp_path / "none"), "--resume"])
    assert r.exit_code != 0 and "no checkpoint to resume from" in r.output and not (tmp_path / "m").exists()
    # a directory holding a checkpoint, without --resume: said in the command's options, not the API's
    GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=tmp_path / "held")
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q",
                                 "--checkpoint", str(tmp_path / "held")])
    out = " ".join(r.output.split())
    assert r.exit_code != 0 and f"--checkpoint {tmp_path / 'held'}: already holds a checkpoint" in out and "pass --resume" in out, r.output
    assert "checkpoint_dir" not in out and "resume=True" not in out


@pytest.fixture(scope="module")
def mid_epoch_checkpoint(tmp_path_factory):
    """A GANomaly checkpoint written in the middle of an epoch (the loop position, the epoch's
    permutation and loss sums, the selector, the guard: every loop-state entry present)."""
    d = tmp_path_factory.mktemp("ck") / "mid"
    orig = ck.Checkpointer.save

    def save(self, snap):
        orig(self, snap)
        raise KeyboardInterrupt

    ck.Checkpointer.save = save
    try:
        with pytest.raises(KeyboardInterrupt):
            GANomaly(epochs=2, batch_size=64, random_state=0).fit(X, checkpoint_dir=d, checkpoint_every=3)
    finally:
        ck.Checkpointer.save = orig
    lp = ck.load(d)[0]["state"]["loop"]
    assert lp["stage"] == 0 and lp["step"] == 3 and lp["perm"] is not None
    return d


def _set(*path, value=None, delete=False):
    def edit(state):
        for k in path[:-1]:
            state = state[k]
        if delete:
            del state[path[-1]]
        else:
            state[path[-1]] = value
    return edit


def _group_flag(state, name, value):
    """Set the flag ``name`` of the first optimiser's first parameter group (stored as [[key, value], ...])."""
    opt = dict(state["stages"][0]["optimizers"][0]["__dict__"])
    pairs = opt["param_groups"][0]["__dict__"]
    [pair] = [pair for pair in pairs if pair[0] == name]
    pair[1] = value


@pytest.mark.parametrize("edit,entry", [  # each used to fail with a raw TypeError / KeyError / AttributeError from the loop, or resume silently wrong
    (_set("loop", "step", value="3"), "loop.step is '3'"),
    (_set("loop", "step", value=99), "loop.step is 99"),  # beyond the epoch's 5 batches
    (_set("loop", "epoch", value=-1), "loop.epoch is -1"),
    (_set("loop", "epoch", value=None), "loop.epoch is None"),
    (_set("loop", "stage", value=10**12), "loop.stage"),
    (_set("loop", "n_steps", delete=True), "loop.n_steps is missing"),
    (_set("loop", "perm", value=None), "loop.perm is missing at batch 3"),
    (_set("loop", "perm", value=7), "loop.perm is 7"),
    (_set("loop", "perm", value={"__tensor__": "loop/nothing"}), "loop.perm is malformed"),
    (_set("loop", "history", value="x"), "loop.history"),
    (_set("loop", "sums", value=None), "loop.sums"),
    (_set("selector", "t", value="x"), "selector.t"),
    (_set("selector", "history", value=-1), "selector.history"),
    (_set("guard", delete=True), "guard is missing"),
    (_set("guard", "__dict__", 0, 1, value="x"), "guard.used"),
    (_set("stages", 0, "optimizers", 0, "__dict__", 0, 1, "__dict__", 0, 1, "__dict__", 1, delete=True), "stages[0].optimizers[0].state[0]"),
    # an optimiser flag: flipped, Adam's amsgrad raised KeyError 'max_exp_avg_sq' at the next step (maximize trained
    # uphill silently); a kernel flag not a bool raised "Adam with fused=True does not support differentiable=True"
    (lambda st: _group_flag(st, "amsgrad", True), "stages[0].optimizers[0].param_groups[0].amsgrad is True, not False"),
    (lambda st: _group_flag(st, "maximize", True), "stages[0].optimizers[0].param_groups[0].maximize is True, not False"),
    (lambda st: _group_flag(st, "differentiable", "x"), "stages[0].optimizers[0].param_groups[0].differentiable is 'x', not False"),
    (lambda st: _group_flag(st, "fused", "x"), "stages[0].optimizers[0].param_groups[0].fused is 'x', not True, False or None"),
])
def test_hand_edited_loop_state_is_refused_naming_the_file_and_the_entry(tmp_path, mid_epoch_checkpoint, edit, entry):
    import json
    import shutil
    d = tmp_path / "c"
    shutil.copytree(mid_epoch_checkpoint, d)
    man = json.loads((d / ck.MANIFEST).read_text())
    edit(man["state"])
    (d / ck.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(ganad.exceptions.ModelFileError) as exc:
        GANomaly(epochs=2, batch_size=64, random_state=0).fit(X, checkpoint_dir=d, checkpoint_every=3, resume=True)
    msg = str(exc.value)
    assert msg.startswith(f"checkpoint {d}: its checkpoint.json holds a training state this run cannot continue from: ")
    assert entry in msg and "Fix: delete the checkpoint directory and train afresh" in msg


def test_a_checkpoint_written_with_the_unfused_adam_resumes(tmp_path, mid_epoch_checkpoint):
    """Optimisers are PyTorch's fused Adam now; a checkpoint written before (its param_groups say
    fused=None) still resumes: the kernel flags are not part of the state that is checked."""
    import json
    import shutil
    d = tmp_path / "c"
    shutil.copytree(mid_epoch_checkpoint, d)
    man = json.loads((d / ck.MANIFEST).read_text())
    seen = []

    def unfuse(node):
        if isinstance(node, list):
            if len(node) == 2 and node[0] == "fused":
                seen.append(node[1])
                node[1] = None
            for v in node:
                unfuse(v)
        elif isinstance(node, dict):
            for v in node.values():
                unfuse(v)
    unfuse(man["state"])
    assert seen and all(v is True for v in seen)
    (d / ck.MANIFEST).write_text(json.dumps(man))
    det = GANomaly(epochs=2, batch_size=64, random_state=0).fit(X, checkpoint_dir=d, checkpoint_every=3, resume=True)
    assert np.isfinite(det.decision_function(X)).all()


# a checkpoint write SIGKILLed before and after each of its file operations: the directory always
# holds a loadable checkpoint (the previous or the new one), from which the run resumes exactly
KILL_HELPER = r"""
import os, signal, sys
import numpy as np
import ganad.training.checkpoint as ck
from ganad import GANomaly
d, kill_at = sys.argv[1], int(sys.argv[2])
X = np.random.RandomState(0).randn(300, 6).astype(np.float32)
count = [0]
def wrap(fn):
    def w(*a, **k):
        if os.path.exists(os.path.join(d, ck.MANIFEST)):  # count only once a first checkpoint exists
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return fn(*a, **k)
    return w
ck._write_atomic, ck._fsync_path, os.replace, os.fsync = wrap(ck._write_atomic), wrap(ck._fsync_path), wrap(os.replace), wrap(os.fsync)
GANomaly(epochs=2, random_state=0, batch_size=32).fit(X, checkpoint_dir=d, checkpoint_every=2)
"""


def test_sigkill_during_a_checkpoint_write_leaves_a_loadable_checkpoint(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the child: bit-identical needs the same thread count (GEMM blocking)
    try:
        seqs = _kill_during_writes(tmp_path, env)
    finally:
        torch.set_num_threads(threads)
    assert set(seqs) == {1, 2}  # killed both before and after the switch to the new checkpoint


def _kill_during_writes(tmp_path, env):
    ref = GANomaly(epochs=2, random_state=0, batch_size=32).fit(X).decision_function(X)
    seqs = []
    for k in range(1, 15):  # every file operation of a write (tensor file, manifest: write, fsync, replace, folder fsync)
        d = tmp_path / f"k{k}"
        r = subprocess.run([sys.executable, "-c", KILL_HELPER, str(d), str(k)], env=env, capture_output=True, timeout=300)
        assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
        man, _ = ck.load(d)  # never a damaged or half-written checkpoint
        seqs.append(man["seq"])
        assert len(list(d.glob("state-*.safetensors"))) in (1, 2)
        det = GANomaly(epochs=2, random_state=0, batch_size=32).fit(X, checkpoint_dir=d, checkpoint_every=2, resume=True)
        assert np.array_equal(det.decision_function(X), ref)
    return seqs


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "ganad.cli", "fit", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkilled_ganad_fit_resumes_to_the_same_model(tmp_path):
    """A real ``ganad fit`` process SIGKILLed at a random moment after its first checkpoint, then
    ``ganad fit --resume``: the same weights and scores as an uninterrupted run (2 trials here;
    benchmarks/bench_resume.py runs 10)."""
    Xb = np.random.RandomState(1).randn(1000, 8).astype(np.float32)
    np.save(tmp_path / "x.npy", Xb)
    common = ["--method", "ganomaly", "--epochs", "3", "--batch-size", "32", "-q", "--device", "cpu"]
    p = _cli(tmp_path / "x.npy", "-o", tmp_path / "ref", *common)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    ref = ganad.load(tmp_path / "ref")
    rng = random.Random(0)
    killed = 0
    for trial in range(2):
        d, out = tmp_path / f"ck{trial}", tmp_path / f"m{trial}"
        p = _cli(tmp_path / "x.npy", "-o", out, *common, "--checkpoint", d, "--checkpoint-every", "5")
        t0 = time.monotonic()
        while not (d / ck.MANIFEST).exists() and p.poll() is None and time.monotonic() - t0 < 300:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        p.send_signal(signal.SIGKILL)
        killed += p.wait(timeout=60) == -signal.SIGKILL
        q = _cli(tmp_path / "x.npy", "-o", out, *common, "--checkpoint", d, "--checkpoint-every", "5", "--resume", "--overwrite")  # a run killed after its save left the model
        assert q.wait(timeout=300) == 0, q.stderr.read()
        det = ganad.load(out)
        assert _same_weights(det, ref)
        assert np.array_equal(det.decision_function(Xb), ref.decision_function(Xb))
        assert det.threshold_ == ref.threshold_
    assert killed >= 1  # at least one trial really killed mid-training


# ---------------------------------------------------------------------------- divergence guard
class _NaNAt(GANomaly):
    """GANomaly whose step returns a NaN loss at the given global steps (a forced divergence)."""
    nan_at: tuple = ()

    def _stages(self, generator):
        stages = super()._stages(generator)
        st, orig, count = stages[0], stages[0].step, [0]

        def step(x, w):
            out = orig(x, w)
            count[0] += 1
            if count[0] in self.nan_at:
                out["g_loss"] = out["g_loss"] * float("nan")
            return out

        st.step = step
        return stages


def test_guard_rolls_back_once_then_stops_with_a_clear_error(tmp_path):
    _NaNAt.nan_at = (5,)
    det = _NaNAt(epochs=2, random_state=0, batch_size=32).fit(X)
    ev = det.selection_["divergence"]
    assert len(ev) == 1 and ev[0]["epoch"] == 1 and "non-finite loss (g_loss=nan)" in ev[0]["symptom"]
    assert np.isfinite(det.decision_function(X)).all()
    _NaNAt.nan_at = (5, 12)  # 9 steps per epoch: the second NaN comes after the roll-back, in the retried epoch
    with pytest.raises(TrainingDiverged, match=r"diverged in stage 'ganomaly' epoch 1 step \d+: non-finite loss \(g_loss=nan\), "
                                               r"after 1 roll-back\(s\)") as exc:
        _NaNAt(epochs=2, random_state=0, batch_size=32).fit(X)
    assert isinstance(exc.value, FloatingPointError) and "Fix: lower lr_g and lr_d" in str(exc.value)
    _NaNAt.nan_at = (5,)
    with pytest.raises(TrainingDiverged, match="no roll-back allowed"):
        _NaNAt(epochs=2, random_state=0, batch_size=32, divergence_retries=0).fit(X)
    with pytest.raises(FloatingPointError, match="became non-finite"):  # guard off: the epoch-end check of before
        _NaNAt(epochs=2, random_state=0, batch_size=32, divergence_guard=False).fit(X)


class _NaNFromState(GANomaly):
    """GANomaly whose step fails (NaN loss) whenever it starts from the weights it started from at
    global step ``at``: a failure that a retry from the same weights, batch and random state meets
    again, as an exploding gradient does (the lowered learning rate acts only after the step)."""
    at: int = 0

    def _stages(self, generator):
        stages = super()._stages(generator)
        st, orig, count, bad = stages[0], stages[0].step, [0], []
        E = self.nets_["E"]

        def step(x, w):
            count[0] += 1
            fp = float(sum(p.detach().double().sum() for p in E.parameters()))
            if count[0] == self.at:
                bad.append(fp)
            out = orig(x, w)
            if fp in bad:
                out["g_loss"] = out["g_loss"] * float("nan")
            return out

        st.step = step
        return stages


@pytest.mark.parametrize("at,every", [(10, None), (6, 5)])
def test_guard_rolls_back_past_a_state_that_no_good_step_followed(tmp_path, at, every):
    """A step that fails from the state it starts from fails again when retried from a snapshot taken
    just before it: the first step of an epoch (the epoch's start is the latest snapshot; 9 steps
    per epoch here), or the step after a checkpoint. The guard rolls back to the latest snapshot a
    good step followed (the previous epoch's start, the previous checkpoint) and the run recovers;
    it used to retry the same failing step until its roll-backs were spent."""
    _NaNFromState.at = at
    kw = {} if every is None else {"checkpoint_dir": tmp_path / "ck", "checkpoint_every": every}
    det = _NaNFromState(epochs=3, random_state=0, batch_size=32, divergence_retries=2).fit(X, **kw)
    ev = det.selection_["divergence"]
    assert len(ev) == 1 and "non-finite loss (g_loss=nan)" in ev[0]["symptom"]
    assert np.isfinite(det.decision_function(X)).all()


def test_guard_spends_its_roll_backs_when_every_step_fails(tmp_path):
    """From step 6 on every step fails, whatever its state: the roll-backs (each to a state no good
    step followed, after the first) are counted and spent, and training stops with the clear error;
    rolling back past the last roll-back's own state would reset the guard's count (kept in the
    snapshots) and retry forever."""
    _NaNAt.nan_at = tuple(range(6, 400))
    with pytest.raises(TrainingDiverged, match=r"after 3 roll-back\(s\)"):
        _NaNAt(epochs=3, random_state=0, batch_size=32, divergence_retries=3).fit(X, checkpoint_dir=tmp_path / "ck", checkpoint_every=5)


def test_guard_lowers_the_learning_rate_and_changes_nothing_when_quiet():
    a = GANomaly(epochs=2, random_state=0, batch_size=32).fit(X)
    b = GANomaly(epochs=2, random_state=0, batch_size=32, divergence_guard=False).fit(X)
    assert _same_weights(a, b) and "divergence" not in a.selection_
    g = gd.DivergenceGuard(lr_factor=0.5)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))], lr=1e-3)

    class S:
        name, optimizers, collapse = "s", [opt], None
    g.record(S, 0, "x")
    assert opt.param_groups[0]["lr"] == 5e-4 and g.used == 1


def _guard_steps(g, stage, p, grads, d_losses=None):
    for i, v in enumerate(grads):
        p.grad = torch.full_like(p, v)
        stage.optimizers[0].step()
        sym = g.check(stage, {"d_loss": torch.tensor(d_losses[i] if d_losses else 1.0)})
        if sym:
            return i, sym
    return None, None


def test_guard_detects_exploding_gradients_and_a_collapsed_discriminator():
    p = torch.nn.Parameter(torch.zeros(100))
    opt = torch.optim.Adam([p], lr=1e-3)

    class S:
        name, optimizers, collapse = "gan", [opt], "d_loss"
    g = gd.DivergenceGuard()
    g.attach(0, S)
    # norm = |v| * 10: a spike 1e3 x the median and above 1e4 is caught at its own step
    i, sym = _guard_steps(g, S, p, [1.0] * 30 + [5e3])
    assert i == 30 and "exploding gradient norm 5e+04" in sym and "median of its last 30 steps 10" in sym
    g = gd.DivergenceGuard()
    g.attach(0, S)
    i, sym = _guard_steps(g, S, p, [1e4] * 40)  # large all along: not a spike
    assert sym is None
    i, sym = _guard_steps(g, S, p, [float("inf")])
    assert "non-finite gradient (optimiser gan/0)" in sym
    g = gd.DivergenceGuard()
    g.attach(0, S)
    i, sym = _guard_steps(g, S, p, [1.0] * 600, [1e-5] * 600)
    assert i == gd.COLLAPSE_STEPS - 1 and "discriminator collapse" in sym
    g = gd.DivergenceGuard()
    g.attach(0, S)
    i, sym = _guard_steps(g, S, p, [1.0] * 600, ([1e-5] * 499 + [0.1]) * 2)  # interrupted: no collapse
    assert sym is None
    g.detach()


def test_forced_divergence_never_saves_a_model_that_scores_nan(tmp_path):
    """Learning rates x1000 and x1e8: a recovered run with finite scores or a clear error."""
    outcomes = []
    for factor, cls in ((1e3, GANomaly), (1e8, AnoGAN)):
        try:
            det = cls(epochs=3, random_state=0, lr_g=2e-4 * factor, lr_d=2e-4 * factor, search_n_max=20).fit(X)
        except TrainingDiverged as exc:
            assert "diverged in stage" in str(exc) and "Fix:" in str(exc)
            outcomes.append("error")
            continue
        assert np.isfinite(det.decision_function(X)).all()
        det.save(tmp_path / f"{cls.__name__}{factor:g}")
        assert np.isfinite(ganad.load(tmp_path / f"{cls.__name__}{factor:g}").decision_function(X)).all()
        outcomes.append("recovered")
    assert "error" in outcomes  # x1e8 cannot be rescued by one 10x lower learning rate


def test_fused_adam_steps_refresh_the_conv1d_weight_cache():
    """The fused Adam kernel does not bump the parameters' version counters, on which the conv1d
    layers' matmul-weight cache is keyed: no-grad / frozen forwards (G(z) for the discriminator's
    fakes, D under ``frozen``) kept the weights of the time the cache was built."""
    from ganad.nets.conv1d import Up1d
    from ganad.training.adversarial import make_optimizer
    torch.manual_seed(0)
    layer, x = Up1d(4, 2, bias=False), torch.randn(3, 5, 4)
    opt = make_optimizer(layer.parameters(), 0.1, (0.5, 0.999))
    with torch.no_grad():
        before = layer(x)
    layer(x).sum().backward()
    opt.step()
    with torch.no_grad():
        after = layer(x)
        layer._cache_key = None
        fresh = layer(x)
    assert not torch.equal(before, after) and torch.equal(after, fresh)


def test_resume_is_bit_identical_on_conv1d_beats(tmp_path, monkeypatch):
    """Beat-shaped (conv1d) input: the resumed run's restore refreshed the weight caches that the
    uninterrupted run kept stale, and the two ended with other weights."""
    Xb = (np.sin(np.linspace(0, 6, 64))[None, None, :] + 0.1 * np.random.RandomState(1).randn(80, 1, 64)).astype(np.float32)
    kw = {"epochs": 2, "width": 16, "latent_dim": 4, "batch_size": 32, "random_state": 0}
    ref = GANomaly(**kw).fit(Xb)
    restore = _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        GANomaly(**kw).fit(Xb, checkpoint_dir=tmp_path / "c", checkpoint_every=1)
    restore()
    det = GANomaly(**kw).fit(Xb, checkpoint_dir=tmp_path / "c", checkpoint_every=1, resume=True)
    assert _same_weights(det, ref)
    assert np.array_equal(det.decision_function(Xb), ref.decision_function(Xb))


def test_a_run_seeded_by_a_random_state_object_resumes(tmp_path, monkeypatch):
    """random_state=np.random.RandomState(0) was fingerprinted by its repr, which names the object's
    address: every resume was refused as 'written with other parameters'."""
    kw = {"epochs": 2, "width": 16, "latent_dim": 4, "batch_size": 32}
    restore = _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        GANomaly(**kw, random_state=np.random.RandomState(0)).fit(X[:120], checkpoint_dir=tmp_path / "c", checkpoint_every=2)
    restore()
    det = GANomaly(**kw, random_state=np.random.RandomState(0)).fit(X[:120], checkpoint_dir=tmp_path / "c", checkpoint_every=2, resume=True)
    ref = GANomaly(**kw, random_state=np.random.RandomState(0)).fit(X[:120])
    assert det.seed_ == ref.seed_ and _same_weights(det, ref)



def test_a_run_with_a_prior_object_resumes(tmp_path, monkeypatch):
    """prior=TruncatedNormalPrior(1.5) (make_prior takes a Prior) was fingerprinted by its repr, which
    names the object's address: every resume was refused as 'written with other parameters'."""
    from ganad.training.priors import TruncatedNormalPrior
    kw = {"epochs": 2, "width": 16, "latent_dim": 4, "batch_size": 32, "random_state": 0}
    restore = _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        GANomaly(**kw, prior=TruncatedNormalPrior(1.5)).fit(X[:120], checkpoint_dir=tmp_path / "c", checkpoint_every=2)
    restore()
    with pytest.raises(InputError, match="other parameters: prior="):  # another bound is still refused
        GANomaly(**kw, prior=TruncatedNormalPrior(2.0)).fit(X[:120], checkpoint_dir=tmp_path / "c", resume=True)
    det = GANomaly(**kw, prior=TruncatedNormalPrior(1.5)).fit(X[:120], checkpoint_dir=tmp_path / "c", checkpoint_every=2, resume=True)
    ref = GANomaly(**kw, prior=TruncatedNormalPrior(1.5)).fit(X[:120])
    assert det.checkpoint_["resumed"] and _same_weights(det, ref)


@pytest.mark.parametrize("seed", [-1, 2**70])
def test_a_hand_edited_seed_out_of_range_is_refused_naming_the_file(tmp_path, mid_epoch_checkpoint, seed):
    """extra.seed outside fit's [0, 2**31) used to fail as a bare ValueError from torch.manual_seed
    ('Seed must be between 0 and 2**32 - 1', 'Overflow when unpacking long long') naming no file."""
    import json
    import shutil
    d = tmp_path / "c"
    shutil.copytree(mid_epoch_checkpoint, d)
    man = json.loads((d / ck.MANIFEST).read_text())
    man["extra"]["seed"] = seed
    (d / ck.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(ganad.exceptions.ModelFileError, match=f"checkpoint {d}: checkpoint.json is damaged: its extra entry"):
        GANomaly(epochs=2, batch_size=64, random_state=0).fit(X, checkpoint_dir=d, checkpoint_every=3, resume=True)

def test_a_refit_without_checkpoints_drops_the_previous_checkpoint_summary(tmp_path):
    """checkpoint_ of an earlier fit survived a refit of the same detector without checkpoint_dir,
    describing checkpoints (written, resumed) that the new model's training never wrote."""
    det = GANomaly(epochs=1, random_state=0, batch_size=64).fit(X, checkpoint_dir=tmp_path / "c", checkpoint_every=2)
    assert det.checkpoint_["written"] >= 1
    det.fit(X)
    assert not hasattr(det, "checkpoint_")


def test_a_checkpoint_directory_in_use_by_another_fit_is_refused(tmp_path, monkeypatch):
    """Two fits on one checkpoint directory (a resume started twice) would delete each other's tensor
    files: the second is refused while the first trains; the lock goes with the fit that held it."""
    d = tmp_path / "c"
    GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=d, checkpoint_every=2)
    other = ck.DirectoryLock(d)
    other.acquire()  # another fit, training now
    try:
        with pytest.raises(InputError, match=r"checkpoint_dir .*is in use: another fit \(pid \d+ on .*\) is writing checkpoints there"):
            GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=d, resume=True)
    finally:
        other.release()
    # a fit that fails (killed after its first checkpoint) lets go of the directory: the resume runs
    real = ck.Checkpointer.save
    def save_then_lock(self, snap):
        real(self, snap)
        raise KeyboardInterrupt  # killed after its first checkpoint
    monkeypatch.setattr(ck.Checkpointer, "save", save_then_lock)
    with pytest.raises(KeyboardInterrupt):
        GANomaly(epochs=2, random_state=0).fit(X, checkpoint_dir=tmp_path / "k", checkpoint_every=1)
    monkeypatch.setattr(ck.Checkpointer, "save", real)
    GANomaly(epochs=2, random_state=0).fit(X, checkpoint_dir=tmp_path / "k", resume=True)  # not left locked


def test_resume_names_a_default_width_that_changed_since_the_checkpoint(tmp_path, monkeypatch):
    """A checkpoint records the networks it trains (family, width, depth as resolved). A default width
    that changed between writing and resuming (the DCGAN width went 32 -> 8) is named with the fix; it
    used to surface as optimiser state "of another shape", blamed on a hand edit. A checkpoint written
    before the record is compared with the defaults of its time: images refused (32 then), tables resume."""
    import json

    import ganad.detectors.base as base
    imgs = np.random.RandomState(0).rand(64, 1, 16, 16).astype(np.float32)
    orig = base.default_width
    monkeypatch.setattr(base, "default_width", lambda f: 32 if f == "dcgan" else orig(f))
    kw = dict(epochs=2, latent_dim=4, batch_size=16, random_state=0)
    GANomaly(**kw).fit(imgs, checkpoint_dir=tmp_path / "img", checkpoint_every=1)
    monkeypatch.setattr(base, "default_width", orig)
    with pytest.raises(InputError, match=r"the networks' width 32 then, 8 now \(pass width=32 to resume it; CLI: --set width=32\)"):
        GANomaly(**kw).fit(imgs, checkpoint_dir=tmp_path / "img", resume=True)
    det = GANomaly(width=32, **kw).fit(imgs, checkpoint_dir=tmp_path / "img", resume=True)  # the fix the message names
    assert det.checkpoint_["resumed"] and det._width() == 32
    with pytest.raises(InputError, match=r"width=16 then|width 32 then, 16 now"):  # a real change of width is still refused
        GANomaly(width=16, **kw).fit(imgs, checkpoint_dir=tmp_path / "img", resume=True)

    for name, data in (("img", imgs), ("tab", X)):  # as written before checkpoints recorded the networks
        d = tmp_path / name
        if name == "tab":
            GANomaly(**kw).fit(data, checkpoint_dir=d, checkpoint_every=4)
        man = json.loads((d / "checkpoint.json").read_text())
        for k in ("family", "width", "depth"):
            man["fingerprint"]["extra"].pop(k)
        (d / "checkpoint.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match=r"width 32 then, 8 now"):
        GANomaly(**kw).fit(imgs, checkpoint_dir=tmp_path / "img", resume=True)
    assert GANomaly(**kw).fit(X, checkpoint_dir=tmp_path / "tab", resume=True).checkpoint_["resumed"]


def test_a_file_system_without_locks_trains_with_a_warning_not_a_false_in_use(tmp_path, monkeypatch):
    """Portability audit (twenty-fifth session): any OSError from flock was read as 'another fit is
    writing checkpoints there'; NFS / CIFS / FUSE mounts answer ENOLCK or EOPNOTSUPP when they cannot lock
    at all, and a checkpointed fit was refused with no other fit in sight."""
    import errno
    import fcntl
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(RuntimeWarning, match=r"cannot be locked \(No locks available\)"):
        det = GANomaly(epochs=1, random_state=0).fit(X, checkpoint_dir=tmp_path / "c", checkpoint_every=2)
    assert det.checkpoint_["written"] >= 1


@pytest.mark.parametrize("flags,named", [
    (["--window", "16", "--resume"], "--resume: not supported in series mode (--window)"),
    (["--window", "16", "--checkpoint-every", "5"], "--checkpoint-every: not supported in series mode (--window)"),
    (["--window", "16", "--checkpoint", "CK", "--resume"], "--checkpoint, --resume: not supported in series mode (--window)"),
    (["--view", "a=X", "--view", "b=X", "--resume"], "--view: does not combine with --resume"),
])
def test_checkpoint_flags_where_checkpoints_are_not_supported_are_refused_as_such(tmp_path, flags, named):
    """`ganad fit s.npy --window 16 --resume` (or --view ... --resume) said "--resume: needs --checkpoint DIR",
    and the --checkpoint DIR it asked for was refused next: series mode and multi-view fits take no checkpoints."""
    from typer.testing import CliRunner

    from ganad.cli import app
    np.save(tmp_path / "x.npy", X)
    args = [a.replace("CK", str(tmp_path / "ck")).replace("=X", f"={tmp_path / 'x.npy'}") for a in flags]
    data = [] if "--view" in flags else [str(tmp_path / "x.npy")]
    r = CliRunner().invoke(app, ["fit", *data, "-o", str(tmp_path / "m"), "--epochs", "1", "-q", *args])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and named in out and "needs --checkpoint DIR" not in out, r.output
    assert not (tmp_path / "m").exists() and not (tmp_path / "ck").exists()


def test_a_hand_edited_key_of_the_best_epochs_weights_is_refused_naming_the_entry(tmp_path):
    """A key of selector.best's weights edited into a list (read back as a tuple) raised TypeError from
    sorting it among the networks' names, instead of the clear error naming the file and the entry."""
    import json
    d = tmp_path / "c"
    GANomaly(epochs=1, batch_size=64, random_state=0).fit(X, checkpoint_dir=d)
    man = json.loads((d / ck.MANIFEST).read_text())
    best = man["state"]["selector"]["best"]
    assert best is not None
    best[2]["__dict__"][0][0] = ["x"]  # (stored as a list: [criterion, epoch, weights])
    (d / ck.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(ganad.exceptions.ModelFileError, match=r"selector.best\[2\] does not hold the networks' weights"):
        GANomaly(epochs=1, batch_size=64, random_state=0).fit(X, checkpoint_dir=d, resume=True)


@pytest.mark.parametrize("shape,shown", [(300, "shape 300 then"), (None, r"shape \(\) then"), ("x", "shape x then")])
def test_a_hand_edited_data_shape_in_the_fingerprint_is_refused_as_other_data(tmp_path, shape, shown):
    """fingerprint.data.shape edited into a number raised TypeError ('int' object is not iterable) while
    the refusal message was being written."""
    import json
    d = tmp_path / "c"
    GANomaly(epochs=1, batch_size=64, random_state=0).fit(X, checkpoint_dir=d)
    man = json.loads((d / ck.MANIFEST).read_text())
    man["fingerprint"]["data"]["shape"] = shape
    (d / ck.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(InputError, match=f"other training data: {shown}, \\(300, 6\\) now"):
        GANomaly(epochs=1, batch_size=64, random_state=0).fit(X, checkpoint_dir=d, resume=True)


def test_the_ensemble_refusal_names_the_commands_options(tmp_path):
    """`ganad fit --set n_members=2 --checkpoint DIR` was refused as "checkpoint_dir: is not supported ...
    (n_members=1, random_state per member)": the API's names, which the command does not take."""
    from typer.testing import CliRunner

    from ganad.cli import app
    np.save(tmp_path / "x.npy", X)
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m"), "--epochs", "1", "-q",
                                 "--set", "n_members=2", "--checkpoint", str(tmp_path / "ck")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "--checkpoint: is not supported with an ensemble (n_members=2)" in out, r.output
    assert "--set n_members=1" in out and "checkpoint_dir" not in out and "random_state" not in out
    assert not (tmp_path / "m").exists() and not (tmp_path / "ck").exists()


def test_a_checkpoint_directory_that_cannot_be_written_is_refused_naming_it(tmp_path, monkeypatch):
    """An existing checkpoint directory this process cannot write (a read-only mount, other permissions)
    raised a raw PermissionError from opening its lock file, where one that cannot be created is refused
    naming the directory and the fix."""
    import builtins
    d = tmp_path / "c"
    GANomaly(epochs=1, batch_size=64, random_state=0).fit(X, checkpoint_dir=d)

    def read_only(path, *a, **k):
        if str(path) == str(d / ck.LOCK):
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, *a, **k)
    monkeypatch.setattr(ck, "open", read_only, raising=False)  # (chmod does not stop root, who runs some CI)
    with pytest.raises(InputError, match=rf"checkpoint_dir {d}: cannot be written \(Permission denied\).*Fix: pass a writable directory"):
        GANomaly(epochs=1, batch_size=64, random_state=0).fit(X, checkpoint_dir=d, resume=True)


@pytest.mark.parametrize("resume", [False, True])
def test_a_checkpoint_json_that_is_a_directory_is_refused_before_training(tmp_path, resume):
    """checkpoint.json there as a directory: resumed, it read as "no checkpoint to resume from" (whose fix,
    training without --resume, then failed); trained afresh, the first checkpoint write raised
    IsADirectoryError after the training that came before it."""
    d = tmp_path / "c"
    (d / ck.MANIFEST).mkdir(parents=True)
    with pytest.raises(ganad.exceptions.ModelFileError, match=rf"checkpoint {d}: its checkpoint.json is not a regular file.*Fix: delete"):
        GANomaly(epochs=1, batch_size=64, random_state=0).fit(X, checkpoint_dir=d, checkpoint_every=1, resume=resume)


def test_a_checkpoint_older_than_gp_every_names_the_value_that_resumes_it(tmp_path):
    """A checkpoint written before gp_every existed ran the penalty on every critic step: resumed with
    f-AnoGAN's default of today (gp_every=2) it is refused naming gp_every=1 in both forms, and resumed
    with gp_every=1 it continues; GANomaly (default 1) resumes it as it is."""
    import json
    for cls, name in ((FAnoGAN, "f"), (GANomaly, "g")):
        d = tmp_path / name
        kw = dict(epochs=2, batch_size=32, random_state=0, **({"gp_every": 1, "encoder_epochs": 1} if cls is FAnoGAN else {}))
        cls(**kw).fit(X, checkpoint_dir=d, checkpoint_every=2)
        man = json.loads((d / "checkpoint.json").read_text())
        assert man["fingerprint"]["params"].pop("gp_every") == 1
        (d / "checkpoint.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match=r"gp_every=1 then, 2 now.*pass the earlier values \(gp_every=1; CLI: --set gp_every=1\)"):
        FAnoGAN(epochs=2, batch_size=32, random_state=0, encoder_epochs=1).fit(X, checkpoint_dir=tmp_path / "f", resume=True)
    det = FAnoGAN(epochs=2, batch_size=32, random_state=0, encoder_epochs=1, gp_every=1).fit(X, checkpoint_dir=tmp_path / "f", resume=True)
    assert det.checkpoint_["resumed"]
    assert GANomaly(epochs=2, batch_size=32, random_state=0).fit(X, checkpoint_dir=tmp_path / "g", resume=True).checkpoint_["resumed"]
