import pytest
import torch

from ganad.nets import build_discriminator, build_encoder, build_generator, default_depth, default_width, resolve_family
from ganad.nets.conv1d import Down1d, Up1d
from ganad.nets.inference import frozen_copy

SHAPES = [((7,), "mlp"), ((1, 256), "conv1d"), ((3, 50), "conv1d"), ((2, 33), "lstm"), ((1, 28, 28), "dcgan"),
          ((3, 8, 8), "dcgan"), ((1, 64), "mlp")]


@pytest.mark.parametrize("shape,family", SHAPES)
def test_families_produce_the_data_shape(shape, family):
    torch.manual_seed(0)
    w, d = default_width(family), default_depth(family, shape)
    G = build_generator(family, 8, shape, w, d)
    D = build_discriminator(family, shape, w, d)
    E = build_encoder(family, shape, 8, w, d)
    x = G(torch.randn(4, 8))
    assert x.shape == (4, *shape)
    logit, feats = D(x)
    assert logit.shape == (4,) and feats.shape[0] == 4 and feats.dim() == 2
    assert E(x).shape == (4, 8)


def test_auto_family_follows_the_array_shape():
    assert resolve_family("auto", (5,)) == "mlp"
    assert resolve_family("auto", (1, 100)) == "conv1d"
    assert resolve_family("auto", (1, 8, 8)) == "dcgan"
    with pytest.raises(ValueError, match="does not fit"):
        resolve_family("dcgan", (1, 100))


@pytest.mark.parametrize("length", [4, 5, 16, 17, 100, 256])
def test_matmul_convolutions_equal_torch(length):
    torch.manual_seed(0)
    x = torch.randn(3, 4, length)
    down, up = Down1d(4, 6), Up1d(4, 6)
    ref = torch.nn.functional.conv1d(x, down.weight, down.bias, stride=2, padding=1)
    torch.testing.assert_close(down(x.transpose(1, 2)).transpose(1, 2), ref, atol=1e-5, rtol=1e-5)
    ref = torch.nn.functional.conv_transpose1d(x, up.weight, up.bias, stride=2, padding=1)
    torch.testing.assert_close(up(x.transpose(1, 2)).transpose(1, 2), ref, atol=1e-5, rtol=1e-5)


def test_matmul_weight_cache_follows_weight_updates():
    up = Up1d(2, 3)
    x = torch.randn(2, 5, 2)
    with torch.no_grad():
        a = up(x)
        up.weight.add_(1.0)  # in-place update bumps the version: the cache must not be stale
        b = up(x)
    assert not torch.allclose(a, b)


class _SameStorage(torch.nn.Module):
    """A parametrization whose every result lies in the same memory (version 1 each time), as a
    freed spectral-norm weight's memory comes back to the next one's: the conv1d layers' matmul-weight
    cache, keyed on address and version, must not serve an earlier result."""

    def __init__(self, like):
        super().__init__()
        self.store = torch.empty_like(like)

    def forward(self, w):
        out = torch.empty(0, dtype=w.dtype).set_(self.store.untyped_storage(), 0, w.shape, w.stride())
        return out.copy_(w * 2)


@pytest.mark.parametrize("cls", [Down1d, Up1d])
def test_matmul_weight_cache_skips_parametrized_weights(cls):
    from torch.nn.utils import parametrize

    from ganad.training.adversarial import frozen

    torch.manual_seed(0)
    m = cls(2, 3)
    parametrize.register_parametrization(m, "weight", _SameStorage(m.weight))
    x = torch.randn(2, 6, 2)
    orig = m.parametrizations.weight.original
    for _ in range(3):
        with frozen(m):  # a generator step through a frozen discriminator
            a = m(x)
        ref = m(x).detach()  # weights requiring gradients: built at every call
        torch.testing.assert_close(a, ref)
        with torch.no_grad():
            orig.add_(torch.randn_like(orig))

    # spectral norm (ALAD's default, BiGAN's option) in training: every frozen forward uses the
    # current weight, whatever memory it was computed into
    d = Down1d(2, 3)
    torch.nn.utils.parametrizations.spectral_norm(d)
    opt = torch.optim.SGD(d.parameters(), lr=0.1)
    for _ in range(50):
        with frozen(d), parametrize.cached():
            torch.testing.assert_close(d._mm_weight(), d._build(d.weight), rtol=0, atol=0)
        opt.zero_grad()
        d(x).square().sum().backward()
        opt.step()


