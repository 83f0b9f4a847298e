import math

import numpy as np
import pytest
import torch

from ganad.nets import build_discriminator, build_generator
from ganad.training.loop import train
from ganad.training.adversarial import gan_stage
from ganad.training.objectives import OBJECTIVES, d_loss, g_loss, gradient_penalty
from ganad.training.priors import NormalPrior, TruncatedNormalPrior, UniformPrior, make_prior


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_objectives_give_finite_gradients(objective):
    torch.manual_seed(0)
    G = build_generator("mlp", 4, (6,), 16, 1)
    D = build_discriminator("mlp", (6,), 16, 1)
    x = torch.randn(8, 6)
    fake = G(torch.randn(8, 4))
    real_logit, _ = D(x)
    fake_logit, _ = D(fake.detach())
    loss = d_loss(objective, real_logit, fake_logit, torch.rand(8))
    if objective == "wgan-gp":
        loss = loss + 10 * gradient_penalty(D, x, fake)
    loss.backward()
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    D.zero_grad(); G.zero_grad()
    gl = g_loss(objective, D(G(torch.randn(8, 4)))[0])
    gl.backward()
    assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    w = torch.tensor([0.6, 0.8])  # ‖w‖ = 1: gradient norm exactly 1 everywhere
    critic = lambda x: x @ w  # noqa: E731
    gp = gradient_penalty(critic, torch.randn(16, 2), torch.randn(16, 2))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_priors_respect_their_support():
    g = torch.Generator().manual_seed(0)
    u = UniformPrior().sample(20000, 8, generator=g)
    assert u.min() >= -1 and u.max() <= 1 and abs(u.mean()) < 0.02
    t = TruncatedNormalPrior(1.5).sample(20000, 8, generator=g)
    assert t.min() >= -1.5 and t.max() <= 1.5 and 0.5 < t.std() < 1.0
    n = NormalPrior().sample(20000, 8, generator=g)
    assert abs(n.std() - 1) < 0.02 and n.abs().max() > 3  # unbounded
    assert torch.equal(UniformPrior().project(torch.tensor([-3.0, 0.5, 2.0])), torch.tensor([-1.0, 0.5, 1.0]))


def test_latent_norm_mode_matches_samples():
    # the chi distribution with d degrees of freedom has its mode at sqrt(d - 1)
    g = torch.Generator().manual_seed(1)
    z = NormalPrior().sample(200000, 16, generator=g).norm(dim=1).numpy()
    hist, edges = np.histogram(z, bins=200)
    mode = (edges[hist.argmax()] + edges[hist.argmax() + 1]) / 2
    assert mode == pytest.approx(NormalPrior().norm_mode(16), abs=0.1)
    assert NormalPrior().norm_mode(16) == pytest.approx(math.sqrt(15))
    with pytest.raises(ValueError, match="unknown prior"):
        make_prior("cauchy")


def test_loop_records_history_and_learns_the_mean():
    torch.manual_seed(0)
    X = torch.randn(256, 2) * 0.1 + torch.tensor([3.0, -2.0])
    G = build_generator("mlp", 2, (2,), 32, 2)
    D = build_discriminator("mlp", (2,), 32, 2)
    gen = torch.Generator().manual_seed(0)
    target = torch.tensor([3.0, -2.0])
    G.eval()
    with torch.no_grad():
        before = (G(torch.randn(1000, 2)).mean(0) - target).norm()
    st = gan_stage(G, D, NormalPrior(), latent_dim=2, objective="bce", epochs=30, lr_g=2e-3, lr_d=2e-3,
                   betas=(0.5, 0.999), n_critic=1, gp_weight=0, generator=gen)
    hist = train([st], X, batch_size=64, generator=gen, device=torch.device("cpu"), verbose=False)
    assert len(hist["gan/d_loss"]) == 30 and len(hist["gan/g_loss"]) == 30
    G.eval()
    with torch.no_grad():
        after = (G(torch.randn(1000, 2)).mean(0) - target).norm()
    assert after < 0.4 * before  # the generator moved most of the way to the data


@pytest.mark.parametrize("n, bs, want", [(1986, 32, [32] * 61 + [34]), (70, 32, [32, 38]), (72, 32, [32, 32, 8]),
                                         (64, 32, [32, 32]), (5, 32, [5]), (33, 32, [33])])
