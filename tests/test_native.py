"""The native CPU kernels of the frozen conv1d stacks (ganad.nets.native): same function as the
modules and the GEMM programs, and a clean fall-back wherever they cannot be built."""

import numpy as np
import pytest
import torch

from ganad.nets import build_discriminator, build_encoder, build_generator, native
from ganad.nets.inference import frozen_copy

from _nets import trained_like

needs_native = pytest.mark.skipif(native.library() is None, reason=f"native kernels not built here: {native.status()}")


def _three_ways(net, *args):
    """(native kernels, GEMM programs, modules) outputs of a frozen network."""
    with torch.no_grad():
        fast = net(*args)
        with native.disabled():
            prog = net(*args)
        saved = net.__dict__.pop("_fast")
        try:
            mod = net(*args)
        finally:
            net._fast = saved
    return fast, prog, mod


def _close(a, b):
    """Equal within float32 round-off of sums whose terms are as large as the output's largest value
    (the kernels add the same products in another order)."""
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-5, atol=2e-6 * max(1.0, float(v.abs().max())))


# (channels, length, width, depth): narrow and wide layers, banded and even/odd passes, column
# counts that are not multiples of 4 (channels 3), position counts that are not multiples of the
# kernels' blocks (length 48, 40)
SHAPES = [(1, 256, 4, 4), (1, 256, 8, 4), (2, 64, 4, 3), (3, 32, 16, 2), (1, 48, 4, 3), (3, 40, 6, 3)]


@needs_native
@pytest.mark.parametrize("channels,length,width,depth", SHAPES)
@pytest.mark.parametrize("out_act", ["linear", "tanh", "sigmoid"])
def test_generator_native_equals_module(channels, length, width, depth, out_act):
    torch.manual_seed(0)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (channels, length), width, depth, out_act)))
    assert G._fast.native is not None
    for n in (1, 37):
        fast, prog, mod = _three_ways(G, torch.randn(n, 8))
        assert fast.shape == mod.shape == (n, channels, length)
        _close(fast, mod)
        _close(prog, mod)


@needs_native
@pytest.mark.parametrize("channels,length,width,depth", SHAPES)
def test_encoder_and_discriminator_native_equal_module(channels, length, width, depth):
    torch.manual_seed(1)
    E = frozen_copy(trained_like(build_encoder("conv1d", (channels, length), 6, width, depth)))
    D = frozen_copy(trained_like(build_discriminator("conv1d", (channels, length), width, depth, True, feature_layer=-2)))
    assert E._fast.native is not None and D._fast.native is not None
    for n in (1, 29):
        x = torch.randn(n, channels, length)
        fast, prog, mod = _three_ways(E, x)
        _close(fast, mod)
        _close(prog, mod)
        fast, prog, mod = _three_ways(D, x)
        _close(fast, mod)  # logit and the feature layer (an inner layer: kept beside the last)
        _close(prog, mod)


@needs_native
def test_native_results_are_fresh_and_threads_agree():
    """Outputs never alias a previous call's, and splitting the batch over threads changes nothing."""
    torch.manual_seed(2)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3)))
    z1, z2 = torch.randn(300, 8), torch.randn(300, 8)
    n_threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(1)
            one = G(z1)
            torch.set_num_threads(2)
            two = G(z1)
            keep = two.clone()
            G(z2)
    finally:
        torch.set_num_threads(n_threads)
    assert torch.equal(one, two)
    assert torch.equal(two, keep)


@needs_native
@pytest.mark.parametrize("name", ["fanogan", "bigan", "alad", "ganomaly", "vaegan"])
def test_detector_scores_equal_with_native_kernels_disabled(name):
    """Every encoder method scores the same with the native kernels (E then G in one run, D of x and
    x̂ in another, where the method allows) as with the GEMM programs, component by component."""
    from ganad.detectors import DETECTORS

    rng = np.random.RandomState(0)
    X = rng.randn(160, 2, 64).astype(np.float32).cumsum(-1) * 0.1
    det = DETECTORS[name](epochs=1, random_state=0, verbose=False).fit(X[:100])
    fast = det.score_components(X[100:])
    with native.disabled():
        ref = det.score_components(X[100:])
    assert set(fast.components) == set(ref.components)
    for k in ref.components:
        scale = max(1.0, float(np.abs(ref.components[k]).max()))
        np.testing.assert_allclose(fast.components[k], ref.components[k], rtol=1e-4, atol=1e-5 * scale, err_msg=k)
    np.testing.assert_allclose(det.decision_function(X[100:]), fast.scores, rtol=1e-6, atol=1e-9)


@needs_native
def test_fused_encoder_generator_and_discriminator_runs_are_used():
    """f-AnoGAN's encoder pass runs E then G as one native run, and D of x and x̂ as another."""
    from ganad import FAnoGAN

    rng = np.random.RandomState(3)
    X = rng.randn(120, 1, 64).astype(np.float32).cumsum(-1) * 0.1
    det = FAnoGAN(epochs=1, random_state=0, verbose=False).fit(X[:80])
    calls = []
    orig = native.run
    native.run = lambda steps: calls.append(len(steps)) or orig(steps)
    try:
        det.decision_function(X[80:])
    finally:
        native.run = orig
    assert calls == [2, 2]


