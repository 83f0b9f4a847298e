"""The input gradient of the DCGAN width-8 discriminator's 8 -> 16 stride-2 convolution (14 x 14 -> 7 x 7)
on oneDNN, against three exact alternatives: the batch in chunks of 64, channels-last tensors inside
the backward only (converted back before returning), and a sub-pixel form (the four output parities
as one stride-1 2 x 2 forward convolution, then ``pixel_shuffle``). Checks each against oneDNN's
result, then prints medians of 21 calls in ms, beside the layer's forward.

    OMP_NUM_THREADS=2 python benchmarks/bench_conv_input_grad.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_ms  # noqa: E402


def onednn(g, x, w):
    return torch.ops.aten.convolution_backward(g, x, w, None, [2, 2], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False])[0]


def chunked(g, x, w, c: int = 64):
    return torch.cat([onednn(g[i:i + c], x[i:i + c], w) for i in range(0, g.shape[0], c)])


def channels_last(g, x, w):
    cl = torch.channels_last
    return onednn(g.contiguous(memory_format=cl), x.contiguous(memory_format=cl), w.contiguous(memory_format=cl)).contiguous()


def subpixel(g, x, w):
    """grad_x[h, w'] with h + 1 = 2a + r, w' + 1 = 2c + s: a stride-1 2 x 2 correlation of the padded
    gradient per parity (r, s), stacked as output channels ci*4 + 2r + s (pixel_shuffle's order)."""
    co, ci = w.shape[:2]
    k = w.reshape(co, ci, 2, 2, 2, 2).flip(2).flip(4).permute(1, 3, 5, 0, 2, 4).reshape(ci * 4, co, 2, 2)
    h, wd = x.shape[-2:]
    return F.pixel_shuffle(F.conv2d(F.pad(g, (1, 1, 1, 1)), k), 2)[..., 1:h + 1, 1:wd + 1].contiguous()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[128, 256, 384])
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"{a.threads} thread(s); ms, medians of 21 calls")
    for b in a.batches:
        x, w = torch.randn(b, 8, 14, 14), torch.randn(16, 8, 4, 4)
        g = torch.randn(b, 16, 7, 7)
        ref = onednn(g, x, w)
        for f in (chunked, channels_last, subpixel):
            torch.testing.assert_close(f(g, x, w), ref, atol=1e-3, rtol=1e-4)
        print(f"batch {b}: oneDNN {median_ms(lambda: onednn(g, x, w)):.2f}, chunks of 64 {median_ms(lambda: chunked(g, x, w)):.2f}, "
              f"channels-last {median_ms(lambda: channels_last(g, x, w)):.2f}, sub-pixel {median_ms(lambda: subpixel(g, x, w)):.2f}; "
              f"forward {median_ms(lambda: F.conv2d(x, w, stride=2, padding=1)):.2f}")


if __name__ == "__main__":
    main()
