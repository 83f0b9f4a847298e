"""The detectors users import. One small file per method."""

from ganad.detectors.anogan import AnoGAN
from ganad.detectors.base import BaseGANDetector, ScoreResult

#: method name (CLI --method) -> class
DETECTORS: dict[str, type[BaseGANDetector]] = {"anogan": AnoGAN}

__all__ = ["AnoGAN", "BaseGANDetector", "DETECTORS", "ScoreResult"]
