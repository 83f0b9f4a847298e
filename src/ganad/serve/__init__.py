"""HTTP scoring service: ``ganad serve MODEL_DIR ...`` (FastAPI + uvicorn); see docs/serve.md.

``create_app(models, ServeSettings(...))`` builds the ASGI app (models load at once, so a broken
model directory fails here); :func:`run` serves it with uvicorn, JSON logs, SIGHUP reload and a
graceful shutdown. Needs the ``serve`` extra: ``pip install 'ganad[serve]'``.
"""

from ganad.serve.app import TOKEN_ENV, ServeSettings, create_app, read_token
from ganad.serve.server import run

__all__ = ["ServeSettings", "TOKEN_ENV", "create_app", "read_token", "run"]
