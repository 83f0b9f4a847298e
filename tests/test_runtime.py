"""ganad.runtime: one parametrised suite over the runners. Every compiled runner (the GEMM programs
and the native kernels) computes what the eager modules compute, for every network role (generator,
encoder, discriminator, joint discriminator), the latent search's value and dL/dz, the fused passes
of encoder scoring and whole detectors; the one switch selects them; and the native library is
loaded only when it can be trusted (issue 10), falling back with a warning otherwise."""

import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from ganad import runtime
from ganad.exceptions import InputError
from ganad.inversion.latent_search import LatentSearch
from ganad.nets import build_discriminator, build_encoder, build_generator
from ganad.nets.inference import frozen_copy
from ganad.nets.joint import JointDiscriminator
from ganad.runtime import gemm, native
from ganad.training.priors import make_prior

from _nets import trained_like

needs_cc = pytest.mark.skipif(native._compiler() is None, reason="no C compiler")
NATIVE = pytest.param("native", marks=pytest.mark.skipif(native.library() is None,
                                                         reason=f"native kernels not built here: {native.status()}"))
#: the compiled runners, each checked against the eager modules
RUNNERS = ["gemm", NATIVE]

# (channels, length, width, depth): narrow and wide layers, banded / transposed / even-odd forms,
# channel counts not multiples of 4, position counts that are not multiples of the kernels' blocks
# ((2, 32, 24, 3): 96 channels, the 512-bit kernels' 64 + 32 column blocks)
SHAPES = [(1, 256, 4, 4), (1, 256, 8, 4), (2, 64, 4, 3), (3, 32, 16, 2), (1, 48, 4, 3), (3, 40, 6, 3), (2, 32, 24, 3)]
# (1, 40, 4, 2) with 23 samples: the first layer's rows do not split into whole bands
DOWN_SHAPES = SHAPES[:4] + [(1, 40, 4, 2)]


def _close(a, b, rtol=1e-5):
    """Equal within float32 round-off of sums whose terms are as large as the output's largest value."""
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        assert u.shape == v.shape
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=rtol, atol=2e-6 * max(1.0, float(v.abs().max())))


