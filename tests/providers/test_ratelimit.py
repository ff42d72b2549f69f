"""RateLimiter with an injected clock and sleep: windows, concurrency, server hints, bounded waits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from grantctl.errors import ProviderError
from grantctl.providers import RateLimiter, RateLimits

SMALL = RateLimits(per_tenant_concurrency=2, per_tenant_per_minute=3, per_app_per_minute=5)


class FakeTime:
    """A monotonic clock that only moves when somebody sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def limiter(fake_time):
    return RateLimiter({"xero": SMALL}, clock=fake_time.clock, sleep=fake_time.sleep)


def start_times(limiter, fake_time, tenants, app="app-1"):
    """Take one slot per entry of ``tenants`` in order; return when each call started."""

    async def go():
        started = []
        for tenant in tenants:
            async with limiter.slot("xero", tenant=tenant, app=app):
                started.append(fake_time.now)
        return started

    return asyncio.run(go())


def test_calls_within_the_tenant_budget_do_not_wait(limiter, fake_time):
    assert start_times(limiter, fake_time, ["t1", "t1", "t1"]) == [1000.0, 1000.0, 1000.0]
    assert fake_time.sleeps == []


def test_the_call_over_the_tenant_budget_waits_for_the_window(limiter, fake_time):
    started = start_times(limiter, fake_time, ["t1"] * 4)

    assert started == [1000.0, 1000.0, 1000.0, 1060.0]
    assert fake_time.sleeps == [60.0]


def test_tenants_have_separate_budgets_but_share_the_app_budget(limiter, fake_time):
    started = start_times(limiter, fake_time, ["t1", "t1", "t1", "t2", "t2", "t3"])

    # Tenants t1 and t2 fit their own budget of 3, but the app allows only 5 calls a minute.
    assert started == [1000.0] * 5 + [1060.0]


def test_apps_have_separate_budgets(limiter, fake_time):
    async def go():
        for index in range(6):
            async with limiter.slot("xero", tenant=f"t{index}", app=f"app-{index % 2}"):
                pass

    asyncio.run(go())
    assert fake_time.sleeps == []


def test_tenant_less_calls_spend_only_the_app_budget(limiter, fake_time):
    started = start_times(limiter, fake_time, [None] * 6)

    assert started == [1000.0] * 5 + [1060.0]


def test_concurrency_is_capped_per_tenant(limiter):
    in_flight = {"t1": 0, "t2": 0}
    most = {"t1": 0, "t2": 0}

    async def call(tenant):
        async with limiter.slot("xero", tenant=tenant, app=f"app-{tenant}"):
            in_flight[tenant] += 1
            most[tenant] = max(most[tenant], in_flight[tenant])
            await asyncio.sleep(0.001)
            in_flight[tenant] -= 1

    async def go():
        await asyncio.gather(*(call("t1") for _ in range(3)), *(call("t2") for _ in range(2)))

    asyncio.run(go())
    assert most == {"t1": 2, "t2": 2}


def test_429_blocks_the_tenant_for_retry_after(limiter, fake_time):
    async def go():
        async with limiter.slot("xero", tenant="t1", app="app-1") as key:
            limiter.observe(key, status=429, headers={"Retry-After": "30", "X-Rate-Limit-Problem": "minute"})
        async with limiter.slot("xero", tenant="t2", app="app-1"):
            other_tenant_started = fake_time.now
        async with limiter.slot("xero", tenant="t1", app="app-1"):
            return other_tenant_started, fake_time.now

    assert asyncio.run(go()) == (1000.0, 1030.0)


def test_429_for_the_app_minute_blocks_every_tenant_of_the_app(limiter, fake_time):
    async def go():
        async with limiter.slot("xero", tenant="t1", app="app-1") as key:
            limiter.observe(key, status=429, headers={"retry-after": "12", "x-rate-limit-problem": "appminute"})
        async with limiter.slot("xero", tenant="t2", app="app-1"):
            return fake_time.now

    assert asyncio.run(go()) == 1012.0


