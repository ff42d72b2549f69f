"""Fixtures for the emulator tests: a small seed, a live server on loopback, and a flow driver."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from grantctl.emulator import (
    Behaviour,
    RateLimitSettings,
    Seed,
    SeedApp,
    SeedGrant,
    SeedOrganisation,
    SeedUser,
    create_app,
)
from grantctl.emulator.testing import EmulatorControl, serve_in_thread


@dataclass(frozen=True)
class World:
    """Ids and secrets of the test seed, so tests can say what they mean."""

    new_app: str = "NEWAPP00000000000000000000000001"
    new_secret: str = "new-app-secret-value-0001"
    old_app: str = "OLDAPP00000000000000000000000002"
    old_secret: str = "old-app-secret-value-0002"
    seeded_app: str = "SEEDAPP0000000000000000000000003"
    seeded_secret: str = "seeded-app-secret-value-0003"
    redirect_uri: str = "http://127.0.0.1:8123/callback"
    acme: str = "11111111-1111-4111-8111-111111111111"
    holdings: str = "22222222-2222-4222-8222-222222222222"
    bakery: str = "33333333-3333-4333-8333-333333333333"
    practice: str = "44444444-4444-4444-8444-444444444444"
    sam: str = "u-sam"
    rosa: str = "u-rosa"
    seeded_refresh_token: str = "seeded-refresh-token-0123456789abcdef"
    scopes: str = "openid profile email offline_access accounting.settings.read accounting.invoices"


WORLD = World()


def build_seed(
    *, rate_limits: RateLimitSettings | None = None, behaviour: Behaviour | None = None, **extra: Any
) -> Seed:
    """The test seed; keyword arguments override top-level fields."""
    w = WORLD
    fields: dict[str, Any] = {
        "apps": [
            SeedApp(
                client_id=w.new_app,
                client_secret=w.new_secret,
                redirect_uris=[w.redirect_uri, "http://localhost:8123/callback"],
                created_on=date(2026, 11, 20),
                name="New & <Shiny> App",
            ),
            SeedApp(
                client_id=w.old_app,
                client_secret=w.old_secret,
                redirect_uris=[w.redirect_uri],
                created_on=date(2025, 6, 1),
            ),
            SeedApp(
                client_id=w.seeded_app,
                client_secret=w.seeded_secret,
                redirect_uris=[w.redirect_uri],
                created_on=date(2026, 5, 4),
            ),
        ],
        "organisations": [
            SeedOrganisation(tenant_id=w.acme, name="Acme Ltd"),
            SeedOrganisation(tenant_id=w.holdings, name="Acme Holdings"),
            SeedOrganisation(tenant_id=w.bakery, name="Bluebird <Bakery> & Co", country_code="NZ"),
            SeedOrganisation(tenant_id=w.practice, name="Ledgerline Accountants", type="PRACTICE"),
        ],
        "users": [
            SeedUser(
                id=w.sam,
                email="sam@acme.example",
                given_name="Sam",
                family_name="Lee",
                organisations=[w.acme, w.holdings],
            ),
            SeedUser(
                id=w.rosa,
                email="rosa@bluebird.example",
                given_name="Rosa",
                family_name="Díaz",
                organisations=[w.bakery, w.practice],
                no_rights=[w.practice],
            ),
        ],
        "default_user": w.sam,
        "grants": [
            SeedGrant(
                client_id=w.seeded_app,
                user=w.rosa,
                tenants=[w.bakery, w.practice],
                scopes=["openid", "email", "offline_access", "accounting.settings.read"],
                refresh_token=w.seeded_refresh_token,
            )
        ],
        "rate_limits": rate_limits or RateLimitSettings(),
        "behaviour": behaviour or Behaviour(),
    }
    fields.update(extra)
    return Seed(**fields)


class XeroFlow:
    """Drives the emulator the way grantctl will: authorize, consent, token, API calls."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.w = WORLD

    def authorize(self, *, client_id: str | None = None, scope: str | None = None, **params: str) -> httpx.Response:
        query = {
            "response_type": "code",
            "client_id": client_id or self.w.new_app,
            "redirect_uri": self.w.redirect_uri,
            "scope": scope or self.w.scopes,
            "state": "state-123",
            **params,
        }
        return self.client.get("/identity/connect/authorize", params=query)

    def submit_consent(self, page: httpx.Response, *, tenants: list[str], action: str = "allow") -> httpx.Response:
        assert page.status_code == 200, page.text
        request_id = re.search(r'name="request" value="([^"]+)"', page.text)
        user = re.search(r'name="user" value="([^"]+)"', page.text)
        assert request_id
        assert user
        form = {"request": request_id.group(1), "user": user.group(1), "tenant": tenants, "action": action}
        return self.client.post("/identity/connect/authorize/consent", data=form)

    def code_via_page(self, *, tenants: list[str], **authorize: str) -> str:
        return self.redirect_params(self.submit_consent(self.authorize(**authorize), tenants=tenants))["code"]

    def code_via_script(self, *, tenants: list[str], user: str | None = None, **authorize: str) -> str:
        body: dict[str, Any] = {"tenants": tenants, "action": "allow"}
        if user:
            body["user"] = user
        assert self.client.post("/_emulator/consent", json=body).status_code == 200
        return self.redirect_params(self.authorize(**authorize))["code"]

    def exchange(
        self, code: str, *, client_id: str | None = None, secret: str | None = None, **form: str
    ) -> httpx.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.w.redirect_uri, **form}
        auth = (client_id or self.w.new_app, secret or self.w.new_secret)
        return self.client.post("/identity/connect/token", data=data, auth=auth)

    def refresh(self, refresh_token: str, *, client_id: str | None = None, secret: str | None = None) -> httpx.Response:
        auth = (client_id or self.w.new_app, secret or self.w.new_secret)
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self.client.post("/identity/connect/token", data=data, auth=auth)

    def connect(self, *, tenants: list[str], **authorize: str) -> dict[str, Any]:
        """Scripted consent + code exchange; the token response JSON."""
        response = self.exchange(self.code_via_script(tenants=tenants, **authorize))
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    def connections(self, access_token: str, **params: str) -> httpx.Response:
        return self.client.get("/connections", params=params, headers=self.bearer(access_token))

    def organisation(self, access_token: str, tenant_id: str | None) -> httpx.Response:
        headers = self.bearer(access_token)
        if tenant_id is not None:
            headers["xero-tenant-id"] = tenant_id
        return self.client.get("/api.xro/2.0/Organisation", headers=headers)

    @staticmethod
    def redirect_params(response: httpx.Response) -> dict[str, str]:
        """The query parameters of a 302's Location (one value each)."""
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        return {name: values[0] for name, values in query.items()}

    @staticmethod
    def pkce_pair(verifier: str) -> tuple[str, str]:
        """(verifier, S256 challenge)."""
        digest = hashlib.sha256(verifier.encode()).digest()
        return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def advance(self, seconds: float) -> None:
        assert self.client.post("/_emulator/clock", json={"seconds": seconds}).status_code == 200

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.client.get("/_emulator/state").json()
        return state


