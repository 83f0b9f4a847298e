"""The NAB protocol of ``ganad benchmark nab`` with VUS-PR / VUS-ROC also computed as the maintained
reference computes them today: TSB-AD 1.5's ``get_metrics`` default (``version='opt'``, 250 thresholds,
buffer = the window), beside ganad's own VUS (equal to the original ``RangeAUC_volume`` of the VUS
paper's code, docs/series.md). TSB-AD is not a dependency of ganad (it pulls in many model libraries);
install only its files where this script can import them:

    pip install --no-deps --target /tmp/tsbad TSB-AD==1.5
    OMP_NUM_THREADS=1 python benchmarks/nab_vus_opt.py --tsb-ad /tmp/tsbad --data $GANAD_SHARED_DATA --methods none --tag peers
    OMP_NUM_THREADS=1 python benchmarks/nab_vus_opt.py --tsb-ad /tmp/tsbad --data $GANAD_SHARED_DATA --peers none --seed 0 --tag s0

Each run writes ``benchmarks/out/nab-vus-opt-<tag>.json`` (rows per series and method, means) and
prints the means. Everything else is the protocol of benchmarks/SERIES_RESULTS.md (target groups,
window 64, stride 4, 30 epochs, one event per anomaly).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, shared_data  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tsb-ad", required=True, help="folder holding the TSB_AD package (pip install --no-deps --target DIR TSB-AD==1.5)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--methods", default="ganomaly")
    ap.add_argument("--peers", default="iforest,knn,ocsvm,ecod")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    sys.path.insert(0, a.tsb_ad)
    from TSB_AD.evaluation.basic_metrics import generate_curve

    import ganad.series.benchmark as SB
    import ganad.series.metrics as SM
    own = SM.series_metrics

    def with_opt(y_true, scores, y_pred=None, max_buffer: int = 64, y_event=None):
        m = own(y_true, scores, y_pred, max_buffer=max_buffer, y_event=y_event)
        out = generate_curve(np.asarray(y_true).astype(int), np.asarray(scores, dtype=np.float64), max_buffer, "opt", 250)
        m["vus_roc_opt"], m["vus_pr_opt"] = float(out[-2]), float(out[-1])
        return m

    SM.series_metrics = with_opt  # run_nab imports it when it runs
    SB.METRICS = SB.METRICS + ("vus_pr_opt", "vus_roc_opt")
    csv = lambda v: [x for x in v.split(",") if x and x != "none"]  # noqa: E731
    res = SB.run_nab(shared_data(a.data), methods=csv(a.methods), peers=csv(a.peers), window=a.window, stride=a.stride,
                     epochs=a.epochs, seed=a.seed, log=print)
    keys = ("vus_pr", "vus_pr_opt", "vus_roc", "vus_roc_opt", "event_f1", "point_auroc")
    for m, s in res["summary"].items():
        print(m, {k: round(s[k], 4) for k in keys})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"nab-vus-opt{'-' + a.tag if a.tag else ''}.json").write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
