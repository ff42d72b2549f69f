"""`grantctl serve`'s uvicorn and logging settings: no path or query ever reaches a log line."""

from __future__ import annotations

import logging
import logging.config
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from server_helpers import CLIENT_SECRET, SIGNING_KEY, AgeKey, free_port, write_repo

from grantctl.commands.serve import log_config, server_config
from grantctl.errors import GrantctlError
from grantctl.repo import Repo
from grantctl.server import create_app, route_label

TOUCHED_LOGGERS = ("grantctl", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = {}
    for name in TOUCHED_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
    yield
    for name, (level, handlers, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers = handlers
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.fixture
def repo(tmp_path: Path, age_key: AgeKey) -> Repo:
    return write_repo(tmp_path / "repo", public_url="http://127.0.0.1:9", emulator_url=None, age_key=age_key)


def test_uvicorn_settings() -> None:
    config = server_config(lambda *a: None, host="127.0.0.1", port=8080)  # type: ignore[arg-type]
    assert config.access_log is False
    assert config.server_header is False
    assert config.proxy_headers is False
    assert config.log_config is None


def test_log_config_mutes_the_access_log() -> None:
    loggers = log_config()["loggers"]
    assert loggers["uvicorn.access"] == {"handlers": [], "level": "CRITICAL", "propagate": False}
    assert loggers["grantctl"]["level"] == "INFO"


def test_server_refuses_to_start_without_a_signing_key(repo: Repo) -> None:
    with pytest.raises(GrantctlError, match="GRANTCTL_SIGNING_KEY"):
        create_app(repo)


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/connect/eyJabc.def", "/connect/{token}"),
        ("/callback", "/callback"),
        ("/healthz", "/healthz"),
        ("/connect", "(other path)"),
        ("/secret-looking/eyJabc", "(other path)"),
    ],
)
def test_route_label(path: str, label: str) -> None:
    assert route_label(path) == label


def test_served_with_grantctl_settings_logs_routes_only(
    repo: Repo, signing_key: object, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(log_config())
    port = free_port()
    server = uvicorn.Server(server_config(create_app(repo), host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(trust_env=False, timeout=10) as client:
            token = "eyJbearer-looking-token-value.c2lnbmF0dXJl"
            assert client.get(f"{base}/connect/{token}").status_code == 400
            code, state = "code-value-Qw3rTy", "state-value-As4dFg.sig"
            assert client.get(f"{base}/callback", params={"code": code, "state": state}).status_code == 400
            assert client.get(f"{base}/healthz").status_code == 200
            assert "server" not in client.get(f"{base}/healthz").headers
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    logged = capsys.readouterr().err
    assert "GET /connect/{token} 400" in logged
    assert "GET /callback 400" in logged
    assert "GET /healthz 200" in logged
    for value in (token, code, state, SIGNING_KEY, CLIENT_SECRET, "code=", "state="):
        assert value not in logged
