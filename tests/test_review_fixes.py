"""Method fixes found on review (issue 15, item 7), one test or more each."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer

import ganad
from ganad import ALAD, VAEGAN, AnoGAN, BiGAN, FAnoGAN, GANomaly, TadGAN
from ganad.detectors.encoder_base import adv_losses
from ganad.training.objectives import OBJECTIVES


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def benign():
    X, y = load_breast_cancer(return_X_y=True)
    return X[y == 1][:120].astype(np.float32)


# ---------------------------------------------------------------- robust training weights every data term
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_adv_losses_weight_real_and_data_fake_terms(objective):
    real = torch.randn(6, requires_grad=True)
    fake = torch.randn(6, requires_grad=True)
    w = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    for side in (0, 1):  # discriminator loss, generator + encoder loss
        real.grad = fake.grad = None
        adv_losses(objective, real, fake, w, w)[side].backward()
        assert torch.all(real.grad[w == 0] == 0) and torch.all(fake.grad[w == 0] == 0)
        assert torch.any(real.grad[w == 1] != 0) and torch.any(fake.grad[w == 1] != 0)
    real.grad = fake.grad = None
    adv_losses(objective, real, fake, w)[1].backward()  # fakes from the prior: not weighted
    assert torch.all(fake.grad != 0) and torch.all(real.grad[w == 0] == 0)


@pytest.mark.parametrize("cls", [BiGAN, ALAD, GANomaly, VAEGAN, FAnoGAN, AnoGAN, TadGAN])
def test_weight_zero_samples_move_no_network(cls, benign):
    """Three training steps of every stage, networks in eval mode (no batch statistics, no dropout):
    replacing the samples of weight 0 by anything else must leave every updated weight unchanged."""
    kw = dict(epochs=1, width=8, latent_dim=3, net="mlp", objective="bce", device="cpu", random_state=0)
    if cls is AnoGAN:
        kw["search_n_max"] = 2
    det = cls(**kw).fit(benign)
    init = {k: v.clone() for k, v in det.nets_.state_dict().items()}
    x = torch.from_numpy(det.scaler_.transform(benign[:16]))
    w = torch.ones(16)
    w[::3] = 0.0
    other = x.clone()
    other[w == 0] = torch.from_numpy(np.random.RandomState(1).normal(0, 2, (int((w == 0).sum()), x.shape[1])).astype(np.float32))

    def step(xb):
        det.nets_.load_state_dict(init)
        det.nets_.eval()
        for p in det.nets_.parameters():
            p.requires_grad_(True)
        for stage in det._stages(torch.Generator().manual_seed(0)):
            for _ in range(3):  # Adam's first step moves by lr·sign(g): later steps see magnitudes
                stage.step(xb, w)
        return {k: v.clone() for k, v in det.nets_.state_dict().items()}

    a, b = step(x), step(other)
    moved = [k for k in a if not torch.equal(a[k], init[k])]
    assert moved  # the step did train something
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7, msg=lambda m: f"{cls.__name__} {k}: {m}")


def test_frozen_copies_leave_spectral_norm_training_nets_usable(benign):
    """Baking spectral norm into a scoring copy must not strip the weight from the training nets
    (torch removes the property from the class, which a deep copy shares)."""
    det = ALAD(epochs=1, width=8, latent_dim=3, net="mlp", device="cpu", random_state=0).fit(benign)
    assert det.spectral_norm
    x = torch.from_numpy(det.scaler_.transform(benign[:4]))
    z = torch.zeros(4, 3)
    det.nets_.eval()
    with torch.no_grad():
        out, _ = det.nets_["Dxz"](x, z)  # raised AttributeError: no attribute 'weight' before
        ref, _ = det._inference_net("Dxz")(x, z)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- compose='standardised' counts a twin once
def test_composable_drops_raw_twins_only():
    from ganad.scoring.composition import composable
    assert composable(["residual", "latent_raw", "latent", "feature"]) == ["feature", "latent", "residual"]
    assert composable(["latent_raw", "residual"]) == ["latent_raw", "residual"]  # no normalised twin: kept


def test_ganomaly_default_composition_counts_latent_once(benign):
    from ganad.scoring.composition import RobustStandardised
    det = GANomaly(epochs=2, width=8, latent_dim=3, device="cpu", random_state=0).fit(benign[:80])
    comps = det.score_components(benign[80:]).components
    assert {"latent", "latent_raw"} <= set(comps)
    det.calibrate(benign[80:], compose="standardised")
    names = det.composer_.names
    assert "latent" in names and "latent_raw" not in names
    assert det.composer_.weights["latent"] == pytest.approx(1.0 / len(names))
    ref = RobustStandardised.fit(comps, sorted(set(comps) - {"latent_raw"}))
    np.testing.assert_allclose(det.decision_function(benign[80:]), ref(comps), rtol=1e-9)
    det.calibrate(benign[80:], compose="standardised", weights={"latent_raw": 1.0, "residual": 1.0})  # by name: allowed
    assert det.composer_.names == ["latent_raw", "residual"]


# ---------------------------------------------------------------- λ weights the sums, as in the papers
def test_bigan_lambda_weights_the_sums_as_stated(benign):
    lam = 0.1
    det = BiGAN(epochs=1, width=8, latent_dim=3, lam=lam, device="cpu", random_state=0, knn_weight=0).fit(benign[:80])  # own score alone
    x = torch.from_numpy(det.scaler_.transform(benign[80:]))
    with torch.no_grad():  # the paper's score from the networks, independently of the component code
        z = det._inference_net("E")(x)
        x_hat = det._inference_net("G")(z)
        _, f = det._inference_net("D")(x, z)
        _, f_hat = det._inference_net("D")(x_hat, z)
    r_sum = (x - x_hat).abs().flatten(1).sum(1).double()
    f_sum = (f - f_hat).abs().flatten(1).sum(1).double()
    n_x, n_f = x[0].numel(), f[0].numel()
    assert n_x == 30 and n_f != n_x
    expected = ((1 - lam) * r_sum + lam * f_sum) / ((1 - lam) * n_x + lam * n_f)
    np.testing.assert_allclose(det.decision_function(benign[80:]), expected.numpy(), rtol=1e-4)
    w = det.composer_.weights
    assert w["feature"] / w["residual"] == pytest.approx(lam * n_f / ((1 - lam) * n_x))


def test_anogan_lambda_weights_the_sums_as_stated(benign):
    det = AnoGAN(epochs=1, width=8, latent_dim=3, lam=0.25, search_n_max=5, device="cpu", random_state=0,
                 knn_weight=0).fit(benign[:60])  # the own score alone
    r = det.score_components(benign[60:70])
    n_x, n_f = 30, det._feature_size()
    with torch.no_grad():
        _, f = det._inference_net("D")(torch.zeros(1, 30))
    assert n_f == f.shape[1]
    a = (0.75 * n_x * r.components["residual"] + 0.25 * n_f * r.components["feature"]) / (0.75 * n_x + 0.25 * n_f)
    np.testing.assert_allclose(r.scores, a, rtol=1e-6)


class _ToyG(torch.nn.Module):  # G(z) = z
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(2))

    def forward(self, z):
        return self.lin(z)


class _ToyD(torch.nn.Module):  # one feature: 10·x₁
    def forward(self, x):
        return x.sum(1), 10.0 * x[:, 1:2]


def test_search_loss_weights_sums_and_restarts_keep_the_lowest_loss():
    from ganad.inversion.starts import hashed_uniform, row_seeds
    from ganad.inversion.latent_search import LatentSearch
    from ganad.training.priors import make_prior
    G, D, prior = _ToyG(), _ToyD(), make_prior("normal")
    x = torch.from_numpy(np.random.RandomState(0).normal(0, 1, (200, 2)).astype(np.float32))
    lam = 0.3
    s = LatentSearch(distance="l1", n_max=0, restarts=5, feature_weight=lam)
    # the loss: (1 − λ)·Σ|x − x̂| + λ·Σ|f − f̂| over n_x = 2 elements and n_f = 1 feature, / (1.4 + 0.3)
    z = torch.randn(200, 2)
    loss, dist = s._loss(G, D, z, x)
    ref = ((1 - lam) * (x - z).abs().sum(1) + lam * 10 * (x[:, 1] - z[:, 1]).abs()) / ((1 - lam) * 2 + lam * 1)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(dist, (x - z).abs().mean(1))
    # n_max = 0: the result is the best of the 5 starting codes, by the search loss
    r = s.run(G, x, prior, latent_dim=2, D=D, seed=3)
    starts = prior.project(prior.from_uniform(hashed_uniform(row_seeds(x, 3), 5, 2)))  # (5, n, 2)
    losses = torch.stack([s._loss(G, D, starts[k], x)[0] for k in range(5)])
    dists = torch.stack([s._loss(G, D, starts[k], x)[1] for k in range(5)])
    best = losses.argmin(0)
    torch.testing.assert_close(r.z, starts[best, torch.arange(200)])
    assert (best != dists.argmin(0)).any()  # the distance alone would have kept other restarts


def test_schlegl_search_setting(benign):
    from ganad.exceptions import InputError
    det = AnoGAN(epochs=1, width=8, latent_dim=3, search="schlegl", search_n_max=7, search_eps=10.0,
                 search_distance="l2", device="cpu", random_state=0).fit(benign[:60])
    s = det.latent_search()
    assert (s.distance, s.eps, s.feature_weight, s.n_max) == ("l1", 0.0, det.lam, 7)
    r = det.score_components(benign[60:70])
    assert (r.extra["iterations"] == 7).all()  # no early stop, even with search_eps=10 given
    np.testing.assert_allclose(r.extra["search_distance"], r.components["residual"], rtol=1e-5)  # L1 mean
    with pytest.raises(InputError, match="search"):
        AnoGAN(epochs=1, search="schlegel").fit(benign[:20])


# ---------------------------------------------------------------- the CLI keeps a method's own defaults
def test_cli_fit_keeps_fanogan_objective_unless_given(tmp_path, benign):
    from typer.testing import CliRunner

    import ganad
    from ganad.cli import app
    np.save(tmp_path / "train.npy", benign[:60])
    runner = CliRunner()
    r = runner.invoke(app, ["fit", str(tmp_path / "train.npy"), "-o", str(tmp_path / "m"), "--method", "fanogan",
                            "--epochs", "1", "--device", "cpu", "-q"])
    assert r.exit_code == 0, r.output
    det = ganad.load(tmp_path / "m")
    assert det.objective == "wgan-gp" and det.epochs == 1 and det.batch_size == "auto"  # the method's, and the given one
    r = runner.invoke(app, ["fit", str(tmp_path / "train.npy"), "-o", str(tmp_path / "h"), "--method", "fanogan",
                            "--epochs", "1", "--objective", "hinge", "--device", "cpu", "-q"])
    assert r.exit_code == 0, r.output
    assert ganad.load(tmp_path / "h").objective == "hinge"


# ------------------------------------------------------------------ model files someone else produced (twenty-fourth session audit)
def _edit_json(path, fn):
    import json
    cfg = json.loads(path.read_text())
    fn(cfg)
    path.write_text(json.dumps(cfg))


@pytest.mark.parametrize("stats", [[[0.0, "inf"], [0.0, "inf"]], [["1", "2"], ["1", "2"]], [[True, True], [True, True]]])
def test_ensemble_member_statistics_must_be_numbers(tmp_path, stats):
    """member_stats of ["0", "inf"] loaded (float("inf") > 0) and made every score 0: nothing ever flagged."""
    from ganad.exceptions import ModelFileError
    X = np.random.RandomState(0).randn(120, 4)
    ganad.GANomaly(epochs=1, width=8, latent_dim=2, n_members=2, random_state=0).fit(X).save(tmp_path / "m")
    _edit_json(tmp_path / "m" / "config.json", lambda c: c["state"].__setitem__("member_stats", stats))
    with pytest.raises(ModelFileError, match="member statistics are malformed"):
        ganad.load(tmp_path / "m")


@pytest.mark.parametrize("key,value", [("channel_baseline", ["nan", "nan"]), ("channel_baseline", [0, 1]), ("channel_baseline", [-1, 1]),
                                       ("window", 16.9), ("stride", "4"), ("n_channels", 2.5)])
def test_series_model_numbers_are_checked_at_load(tmp_path, key, value):
    """A NaN channel baseline made every contribution NaN (0: infinite, negative: negative); window 16.9
    loaded as 16 and "4" as 4."""
    from ganad.exceptions import ModelFileError
    from ganad.series import SeriesDetector
    X = np.random.RandomState(0).randn(600, 2)
    SeriesDetector("ganomaly", window=16, stride=4, detector_params={"epochs": 1, "verbose": False}).fit(X).save(tmp_path / "s")
    _edit_json(tmp_path / "s" / "series.json", lambda c: c["state"].__setitem__(key, value))
    with pytest.raises(ModelFileError, match=key):
        ganad.load(tmp_path / "s")


def test_weights_of_a_kind_ganad_does_not_write_are_refused(tmp_path):
    """Bool weights loaded into the float networks without an error and flagged every row; bool knn
    tensors failed at scoring with a torch traceback (the digest is optional: old files have none)."""
    import torch
    from safetensors.torch import load_file, save_file
    from ganad.exceptions import ModelFileError
    X = np.random.RandomState(0).randn(120, 4)
    ganad.GANomaly(epochs=1, width=8, latent_dim=2, random_state=0).fit(X).save(tmp_path / "m")
    _edit_json(tmp_path / "m" / "config.json", lambda c: c.pop("weights_sha256"))
    t = load_file(str(tmp_path / "m" / "model.safetensors"))
    for kind in ("G.", "knn_bank_"):
        u = {k: (v.bool() if k.startswith(kind) else v) for k, v in t.items()}
        save_file(u, str(tmp_path / "m" / "model.safetensors"))
        with pytest.raises(ModelFileError, match="dtype BOOL"):
            ganad.load(tmp_path / "m")
    save_file({k: (v.double() if k.startswith("G.") and v.is_floating_point() else v) for k, v in t.items()}, str(tmp_path / "m" / "model.safetensors"))
    assert np.isfinite(ganad.load(tmp_path / "m").decision_function(X[:3])).all()  # float64 weights still load
    assert torch.get_default_dtype() == torch.float32


def test_deep_json_in_the_other_model_files_is_a_clear_error(tmp_path):
    """series.json, multiview.json and tuning.json nested 100k deep raised a RecursionError traceback."""
    from ganad.exceptions import ModelFileError
    from ganad.series import SeriesDetector
    X = np.random.RandomState(0).randn(600, 2)
    SeriesDetector("ganomaly", window=16, stride=4, detector_params={"epochs": 1, "verbose": False}).fit(X).save(tmp_path / "s")
    (tmp_path / "s" / "series.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ModelFileError, match="nested too deeply"):
        ganad.load(tmp_path / "s")
    ganad.GANomaly(epochs=1, width=8, latent_dim=2, random_state=0).fit(X).save(tmp_path / "m")
    (tmp_path / "m" / "tuning.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ModelFileError, match="tuning.json.*RecursionError"):
        ganad.load(tmp_path / "m")


def test_special_files_in_a_model_are_refused_not_read_for_ever(tmp_path):
    """A multi-view view whose weights link to /dev/zero was hashed for ever; the server copied it until
    the disk was full; a checkpoint's tensor file that is a pipe blocked a resume."""
    import os
    from ganad.exceptions import ModelFileError
    from ganad.multiview import MultiViewDetector
    from ganad.serve.registry import _copy_regular
    X = np.random.RandomState(0).randn(120, 3)
    MultiViewDetector({"a": "ganomaly"}, detector_params=dict(epochs=1, width=8, latent_dim=2)).fit({"a": X}).save(tmp_path / "mv")
    w = tmp_path / "mv" / "views" / "a" / "model.safetensors"
    w.unlink()
    w.symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match="not a regular file"):
        ganad.load(tmp_path / "mv")
    with pytest.raises(OSError, match="not a regular file"):
        _copy_regular(str(w), str(tmp_path / "copy"))
    assert not (tmp_path / "copy").exists()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        _copy_regular(str(tmp_path / "fifo"), str(tmp_path / "copy"))


