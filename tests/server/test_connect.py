"""`grantctl connect`: the one-shot local callback server, driven with httpx against the emulator."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from server_helpers import (
    ACME,
    CLIENT_SECRET,
    HOLDINGS,
    NAME,
    SAM,
    SCOPES,
    AgeKey,
    Browser,
    emulator_seed,
    free_port,
    write_repo,
)
from server_helpers import loopback_socket as bound_socket

from grantctl.commands import Outcome
from grantctl.commands.connect import run_connect
from grantctl.emulator import create_app as create_emulator
from grantctl.emulator.testing import EmulatorControl, serve_in_thread
from grantctl.errors import GrantctlError
from grantctl.repo import Repo
from grantctl.state.registry import open_store


@dataclass
class Local:
    repo: Repo
    port: int
    control: EmulatorControl
    browser: Browser


@pytest.fixture
def local(tmp_path: Path, age_key: AgeKey, quiet_access_log: None) -> Iterator[Local]:
    port = free_port()
    with ExitStack() as stack:
        seed = emulator_seed([f"http://localhost:{port}/callback"])
        emulator_url = stack.enter_context(serve_in_thread(create_emulator(seed)))
        repo = write_repo(
            tmp_path / "repo", public_url="https://connect.agency.example", emulator_url=emulator_url, age_key=age_key
        )
        control = stack.enter_context(EmulatorControl(emulator_url))
        browser = Browser()
        stack.callback(browser.close)
        yield Local(repo, port, control, browser)


class Running:
    """run_connect in a thread; the instructions it announces arrive in a queue."""

    def __init__(self, target: Callable[[Callable[[str], None]], Outcome]) -> None:
        self.announced: queue.Queue[str] = queue.Queue()
        self.result: queue.Queue[Outcome | BaseException] = queue.Queue()

        def run() -> None:
            try:
                self.result.put(target(self.announced.put))
            except BaseException as exc:
                self.result.put(exc)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def url(self) -> str:
        text = self.announced.get(timeout=20)
        self.text = text
        match = re.search(r"^(http://\S+/identity/connect/authorize\?\S+)$", text, flags=re.M)
        assert match, text
        return match.group(1)

    def outcome(self) -> Outcome:
        value = self.result.get(timeout=30)
        self.thread.join(timeout=10)
        if isinstance(value, BaseException):
            raise value
        return value


def start(local: Local, **kwargs: Any) -> Running:
    options: dict[str, Any] = {"port": local.port, "open_browser": False, "timeout": 20.0, **kwargs}
    return Running(lambda announce: run_connect(local.repo, NAME, announce=announce, **options))


def test_connect_end_to_end(local: Local) -> None:
    running = start(local)
    url = running.url()
    assert f"redirect_uri=http%3A%2F%2Flocalhost%3A{local.port}%2Fcallback" in url
    assert "Acme Ltd" in running.text

    # A stray request without a state does not end the wait.
    stray = local.browser.client.get(f"http://127.0.0.1:{local.port}/callback")
    assert stray.status_code == 400

    local.control.queue_consent(tenants=[ACME], user=SAM)
    page = local.browser.open(url)
    outcome = running.outcome()

    assert page.status_code == 200
    assert "Connected Acme Ltd with:" in page.text.replace("<strong>", "").replace("</strong>", "")
    assert outcome.exit_code == 0
    assert outcome.output.startswith(f"connected {NAME}: Acme Ltd")
    assert "accounting.invoices  (Read, create and update invoices and bills)" in outcome.output
    store = open_store(local.repo)
    grant = store.read_grant(NAME)
    assert grant is not None
    assert grant.tenant is not None
    assert grant.tenant.id == ACME
    assert grant.granted_scopes == sorted(SCOPES)
    tokens = store.read_tokens(NAME)
    assert tokens is not None
    assert tokens.refresh_token
    for text in (outcome.output, *outcome.notes, running.text, page.text):
        assert CLIENT_SECRET not in text
        assert tokens.refresh_token not in text
        assert tokens.access_token not in text  # type: ignore[operator]


def test_connect_wrong_organisation(local: Local) -> None:
    running = start(local)
    url = running.url()
    local.control.queue_consent(tenants=[HOLDINGS], user=SAM)
    page = local.browser.open(url)
    outcome = running.outcome()

    assert page.status_code == 409
    assert f"Run `grantctl connect {NAME}` again." in page.text
    assert 'id="fresh-link"' not in page.text
    assert outcome.exit_code == 1
    assert "the organisation picked is not Acme Ltd" in outcome.output
    assert "picked: Acme Holdings" in outcome.output
    connections = [c for g in local.control.state()["grants"] for c in g["connections"]]
    assert connections == []
    assert open_store(local.repo).read_grant(NAME) is None


def test_connect_denied(local: Local) -> None:
    running = start(local)
    url = running.url()
    local.control.queue_consent(action="deny", user=SAM)
    local.browser.open(url)
    outcome = running.outcome()
    assert outcome.exit_code == 1
    assert "cancelled" in outcome.output


def test_connect_times_out(local: Local) -> None:
    running = start(local, timeout=0.3)
    running.url()
    with pytest.raises(GrantctlError, match=r"no answer arrived .* within 0.3 seconds; nothing was stored"):
        running.outcome()


def test_connect_port_in_use(local: Local) -> None:
    with bound_socket() as taken:
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(GrantctlError, match=f"port {port}"):
            run_connect(local.repo, NAME, port=port, open_browser=False, announce=lambda _: None)


def test_connect_unknown_connection(local: Local) -> None:
    with pytest.raises(GrantctlError, match="no connection 'nobody'"):
        run_connect(local.repo, "nobody", port=local.port, open_browser=False)