@pytest.fixture
def world() -> World:
    return WORLD


@pytest.fixture
def make_seed() -> Callable[..., Seed]:
    """``build_seed`` for tests that need a variant of the seed."""
    return build_seed


@pytest.fixture
def serve() -> Iterator[Callable[[Seed], str]]:
    """Start an emulator for a given seed; every server stops at the end of the test."""
    with ExitStack() as stack:

        def start(seed: Seed) -> str:
            return stack.enter_context(serve_in_thread(create_app(seed)))

        yield start


@pytest.fixture(scope="module")
def shared_server() -> Iterator[str]:
    """One emulator per test module (starting and stopping uvicorn costs ~0.2 s)."""
    with serve_in_thread(create_app(build_seed())) as url:
        yield url


@pytest.fixture
def base_url(shared_server: str) -> str:
    """The shared emulator, reset to its seed: every test starts from the same state."""
    httpx.post(f"{shared_server}/_emulator/reset", timeout=5).raise_for_status()
    return shared_server


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5, follow_redirects=False) as http:
        yield http


@pytest.fixture
def flow(client: httpx.Client) -> XeroFlow:
    return XeroFlow(client)


@pytest.fixture
def control(base_url: str) -> Iterator[EmulatorControl]:
    with EmulatorControl(base_url) as emulator_control:
        yield emulator_control


@pytest.fixture
def flow_for(serve: Callable[[Seed], str]) -> Iterator[Callable[[Seed], XeroFlow]]:
    """A flow driver against a server started from a custom seed."""
    with ExitStack() as stack:

        def make(seed: Seed) -> XeroFlow:
            http = stack.enter_context(httpx.Client(base_url=serve(seed), timeout=5, follow_redirects=False))
            return XeroFlow(http)

        yield make
