"""The DCGAN width-8 image nets' 2-D layers alone, forward and backward, on contiguous (NCHW) and
channels-last activations (weights contiguous), medians of ``--reps`` calls.

Layers timed alone: see benchmarks/RESULTS.md, "Images at one MNIST digit's size, and channels-last
activations", for why these ratios did not carry over to training epochs.

    OMP_NUM_THREADS=2 python benchmarks/bench_conv_layout.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_ms  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--out", default="conv_layout.json")
    args = ap.parse_args(argv)
    import torch
    import torch.nn.functional as F
    from common import machine, markdown_table, write_json
    torch.set_num_threads(args.threads)
    rows = []
    for B in args.batches:
        row: dict = {"batch": B}
        for fmt, mf in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
            def act(*shape):
                return torch.randn(*shape).to(memory_format=mf).requires_grad_()
            x, w, b = act(B, 8, 14, 14), torch.randn(16, 8, 4, 4, requires_grad=True), torch.randn(16, requires_grad=True)
            z, wt = act(B, 16, 7, 7), torch.randn(16, 8, 4, 4, requires_grad=True)
            u, wb = act(B, 4, 15, 15), torch.randn(8, 4, 2, 2, requires_grad=True)
            g1 = torch.ones(B, 16, 7, 7).to(memory_format=mf)
            g2 = torch.ones(B, 8, 14, 14).to(memory_format=mf)
            row[f"conv 8->16 {fmt} ms"] = round(median_ms(lambda: F.conv2d(x, w, b, stride=2, padding=1).backward(g1), args.reps), 3)
            row[f"convT 16->8 {fmt} ms"] = round(median_ms(lambda: F.conv_transpose2d(z, wt, stride=2, padding=1).backward(g2), args.reps), 3)
            row[f"block 4->8 {fmt} ms"] = round(median_ms(lambda: F.conv2d(u, wb).backward(g2), args.reps), 3)
        rows.append(row)
    print(markdown_table(rows, list(rows[0])))
    write_json(args.out, {"machine": machine(), "threads": args.threads, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
