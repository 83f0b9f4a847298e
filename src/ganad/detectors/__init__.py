"""The detectors users import. One small file per method."""

from ganad.detectors.alad import ALAD
from ganad.detectors.anogan import AnoGAN
from ganad.detectors.base import BaseGANDetector, ScoreResult
from ganad.detectors.bigan import EGBAD, BiGAN
from ganad.detectors.encoder_base import EncoderDetector
from ganad.detectors.fanogan import FAnoGAN
from ganad.detectors.ganomaly import GANomaly
from ganad.detectors.tadgan import TadGAN
from ganad.detectors.vaegan import VAEGAN
from ganad.registry import DETECTORS, register

# method name (CLI --method) -> class; DETECTORS is ganad.registry's, where a new method registers itself
register("anogan")(AnoGAN)
register("fanogan")(FAnoGAN)
register("bigan", "egbad")(BiGAN)
register("alad")(ALAD)
register("ganomaly")(GANomaly)
register("vaegan")(VAEGAN)
register("tadgan")(TadGAN)  # issue 12: series

__all__ = ["ALAD", "BiGAN", "EGBAD", "EncoderDetector", "FAnoGAN", "GANomaly", "VAEGAN", "AnoGAN", "BaseGANDetector", "DETECTORS", "ScoreResult", "TadGAN", "register"]
