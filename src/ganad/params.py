"""Parameter constraints, declared once per class (scikit-learn's ``_parameter_constraints`` style).

A detector declares, beside its constructor, what each parameter accepts::

    _parameter_constraints = {
        "latent_dim": Param(integer(1)),
        "ema": Param(none, real(0, 1, open="both"), fix="pass a decay in (0, 1) such as 0.999, or None"),
    }

and :func:`validate_params` checks them all (``fit`` and model loading call it). A class's
table extends its parents' (:func:`constraints_of`), so the parameters every detector shares
are declared once, in :class:`ganad.detectors.base.BaseGANDetector`, and a method adds or
overrides only its own. A value that no constraint of its parameter accepts is an
:class:`~ganad.exceptions.InputError` naming the parameter, the value and the fix.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ganad.exceptions import InputError, _fmt

__all__ = ["Constraint", "Param", "integer", "real", "options", "none", "instance", "custom", "validate_params", "constraints_of", "kept_on_failure"]


@dataclass(frozen=True)
class Constraint:
    """One kind of accepted value: ``test(value) -> bool`` and how to say it (``text``)."""

    test: Callable[[Any], bool]
    text: str

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError, OverflowError):
            return False


def is_int(v: Any) -> bool:
    """A whole number (Python or NumPy integer), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int | None = None, high: int | None = None) -> Constraint:
    """A whole number (not a bool) in [low, high] (None: unbounded on that side)."""
    text = ("an integer" + (f" >= {low}" if low is not None and high is None else "")
            + (f" in [{low}, {high}]" if low is not None and high is not None else "")
            + (f" <= {high}" if high is not None and low is None else ""))
    return Constraint(lambda v: is_int(v) and (low is None or v >= low) and (high is None or v <= high), text)


def real(low: float | None = None, high: float | None = None, *, open: str = "neither") -> Constraint:
    """A finite number (not a bool) between ``low`` and ``high``; ``open``: 'neither', 'left',
    'right' or 'both' (which ends are excluded)."""
    lo_open, hi_open = open in ("left", "both"), open in ("right", "both")

    def test(v):
        if not _is_real(v):
            return False
        if low is not None and (v < low or (lo_open and v == low)):
            return False
        return high is None or not (v > high or (hi_open and v == high))
    if low is not None and high is not None:
        text = f"a number in {'(' if lo_open else '['}{low}, {high}{')' if hi_open else ']'}"
    elif low is not None:
        text = f"a number {'>' if lo_open else '>='} {low}"
    elif high is not None:
        text = f"a number {'<' if hi_open else '<='} {high}"
    else:
        text = "a finite number"
    return Constraint(test, text)


def options(*values: Any) -> Constraint:
    """One of ``values`` (compared with ==; bools never match numbers)."""
    return Constraint(lambda v: any(isinstance(v, bool) == isinstance(o, bool) and v == o for o in values),
                      "one of " + ", ".join(repr(o) for o in values))


def instance(*types: type) -> Constraint:
    return Constraint(lambda v: isinstance(v, types), "a " + " or ".join(t.__name__ for t in types))


def custom(test: Callable[[Any], bool], text: str) -> Constraint:
    return Constraint(test, text)


#: accepts None
none = Constraint(lambda v: v is None, "None")


@dataclass(frozen=True)
class Param:
    """What one parameter accepts: any of ``accepts``; ``fix`` is the message's "Fix:" (default:
    "pass <what the constraints accept>"), ``why`` is appended to "is <value>" (a function of the
    value gives the text for that value, e.g. :func:`below`). ``validator``, where
    given, replaces the constraints: a function of the value that raises its own error."""

    accepts: tuple[Constraint, ...] = ()
    fix: str | None = None
    why: str | Callable[[Any], str] = ""
    validator: Callable[[Any], Any] | None = None

    def __init__(self, *accepts: Constraint, fix: str | None = None, why: str | Callable[[Any], str] = "",
                 validator: Callable[[Any], Any] | None = None):
        object.__setattr__(self, "accepts", accepts)
        object.__setattr__(self, "fix", fix)
        object.__setattr__(self, "why", why)
        object.__setattr__(self, "validator", validator)

    def check(self, name: str, value: Any) -> None:
        if self.validator is not None:
            self.validator(value)
            return
        if any(c(value) for c in self.accepts):
            return
        fix = self.fix if self.fix is not None else "pass " + " or ".join(c.text for c in self.accepts)
        why = self.why(value) if callable(self.why) else self.why
        raise InputError(_fmt(name, f"is {value!r}{why}", fix.replace("{name}", name)))


def below(low: int, text: str) -> Callable[[Any], str]:
    """A ``why`` for :class:`Param` that applies to whole numbers below ``low`` only (" (0 epochs
    would train nothing)" explains 0, not 'abc', 1.5 or None)."""
    return lambda v: text if is_int(v) and v < low else ""


def constraints_of(cls: type) -> dict[str, Param]:
    """The class's ``_parameter_constraints`` merged over its parents' (subclasses override)."""
    merged: dict[str, Param] = {}
    for klass in reversed(cls.__mro__):
        merged.update(klass.__dict__.get("_parameter_constraints", {}))
    return merged


def validate_params(obj: Any, constraints: Mapping[str, Param] | None = None) -> None:
    """Check every parameter of ``obj`` (its ``get_params(deep=False)``) that has a constraint,
    in declaration order; raises :class:`InputError` on the first value none accepts."""
    table = constraints_of(type(obj)) if constraints is None else constraints
    params = obj.get_params(deep=False)
    for name, rule in table.items():
        if name in params:
            rule.check(name, params[name])


@contextlib.contextmanager
def kept_on_failure(est: Any) -> Iterator[None]:
    """An estimator's attributes as they were before the block, restored when the block raises
    (anything, Ctrl-C included): a refit refused or interrupted on the way leaves the model it had,
    fitted or not, instead of one half cleared and half rebuilt. The attributes are kept by reference
    (a fit replaces its fitted objects, never edits them); dicts and lists one level deep by copy."""
    before = {k: (copy.copy(v) if isinstance(v, (dict, list)) else v) for k, v in est.__dict__.items()}
    try:
        yield
    except BaseException:
        est.__dict__.clear()
        est.__dict__.update(before)
        raise


#: Parameters added after model files and checkpoints were first written, with the value that does
#: what a run before them did. A model file or checkpoint that lacks one was fitted with that value:
#: ``ganad.load`` rebuilds the detector with it (so ``get_params`` tells the truth and a refit of the
#: loaded detector trains as the original did), and a resume compares against it (naming the
#: parameter to pass to resume such a run rather than refusing it outright).
PARAMS_BEFORE_THEY_EXISTED: dict[str, Any] = {"gp_every": 1}


def params_as_written(cls, params: dict) -> dict:
    """``params`` of a model file / checkpoint of ``cls`` with the parameters it predates filled in."""
    have = inspect.signature(cls).parameters
    return {**{k: v for k, v in PARAMS_BEFORE_THEY_EXISTED.items() if k in have}, **params}
