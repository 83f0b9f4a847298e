"""Running the app on uvicorn: JSON logs, SIGHUP reload, graceful shutdown."""

from __future__ import annotations

import json
import logging
import os
import time

from ganad.exceptions import GanadError, _fmt

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and every ``extra=`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def log_config(level: str = "info") -> dict:
    """A logging.config dict sending ganad's and uvicorn's logs to stderr as JSON lines."""
    lvl = level.upper()
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {name: {"handlers": ["stderr"], "level": lvl, "propagate": False}
                    for name in ("ganad", "uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def share_threads(workers: int) -> int:
    """--workers N: N forward passes run at once and share the cores, so each gets 1/N of torch's
    threads (not N times all of them: N teams spinning on the same cores), unless OMP_NUM_THREADS
    says how many. Returns torch's thread count from now on."""
    import torch
    if workers > 1 and not os.environ.get("OMP_NUM_THREADS", "").strip():
        torch.set_num_threads(max(1, torch.get_num_threads() // workers))
    return torch.get_num_threads()


def run(models, settings=None, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
        graceful_timeout: float = 30.0) -> None:
    """Load ``models`` and serve them until SIGINT / SIGTERM (in-flight requests finish first,
    up to ``graceful_timeout`` seconds). SIGHUP reloads every model directory."""
    import logging.config

    import uvicorn

    from ganad.serve.app import ServeSettings, create_app

    if log_level.lower() not in ("critical", "error", "warning", "info", "debug"):
        raise GanadError(_fmt("--log-level", f"is {log_level!r}", "use critical, error, warning, info or debug"))
    if not (0 <= int(port) < 65536):
        raise GanadError(_fmt("--port", f"is {port}", "pass a port number from 0 to 65535"))
    settings = settings or ServeSettings()
    settings.handle_sighup = True
    share_threads(int(settings.workers))
    app = create_app(models, settings)  # loads the models: a broken one fails here, before binding
    cfg = log_config(log_level)
    logging.config.dictConfig(cfg)
    loop = "auto"
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        pass
    http = "auto"
    try:
        import httptools  # noqa: F401
        http = "httptools"
    except ImportError:
        pass
    config = uvicorn.Config(app, host=host, port=int(port), loop=loop, http=http, log_config=cfg, log_level=log_level.lower(),
                            access_log=False, timeout_graceful_shutdown=graceful_timeout, server_header=False,
                            proxy_headers=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:  # uvicorn exits on a socket it cannot bind (the log names the error): said below, as every CLI error
        if server.started:
            raise
    if not server.started:
        raise GanadError(_fmt(f"--host {host} --port {port}", "could not be bound (see the log above)",
                              "choose a free port, or stop the process that holds it"))
