"""Pieces tested without a server: the core with a fake clock, the limiter, JWTs, scopes, serve_in_thread."""

from __future__ import annotations

import socket
from datetime import date

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from grantctl.emulator import RateLimitSettings
from grantctl.emulator._core import Emulator
from grantctl.emulator._jwt import decode, encode
from grantctl.emulator._ratelimit import Admitted, RateLimiter, Rejected
from grantctl.emulator._records import AuthorizeRequest, OAuthError, ScriptedConsent
from grantctl.emulator._scopes import KNOWN_SCOPES, scope_problem
from grantctl.emulator._server import is_loopback, run
from grantctl.emulator.testing import serve_in_thread


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(make_seed, clock) -> Emulator:
    return Emulator(make_seed(), clock)


def request_for(world, **overrides) -> AuthorizeRequest:
    fields = {
        "client_id": world.new_app,
        "redirect_uri": world.redirect_uri,
        "scopes": ("openid", "offline_access", "accounting.invoices"),
        "state": "s",
        "code_challenge": None,
        "login_hint": None,
    }
    return AuthorizeRequest(**{**fields, **overrides})


def test_injected_clock_drives_code_expiry(core, clock, world):
    app = core.apps[world.new_app]
    code = core.consent(request_for(world), core.users[world.sam], [world.acme])
    clock.now += 301

    with pytest.raises(OAuthError) as caught:
        core.exchange_code(app, code, world.redirect_uri, None, "http://emulator")

    assert caught.value.error == "invalid_grant"


def test_reset_restores_the_seed(core, world):
    core.consent(request_for(world), core.users[world.sam], [world.acme])
    core.advance_clock(99)

    core.reset()

    assert core.clock_offset == 0
    assert set(core.grants) == {(world.rosa, world.seeded_app)}
    assert not core.counters


def test_pending_consent_pages_are_bounded(core, world):
    first = core.remember_pending(request_for(world))
    for _ in range(10_000):
        core.remember_pending(request_for(world))

    assert core.pending(first) is None
    assert core.describe()["pending_consent_pages"] == 10_000


def test_pending_consent_pages_expire(core, clock, world):
    request_id = core.remember_pending(request_for(world))
    clock.now += 3_601

    assert core.pending(request_id) is None


def test_scripted_consents_are_taken_in_order(core, world):
    core.queue_scripted_consent(ScriptedConsent(world.sam, (world.acme,), True, None, world.old_app))
    core.queue_scripted_consent(ScriptedConsent(world.sam, (world.holdings,), True, None, None))

    assert core.take_scripted_consent(world.new_app).tenants == (world.holdings,)
    assert core.take_scripted_consent(world.new_app) is None
    assert core.take_scripted_consent(world.old_app).tenants == (world.acme,)


def test_dead_codes_and_tokens_are_swept_periodically(core, clock, world):
    core.SWEEP_EVERY = 50
    app = core.apps[world.new_app]
    user = core.users[world.sam]
    codes = [core.consent(request_for(world), user, [world.acme]) for _ in range(20)]
    tokens = [core.exchange_code(app, code, world.redirect_uri, None, "http://emulator") for code in codes[:10]]
    rotated = core.refresh(app, tokens[0].refresh_token or "", "http://emulator")
    clock.now += 1_801  # codes, access tokens and the used refresh token's grace window are all over

    writes_left = core.SWEEP_EVERY - core._writes_since_sweep
    fresh_codes = [core.consent(request_for(world), user, []) for _ in range(writes_left)]

    assert set(core._codes) == set(fresh_codes)  # the ten unexchanged old codes are gone
    assert len(core._access_tokens) == 0
    assert tokens[0].refresh_token not in core._refresh_tokens  # used, grace over
    assert rotated.refresh_token in core._refresh_tokens  # unused: good for 60 days
    assert core.refresh(app, tokens[1].refresh_token or "", "http://emulator").access_token


def test_limiter_sliding_minute_window():
    limiter = RateLimiter(RateLimitSettings(tenant_minute=2))
    for moment in (0.0, 30.0):
        assert isinstance(limiter.acquire("app", "t", moment, enforce=True), Admitted)
        limiter.release("app", "t")

    rejected = limiter.acquire("app", "t", 59.5, enforce=True)

    assert rejected == Rejected("minute", 1)
    assert isinstance(limiter.acquire("app", "t", 60.0, enforce=True), Admitted)


def test_limiter_counts_concurrency_until_release():
    limiter = RateLimiter(RateLimitSettings(tenant_concurrent=1, tenant_minute=100))
    assert isinstance(limiter.acquire("app", "t", 0.0, enforce=True), Admitted)

    assert limiter.acquire("app", "t", 0.0, enforce=True) == Rejected("concurrent", 1)
    limiter.release("app", "t")
    assert isinstance(limiter.acquire("app", "t", 0.0, enforce=True), Admitted)


def test_jwt_rejects_tampering():
    token = encode({"scope": ["a"]}, b"k" * 32)
    header, payload, signature = token.split(".")
    other_payload = encode({"scope": ["a", "b"]}, b"k" * 32).split(".")[1]

    assert decode(token, b"k" * 32) == {"scope": ["a"]}
    assert decode(token, b"x" * 32) is None
    assert decode(f"{header}.{other_payload}.{signature}", b"k" * 32) is None
    assert decode("a.b", b"k" * 32) is None
    assert decode(f"{header}.{payload}.ünïcode", b"k" * 32) is None


def test_scope_table():
    new, old = date(2026, 3, 2), date(2026, 3, 1)

    assert scope_problem("accounting.transactions", old) is None
    assert "accounting.invoices" in (scope_problem("accounting.transactions", new) or "")
    assert "accounting.reports.aged.read" in (scope_problem("accounting.reports.read", new) or "")
    assert scope_problem("accounting.contacts", new) is None  # not split, still valid
    assert scope_problem("accounting.settings.read", new) is None
    assert "unknown" in (scope_problem("accounting.everything", old) or "")
    assert {"payroll.timesheets.read", "finance.statements.read", "bankfeeds", "projects"} <= KNOWN_SCOPES


def test_serve_in_thread_runs_any_asgi_app_and_stops():
    async def hello(request):
        return PlainTextResponse("hello")

    with serve_in_thread(Starlette(routes=[Route("/", hello)])) as base_url:
        assert httpx.get(base_url, timeout=5).text == "hello"
        port = int(base_url.rsplit(":", 1)[1])

    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_run_refuses_non_loopback_hosts(tmp_path):
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")  # noqa: S104 - the point of the test
    with pytest.raises(ValueError, match="loopback"):
        run("0.0.0.0", 0, tmp_path / "never-read.yaml")  # noqa: S104
