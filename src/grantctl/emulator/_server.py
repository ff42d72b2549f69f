"""``run()``: serve the emulator with uvicorn (what ``grantctl emulator --port N --seed FILE`` calls)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import uvicorn

from ._app import create_app
from ._seed import Seed


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(host: str, port: int, seed_path: Path | str, *, allow_non_loopback: bool = False) -> None:
    """Load ``seed_path`` and serve the emulator on ``host:port`` until interrupted.

    The control endpoints (``/_emulator/*``) are unauthenticated, so only loopback hosts are accepted
    unless ``allow_non_loopback`` is set.

    >>> run("127.0.0.1", 8765, "seed.yaml")  # doctest: +SKIP
    """
    if not allow_non_loopback and not is_loopback(host):
        raise ValueError(f"refusing to serve the emulator on {host}: use a loopback address such as 127.0.0.1")
    app = create_app(Seed.from_yaml(seed_path))
    # No websockets; the access log shows paths and queries only, and no secret ever travels in those.
    uvicorn.run(app, host=host, port=port, ws="none", lifespan="off", log_level="info")
