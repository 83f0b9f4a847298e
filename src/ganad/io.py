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
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "ganad_version": __version__,
        "class": type(det).__name__, "params": _jsonable(params),
        "state": {
            "data_shape": list(det.data_shape_), "n_features_in": det.n_features_in_, "family": det.family_,
            "seed": det.seed_, "threshold": float(det.threshold_), "scaler": det.scaler_.to_dict(),
            "composer": det.composer_.to_dict(), "history": det.history_,
            **({"robust": _jsonable(det.robust_)} if hasattr(det, "robust_") else {}),
            **det._extra_state(),
        },
    }
    tensors = {f"{name}.{k}": v.detach().cpu().contiguous() for name, net in det.nets_.items()
               for k, v in net.state_dict().items()}
    tensors["decision_scores_"] = torch.from_numpy(np.ascontiguousarray(det.decision_scores_, dtype=np.float64))
    if hasattr(det, "robust_weights_"):  # robust training's per-sample weights (diagnostics)
        tensors["robust_weights_"] = torch.from_numpy(np.ascontiguousarray(det.robust_weights_, dtype=np.float64))
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


def load_model(path):
    """Rebuild a detector from a model directory, without unpickling anything."""
    from ganad.detectors import DETECTORS
    from ganad.data.scaling import Scaler
    from ganad.scoring.composition import composer_from_dict
    from ganad.training.loop import resolve_device
    from ganad.training.priors import make_prior

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
        st = cfg["state"]
        det = cls(**cfg["params"])
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
        det._load_extra_state(st)
        with torch.random.fork_rng(devices=[]):
            nets = torch.nn.ModuleDict(det._build_networks())
        for name, net in nets.items():
            prefix = f"{name}."
            sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            net.load_state_dict(sd, strict=True)
        det.nets_ = nets.to(det.device_).eval()
        det.decision_scores_ = tensors["decision_scores_"].numpy()
        det.labels_ = (det.decision_scores_ > det.threshold_).astype(np.int64)
        if "robust_weights_" in tensors:
            det.robust_weights_ = tensors["robust_weights_"].numpy()
        if "robust" in st:
            det.robust_ = st["robust"]
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(_fmt(str(path), f"is inconsistent or corrupt ({type(exc).__name__}: {exc})",
                                  "re-train and save the model with this ganad version")) from exc
    return det
