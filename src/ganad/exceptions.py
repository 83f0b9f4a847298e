"""Errors a user can cause. Every message names the input, the problem and the fix."""

from __future__ import annotations

import threading
from typing import Any


class GanadError(Exception):
    """Base class of every error ganad raises on purpose."""


class InputError(GanadError, ValueError):
    """Bad data given to ganad: wrong shape, NaN/inf, empty, non-numeric, mismatched features."""

    #: a table's columns the model was not fitted on, every one (the message names five): the CLI's --exclude flags
    unseen_columns: list[str] | None = None
    #: the model's training columns, in order, beside ``unseen_columns`` (the CLI's --sep hint splits a header into them)
    expected_columns: list[str] | None = None
    #: the samples of a scoring pass whose score was NaN / inf (a series names the points of those windows)
    nonfinite_rows: Any = None


class DataFileError(GanadError, ValueError):
    """A data file that is missing, unreadable, truncated or in an unknown format."""


class ModelFileError(GanadError, ValueError):
    """A model directory that is missing, incomplete or corrupt."""


_MAKE_LOCK = threading.Lock()


def __getattr__(name: str):
    """``NotFittedError`` is made on first use: it subclasses scikit-learn's, whose import (sklearn's
    whole base, about 1.5 s) ``ganad --help`` and the other errors here do not need."""
    if name != "NotFittedError":
        raise AttributeError(f"module 'ganad.exceptions' has no attribute {name!r}")
    with _MAKE_LOCK:  # one class, even if two threads ask first at once
        if "NotFittedError" in globals():
            return globals()["NotFittedError"]
        return _make_not_fitted()


def _make_not_fitted():
    from sklearn.exceptions import NotFittedError as _SkNotFitted

    class NotFittedError(GanadError, _SkNotFitted):
        """A detector used before `fit` (also scikit-learn's NotFittedError)."""

    NotFittedError.__module__, NotFittedError.__qualname__ = __name__, "NotFittedError"  # pickles find it by name
    globals()["NotFittedError"] = NotFittedError
    return NotFittedError


def _fmt(name: str, problem: str, fix: str) -> str:
    return f"{name}: {problem}. Fix: {fix}"


class TrainingDiverged(GanadError, FloatingPointError):
    """Training that kept diverging (non-finite losses or weights, an exploding gradient, a
    collapsed discriminator) after the divergence guard's roll-backs; names stage, epoch and symptom."""


class PrecisionWarning(UserWarning):
    """Input values that float64 cannot hold exactly (64-bit integers beyond 2**53): neighbouring
    values become one, so ganad sees less variation than the data have."""


class AmbiguousShapeWarning(UserWarning):
    """Samples whose shape reads two ways (``(n, 28, 28)``: series windows of 28 channels, or 28 x 28
    images without a channel axis); ganad reads them one way and says how to ask for the other."""


def in_option_terms(msg: str, options: dict[str, str]) -> str:
    """An error message of the library said in a command's terms: each ``"name: is ..."`` whose
    ``name`` is a key of ``options`` (an API parameter) becomes ``"--option: is ..."`` (the option that
    sets it), wherever it stands in the message (``"g/s (ganomaly): stride: is 0"``)."""
    import re
    if not options:
        return msg
    pat = r"(?<![\w-])(" + "|".join(re.escape(k) for k in options) + r"): is "
    return re.sub(pat, lambda m: f"{options[m.group(1)]}: is ", msg)
