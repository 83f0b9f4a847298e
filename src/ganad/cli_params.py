"""Model parameters from the command line: ``--set key=value`` (repeatable) and ``--config params.toml``.

Every parameter of the detector class (``cls().get_params()``) can be set; a value is typed by
the parameter's current (default) value:

* ``bool`` defaults take true / false / yes / no / 1 / 0 / on / off;
* ``int`` defaults take an integer (``epochs=5``), ``float`` defaults a number (``search_eps=0.01``);
* ``tuple`` / ``list`` defaults take a comma-separated list or a JSON list (``betas=0.5,0.9``);
* ``dict`` defaults, and any value starting with ``{`` or ``[``, are read as JSON (``scaler={"kind": "standard"}``);
* ``None`` and ``str`` defaults take a number, a boolean, JSON or a string as written
  (``width=8``, ``batch_size=64`` for the default ``'auto'``, ``device=cpu``);
* ``none`` / ``null`` means None for any parameter (TOML has no null: write ``"none"``), except that
  ``none`` stays the text 'none' for a parameter that takes it as an option and not None
  (``scaler=none``, GANomaly's ``score_norm=none``).

Unknown keys are refused with the list of valid ones; the values themselves are checked by the
detector's own parameter validation when it is fitted.
"""

from __future__ import annotations

import json
from pathlib import Path

from ganad.exceptions import InputError, _fmt

_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")


def _literal(text: str):
    """A number, boolean, None, JSON value, or the string itself."""
    t = text.strip()
    low = t.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    if t[:1] in "[{":
        try:
            return json.loads(t)
        except json.JSONDecodeError:
            pass
    return t


def _takes_none_text(cls, key: str) -> bool:
    """Whether the parameter ``key`` of ``cls`` takes the text 'none' as an option and not None (``scaler``)."""
    from ganad.params import constraints_of
    rule = constraints_of(cls).get(key) if cls is not None else None
    if rule is None:
        return False

    def takes(v):
        try:
            rule.check(key, v)
            return True
        except InputError:
            return False
    return takes("none") and not takes(None)


def coerce(key: str, value, current, source: str, cls=None):
    """``value`` (a string from ``--set`` or a TOML value) typed like the parameter's ``current`` value
    (``cls``: the detector class, whose constraints say whether 'none' is an option or None)."""
    def bad(expected):
        return InputError(_fmt(f"{source} {key}", f"is {value!r}, but {key} takes {expected}",
                               f"pass for example {key}={_example(current)}"))
    if isinstance(value, str) and value.strip().lower() in ("none", "null"):
        if value.strip().lower() == "none" and _takes_none_text(cls, key):
            return "none"
        return None
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad("true or false")
    if isinstance(current, int):
        v = _literal(value) if isinstance(value, str) else value
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad("an integer")
        return v
    if isinstance(current, float):
        v = _literal(value) if isinstance(value, str) else value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("a number")
        return float(v)
    if isinstance(current, (tuple, list)):
        v = value
        if isinstance(value, str):
            v = _literal(value) if value.strip()[:1] == "[" else [_literal(p) for p in value.split(",") if p.strip()]
        if not isinstance(v, (list, tuple)):
            raise bad("a list such as 0.5,0.999")
        return type(current)(v)
    if isinstance(current, dict):
        v = value
        if isinstance(value, str):
            try:
                v = json.loads(value)
            except json.JSONDecodeError:
                v = _literal(value)  # a dict-valued parameter may also take a name ('normal', 'auto')
        return v
    return _literal(value) if isinstance(value, str) else value  # None or str defaults


def _example(current):
    if isinstance(current, bool):
        return "true"
    if isinstance(current, (int, float)):
        return repr(current)
    if isinstance(current, (tuple, list)):
        return ",".join(str(x) for x in current)
    return json.dumps(current) if isinstance(current, dict) else str(current)


def _unknown(key: str, valid, source: str):
    import difflib
    near = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return InputError(_fmt(f"{source} {key}", "is not a parameter of this method",
                           f"{hint}use one of: {', '.join(sorted(valid))}"))


def parse_sets(items, defaults: dict, cls=None) -> dict:
    """``["width=8", "search_eps=0.01"]`` -> typed dict, checked against ``defaults`` (``get_params()``
    of the detector class ``cls``)."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise InputError(_fmt(f"--set {item!r}", "is not KEY=VALUE", "write for example --set width=8"))
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in defaults:
            raise _unknown(key, defaults, "--set")
        out[key] = coerce(key, value, defaults[key], "--set", cls)
    return out


def read_config(path, defaults: dict, cls=None) -> dict:
    """Model parameters from a TOML file: top-level keys, or a ``[params]`` table."""
    import tomllib
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise InputError(_fmt(f"--config {path}", "does not exist", "pass the path of a TOML file of parameters")) from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(_fmt(f"--config {path}", f"cannot be read as TOML ({exc})",
                              "write one `key = value` per line, such as `epochs = 30` and `search_eps = 0.01`")) from exc
    if isinstance(doc.get("params"), dict) and len(doc) == 1:
        doc = doc["params"]
    out = {}
    for key, value in doc.items():
        key = str(key).replace("-", "_")  # latent-dim = 5 as --set latent-dim=5
        if key not in defaults:
            raise _unknown(key, defaults, f"--config {path}:")
        out[key] = coerce(key, value, defaults[key], f"--config {path}:", cls)
    return out
