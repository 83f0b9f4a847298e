"""Old name of :mod:`ganad.series.readers` (reading series files); kept so that existing imports work. Import the new name."""
import sys

from ganad.series import readers as _module

sys.modules[__name__] = _module
