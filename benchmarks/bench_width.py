"""Default conv1d width: MIT-BIH inter-patient AUROC of the encoder methods at several widths.

The evidence behind ``ganad.nets.default_width("conv1d")``: the same protocol, splits and seeds
as ``ganad benchmark mitbih`` (train on N beats of DS1, threshold on held-out DS1 records, test
on DS2), run once per width with the family default overridden (every other setting is the
method's default). Writes benchmarks/out/width.json and prints a table.

    python benchmarks/bench_width.py                          # widths 4, 8; seeds 0, 1 (~30 min)
    python benchmarks/bench_width.py --seeds 0 --rhythm       # with the rhythm view
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, shared_data, write_json  # noqa: E402


@contextlib.contextmanager
def conv1d_width(width: int):
    """Every detector built inside uses ``width`` for the conv1d family when its own width is None."""
    import ganad.detectors.base as base
    from ganad.nets import default_width

    old = base.default_width
    base.default_width = lambda family: width if family == "conv1d" else default_width(family)
    try:
        yield
    finally:
        base.default_width = old


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="reference data folder (holding mitdb/)")
    ap.add_argument("--widths", default="4,8")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--methods", default="fanogan,bigan,alad,ganomaly,vaegan")
    ap.add_argument("--max-train", type=int, default=5000)
    ap.add_argument("--max-test", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rhythm", action="store_true", help="add the RR-interval view (see docs/benchmark.md)")
    ap.add_argument("--out", default="width.json", help="file name under benchmarks/out/")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ganad.benchmark import run_mitbih

    data = shared_data(args.data)
    if data is None or not (data / "mitdb").is_dir():
        sys.exit("no MIT-BIH data: pass --data DIR holding mitdb/ (or set GANAD_SHARED_DATA)")
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for width in [int(w) for w in args.widths.split(",")]:
            with conv1d_width(width):
                res = run_mitbih(data, methods=args.methods.split(","), peers=[], seed=seed, max_train=args.max_train,
                                 max_test=args.max_test, epochs=args.epochs, rhythm=args.rhythm, log=lambda *a, **k: None,
                                 keep_scores=False)
            row = {"width": width, "seed": seed}
            for r in res["results"]:
                row[r["method"]] = r.get("auroc")
            row["mean"] = float(np.mean([row[m] for m in row if m not in ("width", "seed")]))
            rows.append(row)
            print(row, flush=True)
    cols = ["width", "seed", *[k for k in rows[0] if k not in ("width", "seed", "mean")], "mean"]
    p = write_json(args.out, {"rows": rows, "command": "python " + " ".join(sys.argv), "rhythm": args.rhythm})
    print(markdown_table(rows, cols))
    print("wrote", p)


if __name__ == "__main__":
    main()
