"""Model files: a directory with ``model.safetensors`` (weights, training scores) and
``config.json`` (class, parameters, data shape, scaler, composition, threshold, history).

Loading never unpickles: weights come from safetensors, everything else from JSON.
Saving is atomic: the directory is written under a temporary name and renamed into place,
so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ganad import __version__
from ganad.exceptions import ModelFileError, _fmt

FORMAT = "ganad-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


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


def save_model(det, path) -> Path:
    det._check_fitted()
    path = Path(path)
    params = det.get_params(deep=False)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        (tmp / CONFIG).write_text(json.dumps(config, indent=2))
        if path.exists():
            if not (path / CONFIG).exists() and any(path.iterdir()):
                raise ModelFileError(_fmt(str(path), "exists and is not a ganad model directory", "choose a new or empty directory"))
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
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
          **({"default_composer": det.default_composer_.to_dict()} if hasattr(det, "default_composer_") else {})}
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
    if getattr(det, "validation_scores_", None) is not None:
        tensors["validation_scores_"] = torch.from_numpy(np.ascontiguousarray(det.validation_scores_, dtype=np.float64))
    if det.__dict__.get("knn_bank_") is not None:
        tensors["knn_bank_"] = det.knn_bank_.detach().cpu().float().contiguous()
    if hasattr(det, "robust_weights_"):  # robust training's per-sample weights (diagnostics)
        tensors["robust_weights_"] = torch.from_numpy(np.ascontiguousarray(det.robust_weights_, dtype=np.float64))
    return tensors


def read_config(path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(_fmt(str(path), "is not a model directory (it does not exist or is a file)",
                                  "pass the directory written by `ganad fit -o DIR` or detector.save(DIR)"))
    cfg_file = path / CONFIG
    if not cfg_file.is_file():
        raise ModelFileError(_fmt(str(path), f"has no {CONFIG}", "pass a directory written by ganad, or re-train and save the model"))
    try:
        cfg = json.loads(cfg_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(_fmt(str(cfg_file), f"is not valid JSON ({exc})", "the model is corrupt: re-train and save it again")) from exc
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT or "class" not in cfg or "state" not in cfg:
        raise ModelFileError(_fmt(str(cfg_file), "is not a ganad model configuration", "pass a directory written by ganad"))
    if cfg.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(_fmt(str(cfg_file), f"was written by a newer ganad (format {cfg['format_version']})", "upgrade ganad"))
    return cfg


def _restore(cls, params: dict, st: dict, tensors: dict, prefix: str):
    """One detector (or an ensemble and, recursively, its members) from its JSON state and the
    safetensors entries under ``prefix``."""
    from ganad.data.scaling import Scaler
    from ganad.scoring.composition import composer_from_dict
    from ganad.training.loop import resolve_device
    from ganad.training.priors import make_prior

    det = cls(**params)
    det.data_shape_ = tuple(st["data_shape"])
    det.n_features_in_ = int(st["n_features_in"])
    det.family_ = st["family"]
    det.seed_ = int(st["seed"])
    det.threshold_ = float(st["threshold"])
    det.scaler_ = Scaler.from_dict(st["scaler"])
    det.composer_ = composer_from_dict(st["composer"])
    det.history_ = st["history"]
    det.prior_ = make_prior(det.prior)
    det.device_ = resolve_device(det.device)
    if "selection" in st:
        det.selection_ = st["selection"]
    if "default_composer" in st:
        det.default_composer_ = composer_from_dict(st["default_composer"])
    mine = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if "members" in st:
        sub = dict(params, n_members=1)
        det.members_ = [_restore(cls, sub, m, tensors, f"{prefix}members.{i}.") for i, m in enumerate(st["members"])]
        det.member_stats_ = [[float(a), float(b)] for a, b in st["member_stats"]]
        if st.get("calibration") is not None:
            det.calibration_ = st["calibration"]
    else:
        det._load_extra_state(st)
        with torch.random.fork_rng(devices=[]):
            nets = torch.nn.ModuleDict(det._build_networks())
        for name, net in nets.items():
            p = f"{name}."
            net.load_state_dict({k[len(p):]: v for k, v in mine.items() if k.startswith(p)}, strict=True)
        det.nets_ = nets.to(det.device_).eval()
    if "decision_scores_" in mine:
        det.decision_scores_ = mine["decision_scores_"].numpy()
    if "validation_scores_" in mine:
        det.validation_scores_ = mine["validation_scores_"].numpy()
    if "knn_bank_" in mine:
        det.knn_bank_ = mine["knn_bank_"]
    if "robust_weights_" in mine:
        det.robust_weights_ = mine["robust_weights_"].numpy()
    if "robust" in st:
        det.robust_ = st["robust"]
    return det


def load_model(path):
    """Rebuild a detector from a model directory, without unpickling anything."""
    from ganad.detectors import DETECTORS

    path = Path(path)
    cfg = read_config(path)
    by_class = {cls.__name__: cls for cls in DETECTORS.values()}
    cls = by_class.get(cfg["class"])
    if cls is None:
        raise ModelFileError(_fmt(str(path), f"holds an unknown detector class {cfg['class']!r}", f"use a ganad version that has it; known: {sorted(by_class)}"))
    wfile = path / WEIGHTS
    if not wfile.is_file():
        raise ModelFileError(_fmt(str(path), f"has no {WEIGHTS}", "the model is incomplete: re-train and save it again"))
    try:
        tensors = load_file(str(wfile))
    except Exception as exc:  # safetensors raises its own error types on truncated / corrupt files
        raise ModelFileError(_fmt(str(wfile), f"cannot be read ({exc})", "the weights are corrupt or truncated: re-train and save the model again")) from exc
    try:
        det = _restore(cls, cfg["params"], cfg["state"], tensors, "")
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(_fmt(str(path), f"is inconsistent or corrupt ({type(exc).__name__}: {exc})",
                                  "re-train and save the model with this ganad version")) from exc
    return det
