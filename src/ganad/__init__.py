"""ganad: anomaly detection with generative adversarial networks.

Train a GAN (or an adversarial autoencoder) on normal data, then score new data by how well
the model explains it. See the README for a quick start.
"""

__version__ = "0.1.0"

import os as _os
import sys as _sys

# OpenMP threads that spin while waiting (libgomp's default) steal the cores of a busy machine
# from the threads doing the work: on a loaded 2-core machine scoring ran 10x slower with the
# default two threads than with one (benchmarks/bench_threads.py). Sleep instead of spinning,
# unless the user chose a policy. libgomp reads this once, when torch loads it: importing ganad
# before torch is what makes it apply (the CLI always does); see docs/hardening.md.
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The public names load on first use (PEP 562): `import ganad` itself, and `ganad --help` /
# `--version` with it, does not import torch (2 s or more on a busy machine); `ganad.GANomaly` and
# `from ganad import GANomaly` import what they name.
_LAZY = {
    **{name: "ganad.detectors" for name in ("ALAD", "DETECTORS", "EGBAD", "VAEGAN", "AnoGAN", "BaseGANDetector", "BiGAN",
                                            "FAnoGAN", "GANomaly", "ScoreResult", "TadGAN")},
    "load": ("ganad.series.detector", "load_any"),  # a series model or a detector
    "save": ("ganad.io", "save_model"),
    "describe": ("ganad.info", "describe"),  # what a fitted model is and how it was made (ganad info)
    "SeriesDetector": "ganad.series", "StreamScorer": "ganad.series",
    "MultiViewDetector": "ganad.multiview",
}

__all__ = ["ALAD", "BiGAN", "EGBAD", "FAnoGAN", "GANomaly", "VAEGAN", "AnoGAN", "BaseGANDetector", "DETECTORS", "ScoreResult", "TadGAN", "SeriesDetector", "StreamScorer", "MultiViewDetector", "load", "save", "describe", "__version__"]


def __getattr__(name: str):
    import importlib
    where = _LAZY.get(name)
    if where is None:
        if not name.startswith("_"):  # a subpackage (ganad.series, ganad.metrics, ...), as eager imports made them attributes
            try:
                return importlib.import_module(f"ganad.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"ganad.{name}":
                    raise
        raise AttributeError(f"module 'ganad' has no attribute {name!r}")
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # once: later lookups do not come back here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
