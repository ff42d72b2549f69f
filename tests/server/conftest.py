"""Fixtures for the link / callback / connect tests; the helpers they use are in server_helpers.py.

``live`` builds the whole thing on real loopback sockets: the Xero emulator under uvicorn, a
connections repo with a real age key and sops-encrypted credentials, grantctl's callback server
under uvicorn, and an httpx client playing the browser.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from pyrage import x25519
from server_helpers import (
    SIGNING_KEY,
    AgeKey,
    Browser,
    Clock,
    Live,
    Served,
    emulator_seed,
    loopback_socket,
    write_repo,
)

from grantctl.emulator import create_app as create_emulator
from grantctl.emulator.testing import EmulatorControl, serve_in_thread
from grantctl.links import SigningKey
from grantctl.server import create_app


@pytest.fixture
def age_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgeKey:
    """A fresh age key that sops and grantctl find through SOPS_AGE_KEY_FILE."""
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    path = tmp_path / "team.agekey"
    path.write_text(f"# public key: {recipient}\n{identity}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(path))
    return AgeKey(recipient, path)


@pytest.fixture
def signing_key(monkeypatch: pytest.MonkeyPatch) -> SigningKey:
    monkeypatch.setenv("GRANTCTL_SIGNING_KEY", SIGNING_KEY)
    return SigningKey(SIGNING_KEY.encode(), "test")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def quiet_access_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``grantctl serve``'s log_config does for uvicorn's access log (tested in test_serve.py).

    Needed because pytest attaches its capture handler to non-propagating loggers too, which makes
    uvicorn print access lines (paths with codes and state) that a real ``grantctl serve`` never prints.
    """
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "disabled", True)


@pytest.fixture
def live(
    tmp_path: Path, age_key: AgeKey, signing_key: SigningKey, clock: Clock, quiet_access_log: None
) -> Iterator[Live]:
    from grantctl.state.registry import open_store

    with ExitStack() as stack:
        served: list[Served] = []
        # Runs last: by then every server has been asked to stop, so they wind down together.
        stack.callback(_join_all, served)
        server_sock = loopback_socket()
        server_url = f"http://127.0.0.1:{server_sock.getsockname()[1]}"
        seed = emulator_seed([f"{server_url}/callback"])
        emulator_url = stack.enter_context(serve_in_thread(create_emulator(seed)))
        repo = write_repo(tmp_path / "repo", public_url=server_url, emulator_url=emulator_url, age_key=age_key)
        store = open_store(repo)
        app = create_app(repo, clock=clock, store=store)
        served.append(Served(server_sock, app))
        stack.callback(served[0].stop)
        control = stack.enter_context(EmulatorControl(emulator_url))
        browser = Browser()
        stack.callback(browser.close)
        yield Live(repo, server_url, emulator_url, control, browser, clock, signing_key, store, app)


def _join_all(served: list[Served]) -> None:
    for server in served:
        server.join()


@pytest.fixture
def server_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