@pytest.mark.parametrize("shape,family", [((1, 64), "conv1d"), ((6,), "mlp"), ((1, 8, 8), "dcgan")])
def test_frozen_copy_computes_the_same_function(shape, family):
    torch.manual_seed(0)
    G = build_generator(family, 8, shape, default_width(family), default_depth(family, shape))
    G.train()
    for _ in range(3):  # give BatchNorm non-trivial running statistics
        G(torch.randn(32, 8))
    G.eval()
    F = frozen_copy(G)
    z = torch.randn(5, 8)
    torch.testing.assert_close(F(z), G(z), atol=1e-5, rtol=1e-4)
    assert not any(p.requires_grad for p in F.parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in F.modules()) or family == "dcgan"


def test_matmul_convolutions_gradients():
    torch.manual_seed(0)
    for layer, length in [(Down1d(3, 4), 9), (Down1d(3, 4), 10), (Up1d(3, 4), 7)]:
        layer = layer.double()
        x = torch.randn(2, length, 3, dtype=torch.double, requires_grad=True)
        assert torch.autograd.gradcheck(lambda inp: layer(inp), (x,))
        # weight gradients equal those of torch's own convolution
        xt = x.detach().transpose(1, 2)
        if isinstance(layer, Down1d):
            ref = torch.nn.functional.conv1d(xt, layer.weight, layer.bias, stride=2, padding=1)
        else:
            ref = torch.nn.functional.conv_transpose1d(xt, layer.weight, layer.bias, stride=2, padding=1)
        g_ref = torch.autograd.grad(ref.square().sum(), layer.weight)[0]
        g = torch.autograd.grad(layer(x.detach()).square().sum(), layer.weight)[0]
        torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize("cls,c_in,c_out,length", [("Down1d", 4, 8, 256), ("Down1d", 8, 16, 67), ("Up1d", 16, 8, 64), ("Up1d", 2, 4, 128)])
def test_training_batches_through_the_native_products_equal_torch_convolutions(cls, c_in, c_out, length, monkeypatch):
    """float32 training batches large enough for the native kernels (the forward on the stack
    kernels for even lengths, native.down_forward / up_forward, else native.mm; input gradients on
    native.mm, weight gradients on native.mm_tn): the same values as torch's own (transposed)
    convolution within float32 round-off."""
    from ganad import runtime
    from ganad.runtime import native
    if native.library() is None:
        pytest.skip("native kernels not built here")
    lib = native.library()
    counts = {"ganad_gemm": 0, "ganad_gemm_tn": 0, "ganad_run": 0, "ganad_stack": 0}
    for name in counts:
        real = getattr(lib, name)
        monkeypatch.setattr(lib, name, lambda *a, _r=real, _n=name: counts.__setitem__(_n, counts[_n] + 1) or _r(*a))
    torch.manual_seed(0)
    layer = (Down1d if cls == "Down1d" else Up1d)(c_in, c_out)
    x = torch.randn(128, length, c_in, requires_grad=True)
    with runtime.use("native"):  # whatever GANAD_RUNTIME says (eager / gemm keep torch's products)
        y = layer(x)
        go = torch.randn_like(y)
        gx, gw, gb = torch.autograd.grad(y, (x, layer.weight, layer.bias), go)
    xt = x.detach().transpose(1, 2).requires_grad_(True)
    conv = torch.nn.functional.conv1d if cls == "Down1d" else torch.nn.functional.conv_transpose1d
    ref = conv(xt, layer.weight, layer.bias, stride=2, padding=1).transpose(1, 2)
    rx, rw, rb = torch.autograd.grad(ref, (xt, layer.weight, layer.bias), go)
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gx, rx.transpose(1, 2), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(gb, rb, rtol=1e-4, atol=1e-3)
    stack = counts["ganad_run"] + counts["ganad_stack"]  # ganad_run with OpenMP, else ganad_stack per piece
    if length % 2 == 0:  # the forward on the stack kernels, the input gradient on ganad_gemm
        assert stack >= 1 and counts["ganad_gemm"] >= 1
    else:  # an odd-length Down1d keeps its matmul form forward (one output row more, sliced off)
        assert stack == 0 and counts["ganad_gemm"] >= 2
    assert counts["ganad_gemm_tn"] >= 2  # weight gradients


def test_traceable_path_equals_the_fast_path():
    from ganad.nets.conv1d import _up_functional
    torch.manual_seed(0)
    up = Up1d(3, 5)
    x = torch.randn(4, 9, 3)
    with torch.no_grad():
        torch.testing.assert_close(_up_functional(x, up._mm_weight()) + up.bias, up(x))


