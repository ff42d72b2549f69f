"""Fixtures for provider tests: credentials, fake JWTs, a fixed clock and MockTransport-backed clients."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from grantctl.emulator import Behaviour, RateLimitSettings, Seed, SeedApp, SeedOrganisation, SeedUser, create_app
from grantctl.emulator.testing import EmulatorControl, serve_in_thread
from grantctl.providers import ClientCredentials

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CLIENT_SECRET = "CLIENT-SECRET-d2a4f1c07b9e43a58e16"
CODE = "AUTH-CODE-7f3e9a1b2c4d5e6f"
VERIFIER = "PKCE-VERIFIER-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"


def encode_jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT (header.payload.signature) carrying ``claims``."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


@dataclass
class FakeServer:
    """Routes ``(method, path)`` to handlers and keeps every request it saw."""

    routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def route(self, method: str, path: str, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.routes[(method, path)] = handler

    def reply(self, method: str, path: str, status: int = 200, **kwargs: Any) -> None:
        self.route(method, path, lambda _request: httpx.Response(status, **kwargs))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return httpx.Response(599, json={"error": "no_route_in_test"})
        return handler(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def form(self, index: int = -1) -> dict[str, str]:
        """The urlencoded body of a recorded request."""
        return dict(httpx.QueryParams(self.requests[index].content.decode()))


@pytest.fixture
def creds() -> ClientCredentials:
    return ClientCredentials("client-id-123", CLIENT_SECRET)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return lambda: NOW


@pytest.fixture
def jwt() -> Callable[[dict[str, Any]], str]:
    return encode_jwt


@pytest.fixture
def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run one coroutine to completion (the tests stay plain functions)."""
    return asyncio.run


@pytest.fixture
def call_with(server: FakeServer, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> Callable[..., Any]:
    """``call_with(lambda http: provider.method(http, ...))`` against the fake server, closing the client."""

    def call(make: Callable[[httpx.AsyncClient], Coroutine[Any, Any, Any]]) -> Any:
        async def go() -> Any:
            async with server.client() as http:
                return await make(http)

        return run(go())

    return call


# -- the emulator on loopback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EmulatorWorld:
    """Ids and credentials of the seed the integration tests run against."""

    base_url: str
    client_id: str = "PROVTEST0000000000000000000000001"
    client_secret: str = "provider-test-secret-value-0001"
    redirect_uri: str = "http://127.0.0.1:8124/callback"
    acme: str = "aaaaaaaa-1111-4111-8111-111111111111"
    holdings: str = "bbbbbbbb-2222-4222-8222-222222222222"
    sam: str = "u-sam"


def emulator_seed(world: EmulatorWorld, **behaviour: Any) -> Seed:
    """One app (created after 2026-03-02: granular scopes), one user with two organisations."""
    return Seed(
        apps=[
            SeedApp(
                client_id=world.client_id,
                client_secret=world.client_secret,
                redirect_uris=[world.redirect_uri],
                created_on=date(2026, 11, 20),
            )
        ],
        organisations=[
            SeedOrganisation(tenant_id=world.acme, name="Acme Ltd"),
            SeedOrganisation(tenant_id=world.holdings, name="Acme Holdings"),
        ],
        users=[
            SeedUser(
                id=world.sam,
                email="sam@acme.example",
                given_name="Sam",
                family_name="Lee",
                organisations=[world.acme, world.holdings],
            )
        ],
        default_user=world.sam,
        rate_limits=RateLimitSettings(enabled=False, tenant_minute=2),
        behaviour=Behaviour(**behaviour),
    )


@contextmanager
def running_emulator(**behaviour: Any) -> Iterator[EmulatorWorld]:
    """Serve a fresh emulator on a free 127.0.0.1 port for the duration of the block."""
    seed = emulator_seed(EmulatorWorld(base_url=""), **behaviour)
    with serve_in_thread(create_app(seed)) as base_url:
        yield EmulatorWorld(base_url=base_url)


@pytest.fixture(scope="module")
def _emulator_server() -> Iterator[EmulatorWorld]:
    with running_emulator() as world:
        yield world


@pytest.fixture
def emulator(_emulator_server: EmulatorWorld) -> EmulatorWorld:
    """A live emulator on 127.0.0.1, reset to its seed for each test (one server per module: fast)."""
    with EmulatorControl(_emulator_server.base_url) as control:
        control.reset()
    return _emulator_server


@pytest.fixture
def emulator_keeping_auth_event() -> Iterator[EmulatorWorld]:
    """An emulator where a re-consent keeps the connection's old authEventId (UNCONFIRMED Xero behaviour)."""
    with running_emulator(reconsent_keeps_auth_event_id=True) as world:
        yield world