def test_429_with_an_http_date_retry_after(fake_time):
    wall = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    limiter = RateLimiter({"xero": SMALL}, clock=fake_time.clock, sleep=fake_time.sleep, wall_clock=lambda: wall)
    when = format_datetime(wall + timedelta(seconds=25), usegmt=True)

    async def go():
        async with limiter.slot("xero", tenant="t1", app="a") as key:
            limiter.observe(key, status=429, headers={"Retry-After": when})
        async with limiter.slot("xero", tenant="t1", app="a"):
            return fake_time.now

    assert asyncio.run(go()) == 1025.0


def test_429_without_retry_after_waits_a_whole_window(limiter, fake_time):
    async def go():
        async with limiter.slot("xero", tenant="t1", app="a") as key:
            limiter.observe(key, status=429, headers={})
        async with limiter.slot("xero", tenant="t1", app="a"):
            return fake_time.now

    assert asyncio.run(go()) == 1060.0


def test_min_limit_remaining_zero_waits_until_our_oldest_call_leaves_the_window(limiter, fake_time):
    async def go():
        async with limiter.slot("xero", tenant="t1", app="a"):
            pass
        await fake_time.sleep(20)
        async with limiter.slot("xero", tenant="t1", app="a") as key:
            limiter.observe(key, status=200, headers={"X-MinLimit-Remaining": "0"})
        async with limiter.slot("xero", tenant="t1", app="a"):
            return fake_time.now

    # Oldest call at 1000, so the server's window frees a place by 1060 at the latest.
    assert asyncio.run(go()) == 1060.0


def test_app_min_limit_remaining_zero_blocks_the_app(limiter, fake_time):
    async def go():
        async with limiter.slot("xero", tenant="t1", app="a") as key:
            limiter.observe(key, status=200, headers={"X-AppMinLimit-Remaining": "0", "X-MinLimit-Remaining": "55"})
        async with limiter.slot("xero", tenant="t2", app="a"):
            blocked = fake_time.now
        async with limiter.slot("xero", tenant="t3", app="b"):
            return blocked, fake_time.now

    assert asyncio.run(go()) == (1060.0, 1060.0)


def test_waits_longer_than_max_wait_raise_a_transient_error(fake_time):
    limiter = RateLimiter({"xero": SMALL}, clock=fake_time.clock, sleep=fake_time.sleep, max_wait=120)

    async def go():
        async with limiter.slot("xero", tenant="t1", app="a") as key:
            limiter.observe(key, status=429, headers={"Retry-After": "86400", "X-Rate-Limit-Problem": "day"})
        async with limiter.slot("xero", tenant="t1", app="a"):
            pass

    with pytest.raises(ProviderError) as caught:
        asyncio.run(go())
    assert caught.value.transient
    assert caught.value.retry_after == 86400
    assert fake_time.sleeps == []


def test_the_httpx_hook_feeds_hints_for_calls_inside_a_slot(limiter, fake_time):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "45"})

    async def go():
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, event_hooks={"response": [limiter.on_response]}) as http:
            await http.get("http://127.0.0.1:9/outside-any-slot")  # no key: ignored
            async with limiter.slot("xero", tenant="t1", app="a"):
                unblocked_at = fake_time.now
            async with limiter.slot("xero", tenant="t1", app="a"):
                await http.get("http://127.0.0.1:9/api")
            async with limiter.slot("xero", tenant="t1", app="a"):
                return unblocked_at, fake_time.now

    assert asyncio.run(go()) == (1000.0, 1045.0)


def test_unknown_provider_is_a_programming_error(limiter):
    async def go():
        async with limiter.slot("quickbooks", tenant="t", app="a"):
            pass

    with pytest.raises(ValueError, match="quickbooks"):
        asyncio.run(go())
