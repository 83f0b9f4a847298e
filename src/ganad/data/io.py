"""Old name of :mod:`ganad.data.readers` (reading user data files); kept so that existing imports work. Import the new name."""
import sys

from ganad.data import readers as _module

sys.modules[__name__] = _module
