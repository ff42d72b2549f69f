"""No secret in any page, log record or command output, across every outcome of the flow."""

from __future__ import annotations

import logging
import re
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from server_helpers import ACME, CLIENT_SECRET, HOLDINGS, NAME, SAM, SCOPES, SIGNING_KEY, Live

from grantctl.commands.link import run_link
from grantctl.server import cookie_name


def _states_and_cookies(live: Live) -> tuple[set[str], set[str]]:
    states: set[str] = set()
    cookies: set[str] = set()
    for hop in live.browser.hops:
        location = hop.headers.get("location", "")
        states.update(parse_qs(urlsplit(location).query).get("state", []))
        for header in hop.headers.get_list("set-cookie"):
            match = re.match(rf"{cookie_name(NAME)}=([^;]*)", header)
            if match and match.group(1) not in ("", '""'):
                cookies.add(match.group(1))
    return states, cookies


def _log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record the servers (grantctl's and the emulator's) logged.

    Records from the test's own thread are left out: those are httpx logging the URLs the test's
    "browser" visits, which carry the code and state as they would in a real browser's history.
    """
    lines = []
    for record in caplog.records:
        if record.threadName == threading.main_thread().name:
            continue
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    return lines


def test_no_secret_reaches_a_page_a_log_line_or_the_cli(live: Live, server_logs: pytest.LogCaptureFixture) -> None:
    issued_links: list[str] = []

    def link(**kwargs: object) -> str:
        url = live.link(**kwargs)
        issued_links.append(url)
        return url

    # grantctl link
    outcome = run_link(live.repo, NAME, ttl="2d")
    cli_output = [outcome.output, *outcome.notes]
    issued_links.append(outcome.output)

    # every outcome the flow has
    live.consent(link(), [HOLDINGS])  # wrong organisation
    live.control.queue_consent(action="deny", user=SAM)
    live.open(link())  # denied
    live.control.set_faults(fail=[{"endpoint": "token", "mode": "500", "count": 1}])
    live.consent(link(), [ACME])  # provider failure
    live.open(link()[:-3] + "xyz")  # tampered
    expired = link(ttl=timedelta(minutes=5))
    live.clock.advance(timedelta(minutes=6))
    live.open(expired)  # expired
    live.control.queue_consent(tenants=[ACME, HOLDINGS], user=SAM)
    at_callback = live.browser.open(link(), stop_at=f"{live.server_url}/callback")
    binding = live.browser.client.cookies[cookie_name(NAME)]
    callback_url = at_callback.headers["location"]
    live.open(callback_url)  # connected, extra organisation disconnected
    live.browser.client.cookies.set(cookie_name(NAME), binding, path="/callback")
    live.open(callback_url)  # replayed
    live.browser.client.cookies.clear()
    live.open(callback_url)  # no cookie
    live.set_scopes([*SCOPES, "accounting.contacts"])
    live.consent(link(), [ACME])  # extended

    tokens = live.store.read_tokens(NAME)
    assert tokens is not None
    states, cookies = _states_and_cookies(live)
    link_tokens = {url.rsplit("/", 1)[1] for url in issued_links}
    secrets = {
        "client secret": {CLIENT_SECRET},
        "signing key": {SIGNING_KEY},
        "tokens": {v for v in (tokens.access_token, tokens.refresh_token, tokens.id_token) if v},
        "codes": set(live.codes),
        "state values": states,
        "binding cookies": cookies,
        "link tokens": link_tokens,
    }
    # The scenario really produced what it claims to check.
    assert len(live.codes) >= 3
    assert len(states) >= 5
    assert cookies
    assert len(tokens.refresh_token or "") > 10

    pages = live.browser.pages
    logs = _log_lines(server_logs)
    assert any("outcome=connected" in line for line in logs)
    assert len(pages) >= 9
    for kind, values in secrets.items():
        for value in values:
            for page in pages:
                assert value not in page, f"{kind} in a page"
            for line in logs:
                assert value not in line, f"{kind} in a log line"
            if kind != "link tokens":  # `grantctl link` prints its link: that is its job
                for text in cli_output:
                    assert value not in text, f"{kind} in the CLI output"
    for line in logs:
        assert "/connect/ey" not in line
        assert "code=" not in line
        assert "state=" not in line
