"""The run's concurrency bound and the rate limiter, observed from the network side."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx

from grantctl.commands.health import run_health
from grantctl.commands.refresh import run_refresh


def _token_response() -> httpx.Response:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    access = f"{part({'alg': 'none'})}.{part({'scope': ['openid', 'offline_access'], 'exp': 4102444800})}.sig"
    return httpx.Response(
        200, json={"access_token": access, "refresh_token": "rotated-" + "x" * 40, "expires_in": 1800}
    )


def test_no_more_calls_in_flight_than_the_concurrency(fleet: Any) -> None:
    f = fleet(12)
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return _token_response()

    outcome = run_refresh(f.repo, [], force=False, concurrency=3, fmt="json", transport=httpx.MockTransport(handler))
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.output)["summary"]["refreshed"] == 12
    assert peak == 3


def test_health_honours_retry_after_on_the_api_call(fleet: Any) -> None:
    f = fleet(1)
    assert run_refresh(f.repo, [], force=False, concurrency=2, fmt="json").exit_code == 0
    f.control.set_faults(fail=[{"endpoint": "organisation", "mode": "429", "retry_after": 1, "count": 1}])
    started = time.monotonic()
    outcome = run_health(f.repo, [], fmt="json")
    assert outcome.exit_code == 0, outcome.output
    assert time.monotonic() - started >= 1.0
    (result,) = json.loads(outcome.output)["connections"]
    assert result["status"] == "healthy"
    assert any("retry after 1 s" in item["answer"] for item in result["evidence"])
    assert f.counters()["http_429"] == 1