def test_fused_bias_activation_matches_separate_modules():
    torch.manual_seed(0)
    for layer, act in [(Up1d(3, 5), torch.nn.ReLU()), (Down1d(3, 5), torch.nn.LeakyReLU(0.2))]:
        seq = torch.nn.Sequential(layer, act).double()
        x = torch.randn(4, 12, 3, dtype=torch.double)
        ref = seq(x)
        fused = frozen_copy(seq)
        assert isinstance(fused[1], torch.nn.Identity) and fused[0].fused_slope is not None
        torch.testing.assert_close(fused(x), ref)
        xg = x.clone().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda inp: fused(inp), (xg,))
    seq = torch.nn.Sequential(Down1d(3, 5), torch.nn.LeakyReLU(0.2))  # odd length takes the unfused tail
    x = torch.randn(2, 11, 3)
    torch.testing.assert_close(frozen_copy(seq)(x), seq(x))


@pytest.mark.parametrize("rows, c, momentum", [(4096, 8, 0.1), (8192, 4, None), (8193, 4, 0.1)])
def test_few_channel_batchnorm_equals_torch(rows, c, momentum):
    """ChannelNorm's folded training kernel (<= 8 channels, >= 32,768 values) gives BatchNorm1d's
    output, gradients and running statistics, including an odd row count (no folding)."""
    from ganad.nets.conv1d import ChannelNorm

    torch.manual_seed(0)
    norm, ref = ChannelNorm(c), torch.nn.BatchNorm1d(c, momentum=momentum)
    norm.bn.momentum = momentum
    with torch.no_grad():
        for bn in (norm.bn, ref):
            bn.weight.copy_(torch.linspace(0.5, 2.0, c))
            bn.bias.copy_(torch.linspace(-1.0, 1.0, c))
    ref.double()
    n = rows // 1 if rows % 8 else rows // 8
    l = rows // n
    for step in range(3):  # running statistics over several batches
        x = (torch.randn(n, l, c) * torch.linspace(0.1, 3.0, c) + 20.0).requires_grad_()  # a large mean: no cancellation allowed
        g = torch.randn(n, l, c)
        y = norm(x)
        y.backward(g)
        x_ref = x.detach().reshape(-1, c).double().requires_grad_()
        y_ref = ref(x_ref)
        y_ref.backward(g.reshape(-1, c).double())
        torch.testing.assert_close(y.reshape(-1, c).double(), y_ref, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(x.grad.reshape(-1, c).double(), x_ref.grad, atol=1e-4, rtol=1e-3)
        for p, q in ((norm.bn.weight, ref.weight), (norm.bn.bias, ref.bias)):
            torch.testing.assert_close(p.grad.double(), q.grad, atol=1e-2, rtol=1e-4)
            p.grad, q.grad = None, None
        torch.testing.assert_close(norm.bn.running_mean.double(), ref.running_mean, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(norm.bn.running_var.double(), ref.running_var, atol=1e-4, rtol=1e-5)
        assert int(norm.bn.num_batches_tracked) == int(ref.num_batches_tracked) == step + 1
        assert "FewChannelBatchNorm" in type(y.grad_fn.next_functions[0][0]).__name__  # the folded kernel ran


def test_few_channel_batchnorm_leaves_a_replaced_forward_alone():
    """A BatchNorm whose forward was replaced (global-batch statistics under DDP) is called as it is."""
    import types

    from ganad.nets.conv1d import ChannelNorm

    norm = ChannelNorm(4)
    calls = []

    def patched(self, x):
        calls.append(x.shape)
        return type(self).forward(self, x)

    norm.bn.forward = types.MethodType(patched, norm.bn)
    norm(torch.randn(64, 256, 4))
    assert calls == [(64 * 256, 4)]


def test_few_channel_batchnorm_refuses_double_backward():
    """No silent wrong second derivative: the folded kernel is differentiable once."""
    from ganad.nets.conv1d import ChannelNorm

    x = torch.randn(32, 256, 4, requires_grad=True)
    y = ChannelNorm(4)(x)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        gx.sum().backward()


@pytest.mark.parametrize("hook", ["full_backward", "global_forward", "global_backward"])
def test_few_channel_batchnorm_runs_every_hook(hook):
    """Hooks of every kind fire as they did through BatchNorm1d itself: a backward hook on the
    inner BatchNorm, or a global module hook, sends ChannelNorm down the plain path."""
    from torch.nn.modules import module as M

    from ganad.nets.conv1d import ChannelNorm

    norm, seen = ChannelNorm(4), []
    if hook == "full_backward":
        handle = norm.bn.register_full_backward_hook(lambda m, gi, go: seen.append(type(m).__name__))
    elif hook == "global_forward":
        handle = M.register_module_forward_hook(lambda m, i, o: seen.append(type(m).__name__))
    else:
        handle = M.register_module_full_backward_hook(lambda m, gi, go: seen.append(type(m).__name__))
    try:
        x = torch.randn(64, 128, 4, requires_grad=True)  # 32,768 values: the folded kernel's size
        norm(x).sum().backward()
    finally:
        handle.remove()
    assert "BatchNorm1d" in seen
    assert norm(torch.randn(64, 128, 4)).grad_fn is not None  # hooks removed: folded again
    assert "FewChannelBatchNorm" in type(norm(torch.randn(64, 128, 4)).grad_fn.next_functions[0][0]).__name__


@pytest.mark.parametrize("length", [10, 9])
def test_strided_convolution_second_derivatives(length):
    """Double backward through Down1d (create_graph, e.g. a penalty on the weight gradient) is
    exact: the padded input it saves stays connected to x, as F.pad outside the function was."""
    from torch.func import functional_call

    torch.manual_seed(0)
    layer = Down1d(3, 4).double()
    names = [k for k, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x = torch.randn(2, length, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda inp, *ps: functional_call(layer, dict(zip(names, ps)), (inp,)), (x, *params))
    # the same second derivative as torch's own convolution
    xt = x.detach().transpose(1, 2).requires_grad_()
    out = []
    for inp, f in ((x, lambda: layer(x)),
                   (xt, lambda: torch.nn.functional.conv1d(xt, layer.weight, layer.bias, stride=2, padding=1))):
        (gw,) = torch.autograd.grad(f().square().sum(), layer.weight, create_graph=True)
        out.append(torch.autograd.grad(gw.square().sum(), inp)[0])
    torch.testing.assert_close(out[0], out[1].transpose(1, 2))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript-based exporter, as ganad.export uses
@pytest.mark.parametrize("length", [10, 9])
def test_exported_strided_convolution_equals_the_fast_path(length):
    """Under tracing / ONNX export Down1d runs as plain operations (_down_functional): the exported
    graph gives the eager output (not the autograd function's second output, the padded input),
    bias and fused activation included, for even and odd lengths and another batch size."""
    import io

    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    layer = Down1d(2, 3).eval()
    layer.fused_slope = 0.2
    x = torch.randn(4, length, 2)
    f = io.BytesIO()
    torch.onnx.export(layer, (x,), f, input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False)
    sess = ort.InferenceSession(f.getvalue())
    for xb in (x, torch.randn(7, length, 2)):
        (out,) = sess.run(None, {"x": xb.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(out), layer(xb), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_keeps_each_element_with_probability_one_minus_p_and_rescales(p):
    from ganad.nets.blocks import Dropout
    torch.manual_seed(0)
    d = Dropout(p)
    x = torch.ones(400, 500, requires_grad=True)
    y = d(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # 200,000 draws: sd < 0.0012
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    # rows and columns alike (no element's bits shared with another's)
    assert kept.float().mean(0).std() < 0.05 and kept.float().mean(1).std() < 0.05
    y.sum().backward()  # the gradient passes where the element was kept, scaled the same way
    assert torch.equal(x.grad, y.detach())


def test_dropout_is_seeded_by_torch_and_the_identity_in_eval_mode():
    from ganad.nets.blocks import Dropout
    x = torch.randn(64, 33)
    d = Dropout(0.3)
    torch.manual_seed(5)
    a = d(x)
    torch.manual_seed(5)
    assert torch.equal(a, d(x))
    assert not torch.equal(a, d(x))  # the generator moved on: a new mask
    d.eval()
    assert d(x) is x
    assert torch.equal(Dropout(0.0)(x), x) and torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


@pytest.mark.parametrize("cls", ["Down1d", "Up1d"])
@pytest.mark.parametrize("slope", [None, 0.0, 0.2])
def test_training_forward_on_the_stack_kernels_fuses_bias_and_activation(cls, slope):
    """native.down_forward / up_forward (the layers' training forward on the stack kernels) with a
    fused activation: values and gradients equal the matmul form's (GANAD_RUNTIME=eager path, torch
    products) within round-off, and the forward does not depend on the thread count."""
    from ganad import runtime
    from ganad.runtime import native
    if native.library() is None:
        pytest.skip("native kernels not built here")
    torch.manual_seed(0)
    layer = (Down1d if cls == "Down1d" else Up1d)(6, 12)
    layer.fused_slope = slope
    x = torch.randn(96, 32, 6, requires_grad=True)

    def run():
        y = layer(x)
        go = torch.ones_like(y).uniform_(-1, 1, generator=torch.Generator().manual_seed(1))
        return (y, *torch.autograd.grad(y, (x, layer.weight, layer.bias), go))

    with runtime.use("eager"):
        ref = run()
    calls = []
    real = native._one_layer
    try:
        native._one_layer = lambda *a: calls.append(1) or real(*a)
        with runtime.use("native"):  # whatever GANAD_RUNTIME says
            got = run()
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                with torch.no_grad():
                    one = layer(x)
            finally:
                torch.set_num_threads(threads)
    finally:
        native._one_layer = real
    assert len(calls) == 2  # the forward of both runs went to the stack kernels
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)
    assert torch.equal(one, got[0].detach())
    if slope is not None:
        assert (got[0] < 0).any() == (slope > 0)  # the activation was applied


@pytest.mark.parametrize("h,w", [(28, 28), (27, 31), (2, 7), (5, 4)])
def test_one_channel_image_layers_over_pixel_blocks_equal_torch(h, w):
    """The gray-image outer layers (OneChannelConv2d / OneChannelConvTranspose2d) run a 4 × 4,
    stride-2 (transposed) convolution as a 2 × 2 one over 2 × 2 pixel blocks: the same outputs,
    input, weight and bias gradients and second derivatives (WGAN-GP's penalty) as torch's own layers,
    even and odd sides alike."""
    from ganad.nets.conv import OneChannelConv2d, OneChannelConvTranspose2d

    def same_as_torch(layer, inp, torch_fn):
        """Outputs and the gradients of input, weight and bias equal torch's; returns torch's function."""
        ref = torch_fn(inp)
        out = layer(inp)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref)
        g = torch.randn_like(ref)
        for a, b in zip(torch.autograd.grad(out, (inp, layer.weight, layer.bias), g),
                        torch.autograd.grad(ref, (inp, layer.weight, layer.bias), g)):
            torch.testing.assert_close(a, b)
        return torch_fn

    torch.manual_seed(0)
    conv = OneChannelConv2d(1, 5, 4, 2, 1).double()
    x = torch.randn(3, 1, h, w, dtype=torch.double, requires_grad=True)
    ref_fn = same_as_torch(conv, x, lambda t: torch.nn.functional.conv2d(t, conv.weight, conv.bias, 2, 1))
    gp = [torch.autograd.grad(torch.autograd.grad(f(x).square().sum(), x, create_graph=True)[0].square().sum(), conv.weight)[0]
          for f in (conv, ref_fn)]
    torch.testing.assert_close(gp[0], gp[1])
    up = OneChannelConvTranspose2d(4, 1, 4, 2, 1).double()
    y = torch.randn(3, 4, h, w, dtype=torch.double, requires_grad=True)
    same_as_torch(up, y, lambda t: torch.nn.functional.conv_transpose2d(t, up.weight, up.bias, 2, 1))


def test_image_layers_of_other_shapes_take_torchs_own_path():
    """Colour images, other kernels and a spectral-normalised weight: the same results as torch's layers."""
    from ganad.nets.conv import OneChannelConv2d, OneChannelConvTranspose2d

    torch.manual_seed(0)
    for conv, x in ((OneChannelConv2d(3, 4, 4, 2, 1), torch.randn(2, 3, 8, 8)),
                    (OneChannelConv2d(1, 4, 3, 1, 1), torch.randn(2, 1, 8, 8)),
                    (torch.nn.utils.parametrizations.spectral_norm(OneChannelConv2d(1, 4, 4, 2, 1)), torch.randn(2, 1, 8, 8))):
        torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding))
    for up, y in ((OneChannelConvTranspose2d(4, 3, 4, 2, 1), torch.randn(2, 4, 5, 5)),
                  (OneChannelConvTranspose2d(4, 1, 4, 2, 1, output_padding=1), torch.randn(2, 4, 5, 5))):
        torch.testing.assert_close(up(y), torch.nn.functional.conv_transpose2d(y, up.weight, up.bias, up.stride, up.padding,
                                                                               up.output_padding))
    # the image families build them, so a gray DCGAN takes the block form
    from ganad.nets.conv import ConvGenerator
    gen = ConvGenerator(4, (1, 28, 28), width=8, depth=2)
    assert isinstance(gen.net[-2], OneChannelConvTranspose2d)
