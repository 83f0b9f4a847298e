"""The CPU GEMM programs of frozen conv1d networks (ganad.nets.fast1d) against the modules."""

import numpy as np
import pytest
import torch

from ganad.inversion.latent_search import LatentSearch
from ganad.nets import build_discriminator, build_encoder, build_generator
from ganad.nets import fast1d
from ganad.nets.fast1d import MIN_COLS, DownProgram, GeneratorProgram
from ganad.nets.inference import frozen_copy

from _nets import trained_like
from ganad.training.priors import make_prior


@pytest.fixture(autouse=True)
def _gemm_programs():
    """This file tests the GEMM programs; the native kernels that replace their forward where a C
    compiler is found are tested against both in test_native.py."""
    from ganad.nets import native

    with native.disabled():
        yield


def _module_forward(m, x):
    """The module path: the same frozen copy with its program switched off."""
    fast = m.__dict__.pop("_fast")
    try:
        return m(x)
    finally:
        m._fast = fast


SHAPES = [(1, 256, 4, 4), (1, 256, 8, 4), (2, 64, 4, 3), (3, 32, 16, 2), (1, 48, 4, 3)]
# (1, 40, 4, 2) with 23 samples: the first layer's rows do not split into whole bands (transposed form)
DOWN_SHAPES = SHAPES[:4] + [(1, 40, 4, 2)]


@pytest.mark.parametrize("channels,length,width,depth", SHAPES)
@pytest.mark.parametrize("out_act", ["linear", "tanh", "sigmoid"])
def test_generator_program_equals_module(channels, length, width, depth, out_act):
    torch.manual_seed(0)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (channels, length), width, depth, out_act)))
    assert isinstance(G._fast, GeneratorProgram)
    for n in (37, 40):  # 40: the last layer's rows split into whole bands; 37: they do not (transposed form)
        z = torch.randn(n, 8)
        with torch.no_grad():
            fast, ref = G(z), _module_forward(G, z)
        assert fast.shape == ref.shape == (n, channels, length)
        np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels,length,width,depth", SHAPES)
@pytest.mark.parametrize("out_act", ["linear", "tanh"])
def test_generator_program_gradient_equals_autograd(channels, length, width, depth, out_act):
    torch.manual_seed(1)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (channels, length), width, depth, out_act)))
    prog = G._fast
    z = torch.randn(19, 8)
    x = torch.randn(19, channels, length)
    zr = z.clone().requires_grad_(True)
    loss = (_module_forward(G, zr) - x).square().flatten(1).mean(1).sum()
    (ref,) = torch.autograd.grad(loss, zr)
    with torch.no_grad():
        dist, grad = LatentSearch(distance="l2")._fast_value_and_grad(prog, z, prog.pad_target(x))
    np.testing.assert_allclose(grad.numpy(), ref.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dist.numpy(), (_module_forward(G, z) - x).square().flatten(1).mean(1).detach().numpy(),
                               rtol=1e-5)


