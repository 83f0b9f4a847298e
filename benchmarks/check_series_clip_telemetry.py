"""Synthetic NASA-like telemetry, the case the per-feature scaler's clip was built for, with the series
default (no clip, chosen on NAB's univariate validation groups) and with clip 1: an analog channel, a
slowly drifting continuous channel, a near-constant sensor (a setpoint plus noise of 0.001, shifted by
``--shift`` in the test part) and eight one-hot command channels (two seen in about 1 % of the time).
Anomalies: 12 deviations of the analog channel. Prints point AUROC, VUS-PR, event F1 and the share of
normal test points above the threshold, mean over seeds 0-2. A check, nothing is chosen on it.

    OMP_NUM_THREADS=1 python -W ignore benchmarks/check_series_clip_telemetry.py --shift 0.1
"""
import argparse

import numpy as np
from ganad.series import SeriesDetector
from ganad.series.metrics import series_metrics
from sklearn.metrics import roc_auc_score

ap = argparse.ArgumentParser(description="series default with and without the clip on synthetic telemetry")
ap.add_argument("--shift", type=float, default=0.1, help="setpoint shift in the test part (the noise sd is 0.001)")
args = ap.parse_args()
res: dict = {}
for seed in range(3):
    rng = np.random.RandomState(seed)
    T = 12000
    t = np.arange(T)
    analog = np.sin(t / 25) + 0.1 * rng.randn(T)
    drift = 0.3 * np.sin(t / 3000) + 0.05 * rng.randn(T)
    setp = 5.0 + 0.001 * rng.randn(T)
    setp[8000:] += args.shift  # a setpoint change in the test part
    K = 8
    cmd = np.zeros((T, K)); mode = rng.choice(K, size=T // 200, p=[.5, .2, .1, .1, .05, .03, .01, .01]).repeat(200)
    cmd[np.arange(T), mode] = 1
    X = np.c_[analog, drift, setp, cmd]
    y = np.zeros(T, int)
    n_tr = 3000
    for s in rng.choice(np.arange(n_tr + 500, T - 200), 12, replace=False):
        L = rng.randint(20, 80)
        X[s:s + L, 0] += rng.choice([-1, 1]) * rng.uniform(0.8, 2.5); y[s:s + L] = 1
    for name, params in (("noclip", {}), ("clip1", {"scaler": {"kind": "per-feature", "clip": 1.0}})):
        sd = SeriesDetector("ganomaly", window=64, stride=4, detector_params={"epochs": 10, "random_state": seed, **params}).fit(X[:n_tr])
        s = sd.decision_function(X[n_tr:])
        m = series_metrics(y[n_tr:], s, s > sd.threshold_, max_buffer=64)
        res.setdefault(name, []).append((roc_auc_score(y[n_tr:], s), m["vus_pr"], m["event_f1"], (s > sd.threshold_)[y[n_tr:] == 0].mean()))
for k, v in res.items():
    v = np.array(v)
    print(k, "auroc %.3f vus_pr %.3f event_f1 %.3f false-alarm rate %.3f" % tuple(v.mean(0)), np.round(v[:, 0], 3))
