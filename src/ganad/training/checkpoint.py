"""Checkpoint and resume of the one training loop (issue 13), and the state snapshots the
divergence guard rolls back to.

A *snapshot* is everything that decides the rest of a run: the networks' weights and buffers
(BatchNorm running statistics, spectral-norm vectors), every optimiser's state (Adam moments,
step counts, learning rates), each stage's own counters (``Stage.state``: the ``n_critic``
phase and the last generator loss), the :class:`~ganad.training.selection.Selector` (EMA
shadow weights, its step counter, the best epoch's weights, the criterion history), robust
training's weighter, the loop position (stage, epoch, batches done in the epoch; within an
epoch also the epoch's permutation, its sample weights and the partial loss sums), the loss
history, the divergence guard's state, the training ``torch.Generator`` and the global torch
random state (dropout draws from it). Restoring a snapshot into freshly built networks and
optimisers continues the run step for step: on CPU a resumed run ends with the same weights
and scores, bit for bit, as an uninterrupted one (tests/test_checkpoint.py).

On disk a checkpoint directory holds ``checkpoint.json`` (format, fingerprint of the data and
of the parameters, the snapshot's non-tensor part, and the name and SHA-256 of its tensor file)
and ``state-<n>.safetensors`` (every tensor). A new checkpoint writes and fsyncs its tensor file
under a new name first, then replaces ``checkpoint.json`` atomically (write beside, fsync,
``os.replace``, fsync the folder), and only then removes the previous tensor file: a kill -9 at
any moment leaves a complete checkpoint, the previous or the new one. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ganad.exceptions import InputError, ModelFileError, _fmt
from ganad.files import alive, fsync_path, write_bytes

FORMAT = "ganad-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "checkpoint.json"
LOCK = ".lock"


# ---------------------------------------------------------------- loop position
@dataclass
class LoopState:
    """Where the loop is: the next batch to run is batch ``step`` of epoch ``epoch`` of stage
    ``stage`` (``step == 0``: the epoch has not started, so it has no permutation yet)."""

    stage: int = 0
    epoch: int = 0
    step: int = 0
    perm: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    sums: dict = field(default_factory=dict)
    n_steps: int = 0
    history: dict = field(default_factory=dict)
    done_steps: int = 0  # progress bar position


# ---------------------------------------------------------------- tensors <-> JSON tree
def _split(obj, prefix: str, tensors: dict):
    """A JSON-able tree of ``obj`` with every tensor replaced by a reference into ``tensors``
    (a copy on the CPU)."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, _split(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint: cannot store a {type(obj).__name__} ({prefix})")


