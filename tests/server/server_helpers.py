"""Helpers for the link / callback / connect tests (the fixtures are in conftest.py).

``Live`` is the whole thing on real loopback sockets: the Xero emulator under uvicorn, a
connections repo with a real age key and sops-encrypted credentials, grantctl's callback server
under uvicorn, and an httpx client playing the browser (it keeps cookies; redirects are followed by
hand so each hop can be checked).
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import uvicorn
import yaml
from starlette.types import ASGIApp

from grantctl.emulator import Seed, SeedApp, SeedOrganisation, SeedUser
from grantctl.emulator.testing import EmulatorControl
from grantctl.links import IssuedLink, SigningKey, issue_link
from grantctl.manifest import load_connection_fast
from grantctl.repo import Repo
from grantctl.state.base import StateStore

SIGNING_KEY = "signing-key-for-tests-Zq8v2Lr5Xw9Kt3Mn7Bp1"
CLIENT_ID = "ACMEAPP0000000000000000000000001"
CLIENT_SECRET = "acme-client-secret-Hf83kd92jfLq0"
ACME = "11111111-1111-4111-8111-111111111111"
HOLDINGS = "22222222-2222-4222-8222-222222222222"
BAKERY = "33333333-3333-4333-8333-333333333333"
SAM = "u-sam"
SCOPES = ["openid", "email", "profile", "offline_access", "accounting.invoices", "accounting.settings.read"]
NAME = "acme-ltd"


class Clock:
    """A clock the test moves; starts at the real time so the emulator's tokens look fresh."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass(frozen=True)
class AgeKey:
    recipient: str
    path: Path