@pytest.fixture
def fresh_state(monkeypatch):
    """A clean build state for this test (the loaded library of the session is put back after)."""
    saved = dict(native._STATE)
    native._STATE.clear()
    yield
    native._STATE.clear()
    native._STATE.update(saved)


def test_switched_off_by_environment(monkeypatch, fresh_state):
    monkeypatch.setenv("GANAD_NATIVE", "0")
    assert native.library() is None and not native.available()
    assert "GANAD_NATIVE" in native.status()
    G = frozen_copy(build_generator("conv1d", 8, (1, 64), 4, 3))
    assert G._fast.native is None  # the GEMM program runs instead
    with torch.no_grad():
        assert G(torch.randn(5, 8)).shape == (5, 1, 64)


def test_no_compiler_falls_back(monkeypatch, fresh_state, tmp_path):
    monkeypatch.setenv("GANAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_compiler", lambda: None)
    assert native.library() is None
    assert "no C compiler" in native.status()
    D = frozen_copy(build_discriminator("conv1d", (1, 64), 4, 3))
    assert D._fast is not None and D._fast.native is None
    with torch.no_grad():
        logit, feats = D(torch.randn(4, 1, 64))
    assert logit.shape == (4,) and torch.isfinite(feats).all()


def test_compile_error_falls_back_with_the_reason(monkeypatch, fresh_state, tmp_path):
    bad = tmp_path / "_native.c"
    bad.write_text("this is not C\n")
    monkeypatch.setenv("GANAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_SRC", bad)
    if native._compiler() is None:
        pytest.skip("no C compiler here")
    assert native.library() is None
    assert "failed" in native.status()
    assert not list((tmp_path / "cache").glob("*.so"))  # nothing half-written is left to load


@needs_native
def test_built_once_into_the_cache_directory(monkeypatch, fresh_state, tmp_path):
    monkeypatch.setenv("GANAD_CACHE_DIR", str(tmp_path))
    assert native.library() is not None
    built = list(tmp_path.glob("native-*.so"))
    assert len(built) == 1
    native._STATE.clear()

    def no_compile(*a, **k):
        raise AssertionError("compiled again although the library is cached")

    monkeypatch.setattr(native.subprocess, "run", no_compile)
    assert native.library() is not None
    assert str(built[0]) in native.status()


@needs_native
def test_python_thread_path_equals_openmp_path(monkeypatch):
    """Where the library was built without OpenMP, Python threads split the batch: same results."""
    torch.manual_seed(4)
    E = frozen_copy(trained_like(build_encoder("conv1d", (1, 64), 6, 4, 3)))
    x = torch.randn(301, 1, 64)
    with torch.no_grad():
        ref = E(x)
        monkeypatch.setitem(native._STATE, "openmp", False)
        other = E(x)
    np.testing.assert_allclose(other.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)


@needs_native
@pytest.mark.parametrize("channels,length,width,depth", SHAPES)
@pytest.mark.parametrize("out_act", ["linear", "tanh", "sigmoid"])
def test_native_search_gradient_equals_autograd(channels, length, width, depth, out_act):
    """The latent search's distance and dL/dz on the native kernels equal autograd through the modules."""
    from ganad.inversion.latent_search import LatentSearch

    torch.manual_seed(5)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (channels, length), width, depth, out_act)))
    prog = G._fast
    assert prog.native_back is not None and prog.search_ops()[1] == prog.native_forward_saved
    z, x = torch.randn(19, 8), torch.randn(19, channels, length)
    zr = z.clone().requires_grad_(True)
    saved = G.__dict__.pop("_fast")
    try:
        loss = (G(zr) - x).square().flatten(1).mean(1)
        (ref,) = torch.autograd.grad(loss.sum(), zr)
    finally:
        G._fast = saved
    ops = prog.search_ops()
    with torch.no_grad():
        dist, grad = LatentSearch(distance="l2")._fast_value_and_grad(prog, z, ops[0](x), ops)
    scale = float(ref.abs().max())
    np.testing.assert_allclose(grad.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(dist.numpy(), loss.detach().numpy(), rtol=1e-5)


@needs_native
@pytest.mark.parametrize("distance", ["l2", "l1"])
def test_native_search_follows_the_gemm_program_search(distance):
    """The whole search on the native kernels follows the GEMM program's, step for step."""
    from ganad.inversion.latent_search import LatentSearch
    from ganad.training.priors import make_prior

    torch.manual_seed(6)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3)))
    x = G(torch.randn(16, 8)).detach() + 0.05 * torch.randn(16, 1, 64)
    search = LatentSearch(distance=distance, n_max=60, eps=1e-3, lr=0.05)
    prior = make_prior("normal")
    fast = search.run(G, x, prior, latent_dim=8, seed=3)
    with native.disabled():
        ref = search.run(G, x, prior, latent_dim=8, seed=3)
    np.testing.assert_array_equal(fast.iterations.numpy(), ref.iterations.numpy())
    np.testing.assert_allclose(fast.distance.numpy(), ref.distance.numpy(), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(fast.z.numpy(), ref.z.numpy(), rtol=1e-3, atol=1e-4)
