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

from ganad.detectors import ALAD, DETECTORS, EGBAD, VAEGAN, AnoGAN, BaseGANDetector, BiGAN, FAnoGAN, GANomaly, ScoreResult  # noqa: E402
from ganad.series.detector import load_any as load  # noqa: E402  (a series model or a detector)
from ganad.io import save_model as save  # noqa: E402
from ganad.detectors import TadGAN  # noqa: E402
from ganad.series import SeriesDetector, StreamScorer  # noqa: E402
from ganad.multiview import MultiViewDetector  # noqa: E402

__all__ = ["ALAD", "BiGAN", "EGBAD", "FAnoGAN", "GANomaly", "VAEGAN", "AnoGAN", "BaseGANDetector", "DETECTORS", "ScoreResult", "TadGAN", "SeriesDetector", "StreamScorer", "MultiViewDetector", "load", "save", "__version__"]
