"""``grantctl serve [--host 127.0.0.1 --port 8080]``: run the link and callback server under uvicorn.

Everything that can be wrong with the set-up (no signing key, unreadable config, unknown state
backend) fails before the server starts listening. uvicorn's own access log is off: it would print
request paths and queries, which carry link tokens, codes and state values. The server logs route
names and outcomes instead (logger ``grantctl.server``).
"""

from __future__ import annotations

import logging
import logging.config
from typing import TYPE_CHECKING, Any

from grantctl.repo import Repo

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_serve(repo: Repo, *, host: str, port: int) -> None:
    """Serve ``/connect/{token}``, ``/callback`` and ``/healthz`` until interrupted.

    Example::

        GRANTCTL_SIGNING_KEY=... SOPS_AGE_KEY_FILE=... grantctl serve --host 0.0.0.0 --port 8080
    """
    import uvicorn

    from grantctl.server import create_app

    app = create_app(repo)
    logging.config.dictConfig(log_config())
    logging.getLogger("grantctl.server").info(
        "serving links of %s on %s:%d; redirect URI %s", repo.config.public_url, host, port, repo.config.redirect_uri
    )
    uvicorn.Server(server_config(app, host=host, port=port)).run()


def server_config(app: ASGIApp, *, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings: no access log (paths carry bearer values), no server header, logging left to us."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=None,  # run_serve configures logging itself (log_config)
        server_header=False,
        proxy_headers=False,
        ws="none",
        timeout_graceful_shutdown=10,
    )


def log_config() -> dict[str, Any]:
    """One stderr handler for uvicorn's error log and grantctl's own loggers; uvicorn's access log muted."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "grantctl": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


__all__ = ["log_config", "run_serve", "server_config"]
