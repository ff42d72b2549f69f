"""``health`` against the emulator: each status with its evidence, recorded in the state for plan and audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from grantctl.commands.health import run_health
from grantctl.commands.plan import run_plan
from grantctl.commands.refresh import run_refresh
from grantctl.state.model import Tokens


def _health(fleet: Any, *names: str, fmt: str = "json") -> tuple[int, Any]:
    outcome = run_health(fleet.repo, list(names), fmt=fmt)
    for secret in fleet.secrets():
        assert secret not in outcome.output
    return outcome.exit_code, json.loads(outcome.output) if fmt == "json" else outcome.output


def _results(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in report["connections"]}


def _refreshed(fleet: Any) -> None:
    assert run_refresh(fleet.repo, [], force=False, concurrency=8, fmt="json").exit_code == 0


def test_healthy_connections_with_evidence_recorded_in_state(fleet: Any) -> None:
    f = fleet(2)
    _refreshed(f)
    code, report = _health(f)
    assert code == 0
    for name in f.names:
        result = _results(report)[name]
        assert result["status"] == "healthy"
        assert not result["refreshed"]  # the access tokens were fresh
        calls = [item["call"] for item in result["evidence"]]
        assert calls == ["connections list", "GET /api.xro/2.0/Organisation"]
        assert "HTTP 200" in result["evidence"][1]["answer"]
        grant = f.grant(name)
        assert grant.last_health is not None
        assert grant.last_health.status == "healthy"
        assert grant.consecutive_failures == 0
    assert report["calls"]["calls"] == 4


def test_expired_access_token_is_refreshed_and_persisted_first(fleet: Any) -> None:
    f = fleet(1)
    (name,) = f.names
    code, report = _health(f)
    assert code == 0
    result = _results(report)[name]
    assert result["status"] == "healthy"
    assert result["refreshed"]
    assert result["evidence"][0] == {"call": "access token", "answer": "no access token stored"}
    assert f.tokens(name).refresh_token != f.member(name).seed_refresh_token
    assert f.emulator_grant(name)["refreshes"] == 1


def test_a_tenant_disconnected_in_xero_is_revoked_and_plan_asks_to_reauthorize(fleet: Any) -> None:
    f = fleet(2)
    _refreshed(f)
    gone, fine = f.names
    bearer = {"Authorization": f"Bearer {f.tokens(gone).access_token}"}
    (connection,) = httpx.get(f"{f.base_url}/connections", headers=bearer).json()
    assert httpx.delete(f"{f.base_url}/connections/{connection['id']}", headers=bearer).status_code == 204
    code, report = _health(f)
    assert code == 2
    result = _results(report)[gone]
    assert result["status"] == "revoked"
    assert f.member(gone).org_name in result["detail"]
    assert result["evidence"][-1]["call"] == "connections list"
    assert "not among them" in result["evidence"][-1]["answer"]
    assert _results(report)[fine]["status"] == "healthy"
    assert f.grant(gone).last_health.status == "revoked"  # type: ignore[union-attr]
    assert f.grant(gone).consecutive_failures == 1
    plan = json.loads(run_plan(f.repo, fmt="json").output)
    assert (gone, "reauthorize") in {(a["connection"], a["kind"]) for a in plan["actions"]}
    # A second failing check counts on.
    _health(f, gone)
    assert f.grant(gone).consecutive_failures == 2


def test_a_403_from_the_organisation_call_is_access_denied_with_advice(fleet: Any) -> None:
    f = fleet(2, no_rights=(0,))
    _refreshed(f)
    denied = f.names[0]
    code, report = _health(f)
    assert code == 2
    result = _results(report)[denied]
    assert result["status"] == "access-denied"
    assert "403" in result["detail"]
    assert "may not read its data" in result["detail"]
    assert f"grantctl link {denied}" in result["detail"]
    assert result["evidence"][-1]["call"] == "GET /api.xro/2.0/Organisation"
    assert "HTTP 403" in result["evidence"][-1]["answer"]
    assert _results(report)[f.names[1]]["status"] == "healthy"


def test_an_idle_refresh_token_is_expiring(fleet: Any) -> None:
    f = fleet(1)
    _refreshed(f)
    (name,) = f.names
    f.write_state(name, refresh_token_issued_at=datetime.now(UTC) - timedelta(days=50))
    code, report = _health(f)
    assert code == 2
    result = _results(report)[name]
    assert result["status"] == "expiring"
    assert "idle for 50 days" in result["detail"]
    assert f.grant(name).last_health.status == "expiring"  # type: ignore[union-attr]
    assert f.grant(name).consecutive_failures == 0  # a warning, not a failure


def test_revoked_grant_is_reauthorize(fleet: Any) -> None:
    f = fleet(1)
    _refreshed(f)
    (name,) = f.names
    member = f.member(name)
    revoked = httpx.post(
        f"{f.base_url}/connect/revocation",
        data={"token": f.tokens(name).refresh_token},
        auth=(member.client_id, member.client_secret),
    )
    assert revoked.status_code == 200
    code, report = _health(f)
    assert code == 2
    result = _results(report)[name]
    # The access token is refused (401), the refresh that follows is refused too (invalid_grant).
    assert result["status"] == "reauthorize"
    assert "invalid_grant" in result["detail"]
    assert f.grant(name).reauthorize is not None


def test_scope_drift_never_connected_and_wrong_organization(fleet: Any) -> None:
    f = fleet(3)
    _refreshed(f)
    drift, wrong, never = f.names
    manifest = f.repo.manifest_path(drift)
    manifest.write_text(manifest.read_text().replace("    - email\n", "    - email\n    - accounting.payments\n"))
    other = f.repo.manifest_path(wrong)
    other.write_text(other.read_text().replace(f.member(wrong).tenant_id, "11111111-2222-4333-8444-555555555555"))
    (f.repo.state_dir / f"{never}.yaml").unlink()
    code, report = _health(f)
    assert code == 2
    results = _results(report)
    assert results[drift]["status"] == "scope-drift"
    assert "missing accounting.payments" in results[drift]["detail"]
    assert results[wrong]["status"] == "wrong-organization"
    assert results[wrong]["evidence"] == []  # settled offline: no call made
    assert results[never]["status"] == "never-connected"
    assert not (f.repo.state_dir / f"{never}.yaml").exists()  # no state is invented


def test_unreachable_after_retries_and_markdown(fleet: Any) -> None:
    f = fleet(1)
    _refreshed(f)
    f.control.set_faults(fail=[{"endpoint": "connections", "mode": "503", "count": 20}])
    from grantctl.maintenance import RetryPolicy

    outcome = run_health(f.repo, [], fmt="markdown", policy=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
    assert outcome.exit_code == 2
    assert "| Connection | Status | Details |" in outcome.output
    assert f"| `{f.names[0]}` | unreachable |" in outcome.output
    assert "failed after retries" in outcome.output
    assert f.grant(f.names[0]).last_health.status == "unreachable"  # type: ignore[union-attr]


def test_health_keeps_tokens_it_did_not_touch_byte_identical(fleet: Any) -> None:
    f = fleet(1)
    _refreshed(f)
    (name,) = f.names
    before = f.tokens(name)
    assert _health(f)[0] == 0
    assert f.tokens(name) == before
    state = (f.repo.state_dir / f"{name}.yaml").read_text()
    assert "last_health:" in state
    assert isinstance(before, Tokens)