@pytest.mark.parametrize("channels,length,width,depth", DOWN_SHAPES)
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_discriminator_program_equals_module(channels, length, width, depth, spectral_norm):
    torch.manual_seed(2)
    D = build_discriminator("conv1d", (channels, length), width, depth, spectral_norm, feature_layer=-2)
    D = frozen_copy(trained_like(D))
    assert isinstance(D._fast, DownProgram)
    x = torch.randn(23, channels, length)
    with torch.no_grad():
        (lf, ff), (lr, fr) = D(x), _module_forward(D, x)
    np.testing.assert_allclose(lf.numpy(), lr.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ff.numpy(), fr.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels,length,width,depth", DOWN_SHAPES[:3])
def test_joint_discriminator_program_equals_module(channels, length, width, depth):
    """BiGAN's D(x, z): its conv1d x-blocks run as a program too."""
    from ganad.nets.joint import JointDiscriminator

    torch.manual_seed(9)
    D = frozen_copy(trained_like(JointDiscriminator("conv1d", (channels, length), 8, width, depth, spectral_norm=True)))
    assert isinstance(D._fast, DownProgram)
    x, z = torch.randn(23, channels, length), torch.randn(23, 8)
    with torch.no_grad():
        (lf, ff) = D(x, z)
        fast = D.__dict__.pop("_fast")
        (lr, fr) = D(x, z)
        D._fast = fast
    np.testing.assert_allclose(lf.numpy(), lr.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ff.numpy(), fr.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels,length,width,depth", DOWN_SHAPES)
def test_encoder_program_equals_module(channels, length, width, depth):
    torch.manual_seed(3)
    E = frozen_copy(trained_like(build_encoder("conv1d", (channels, length), 6, width, depth)))
    assert isinstance(E._fast, DownProgram)
    x = torch.randn(29, channels, length)
    with torch.no_grad():
        np.testing.assert_allclose(E(x).numpy(), _module_forward(E, x).numpy(), rtol=1e-5, atol=1e-5)


def test_both_matmul_forms_are_exercised():
    """Layers with narrow outputs multiply in transposed form, wide ones in row form."""
    G = frozen_copy(build_generator("conv1d", 8, (1, 256), 4, 4))
    assert [u.rows_fwd for u in G._fast.ups] == [4 * u.co >= MIN_COLS for u in G._fast.ups]
    assert not G._fast.ups[-1].rows_fwd and G._fast.ups[0].rows_fwd


def test_fallbacks_to_the_module():
    torch.manual_seed(4)
    # a length the stride-2 stack cannot halve exactly: no program, the module path runs
    E = frozen_copy(build_encoder("conv1d", (1, 50), 4, 4, 3))
    assert E._fast is None
    assert E(torch.randn(3, 1, 50)).shape == (3, 4)
    # gradients w.r.t. the input: the module path (autograd) runs
    G = frozen_copy(build_generator("conv1d", 8, (1, 64), 4, 3))
    z = torch.randn(5, 8, requires_grad=True)
    G(z).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    # training-mode networks never get a program
    assert build_generator("conv1d", 8, (1, 64), 4, 3).__dict__.get("_fast") is None


@pytest.mark.parametrize("distance", ["l2", "l1", "rbf"])
def test_latent_search_fast_path_matches_autograd_path(distance):
    """The search through the program follows the autograd search step for step."""
    torch.manual_seed(5)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3)))
    x = G(torch.randn(16, 8)) + 0.05 * torch.randn(16, 1, 64)
    search = LatentSearch(distance=distance, n_max=60, eps=1e-3, lr=0.05)
    prior = make_prior("normal")
    fast = search.run(G, x, prior, latent_dim=8, seed=3)
    prog = G.__dict__.pop("_fast")
    try:
        ref = search.run(G, x, prior, latent_dim=8, seed=3)
    finally:
        G._fast = prog
    np.testing.assert_array_equal(fast.iterations.numpy(), ref.iterations.numpy())
    np.testing.assert_allclose(fast.distance.numpy(), ref.distance.numpy(), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(fast.z.numpy(), ref.z.numpy(), rtol=1e-3, atol=1e-4)


def test_detector_scores_equal_with_the_fast_path_disabled():
    """Encoder scoring and latent search give the module path's scores, and disabled() switches it off."""
    from ganad import AnoGAN, FAnoGAN

    rng = np.random.RandomState(0)
    t = np.linspace(0, 1, 64)
    X = (np.sin(2 * np.pi * (t[None] * rng.uniform(1, 3, (96, 1)))) + 0.1 * rng.randn(96, 64))[:, None].astype(np.float32)
    for det in (FAnoGAN(epochs=1, random_state=0, verbose=False),
                AnoGAN(epochs=1, random_state=0, verbose=False, search_n_max=20)):
        det.fit(X[:64])
        assert det._inference_net("G")._fast is not None
        fast = det.decision_function(X[64:])
        calls = []
        orig = GeneratorProgram.forward_saved
        GeneratorProgram.forward_saved = lambda self, z: calls.append(1) or orig(self, z)
        try:
            with fast1d.disabled():
                ref = det.decision_function(X[64:])
        finally:
            GeneratorProgram.forward_saved = orig
        assert not calls  # disabled() really runs the module path
        np.testing.assert_allclose(fast, ref, rtol=1e-3, atol=1e-5)


def test_performance_doc_examples_run():
    """The Python examples of docs/performance.md run as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "performance.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 4
    ns: dict = {}
    exec(compile("\n".join(blocks), "docs/performance.md", "exec"), ns)
    fast = ns["det"].score_components(ns["X"][500:]).components["residual"]
    # 200 Adam steps per sample amplify float32 round-off between the two paths: agreement to 1 %
    np.testing.assert_allclose(ns["reference"], fast, rtol=1e-2, atol=1e-5)


def test_large_batches_run_in_blocks_with_the_same_result():
    torch.manual_seed(6)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3)))
    D = frozen_copy(trained_like(build_discriminator("conv1d", (1, 64), 4, 3)))
    z, x = torch.randn(50, 8), torch.randn(50, 1, 64)
    with torch.no_grad():
        g_one, d_one = G(z), D(x)
        G._fast.block = D._fast.block = 16  # 50 samples: four blocks of 13, 13, 13, 11
        g_blk, d_blk = G(z), D(x)
    np.testing.assert_allclose(g_blk.numpy(), g_one.numpy(), rtol=1e-6, atol=1e-6)
    for a, b in zip(d_blk, d_one):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [1, 37])
def test_results_do_not_alias_the_reused_scratch(n):
    """Programs reuse their intermediate buffers from call to call; what they return must not be
    one of them (n = 1 is where a slice of the scratch would be contiguous and easy to return)."""
    torch.manual_seed(7)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3)))
    D = frozen_copy(trained_like(build_discriminator("conv1d", (1, 64), 4, 3)))
    E = frozen_copy(trained_like(build_encoder("conv1d", (1, 64), 8, 4, 3)))
    z1, z2 = torch.randn(n, 8), torch.randn(n, 8)
    x1, x2 = torch.randn(n, 1, 64), torch.randn(n, 1, 64)
    with torch.no_grad():
        g1, d1, e1 = G(z1), D(x1), E(x1)
        keep = [g1.clone(), d1[0].clone(), d1[1].clone(), e1.clone()]
        G(z2), D(x2), E(x2)  # would overwrite anything still pointing into the scratch
    for a, b in zip([g1, d1[0], d1[1], e1], keep):
        assert torch.equal(a, b)


def test_scratch_is_per_thread():
    """Two threads scoring with the same frozen networks at once get the single-thread results."""
    import threading

    torch.manual_seed(8)
    G = frozen_copy(trained_like(build_generator("conv1d", 8, (1, 64), 4, 3)))
    zs = [torch.randn(200, 8) for _ in range(2)]
    with torch.no_grad():
        ref = [G(z) for z in zs]
    out = [None, None]

    def work(i):
        with torch.no_grad():
            for _ in range(20):
                r = G(zs[i])
                if not torch.equal(r, ref[i]):
                    out[i] = "differs"
                    return
            out[i] = "same"

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == ["same", "same"]


def test_encoder_scoring_runs_in_program_blocks_with_the_same_scores():
    """Encoder scoring on CPU steps through the programs' block size whatever score_batch_size is,
    with the scores of small batches; the latent search and disabled() keep score_batch_size."""
    from ganad import FAnoGAN

    rng = np.random.RandomState(1)
    X = rng.randn(300, 1, 64).astype(np.float32).cumsum(-1) * 0.1
    det = FAnoGAN(epochs=1, random_state=0, verbose=False, score_batch_size=4096).fit(X[:200])
    block = det._inference_net("G")._fast.block
    assert det._score_chunk(4096) == min(block, det._inference_net("E")._fast.block, det._inference_net("D")._fast.block)
    assert det._score_chunk(16) == 16
    with fast1d.disabled():
        assert det._score_chunk(4096) == 4096
    det.set_params(inversion="search")
    assert det._score_chunk(4096) == 4096
    det.set_params(inversion="encoder")
    for p in ("E", "G", "D"):
        det._inference_net(p)._fast.block = 32  # 100 samples in steps of 32
    big = det.decision_function(X[200:])
    det.set_params(score_batch_size=7)
    np.testing.assert_allclose(big, det.decision_function(X[200:]), rtol=1e-5, atol=1e-6)
