"""The FastAPI application: routes, refusals, authentication, metrics and logs.

``create_app(models, settings)`` loads the models (failing with the model's message when one
cannot be loaded) and returns the ASGI app; :func:`ganad.serve.server.run` runs it on uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qsl

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ganad import __version__
from ganad.data.validation import FLOAT32_MAX, check_array
from ganad.exceptions import GanadError, InputError, _fmt
from ganad.series.detector import _as_series
from ganad.serve import schemas as S
from ganad.serve.decode import BODY, CSV_TYPES, JSON_TYPES, NPY_TYPES, NPZ_TYPES, PARQUET_TYPES, decode, decode_series, media_type
from ganad.serve.errors import Refusal
from ganad.serve.metrics import ServeMetrics
from ganad.serve.recordings import check_recording_id
from ganad.serve.registry import Registry
from ganad.serve.streams import check_stream_id, clean_event

log = logging.getLogger("ganad.serve")

TOKEN_ENV = "GANAD_SERVE_TOKEN"


@dataclass
class ServeSettings:
    """Settings of a server (the options of ``ganad serve``)."""

    max_batch_rows: int = 4096
    max_wait_ms: float = 0.0
    max_queue: int = 1024
    max_body_bytes: int = 16 * 1024 * 1024
    token: Optional[str] = None
    cors_origins: list[str] = field(default_factory=list)
    access_log: bool = False
    handle_sighup: bool = False
    max_streams: int = 10000
    stream_idle_s: float = 3600.0
    workers: int = 1
    warm_up: int = 0  # per-recording thresholds after each recording's first N scores (0: off)
    warm_up_fpr: Optional[float] = None  # their rate (None: the model's calibrated fpr, else its contamination)
    recordings_state: Optional[str] = None  # JSON file: the recordings' thresholds restored at start, saved at shutdown
    recordings_save_every: float = 60.0  # ... and every this many seconds while they change (0: at shutdown only)

    def __post_init__(self):
        if not (math.isfinite(self.stream_idle_s) and self.stream_idle_s >= 0):  # NaN compares False: never < 0
            raise GanadError(_fmt("stream-idle-s", f"is {self.stream_idle_s}", "pass 0 (streams never expire) or a positive number of seconds"))
        for name in ("max_batch_rows", "max_queue", "max_body_bytes", "max_streams", "workers"):
            if int(getattr(self, name)) < 1:
                raise GanadError(_fmt(name.replace("_", "-"), f"is {getattr(self, name)}", "pass a positive number"))
        if int(self.workers) > 256:  # each is a thread and a task per model: a typo would exhaust memory at start-up
            raise GanadError(_fmt("workers", f"is {self.workers}", "pass at most 256 (about the number of cores is what helps)"))
        if not (math.isfinite(self.max_wait_ms) and self.max_wait_ms >= 0):
            raise GanadError(_fmt("max-wait-ms", f"is {self.max_wait_ms}", "pass 0 (no wait) or a positive number of milliseconds"))
        if int(self.warm_up) < 0 or int(self.warm_up) == 1:
            raise GanadError(_fmt("warm-up", f"is {self.warm_up}", "pass 0 (no per-recording thresholds) or a warm-up of at least 2 "
                                                                    "samples per recording, e.g. 300"))
        if self.warm_up_fpr is not None:
            if not int(self.warm_up):
                raise GanadError(_fmt("warm-up-fpr", f"is {self.warm_up_fpr} without --warm-up",
                                      "add --warm-up N (per-recording thresholds), or drop --warm-up-fpr"))
            if not (math.isfinite(self.warm_up_fpr) and 0.0 <= self.warm_up_fpr < 1.0):
                raise GanadError(_fmt("warm-up-fpr", f"is {self.warm_up_fpr}", "pass the tolerated false-positive rate, in [0, 1), such as 0.05"))
        if self.recordings_state is not None and not int(self.warm_up):
            raise GanadError(_fmt("recordings-state", f"is {self.recordings_state} without --warm-up",
                                  "add --warm-up N (per-recording thresholds, whose state the file keeps), or drop --recordings-state"))
        if not (math.isfinite(self.recordings_save_every) and self.recordings_save_every >= 0):
            raise GanadError(_fmt("recordings-save-every", f"is {self.recordings_save_every}",
                                  "pass 0 (save at shutdown only) or a positive number of seconds, e.g. 60"))
        if self.token is not None and not self.token.strip():
            raise GanadError(_fmt("token", "is empty", "put a non-empty secret in the token file or $" + TOKEN_ENV))


def read_token(token_file: Path | None) -> str | None:
    """The bearer token: from ``token_file`` when given, else ``$GANAD_SERVE_TOKEN``, else None (no auth)."""
    if token_file is not None:
        try:
            tok = Path(token_file).read_text().strip()
        except OSError as exc:
            raise GanadError(_fmt(f"--token-file {token_file}", f"cannot be read ({exc.strerror or exc})", "pass a readable file holding the token")) from exc
        if not tok:
            raise GanadError(_fmt(f"--token-file {token_file}", "is empty", "write the token into the file"))
        if any(c.isspace() or not c.isprintable() for c in tok):
            raise GanadError(_fmt(f"--token-file {token_file}", "holds whitespace or control characters inside the token (several lines?), "
                                  "which no client can send in an Authorization header", "write the token alone on one line"))
        return tok
    tok = os.environ.get(TOKEN_ENV, "").strip()
    if any(c.isspace() or not c.isprintable() for c in tok):
        raise GanadError(_fmt(f"${TOKEN_ENV}", "holds whitespace or control characters inside the token, which no client can send "
                              "in an Authorization header", "set the token alone, without spaces or newlines"))
    return tok or None


def _orjson(obj, status: int = 200, headers=None) -> Response:
    import orjson
    return Response(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json", headers=headers)


def _error_body(status: int, type_: str, message: str) -> bytes:
    import orjson
    return orjson.dumps({"error": {"status": status, "type": type_, "message": message}})


def _error(status: int, type_: str, message: str, headers=None) -> Response:
    return Response(_error_body(status, type_, message), status_code=status, media_type="application/json", headers=headers)


_PROTECTED = ("/v1/", "/metrics")


class _RouteLabel:
    def __init__(self, path):
        self.path = path


SCORE_ROUTE = _RouteLabel("/v1/models/{name}/score")


class _Edge:
    """Pure ASGI middleware: bearer-token check, request metrics, the error log and the access log."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        st = self.state
        path = scope["path"]
        t0 = time.perf_counter()
        status = 500
        if st.token is not None and path.startswith(_PROTECTED):
            auth = dict(scope["headers"]).get(b"authorization", b"")
            if not (auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), st.token)):
                resp = _error(401, "Unauthorized", _fmt("Authorization header", "is missing or holds a wrong token",
                                                        "send 'Authorization: Bearer TOKEN' with the server's token"),
                              {"WWW-Authenticate": "Bearer"})
                await resp(scope, receive, send)
                log.info("refused", extra={"method": scope["method"], "path": path, "status": 401, "type": "Unauthorized"})
                self._record(scope, "-", 401, t0, "Unauthorized")
                return

        async def _send(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)
        st.metrics.in_flight.inc()
        try:
            parts = path.split("/") if scope["method"] == "POST" else ()
            if len(parts) == 5 and parts[-1] == "score" and parts[1] == "v1" and parts[2] == "models" and parts[3]:
                # the hot route, POST /v1/models/{name}/score: served here as plain ASGI, without
                # Starlette's router, request object and exception middlewares (FastAPI's route
                # for it only documents it in the OpenAPI schema)
                scope["route"] = SCORE_ROUTE
                await st.fast_score(scope, receive, _send, parts[3])
            else:
                await self.app(scope, receive, _send)
        finally:
            st.metrics.in_flight.dec()
            route = getattr(scope.get("route"), "path", None) or "other"
            self._record(scope, route, status, t0, None)

    def _record(self, scope, route, status, t0, err):
        dt = time.perf_counter() - t0
        m = self.state.metrics
        m.requests.inc(route, scope["method"], str(status))
        m.latency.observe(route, value=dt)
        if status >= 400 and err:
            m.errors.inc(route, err)
        if self.state.access_log or status >= 500:
            log.log(logging.ERROR if status >= 500 else logging.INFO, "request",
                    extra={"method": scope["method"], "path": scope["path"], "status": status, "ms": round(dt * 1e3, 3)})


