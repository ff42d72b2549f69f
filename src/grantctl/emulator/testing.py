"""Helpers for tests that need a live server: ``serve_in_thread`` and a small control-plane client.

>>> from grantctl.emulator import Seed, create_app
>>> from grantctl.emulator.testing import EmulatorControl, serve_in_thread
>>> with serve_in_thread(create_app(Seed.from_yaml(EXAMPLE_SEED_PATH))) as base_url:  # doctest: +SKIP
...     EmulatorControl(base_url).queue_consent(tenants=["..."])
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

from ._jwt import unverified_claims


@contextmanager
def serve_in_thread(app: ASGIApp, *, host: str = "127.0.0.1", startup_timeout: float = 10.0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread on a free loopback port; yield its base URL.

    Works for any ASGI app (the emulator, the callback server). The server stops when the block ends,
    cancelling requests still running after one second (e.g. an injected "timeout" fault).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,  # leave the test process's logging configuration alone
        access_log=False,
        ws="none",
        lifespan="auto",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        _wait_started(server, thread, startup_timeout)
        netloc = f"[{host}]" if ":" in host else host
        yield f"http://{netloc}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server thread stopped before it started serving")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start within {timeout} seconds")
        time.sleep(0.005)


class EmulatorControl:
    """A thin synchronous client for the emulator's ``/_emulator/*`` endpoints."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._client.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def queue_consent(
        self,
        *,
        tenants: Sequence[str] = (),
        user: str | None = None,
        action: str = "allow",
        scopes: Sequence[str] | None = None,
        client_id: str | None = None,
    ) -> int:
        """Queue the answer to the next authorize request (of ``client_id``, or of any app)."""
        body: dict[str, Any] = {"tenants": list(tenants), "action": action}
        if user is not None:
            body["user"] = user
        if scopes is not None:
            body["scopes"] = list(scopes)
        if client_id is not None:
            body["client_id"] = client_id
        return int(self._post("/_emulator/consent", body)["queued"])

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator's clock forward; return its new time."""
        return float(self._post("/_emulator/clock", {"seconds": seconds})["now"])

    def set_faults(self, **config: Any) -> dict[str, Any]:
        """Replace the fault configuration (``latency_ms``, ``fail``, ``rate_limits``)."""
        result: dict[str, Any] = self._post("/_emulator/faults", config)
        return result

    def reset(self) -> None:
        """Start again from the seed."""
        self._post("/_emulator/reset", {})

    def state(self, client_id: str | None = None) -> dict[str, Any]:
        """Grants, connections and counters (``GET /_emulator/state``)."""
        params = {"client_id": client_id} if client_id else None
        response = self._client.get("/_emulator/state", params=params)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def decode_claims(token: str) -> dict[str, Any]:
    """The claims of an emulator-issued JWT, unverified (as a Xero client reads them)."""
    claims = unverified_claims(token)
    if claims is None:
        raise ValueError("not a JWT")
    return claims