def test_a_short_last_batch_joins_the_one_before(n, bs, want):
    """Every sample is used once per epoch, and no batch has fewer than MIN_TAIL samples unless the
    data set does (BatchNorm statistics of 2 samples are degenerate; ADBench thyroid's 2-sample tail
    made every seed diverge)."""
    from ganad.training.loop import MIN_TAIL, Stage
    sizes, seen = [], []

    def step(xb, wb):
        sizes.append(len(xb))
        seen.append(xb[:, 0].clone())
        return {"loss": torch.zeros(())}
    X = torch.arange(n, dtype=torch.float32)[:, None]
    train([Stage("s", 1, step)], X, batch_size=bs, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert sizes == want
    assert sorted(torch.cat(seen).tolist()) == list(range(n))
    assert min(sizes) >= min(MIN_TAIL, n)


def test_ganomaly_trains_where_the_last_batch_held_two_samples():
    """1,986 training rows in batches of 32 left a 2-sample tail whose gradient norm tripped the
    divergence guard on every seed (ADBench thyroid); now they train."""
    import ganad
    X = np.random.RandomState(0).randn(2207, 6).astype(np.float32)  # 1,986 after the 10 % held-out slice
    det = ganad.GANomaly(epochs=3, random_state=0)
    det.fit(X)
    assert det.timing_["n_train"] == 1986 and det.timing_["batch_size"] == 32
    assert np.isfinite(det.decision_scores_).all()


@pytest.mark.parametrize("batch_size", ["auto", 64])
def test_timing_reports_the_batch_size_trained_with(batch_size):
    """Fewer training rows than the batch size: the loop trains on one batch of every row, and
    ``timing_['batch_size']`` says so (it said 32 or 64 for a fit on 20 rows)."""
    import ganad
    X = np.random.RandomState(0).randn(20, 3).astype(np.float32)
    with pytest.warns(UserWarning, match="too few for a held-out slice"):
        det = ganad.GANomaly(epochs=1, random_state=0, batch_size=batch_size).fit(X)
    assert det.timing_["n_train"] == 20 and det.timing_["batch_size"] == 20


def test_make_optimizer_uses_the_fused_adam_kernel_on_cpu_with_the_same_updates():
    """Every method's optimiser comes from make_optimizer: PyTorch's fused Adam on the CPU (one
    kernel for all parameters), whose updates equal the per-parameter Adam's."""
    from ganad.training.adversarial import make_optimizer

    torch.manual_seed(0)
    a = build_discriminator("mlp", (6,), 16, 1)
    b = build_discriminator("mlp", (6,), 16, 1)
    b.load_state_dict(a.state_dict())
    fused = make_optimizer(a.parameters(), 1e-2, (0.5, 0.999))
    plain = torch.optim.Adam(b.parameters(), lr=1e-2, betas=(0.5, 0.999), foreach=False)
    assert fused.defaults["fused"] is True
    for i in range(5):
        x = torch.randn(8, 6)
        for net, opt in ((a, fused), (b, plain)):
            torch.manual_seed(i)  # the same dropout masks in both
            opt.zero_grad()
            net(x)[0].square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    frozen_out = build_discriminator("mlp", (6,), 16, 1)
    for p in list(frozen_out.parameters())[:-1]:
        p.requires_grad_(False)
    assert len(make_optimizer(frozen_out.parameters(), 1e-3, (0.5, 0.999)).param_groups[0]["params"]) == 1


@pytest.mark.parametrize("family, shape", [("conv1d", (1, 64)), ("mlp", (12,)), ("conv1d_joint", (2, 32))])
def test_d_pair_is_two_forwards_in_one(family, shape):
    """d_pair stacks real and fake samples into one forward where that changes no value: the same
    logits, features and weight gradients as two forwards (here of different batch sizes; in eval
    mode, since in training dropout draws its masks for the stacked batch, from the same distribution)."""
    import copy

    from ganad.nets.joint import JointDiscriminator
    from ganad.training.adversarial import d_pair, stacks_batches

    torch.manual_seed(0)
    if family == "conv1d_joint":
        D = JointDiscriminator("conv1d", shape, 4, 8, 2, False)
        real, fake = (torch.randn(6, *shape), torch.randn(6, 4)), (torch.randn(9, *shape), torch.randn(9, 4))
    else:
        D = build_discriminator(family, shape, width=8, depth=2)
        real, fake = (torch.randn(6, *shape),), (torch.randn(9, *shape),)
    assert stacks_batches(D)
    D.eval()
    D2 = copy.deepcopy(D)
    (rl, rf), (fl, ff) = d_pair(D, real, fake)
    (rl2, rf2), (fl2, ff2) = D2(*real), D2(*fake)
    for a, b in ((rl, rl2), (rf, rf2), (fl, fl2), (ff, ff2)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    (rl.sum() - 2 * fl.square().sum() + rf.sum()).backward()
    (rl2.sum() - 2 * fl2.square().sum() + rf2.sum()).backward()
    for p, q in zip(D.parameters(), D2.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4)


def test_d_pair_keeps_two_forwards_where_stacking_would_change_values():
    """BatchNorm's batch statistics and spectral norm's power iteration per forward: two forwards."""
    from ganad.training.adversarial import d_pair, stacks_batches

    class BND(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm1d(3)

        def forward(self, x):
            h = self.bn(x)
            return h.sum(1), h

    D = BND().train()
    assert not stacks_batches(D)
    real, fake = torch.randn(8, 3), torch.randn(8, 3) * 5 + 2
    (rl, _), (fl, _) = d_pair(D, (real,), (fake,))
    torch.testing.assert_close(fl, D(fake)[0])  # normalised by the fakes' own statistics
    assert not stacks_batches(build_discriminator("mlp", (12,), width=8, depth=2, spectral_norm=True))


def test_patience_without_a_held_out_slice_says_it_cannot_stop():
    """patience needs the held-out criterion: without a slice (validation_fraction=0) every epoch ran,
    silently."""
    import warnings as w
    from ganad import GANomaly
    X = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="patience: is 2, but there is no held-out slice.*every epoch runs"):
        det = GANomaly(epochs=3, patience=2, validation_fraction=0, random_state=0).fit(X)
    assert det.selection_.get("stopped_at_epoch") is None
    with w.catch_warnings():
        w.simplefilter("error", UserWarning)
        GANomaly(epochs=2, patience=2, random_state=0).fit(X[:200])  # a slice: no warning


def test_lazy_weight_puts_the_whole_penalty_on_one_step_in_k():
    from ganad.training.objectives import lazy_weight
    assert [lazy_weight(10.0, 1, i) for i in range(3)] == [10.0, 10.0, 10.0]
    w = [lazy_weight(10.0, 4, i) for i in range(8)]
    assert w == [40.0, 0.0, 0.0, 0.0, 40.0, 0.0, 0.0, 0.0]
    assert sum(w) == sum(lazy_weight(10.0, 1, i) for i in range(8))  # the same pull over a whole cycle


def _windows(n=64):
    rng = np.random.RandomState(0)
    t = np.arange(16)[None, None, :] + rng.rand(n, 1, 1) * 10
    return (np.concatenate([np.sin(t / 4), np.cos(t / 6)], 1) + 0.05 * rng.randn(n, 2, 16)).astype(np.float32)


@pytest.mark.parametrize("name,module,fn,per_step", [
    ("fanogan", "ganad.training.adversarial", "gradient_penalty", 1),
    ("anogan", "ganad.training.adversarial", "gradient_penalty", 1),
    ("ganomaly", "ganad.detectors.ganomaly", "gradient_penalty", 1),
    ("vaegan", "ganad.detectors.vaegan", "gradient_penalty", 1),
    ("bigan", "ganad.detectors.bigan", "joint_gradient_penalty", 1),
    ("alad", "ganad.detectors.alad", "joint_gradient_penalty", 3),  # one per discriminator
    ("tadgan", "ganad.detectors.tadgan", "gradient_penalty", 2),  # one per critic
])
def test_gp_every_applies_the_penalty_on_one_discriminator_step_in_k_at_k_times_the_weight(monkeypatch, name, module, fn, per_step):
    """Every method's WGAN-GP step honours ``gp_every``: on one discriminator step in k (the first of
    each k, counted across epochs) the penalty is computed and weighted k * gp_weight, on the others
    it is not computed at all (its double backward is what the option saves)."""
    import importlib

    import ganad
    mod = importlib.import_module(module)
    real_fn = getattr(mod, fn)
    calls = []

    def counted(*a, **k):
        calls.append(1)
        return real_fn(*a, **k)

    monkeypatch.setattr(mod, fn, counted)
    X = _windows() if name == "tadgan" else np.random.RandomState(0).randn(96, 6).astype(np.float32)
    kw = {"epochs": 3, "batch_size": 16, "random_state": 0, "objective": "wgan-gp", "n_critic": 2}
    if name == "fanogan":
        kw["encoder_epochs"] = 1
    if name == "anogan":
        kw["search_n_max"] = 4
    counts = {}
    for k in (1, 3):
        calls.clear()
        det = ganad.DETECTORS[name](gp_every=k, **kw).fit(X)
        counts[k] = len(calls)
        assert np.isfinite(det.decision_function(X[:8])).all()
    steps = counts[1] // per_step
    assert steps >= 12 and counts[1] == steps * per_step
    assert counts[3] == per_step * math.ceil(steps / 3)


def test_gp_every_must_be_a_positive_integer():
    from ganad import FAnoGAN
    from ganad.exceptions import InputError
    with pytest.raises(InputError, match="gp_every"):
        FAnoGAN(gp_every=0).fit(np.zeros((40, 4), np.float32))


def test_a_lazy_penalty_step_adds_k_times_the_weighted_penalty_and_the_others_none():
    """gan_stage's first discriminator step with gp_every=3 adds 3 * gp_weight * gp to the critic's
    loss (gp_every=1: gp_weight * gp); its second step adds nothing and reports the last penalty."""
    x = torch.randn(32, 4)
    out = {}
    for k in (1, 3):
        torch.manual_seed(0)
        G, D = build_generator("mlp", 2, (4,), 16, 2), build_discriminator("mlp", (4,), 16, 2)
        st = gan_stage(G, D, NormalPrior(), latent_dim=2, objective="wgan-gp", epochs=1, lr_g=1e-3, lr_d=1e-3,
                       betas=(0.0, 0.9), n_critic=5, gp_weight=10.0, generator=torch.Generator().manual_seed(1), gp_every=k)
        first = st.step(x, None)
        second = st.step(x, None)
        out[k] = (first, second)
    (f1, _), (f3, s3) = out[1], out[3]
    assert float(f1["gp"]) > 0 and torch.allclose(f1["gp"], f3["gp"])  # the same state, the same interpolates
    assert torch.allclose(f3["d_loss"] - f1["d_loss"], 2 * 10.0 * f1["gp"], rtol=1e-4, atol=1e-5)
    assert torch.equal(s3["gp"], f3["gp"])  # no penalty computed on the second step: the last one reported


@pytest.mark.parametrize("name,module,fn,key", [
    ("fanogan", "ganad.training.adversarial", "gradient_penalty", "gan/gp"),
    ("bigan", "ganad.detectors.bigan", "joint_gradient_penalty", "bigan/gp"),
    ("alad", "ganad.detectors.alad", "joint_gradient_penalty", "alad/gp"),
])
def test_the_reported_penalty_is_the_last_one_computed_not_diluted_by_lazy_steps(monkeypatch, name, module, fn, key):
    """With gp_every=3 the epoch's mean 'gp' in history_ is the penalty's value, not a third of it
    (steps without the penalty report the last one computed)."""
    import importlib

    import ganad
    monkeypatch.setattr(importlib.import_module(module), fn, lambda *a, **k: torch.tensor(2.0))
    X = np.random.RandomState(0).randn(96, 6).astype(np.float32)
    kw = {"epochs": 2, "batch_size": 16, "random_state": 0, "objective": "wgan-gp", "gp_every": 3}
    det = ganad.DETECTORS[name](**kw, **({"encoder_epochs": 1} if name == "fanogan" else {})).fit(X)
    want = 6.0 if name == "alad" else 2.0  # ALAD sums its three discriminators' penalties
    assert det.history_[key] == pytest.approx([want] * 2)
