"""Scoring on the paths the twenty-fourth session touched, this checkout against a baseline source tree
(each configuration in a fresh process, alternating, medians): one-row and 20,000-row
``decision_function`` of a table model in the default space (GANomaly, feature+input) and in a learned
code space (BiGAN, where copies of bank rows now sit at distance 0), ``score_series`` of 20,000 points
and a stream fed one point at a time (the input checks, the torch-mode check and the column-name
handling run on every call).

    git archive cd3076c src | tar -x -C /tmp/base
    OMP_NUM_THREADS=1 python benchmarks/bench_hot_path.py --baseline-src /tmp/base/src --rounds 3
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time, warnings
import numpy as np, torch
warnings.simplefilter("ignore")
torch.set_num_threads(1)
import ganad
from ganad.series import SeriesDetector

def med(fn, reps, inner):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        ts.append((time.perf_counter() - t) / inner)
    return float(np.median(ts))

rng = np.random.RandomState(0)
X = rng.randn(2000, 20).astype(np.float32)
big = rng.randn(20000, 20).astype(np.float32)
out = {}
for name in ("GANomaly", "BiGAN"):
    d = getattr(ganad, name)(epochs=1, random_state=0, verbose=False).fit(X)
    d.decision_function(X[:1]); d.decision_function(big[:100])
    out[f"{name} 1 row (ms)"] = 1e3 * med(lambda: d.decision_function(X[:1]), 5, 300)
    out[f"{name} 20k rows (s)"] = med(lambda: d.decision_function(big), 3, 1)
S = np.c_[np.sin(np.arange(20000) / 20), np.cos(np.arange(20000) / 33)] + 0.05 * rng.randn(20000, 2)
sd = SeriesDetector("ganomaly", window=64, stride=16, detector_params={"epochs": 1, "verbose": False, "random_state": 0}).fit(S[:4000])
out["series 20k points (s)"] = med(lambda: sd.score_series(S), 3, 1)
def stream():
    sc = sd.stream()
    for i in range(2000):
        sc.update(S[i:i + 1])
out["stream, 1 point per update (us/point)"] = 1e6 * med(stream, 3, 1) / 2000
print(json.dumps(out))
"""


def run(src: str) -> dict:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-src", required=True, help="src folder of the code to compare with (e.g. git archive REV src)")
    ap.add_argument("--rounds", type=int, default=3, help="processes per configuration, alternating")
    ap.add_argument("--out", default="hot_path.json", help="file name under benchmarks/out/")
    a = ap.parse_args()
    srcs = {"baseline": a.baseline_src, "this checkout": str(HERE.parent / "src")}
    res: dict = {k: [] for k in srcs}
    for _ in range(a.rounds):
        for k, s in srcs.items():
            res[k].append(run(s))
    import numpy as np
    keys = list(res["baseline"][0])
    med = {k: {m: float(np.median([r[m] for r in res[k]])) for m in keys} for k in srcs}
    print("| measure | baseline | this checkout | ratio (this / baseline) |")
    print("|---|---|---|---|")
    for m in keys:
        b, n = med["baseline"][m], med["this checkout"][m]
        print(f"| {m} | {b:.4g} | {n:.4g} | {n / b:.2f} |")
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / a.out).write_text(json.dumps({"runs": res, "medians": med}, indent=2))


if __name__ == "__main__":
    main()
