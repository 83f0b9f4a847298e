"""What a write of ``ganad serve --recordings-state`` costs (``--recordings-save-every``, the periodic save).

The periodic save takes a snapshot of every recording's state on the event loop (requests wait meanwhile)
and writes its JSON from a thread. This script builds the state of N recordings in the worst case for the
file's size (every recording inside its warm-up, holding N_FIRST - 1 scores; past the warm-up a recording
keeps one number) and times both parts, median of ``--rounds``::

    OMP_NUM_THREADS=1 python benchmarks/bench_recordings_state.py --recordings 100 1000 10000 --warm-up 300
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--warm-up", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    from ganad.serve.recordings import RecordingThresholds
    from ganad.serve.registry import Registry, read_recordings_state

    rows = []
    for n in a.recordings:
        model = SimpleNamespace(threshold_=3.0, contamination=0.05, calibration_=None)
        rec = RecordingThresholds(model, a.warm_up, None, max_recordings=n)
        rng = np.random.RandomState(0)
        for i in range(n):  # every recording one score short of its warm-up: the largest state per recording
            rec.update(rng.randn(a.warm_up - 1), f"rec-{i}")
        reg = Registry.__new__(Registry)  # only the saving parts: no model is loaded
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rec.json"
            reg.settings, reg.metrics = SimpleNamespace(recordings_state=str(path)), None
            reg.entries = {"m": SimpleNamespace(recordings=rec, info={"version": "v"})}
            import threading
            reg._save_lock = threading.Lock()
            snap, write = [], []
            for _ in range(a.rounds):
                t0 = time.perf_counter()
                models = reg._recordings_snapshot()
                t1 = time.perf_counter()
                reg._write_recordings(models, periodic=True)
                t2 = time.perf_counter()
                snap.append(t1 - t0)
                write.append(t2 - t1)
            size = path.stat().st_size
            assert len(read_recordings_state(path)["m"]["order"]) == n
        rows.append((n, statistics.median(snap) * 1e3, statistics.median(write) * 1e3, size / 2**20))
    print(f"| recordings (warm-up {a.warm_up}, each {a.warm_up - 1} scores in) | snapshot on the event loop, ms | JSON write in a thread, ms | file MiB |")
    print("|---|---|---|---|")
    for n, s, w, mb in rows:
        print(f"| {n:,} | {s:.1f} | {w:.0f} | {mb:.1f} |")


if __name__ == "__main__":
    main()
