"""Gray images' outer layers over pixel blocks (OneChannelConv2d / OneChannelConvTranspose2d) against
torch's own 4 × 4, stride-2 layers, in one process, forms alternating round by round.

For each method: one model is fitted (1 epoch, synthetic 28 × 28 gray images), then per round the
same model scores ``--n-score`` images (the default score and the own score, ``compose='default'``)
with the block form and with torch's form; and a training step at the default batch is timed the
same way (the layers' forward + backward through D, E and G, as ``bench_training.py`` counts them per
epoch). Medians of the rounds and the median of the per-round ratios.

    OMP_NUM_THREADS=2 python benchmarks/bench_gray_layers.py --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="ganomaly,fanogan,vaegan")
    ap.add_argument("--n-train", type=int, default=4096)
    ap.add_argument("--n-score", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="gray_layers.json")
    args = ap.parse_args()

    import numpy as np
    import torch
    from torch import nn

    from common import write_json
    from ganad import DETECTORS
    from ganad.nets import conv

    torch.set_num_threads(args.threads)
    rng = np.random.RandomState(0)
    Xtr = rng.rand(args.n_train, 1, 28, 28).astype(np.float32)
    Xs = rng.rand(args.n_score, 1, 28, 28).astype(np.float32)
    forms = {"blocks": (conv.OneChannelConv2d.forward, conv.OneChannelConvTranspose2d.forward),
             "torch": (nn.Conv2d.forward, nn.ConvTranspose2d.forward)}

    def use(form):
        conv.OneChannelConv2d.forward, conv.OneChannelConvTranspose2d.forward = forms[form]

    rows = []
    for name in args.methods.split(","):
        use("blocks")
        det = DETECTORS[name](epochs=1, random_state=0).fit(Xtr)
        times = {(what, form): [] for what in ("default score", "own score", "fit, 2 epochs") for form in forms}
        for r in range(args.rounds):
            for form in (("blocks", "torch") if r % 2 == 0 else ("torch", "blocks")):
                use(form)
                t = time.perf_counter()
                det.decision_function(Xs)
                times[("default score", form)].append(args.n_score / (time.perf_counter() - t))
                t = time.perf_counter()
                det.score_components(Xs)
                times[("own score", form)].append(args.n_score / (time.perf_counter() - t))
                t = time.perf_counter()
                DETECTORS[name](epochs=2, random_state=r).fit(Xtr)
                times[("fit, 2 epochs", form)].append(args.n_train / (time.perf_counter() - t))
        use("blocks")
        for what in ("default score", "own score", "fit, 2 epochs"):
            ratios = [b / t for b, t in zip(times[(what, "blocks")], times[(what, "torch")])]
            row = {"method": name, "what": what, "torch_per_s": statistics.median(times[(what, "torch")]),
                   "blocks_per_s": statistics.median(times[(what, "blocks")]), "ratio": statistics.median(ratios),
                   "ratio_range": f"{min(ratios):.2f}-{max(ratios):.2f}"}
            rows.append(row)
            print(f"| {name} | {what} | {row['torch_per_s']:,.0f} | {row['blocks_per_s']:,.0f} | {row['ratio']:.2f} ({row['ratio_range']}) |",
                  flush=True)
    write_json(args.out, {"threads": args.threads, "rounds": args.rounds, "rows": rows,
                          "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})


if __name__ == "__main__":
    main()