def _too_big(limit: int) -> Refusal:
    return Refusal(413, _fmt(BODY, f"is larger than the server's limit of {limit} bytes",
                             "split the samples over several requests, or start the server with a larger --max-body-mb"),
                   "BodyTooLarge")


def _check_length(cl, limit: int) -> None:
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise Refusal(400, _fmt("Content-Length header", f"is {cl!r}", "send a number of bytes"), "BadRequest") from None
        if n > limit:
            raise _too_big(limit)


async def _read_body(request: Request, limit: int) -> bytes:
    from starlette.requests import ClientDisconnect
    _check_length(request.headers.get("content-length"), limit)
    chunks, n = [], 0
    try:
        async for chunk in request.stream():
            n += len(chunk)
            if n > limit:
                raise _too_big(limit)
            chunks.append(chunk)
    except ClientDisconnect:  # the client went away: no one reads the answer; counted as 499 (nginx's "client closed request"), not a 500 with a traceback
        raise Refusal(499, _fmt("request", "was abandoned by the client before its body arrived", "send the whole body"), "ClientDisconnect") from None
    return b"".join(chunks)


class _Disconnected(Exception):
    """The client went away before its body arrived."""


async def _receive_body(receive, limit: int) -> bytes:
    """The request body from ASGI ``receive`` messages, refused (413) once over ``limit`` bytes."""
    chunks, n = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = msg.get("body", b"")
        if chunk:
            n += len(chunk)
            if n > limit:
                raise _too_big(limit)
            chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _flag(query, key: str, default: bool) -> bool:
    v = query.get(key)
    if v is None:
        return default
    if v.lower() in _TRUE:
        return True
    if v.lower() in _FALSE:
        return False
    raise Refusal(422, _fmt(f"query parameter {key}", f"is {v!r}", "use true or false"), "InputError")


