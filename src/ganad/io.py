"""Model files: a directory with ``model.safetensors`` (weights, training scores) and
``config.json`` (class, parameters, data shape, scaler, composition, threshold, history).

Loading never unpickles: weights come from safetensors, everything else from JSON, and every
value is checked before use. Saving is atomic: the new version is written and fsynced beside
the old one and the two are exchanged in one step, so a crash at any point leaves either the
previous or the new model at the path, never none and never a half-written one (see
:func:`ganad.files.replace_dir`). Folders and files follow the process's umask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file

from ganad import __version__
from ganad.exceptions import InputError, ModelFileError, _fmt
from ganad.files import (check_output_file, check_writable_parent, fsync_path, new_folders_undone, recover_dir, replace_dir, temp_dir_beside,
                         umask_mode)
from ganad.files import temp_file_beside as output_temp  # noqa: F401  (old name, kept for callers)

if TYPE_CHECKING:  # the detectors import this module to save themselves, never the reverse at run time
    from ganad.detectors.base import BaseGANDetector
from ganad.params import params_as_written
from ganad.registry import DETECTORS, class_by_name

__all__ = ["save_model", "load_model", "read_config", "check_model_path", "check_output_file"]

logger = logging.getLogger("ganad")

FORMAT = "ganad-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
#: the file that marks a series model directory (written by :meth:`ganad.series.SeriesDetector.save`)
SERIES_CONFIG = "series.json"
#: a multi-view model's configuration (ganad.multiview.MULTIVIEW_CONFIG)
MULTIVIEW_CONFIG = "multiview.json"
#: what ganad itself writes in a model directory: saving over one replaces the whole directory, so
#: anything else there (an exported model.onnx, scores, notes) is refused rather than deleted
#: ganad.tune's record of the search that chose a tuned model (written by save_model with the model)
TUNING = "tuning.json"
MODEL_DIR_ENTRIES = frozenset({CONFIG, WEIGHTS, SERIES_CONFIG, MULTIVIEW_CONFIG, "detector", "views", TUNING})


def member_seeds(seed: int, k: int) -> list[int]:
    """The ``random_state`` of each of the ``k`` members of an ensemble whose own seed is ``seed``
    (``seed_``): drawn at fit, drawn again the same way when a saved ensemble is loaded."""
    return [int(v) for v in np.random.RandomState(int(seed) % (2**32 - 1)).randint(0, 2**31 - 1, size=k)]


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def refuse_inside_wrapper_model(path: Path, name: str = "-o/--output") -> None:
    """Refuse a model path inside a multi-view model (over one of its views, ``views/NAME``, or beside
    them) or inside a series model (over its window detector): writing there would change that model's
    parts behind its back, and its stored standardisation, threshold and digests go with the parts it
    was saved with. The CLI's check of ``-o`` (fit, tune, calibrate); from Python, a part changed on its
    own is caught when the multi-view model is loaded, by its digests."""
    for anc in Path(os.path.abspath(path)).parents:
        for marker, what in ((MULTIVIEW_CONFIG, "multi-view"), (SERIES_CONFIG, "series")):
            if (anc / marker).is_file():
                rel = Path(os.path.abspath(path)).relative_to(anc)
                part = (f"the folder of its view {rel.parts[1]!r}" if what == "multi-view" and len(rel.parts) == 2 and rel.parts[0] == "views"
                        else f"its part {str(rel)!r}")
                fix = ("write the model outside it (e.g. -o OTHER_DIR); to change a view, refit the multi-view model or recalibrate it "
                       "(ganad calibrate MODEL --view NAME=FILE ..., or MultiViewDetector.calibrate)" if what == "multi-view" else
                       "write the model outside it (e.g. -o OTHER_DIR); to change the series model's detector, fit the series model again")
                raise ModelFileError(_fmt(f"{name} {path}", f"lies inside the {what} model {anc} ({part}); a model written there would "
                                          f"replace or add a part of that model behind its back, and the {what} model's stored "
                                          "scores and threshold would no longer match it", fix))


def _foreign_entries(path: Path, prefix: str = "") -> list[str]:
    """What a model directory holds that ganad did not write (hidden files aside: .DS_Store, editor swap
    files), as paths relative to it: saving replaces the whole directory and would delete them. The
    parts of a multi-view model (``views/NAME/``) and of a series model (``detector/``) are model
    directories themselves, checked the same way (a file beside a view's files was deleted unnoticed)."""
    out: list[str] = []
    for p in sorted(path.iterdir()):
        if p.name.startswith("."):
            continue
        if p.name not in MODEL_DIR_ENTRIES:
            out.append(prefix + p.name)
        elif p.is_dir() and p.name == "detector":
            out += _foreign_entries(p, f"{prefix}detector/")
        elif p.is_dir() and p.name == "views":
            for v in sorted(p.iterdir()):
                if v.name.startswith("."):
                    continue
                if v.is_dir():
                    out += _foreign_entries(v, f"{prefix}views/{v.name}/")
                else:
                    out.append(f"{prefix}views/{v.name}")
    return out


MODEL_MARKERS = (CONFIG, SERIES_CONFIG, MULTIVIEW_CONFIG)


def check_model_path(path, name: str = "path") -> Path:
    """Refuse a model path that cannot be written (a file, under a file, in a read-only folder), before any work.
    A symbolic link stands for the folder it points to (the model there is replaced, the link kept)."""
    # absolute: '.' (ganad calibrate . in the model folder) has no name and is its own parent, so the
    # temporary folder and the replacement would be made inside the folder being replaced
    path = Path(os.path.abspath(Path(path)))
    if path.is_symlink():  # the replacement exchanges folders: it would replace the link itself and leave it behind as a temporary
        path = path.resolve()
    if path.exists() and not path.is_dir():
        raise ModelFileError(_fmt(f"{name} {path}", "is a file, not a model directory", "choose a directory path (new or a previous model)"))
    if path.is_dir() and not any((path / m).exists() for m in MODEL_MARKERS) and any(path.iterdir()):
        raise ModelFileError(_fmt(f"{name} {path}", "exists and is not a ganad model directory", "choose a new or empty directory"))
    if path.is_dir():
        # hidden files (.DS_Store, editor swap files) are not the user's work: they may go with the old directory
        foreign = _foreign_entries(path)
        if foreign:
            raise ModelFileError(_fmt(f"{name} {path}", f"holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''} beside the model; "
                                      "saving replaces the whole directory and would delete them",
                                      "move them out of the model directory, or write the model elsewhere"))
    check_writable_parent(path, name)
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise ModelFileError(_fmt(f"{name} {path}", f"cannot be written ({path} is not writable)", "choose a folder you can write to"))
    return path


def file_sha256(path: Path) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recover_model_dir(path: str | os.PathLike[str]) -> Path | None:
    """:func:`ganad.files.recover_dir` for a model of any kind (a detector, a series or a multi-view model):
    a save killed between its two renames left the previous model at ``.<name>.old``; put back."""
    for marker in MODEL_MARKERS:
        got = recover_dir(path, marker)
        if got is not None:
            return got
    return None


def save_model(det: Any, path: str | os.PathLike[str]) -> Path:
    """``ganad.save``: write a fitted model to the directory ``path`` (safetensors for the weights,
    JSON for the rest; replaced atomically; ``ganad.load`` reads it back). A series or multi-view
    model is saved by its own ``save``, as ``ganad.load`` loads every kind."""
    if not hasattr(det, "_resolved_structure"):  # not a detector: a SeriesDetector / MultiViewDetector saves itself
        if callable(getattr(det, "save", None)) and type(det).__name__ in ("SeriesDetector", "MultiViewDetector"):
            return Path(det.save(path))
        raise InputError(_fmt("ganad.save", f"was given a {type(det).__name__}, not a ganad model",
                              "pass a fitted detector, SeriesDetector or MultiViewDetector"))
    det._check_fitted()
    path = check_model_path(path)
    try:  # load_model checks the parameters: a value set after fit that fit would refuse must not reach the file
        det._check_params()
    except ValueError as exc:
        raise InputError(f"{type(det).__name__}.save: a parameter holds a value fit would refuse, and the saved model would not load "
                         f"({exc}). Fix: set it back (det.set_params(...)) before saving") from exc
    params = det.get_params(deep=False)
    built = det.__dict__.get("_built_with") or {}
    # compared resolved: scaler='auto' and the 'per-feature' it resolved to (net='auto' and its family, ...) build the same model
    now, was = det._resolved_structure({k: params.get(k) for k in built}), det._resolved_structure(built)
    changed = [k for k in built if now[k] != was[k]]
    if changed:  # the file would name other networks than the fitted ones: refused by load, or silently other scores
        k = changed[0]
        raise InputError(_fmt(f"{type(det).__name__}.save", f"{k} is {params[k]!r}, but the fitted model was built with {k}={built[k]!r} "
                              "(set_params after fit takes effect at the next fit); the saved model would not be this one",
                              f"set it back (det.set_params({k}={built[k]!r})) before saving, or fit again"))
    if isinstance(params.get("random_state"), (np.random.RandomState, np.random.Generator)):
        # accepted by fit (scikit-learn's convention) but not a value a file can hold: the weights are
        # saved, so scores reproduce; only a refit from the file would draw other numbers
        logger.warning("%s.save: random_state is a %s object; it is saved as None (the model's scores are unaffected; "
                       "pass an integer seed to keep refits reproducible)", type(det).__name__, type(params["random_state"]).__name__)
        params["random_state"] = None
    try:
        json.dumps(_jsonable(params))
    except TypeError as exc:
        raise ModelFileError(_fmt("detector parameters", f"cannot be written as JSON ({exc})",
                                  "use plain values (numbers, strings, lists, dicts) for every parameter")) from exc
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "ganad_version": __version__,
              "class": type(det).__name__, "params": _jsonable(params), "state": _state(det)}
    tensors = _tensors(det)
    members = det.__dict__.get("members_")
    if members is not None:  # an ensemble: every member's state and weights under its own prefix
        config["state"]["members"] = [_state(m) for m in members]
        for i, m in enumerate(members):
            tensors.update({f"members.{i}.{k}": v for k, v in _tensors(m).items()})
    where = _nonfinite_path(config["state"])
    if where is not None:  # load refuses NaN / Infinity in config.json: a file that could never load is not written
        raise ModelFileError(_fmt(f"{type(det).__name__}.save", f"the fitted state holds a NaN or infinite number at {where}, "
                                  "which a model file cannot hold (the model would not load)", "fit the model again"))
    tuning = det.__dict__.get("tuning_")
    if tuning is not None:
        tuning = json.dumps(tuning, indent=2, default=str)
    recover_model_dir(path)
    mode = umask_mode()
    with new_folders_undone(path):  # a failed save leaves no folder it made above the model
        tmp = temp_dir_beside(path)  # removes the folders of saves that were killed
        try:
            try:
                save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
            except SafetensorError as exc:  # a full disk or a file size limit, in safetensors' own words: not an OSError
                raise ModelFileError(_fmt(f"model path {path}", f"could not be written ({exc})",
                                          "free some space on its disk (or choose a folder on another one) and save again")) from exc
            config["weights_sha256"] = file_sha256(tmp / WEIGHTS)  # load compares: a changed byte is a clear error, not other scores
            (tmp / CONFIG).write_text(json.dumps(config, indent=2))
            files = [WEIGHTS, CONFIG]
            if tuning is not None:  # ganad.tune's record: in the same folder replacement, so a model never lacks it
                (tmp / TUNING).write_text(tuning)
                files.append(TUNING)
            for f in files:
                os.chmod(tmp / f, 0o666 & mode)
                fsync_path(tmp / f)
            os.chmod(tmp, 0o777 & mode)
            fsync_path(tmp)
            # (a series or multi-view model is a ganad model: replaced, as check_model_path allowed before the work)
            if path.exists() and not any((path / m).exists() for m in MODEL_MARKERS) and any(path.iterdir()):
                raise ModelFileError(_fmt(str(path), "exists and is not a ganad model directory", "choose a new or empty directory"))
            replace_dir(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _state(det) -> dict:
    """The JSON state of a fitted detector (an ensemble's own numbers, or one member's)."""
    members = det.__dict__.get("members_")
    st = {"data_shape": list(det.data_shape_), "n_features_in": det.n_features_in_, "family": det.family_,
          "seed": det.seed_, "threshold": float(det.threshold_), "scaler": det.scaler_.to_dict(),
          "composer": det.composer_.to_dict(), "history": det.history_,
          **({"robust": _jsonable(det.robust_)} if hasattr(det, "robust_") else {}),
          **({"selection": _jsonable(det.selection_)} if hasattr(det, "selection_") else {}),
          **({"feature_names_in": [str(c) for c in det.feature_names_in_]} if hasattr(det, "feature_names_in_") else {}),
          **({"default_composer": det.default_composer_.to_dict()} if hasattr(det, "default_composer_") else {})}
    was = det.__dict__.get("_threshold_scored_with")
    if was is not None and was != det._scoring_key():  # set_params changed the scoring, not yet calibrated: stays refused after load
        st["scored_with"] = dict(was)
    if members is not None:
        st["member_stats"] = det.member_stats_
        st["calibration"] = det.__dict__.get("calibration_")
        return st
    return {**st, **det._extra_state()}


def _tensors(det) -> dict:
    """The safetensors entries of one fitted detector (none of an ensemble's nets: see members)."""
    tensors = {}
    if det.__dict__.get("members_") is None:
        tensors = {f"{name}.{k}": v.detach().cpu().contiguous() for name, net in det.nets_.items()
                   for k, v in net.state_dict().items()}
    if "_decision_scores" in det.__dict__:  # latent-search methods compute them on first access only
        tensors["decision_scores_"] = torch.from_numpy(np.ascontiguousarray(det.decision_scores_, dtype=np.float64))
    for key in ("validation_scores_", "calibration_scores_"):
        if getattr(det, key, None) is not None:
            tensors[key] = torch.from_numpy(np.ascontiguousarray(getattr(det, key), dtype=np.float64))
    for key in (k for k in det._fitted_arrays if k.startswith("knn_")):
        if det.__dict__.get(key) is not None:
            tensors[key] = getattr(det, key).detach().cpu().float().contiguous()
    if hasattr(det, "robust_weights_"):  # robust training's per-sample weights (diagnostics)
        tensors["robust_weights_"] = torch.from_numpy(np.ascontiguousarray(det.robust_weights_, dtype=np.float64))
    return tensors


# A model is replaced without ever leaving the path without a complete model: the new version is
# written and fsynced beside the old one, then the two folders are exchanged in one step
# (ganad.files.replace_dir); a crash between the fall-back's two renames is recovered by the next
# load or save (ganad.files.recover_dir).


#: a model's config.json is small (parameters, scaler, composer, history); larger is not ours
MAX_CONFIG_BYTES = 64 * 2**20


def _reject_constant(c):
    raise ValueError(f"holds the non-finite number {c}")


def _nonfinite_path(v, where="state"):
    """Dotted path of the first non-finite number inside a parsed JSON value, or None."""
    stack = [(v, where)]
    while stack:
        v, where = stack.pop()
        if isinstance(v, float) and not np.isfinite(v):
            return where
        if isinstance(v, dict):
            stack.extend((x, f"{where}.{k}") for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{where}[{i}]") for i, x in enumerate(v))
    return None


def read_wrapper_config(path: str | os.PathLike[str], name: str, fmt: str, max_version: int, written_by: str) -> dict[str, Any]:
    """The JSON file ``name`` of a model that wraps detector directories (a series model's
    ``series.json``, a multi-view model's ``multiview.json``): read, its ``format`` and
    ``format_version`` checked; every problem a :class:`ModelFileError` naming the file and the fix."""
    path = Path(path)
    if not os.path.lexists(path):
        path = recover_dir(path, name) or path  # a replacement killed half-way: the previous model
    f = path / name
    try:
        if f.is_file() and f.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"it is {f.stat().st_size} bytes, more than a ganad configuration can be")
        cfg = json.loads(f.read_text(), parse_constant=_reject_constant)  # NaN / Infinity: as config.json, refused
    except FileNotFoundError as exc:
        raise ModelFileError(_fmt(str(path), f"has no {name}", f"pass a directory written by {written_by}")) from exc
    except RecursionError as exc:
        raise ModelFileError(_fmt(str(f), "is nested too deeply to be a ganad configuration", "the model is corrupt: re-train and save it again")) from exc
    except OSError as exc:  # permissions, an I/O error: the file may be fine
        raise ModelFileError(_fmt(str(f), f"cannot be read ({exc.strerror or exc})", _UNREADABLE)) from exc
    except (UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise ModelFileError(_fmt(str(f), f"is not valid JSON ({exc})", "the model is corrupt: re-train and save it again")) from exc
    if not isinstance(cfg, dict) or cfg.get("format") != fmt:
        raise ModelFileError(_fmt(str(f), f"is not a {fmt} configuration", f"pass a directory written by {written_by}"))
    version = cfg.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ModelFileError(_fmt(str(f), f"has format_version {version!r}, which is not a whole number", "re-train and save the model"))
    if version > max_version:
        raise ModelFileError(_fmt(str(f), f"was written by a newer ganad (format {version})", "upgrade ganad"))
    return cfg


def write_wrapper_model(path: Path, name: str, what: str, cfg: dict[str, Any], save_parts) -> Path:
    """Write a model that wraps detector directories (the writer of :func:`read_wrapper_config`):
    ``cfg`` is checked to be JSON-able before anything is written (a :class:`ModelFileError` naming
    ``what`` otherwise), ``save_parts(tmp)`` saves the wrapped detectors into a temporary directory
    beside ``path`` (and may add to ``cfg``, e.g. their digests), then ``cfg`` is written as
    ``name`` and the directory replaces ``path`` atomically; on any failure nothing is left."""
    try:
        json.dumps(_jsonable(cfg))  # numpy scalars (window=np.int64(64)) as plain numbers, as save_model does
    except TypeError as exc:
        raise ModelFileError(_fmt(what, f"cannot be written as JSON ({exc})", "use plain values for every parameter")) from exc
    recover_model_dir(path)
    with new_folders_undone(path):
        tmp = temp_dir_beside(path)
        try:
            save_parts(tmp)
            (tmp / name).write_text(json.dumps(_jsonable(cfg), indent=2))
            fsync_path(tmp / name)
            os.chmod(tmp, 0o777 & umask_mode())  # mkdtemp made it 0700: as a detector model's folder, the umask's mode
            replace_dir(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


#: the fix for a model file that exists but cannot be read (not a corrupt one: re-training would not help)
_UNREADABLE = "check the file's permissions (and that its disk is readable), then load it again"


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        path = recover_dir(path, CONFIG) or path
    if not path.is_dir():
        raise ModelFileError(_fmt(str(path), "is not a model directory (it does not exist or is a file)",
                                  "pass the directory written by `ganad fit -o DIR` or detector.save(DIR)"))
    cfg_file = path / CONFIG
    if not cfg_file.is_file():
        for marker, what, cls in ((SERIES_CONFIG, "series", "SeriesDetector"), (MULTIVIEW_CONFIG, "multi-view", "MultiViewDetector")):
            if (path / marker).is_file():  # a ganad model of another kind, not a broken one
                raise ModelFileError(_fmt(str(path), f"holds a {what} model ({marker}), not a single detector's model ({CONFIG})",
                                          f"load it with ganad.load(path) or {cls}.load(path)"))
        raise ModelFileError(_fmt(str(path), f"has no {CONFIG}", "pass a directory written by ganad, or re-train and save the model"))
    corrupt = "the model is corrupt or was edited: re-train and save it again"
    try:
        if cfg_file.stat().st_size > MAX_CONFIG_BYTES:
            raise ModelFileError(_fmt(str(cfg_file), f"is {cfg_file.stat().st_size} bytes, more than a ganad configuration can be", corrupt))
        cfg = json.loads(cfg_file.read_text(), parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ModelFileError(_fmt(str(cfg_file), "is nested too deeply to be a ganad configuration", corrupt)) from exc
    except OSError as exc:  # permissions, an I/O error: the file may be fine
        raise ModelFileError(_fmt(str(cfg_file), f"cannot be read ({exc.strerror or exc})", _UNREADABLE)) from exc
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ModelFileError(_fmt(str(cfg_file), f"is not valid JSON ({exc})", corrupt)) from exc
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT or "class" not in cfg or "state" not in cfg:
        raise ModelFileError(_fmt(str(cfg_file), "is not a ganad model configuration", "pass a directory written by ganad"))
    version = cfg.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ModelFileError(_fmt(str(cfg_file), f"has format_version {version!r}, which is not a whole number", corrupt))
    if version > FORMAT_VERSION:
        raise ModelFileError(_fmt(str(cfg_file), f"was written by a newer ganad (format {version})", "upgrade ganad"))
    for key, kind in (("class", str), ("state", dict), ("params", dict)):
        if not isinstance(cfg.get(key), kind):
            raise ModelFileError(_fmt(str(cfg_file), f"has {key!r} = {str(cfg.get(key))[:60]!r}, not a {kind.__name__}", corrupt))
    return cfg


def finite_number(x) -> bool:
    """A number as a model file's JSON holds one (not a bool, not a string that reads as one), finite:
    one check for every stored number the loaders read (detector, series and multi-view files)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _positive_ints(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)


def _check_state(st: dict, cfg_file: Path) -> None:
    """Every stored number the detector uses: present, of the right kind, finite, positive where it must be."""
    corrupt = "the model is corrupt or was edited: re-train and save it again"

    def bad(problem):
        raise ModelFileError(_fmt(f"{cfg_file}", f"is inconsistent or corrupt: it {problem}", corrupt))
    where = _nonfinite_path(st)
    if where is not None:
        bad(f"holds a NaN or infinite number at {where}")
    shape: Any = st.get("data_shape")
    if not (_positive_ints(shape) and 1 <= len(shape) <= 3):
        bad(f"has data_shape {str(shape)[:60]}, not 1 to 3 positive whole numbers")
    if int(np.prod(shape)) > 2**31 or st.get("n_features_in") != int(np.prod(shape)):
        bad(f"has n_features_in {st.get('n_features_in')!r}, which does not match data_shape {shape}")
    for key, kind in (("family", str), ("seed", int), ("threshold", (int, float)), ("scaler", dict), ("composer", dict),
                      ("history", dict)):
        if not isinstance(st.get(key), kind) or isinstance(st.get(key), bool):
            bad(f"has state.{key} = {str(st.get(key))[:60]!r}, of the wrong kind")
    for key in ("width", "depth"):  # the networks as built (files since the eighteenth session; None in older ones)
        v = st.get(key)
        if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**16):
            bad(f"has state.{key} = {json.dumps(v)[:60]}; it must be a whole number from 1 to 65536")
    sc = st["scaler"]
    n_ch = shape[0]
    for key in ("shift", "scale"):
        v = sc.get(key)
        if not (isinstance(v, list) and len(v) == n_ch and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
            bad(f"has scaler.{key} that is not {n_ch} number(s), one per feature / channel")
    if any(abs(x) > 3e38 for x in sc["shift"] + sc["scale"]) or any(x <= 0 for x in sc["scale"]):
        bad("has a scaler scale that is zero, negative or out of float32 range (every scale must be > 0)")
    if "lo" in sc or "hi" in sc:  # the clip bounds (in scaled units): None or a short list would clip every value to NaN
        lo, hi = sc.get("lo"), sc.get("hi")
        if not (all(isinstance(v, list) and len(v) == n_ch and all(isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) <= 3e38
                                                                    for x in v) for v in (lo, hi)) and all(a <= b for a, b in zip(lo, hi))):
            bad(f"has scaler clip bounds lo / hi that are not {n_ch} number(s) each, in float32 range, with lo <= hi")
    names = st.get("feature_names_in")
    if names is not None and not (isinstance(names, list) and len(names) == st["n_features_in"] and all(isinstance(c, str) for c in names)):
        bad(f"has feature_names_in that are not {st['n_features_in']} column names")
    cal = st.get("calibration")
    if cal is not None and not isinstance(cal, dict):
        bad("has a calibration record that is not an object")
    thr = (cal or {}).get("decision_scores_threshold")
    if thr is not None and not (isinstance(thr, (int, float)) and not isinstance(thr, bool) and math.isfinite(thr)):
        bad(f"has calibration.decision_scores_threshold {thr!r}; it must be a finite number")
    sw = st.get("scored_with")
    # values: the settings' own types (inversion 'encoder', n_neighbors 5, search_eps 0.005, ...)
    if sw is not None and not (isinstance(sw, dict) and all(isinstance(k, str) and (v is None or isinstance(v, (str, int, float)))
                                                            for k, v in sw.items())):
        bad(f"has scored_with {str(sw)[:60]!r}, not an object of parameter names and values")
    dm = st.get("disc_train_mean")
    if dm is not None and not (isinstance(dm, (int, float)) and not isinstance(dm, bool) and 0 < dm <= 3e38):
        bad(f"has disc_train_mean {dm!r}; it must be a positive number")
    ks, split, scales = st.get("knn_space"), st.get("knn_split"), st.get("knn_scales")
    if ks is not None and ks not in ("code", "feature", "both", "input", "feature+input"):
        bad(f"has knn_space {str(ks)[:60]!r}, not 'code', 'feature', 'both', 'input' or 'feature+input'")
    two = ks in ("both", "feature+input")
    if two != (split is not None) or two != (scales is not None) or two and not (
            isinstance(split, int) and not isinstance(split, bool) and split > 0 and isinstance(scales, list) and len(scales) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in scales)):
        bad(f"has knn_split {repr(split)[:30]} and knn_scales {repr(scales)[:60]} for knn_space {ks!r} "
            "('both' and 'feature+input' need a positive width of the first block and two positive scales, the other spaces neither)")
    kt = st.get("knn_typical")  # the features' typical distance (two-sided block; models from 2 Dec 2026)
    if kt is not None and not (isinstance(kt, (int, float)) and not isinstance(kt, bool) and 0 <= kt <= 3e38 and ks == "feature+input"):
        bad(f"has knn_typical {repr(kt)[:40]} for knn_space {ks!r}: a finite number >= 0, and only with 'feature+input'")
    kb = st.get("knn_blocks")
    if kb is not None and (kb not in ("both", "input", "feature") or ks != "feature+input"):
        bad(f"has knn_blocks {str(kb)[:60]!r} for knn_space {ks!r}: 'both', 'input' or 'feature', and only with 'feature+input'")
    sel = st.get("knn_selection")  # what fit measured choosing knn_blocks (not read by scoring; kept and saved again with the model)
    auc = sel.get("synthetic_auroc") if isinstance(sel, dict) else None
    if sel is not None and not (
            kb is not None and isinstance(sel, dict) and sel.get("chosen") == kb
            and isinstance(sel.get("rows"), int) and not isinstance(sel.get("rows"), bool) and sel["rows"] > 0
            and isinstance(auc, dict) and set(auc) == {"both", "input", "feature"}
            and all(v is None or finite_number(v) and 0 <= v <= 1 for v in auc.values())):
        try:
            shown = json.dumps(sel)[:80]
        except RecursionError:  # nested nearly as deep as the parser allows
            shown = f"(a {type(sel).__name__} nested too deeply)"
        bad(f"has knn_selection {shown} for knn_blocks {str(kb)[:20]!r}: an object of the three blocks' synthetic_auroc "
            "(numbers in [0, 1] or null), the rows they were measured on and the block chosen, that of knn_blocks")
    km = st.get("knn_metric")
    if km is not None and (km not in ("euclidean", "mahalanobis", "mahalanobis+euclidean") or km == "mahalanobis" and ks == "both"
                           or (km == "mahalanobis+euclidean") != (ks == "feature+input")):
        bad(f"has knn_metric {str(km)[:60]!r} for knn_space {ks!r}, not 'euclidean' or 'mahalanobis' (not 'mahalanobis' with 'both'; "
            "'mahalanobis+euclidean' exactly with 'feature+input')")


def _weights_header(data: bytes) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Names, dtypes and shapes of the tensors in a safetensors file's bytes, from its header only."""
    if len(data) < 8:
        raise ValueError("the file is shorter than a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if n > min(len(data) - 8, 100 * 2**20):
        raise ValueError(f"its header claims {n} bytes, more than the file holds")
    meta = json.loads(data[8:8 + n])
    if not isinstance(meta, dict):
        raise ValueError("its header is not a JSON object")
    out = {}
    for k, v in meta.items():
        if k == "__metadata__":
            continue
        if not (isinstance(v, dict) and isinstance(v.get("dtype"), str) and isinstance(v.get("shape"), list)
                and all(isinstance(x, int) and x >= 0 for x in v["shape"])):
            raise ValueError(f"tensor {k!r} has a malformed header entry")
        out[k] = (v["dtype"], tuple(v["shape"]))
    return out


#: the score arrays save writes in float64 (float32 accepted); the knn tensors in float32
_SCORE_ARRAYS = ("decision_scores_", "validation_scores_", "calibration_scores_", "robust_weights_")


def _allowed_dtypes(key: str) -> tuple[str, ...]:
    """The safetensors dtypes a stored tensor may have: what save writes (network weights float32,
    float16 / float64 accepted as they load into float32 networks unchanged in kind)."""
    last = key.rsplit(".", 1)[-1]
    if last == "num_batches_tracked":
        return ("I64",)
    if last.startswith("knn_"):
        return ("F32",)
    if last in _SCORE_ARRAYS:
        return ("F64", "F32")
    return ("F32", "F16", "F64")


def _expected_shapes(det) -> dict[str, tuple[int, ...]] | None:
    """The tensors the stored configuration builds, computed on the meta device (no memory)."""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            nets = det._build_networks()
        return {f"{name}.{k}": tuple(v.shape) for name, net in nets.items() for k, v in net.state_dict().items()}
    except Exception:  # a network that cannot be built on meta: the real build checks it
        return None


def _pick_legacy_width(det, st: dict, header, prefix: str = "") -> None:
    """A file that does not record its networks' width (written before 30 Nov 2026) of a detector fitted
    with ``width=None`` was built with its family's default width of that time, and conv1d's moved from 8
    to 4 on 23 Nov (LEGACY_DEFAULT_WIDTHS): the width whose networks have the shapes the weights file
    holds. None fitting, the newest stays and :func:`_check_tensors` names the mismatch."""
    from ganad.nets import LEGACY_DEFAULT_WIDTHS
    widths = LEGACY_DEFAULT_WIDTHS.get(st["family"], ())
    if st.get("width") is not None or det.width is not None or len(widths) < 2:
        return
    stored = {k[len(prefix):]: s for k, (_, s) in header.items() if k.startswith(prefix)}
    for w in widths:
        det._built_width = w
        expected = _expected_shapes(det)
        if expected is not None and all(stored.get(k) == s for k, s in expected.items()):
            return
    det._built_width = widths[0]


def _check_tensors(det, header, wfile: Path, prefix: str = "") -> None:
    """Shapes in the weights file must be those the configuration builds, before anything is allocated."""
    corrupt = "the model is corrupt or was edited: re-train and save it again"
    expected = _expected_shapes(det)
    if expected is None:
        return
    numel = sum(int(np.prod(s)) for s in expected.values())
    stored = {k[len(prefix):]: s for k, (_, s) in header.items()
              if k.startswith(prefix) and not k[len(prefix):].startswith("members.") and k[len(prefix):] not in det._fitted_arrays}
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    wrong = [k for k in expected if k in stored and stored[k] != expected[k]]
    if missing or extra or wrong:
        k = (wrong or missing or extra)[0]
        raise ModelFileError(_fmt(str(wfile), f"is inconsistent or corrupt: it does not match the configuration ({len(missing)} missing, {len(extra)} unexpected, "
                                  f"{len(wrong)} wrongly shaped tensor(s); first: {prefix}{k!r} stored {stored.get(k)} vs built "
                                  f"{expected.get(k)}; the configuration asks for {numel} parameters)", corrupt))
    for key in ("decision_scores_", "validation_scores_", "calibration_scores_"):  # optional (latent-search methods: on first access)
        entry = header.get(prefix + key)
        if entry is not None and len(entry[1]) != 1:
            raise ModelFileError(_fmt(str(wfile), f"has a {prefix}{key} tensor that is not 1-D", corrupt))
    bank = header.get(prefix + "knn_bank_")
    if bank is not None and (len(bank[1]) != 2 or bank[1][0] < 1):
        raise ModelFileError(_fmt(str(wfile), f"has a {prefix}knn_bank_ tensor of shape {bank[1]}, not (n, k)", corrupt))
    basis, center = header.get(prefix + "knn_basis_"), header.get(prefix + "knn_center_")
    if det.__dict__.get("knn_space_") == "feature+input":
        _check_feature_input_tensors(det, header, wfile, prefix, bank, basis, center, corrupt)
        return
    if header.get(prefix + "knn_input_basis_") is not None or header.get(prefix + "knn_input_center_") is not None:
        raise ModelFileError(_fmt(str(wfile), f"has {prefix}knn_input tensors, which only knn_space 'feature+input' uses", corrupt))
    if (basis is None) != (center is None) or basis is not None and not (
            bank is not None and len(basis[1]) == 2 and center[1] == (basis[1][0],)
            and bank[1][1] == basis[1][1] + 1 + int(det.__dict__.get("knn_split_") or 0)):
        shapes = ", ".join(f"{k} {v[1] if v else None}" for k, v in (("knn_bank_", bank), ("knn_basis_", basis), ("knn_center_", center)))
        raise ModelFileError(_fmt(str(wfile), f"has {prefix}knn tensors that do not fit together ({shapes}; "
                                  "a basis (d, r) needs a centre (d,) and a bank (n, r + 1), after the codes with knn_space 'both')", corrupt))
    scale, maha = header.get(prefix + "knn_scale_"), det.__dict__.get("knn_metric_") == "mahalanobis"
    if maha != (scale is not None) or maha and not (basis is not None and scale[1] == (basis[1][1] + 1,) and bank[1][0] == 1):
        raise ModelFileError(_fmt(str(wfile), f"has {prefix}knn tensors that do not fit knn_metric {det.__dict__.get('knn_metric_') or 'euclidean'!r} "
                                  f"(knn_scale_ {scale[1] if scale else None}, knn_basis_ {basis[1] if basis else None}, knn_bank_ {bank[1] if bank else None}; "
                                  "'mahalanobis' needs a scale (r + 1,) beside a basis (d, r) and a one-row bank, 'euclidean' no scale)", corrupt))


def _check_feature_input_tensors(det, header, wfile: Path, prefix: str, bank, basis, center, corrupt: str) -> None:
    """knn_space='feature+input': the features' whitening (basis (d, r), centre (d,), scale (r + 1,),
    r + 1 = knn_split) and the input block's bank (n, k), compressed (k = r' + 1 beside an input
    basis (d', r') and centre (d',)) or not."""
    scale = header.get(prefix + "knn_scale_")
    ibasis, icenter = header.get(prefix + "knn_input_basis_"), header.get(prefix + "knn_input_center_")
    split = int(det.__dict__.get("knn_split_") or 0)
    ok = (bank is not None and basis is not None and center is not None and scale is not None and len(bank[1]) == 2
          and len(basis[1]) == 2 and center[1] == (basis[1][0],) and scale[1] == (basis[1][1] + 1,) and split == basis[1][1] + 1
          and (ibasis is None) == (icenter is None)
          and (ibasis is None or (len(ibasis[1]) == 2 and icenter[1] == (ibasis[1][0],) and bank[1][1] == ibasis[1][1] + 1)))
    if not ok:
        shapes = ", ".join(f"{k} {v[1] if v else None}" for k, v in (("knn_bank_", bank), ("knn_basis_", basis), ("knn_center_", center),
                                                                      ("knn_scale_", scale), ("knn_input_basis_", ibasis),
                                                                      ("knn_input_center_", icenter)))
        raise ModelFileError(_fmt(str(wfile), f"has {prefix}knn tensors that do not fit knn_space 'feature+input' ({shapes}, knn_split {split}; "
                                  "the features' whitening needs a basis (d, r), a centre (d,) and a scale (r + 1,) with knn_split r + 1, "
                                  "the input bank (n, k) a basis (d', k - 1) and a centre (d',) when compressed)", corrupt))


def _probe_sample(det) -> torch.Tensor:
    """One scaled sample, the training mean, for the load checks that run the networks once."""
    shift = det.scaler_.shift.reshape((1, -1) + (1,) * (len(det.data_shape_) - 1))
    return torch.from_numpy(det.scaler_.transform(np.ascontiguousarray(np.broadcast_to(shift, (1, *det.data_shape_)))))


def _check_knn_width(det, cfg_file: Path, prefix: str = "") -> None:
    """The knn tensors were built for the representation of the stored ``knn_space``: the width of
    that representation (the flattened input, the code, the discriminator's features; for 'both'
    the code and the features) must be the width the bank, or its principal directions, were built
    on. A knn_space edited in config.json otherwise loads and fails at the first scoring with a
    shape error deep inside torch (computed on one sample, the training mean)."""
    if det.__dict__.get("knn_bank_") is None:
        return
    space, split = det._knn_space_now(), det.__dict__.get("knn_split_")
    x = _probe_sample(det)
    if space == "feature+input":
        with det._score_context():
            x = x.to(det.device_)
            wf, wi = int(det._knn_feature(x).shape[1]), int(det._knn_input(x).shape[1])
        ib = det.__dict__.get("knn_input_basis_")
        have_f, have_i = int(det.knn_basis_.shape[0]), int(ib.shape[0]) if ib is not None else int(det.knn_bank_.shape[1])
        if (wf, wi) != (have_f, have_i):
            raise ModelFileError(_fmt(str(cfg_file), f"is inconsistent or corrupt: its knn_space 'feature+input' compares features of width {wf} "
                                      f"and inputs of width {wi}, but the {prefix}knn tensors were built on widths {have_f} and {have_i}",
                                      "the model is corrupt or was edited: re-train and save it again"))
        return
    with det._score_context():
        x = x.to(det.device_)
        if space == "input":
            widths = {"input": int(det._knn_input(x).shape[1])}
        else:
            widths = {}
            if space in ("code", "both"):
                widths["code"] = int(det._knn_code(x).shape[1])
            if space in ("feature", "both"):
                widths["feature"] = int(det._knn_feature(x).shape[1])
    basis, bank = det.__dict__.get("knn_basis_"), det.knn_bank_
    raw = widths.get("feature", widths.get("input", widths.get("code")))  # what the basis (or the bank after the code) was built on
    stored = int(basis.shape[0]) if basis is not None else int(bank.shape[1]) - int(split or 0)
    if stored != raw or (space == "both" and split != widths["code"]):
        have = ", ".join(f"{k} {v}" for k, v in widths.items())
        built = f"knn_basis_ {tuple(basis.shape)}" if basis is not None else f"knn_bank_ {tuple(bank.shape)}"
        raise ModelFileError(_fmt(str(cfg_file), f"is inconsistent or corrupt: its knn_space {space!r} compares vectors of width {have}, "
                                  f"but the {prefix}knn tensors were built on another width ({built}"
                                  f"{', knn_split ' + str(split) if split is not None else ''})",
                                  "the model is corrupt or was edited: re-train and save it again"))


def _check_composer(det, cfg_file: Path) -> None:
    """The stored composition reads only components this detector computes (listed by inverting
    one sample, the training mean; the components themselves are not computed)."""
    from ganad.scoring.composition import required_components
    names = required_components(det.composer_)
    inner = getattr(det.composer_, "inner", None)
    if inner is not None and names is not None:  # a blend at weight 1 reads only knn, but keeps its inner composition:
        # an edited inner one must be refused too (it would be read after set_params(knn_weight=0.75) and calibrate)
        names = list(dict.fromkeys(names + (required_components(inner) or [])))
    if not names:
        return
    if "members_" in det.__dict__:
        have = {f"member{i}" for i in range(len(det.members_))}
    else:
        x = _probe_sample(det)
        with det._score_context():
            x = x.to(det.device_)
            have = set(det._all_components(x, det._invert(x)))
    unknown = [k for k in names if k not in have]
    if unknown:
        raise ModelFileError(_fmt(str(cfg_file), f"is inconsistent or corrupt: its composition uses component(s) {unknown} that "
                                  f"{type(det).__name__} does not compute (it computes {sorted(have)})",
                                  "the model is corrupt or was edited: re-train and save it again, or re-calibrate it"))


def _under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _tuples(cls, params: dict) -> dict:
    """``params`` with JSON lists back as tuples where the constructor's default is a tuple (``betas``):
    get_params of a loaded detector gives what it gave before saving."""
    import inspect
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    return {k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v for k, v in params.items()}


def _restore(cls, params: dict, st: dict, header: dict, tensors_fn, prefix: str, cfg_file: Path):
    """One detector (or an ensemble and, recursively, its members) from its JSON state and the
    safetensors entries under ``prefix``; every stored value is checked before it is used."""
    from ganad.nets import FAMILIES

    corrupt = "the model is corrupt or was edited: re-train and save it again"
    _check_state(st, cfg_file)
    if st["family"] not in FAMILIES:
        raise ModelFileError(_fmt(str(cfg_file), f"has an unknown network family {st['family']!r}", corrupt))
    det = cls(**params_as_written(cls, params))  # a file older than a parameter: the value it was fitted with
    det._check_params()
    if st.get("knn_space") is not None:
        from ganad.params import constraints_of
        try:
            constraints_of(cls)["knn_space"].check("knn_space", st["knn_space"])
        except InputError as exc:
            raise ModelFileError(_fmt(str(cfg_file), f"is inconsistent or corrupt: its knn_space {st['knn_space']!r} is not one {cls.__name__} "
                                      "can use", corrupt)) from exc
    det._restore_fitted_state(st)
    if "members" in st:
        members, stats = st["members"], st.get("member_stats")
        if not (isinstance(members, list) and members and isinstance(stats, list) and len(stats) == len(members)
                and all(isinstance(m, dict) for m in members)
                and all(isinstance(v, list) and len(v) == 2 and all(finite_number(x) for x in v) and v[1] > 0 for v in stats)):
            raise ModelFileError(_fmt(str(cfg_file), "has an ensemble whose members or member statistics are malformed", corrupt))
        seeds = member_seeds(det.seed_, len(members))  # each member's own random_state, as fit gave it
        det.members_ = [_restore(cls, dict(params, n_members=1, random_state=seeds[i]), m, header, tensors_fn, f"{prefix}members.{i}.", cfg_file)
                        for i, m in enumerate(members)]
        det.member_stats_ = [[float(a), float(b)] for a, b in stats]
        # the key the threshold goes with is the members' (set before they existed, by _restore_fitted_state)
        det._threshold_scored_with = st["scored_with"] if st.get("scored_with") is not None else det._scoring_key()
    else:
        _pick_legacy_width(det, st, header, prefix)
        _check_tensors(det, header, cfg_file.parent / WEIGHTS, prefix)
        tensors = tensors_fn()
        nets: dict[str, dict[str, torch.Tensor]] = {}
        for key, v in _under(tensors, prefix).items():
            name, dot, rest = key.partition(".")
            if dot and name != "members":
                nets.setdefault(name, {})[rest] = v
        det._load_networks(nets)
    tensors = _under(tensors_fn(), prefix)
    if "decision_scores_" not in tensors and not det._search_scoring():
        raise ModelFileError(_fmt(str(cfg_file.parent / WEIGHTS), f"has no {prefix}decision_scores_ tensor (the training scores)", corrupt))
    det._restore_arrays(tensors)
    if "members_" not in det.__dict__:
        _check_knn_width(det, cfg_file, prefix)
    _check_composer(det, cfg_file)
    return det


def _finite(key: str, v: torch.Tensor) -> bool:
    """All finite; robust training's weights mark the held-out rows (never trained on) with NaN."""
    if key.rsplit(".", 1)[-1] == "robust_weights_":
        v = v[~torch.isnan(v)]
    return bool(torch.isfinite(v).all())


def _folder_id(path: Path):
    """The identity of the folder now at ``path`` (a save replaces the whole folder), None if none is there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


#: how often :func:`load_model` reads a model folder that a save replaced while it was being read
LOAD_ATTEMPTS = 5


def load_model(path: str | os.PathLike[str]) -> BaseGANDetector:
    """Rebuild a detector from a model directory, without unpickling anything.

    Every stored value is checked before use (finite, positive where it must be, shapes of
    the weights against the configuration, read from the safetensors header before any network
    is built); anything else is refused with a :class:`ModelFileError`.

    A save replaces the whole folder at once; a folder replaced while it was being read (another
    process saving a retrained model there) is read again, so that the configuration and the weights
    always come from one save (they were read by path one after the other, and the weights twice,
    for the tensors and for their digest: 10 of 80 loads in an audit mixed two saves without an error)."""
    return read_whole(path, _load_model_once)


def read_whole(path, load_once):
    """``load_once(path)``, again where the folder at ``path`` was replaced while it ran (a save
    elsewhere): what it returns was read from one folder, one save (a detector's, a series or a
    multi-view model's, whose JSON and detector folders are read one after the other)."""
    path = Path(path)
    for attempt in range(LOAD_ATTEMPTS):
        before = _folder_id(path)
        try:
            obj = load_once(path)
        except ModelFileError:
            if _folder_id(path) == before or attempt == LOAD_ATTEMPTS - 1:
                raise
            continue
        if _folder_id(path) == before:
            return obj
    raise ModelFileError(_fmt(str(path), f"was replaced by another save each of the {LOAD_ATTEMPTS} times it was read",
                              "load it again once the process saving there is done"))


def _load_model_once(path: Path) -> BaseGANDetector:
    if not path.exists():
        path = recover_dir(path, CONFIG) or path  # a replacement killed half-way: the previous model
    cfg = read_config(path)
    cfg_file = path / CONFIG
    corrupt = "the model is corrupt or was edited: re-train and save it again"
    cls = class_by_name(cfg["class"])
    if cls is None:
        known = sorted({c.__name__ for c in DETECTORS.values()})
        if not known:  # nothing registered yet: `import ganad` leaves the built-in methods to first use
            raise ModelFileError(_fmt(str(path), f"holds a {cfg['class']!r} model, and no detector class is registered in this process",
                                      "load it with ganad.load(path), which registers ganad's built-in methods (or import "
                                      "ganad.detectors before calling ganad.io.load_model)"))
        raise ModelFileError(_fmt(str(path), f"holds an unknown detector class {cfg['class']!r}", f"use a ganad version that has it; known: {known}"))
    wfile = path / WEIGHTS
    if not wfile.is_file():
        raise ModelFileError(_fmt(str(path), f"has no {WEIGHTS}", "the model is incomplete: re-train and save it again"))
    try:  # read once: the header, the tensors and the digest all come from these bytes
        data = wfile.read_bytes()
    except OSError as exc:  # permissions, an I/O error: the file may be fine
        raise ModelFileError(_fmt(str(wfile), f"cannot be read ({exc.strerror or exc})", _UNREADABLE)) from exc
    try:
        header = _weights_header(data)
    except Exception as exc:
        raise ModelFileError(_fmt(str(wfile), f"cannot be read ({exc})", "the weights are corrupt or truncated: re-train and save the model again")) from exc
    wrong = [(k, dt) for k, (dt, _) in header.items() if dt not in _allowed_dtypes(k)]
    if wrong:  # a bool or integer weight loads into a float network without an error and scores nonsense
        k, dt = wrong[0]
        raise ModelFileError(_fmt(str(wfile), f"has {len(wrong)} tensor(s) of a kind ganad does not write, the first {k!r} of dtype {dt} "
                                  f"(expected {' or '.join(_allowed_dtypes(k))})", corrupt))
    loaded: dict = {}

    def tensors_fn():  # read once, after the shapes were checked against the configuration
        if not loaded:
            try:
                loaded.update(load_bytes(data))
            except Exception as exc:  # safetensors raises its own error types on truncated / corrupt files
                raise ModelFileError(_fmt(str(wfile), f"cannot be read ({exc})", "the weights are corrupt or truncated: re-train and save the model again")) from exc
            nonfinite = [k for k, v in loaded.items() if v.is_floating_point() and not _finite(k, v)]
            if nonfinite:
                raise ModelFileError(_fmt(str(wfile), f"holds NaN or infinite values in tensor(s) {nonfinite[:5]}", corrupt))
        return loaded

    from ganad.nets.modes import own_modes
    try:
        with own_modes():  # networks built float32 in a float64 session (a valid file was called corrupt there)
            det = _restore(cls, _tuples(cls, cfg["params"]), cfg["state"], header, tensors_fn, "", cfg_file)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, InputError) as exc:
        raise ModelFileError(_fmt(str(path), f"is inconsistent or corrupt ({type(exc).__name__}: {exc})",
                                  "re-train and save the model with this ganad version")) from exc
    digest = cfg.get("weights_sha256")
    if digest is not None:  # absent in files saved before the digest: nothing to compare
        if not isinstance(digest, str) or digest != hashlib.sha256(data).hexdigest():
            # checked after every specific check: an edit those name is reported as such
            raise ModelFileError(_fmt(str(wfile), f"does not match the SHA-256 digest {str(digest)[:16]}… that {CONFIG} recorded when "
                                      "the model was saved: the weights were changed or corrupted since (a copy cut short, a flipped byte, "
                                      "a conversion)", "restore the file from the model's backup, or re-train and save the model"))
    tfile = Path(path) / TUNING
    if tfile.is_file():  # ganad.tune's record goes with the model: a load and save elsewhere keeps it
        try:
            if tfile.stat().st_size > MAX_CONFIG_BYTES:
                raise ValueError(f"it is {tfile.stat().st_size} bytes, more than a tuning record can be")
            record = json.loads(tfile.read_text())
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ModelFileError(_fmt(str(tfile), f"cannot be read as JSON ({type(exc).__name__}: {exc})",
                                      "restore it from a backup, or delete it (the record of the tuning search; the model does not need it)")) from exc
        if isinstance(record, dict):
            det.tuning_ = record
    return det
