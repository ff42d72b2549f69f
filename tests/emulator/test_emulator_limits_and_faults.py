"""Rate limits (429 + Retry-After), injected failures and latency."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from grantctl.emulator import RateLimitSettings


@pytest.fixture
def limited(flow_for, make_seed):
    """A flow against an emulator with small, enforced limits."""

    def make(**limits):
        return flow_for(make_seed(rate_limits=RateLimitSettings(enabled=True, **limits)))

    return make


def test_minute_limit_answers_429_with_retry_after(limited, world):
    flow = limited(tenant_minute=3)
    token = flow.connect(tenants=[world.acme])["access_token"]
    remaining = [flow.organisation(token, world.acme).headers["x-minlimit-remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    flow.advance(20)

    response = flow.organisation(token, world.acme)

    assert response.status_code == 429
    assert response.headers["x-rate-limit-problem"] == "minute"
    assert response.headers["retry-after"] == "40"
    assert flow.state()["counters"]["http_429"] == 1
    flow.advance(40)
    assert flow.organisation(token, world.acme).status_code == 200


def test_minute_limit_is_per_tenant(limited, world):
    flow = limited(tenant_minute=2)
    token = flow.connect(tenants=[world.acme, world.holdings])["access_token"]
    for _ in range(2):
        assert flow.organisation(token, world.acme).status_code == 200

    assert flow.organisation(token, world.acme).status_code == 429
    assert flow.organisation(token, world.holdings).status_code == 200


def test_app_minute_limit(limited, world):
    flow = limited(app_minute=3)
    token = flow.connect(tenants=[world.acme, world.holdings])["access_token"]
    remaining = [
        flow.organisation(token, tenant).headers["x-appminlimit-remaining"]
        for tenant in (world.acme, world.holdings, world.acme)
    ]
    assert remaining == ["2", "1", "0"]

    response = flow.organisation(token, world.holdings)

    assert response.status_code == 429
    assert response.headers["x-rate-limit-problem"] == "appminute"


def test_day_limit_lasts_until_the_next_utc_day(limited, world):
    flow = limited(tenant_day=2)
    token = flow.connect(tenants=[world.acme])["access_token"]
    flow.organisation(token, world.acme)
    assert flow.organisation(token, world.acme).headers["x-daylimit-remaining"] == "0"

    response = flow.organisation(token, world.acme)

    assert response.status_code == 429
    assert response.headers["x-rate-limit-problem"] == "day"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 86_400
    flow.advance(retry_after)
    fresh = flow.connect(tenants=[world.acme])["access_token"]  # the old one may have expired meanwhile
    assert flow.organisation(fresh, world.acme).status_code == 200


def test_concurrent_limit(limited, world):
    flow = limited(tenant_concurrent=2)
    token = flow.connect(tenants=[world.acme])["access_token"]
    flow.client.post("/_emulator/faults", json={"latency_ms": 600})

    async def call_three_at_once() -> list[httpx.Response]:
        headers = {**flow.bearer(token), "xero-tenant-id": world.acme}
        async with httpx.AsyncClient(base_url=flow.client.base_url, timeout=5) as client:
            return await asyncio.gather(*(client.get("/api.xro/2.0/Organisation", headers=headers) for _ in range(3)))

    responses = asyncio.run(call_three_at_once())

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429]
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.headers["x-rate-limit-problem"] == "concurrent"
    assert int(rejected.headers["retry-after"]) >= 1


def test_limits_are_counted_but_not_enforced_when_disabled(flow, world):
    token = flow.connect(tenants=[world.acme])["access_token"]

    statuses = {flow.organisation(token, world.acme).status_code for _ in range(61)}

    assert statuses == {200}
    assert flow.organisation(token, world.acme).headers["x-minlimit-remaining"] == "0"


def test_faults_can_switch_rate_limits_on(flow, world):
    token = flow.connect(tenants=[world.acme])["access_token"]
    flow.client.post("/_emulator/faults", json={"rate_limits": True})

    statuses = [flow.organisation(token, world.acme).status_code for _ in range(61)]

    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429


def test_fail_the_next_token_calls_then_recover(flow, world):
    code = flow.code_via_script(tenants=[world.acme])
    flow.client.post("/_emulator/faults", json={"fail": [{"endpoint": "token", "mode": "503", "count": 2}]})

    statuses = [flow.exchange(code).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]  # the failed calls did not consume the code
    assert flow.state()["counters"]["faults_injected"] == 2


def test_faults_target_one_client(flow, world):
    flow.client.post(
        "/_emulator/faults", json={"fail": [{"endpoint": "token", "mode": 500, "count": 5, "client_id": world.old_app}]}
    )

    healthy = flow.refresh(world.seeded_refresh_token, client_id=world.seeded_app, secret=world.seeded_secret)
    failing = flow.refresh("whatever", client_id=world.old_app, secret=world.old_secret)

    assert healthy.status_code == 200
    assert failing.status_code == 500
    rule = flow.state()["faults"]["fail"][0]
    assert rule["remaining"] == 4


def test_faults_on_api_endpoints(flow, world):
    token = flow.connect(tenants=[world.acme])["access_token"]
    flow.client.post(
        "/_emulator/faults",
        json={
            "fail": [
                {"endpoint": "connections", "mode": "500"},
                {"endpoint": "organisation", "mode": "429", "retry_after": 7, "problem": "appminute"},
            ]
        },
    )

    assert flow.connections(token).status_code == 500
    assert flow.connections(token).status_code == 200
    throttled = flow.organisation(token, world.acme)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "7"
    assert throttled.headers["x-rate-limit-problem"] == "appminute"
    assert flow.organisation(token, world.acme).status_code == 200


def test_fault_on_authorize_and_wildcard_endpoint(flow):
    flow.client.post("/_emulator/faults", json={"fail": [{"endpoint": "*", "mode": "503", "count": 1}]})

    assert flow.authorize().status_code == 503
    assert flow.authorize().status_code == 200


def test_timeout_fault_hangs_the_call(flow, world):
    flow.client.post(
        "/_emulator/faults", json={"fail": [{"endpoint": "token", "mode": "timeout", "timeout_seconds": 1.0}]}
    )

    with pytest.raises(httpx.ReadTimeout):
        flow.client.post(
            "/connect/token",
            data={"grant_type": "refresh_token", "refresh_token": world.seeded_refresh_token},
            auth=(world.seeded_app, world.seeded_secret),
            timeout=0.2,
        )
    retried = flow.refresh(world.seeded_refresh_token, client_id=world.seeded_app, secret=world.seeded_secret)
    assert retried.status_code == 200


def test_latency_is_added_to_every_call_but_not_to_controls(flow):
    flow.client.post("/_emulator/faults", json={"latency_ms": 150})

    started = time.perf_counter()
    flow.authorize()
    slow = time.perf_counter() - started
    started = time.perf_counter()
    flow.state()
    fast = time.perf_counter() - started

    assert slow >= 0.15
    assert fast < 0.15


def test_fault_configuration_is_bounded(flow):
    for body in (
        {"latency_ms": 60_000},
        {"fail": [{"mode": "418"}]},
        {"fail": [{"mode": "500", "count": 0}]},
        {"fail": [{"mode": "timeout", "timeout_seconds": 3600}]},
        {"fail": [{"mode": "500", "endpoint": "everything"}]},
        {"unknown": 1},
    ):
        response = flow.client.post("/_emulator/faults", json=body)
        assert response.status_code == 400, body


def test_posting_faults_replaces_and_reset_clears(flow):
    flow.client.post("/_emulator/faults", json={"latency_ms": 5, "fail": [{"mode": "500"}]})
    assert flow.client.post("/_emulator/faults", json={"latency_ms": 7}).json()["fail"] == []

    flow.client.post("/_emulator/reset")

    assert flow.client.get("/_emulator/faults").json() == {"latency_ms": 0, "rate_limits": None, "fail": []}


def test_clock_only_moves_forward(flow):
    before = flow.client.get("/_emulator/clock").json()["now"]

    assert flow.client.post("/_emulator/clock", json={"seconds": -5}).status_code == 400
    after = flow.client.post("/_emulator/clock", json={"seconds": 3600}).json()

    assert after["offset"] == 3600
    assert after["now"] >= before + 3600
