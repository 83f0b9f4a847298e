"""Issue 13: CPU time of a GANomaly fit with the divergence guard on vs off (in one process, the
two alternating, 5 rounds, median; process CPU time, so less sensitive to a loaded machine than
wall time). Tiny steps (batch 32, 16 features) are the worst case: the guard's per-step cost is
fixed (a gradient norm per optimiser step, one host read of a few numbers, an epoch-start snapshot).

    OMP_NUM_THREADS=1 python benchmarks/bench_guard_overhead.py
"""
import argparse
import os
import statistics
import time

import numpy as np
import torch

from ganad import GANomaly

argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()  # --help, no options
torch.set_num_threads(1)
X = np.random.RandomState(1).randn(2000, 16).astype(np.float32)
res = {True: [], False: []}
print("load", os.getloadavg())
for r in range(5):
    for g in (True, False):
        det = GANomaly(epochs=3, batch_size=32, random_state=0, divergence_guard=g, validation_fraction=0, knn_weight=0)
        t = time.process_time(); det.fit(X); res[g].append(time.process_time() - t)
print({k: [round(x, 3) for x in v] for k, v in res.items()})
m = {k: statistics.median(v) for k, v in res.items()}
print("median CPU s: guard on %.3f off %.3f -> %+.1f %%" % (m[True], m[False], 100 * (m[True] / m[False] - 1)), "load", os.getloadavg())
