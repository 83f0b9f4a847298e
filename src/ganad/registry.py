"""The methods ganad knows: method name (the CLI's ``--method``) -> detector class.

:func:`register` adds one (the built-in methods are registered in :mod:`ganad.detectors`; a
new method registers itself in its own file, see docs/architecture.md). Model files name
their class, and :func:`ganad.io.load_model` finds it here, so a registered method also loads.
This module imports nothing of ganad: model loading reads the registry without importing the
detectors, which import :mod:`ganad.io` to save themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T", bound=type)

#: method name -> detector class (an alias such as 'egbad' maps to the same class)
DETECTORS: dict[str, Any] = {}


def register(name: str, *aliases: str) -> Callable[[T], T]:
    """Class decorator: ``@register("mymethod")`` makes ``--method mymethod`` and loading its model files work.

    Registering a name again replaces its class (a reloaded module); two classes with the same
    ``__name__`` under different names are refused, since model files name their class."""
    def deco(cls: T) -> T:
        for n in (name, *aliases):
            if not isinstance(n, str) or not n or n != n.strip().lower():
                raise ValueError(f"register: method name {n!r} is not a lower-case word. Fix: use a name such as 'mymethod'")
            clash = [k for k, c in DETECTORS.items() if c.__name__ == cls.__name__ and c is not cls and k != n]
            if clash:
                raise ValueError(f"register: class name {cls.__name__!r} is already registered as {clash[0]!r}. "
                                 f"Fix: give the class another name (model files name their class)")
            DETECTORS[n] = cls
        return cls
    return deco


def unregister(name: str) -> None:
    """Remove a method name (tests that register a toy method clean up with it)."""
    DETECTORS.pop(name, None)


def class_by_name(class_name: str) -> Any | None:
    """The registered class whose ``__name__`` is ``class_name`` (what a model file stores), or None."""
    return next((c for c in DETECTORS.values() if c.__name__ == class_name), None)
