"""How far scaled values stray on unseen *normal* rows: 'standard' vs 'per-feature' on ADBench.

For each ADBench set: the normal rows are shuffled (seed 0) and halved; each scaler is fitted on
the first half and applied to the second (normal rows only, no anomalies; nothing is chosen from
this table). Prints the largest |value| per set and the number of features whose largest |value|
exceeds 10 — the blow-ups of near-constant and rare-level features that 'per-feature' removes.

    python benchmarks/bench_scaling.py --data /path/to/shared/data      # a few seconds
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, shared_data  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="reference data folder (holding adbench/)")
    args = ap.parse_args(argv)
    from ganad.data.scaling import Scaler
    from ganad.data.tabular import adbench_names, load_adbench

    data = shared_data(args.data)
    if data is None or not (data / "adbench").is_dir():
        sys.exit("no ADBench data: pass --data DIR holding adbench/ (or set GANAD_SHARED_DATA)")
    rows = []
    for name in adbench_names(data / "adbench"):
        X, y = load_adbench(data / "adbench", name)
        normal = np.flatnonzero(y == 0)
        np.random.RandomState(0).shuffle(normal)
        half = len(normal) // 2
        fit_rows, new_rows = X[normal[:half]], X[normal[half:]]
        row = {"set": name, "d": X.shape[1]}
        for kind in ("standard", "per-feature"):
            s = Scaler(kind).fit(fit_rows)
            z = np.abs(s.transform(new_rows))
            row[f"max abs {kind}"] = float(z.max())
            row[f"features > 10 {kind}"] = int((z.max(0) > 10).sum())
            if kind == "per-feature":
                row["constant / discrete / continuous"] = " / ".join(str(s.mode.count(m)) for m in ("constant", "discrete", "continuous"))
        rows.append(row)
    print(markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
