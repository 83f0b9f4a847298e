"""What a fitted model is and how it was made: ``ganad info MODEL_DIR`` and :func:`describe`.

A model directory is JSON and safetensors; this module reads it the way ``ganad.load`` does (every
check that loading makes, so a damaged or foreign file is refused here too, never unpickled) and
reports, in one place, what a user needs to trust or question a detector before putting it to work:

* what it takes: the sample shape, the feature names, the network family and size;
* how it was trained: epochs asked and run, the held-out selection (the epoch kept, its label-free
  criterion), EMA, ensemble members, robust training, divergence-guard events;
* what its default score reads: the composed components, the knn space and metric, and where
  ``knn_space='auto'`` chose the blocks per fit, the synthetic-anomaly AUROCs that chose them;
* where its threshold comes from: the rule (contamination, a false-positive rate, labels), its value,
  and the data it was set on (the held-out slice, the training samples themselves, calibration data);
* notes: what a careful user should know, e.g. a threshold set on the training samples themselves;
* for a model ``ganad tune`` chose, its search's objective, best value and parameters (``tuning.json``).

Series models add the window, stride, channels and point threshold and describe their window detector;
multi-view models describe each view's detector and how the views join. A checkpoint directory
(``ganad fit --checkpoint DIR``) is described too: the method, the data's shape and digest, and how far the
run got (epochs and steps done, when the checkpoint was written), read with every check resuming makes.

    >>> import numpy as np, ganad, tempfile, os
    >>> X = np.random.RandomState(0).randn(300, 4).astype("float32")
    >>> det = ganad.GANomaly(epochs=2).fit(X)
    >>> info = ganad.describe(det)
    >>> info["kind"], info["method"], info["input"]["shape"]
    ('detector', 'GANomaly', [4])
    >>> info["threshold"]["set_on"]
    'held-out training slice'
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["describe", "render"]


def _num(v) -> Any:
    """JSON-safe numbers: floats rounded for reading, non-finite ones as None."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return round(f, 6) if math.isfinite(f) else None


