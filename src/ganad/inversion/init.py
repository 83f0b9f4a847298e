"""Old name of :mod:`ganad.inversion.starts` (per-sample starting codes of the latent search); kept so that existing imports work. Import the new name."""
import sys

from ganad.inversion import starts as _module

sys.modules[__name__] = _module