def _both(kind, fn):
    """(fn() on runner ``kind``, fn() on the eager modules); the callers check with ``runner_for``
    that runner ``kind`` covers their input."""
    with torch.no_grad():
        with runtime.use(kind):
            got = fn()
        with runtime.use("eager"):
            ref = fn()
    return got, ref


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("channels,length,width,depth", SHAPES)
@pytest.mark.parametrize("out_act", ["linear", "tanh", "sigmoid"])
def test_generator_forward_equals_eager(kind, channels, length, width, depth, out_act):
    torch.manual_seed(0)
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (channels, length), width, depth, out_act))))
    for n in (1, 37, 40):  # 40: the last layer's rows split into whole bands; 37: they do not
        z = torch.randn(n, 8)
        with runtime.use(kind):
            assert G.runner_for(z) == kind
        got, ref = _both(kind, lambda: G(z))
        assert got.shape == (n, channels, length)
        _close(got, ref)


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("channels,length,width,depth", DOWN_SHAPES)
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_discriminator_forward_features_equal_eager(kind, channels, length, width, depth, spectral_norm):
    torch.manual_seed(2)
    D = runtime.compile(frozen_copy(trained_like(build_discriminator("conv1d", (channels, length), width, depth,
                                                                     spectral_norm, feature_layer=-2))))
    for n in (1, 23):
        x = torch.randn(n, channels, length)
        with runtime.use(kind):
            assert D.runner_for(x) == kind
        got, ref = _both(kind, lambda: D.forward_features(x))
        _close(got, ref)  # logit and the kept (inner) feature layer


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("channels,length,width,depth", DOWN_SHAPES)
def test_encoder_forward_equals_eager(kind, channels, length, width, depth):
    torch.manual_seed(3)
    E = runtime.compile(frozen_copy(trained_like(build_encoder("conv1d", (channels, length), 6, width, depth))))
    x = torch.randn(29, channels, length)
    with runtime.use(kind):
        assert E.runner_for(x) == kind
    got, ref = _both(kind, lambda: E(x))
    _close(got, ref)


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("channels,length,width,depth", DOWN_SHAPES[:3])
def test_joint_discriminator_equals_eager(kind, channels, length, width, depth):
    """BiGAN's D(x, z): its conv1d x blocks run on the runner, the rest on the modules."""
    torch.manual_seed(9)
    D = runtime.compile(frozen_copy(trained_like(JointDiscriminator("conv1d", (channels, length), 8, width, depth,
                                                                    spectral_norm=True))))
    x, z = torch.randn(23, channels, length), torch.randn(23, 8)
    with runtime.use(kind):
        assert D.runner_for(x) == kind
    got, ref = _both(kind, lambda: D(x, z))
    _close(got, ref)


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("channels,length,width,depth", SHAPES)
@pytest.mark.parametrize("distance", ["l2", "l1", "rbf"])
def test_value_and_grad_z_equals_autograd(kind, channels, length, width, depth, distance):
    """The latent search's per-sample distance and dL/dz through the runner's hand-written backward
    equal autograd through the modules."""
    torch.manual_seed(1)
    out_act = "tanh" if distance == "rbf" else "linear"
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (channels, length), width, depth, out_act))))
    z, x = torch.randn(19, 8), torch.randn(19, channels, length)
    search = LatentSearch(distance=distance)

    def value_and_grad():
        obj = G.objective(x, lambda xh, t: search._loss_of(xh, None, t), distance=distance)
        assert obj.runner == runtime.selected()
        return obj.value_and_grad_z(z, obj.target)

    (_, d_got, g_got), (_, d_ref, g_ref) = _both(kind, value_and_grad)
    np.testing.assert_allclose(d_got.numpy(), d_ref.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g_got.numpy(), g_ref.numpy(), rtol=1e-4, atol=1e-5 * float(g_ref.abs().max()))


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("distance", ["l2", "l1", "rbf"])
def test_latent_search_follows_the_eager_search(kind, distance):
    """The whole search on a compiled runner follows the autograd search step for step."""
    torch.manual_seed(5)
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3))))
    with torch.no_grad():
        x = G(torch.randn(16, 8)) + 0.05 * torch.randn(16, 1, 64)
    search = LatentSearch(distance=distance, n_max=60, eps=1e-3, lr=0.05)
    prior = make_prior("normal")
    with runtime.use(kind):
        got = search.run(G, x, prior, latent_dim=8, seed=3)
    with runtime.use("eager"):
        ref = search.run(G, x, prior, latent_dim=8, seed=3)
    np.testing.assert_array_equal(got.iterations.numpy(), ref.iterations.numpy())
    np.testing.assert_allclose(got.distance.numpy(), ref.distance.numpy(), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(got.z.numpy(), ref.z.numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("feature_layer", [-1, -2, 0])
def test_fused_encode_generate_discriminate_equals_eager(kind, feature_layer):
    torch.manual_seed(4)
    shape = (2, 64)
    E = frozen_copy(trained_like(build_encoder("conv1d", shape, 8, 4, 3)))
    G = frozen_copy(trained_like(build_generator("conv1d", 8, shape, 4, 3)))
    D = frozen_copy(trained_like(build_discriminator("conv1d", shape, 4, 3, feature_layer=feature_layer)))
    E, G, D = (runtime.compile(m) for m in (E, G, D))
    x = torch.randn(33, *shape)
    with runtime.use(kind):
        assert E.runner_for(x) == kind and D.runner_for(x) == kind
    got, ref = _both(kind, lambda: runtime.encode_generate_discriminate(E, G, D, x))
    for k in ("z", "x_hat", "d_x", "d_x_hat"):
        _close(got[k], ref[k])


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("name", ["fanogan", "bigan", "alad", "ganomaly", "vaegan", "anogan"])
def test_detector_scores_equal_eager(kind, name):
    """Every method scores the same on each runner as on the eager modules, component by component."""
    from ganad.detectors import DETECTORS

    rng = np.random.RandomState(0)
    X = rng.randn(130, 2, 64).astype(np.float32).cumsum(-1) * 0.1
    kw = {"search_n_max": 20} if name == "anogan" else {}
    det = DETECTORS[name](epochs=1, random_state=0, verbose=False, **kw).fit(X[:100])
    with runtime.use(kind):
        assert det._inference_net("G").runner_for(torch.zeros(2, det.latent_dim)) == kind
        got = det.score_components(X[100:])
        scores = det.decision_function(X[100:])
    with runtime.use("eager"):
        ref = det.score_components(X[100:])
    assert set(got.components) == set(ref.components)
    for k in ref.components:  # 20 Adam steps amplify round-off a little for AnoGAN
        scale = max(1.0, float(np.abs(ref.components[k]).max()))
        np.testing.assert_allclose(got.components[k], ref.components[k], rtol=1e-3, atol=1e-5 * scale, err_msg=k)
    np.testing.assert_allclose(scores, got.scores, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ["eager", "gemm", NATIVE])
def test_the_switch_selects_the_runner(kind, monkeypatch):
    """use() selects what runs (counted on the runners' own entry points), as a block."""
    G = runtime.compile(frozen_copy(build_generator("conv1d", 8, (1, 64), 4, 3)))
    calls = []
    monkeypatch.setattr(gemm.GeneratorProgram, "__call__", lambda self, z, _o=gemm.GeneratorProgram.__call__: calls.append("gemm") or _o(self, z))
    monkeypatch.setattr(native.NativeGenerator, "__call__", lambda self, z, _o=native.NativeGenerator.__call__: calls.append("native") or _o(self, z))
    with torch.no_grad(), runtime.use(kind):
        G(torch.randn(3, 8))
    assert calls == ([] if kind == "eager" else [kind])
    outer = runtime.selected()
    with runtime.use(kind):
        assert runtime.selected() == kind
    assert runtime.selected() == outer


def test_fallbacks_to_the_eager_runner():
    torch.manual_seed(4)
    # a length the stride-2 stack cannot halve exactly: no program, the modules run
    E = runtime.compile(frozen_copy(build_encoder("conv1d", (1, 50), 4, 4, 3)))
    assert E.runner_for(torch.randn(3, 1, 50)) == "eager" and E(torch.randn(3, 1, 50)).shape == (3, 4)
    # autograd with respect to the input, float64, other families: the modules
    G = runtime.compile(frozen_copy(build_generator("conv1d", 8, (1, 64), 4, 3)))
    z = torch.randn(5, 8, requires_grad=True)
    assert G.runner_for(z) == "eager"
    G(z).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert G.runner_for(torch.randn(5, 8, dtype=torch.float64)) == "eager"
    M = runtime.compile(frozen_copy(build_generator("mlp", 8, (30,), 16, 2)))
    assert M.runner_for(torch.randn(5, 8)) == "eager" and M.preferred_batch() is None
    # the latent search's feature term and soft-DTW have no hand-written backward
    x = torch.randn(4, 1, 64)
    assert G.objective(x, lambda xh, t: (xh.sum((1, 2)),) * 2, distance=None).runner == "eager"
    # training-mode networks are plain modules: nothing is attached to them
    assert not hasattr(build_generator("conv1d", 8, (1, 64), 4, 3), "_fast")


def test_unknown_runtime_is_refused_with_the_fix(monkeypatch):
    with pytest.raises(InputError, match="'fast' is not a runtime.*Fix: use one of auto, eager, gemm, native"):
        runtime.use("fast")
    monkeypatch.setattr(runtime, "_DEFAULT", [])
    monkeypatch.setenv("GANAD_RUNTIME", "turbo")
    with pytest.raises(InputError, match="GANAD_RUNTIME.*Fix"):
        runtime._from_env()


def test_overlapping_use_blocks_each_leave_the_others_choice(monkeypatch):
    """Concurrency audit (twenty-fifth session): each block restored the list it had saved, so blocks
    overlapping in two threads (A enters, B enters, A leaves, B leaves) left A's choice in force for good."""
    monkeypatch.setattr(runtime, "_CHOSEN", [])
    start = runtime.selected()
    a = runtime.use("eager")
    b = runtime.use("gemm")
    assert runtime.selected() == "gemm"
    a.__exit__(None, None, None)
    assert runtime.selected() == "gemm"  # B's block is still open
    b.__exit__(None, None, None)
    assert runtime.selected() == start
    runtime.use("gemm")  # the statement form: from now on, blocks inside it come back to it
    with runtime.use("eager"):
        assert runtime.selected() == "eager"
    assert runtime.selected() == "gemm"


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("GANAD_RUNTIME", "gemm")
    assert runtime._from_env() == "gemm"
    monkeypatch.delenv("GANAD_RUNTIME")
    monkeypatch.setenv("GANAD_NATIVE", "0")  # the old switch still works, with a deprecation warning
    with pytest.warns(DeprecationWarning, match="GANAD_RUNTIME=gemm"):
        assert runtime._from_env() == "gemm"
    monkeypatch.delenv("GANAD_NATIVE")
    assert runtime._from_env() == "auto"


def test_gemm_program_uses_both_matmul_forms():
    """Layers with narrow outputs multiply in transposed / banded form, wide ones in row form."""
    prog = gemm.generator_program(frozen_copy(build_generator("conv1d", 8, (1, 256), 4, 4)))
    assert [u.rows_fwd for u in prog.ups] == [4 * u.co >= gemm.MIN_COLS for u in prog.ups]
    assert not prog.ups[-1].rows_fwd and prog.ups[0].rows_fwd


def test_gemm_large_batches_run_in_blocks_with_the_same_result():
    torch.manual_seed(6)
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3))))
    D = runtime.compile(frozen_copy(trained_like(build_discriminator("conv1d", (1, 64), 4, 3))))
    z, x = torch.randn(50, 8), torch.randn(50, 1, 64)
    with torch.no_grad(), runtime.use("gemm"):
        assert G.runner_for(z) == "gemm" and D.runner_for(x) == "gemm"
        g_one, d_one = G(z), D(x)
        G._gemm.block = D._gemm.block = 16  # 50 samples: four blocks of 13, 13, 13, 11
        g_blk, d_blk = G(z), D(x)
    _close(g_blk, g_one, rtol=1e-6)
    _close(d_blk, d_one, rtol=1e-6)


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.parametrize("n", [1, 37])
def test_results_do_not_alias_reused_buffers(kind, n):
    """The runners reuse their intermediate buffers from call to call; what they return must not be one."""
    torch.manual_seed(7)
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3))))
    D = runtime.compile(frozen_copy(trained_like(build_discriminator("conv1d", (1, 64), 4, 3))))
    E = runtime.compile(frozen_copy(trained_like(build_encoder("conv1d", (1, 64), 8, 4, 3))))
    z1, z2 = torch.randn(n, 8), torch.randn(n, 8)
    x1, x2 = torch.randn(n, 1, 64), torch.randn(n, 1, 64)
    with torch.no_grad(), runtime.use(kind):
        g1, d1, e1 = G(z1), D(x1), E(x1)
        keep = [g1.clone(), d1[0].clone(), d1[1].clone(), e1.clone()]
        G(z2), D(x2), E(x2)  # would overwrite anything still pointing into a reused buffer
    for a, b in zip([g1, d1[0], d1[1], e1], keep):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", RUNNERS)
