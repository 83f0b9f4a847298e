"""The models a server holds: loading, warm-up, description and atomic hot reload.

Each model is an immutable :class:`ModelEntry` (detector + its micro-batcher + description).
A reload loads the directory into a new entry off the event loop, then replaces the dict entry
in one assignment: a request that looked its model up before the swap is scored by the old
detector (its batcher drains before it stops), one after by the new; never a mix. A directory
that fails to load at start-up stops the start-up; on reload, the old model keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganad.exceptions import GanadError, ModelFileError, _fmt

log = logging.getLogger("ganad.serve")


def parse_model_arg(arg) -> tuple[str, Path]:
    """``DIR`` (served under the directory's name) or ``NAME=DIR``."""
    s = str(arg)
    if "=" in s and not Path(s).exists():
        name, _, path = s.partition("=")
    else:
        name, path = Path(s).resolve().name, s
    name = name.strip()
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise GanadError(_fmt(f"model {s!r}", f"has the name {name!r}, which is not usable in a URL",
                              "use letters, digits, '-', '_' and '.', e.g. NAME=DIR"))
    return name, Path(path)


def model_version(path: Path) -> str:
    h = hashlib.sha256()
    files = ["config.json", "model.safetensors", "series.json", "detector/config.json", "detector/model.safetensors", "multiview.json"]
    if (path / "views").is_dir():  # a multi-view model: every view's files, in name order
        files += [f"views/{v.name}/{f}" for v in sorted((path / "views").iterdir()) for f in ("config.json", "model.safetensors")]
    for f in files:
        p = path / f
        if p.is_file():
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:12]


def _copy_regular(src, dst):
    """copytree's copy of one file, regular files only: a link to /dev/zero or a pipe in a model
    directory would be copied until the disk is full, or block for ever."""
    import os
    import shutil
    import stat
    if not stat.S_ISREG(os.stat(src).st_mode):
        raise OSError(f"{src} is not a regular file (a device, a pipe or a link to one)")
    return shutil.copy2(src, dst)


def load_detector(name: str, path: Path):
    """Load, describe and warm up one model directory (runs off the event loop): a detector, or a
    series model (``series.json``, written by ``ganad fit --window`` / ``SeriesDetector.save``).

    The directory is copied to a private snapshot first and loaded from there: the weights may be
    memory-mapped, and a file rewritten in place under a running model (``cp new/model.safetensors
    model/``) would otherwise change or truncate the tensors it is scoring with (SIGBUS: a dead
    worker). The snapshot's files are unlinked once loaded; the mappings keep them alive. The
    version hash is taken from the same snapshot, so it names exactly the files being served."""
    import shutil
    import tempfile

    import ganad.detectors  # noqa: F401  (registers the built-in methods)
    from ganad.io import load_model, read_config
    from ganad.scoring.composition import required_components
    from ganad.series.detector import DETECTOR_DIR, is_series_model, load_series
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="ganad-serve-", ignore_cleanup_errors=True) as tmp:
        snap = Path(tmp) / (path.name or "model")
        try:
            if path.is_dir():
                shutil.copytree(path, snap, copy_function=_copy_regular)
            else:
                snap = path  # load_model says what is wrong with it
        except OSError as exc:
            why = exc.args[0][0][2] if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0] else exc
            # (copytree's error is a list of (source, target, why): the first why)
            raise ModelFileError(_fmt(f"model {name!r} ({path})", f"cannot be read ({why})",
                                      "check the directory exists and is readable")) from exc
        try:
            version = model_version(snap) if snap.is_dir() else ""
            from ganad.multiview import is_multiview_model, load_multiview
            if is_multiview_model(snap):
                mv = load_multiview(snap)
                mv.decision_function({v: np.zeros((2, *d.data_shape_), dtype=np.float32) for v, d in mv.detectors_.items()})
                return mv, _multiview_info(name, path, mv, version)
            series = is_series_model(snap)
            if series:
                sd = load_series(snap)
                det = sd.detector_
                cfg = read_config(snap / DETECTOR_DIR)
                # warm-up: the first pass builds the frozen inference copies and the CPU programs
                sd._score_windows(np.zeros((2, sd.n_channels_, sd.window_), dtype=np.float32))
            else:
                det = load_model(snap)
                if hasattr(det, "_check_scoring_current"):  # a threshold_ fitted under other scoring settings (saved before calibrate)
                    det._check_scoring_current("serve")
                cfg = read_config(snap)
                det.decision_function(np.zeros((2, *det.data_shape_), dtype=np.float32))
        except GanadError as exc:
            msg = str(exc).replace(str(snap), str(path))
            raise ModelFileError(f"model {name!r} ({path}) cannot be served: {msg}") from exc
        except Exception as exc:  # torch / safetensors errors on an inconsistent model
            msg = str(exc).replace(str(snap), str(path))
            raise ModelFileError(_fmt(f"model {name!r} ({path})", f"cannot be loaded ({type(exc).__name__}: {msg})",
                                      "check the directory was written by ganad (ganad fit -o DIR) and is complete")) from exc
    from ganad.io import _jsonable
    comps = required_components(det.composer_)
    info = {
        "name": name, "kind": "series" if series else "detector", "method": type(det).__name__, "version": version,
        "ganad_version": str(cfg.get("ganad_version", "")),
        "path": str(path.resolve()), "input_shape": [int(s) for s in det.data_shape_],
        "n_features_in": int(np.prod(det.data_shape_)), "threshold": float(det.threshold_),
        "components": list(comps) if comps is not None else None,
        "params": _jsonable(det.get_params(deep=False)), "loaded_at": time.time(), "series": None,
    }
    if series:  # the served object is the series model; the detector inside scores its windows
        sp = sd.get_params(deep=False)
        sp["detector"] = sp["detector"] if isinstance(sp["detector"], str) else type(det).__name__
        info.update(threshold=float(sd.threshold_), series={
            "window": int(sd.window_), "stride": int(sd.stride_), "channels": list(sd.channels_),
            "n_channels": int(sd.n_channels_), "latency_points": int(sd.window_ - 1 + sd.stride_ - 1),
            "event_gap": int(getattr(sd, "event_gap_", 0)), "params": _jsonable(sp)})
        det = sd
    info["description"] = _description(name, det)
    return det, info


