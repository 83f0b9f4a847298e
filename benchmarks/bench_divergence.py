"""Issue 13: forced divergence of every method — learning rates multiplied by FACTOR (default 1000;
1e8 in RESULTS.md as well), 400 x 8 float32 rows, 5 epochs, seed 0. Prints, per method, whether the
run recovered (finite scores, with the roll-backs it needed) or stopped with TrainingDiverged.

    OMP_NUM_THREADS=1 python benchmarks/bench_divergence.py 1000
    OMP_NUM_THREADS=1 python benchmarks/bench_divergence.py 1e8
"""

import argparse

import numpy as np

from ganad.detectors import DETECTORS
from ganad.exceptions import TrainingDiverged

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("factor", type=float, nargs="?", default=1000.0, help="learning-rate multiplier (default 1000)")
factor = ap.parse_args().factor
X = np.random.RandomState(0).randn(400, 8).astype(np.float32)
for name, cls in sorted(DETECTORS.items()):
    d = cls()
    try:
        det = cls(epochs=5, random_state=0, lr_g=d.lr_g * factor, lr_d=d.lr_d * factor).fit(X)
        s = det.decision_function(X)
        print(f"{name}: recovered, finite scores {bool(np.isfinite(s).all())}, roll-backs {det.selection_.get('divergence', [])}")
    except TrainingDiverged as exc:
        print(f"{name}: TrainingDiverged: {exc}")