def prepare(det, raw) -> np.ndarray:
    """Decoded rows -> the detector's validated array; flat rows are reshaped to the sample shape."""
    shape = tuple(det.data_shape_)
    if (type(raw) is np.ndarray and raw.dtype in (np.float32, np.float64) and raw.ndim == 2 and raw.shape[0] >= 1
            and raw.shape[1] == int(np.prod(shape)) and raw.flags.c_contiguous
            and det.__dict__.get("feature_names_in_") is None and np.isfinite(raw).all()
            and (raw.dtype == np.float32 or np.abs(raw).max() <= FLOAT32_MAX)):
        # what _validate_for_scoring would return for this array (float32 or float64, C-contiguous,
        # finite, within float32's range, the model's number of features), without its general
        # checks; anything else takes the full path
        return raw.reshape((raw.shape[0], *shape)) if len(shape) > 1 else raw
    if len(shape) > 1:
        X = check_array(raw, BODY, dtype="float")
        if X.ndim == 2 and X.shape[1] == int(np.prod(shape)):
            X = X.reshape((len(X), *shape))
        raw = X
    return det._validate_for_scoring(raw, BODY)


def create_app(models, settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app serving ``models`` (model directories or ``NAME=DIR``). Loads them now."""
    from contextlib import asynccontextmanager

    settings = settings or ServeSettings()
    metrics = ServeMetrics()
    registry = Registry(models, settings=settings, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await registry.start()
        app.state.shutting_down = False
        if settings.handle_sighup:
            import signal
            loop = asyncio.get_running_loop()
            try:
                loop.add_signal_handler(signal.SIGHUP, _on_sighup)
            except (NotImplementedError, RuntimeError, AttributeError, ValueError):
                log.warning("SIGHUP reload is unavailable here; use POST /v1/admin/reload")
        log.info("serving", extra={"models": {n: e.info["version"] for n, e in registry.entries.items()}})
        saver = None
        if settings.recordings_state and settings.recordings_save_every > 0:
            saver = asyncio.get_running_loop().create_task(registry.save_recordings_periodically(settings.recordings_save_every))
        try:
            yield
        finally:
            app.state.shutting_down = True
            if saver is not None:
                saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await saver
            await registry.stop()
            log.info("stopped")

    pending: set = set()  # the event loop keeps only weak references to tasks

    def _on_sighup():
        task = asyncio.get_running_loop().create_task(_reload_quietly())
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def _reload_quietly():
        try:
            await registry.reload()
        except GanadError:
            pass  # logged by the registry; the old models keep serving

    app = FastAPI(
        title="ganad scoring service", version=__version__, lifespan=lifespan,
        description="Anomaly scores from ganad models over HTTP. Errors are `{\"error\": {status, type, message}}` "
                    "with the library's message (input, problem, fix).",
        responses={401: {"model": S.ErrorResponse}},
    )
    app.state.registry, app.state.metrics, app.state.settings = registry, metrics, settings
    app.state.shutting_down = False
    edge_state = type("EdgeState", (), {})()
    edge_state.token = settings.token.encode() if settings.token else None
    edge_state.metrics, edge_state.access_log = metrics, settings.access_log
    app.add_middleware(_Edge, state=edge_state)
    if settings.cors_origins:  # outside the token check: a browser's preflight carries no token
        from fastapi.middleware.cors import CORSMiddleware
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Stream-Id"])  # DELETE and X-Stream-Id: series streams

    # ------------------------------------------------------------------ errors
    def _refuse(request, status: int, type_: str, message: str, headers=None, route=None) -> Response:
        route = route or getattr(request.scope.get("route"), "path", "other")
        metrics.errors.inc(route, type_)
        log.info("refused", extra={"method": request.method, "path": request.url.path, "status": status, "type": type_,
                                   "error": message})
        return _error(status, type_, message, headers)

    @app.exception_handler(Refusal)
    async def _refusal(request, exc: Refusal):
        return _refuse(request, exc.status, exc.type, exc.message, exc.headers)

    @app.exception_handler(GanadError)
    async def _ganad(request, exc: GanadError):
        return _refuse(request, 422, type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        msgs = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _refuse(request, 422, "InputError", _fmt("request", msgs, "see the API description at /docs"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        msg = {404: _fmt(f"path {request.url.path}", "does not exist", "see /docs for the endpoints"),
               405: _fmt(f"method {request.method} on {request.url.path}", "is not allowed", "see /docs for the endpoints")}
        return _refuse(request, exc.status_code, "NotFound" if exc.status_code == 404 else "HTTPError",
                       msg.get(exc.status_code, str(exc.detail)), getattr(exc, "headers", None), route="other")

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.exception("unexpected error", extra={"path": request.url.path})
        return _error(500, "InternalError", f"{type(exc).__name__}: the server failed on this request (logged). "
                                            "Fix: report it with the request that caused it")

    def _model(name: str):
        entry = registry.entries.get(name)
        if entry is None:
            raise Refusal(404, _fmt(f"model {name!r}", "is not served here", f"use one of {sorted(registry.entries)} (GET /v1/models)"),
                          "UnknownModel")
        return entry

    # ------------------------------------------------------------------ routes
    score_body = {"requestBody": {"required": True, "content": {
        **{t: {"schema": {"anyOf": [S.ScoreRequest.model_json_schema(ref_template="#/components/schemas/{model}"),
                                    {"type": "array", "items": {"type": "array"}}]}} for t in JSON_TYPES},
        **{t: {"schema": {"type": "string", "description": "CSV with a header row (or ?csv_header=false)"}} for t in CSV_TYPES[:1]},
        **{t: {"schema": {"type": "string", "format": "binary"}} for t in PARQUET_TYPES[:1] + NPY_TYPES[:1]},
        **{t: {"schema": {"type": "string", "format": "binary", "description": "multi-view models: numpy.savez(f, VIEW=rows, ...)"}}
           for t in NPZ_TYPES[:1]},
    }}}
    errs = {c: {"model": S.ErrorResponse} for c in (400, 404, 413, 415, 422, 503)}
    score_body["parameters"] = [
        {"name": k, "in": "query", "required": False, "schema": {"type": "boolean", "default": d}, "description": text}
        for k, d, text in (("components", False, "Also return each score component."),
                           ("map", False, "Also return the anomaly map per sample."),
                           ("csv_header", True, "CSV bodies: the first line holds column names."))] + [
        {"name": "recording", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "With `ganad serve --warm-up N`: the recording (patient, machine) these samples belong to, in time order; "
                        "after its first N samples it gets its own threshold (or the X-Recording-Id header)."}]

    async def _score(scope, receive, name: str) -> bytes:
        """The answer body of POST /v1/models/{name}/score, or a Refusal / GanadError."""
        qs = scope.get("query_string", b"")
        q = dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)) if qs else {}
        components, map, csv_header = _flag(q, "components", False), _flag(q, "map", False), _flag(q, "csv_header", True)
        _model(name)  # refuse an unknown model before reading a large body
        ct = cl = rh = None
        for k, v in scope["headers"]:
            if k == b"content-type":
                ct = v.decode("latin-1")
            elif k == b"content-length":
                cl = v.decode("latin-1")
            elif k == b"x-recording-id":
                rh = v.decode("latin-1")
        _check_length(cl, settings.max_body_bytes)
        body = await _receive_body(receive, settings.max_body_bytes)
        raw, flags = decode(body, ct, csv_header=csv_header, max_decoded_bytes=8 * settings.max_body_bytes)
        entry = _model(name)  # the model that scores this request (a reload may have swapped it while the body arrived)
        if entry.is_multiview or isinstance(raw, dict):
            return await _score_views(entry, name, raw, components or flags.get("components", False), map or flags.get("map", False),
                                      npz=media_type(ct) in NPZ_TYPES, rid=_recording(q, rh, entry))
        if entry.is_series:
            raise Refusal(422, _fmt(f"model {name!r}", f"is a series model (window {entry.info['series']['window']}): it scores "
                                    "points of a stream, not samples", f"POST the points to /v1/models/{name}/series"), "SeriesModel")
        X = prepare(entry.det, raw)
        want_c, want_m = components or flags.get("components", False), map or flags.get("map", False)
        rid = _recording(q, rh, entry)
        res = await entry.batcher.submit(X, want_c, want_m)
        out = {"model": name, "version": entry.info["version"], "n": len(X), "threshold": entry.threshold,
               "scores": res.scores, "labels": (res.scores > entry.threshold).astype(np.int64)}
        if rid is not None:
            out.update(entry.recordings.update(np.asarray(res.scores, dtype=np.float64), rid))
        if want_c:
            out["components"] = res.components
        if want_m:
            out["map"] = res.map
        import orjson
        return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)

    def _recording(q: dict, header, entry):
        """The recording id of a score request (?recording= or the X-Recording-Id header), checked, or None."""
        rid = q.get("recording")
        if header is not None:
            if rid is not None and header != rid:
                raise Refusal(422, _fmt("recording", f"is {rid!r} in the query but {header!r} in the X-Recording-Id header",
                                        "name the recording once, or the same in both"), "InputError")
            rid = header
        if rid is None:
            return None
        rid = check_recording_id(rid, "recording")
        if entry.recordings is None:
            raise Refusal(422, _fmt("recording", f"is {rid!r}, but this server gives no per-recording thresholds",
                                    "start it with --warm-up N (each recording's own threshold after its first N samples), "
                                    "or drop the recording id"), "InputError")
        return rid

    async def _score_views(entry, name: str, raw, want_c: bool, want_m: bool, npz: bool = False, rid=None) -> bytes:
        """A multi-view model's answer: a JSON body {"views": {NAME: rows}} or an NPZ archive of one
        array per view, micro-batched with other requests to the model like any detector's (one pass
        per view), the summed standardised scores."""
        import orjson
        if not entry.is_multiview:
            raise Refusal(422, _fmt("an NPZ request body" if npz else f"{BODY} key 'views'",
                                    f"is for multi-view models; model {name!r} scores one sample per row",
                                    "send an NPY array of rows" if npz else 'send {"instances": [[...], ...]} or a list of rows'), "InputError")
        views = entry.info["views"]
        if not isinstance(raw, dict):
            raise Refusal(422, _fmt(f"model {name!r}", f"is a multi-view model (views {sorted(views)}): one body of rows cannot feed it",
                                    'send JSON {"views": {' + ", ".join(f'"{v}": [[...], ...]' for v in views) + '}} '
                                    f"or an NPZ archive (numpy.savez(f, {', '.join(f'{v}=...' for v in views)}))"), "MultiViewModel")
        if want_m:
            raise Refusal(422, _fmt("map", "is not available for a multi-view model", "ask for components=true: each view's term of the sum"),
                          "InputError")
        mv = entry.det
        missing, extra = [v for v in views if v not in raw], [v for v in raw if v not in views]
        if missing or extra:
            raise Refusal(422, _fmt(f"{BODY} key 'views'", (f"misses {missing}" if missing else "") + ("; " if missing and extra else "")
                                    + (f"has unknown {extra}" if extra else ""), f"send exactly the views {sorted(views)}"), "InputError")
        Xv = {}
        for v in views:
            try:
                Xv[v] = prepare(mv.detectors_[v], raw[v])
            except GanadError as exc:
                raise Refusal(422, f"view {v!r}: {exc}", type(exc).__name__) from exc
        lengths = {v: len(x) for v, x in Xv.items()}
        if len(set(lengths.values())) != 1:
            # checked here, not left to score_views: in a micro-batch, requests whose view lengths differ
            # in opposite ways (3 + 5 rows, 5 + 3 rows) concatenate to equal lengths and would be scored
            # on misaligned rows
            raise Refusal(422, _fmt(f"{BODY} key 'views'", f"has views of different lengths {lengths}",
                                    "send the same samples, in the same order, in every view (one row per sample)"), "InputError")
        res = await entry.batcher.submit(Xv, want_c, False)
        scores = res.scores
        out = {"model": name, "version": entry.info["version"], "n": int(len(scores)), "threshold": entry.threshold,
               "scores": scores, "labels": (scores > entry.threshold).astype(np.int64)}
        if rid is not None:
            out.update(entry.recordings.update(np.asarray(scores, dtype=np.float64), rid))
        if want_c:
            out["components"] = res.components
        return orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)

    async def fast_score(scope, receive, send, name: str) -> None:
        headers = ()
        try:
            status, body = 200, await _score(scope, receive, name)
        except _Disconnected:
            return
        except Refusal as exc:
            status, headers = exc.status, exc.headers.items()
            body = _refusal_body(scope, status, exc.type, exc.message)
        except GanadError as exc:
            status = 422
            body = _refusal_body(scope, status, type(exc).__name__, str(exc))
        except Exception as exc:
            log.exception("unexpected error", extra={"path": scope["path"]})
            status = 500
            body = _error_body(500, "InternalError", f"{type(exc).__name__}: the server failed on this request (logged). "
                                                    "Fix: report it with the request that caused it")
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            *((k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers)]})
        await send({"type": "http.response.body", "body": body})

    def _refusal_body(scope, status, type_, message) -> bytes:
        metrics.errors.inc(SCORE_ROUTE.path, type_)
        log.info("refused", extra={"method": scope["method"], "path": scope["path"], "status": status, "type": type_, "error": message})
        return _error_body(status, type_, message)

    edge_state.fast_score = fast_score

    @app.post("/v1/models/{name}/score", response_model=S.ScoreResponse, responses=errs, openapi_extra=score_body,
              summary="Score samples", tags=["scoring"])
    async def score(request: Request, name: str):
        """Scores and 0/1 labels (score > the model's threshold) for samples sent as JSON rows (or
        `{"instances": [...]}`), CSV, Parquet or NPY (by Content-Type). Flat rows are reshaped to the
        model's sample shape."""
        raise AssertionError("served by _Edge")  # pragma: no cover  (see fast_score)

    # ------------------------------------------------------------------ series
    def _series_model(name: str):
        entry = _model(name)
        if not entry.is_series:
            what = (f"views {sorted(entry.info['views'])}" if entry.is_multiview
                    else f"samples of shape {tuple(entry.info['input_shape'])}")
            raise Refusal(422, _fmt(f"model {name!r}", f"is not a series model (a {entry.info['method']} scoring {what})",
                                    f"POST samples to /v1/models/{name}/score, or serve a series model (a directory written by "
                                    "`ganad fit DATA --window W -o DIR`)"), "NotASeriesModel")
        return entry

    def _series_answer(entry, sid, up, *, new, received, n_seen, components, ended=False):
        sd = entry.det
        out = {"model": entry.name, "version": entry.info["version"], "stream_id": sid, "new_stream": new,
               "received": received, "n_seen": n_seen, "threshold": float(sd.threshold_),
               "latency_points": entry.info["series"]["latency_points"],
               "index": up.index, "scores": up.scores, "labels": up.labels,
               "opened": [clean_event(e) for e in up.opened], "closed": [clean_event(e) for e in up.closed], "ended": ended}
        if components:
            out["contributions"] = np.ascontiguousarray(up.contributions)
        return _orjson(out)

    series_errs = {c: {"model": S.ErrorResponse} for c in (400, 404, 409, 413, 415, 422, 503)}
    series_body = {"requestBody": {"required": True, "content": {
        **{t: {"schema": S.SeriesRequest.model_json_schema(ref_template="#/components/schemas/{model}")} for t in JSON_TYPES},
        **{t: {"schema": {"type": "string", "description": "CSV, one point per row: the columns named as the model's channels "
                                                           "when the header has them all (other names are refused unless the "
                                                           "model's channels are unnamed, ch0, ch1, ...: then every column)"}} for t in CSV_TYPES[:1]},
        **{t: {"schema": {"type": "string", "format": "binary", "description": "(n,) or (n, channels)"}} for t in NPY_TYPES[:1] + PARQUET_TYPES[:1]},
    }}, "parameters": [
        {"name": "stream_id", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "The stream (or the body's stream_id, or the X-Stream-Id header)."},
        {"name": "X-Stream-Id", "in": "header", "required": False, "schema": {"type": "string"}, "description": "The stream."},
        {"name": "components", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
         "description": "Also return each point's per-channel contributions."},
        {"name": "csv_header", "in": "query", "required": False, "schema": {"type": "boolean", "default": True},
         "description": "CSV bodies: the first line holds column names."}]}

    @app.post("/v1/models/{name}/series", response_model=S.SeriesResponse, responses=series_errs, openapi_extra=series_body,
              summary="Score the next points of a stream", tags=["series"])
    async def series(request: Request, name: str):
        """The next points of one live series (a **stream**, named by `stream_id`) for a series model. Returns
        the points whose score became final with this chunk (a point waits for at most `latency_points`
        later points: every window covering it must be complete), their 0/1 labels and the events that opened
        or closed. The server keeps each stream's state between calls: the scores equal batch scoring of the
        whole series (`SeriesDetector.score_series`). Chunks of one stream are scored in arrival order; send
        them one at a time per stream. `DELETE .../series/{stream_id}` ends a stream and scores its last points."""
        q = request.query_params
        components, csv_header = _flag(q, "components", False), _flag(q, "csv_header", True)
        entry = _series_model(name)
        body = await _read_body(request, settings.max_body_bytes)
        raw, body_sid, flags = decode_series(body, request.headers.get("content-type"), csv_header=csv_header,
                                             channels=entry.det.channels_, max_decoded_bytes=8 * settings.max_body_bytes)
        sids = {k: check_stream_id(v, k) for k, v in (("stream_id in the body", body_sid), ("?stream_id", q.get("stream_id")),
                                                      ("X-Stream-Id header", request.headers.get("x-stream-id"))) if v is not None}
        if len(set(sids.values())) > 1:
            raise Refusal(422, _fmt("stream id", f"differs between {' and '.join(sids)} ({', '.join(repr(v) for v in sids.values())})",
                                    "name the stream once"), "InputError")
        sid = check_stream_id(next(iter(sids.values()), None), "stream_id")
        entry = _series_model(name)  # a reload may have swapped it while the body arrived
        sd = entry.det
        x = _as_series(raw, "points", channels=sd.channels_)
        if x.shape[1] != sd.n_channels_:  # the StreamScorer's own check, before a new stream is made for a bad chunk
            raise InputError(_fmt("points", f"have {x.shape[1]} channel(s), the model has {sd.n_channels_}",
                                  "send every channel, in the order of fit time"))
        up, new, n_seen = await entry.streams.update(sid, x)
        return _series_answer(entry, sid, up, new=new, received=len(x), n_seen=n_seen,
                              components=components or flags.get("components", False))

    @app.delete("/v1/models/{name}/series/{stream_id}", response_model=S.SeriesResponse, responses=series_errs,
                summary="End a stream: score its last points", tags=["series"])
    async def end_series(name: str, stream_id: str, components: bool = Query(False, description="Also return contributions.")):
        """Ends the stream: the points still waiting for later windows are scored (the trailing points no full
        window covers take the last covered point's score, as batch scoring does), an open event is closed, and
        the stream is forgotten. A stream shorter than one window cannot be scored (422; it is forgotten too)."""
        entry = _series_model(name)
        sid = check_stream_id(stream_id, "stream id in the path")
        up, n_seen = await entry.streams.end(sid)
        return _series_answer(entry, sid, up, new=False, received=0, n_seen=n_seen, components=components, ended=True)

    @app.get("/v1/models", response_model=S.ModelList, tags=["models"], summary="The models served")
    async def list_models():
        return {"models": [e.info for e in registry.entries.values()]}

    @app.get("/v1/models/{name}", response_model=S.ModelInfo, responses={404: {"model": S.ErrorResponse}}, tags=["models"],
             summary="One model: method, parameters, input shape, threshold, version")
    async def model_info(name: str):
        return _model(name).info

    @app.post("/v1/admin/reload", response_model=S.ReloadResult, responses={404: {"model": S.ErrorResponse}, 409: {"model": S.ErrorResponse}},
              tags=["admin"], summary="Reload model directories from disk (atomic swap)")
    async def reload(model: Optional[str] = Query(None, description="Reload only this model (default: all).")):
        """Loads the directories again (e.g. after `ganad calibrate` or a new `ganad fit -o DIR`) and swaps each
        model in one step: a request is scored by the old or by the new model, never a mix. If a directory
        cannot be loaded, nothing is swapped and the old models keep serving (409). SIGHUP does the same."""
        if model is not None:
            _model(model)
        try:
            entries = await registry.reload(None if model is None else [model])
        except GanadError as exc:
            raise Refusal(409, f"{exc} (the old model keeps serving)", "ReloadFailed") from None
        return {"reloaded": [e.info for e in entries]}

    # response_model_exclude_none: the answers docs/serve.md gives ({"status": "ok"}), not the schema's unset fields as null
    @app.get("/healthz", response_model=S.Health, response_model_exclude_none=True, tags=["operations"],
             summary="Liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", response_model=S.Health, response_model_exclude_none=True, responses={503: {"model": S.Health}}, tags=["operations"],
             summary="Readiness: every model loaded and its batcher running")
    async def readyz():
        if app.state.shutting_down or not registry.ready:
            return JSONResponse({"status": "unavailable", "detail": "starting, reloading or shutting down"}, 503)
        return {"status": "ok", "models": sorted(registry.entries)}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)",
             response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def prom():
        for n, e in registry.entries.items():
            if e.is_series:
                e.streams.sweep()
            else:
                metrics.queue_depth.set(n, value=e.batcher.queue.qsize())
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