def manifest_text(*, scopes: list[str], organisation: str = "Acme Ltd", tenant_id: str | None = None) -> str:
    document = {
        "apiVersion": "grantctl/v1",
        "kind": "Connection",
        "metadata": {"name": NAME, "owner": "jane@agency.example"},
        "spec": {
            "provider": "xero",
            "organization": {"name": organisation, "tenantId": tenant_id},
            "contact": {"name": "Sam Lee", "email": "sam@acme.example"},
            "app": {"credentials": f"{NAME}.secrets.yaml", "createdOn": "2026-11-20"},
            "scopes": scopes,
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


def write_repo(
    root: Path,
    *,
    public_url: str,
    emulator_url: str | None,
    age_key: AgeKey,
    scopes: list[str] | None = None,
    organisation: str = "Acme Ltd",
    tenant_id: str | None = None,
) -> Repo:
    """A connections repo with one connection (``acme-ltd``) and sops-encrypted credentials."""
    from grantctl.sops.binary import encrypt_to_file

    (root / "connections").mkdir(parents=True)
    (root / "state").mkdir()
    config: dict[str, Any] = {"apiVersion": "grantctl/v1", "kind": "Config", "publicUrl": public_url}
    if emulator_url:
        config["providers"] = {
            "xero": {
                "authorizeUrl": f"{emulator_url}/identity/connect/authorize",
                "tokenUrl": f"{emulator_url}/connect/token",
                "revocationUrl": f"{emulator_url}/connect/revocation",
                "apiUrl": emulator_url,
            }
        }
    (root / "grantctl.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: (^|/)state/[^/]+\\.yaml$\n"
        "    encrypted_regex: ^(access_token|refresh_token|id_token)$\n"
        f"    age: {age_key.recipient}\n"
        "  - path_regex: (^|/)connections/[^/]+\\.secrets\\.yaml$\n"
        f"    age: {age_key.recipient}\n"
    )
    (root / "connections" / f"{NAME}.yaml").write_text(
        manifest_text(scopes=scopes or SCOPES, organisation=organisation, tenant_id=tenant_id)
    )
    encrypt_to_file(
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        root / "connections" / f"{NAME}.secrets.yaml",
        config=root / ".sops.yaml",
    )
    return Repo.load(root)


def emulator_seed(redirect_uris: list[str]) -> Seed:
    return Seed(
        apps=[
            SeedApp(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                redirect_uris=redirect_uris,
                created_on=date(2026, 11, 20),
                name="Agency Connect",
            )
        ],
        organisations=[
            SeedOrganisation(tenant_id=ACME, name="Acme Ltd"),
            SeedOrganisation(tenant_id=HOLDINGS, name="Acme Holdings"),
            SeedOrganisation(tenant_id=BAKERY, name="Bluebird <Bakery> & Co"),
        ],
        users=[
            SeedUser(
                id=SAM,
                email="sam@acme.example",
                given_name="Sam",
                family_name="Lee",
                organisations=[ACME, HOLDINGS, BAKERY],
            )
        ],
        default_user=SAM,
    )


def loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with loopback_socket() as sock:
        return int(sock.getsockname()[1])


class Served:
    """uvicorn in a thread on an already bound socket (so the URL is known before the app is built).

    ``stop`` only asks the server to stop, so several servers can wind down at the same time;
    ``join`` waits for it.
    """

    def __init__(self, sock: socket.socket, app: ASGIApp) -> None:
        config = uvicorn.Config(app, log_config=None, access_log=False, ws="none", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.should_exit = True

    def join(self) -> None:
        self.stop()
        self.thread.join(timeout=10)
        self.sock.close()


class Browser:
    """httpx as a browser: keeps cookies, follows redirects hop by hop, remembers every page it saw."""

    def __init__(self) -> None:
        self.client = httpx.Client(follow_redirects=False, timeout=15, trust_env=False)
        self.pages: list[str] = []
        self.hops: list[httpx.Response] = []

    def open(self, url: str, *, stop_at: str | None = None) -> httpx.Response:
        """GET ``url`` and follow redirects; stop before requesting a URL that starts with ``stop_at``."""
        response = self.client.get(url)
        return self._follow(response, stop_at)

    def post_form(self, url: str, data: list[tuple[str, str]]) -> httpx.Response:
        response = self.client.post(url, content=_form(data), headers={"content-type": _FORM})
        return self._follow(response, None)

    def _follow(self, response: httpx.Response, stop_at: str | None) -> httpx.Response:
        for _ in range(10):
            self.hops.append(response)
            if response.status_code not in (301, 302, 303, 307, 308):
                self.pages.append(response.text)
                return response
            target = urljoin(str(response.url), response.headers["location"])
            if stop_at and target.startswith(stop_at):
                return response
            response = self.client.get(target)
        raise AssertionError("too many redirects")

    def close(self) -> None:
        self.client.close()


_FORM = "application/x-www-form-urlencoded"


def _form(data: list[tuple[str, str]]) -> str:
    from urllib.parse import urlencode

    return urlencode(data)


@dataclass
class Live:
    """Everything running for one end-to-end test."""

    repo: Repo
    server_url: str
    emulator_url: str
    control: EmulatorControl
    browser: Browser
    clock: Clock
    key: SigningKey
    store: StateStore
    app: Any
    codes: list[str] = field(default_factory=list)

    @property
    def connection(self) -> Any:
        return load_connection_fast(self.repo.manifest_path(NAME))

    def issue(self, **kwargs: Any) -> IssuedLink:
        return issue_link(self.repo, self.connection, key=self.key, now=self.clock(), **kwargs)

    def link(self, **kwargs: Any) -> str:
        return self.issue(**kwargs).url

    def consent(self, link: str, tenants: list[str], *, scopes: list[str] | None = None) -> httpx.Response:
        """Queue a scripted consent at the emulator, then open ``link`` and land on grantctl's page."""
        self.control.queue_consent(tenants=tenants, scopes=scopes, user=SAM)
        return self.open(link)

    def open(self, url: str) -> httpx.Response:
        response = self.browser.open(url)
        self._remember_codes()
        return response

    def _remember_codes(self) -> None:
        for hop in self.browser.hops:
            location = hop.headers.get("location", "")
            for code in parse_qs(urlsplit(location).query).get("code", []):
                if code not in self.codes:
                    self.codes.append(code)

    def set_scopes(self, scopes: list[str]) -> None:
        self.repo.manifest_path(NAME).write_text(manifest_text(scopes=scopes))

    def emulator_connections(self) -> list[dict[str, Any]]:
        grants = self.control.state(client_id=CLIENT_ID)["grants"]
        return [c for grant in grants for c in grant["connections"]]


def page_text(html: str) -> str:
    """The visible text of a page, whitespace collapsed (what a reader sees)."""
    without_head = re.sub(r"<head>.*?</head>", " ", html, flags=re.S)
    inline_gone = re.sub(r"</?(strong|em|code|a)(\s[^>]*)?>", "", without_head)
    text = re.sub(r"<[^>]+>", " ", inline_gone)
    import html as html_module

    return " ".join(html_module.unescape(text).split())


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()