def test_a_save_that_fails_leaves_no_new_folders_and_wrapper_models_follow_the_umask(tmp_path, monkeypatch):
    import os
    import stat
    from ganad.series import SeriesDetector
    X = np.random.RandomState(0).randn(600, 2)
    sd = SeriesDetector("ganomaly", window=16, stride=4, detector_params={"epochs": 1, "verbose": False}).fit(X)
    old = os.umask(0o022)
    try:
        sd.save(tmp_path / "s")
        assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o755  # mkdtemp's 0700 before
    finally:
        os.umask(old)
    import ganad.io

    def fail(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ganad.io, "save_file", fail)
    with pytest.raises(OSError, match="No space"):
        sd.detector_.save(tmp_path / "a" / "b" / "model")
    assert not (tmp_path / "a").exists()


def test_umask_mode_reads_the_umask_without_setting_it(monkeypatch):
    """Reading the umask by setting it changed it for a moment for every thread: files another thread
    made then came out world-readable under the caller's 077."""
    import os
    from ganad.files import umask_mode
    calls = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real(m))
    old = real(0o077)
    try:
        assert umask_mode() == 0o700
    finally:
        real(old)
    if os.path.exists("/proc/self/status") and "Umask:" in open("/proc/self/status").read():
        assert calls == []


def test_a_nan_in_a_checkpoints_history_is_refused_and_save_never_writes_nan(tmp_path):
    import json
    from ganad.exceptions import ModelFileError
    X = np.random.RandomState(0).randn(120, 4)
    det = ganad.GANomaly(epochs=2, width=8, latent_dim=2, random_state=0)
    det.fit(X, checkpoint_dir=tmp_path / "ck")
    man = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    man["state"]["loop"]["history"]["__dict__"][0][1][0] = float("nan")  # the first loss of the first history entry
    (tmp_path / "ck" / "checkpoint.json").write_text(json.dumps(man))
    with pytest.raises(ModelFileError, match="is NaN"):
        ganad.GANomaly(epochs=2, width=8, latent_dim=2, random_state=0).fit(X, checkpoint_dir=tmp_path / "ck", resume=True)
    det.history_[next(iter(det.history_))][0] = float("nan")
    with pytest.raises(ModelFileError, match="NaN or infinite number at state.history"):
        det.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