def _description(name: str, model) -> dict | None:
    """``ganad info``'s description of a loaded model (how it was trained, what its score reads, where its
    threshold comes from); a model it cannot describe is still served, without one (logged)."""
    from ganad.info import describe
    try:
        return describe(model)
    except Exception as exc:  # noqa: BLE001  (a description is information, never a reason not to serve)
        log.warning("no description for model", extra={"model": name, "error": f"{type(exc).__name__}: {exc}"})
        return None


def _multiview_info(name: str, path: Path, mv, version: str) -> dict:
    from ganad import __version__
    from ganad.io import _jsonable
    params = mv.get_params(deep=False)
    params["views"] = {v: (s if isinstance(s, str) else type(mv.detectors_[v]).__name__) for v, s in params["views"].items()}
    return {"name": name, "kind": "multiview", "method": "MultiViewDetector", "version": version, "ganad_version": __version__,
            "path": str(path.resolve()), "input_shape": [], "n_features_in": 0, "threshold": float(mv.threshold_),
            "components": list(mv.views_), "params": _jsonable(params), "loaded_at": time.time(), "series": None,
            "views": {v: [int(s) for s in d.data_shape_] for v, d in mv.detectors_.items()},
            "description": _description(name, mv)}


@dataclass(frozen=True)
class ModelEntry:
    """A served model: a detector with its micro-batcher, or a series model with its stream table."""

    name: str
    path: Path
    det: object
    info: dict
    batcher: object = field(repr=False, default=None)
    streams: object = field(repr=False, default=None)
    recordings: object = field(repr=False, default=None)  # ganad serve --warm-up: per-recording thresholds

    @property
    def threshold(self) -> float:
        return float(self.det.threshold_)

    @property
    def is_series(self) -> bool:
        return self.streams is not None

    @property
    def is_multiview(self) -> bool:
        return self.info.get("kind") == "multiview"

    @property
    def alive(self) -> bool:
        return (not self.streams.closed) if self.is_series else self.batcher.alive

    async def close(self, reason: str = "reload") -> None:
        if self.is_series:
            self.streams.close(reason)
        elif self.batcher is not None:
            await self.batcher.close()


RECORDINGS_FORMAT = "ganad-serve-recordings-1"


def read_recordings_state(path) -> dict:
    """The per-model recordings' state a previous server saved at ``path`` ({} when the file does not exist yet);
    an unreadable or foreign file stops the start-up with its name (never silently dropped)."""
    import json
    p = Path(path)
    if not p.exists():
        return {}
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GanadError(_fmt(f"--recordings-state {p}", f"cannot be read as the recordings' state ({exc})",
                              "restore the file a previous `ganad serve --recordings-state` wrote, or delete it to start every recording anew")) from exc
    if not isinstance(d, dict) or d.get("format") != RECORDINGS_FORMAT or not isinstance(d.get("models"), dict):
        raise GanadError(_fmt(f"--recordings-state {p}", "is not a state `ganad serve --recordings-state` wrote",
                              "pass that file, or a path that does not exist yet (it is written at shutdown)"))
    from ganad.scoring.adaptive import AdaptiveThreshold
    for name, m in d["models"].items():
        try:
            AdaptiveThreshold.from_dict(m["thresholds"])
            list(m["order"])
        except (KeyError, TypeError, ValueError, GanadError) as exc:
            raise GanadError(_fmt(f"--recordings-state {p}", f"holds a damaged state for model {name!r} ({exc})",
                                  "delete the file to start every recording anew")) from exc
    return d["models"]