def _join(tree, tensors: dict, device=None):
    """The inverse of :func:`_split`; tensors are copied (a snapshot can be restored twice)."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            t = tensors[tree["__tensor__"]]
            return t.to(device, copy=True) if device is not None else t.clone()
        if "__dict__" in tree:
            return {(k if isinstance(k, (str, int)) else tuple(k)): _join(v, tensors, device) for k, v in tree["__dict__"]}
        if "__tuple__" in tree:
            return tuple(_join(v, tensors, device) for v in tree["__tuple__"])
        raise ValueError(f"unknown node {sorted(tree)}")
    if isinstance(tree, list):
        return [_join(v, tensors, device) for v in tree]
    return tree


# ---------------------------------------------------------------- snapshots
@dataclass
class Snapshot:
    tensors: dict
    meta: dict
    where: str = "checkpoint"  # named in the error when the state does not fit the networks built


class TrainingState:
    """Captures and restores the whole state of a run (see the module's docstring)."""

    def __init__(self, nets: torch.nn.Module, stages, generator: torch.Generator, device: torch.device,
                 selector=None, weighter=None, guard=None):
        self.nets, self.stages, self.generator, self.device = nets, stages, generator, device
        self.selector, self.weighter, self.guard = selector, weighter, guard

    def capture(self, ls: LoopState) -> Snapshot:
        t: dict = {}
        meta: dict = {}
        for k, v in self.nets.state_dict().items():
            t[f"net/{k}"] = v.detach().to("cpu", copy=True).contiguous()
        meta["stages"] = [{"optimizers": [_split(o.state_dict(), f"opt/{i}/{j}", t) for j, o in enumerate(s.optimizers)],
                           "state": _split(dict(s.state), f"stage/{i}", t)} for i, s in enumerate(self.stages)]
        t["rng/generator"] = self.generator.get_state().clone()
        t["rng/torch"] = torch.get_rng_state().clone()
        if self.device.type == "cuda":
            t["rng/cuda"] = torch.cuda.get_rng_state(self.device).clone()
        sel = self.selector
        if sel is not None:
            meta["selector"] = {
                "t": sel._t, "history": _split(sel.history, "sel/history", t), "stopped_at": sel.stopped_at,
                "shadow": _split(list(sel.shadow), "sel/shadow", t) if sel.shadow is not None else None,
                "best": _split(list(sel.best), "sel/best", t) if sel.best is not None else None}
        w = self.weighter
        if w is not None and hasattr(w, "log"):
            meta["weighter"] = {"log": _split(w.log, "robust/log", t), "weights": _split(w.weights, "robust/weights", t) if w.weights is not None else None}
        if self.guard is not None:
            meta["guard"] = _split(self.guard.state(), "guard", t)
        meta["loop"] = {"stage": ls.stage, "epoch": ls.epoch, "step": ls.step, "n_steps": ls.n_steps,
                        "done_steps": ls.done_steps, "history": _split(ls.history, "loop/history", t),
                        "sums": _split(dict(ls.sums), "loop/sums", t),
                        "perm": _split(ls.perm, "loop/perm", t) if ls.perm is not None else None,
                        "weights": _split(ls.weights, "loop/weights", t) if ls.weights is not None else None}
        return Snapshot(t, meta)

    def check(self, snap: Snapshot, n: int, per_epoch: int) -> None:
        """Refuse a snapshot read from a checkpoint file whose non-tensor state this run cannot continue
        from (a hand-edited or damaged ``checkpoint.json`` whose tensor file still matches): every entry
        the loop, the stages, the selector, robust training's weighter and the divergence guard read
        on resume is checked here, in one place, against the run built (``n`` training rows,
        ``per_epoch`` batches an epoch), so that such a file fails as one ModelFileError naming the
        file, the entry and the fix, never as a KeyError / TypeError / IndexError from the loop."""
        try:
            _check_state(self, snap, n, per_epoch)
        except _Bad as exc:
            raise ModelFileError(_fmt(snap.where, f"its {MANIFEST} holds a training state this run cannot continue from: {exc} "
                                                  "(edited by hand or damaged)", FIX_AFRESH)) from None

    def restore(self, snap: Snapshot) -> LoopState:
        """Restore ``snap``; a state that does not fit the networks and optimisers built (a damaged or
        hand-edited checkpoint whose SHA-256 still matches) is refused as a ModelFileError naming it."""
        try:
            return self._restore(snap)
        except (KeyError, TypeError, IndexError, ValueError, AttributeError, RuntimeError) as exc:
            raise ModelFileError(_fmt(snap.where, f"holds a training state that does not fit the networks built "
                                                  f"({type(exc).__name__}: {str(exc)[:200]})", FIX_AFRESH)) from exc

    def _restore(self, snap: Snapshot) -> LoopState:
        t, meta, dev = snap.tensors, snap.meta, self.device
        sd = {k[4:]: v for k, v in t.items() if k.startswith("net/")}
        with torch.no_grad():  # in place: the Selector and the optimisers keep pointing at the same tensors
            own = self.nets.state_dict()
            if sorted(own) != sorted(sd):
                raise ValueError(f"the networks' tensors differ ({sorted(set(own) ^ set(sd))[:5]})")
            for k, v in own.items():
                v.copy_(sd[k])
        if len(meta["stages"]) != len(self.stages):
            raise ValueError(f"{len(meta['stages'])} stages stored, {len(self.stages)} built")
        for s, m in zip(self.stages, meta["stages"]):
            if len(m["optimizers"]) != len(s.optimizers):
                raise ValueError(f"stage {s.name!r}: {len(m['optimizers'])} optimisers stored, {len(s.optimizers)} built")
            for o, osd in zip(s.optimizers, m["optimizers"]):
                o.load_state_dict(_join(osd, t))
            s.state.clear()
            s.state.update(_join(m["state"], t, dev))
        self.generator.set_state(t["rng/generator"].clone())
        torch.set_rng_state(t["rng/torch"].clone())
        if "rng/cuda" in t and dev.type == "cuda":
            torch.cuda.set_rng_state(t["rng/cuda"].clone(), dev)
        sel, ms = self.selector, meta.get("selector")
        if sel is not None and ms is not None:
            sel._t, sel.history, sel.stopped_at = ms["t"], _join(ms["history"], t), ms["stopped_at"]
            if ms["shadow"] is not None:
                with torch.no_grad():
                    for a, b in zip(sel.shadow, _join(ms["shadow"], t)):
                        a.copy_(b)
            best = _join(ms["best"], t, dev) if ms["best"] is not None else None
            sel.best = tuple(best) if best is not None else None
        w, mw = self.weighter, meta.get("weighter")
        if w is not None and mw is not None:
            w.log = _join(mw["log"], t)
            w.weights = _join(mw["weights"], t) if mw["weights"] is not None else None
        if self.guard is not None and "guard" in meta:
            self.guard.load_state(_join(meta["guard"], t))
        lp = meta["loop"]
        return LoopState(stage=lp["stage"], epoch=lp["epoch"], step=lp["step"], n_steps=lp["n_steps"],
                         done_steps=lp["done_steps"], history=_join(lp["history"], t),
                         sums=_join(lp["sums"], t, dev),
                         perm=_join(lp["perm"], t) if lp["perm"] is not None else None,
                         weights=_join(lp["weights"], t) if lp["weights"] is not None else None)


# ---------------------------------------------------------------- checking a loaded state
FIX_AFRESH = "delete the checkpoint directory and train afresh (or train without --resume / resume=False into another --checkpoint directory)"


class _Bad(Exception):
    """One problem of a loaded state: the entry (dotted path under the manifest's ``state``) and what is wrong."""


def _entry(d, key, path: str, kind=None):
    if not isinstance(d, dict) or key not in d:
        raise _Bad(f"{path} is missing")
    v = d[key]
    if kind is not None and not isinstance(v, kind):
        raise _Bad(f"{path} is {_show(v)}, not a {kind.__name__}")
    return v


def _show(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {tuple(v.shape)}"
    return repr(v)[:60]


def _whole(v, path: str, lo: int = 0, hi: int | None = None) -> int:
    if not _is_int(v) or v < lo or (hi is not None and v > hi):
        raise _Bad(f"{path} is {_show(v)}, not a whole number in [{lo}, {'…' if hi is None else hi}]")
    return v


def _number(v, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"{path} is {_show(v)}, not a number")
    return v


def _joined(tree, tensors: dict, path: str):
    try:
        return _join(tree, tensors)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise _Bad(f"{path} is malformed ({type(exc).__name__}: {str(exc)[:80]})") from None


def _series(d, path: str) -> None:
    """A loss / criterion history: {name: [number, ...]}."""
    if not isinstance(d, dict):
        raise _Bad(f"{path} is {_show(d)}, not a mapping of names to lists of numbers")
    for k, v in d.items():
        if not isinstance(k, str) or not isinstance(v, list):
            raise _Bad(f"{path}[{k!r}] is {_show(v)}, not a list of numbers")
        for i, x in enumerate(v):
            if isinstance(_number(x, f"{path}[{k!r}][{i}]"), float) and math.isnan(x):
                # a model file cannot hold NaN (load refuses it): the resumed fit could not be saved
                raise _Bad(f"{path}[{k!r}][{i}] is NaN (the divergence guard stops a run before its losses are)")


def _tensor(v, path: str, shape=None, floating: bool | None = None) -> torch.Tensor:
    if not isinstance(v, torch.Tensor):
        raise _Bad(f"{path} is {_show(v)}, not a tensor")
    if shape is not None and tuple(v.shape) != tuple(shape):
        raise _Bad(f"{path} has shape {tuple(v.shape)}, not {tuple(shape)}")
    if floating is not None and v.is_floating_point() != floating:
        raise _Bad(f"{path} has dtype {v.dtype}, not a {'floating-point' if floating else 'integer'} one")
    return v


def _like(v, ref, path: str) -> None:
    """``v`` has the structure of ``ref`` (what the run built): the same keys and lengths, numbers
    where it has numbers (finite and >= 0: learning rates, betas, eps, decay), the same flags."""
    if isinstance(ref, dict):
        if not isinstance(v, dict) or sorted(map(str, v)) != sorted(map(str, ref)):
            raise _Bad(f"{path} is {_show(v)}, not a mapping with the entries {sorted(map(str, ref))}")
        for k in ref:
            _like(v[k], ref[k], f"{path}.{k}")
    elif isinstance(ref, (list, tuple)):
        if not isinstance(v, (list, tuple)) or len(v) != len(ref):
            raise _Bad(f"{path} is {_show(v)}, not a list of {len(ref)}")
        for i, (a, b) in enumerate(zip(v, ref)):
            _like(a, b, f"{path}[{i}]")
    elif isinstance(ref, bool):  # a flag that changes the update (Adam's amsgrad, maximize): as built
        if v is not ref:
            raise _Bad(f"{path} is {_show(v)}, not {ref!r}")
    elif ref is None or isinstance(ref, str):
        if v != ref:
            raise _Bad(f"{path} is {_show(v)}, not {ref!r}")
    elif isinstance(ref, (int, float)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise _Bad(f"{path} is {_show(v)}, not a finite number >= 0")


#: optimiser flags that choose PyTorch's kernel, not the update (a checkpoint written before ganad
#: used the fused Adam resumes with the kernel it was written with): each True, False or None
#: (capturable and differentiable, False in every optimiser ganad builds, are compared as built)
_KERNEL_FLAGS = ("fused", "foreach")


def _without_kernel_flags(groups):
    if not isinstance(groups, list):
        return groups
    return [{k: v for k, v in g.items() if k not in _KERNEL_FLAGS} if isinstance(g, dict) else g for g in groups]


def _check_state(ts: "TrainingState", snap: Snapshot, n: int, per_epoch: int) -> None:
    t, meta = snap.tensors, snap.meta
    # stages: one entry per stage built, each with its optimisers and its step's own counters
    if not isinstance(meta, dict):
        raise _Bad(f"state is {_show(meta)}, not a mapping")
    stages = _entry(meta, "stages", "stages", list)
    if len(stages) != len(ts.stages):
        raise _Bad(f"stages lists {len(stages)} stage(s), this run has {len(ts.stages)}")
    for i, (s, m) in enumerate(zip(ts.stages, stages)):
        opts = _entry(m, "optimizers", f"stages[{i}].optimizers", list)
        if len(opts) != len(s.optimizers):
            raise _Bad(f"stages[{i}].optimizers lists {len(opts)} optimiser(s), stage {s.name!r} has {len(s.optimizers)}")
        for j, (o, om) in enumerate(zip(s.optimizers, opts)):
            p = f"stages[{i}].optimizers[{j}]"
            osd, ref = _joined(om, t, p), o.state_dict()
            if not isinstance(osd, dict):
                raise _Bad(f"{p} is {_show(osd)}, not an optimiser state")
            groups = _entry(osd, "param_groups", f"{p}.param_groups")
            _like(_without_kernel_flags(groups), _without_kernel_flags(ref["param_groups"]), f"{p}.param_groups")
            for gi, g in enumerate(groups):
                for k in _KERNEL_FLAGS:
                    if k in g and g[k] is not None and not isinstance(g[k], bool):
                        raise _Bad(f"{p}.param_groups[{gi}].{k} is {_show(g[k])}, not True, False or None")
            if [g["params"] for g in groups] != [g["params"] for g in ref["param_groups"]]:
                raise _Bad(f"{p}.param_groups do not list the optimiser's parameters")
            shapes = [q.shape for g in o.param_groups for q in g["params"]]
            ostate = _entry(osd, "state", f"{p}.state", dict)
            keys = set().union(*(st for st in ostate.values() if isinstance(st, dict)))
            for k, st in ostate.items():
                if not _is_int(k) or not 0 <= k < len(shapes) or not isinstance(st, dict):
                    raise _Bad(f"{p}.state[{k!r}] is not the state of one of its {len(shapes)} parameters")
                if set(st) != keys:  # every parameter's state has the same entries (Adam: step, exp_avg, exp_avg_sq)
                    raise _Bad(f"{p}.state[{k}] lacks {sorted(map(str, keys - set(st)))}")
                for name, v in st.items():  # Adam: the step count (a scalar) and moments of the parameter's shape
                    if _tensor(v, f"{p}.state[{k}].{name}").dim():
                        _tensor(v, f"{p}.state[{k}].{name}", shapes[k])
        state = _joined(_entry(m, "state", f"stages[{i}].state"), t, f"stages[{i}].state")
        if not isinstance(state, dict):
            raise _Bad(f"stages[{i}].state is {_show(state)}, not a mapping")
        for k, v in {**state, **s.state}.items():  # the built stage's counters must all be there
            p, v = f"stages[{i}].state[{k!r}]", state.get(k, _Bad)
            if v is _Bad:
                raise _Bad(f"{p} is missing")
            if _is_int(s.state.get(k)) or (k not in s.state and not isinstance(v, torch.Tensor)):
                _whole(v, p)
            else:
                _tensor(v, p)
    # the loop's position: stage, epoch, batch (and mid-epoch the epoch's permutation, weights and loss sums)
    lp = _entry(meta, "loop", "loop", dict)
    si = _whole(_entry(lp, "stage", "loop.stage"), "loop.stage", 0, len(ts.stages))
    epochs = ts.stages[si].epochs if si < len(ts.stages) else 0
    _whole(_entry(lp, "epoch", "loop.epoch"), "loop.epoch", 0, max(epochs - 1, 0))
    step = _whole(_entry(lp, "step", "loop.step"), "loop.step", 0, per_epoch - 1 if si < len(ts.stages) else 0)
    _whole(_entry(lp, "n_steps", "loop.n_steps"), "loop.n_steps", 0, step)
    _whole(_entry(lp, "done_steps", "loop.done_steps"), "loop.done_steps", 0, sum(s.epochs for s in ts.stages) * per_epoch)
    _series(_joined(_entry(lp, "history", "loop.history"), t, "loop.history"), "loop.history")
    sums = _joined(_entry(lp, "sums", "loop.sums"), t, "loop.sums")
    if not isinstance(sums, dict):
        raise _Bad(f"loop.sums is {_show(sums)}, not a mapping")
    for k, v in sums.items():
        if not isinstance(k, str) or _tensor(v, f"loop.sums[{k!r}]").numel() != 1:
            raise _Bad(f"loop.sums[{k!r}] is not one loss sum")
    perm = _entry(lp, "perm", "loop.perm")
    if perm is None and step > 0:
        raise _Bad(f"loop.perm is missing at batch {step} of an epoch (the epoch's order of the training rows)")
    if perm is not None:
        perm = _tensor(_joined(perm, t, "loop.perm"), "loop.perm", (n,), floating=False)
        if not torch.equal(torch.sort(perm.long()).values, torch.arange(n)):
            raise _Bad(f"loop.perm is not a permutation of the {n} training rows")
    w = _entry(lp, "weights", "loop.weights")
    if w is not None:
        w = _tensor(_joined(w, t, "loop.weights"), "loop.weights", (n,), floating=True)
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise _Bad("loop.weights holds negative or non-finite sample weights")
    # the selector, robust training's weighter, the divergence guard: present exactly when this run has them
    sel = ts.selector
    if sel is not None:
        ms = _entry(meta, "selector", "selector", dict)
        _whole(_entry(ms, "t", "selector.t"), "selector.t")
        _series(_joined(_entry(ms, "history", "selector.history"), t, "selector.history"), "selector.history")
        if _entry(ms, "stopped_at", "selector.stopped_at") is not None:
            _whole(ms["stopped_at"], "selector.stopped_at")
        shadow = _entry(ms, "shadow", "selector.shadow")
        if (shadow is None) != (sel.shadow is None):
            raise _Bad(f"selector.shadow is {_show(shadow)}, but this run {'keeps no' if sel.shadow is None else 'keeps an'} average of the weights")
        if shadow is not None:
            shadow = _joined(shadow, t, "selector.shadow")
            if not isinstance(shadow, list) or len(shadow) != len(sel.shadow):
                raise _Bad(f"selector.shadow is {_show(shadow)}, not a list of {len(sel.shadow)} tensors")
            for i, (a, b) in enumerate(zip(shadow, sel.shadow)):
                _tensor(a, f"selector.shadow[{i}]", b.shape)
        best = _entry(ms, "best", "selector.best")
        if best is not None:
            best = _joined(best, t, "selector.best")
            if not isinstance(best, list) or len(best) != 3 or not isinstance(best[2], dict):
                raise _Bad(f"selector.best is {_show(best)}, not [criterion, epoch, weights]")
            _number(best[0], "selector.best[0]")
            _whole(best[1], "selector.best[1]")
            own = ts.nets.state_dict()
            if set(best[2]) != set(own):  # (a key edited into a list is a tuple: sorted() among strings raised TypeError)
                raise _Bad("selector.best[2] does not hold the networks' weights")
            for k, v in own.items():
                _tensor(best[2][k], f"selector.best[2][{k!r}]", v.shape)
    wt = ts.weighter
    if wt is not None and hasattr(wt, "log"):
        mw = _entry(meta, "weighter", "weighter", dict)
        _series(_joined(_entry(mw, "log", "weighter.log"), t, "weighter.log"), "weighter.log")
        if _entry(mw, "weights", "weighter.weights") is not None:
            _tensor(_joined(mw["weights"], t, "weighter.weights"), "weighter.weights", (wt.n,), floating=True)
    if ts.guard is not None:
        g = _joined(_entry(meta, "guard", "guard"), t, "guard")
        _whole(_entry(g, "used", "guard.used"), "guard.used")
        _whole(_entry(g, "collapse", "guard.collapse"), "guard.collapse")
        ev = _entry(g, "events", "guard.events", list)
        if not all(isinstance(e, dict) for e in ev):
            raise _Bad("guard.events is not a list of mappings")
        _series(_entry(g, "norms", "guard.norms"), "guard.norms")


# ---------------------------------------------------------------- fingerprint
def fingerprint(det, X: np.ndarray, extra: dict | None = None) -> dict:
    """What a checkpoint belongs to: the training data (SHA-256 of its bytes, shape, dtype), the
    detector's class and parameters (all but ``verbose``), and ``extra`` (robust training)."""
    X = np.ascontiguousarray(X)
    params = {k: v for k, v in det.get_params(deep=False).items() if k != "verbose"}
    return {"class": type(det).__name__,
            "data": {"sha256": hashlib.sha256(X.view(np.uint8).reshape(-1)).hexdigest(), "shape": list(X.shape),
                     "dtype": str(X.dtype)},
            "params": {k: _param_json(v) for k, v in sorted(params.items())},
            "extra": _param_json(extra or {})}


def _param_json(v):
    if isinstance(v, (tuple, list)):
        return [_param_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _param_json(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.random.RandomState):  # its repr names its address, other in every process; the resumed
        return "RandomState"  # run takes its seed from the checkpoint, as with random_state=None
    from ganad.training.priors import Prior
    if isinstance(v, Prior):  # prior=TruncatedNormalPrior(1.5): its repr names its address too, its dict does not
        return _param_json(v.to_dict())
    return repr(v)


#: the fingerprint's record of the networks fit builds (family, and width / depth as resolved)
NETWORK_KEYS = ("family", "width", "depth")


def compare_fingerprints(stored: dict, now: dict, directory) -> None:
    """Refuse a checkpoint of other data or other parameters, naming what differs."""
    where = f"checkpoint {directory}"
    afresh = "start afresh with another --checkpoint directory (or delete this one)"
    fix = f"resume with the same data and parameters, or {afresh}"
    if stored.get("class") != now["class"]:
        raise InputError(_fmt(where, f"was written by {stored.get('class')}, not {now['class']}", fix))
    sd, nd = stored.get("data") if isinstance(stored.get("data"), dict) else {}, now["data"]
    if sd != nd:
        what = []
        if sd.get("shape") != nd["shape"]:
            was = sd.get("shape")  # a list as written (a hand-edited number or string is shown as it is, not iterated)
            what.append(f"shape {tuple(was) if isinstance(was, list) else (was if was is not None else ())} then, {tuple(nd['shape'])} now")
        if sd.get("dtype") != nd["dtype"]:
            what.append(f"dtype {sd.get('dtype')} then, {nd['dtype']} now")
        if not what:
            what.append(f"same shape, different values (SHA-256 {str(sd.get('sha256'))[:12]}… then, {nd['sha256'][:12]}… now)")
        raise InputError(_fmt(where, "was written for other training data: " + "; ".join(what), fix))
    sp, np_ = stored.get("params") if isinstance(stored.get("params"), dict) else {}, now["params"]
    se = stored.get("extra") if isinstance(stored.get("extra"), dict) else {}
    ne = now["extra"]
    # width / depth compare as built (the record below): width=None then and the width it resolved to now are the same run
    resolved = {k for k in ("width", "depth") if k in se and k in ne}
    differ = [k for k in sorted(set(sp) | set(np_)) if sp.get(k, "(absent)") != np_.get(k, "(absent)") and k not in resolved]
    diff = [f"{k}={sp.get(k, '(absent)')!r} then, {np_.get(k, '(absent)')!r} now" for k in differ]
    for k in NETWORK_KEYS:  # the networks fit builds: a default that changed between the two runs is named
        if k in ne and se.get(k) != ne[k]:
            diff.append(f"the networks' {k} {se.get(k, '(absent)')!r} then, {ne[k]!r} now"
                        + (f" (pass {k}={se[k]!r} to resume it; CLI: --set {k}={se[k]!r})" if k in ("width", "depth") and isinstance(se.get(k), int) else ""))
    if {k: v for k, v in se.items() if k not in NETWORK_KEYS} != {k: v for k, v in ne.items() if k not in NETWORK_KEYS}:
        diff.append(f"fit options {stored.get('extra')} then, {now['extra']} now")
    if diff:
        # a parameter whose default changed since the checkpoint was written (knn_weight 0.75 -> 'auto', 29 Nov):
        # name the earlier values in both forms, so that the run can be resumed rather than only restarted
        # (only where every differing parameter has such a value and the networks and fit options are the same:
        # a partial list would not resume)
        then = {k: sp[k] for k in differ if k in sp and isinstance(sp[k], (bool, int, float, str))
                and not (k == "random_state" and isinstance(sp[k], str))}
        if then and len(then) == len(differ) == len(diff):
            fix = ("to resume it, pass the earlier values (" + ", ".join(f"{k}={v!r}" for k, v in then.items())
                   + "; CLI: " + " ".join(f"--set {k}={v}" for k, v in then.items()) + f"); or {afresh}")
        raise InputError(_fmt(where, "was written with other parameters: " + "; ".join(diff[:8]), fix))


# ---------------------------------------------------------------- on disk
# the project's atomic-write helpers (ganad.files), under the names the kill tests wrap
_fsync_path = fsync_path
_write_atomic = write_bytes
_TMP_PID = re.compile(r"\.(\d+)\.[^.]*\.tmp$")  # files.temp_file_beside: .<name>.<pid>.<random>.tmp


class DirectoryLock:
    """An exclusive advisory lock on ``DIR/.lock`` while a fit writes checkpoints to DIR, so that two
    fits on one directory (a resume started twice) cannot delete each other's tensor files. It is
    ``fcntl.flock``: the operating system drops it when the process ends, so a killed fit leaves no
    stale lock to clear. Where ``fcntl`` is missing (Windows) the directory is not guarded."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self._f = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            return
        try:
            f = open(self.dir / LOCK, "a+")
        except OSError as exc:  # an existing directory this process cannot write to (read-only mount, permissions)
            raise InputError(_fmt(f"checkpoint_dir {self.dir}", f"cannot be written ({exc.strerror or exc}): a fit writes its "
                                                               f"checkpoints and its {LOCK} file there, a resumed one too",
                                  "pass a writable directory (to resume a checkpoint kept where it cannot be written, "
                                  "copy the directory somewhere writable and resume from the copy)")) from exc
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            who = f.read().strip() or "another process"
            f.close()
            raise InputError(_fmt(f"checkpoint_dir {self.dir}", f"is in use: another fit ({who}) is writing checkpoints there",
                                  "wait for that fit to finish (or stop it) before resuming, or choose another checkpoint directory")) from None
        except OSError as exc:  # a file system without locks (some NFS / CIFS / FUSE mounts: ENOLCK, EOPNOTSUPP): not "in use"
            f.close()
            import warnings
            warnings.warn(_fmt(f"checkpoint_dir {self.dir}", f"cannot be locked ({exc.strerror or exc}), so a second fit started on it "
                                                             "would not be kept out", "run one fit per checkpoint directory there, or checkpoint "
                                                             "to a local disk"), RuntimeWarning, stacklevel=3)
            return
        import socket
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        self._f = f

    def release(self) -> None:
        if self._f is not None:
            import fcntl
            fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
            self._f.close()
            self._f = None


class Checkpointer:
    """Writes a checkpoint every ``every_steps`` optimisation steps and / or every ``every_seconds``
    seconds (checked after each step and at the end of each epoch), and once at the end. ``lock``
    guards the directory while training runs (:class:`DirectoryLock`)."""

    def __init__(self, directory, fingerprint: dict, every_steps: int | None = None, every_seconds: float | None = None):
        self.dir = Path(directory)
        self.fingerprint = fingerprint
        self.every_steps = every_steps
        self.every_seconds = every_seconds
        self.seq = 0
        self._steps = 0
        self._t = time.monotonic()
        self.n_written = 0
        self.seconds = 0.0  # time spent writing checkpoints
        self.extra: dict = {}  # stored beside the snapshot (the detector's seed)
        self.lock = DirectoryLock(self.dir)

    def step(self) -> None:
        self._steps += 1

    def due(self) -> bool:
        if self.every_steps is not None and self._steps >= self.every_steps:
            return True
        return self.every_seconds is not None and time.monotonic() - self._t >= self.every_seconds

    def save(self, snap: Snapshot) -> None:
        t0 = time.perf_counter()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.seq += 1
        data = st_save(snap.tensors)
        name = f"state-{self.seq:06d}.safetensors"
        _write_atomic(self.dir / name, data)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "seq": self.seq, "written": time.time(),
                    "fingerprint": self.fingerprint, "extra": self.extra,
                    "tensors": {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)},
                    "state": snap.meta}
        _write_atomic(self.dir / MANIFEST, json.dumps(manifest).encode())
        _fsync_path(self.dir)
        for f in self.dir.glob("state-*.safetensors"):  # the previous tensor files: no longer named
            if f.name != name:
                f.unlink(missing_ok=True)
        for f in self.dir.glob(".*.tmp"):  # temporaries of killed writers (of other file names too)
            m = _TMP_PID.search(f.name)
            if m and int(m.group(1)) != os.getpid() and not alive(int(m.group(1))):
                f.unlink(missing_ok=True)
        self._steps, self._t = 0, time.monotonic()
        self.n_written += 1
        self.seconds += time.perf_counter() - t0


def exists(directory) -> bool:
    _refuse_special_manifest(Path(directory))
    return (Path(directory) / MANIFEST).is_file()


def _refuse_special_manifest(d: Path) -> None:
    """A ``checkpoint.json`` that is there but is no regular file (a directory, a pipe, a link to a device)
    is refused: resumed, it read as "no checkpoint to resume from"; trained afresh, the first checkpoint
    write failed on it (IsADirectoryError) after the training up to it."""
    m = d / MANIFEST
    if m.exists() and not m.is_file():
        raise ModelFileError(_fmt(f"checkpoint {d}", f"its {MANIFEST} is not a regular file (a directory, a pipe or a device)",
                                  f"delete {m} (or choose another checkpoint directory) and train afresh"))


def load(directory) -> tuple[dict, Snapshot]:
    """(manifest, snapshot) of the checkpoint in ``directory``; a clear error when there is none
    or it is damaged."""
    d = Path(directory)
    where = f"checkpoint {d}"
    _refuse_special_manifest(d)
    if not (d / MANIFEST).is_file():
        raise InputError(_fmt(where, f"has no {MANIFEST}: there is no checkpoint to resume from",
                              "run without --resume (resume=False) to start training, writing checkpoints there"))
    try:
        man = json.loads((d / MANIFEST).read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelFileError(_fmt(where, f"{MANIFEST} is unreadable ({exc})", "delete the directory and train afresh")) from exc
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise ModelFileError(_fmt(where, f"{MANIFEST} is not a ganad checkpoint", "point --checkpoint at a checkpoint directory"))
    if man.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(_fmt(where, f"has format version {man.get('format_version')}, this ganad reads {FORMAT_VERSION}",
                                  "resume with the ganad version that wrote it, or train afresh"))
    bad = [k for k, ok in (("tensors", isinstance(man.get("tensors"), dict)), ("state", isinstance(man.get("state"), dict)),
                           ("fingerprint", isinstance(man.get("fingerprint"), dict)),
                           ("extra", isinstance(man.get("extra"), dict) and _is_int(man["extra"].get("seed"))
                                     and 0 <= man["extra"]["seed"] < 2**31),  # fit draws seeds in [0, 2**31 - 1)
                           ("seq", _is_int(man.get("seq")))) if not ok]
    if bad:  # each is read below or by the fit that resumes: refused here, not as a KeyError / TypeError there
        raise ModelFileError(_fmt(where, f"{MANIFEST} is damaged: its {', '.join(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} "
                                         "missing or of the wrong type", "delete the directory and train afresh"))
    tf = man["tensors"]
    name = str(tf.get("file", ""))
    if "/" in name or not name.startswith("state-"):
        raise ModelFileError(_fmt(where, f"names a tensor file {name!r} outside the directory", "delete the directory and train afresh"))
    try:
        if (d / name).exists() and not (d / name).is_file():  # a pipe or a device would block or be read for ever
            raise OSError(0, "not a regular file")
        data = (d / name).read_bytes()
    except OSError as exc:
        raise ModelFileError(_fmt(where, f"its tensor file {name} is missing ({exc.strerror})", "delete the directory and train afresh")) from exc
    if hashlib.sha256(data).hexdigest() != tf.get("sha256"):
        raise ModelFileError(_fmt(where, f"its tensor file {name} does not match its SHA-256 (damaged or replaced)",
                                  "delete the directory and train afresh"))
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors' own error type: a file that matches its SHA-256 but is no safetensors file
        raise ModelFileError(_fmt(where, f"its tensor file {name} cannot be read ({type(exc).__name__}: {str(exc)[:200]})",
                                  "delete the directory and train afresh")) from exc
    return man, Snapshot(tensors, man["state"], where)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def finite_weights(nets: torch.nn.Module) -> bool:
    """True when every floating-point weight and buffer is finite."""
    ts = [v for v in nets.state_dict().values() if v.is_floating_point()]
    if not ts:
        return True
    return bool(math.isfinite(float(torch.stack([x.float() for x in torch._foreach_norm(ts)]).sum())))
