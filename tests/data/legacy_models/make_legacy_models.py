"""Write the tiny model folders of tests/test_legacy_models.py with the ganad on PYTHONPATH (an old checkout).

    git worktree add /tmp/old-HASH HASH
    PYTHONPATH=/tmp/old-HASH/src OMP_NUM_THREADS=1 python tests/data/legacy_models/make_legacy_models.py tests/data/legacy_models/HASH

Each model kind that version has is fitted on fixed synthetic data and saved as NAME/model; the
version's own scores of NAME/eval*.npy are written to NAME/expected.json (scores, labels, threshold).
Only the public API of every version since the first model files is used (parameters a version does
not know are left out), so the same script runs on all of them.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np

import ganad

warnings.filterwarnings("ignore")
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
only = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
DET = ganad.DETECTORS
r = np.random.RandomState(7)
tab = r.normal(size=(120, 4))
tab_e = np.r_[r.normal(size=(8, 4)), r.normal(size=(4, 4)) * 4 + 2]
val = np.r_[r.normal(size=(30, 4)), r.normal(size=(10, 4)) * 4 + 2]
val_y = np.r_[np.zeros(30, int), np.ones(10, int)]
t = np.linspace(0, 2 * np.pi, 16)
beat = (np.sin(t[None] + r.uniform(0, 0.3, size=(120, 1))) + 0.1 * r.normal(size=(120, 16)))[:, None, :]
beat_e = np.r_[beat[:8] + 0.05, -2 * beat[8:12]]
img = r.uniform(-0.2, 0.2, size=(100, 1, 8, 8)) + np.linspace(-1, 1, 8)[None, None, None, :]
img_e = np.r_[img[:6] + 0.01, r.uniform(-1, 1, size=(3, 1, 8, 8))]
tt = np.arange(300)
ser = (np.sin(tt / 6) + 0.1 * r.normal(size=300))[:, None]
ser_e = (np.sin(np.arange(80) / 6) + 0.1 * r.normal(size=80))[:, None]
ser_e[40:46] += 3


def small(method, **p):
    names = DET[method]().get_params()
    p = {"epochs": 1, "batch_size": 32, "random_state": 0, "latent_dim": 2, "verbose": False, "search_n_max": 20, **p}
    return {k: v for k, v in p.items() if k in names}


def make(method, **p):
    return DET[method](**small(method, **p))


def record(name, model, X):
    d = out / name
    d.mkdir(exist_ok=True)
    if type(model).__name__ in ("SeriesDetector", "MultiViewDetector"):
        model.save(d / "model")
    else:
        ganad.save(model, d / "model")
    if isinstance(X, dict):
        for k, v in X.items():
            np.save(d / f"eval_{k}.npy", v)
    else:
        np.save(d / "eval.npy", X)
    s = np.asarray(model.decision_function(X), dtype=np.float64)
    rec = {"written_by": out.name, "scores": [None if not np.isfinite(v) else float(v) for v in s],
           "labels": [int(v) for v in np.asarray(model.predict(X))], "threshold": float(model.threshold_)}
    if getattr(model, "point_threshold_", None) is not None:
        rec["point_threshold"] = float(model.point_threshold_)
    (d / "expected.json").write_text(json.dumps(rec, indent=1) + "\n")


def ensemble():
    return make("ganomaly", width=4, n_members=2).fit(tab)


def calibrated_svm():
    det = make("fanogan", width=4).fit(tab)
    det.calibrate(val, val_y, compose="svm", threshold="mcc")
    return det


def calibrated_fpr():
    det = make("ganomaly", width=4).fit(tab)
    det.calibrate(val[:30], threshold="fpr", fpr=0.1)
    return det


def series(method, calibrated=False):
    def f():
        sd = ganad.SeriesDetector(detector=method, window=16, stride=4, detector_params=small(method, width=4)).fit(ser)
        if calibrated:
            sd.calibrate(ser[:200])
        return sd
    return f


def multiview(calibrated=False):
    def f():
        mv = ganad.MultiViewDetector(views={"a": "ganomaly", "b": "fanogan"}, random_state=0,
                                     detector_params={k: v for k, v in small("ganomaly", width=4).items() if k != "random_state"})
        mv.fit({"a": tab, "b": tab[:, :2]})
        if calibrated:
            mv.calibrate({"a": val[:30], "b": val[:30, :2]}, threshold="fpr", fpr=0.1)
        return mv
    return f


KINDS = {
    "tab-fanogan": (lambda: make("fanogan", width=4).fit(tab), tab_e),
    "tab-ganomaly": (lambda: make("ganomaly", width=4).fit(tab), tab_e),
    "tab-alad": (lambda: make("alad", width=4).fit(tab), tab_e),
    "tab-anogan": (lambda: make("anogan", width=4).fit(tab), tab_e),
    "robust-vaegan": (lambda: make("vaegan", width=4, robust_contamination=0.05).fit(tab) if "robust_contamination" in DET["vaegan"]().get_params()
                      else make("vaegan", width=4).fit(tab, robust_contamination=0.05), tab_e),
    # width=None: the conv1d default of that version (8 until 6949412, 4 after)
    "beat-fanogan-default-width": (lambda: make("fanogan").fit(beat), beat_e),
    "img-fanogan": (lambda: make("fanogan", width=4).fit(img), img_e),
    "cal-fanogan-svm": (calibrated_svm, tab_e),
    "cal-ganomaly-fpr": (calibrated_fpr, tab_e),
    "ens-ganomaly": (ensemble, tab_e),
    "series-ganomaly": (series("ganomaly"), ser_e),
    "series-tadgan": (series("tadgan"), ser_e),
    "seriescal-fanogan": (series("fanogan", calibrated=True), ser_e),
    "mv-ganomaly-fanogan": (multiview(), {"a": tab_e, "b": tab_e[:, :2]}),
    "mvcal-ganomaly-fanogan": (multiview(calibrated=True), {"a": tab_e, "b": tab_e[:, :2]}),
}
SD, MV = getattr(ganad, "SeriesDetector", None), getattr(ganad, "MultiViewDetector", None)
HAS = {"ens": "n_members" in DET["ganomaly"]().get_params(), "series": SD is not None and "tadgan" in DET,
       "seriescal": SD is not None and hasattr(SD, "calibrate"), "mv": MV is not None, "mvcal": MV is not None}
for name, (fit, X) in KINDS.items():
    if only is not None and name not in only or not HAS.get(name.split("-")[0], True):
        continue
    record(name, fit(), X)
    print("wrote", out / name)