def test_concurrent_threads_get_single_thread_results(kind):
    torch.manual_seed(8)
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3))))
    zs = [torch.randn(200, 8) for _ in range(2)]
    with torch.no_grad(), runtime.use(kind):
        ref = [G(z) for z in zs]
    out = [None, None]

    def work(i):
        with torch.no_grad():  # the switch holds for every thread
            for _ in range(20):
                if not torch.equal(G(zs[i]), ref[i]):
                    out[i] = "differs"
                    return
            out[i] = "same"

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    with runtime.use(kind):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert out == ["same", "same"]


def test_encoder_scoring_steps_through_the_runners_block_size():
    """Encoder scoring on CPU steps through the compiled runners' block size whatever score_batch_size
    is, with the scores of small batches; the latent search and the eager runner keep score_batch_size."""
    from ganad import FAnoGAN

    rng = np.random.RandomState(1)
    X = rng.randn(300, 1, 64).astype(np.float32).cumsum(-1) * 0.1
    det = FAnoGAN(epochs=1, random_state=0, verbose=False, score_batch_size=4096).fit(X[:200])
    blocks = [det._inference_net(p).preferred_batch() for p in ("E", "G", "D")]
    assert det._score_chunk(4096) == min(blocks) and det._score_chunk(16) == 16
    with runtime.use("eager"):
        assert det._score_chunk(4096) == 4096
    det.set_params(inversion="search")
    assert det._score_chunk(4096) == 4096
    det.set_params(inversion="encoder")
    for p in ("E", "G", "D"):
        det._inference_net(p)._gemm.block = 32  # 100 samples in steps of 32
    big = det.decision_function(X[200:])
    det.set_params(score_batch_size=7)
    np.testing.assert_allclose(big, det.decision_function(X[200:]), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(native.library() is None, reason="native kernels not built here")
def test_fused_native_runs_are_used_by_encoder_scoring(monkeypatch):
    """f-AnoGAN's encoder pass runs E then G as one native run, and D of x and x̂ as another."""
    from ganad import FAnoGAN

    rng = np.random.RandomState(3)
    X = rng.randn(120, 1, 64).astype(np.float32).cumsum(-1) * 0.1
    det = FAnoGAN(epochs=1, random_state=0, verbose=False).fit(X[:80])
    calls = []
    orig = native.run
    monkeypatch.setattr(native, "run", lambda steps: calls.append(len(steps)) or orig(steps))
    with runtime.use("native"):  # whatever GANAD_RUNTIME says
        det.score_components(X[80:])
    assert calls == [2, 2]
    calls.clear()
    with runtime.use("native"):  # the default score reads D(x) and x only: no E / G run at all
        det.decision_function(X[80:])
    assert calls == [1]


def test_layout_matches_pytorch_convolutions():
    """The one weight re-layout: a matmul by each matrix equals PyTorch's own convolution."""
    from ganad.runtime import layout

    torch.manual_seed(10)
    c, co, l = 3, 5, 8
    x = torch.randn(2, c, l)
    w = torch.randn(co, c, 4)  # Conv1d
    ref = torch.nn.functional.conv1d(x, w, padding=1, stride=2).transpose(1, 2)
    xp = torch.nn.functional.pad(x, (1, 1)).transpose(1, 2)  # (n, l + 2, c)
    win = torch.stack([xp[:, 2 * j:2 * j + 4].reshape(2, -1) for j in range(l // 2)], 1)  # windows of 4 rows
    np.testing.assert_allclose((win @ layout.down_taps(w)).numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    g = 2
    wide = torch.stack([xp[:, 2 * g * k:2 * g * k + 2 * g + 2].reshape(2, -1) for k in range(l // 2 // g)], 1)
    np.testing.assert_allclose((wide @ layout.down_band(w, g)).reshape(2, l // 2, co).numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    wt = torch.randn(c, co, 4)  # ConvTranspose1d
    ref_t = torch.nn.functional.conv_transpose1d(x, wt, padding=1, stride=2).transpose(1, 2)  # (n, 2l, co)
    xt = torch.nn.functional.pad(x, (1, 1)).transpose(1, 2)
    q = xt @ layout.up_taps(wt)  # (n, l + 2, 4 co): [W3 | W1 | W2 | W0] per input row
    even = q[:, :-2, :co] + q[:, 1:-1, co:2 * co]
    odd = q[:, 1:-1, 2 * co:3 * co] + q[:, 2:, 3 * co:]
    got = torch.stack([even, odd], 2).reshape(2, 2 * l, co)
    np.testing.assert_allclose(got.numpy(), ref_t.numpy(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- the native library: build and trust
@pytest.fixture
def fresh_state():
    """A clean build state for this test (the loaded library of the session is put back after)."""
    saved = dict(native._STATE)
    native._STATE.clear()
    yield
    native._STATE.clear()
    native._STATE.update(saved)


def test_no_compiler_falls_back_to_gemm(monkeypatch, fresh_state, tmp_path):
    monkeypatch.setenv("GANAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_compiler", lambda: None)
    assert native.library() is None and "no C compiler" in native.status()
    D = runtime.compile(frozen_copy(build_discriminator("conv1d", (1, 64), 4, 3)))
    x = torch.randn(4, 1, 64)
    with torch.no_grad(), runtime.use("native"):
        assert D.runner_for(x) == "gemm"
        logit, feats = D(x)
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


@pytest.mark.skipif(native.library() is None, reason="native kernels not built here")
@pytest.mark.skipif(sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 flags")
def test_kernels_built_without_avx512_compute_the_same(monkeypatch, fresh_state, tmp_path):
    """The 256-bit blocks (``#else`` of ``__AVX512F__`` in _native.c: what a CPU without AVX-512 builds)
    give the eager modules' results too, on every column block (64 / 32 / 16 / 8 / 4 channels)."""
    monkeypatch.setenv("GANAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_FLAGS", native._FLAGS + ["-mno-avx512f"])
    assert native.library() is not None, native.status()
    assert str(tmp_path) in native.status()
    torch.manual_seed(0)
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (1, 256), 8, 4, "tanh"))))
    D = runtime.compile(frozen_copy(trained_like(build_discriminator("conv1d", (1, 256), 8, 4))))
    z, x = torch.randn(13, 8), torch.randn(13, 1, 256)
    with torch.no_grad(), runtime.use("native"):
        assert G.runner_for(z) == "native" and D.runner_for(x) == "native"
    _close(*_both("native", lambda: G(z)))
    _close(*_both("native", lambda: D.forward_features(x)))


def test_cache_directory_ignores_a_relative_xdg_cache_home(monkeypatch, tmp_path):
    """A relative XDG_CACHE_HOME is invalid (XDG spec): never a directory under the CWD."""
    monkeypatch.delenv("GANAD_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for xdg in ("relative/cache", ""):
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert native.cache_dir() == tmp_path / ".cache" / "ganad"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native.cache_dir() == tmp_path / "xdg" / "ganad"


@pytest.mark.skipif(native.library() is None, reason="native kernels not built here")
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


@pytest.mark.skipif(native.library() is None, reason="native kernels not built here")
def test_python_thread_path_equals_openmp_path(monkeypatch):
    """Where the library was built without OpenMP, Python threads split the batch: same results."""
    torch.manual_seed(4)
    E = runtime.compile(frozen_copy(trained_like(build_encoder("conv1d", (1, 64), 6, 4, 3))))
    x = torch.randn(301, 1, 64)
    with torch.no_grad(), runtime.use("native"):
        assert E.runner_for(x) == "native"
        ref = E(x)
        monkeypatch.setitem(native._STATE, "openmp", False)
        other = E(x)
    _close(other, ref, rtol=1e-6)


REPO = Path(__file__).resolve().parents[1]

PLANT = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(getenv("PLANT_MARK"), "w"); if (f) { fputs("ran", f); fclose(f); }
}
int ganad_openmp(void) { return 0; }
void ganad_stack(void) {}
int ganad_run(void) { return 0; }
"""

# plant a library at the exact cache name, then use the kernels on a small conv1d model
SCRIPT = """
import os, shutil, sys, warnings
import numpy as np
warnings.simplefilter("always")
from ganad.runtime import native
plant = os.environ.get("PLANT_SO")
if plant:
    t = native._target(native._compiler(), native._FLAGS + native._OPENMP)
    t.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(plant, t)
    if os.environ.get("PLANT_HASH"):
        t.with_name(t.name + ".sha256").write_text(native._sha256(t))
ok = native.available()
from ganad import BiGAN
X = np.random.RandomState(0).randn(40, 1, 32).astype(np.float32)
s = BiGAN(epochs=1, random_state=0, width=4, depth=2).fit(X).decision_function(X)
assert np.isfinite(s).all()
print("AVAILABLE", ok, native.status())
"""


def _run(tmp_path, env_extra, mode=0o700):
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    os.chmod(cache, mode)
    env = {**os.environ, "GANAD_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
           "PLANT_MARK": str(tmp_path / "planted-ran"), **env_extra}
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    return r


def _planted(tmp_path) -> str:
    src = tmp_path / "plant.c"
    src.write_text(PLANT)
    so = tmp_path / "plant.so"
    subprocess.run([native._compiler(), "-shared", "-fPIC", str(src), "-o", str(so)], check=True)
    return str(so)


@needs_cc
def test_planted_library_without_recorded_hash_is_rebuilt_never_loaded(tmp_path):
    r = _run(tmp_path, {"PLANT_SO": _planted(tmp_path)})
    assert not (tmp_path / "planted-ran").exists()
    assert "AVAILABLE True" in r.stdout and "rebuilding" in r.stderr


@needs_cc
def test_cache_writable_by_others_is_never_loaded_from(tmp_path):
    r = _run(tmp_path, {"PLANT_SO": _planted(tmp_path), "PLANT_HASH": "1"}, mode=0o777)
    assert not (tmp_path / "planted-ran").exists()
    assert "AVAILABLE False" in r.stdout and "writable by group or others" in r.stderr and "RuntimeWarning" in r.stderr


@needs_cc
@pytest.mark.parametrize("kind", ["garbage", "no-symbols"])
def test_bad_compiler_output_falls_back_with_a_warning(tmp_path, kind):
    cc = tmp_path / "fakecc"
    if kind == "garbage":  # exits 0 but writes junk to the -o file
        body = 'out=""; while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done; echo junk > "$out"'
    else:  # a real ELF, without the kernels' symbols
        (tmp_path / "empty.c").write_text("int nothing(void) { return 0; }\n")
        body = (f'out=""; while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done; '
                f'{native._compiler()} -shared -fPIC {tmp_path / "empty.c"} -o "$out"')
    cc.write_text("#!/bin/sh\n" + body + "\n")
    cc.chmod(0o755)
    r = _run(tmp_path, {"CC": str(cc)})
    assert "AVAILABLE False" in r.stdout and "rebuilding" in r.stderr and "GEMM programs" in r.stderr


@pytest.mark.parametrize("kind", RUNNERS)
def test_runners_survive_deepcopy(kind):
    """A detector copied with its runners (copy.deepcopy) scores with them as before."""
    import copy

    torch.manual_seed(11)
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3))))
    z = torch.randn(5, 8)
    with torch.no_grad(), runtime.use(kind):
        ref = G(z)
        G2 = copy.deepcopy(G)
        assert G2.runner_for(z) == kind
        _close(G2(z), ref, rtol=1e-6)


def test_auto_uses_gemm_only_for_batches_where_it_earns_its_place(monkeypatch):
    """Without the native kernels, ``use("auto")`` hands gemm only batches of at least
    GEMM_AUTO_MIN_BATCH samples (measured: below that it is not 1.5x eager); ``use("gemm")`` forces it."""
    from ganad.runtime import runner as rr
    torch.manual_seed(5)
    G = runtime.compile(frozen_copy(build_generator("conv1d", 8, (1, 64), 4, 3)))
    monkeypatch.setattr(type(G), "native_runner", lambda self: None)
    small, large = torch.randn(rr.GEMM_AUTO_MIN_BATCH - 1, 8), torch.randn(rr.GEMM_AUTO_MIN_BATCH, 8)
    with runtime.use("auto"):
        assert G.runner_for(small) == "eager" and G.runner_for(large) == "gemm"
        _close(G(large), G.module(large))
    with runtime.use("gemm"):
        assert G.runner_for(small) == "gemm"


@pytest.mark.skipif(native.library() is None, reason="native kernels not built here")
@pytest.mark.parametrize("M,K,N", [(1024, 2, 8), (1031, 4, 4), (4352, 16, 64), (2049, 8, 24), (3000, 64, 256), (1500, 3, 5)])
def test_native_mm_equals_matmul(M, K, N, monkeypatch):
    """The narrow products of training's conv layers (native.mm: the one-tap pass over row blocks)."""
    g = torch.Generator().manual_seed(M + K + N)
    a, b = torch.randn(M, K, generator=g), torch.randn(K, N, generator=g)
    with torch.no_grad(), runtime.use("native"):  # whatever GANAD_RUNTIME says
        got = native.mm(a, b)
        assert got.data_ptr() != (a @ b).data_ptr()
        np.testing.assert_allclose(got.numpy(), (a @ b).numpy(), rtol=1e-5, atol=1e-5 * float(b.abs().sum(0).max()))
        # each row is summed in one order whatever the thread count
        n = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            one = native.mm(a, b)
            torch.set_num_threads(2)
            monkeypatch.setitem(native._STATE, "openmp", False)  # no OpenMP, 2 threads: MKL's product
            threads = native.mm(a, b)
        finally:
            torch.set_num_threads(n)
        assert torch.equal(one, got) and torch.equal(threads, a @ b)


def test_native_mm_falls_back_to_matmul(monkeypatch):
    calls = []
    lib = native.library()
    if lib is not None:
        real = lib.ganad_gemm
        monkeypatch.setattr(lib, "ganad_gemm", lambda *a: calls.append(a) or real(*a))
    a, b = torch.randn(2048, 8), torch.randn(8, 16)
    with torch.no_grad():
        for x, y in [(a[:100], b), (torch.randn(2048, 100), torch.randn(100, 8)), (a.double(), b.double())]:
            assert torch.equal(native.mm(x, y), x @ y)  # few rows, a wide inner size, float64
        with runtime.use("eager"):  # the eager runtime is PyTorch only
            assert torch.equal(native.mm(a, b), a @ b)
        with runtime.use("gemm"):
            assert torch.equal(native.mm(a, b), a @ b)
    assert calls == []
    with torch.enable_grad():  # a double backward needs differentiable products
        assert torch.equal(native.mm(a, b), a @ b) and calls == []
    if lib is not None:
        with torch.no_grad(), runtime.use("native"):
            native.mm(a, b)
        assert len(calls) == 1


@pytest.mark.skipif(native.library() is None, reason="native kernels not built here")
@pytest.mark.parametrize("M,K,N", [(4096, 8, 8), (33279, 4, 2), (8448, 16, 16), (5000, 3, 5), (4352, 64, 64), (6000, 9, 17)])
def test_native_mm_tn_equals_matmul(M, K, N):
    """The weight gradients' products a' b (native.mm_tn: chunks summed in chunk order)."""
    g = torch.Generator().manual_seed(M + K + N)
    a, b = torch.randn(M, K, generator=g), torch.randn(M, N, generator=g)
    with torch.no_grad(), runtime.use("native"):  # whatever GANAD_RUNTIME says
        got = native.mm_tn(a, b)
        ref = (a.double().T @ b.double()).float()
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-4, atol=2e-6 * M ** 0.5 * 10)
        n = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            one = native.mm_tn(a, b)
        finally:
            torch.set_num_threads(n)
        assert torch.equal(one, got)  # the same whatever the thread count
        assert torch.equal(native.mm_tn(a[:100], b[:100]), a[:100].T @ b[:100])  # few rows: a' b


@pytest.mark.parametrize("kind", RUNNERS)
def test_compiled_runners_ignore_a_float64_default_dtype(kind):
    """``torch.set_default_dtype(torch.float64)`` in the user's session: the compiled runners and
    training's native products still compute in float32 (their buffers were the default dtype: the
    kernels wrote float32 into float64 memory, garbage scores; the GEMM programs raised)."""
    torch.manual_seed(12)
    E = runtime.compile(frozen_copy(trained_like(build_encoder("conv1d", (1, 64), 8, 4, 3))))
    G = runtime.compile(frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3))))
    D = runtime.compile(frozen_copy(trained_like(build_discriminator("conv1d", (1, 64), 4, 3))))
    x, z = torch.randn(7, 1, 64), torch.randn(7, 8)
    a, b, c = torch.randn(4096, 8), torch.randn(8, 16), torch.randn(4096, 4)
    with torch.no_grad(), runtime.use("eager"):
        ref = (E(x), G(z), *D.forward_features(x))
    mm_ref = (a @ b, (a.double().T @ c.double()).float())
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.no_grad(), runtime.use(kind):
            assert E.runner_for(x) == kind and G.runner_for(z) == kind and D.runner_for(x) == kind
            got = (E(x), G(z), *D.forward_features(x))
            fused = runtime.encode_generate_discriminate(E, G, D, x)
            mm = (native.mm(a, b), native.mm_tn(a, c))
    finally:
        torch.set_default_dtype(old)
    for g, r in zip(got, ref):
        assert g.dtype == torch.float32
        _close(g, r)
    _close(fused["z"], ref[0])
    with torch.no_grad():
        _close(fused["x_hat"], G.module(fused["z"]))
        _close(fused["d_x"], ref[2:])
    for g, r in zip(mm, mm_ref):
        assert g.dtype == torch.float32
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-4, atol=1e-3)


THREADS_SCRIPT = """
import os, threading, torch
from ganad.runtime import native
assert native.library() is not None and native._STATE.get("openmp"), native.status()
torch.set_num_threads(2)
a, b = torch.randn(8192, 8), torch.randn(8192, 8)
added = []

def work():  # a fresh thread: its OpenMP setting is still OMP_NUM_THREADS=8, not torch's 2
    before = len(os.listdir("/proc/self/task"))
    with torch.no_grad():
        native.mm_tn(a, b)
    added.append(len(os.listdir("/proc/self/task")) - before)

t = threading.Thread(target=work)
t.start()
t.join()
print("ADDED", added[0])
"""


@pytest.mark.skipif(native.library() is None or not native._STATE.get("openmp"), reason="no OpenMP kernels here")
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_native_products_use_torchs_thread_count_in_a_fresh_thread():
    """torch.set_num_threads(2): mm_tn runs on at most 2 threads, also in a thread that has not run a
    PyTorch operation yet (whose OpenMP setting is OMP_NUM_THREADS', 8 here: 7 threads were started)."""
    env = {**os.environ, "OMP_NUM_THREADS": "8", "PYTHONPATH": str(REPO / "src"), "GANAD_RUNTIME": "native"}
    r = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.split("ADDED")[1]) <= 1, r.stdout


def test_windows_folder_modes_are_not_read_as_writable_by_others(monkeypatch):
    """Portability audit (twenty-fifth session): Windows reports every folder as mode 777, so the cache
    check warned on every process to use a 0700 folder, which chmod cannot make there."""
    import os
    import stat

    from ganad.runtime import native
    st = os.stat_result((stat.S_IFDIR | 0o777, 0, 0, 0, os.getuid(), 0, 0, 0, 0, 0))
    assert "writable by group or others" in native._foreign(st, "cache")
    monkeypatch.setattr(native, "_WINDOWS", True)
    assert native._foreign(st, "cache") is None