def _file_header(path: Path, name: str) -> dict:
    """The top of a model's JSON file (format, version, ganad version), read after loading has checked it."""
    try:
        with open(path / name, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (OSError, ValueError):
        return {}
    return {k: cfg.get(k) for k in ("format", "format_version", "ganad_version") if k in cfg}


def _epochs_run(history: dict) -> dict:
    """Epochs each training stage ran, from the per-epoch history (``stage/loss`` keys)."""
    out: dict[str, int] = {}
    for key, values in (history or {}).items():
        if "/" not in key or key.startswith("select/") or not isinstance(values, list):
            continue
        stage = key.split("/")[0]
        out[stage] = max(out.get(stage, 0), len(values))
    return out


def _describe_detector(det, thresholded: bool = True) -> dict:
    """``thresholded=False``: a series model's window detector or a multi-view model's view, whose own
    threshold labels nothing (the wrapper's does), so no note about it."""
    from ganad.exceptions import InputError
    d = det.__dict__
    params = det.get_params(deep=False)
    cal = d.get("calibration_") or {}
    shape = [int(s) for s in det.data_shape_]
    info: dict[str, Any] = {"kind": "detector", "method": type(det).__name__}
    inp: dict[str, Any] = {"shape": shape, "n_features": int(det.n_features_in_), "nets": det.family_}
    names = d.get("feature_names_in_")
    if names is not None:
        inp["feature_names"] = [str(c) for c in names]
    if d.get("members_") is None:
        inp["width"], inp["depth"] = int(det._width()), int(det._depth())
    info["input"] = inp

    members = d.get("members_")
    sel = d.get("selection_") or {}
    tr: dict[str, Any] = {"epochs": params.get("epochs"), "epochs_run": _epochs_run(d.get("history_") or {}),
                          "seed": params.get("random_state"), "validation_fraction": params.get("validation_fraction"),
                          "ema": params.get("ema")}
    if sel:
        tr["selection"] = {k: _num(v) if not isinstance(v, (list, dict)) else v for k, v in sel.items() if k != "divergence"}
        if sel.get("divergence"):
            tr["divergence_events"] = len(sel["divergence"])
    if members is not None:
        tr["members"] = len(members)
    robust = d.get("robust_")
    if robust:
        tr["robust"] = robust
    info["training"] = tr

    score: dict[str, Any] = {"composer": cal.get("composer") or getattr(det.composer_, "kind", type(det.composer_).__name__)}
    if d.get("knn_space_") is not None:
        score["knn_space"] = d["knn_space_"]
        score["knn_metric"] = d.get("knn_metric_")
        score["knn_weight"] = _num(det._knn_weight_now()) if members is None else params.get("knn_weight")
        score["n_neighbors"] = params.get("n_neighbors")
        if d.get("knn_blocks_") is not None:
            score["knn_blocks"] = d["knn_blocks_"]
        choice = d.get("knn_selection_")
        if choice:
            score["block_choice"] = {"synthetic_auroc": {k: _num(v) for k, v in (choice.get("synthetic_auroc") or {}).items()},
                                     "chosen": choice.get("chosen"), "held_out_rows": choice.get("rows")}
    info["score"] = score

    info["threshold"] = _threshold(float(det.threshold_), cal, params.get("contamination"))
    tuning = d.get("tuning_")
    if isinstance(tuning, dict):  # ganad tune's record, kept beside the model (tuning.json)
        info["tuning"] = {k: tuning[k] for k in ("objective", "best_value", "best_params", "best_trial", "n_complete", "n_pruned",
                                                  "n_failed", "study_name") if k in tuning}
    info["notes"] = _notes(info, thresholded)
    if hasattr(det, "_check_scoring_current"):
        try:
            det._check_scoring_current("decision_function")
        except InputError as exc:  # set_params changed the scoring after the threshold was set: scoring is refused
            info["notes"].append(f"scoring is refused until the model is recalibrated: {exc}")
    return info


def _threshold(value: float, cal: dict, contamination) -> dict:
    th: dict[str, Any] = {"value": _num(value), "rule": cal.get("threshold", "contamination")}
    if th["rule"] == "contamination":
        th["contamination"] = _num(cal.get("contamination", contamination))
    for key in ("fpr", "beta"):
        if cal.get(key) is not None:
            th[key] = _num(cal[key])
    if cal.get("compose") == "fit" or not cal:
        th["set_on"] = cal.get("data", "training")
    else:  # ganad calibrate / det.calibrate(X_val, y_val)
        n = cal.get("n_val", cal.get("n_samples", cal.get("n_points")))
        unit = "points" if "n_points" in cal and "n_val" not in cal and "n_samples" not in cal else "samples"
        th["set_on"] = "calibration data" + (f" ({n} {unit}{', labelled' if cal.get('labelled') else ''})" if n is not None else "")
        for key in ("val_auroc", "val_auprc"):
            if cal.get(key) is not None:
                th[key] = _num(cal[key])
    return th


def _notes(info: dict, thresholded: bool) -> list[str]:
    notes = []
    th = info["threshold"]
    if thresholded and th.get("set_on") == "training":
        notes.append("the threshold was set on the training samples themselves (too few rows for a held-out slice, or "
                     "validation_fraction=0): new normal samples tend to score higher, so more than the contamination share of "
                     "them is flagged; calibrate on separate normal data (ganad calibrate MODEL_DIR NORMAL.csv)")
    if info["training"].get("divergence_events"):
        notes.append(f"training diverged {info['training']['divergence_events']} time(s) and was rolled back "
                     "(the divergence guard, at a lower learning rate): the model kept is the one after the roll-back")
    choice = info["score"].get("block_choice")
    if choice and choice.get("chosen") == "input":
        notes.append("the default score reads the input's kNN distance alone: on the held-out rows the discriminator's "
                     "features did not tell synthetic anomalies apart better than the inputs (as on normal data of several "
                     "modes); set knn_space='feature+input' to read both blocks whatever the held-out rows say")
    return notes


def _describe_series(sd) -> dict:
    cal = sd.__dict__.get("calibration_") or {}
    info: dict[str, Any] = {"kind": "series", "method": type(sd.detector_).__name__,
                            "series": {"window": int(sd.window_), "stride": int(sd.stride_), "channels": list(sd.channels_),
                                       "event_gap": int(sd.event_gap_), "window_score": sd.window_score_}}
    th = _threshold(float(sd.threshold_), cal, sd.contamination)
    th["unit"] = "time point"
    if not cal:
        th["set_on"] = "training points"
    info["threshold"] = th
    info["detector"] = _describe_detector(sd.detector_, thresholded=False)
    info["notes"] = []
    return info


def _describe_multiview(mv) -> dict:
    cal = mv.__dict__.get("calibration_") or {}
    info: dict[str, Any] = {"kind": "multi-view", "views": list(mv.views_), "combine": mv.combine,
                            "reference_fraction": _num(mv.reference_fraction)}
    th = _threshold(float(mv.threshold_), cal, mv.contamination)
    rule = getattr(mv, "threshold_rule_", None)
    if not cal and rule and " on " in rule:  # "contamination=0.1 on 40 held-out samples"
        th["set_on"] = rule.split(" on ", 1)[1]
    info["threshold"] = th
    info["detectors"] = {v: _describe_detector(mv.detectors_[v], thresholded=False) for v in mv.views_}
    info["method"] = ", ".join(sorted({d["method"] for d in info["detectors"].values()}))
    info["notes"] = []
    return info


def _pairs(v) -> dict:
    """A checkpoint's split mapping (``{"__dict__": [[key, value], ...]}``) as a dict."""
    if isinstance(v, dict) and isinstance(v.get("__dict__"), list):
        return {str(p[0]): p[1] for p in v["__dict__"] if isinstance(p, list) and len(p) == 2}
    return v if isinstance(v, dict) else {}


def _describe_checkpoint(path: Path) -> dict:
    """A checkpoint directory (``fit(checkpoint_dir=...)``, ``ganad fit --checkpoint``): read with every check
    resuming makes; what was being trained, on what data, and how far it got."""
    import datetime

    from ganad.training import checkpoint as ck
    man, _ = ck.load(path)
    fp = man["fingerprint"]
    loop = man["state"].get("loop") or {}
    history = _pairs(loop.get("history"))
    params = fp.get("params") or {}
    data = fp.get("data") or {}
    epochs = params.get("epochs")
    done = _epochs_run(history)
    written = man.get("written")
    info: dict[str, Any] = {
        "kind": "checkpoint", "method": fp.get("class"),
        "data": {"shape": data.get("shape"), "dtype": data.get("dtype"), "sha256": data.get("sha256")},
        "progress": {"epochs": epochs, "epochs_done": done, "steps_done": loop.get("done_steps"), "checkpoint": man.get("seq"),
                     "written_utc": (datetime.datetime.fromtimestamp(float(written), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                                     if isinstance(written, (int, float)) and math.isfinite(written) else None)},
        "params": params, "notes": []}
    n_stages = len(man["state"].get("stages") or [])
    finished = isinstance(loop.get("stage"), int) and n_stages > 0 and loop["stage"] >= n_stages
    info["progress"]["stages"] = n_stages
    info["progress"]["finished"] = finished
    if finished:
        info["notes"].append("every training stage is done (a fit that went on to save its model leaves its checkpoint as well); if the "
                             "model was not saved, --resume finishes it without training again")
    else:
        info["notes"].append("resume with the same data and options and --resume (ganad fit DATA -o MODEL_DIR --checkpoint "
                             f"{path} --resume; from Python fit(X, checkpoint_dir=..., resume=True))")
    return info


def describe(model) -> dict:
    """A JSON-ready description of a fitted model: a model directory (loaded with every check ``ganad.load``
    makes) or a fitted detector, ``SeriesDetector`` or ``MultiViewDetector``. Keys: ``kind`` ('detector',
    'series' or 'multi-view'), ``method``, then per kind ``input`` / ``training`` / ``score`` / ``threshold``
    / ``notes`` (a detector), ``series`` / ``threshold`` / ``detector`` (a series model), ``views`` /
    ``combine`` / ``threshold`` / ``detectors`` (a multi-view model); a directory adds ``path`` and ``file``
    (format, format version, the ganad version that wrote it)."""
    from ganad.exceptions import InputError, _fmt
    path = None
    if isinstance(model, (str, os.PathLike)):
        from ganad.series.detector import load_any
        from ganad.training import checkpoint as ck
        path = Path(model)
        if path.is_dir() and ck.exists(path):
            return _finite({"path": str(path), **_describe_checkpoint(path)})
        model = load_any(path)
    from ganad.multiview import MultiViewDetector
    from ganad.series import SeriesDetector
    if isinstance(model, SeriesDetector):
        if not hasattr(model, "detector_"):
            raise InputError(_fmt("model", "is an unfitted SeriesDetector", "fit it first, or pass a model directory"))
        info = _describe_series(model)
    elif isinstance(model, MultiViewDetector):
        if not hasattr(model, "detectors_"):
            raise InputError(_fmt("model", "is an unfitted MultiViewDetector", "fit it first, or pass a model directory"))
        info = _describe_multiview(model)
    else:
        if not hasattr(model, "threshold_") or not hasattr(model, "data_shape_"):
            raise InputError(_fmt("model", f"is {'an unfitted ' if hasattr(model, 'fit') else 'a '}{type(model).__name__}",
                                  "pass a fitted ganad detector or a model directory"))
        info = _describe_detector(model)
    if path is not None:
        from ganad.io import CONFIG, MULTIVIEW_CONFIG, SERIES_CONFIG
        name = SERIES_CONFIG if info["kind"] == "series" else MULTIVIEW_CONFIG if info["kind"] == "multi-view" else CONFIG
        head = _file_header(path, name)
        if "ganad_version" not in head:  # a series / multi-view file: the version its detectors were written by
            from ganad.multiview import VIEWS_DIR
            from ganad.series.detector import DETECTOR_DIR
            inner = path / DETECTOR_DIR if info["kind"] == "series" else path / VIEWS_DIR / info["views"][0]
            version = _file_header(inner, CONFIG).get("ganad_version")
            if version is not None:
                head["ganad_version"] = version
        info = {"path": str(path), "file": head, **info}
    return _finite(info)


def _finite(v):
    """Non-finite numbers anywhere in the description as None (JSON has no NaN)."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt_value(x)}" for k, x in v.items())
    if isinstance(v, list):
        shown = ", ".join(str(x) for x in v[:8])
        return shown + (f", … ({len(v)} in all)" if len(v) > 8 else "")
    return str(v)


def _render_detector(info: dict, indent: str = "") -> list[str]:
    lines = []
    inp = info["input"]
    size = f", width {inp['width']}, depth {inp['depth']}" if "width" in inp else ""
    lines.append(f"{indent}input: shape {tuple(inp['shape'])}, {inp['nets']} nets{size}")
    if inp.get("feature_names"):
        lines.append(f"{indent}  features: {_fmt_value(inp['feature_names'])}")
    tr = info["training"]
    run = tr["epochs_run"]
    ran = ", ".join(f"{k} {v}" for k, v in run.items()) or "none recorded"
    lines.append(f"{indent}training: epochs {tr['epochs']} (run: {ran}), seed {tr['seed']}, held-out share {tr['validation_fraction']}, "
                 f"ema {tr['ema']}" + (f", {tr['members']} members" if tr.get("members") else ""))
    sel = tr.get("selection")
    if sel:
        lines.append(f"{indent}  selection: {_selection_text(sel)}")
    if tr.get("robust"):
        lines.append(f"{indent}  robust training: {_fmt_value(tr['robust'])}")
    sc = info["score"]
    knn = ""
    if "knn_space" in sc:
        knn = f"; knn space {sc['knn_space']} ({sc['knn_metric']}), weight {sc['knn_weight']}, k {sc['n_neighbors']}"
        if sc.get("knn_blocks"):
            knn += f", blocks read: {sc['knn_blocks']}"
    lines.append(f"{indent}score: {sc['composer']}{knn}")
    tu = info.get("tuning")
    if tu:
        lines.append(f"{indent}tuned (ganad tune): objective {tu.get('objective')}, best value {_fmt_value(tu.get('best_value'))} "
                     f"(trial {tu.get('best_trial')}, {tu.get('n_complete')} complete); parameters {_fmt_value(tu.get('best_params') or {})}")
    ch = sc.get("block_choice")
    if ch:
        aucs = ", ".join(f"{k} {'-' if v is None else format(v, '.3f')}" for k, v in ch["synthetic_auroc"].items())
        lines.append(f"{indent}  block choice on {ch['held_out_rows']} held-out rows vs synthetic anomalies (AUROC): {aucs} -> {ch['chosen']}")
    return lines


def _selection_text(sel: dict) -> str:
    """The held-out selection in words; an ensemble's per member."""
    if sel and all(isinstance(v, dict) for v in sel.values()):
        return "; ".join(f"{k}: {_selection_text(v)}" for k, v in sel.items())
    if sel.get("criterion") is None or sel.get("best_epoch") is None:
        return "none (no held-out slice): the last epoch's weights" + (f" (EMA {sel['ema']})" if sel.get("ema") else "")
    text = f"epoch {sel.get('best_epoch')} kept by the {sel['criterion']} criterion"
    if sel.get("best_value") is not None:
        text += f" ({sel['best_value']:.4g})"
    if sel.get("stopped_at_epoch") is not None:
        text += f", stopped early (patience) at epoch {sel['stopped_at_epoch']}"
    return text + (f", EMA weights ({sel['ema']})" if sel.get("ema") else "")


def _render_threshold(th: dict, indent: str = "") -> str:
    rule = th["rule"]
    how = f"{rule} {th[rule]}" if rule in th else rule
    extra = "".join(f", {k} {th[k]}" for k in ("val_auroc", "val_auprc") if k in th)
    return f"{indent}threshold: {th['value']} ({how}; set on {th['set_on']}{extra})"


def render(info: dict) -> list[str]:
    """:func:`describe`'s dict as lines of text (what ``ganad info`` prints)."""
    head = []
    if info["kind"] == "checkpoint":
        head.append(f"{info['path']}: checkpoint of a {info['method']} training run")
    elif "path" in info:
        f = info.get("file") or {}
        by = f"written by ganad {f['ganad_version']}, " if f.get("ganad_version") else ""
        head.append(f"{info['path']}: {info['kind']} model, {info['method']} ({by}{f.get('format', '?')} v{f.get('format_version', '?')})")
    else:
        head.append(f"{info['kind']} model, {info['method']}")
    lines = head
    if info["kind"] == "checkpoint":
        dt = info["data"]
        pr = info["progress"]
        done = ", ".join(f"{k} {v}" for k, v in pr["epochs_done"].items()) or "none"
        lines.append(f"data: shape {tuple(dt['shape'] or ())}, {dt['dtype']}, SHA-256 {str(dt['sha256'])[:16]}…")
        lines.append(f"progress: {'finished; ' if pr['finished'] else ''}epochs done {done} (epochs {pr['epochs']}, {pr['stages']} "
                     f"stage{'s' if pr['stages'] != 1 else ''}), {pr['steps_done']} steps; checkpoint "
                     f"{pr['checkpoint']} written {pr['written_utc']} UTC")
    elif info["kind"] == "detector":
        lines += _render_detector(info)
        lines.append(_render_threshold(info["threshold"]))
    elif info["kind"] == "series":
        s = info["series"]
        lines.append(f"series: window {s['window']}, stride {s['stride']}, event gap {s['event_gap']}, window score {s['window_score']}, "
                     f"channels {_fmt_value(s['channels'])}")
        lines.append(_render_threshold(info["threshold"]) + " (per time point)")
        lines.append("window detector:")
        lines += _render_detector(info["detector"], "  ")
        lines.append(_render_threshold(info["detector"]["threshold"], "  ") + " (per window)")
    else:
        lines.append(f"views: {', '.join(info['views'])}; joined by {info['combine']}, reference share {info['reference_fraction']}")
        lines.append(_render_threshold(info["threshold"]))
        for v, d in info["detectors"].items():
            lines.append(f"view {v}: {d['method']}")
            lines += _render_detector(d, "  ")
    notes = list(info.get("notes", []))
    subs = ([("window detector", info["detector"])] if info["kind"] == "series"
            else [(f"view {v}", d) for v, d in info.get("detectors", {}).items()])
    for where, sub in subs:
        notes += [f"{where}: {n}" for n in sub.get("notes", [])]
    for n in notes:
        lines.append(f"note: {n}")
    return lines