class Registry:
    def __init__(self, models, *, settings, metrics=None):
        """``models``: model arguments (``DIR`` or ``NAME=DIR``). Loads every model now, so a
        model that cannot be loaded fails start-up here with its message."""
        self.settings, self.metrics = settings, metrics
        self.paths: dict[str, Path] = {}
        for arg in models:
            name, path = parse_model_arg(arg)
            if name in self.paths:
                raise GanadError(_fmt(f"model {arg!r}", f"has the same name {name!r} as {self.paths[name]}",
                                      "give one of them another name with NAME=DIR"))
            self.paths[name] = path
        if not self.paths:
            raise GanadError(_fmt("MODEL_DIR", "is missing", "pass at least one model directory written by `ganad fit`"))
        self._loaded = {name: load_detector(name, path) for name, path in self.paths.items()}
        self._saved_recordings = read_recordings_state(settings.recordings_state) if getattr(settings, "recordings_state", None) else {}
        self.entries: dict[str, ModelEntry] = {}
        self.executor = None
        self._reload_lock: asyncio.Lock | None = None
        self._save_lock = threading.Lock()
        self._saved_version: tuple | None = None  # the recordings' version last written to --recordings-state

    # ------------------------------------------------------------------ lifecycle (on the event loop)
    def _entry(self, name, det, info) -> ModelEntry:
        from ganad.serve.batcher import MicroBatcher
        s = self.settings
        if info.get("kind") == "series":
            from ganad.serve.streams import StreamTable
            table = StreamTable(det, self.executor, name=name, max_streams=s.max_streams, idle_s=s.stream_idle_s,
                                metrics=self.metrics)
            return ModelEntry(name, self.paths[name], det, info, streams=table)
        b = MicroBatcher(det, self.executor, name=name, max_batch_rows=s.max_batch_rows, max_wait_ms=s.max_wait_ms,
                         max_queue=s.max_queue, metrics=self.metrics, workers=s.workers)
        b.start()
        rec = None
        if int(s.warm_up):
            from ganad.serve.recordings import RecordingThresholds
            rec = RecordingThresholds(det, int(s.warm_up), s.warm_up_fpr, s.max_streams, metrics=self.metrics, name=name)
        return ModelEntry(name, self.paths[name], det, info, b, recordings=rec)

    async def start(self) -> None:
        from concurrent.futures import ThreadPoolExecutor
        # one scoring thread by default: a forward pass uses torch's own threads. --workers N runs N
        # passes at once (each on fewer torch threads, see ganad.serve.server.run): the parts of a
        # pass that run on one thread (scaling, the knn search) then overlap with another's
        self.executor = ThreadPoolExecutor(max_workers=int(self.settings.workers), thread_name_prefix="ganad-score")
        self._reload_lock = asyncio.Lock()
        if not self._loaded:  # started again (a second lifespan of the same app): the models last served
            self._loaded = {name: (e.det, e.info) for name, e in self.entries.items()}
        self.entries = {name: self._entry(name, det, info) for name, (det, info) in self._loaded.items()}
        self._loaded = {}
        self._restore_recordings()

    def _restore_recordings(self) -> None:
        """``--recordings-state``: each model's saved per-recording thresholds, if they belong to this model file
        (its version) and these settings; otherwise that model starts its recordings anew, said in the log."""
        saved, self._saved_recordings = self._saved_recordings, {}
        for name, d in saved.items():
            e = self.entries.get(name)
            why = ("the model is not served" if e is None else "the server has no --warm-up" if e.recordings is None
                   else f"the model file changed (version {d.get('model_version')} saved, {e.info['version']} served)"
                   if d.get("model_version") != e.info["version"] else None)
            if why is None:
                assert e is not None
                why = e.recordings.restore(d)
            if why is None:
                log.info("recordings restored", extra={"model": name, "recordings": len(e.recordings)})
            else:
                log.warning("recordings not restored: their thresholds start anew", extra={"model": name, "reason": why})
        self._saved_version = self._recordings_version()  # nothing new to write until a recording changes

    def _recordings_version(self) -> tuple:
        """Changes whenever a recording's state may have: an update, or a model's recordings replaced (reload)."""
        return tuple((name, id(e.recordings), e.recordings.changes) for name, e in self.entries.items() if e.recordings is not None)

    def _recordings_snapshot(self) -> dict:
        """Every served model's per-recording thresholds as the file holds them (copies: taken on the event loop,
        written from a thread while requests go on changing the live state)."""
        return {name: {"model_version": e.info["version"], **e.recordings.to_dict()}
                for name, e in self.entries.items() if e.recordings is not None}

    def _write_recordings(self, models: dict, periodic: bool = False) -> None:
        import orjson  # the serve extra's JSON encoder: 14x the standard library's on 10,000 recordings' warm-ups (the
        from ganad.files import atomic_file  # scores are finite, AdaptiveThreshold checks; floats round-trip exactly)
        path = self.settings.recordings_state
        data = orjson.dumps({"format": RECORDINGS_FORMAT, "models": models}, option=orjson.OPT_SERIALIZE_NUMPY)
        with self._save_lock:  # a periodic write still running in its thread finishes before the next one starts
            with atomic_file(path, "wb") as fh:
                fh.write(data)
        if self.metrics is not None:
            self.metrics.recordings_saves.inc("ok")
        (log.debug if periodic else log.info)("recordings saved", extra={
            "path": str(path), "recordings": {n: len(m["order"]) for n, m in models.items()}})

    def save_recordings(self) -> None:
        """Write every served model's per-recording thresholds to ``--recordings-state`` (atomically)."""
        if not getattr(self.settings, "recordings_state", None):
            return
        version = self._recordings_version()
        self._write_recordings(self._recordings_snapshot())
        self._saved_version = version

    async def save_recordings_periodically(self, every: float) -> None:
        """``--recordings-save-every``: write the recordings' state every ``every`` seconds while it changes, from
        a thread (the JSON of many recordings takes a while), so that a crash loses at most that long's changes.
        A failed write is logged and counted (``ganad_recordings_saves_total{result="error"}``) and tried again."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            version = self._recordings_version()
            if version == self._saved_version:
                continue
            try:
                await loop.run_in_executor(None, self._write_recordings, self._recordings_snapshot(), True)
                self._saved_version = version
            except (OSError, TypeError, ValueError) as exc:
                if self.metrics is not None:
                    self.metrics.recordings_saves.inc("error")
                log.error("recordings not saved, tried again in %gs", every, extra={"path": str(self.settings.recordings_state), "error": str(exc)})

    async def stop(self) -> None:
        try:
            self.save_recordings()
        except (OSError, TypeError, ValueError) as exc:  # the models still close; the state is lost, which the log says
            if self.metrics is not None:
                self.metrics.recordings_saves.inc("error")
            log.error("recordings not saved", extra={"path": str(self.settings.recordings_state), "error": str(exc)})
        for e in list(self.entries.values()):
            await e.close("shutdown")
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    @property
    def ready(self) -> bool:
        return bool(self.entries) and all(e.alive for e in self.entries.values())

    # ------------------------------------------------------------------ reload
    async def reload(self, names=None) -> list[ModelEntry]:
        """Reload model directories from disk and swap them in atomically (all of them by default)."""
        names = list(self.paths) if names is None else list(names)
        loop = asyncio.get_running_loop()
        async with self._reload_lock:
            new = {}
            for name in names:  # load everything first: a failure leaves every old model serving
                try:
                    new[name] = await loop.run_in_executor(None, load_detector, name, self.paths[name])
                except GanadError as exc:
                    if self.metrics is not None:
                        self.metrics.reloads.inc(name, "error")
                    log.error("reload failed, the old model keeps serving", extra={"model": name, "error": str(exc)})
                    raise
            swapped = []
            for name, (det, info) in new.items():
                entry = self._entry(name, det, info)
                old = self.entries.get(name)
                self.entries = {**self.entries, name: entry}  # one assignment: the atomic swap
                swapped.append(entry)
                if old is not None:
                    await old.close("reload")  # finishes what was queued on the old model; drops its streams
                if self.metrics is not None:
                    self.metrics.reloads.inc(name, "ok")
                log.info("model reloaded", extra={"model": name, "version": info["version"],
                                                  "previous_version": old.info["version"] if old else None})
                if old is not None and (old.info.get("kind"), old.info.get("input_shape")) != (info.get("kind"), info.get("input_shape")):
                    # allowed (a deliberate upgrade), but clients built for the old inputs will now be refused
                    log.warning("reloaded model takes other inputs", extra={
                        "model": name, "kind": info.get("kind"), "previous_kind": old.info.get("kind"),
                        "input_shape": info.get("input_shape"), "previous_input_shape": old.info.get("input_shape")})
            return swapped
