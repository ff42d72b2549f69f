"""Pure parts of refresh and health: due decisions, token rotation, health findings, reports, retries."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from grantctl.commands.health import health_exit_code
from grantctl.commands.refresh import refresh_exit_code
from grantctl.errors import SopsError
from grantctl.maintenance import Evidence, HealthResult, RefreshResult, RetryPolicy, RunCounters, decide
from grantctl.maintenance._credentials import CredentialsCache, credentials_from_mapping
from grantctl.maintenance.health import age_and_scope_findings, offline_status
from grantctl.maintenance.refresh import FORCE_MIN_AGE, rotated
from grantctl.maintenance.report import MARKDOWN_LIMIT, render_health, render_refresh
from grantctl.models import Connection, Refresh
from grantctl.providers import ClientCredentials, TokenSet
from grantctl.state.model import Grant, Reauthorize, Tenant, Tokens

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = Refresh()
SCOPES = ["accounting.invoices", "accounting.settings.read", "email", "offline_access", "openid"]


def _grant(**changes: object) -> Grant:
    base = Grant(
        connection="acme-ltd",
        provider="xero",
        tenant=Tenant(id="t-1", name="Acme Ltd"),
        granted_scopes=SCOPES,
        authorized_at=NOW - timedelta(days=3),
        refreshed_at=NOW - timedelta(hours=1),
        access_token_expires_at=NOW + timedelta(minutes=20),
        refresh_token_issued_at=NOW - timedelta(hours=1),
    )
    return base.model_copy(update=changes)


def _connection(**spec_changes: object) -> Connection:
    spec: dict[str, object] = {
        "provider": "xero",
        "organization": {"name": "Acme Ltd", "tenantId": None},
        "contact": {"name": "Sam Lee", "email": "sam@acme.example"},
        "app": {"credentials": "acme-ltd.secrets.yaml", "createdOn": "2026-11-20"},
        "scopes": SCOPES,
    }
    spec.update(spec_changes)
    return Connection.model_validate(
        {
            "apiVersion": "grantctl/v1",
            "kind": "Connection",
            "metadata": {"name": "acme-ltd", "owner": "jane@agency.example"},
            "spec": spec,
        }
    )


def _decide(grant: Grant | None, *, force: bool = False, started: datetime = NOW) -> tuple[bool, str]:
    decision = decide(grant, now=NOW, settings=SETTINGS, force=force, run_started=started)
    return decision.due, decision.reason


# -- due decisions ------------------------------------------------------------------------------------


def test_fresh_access_token_is_not_due() -> None:
    due, reason = _decide(_grant())
    assert not due
    assert "valid for 20 min" in reason


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [(timedelta(minutes=-3), "expired 3 min ago"), (timedelta(seconds=90), "expires in 90 s")],
)
def test_expired_or_expiring_access_token_is_due(expires_in: timedelta, expected: str) -> None:
    due, reason = _decide(_grant(access_token_expires_at=NOW + expires_in))
    assert due
    assert expected in reason


def test_unknown_expiry_is_due() -> None:
    assert _decide(_grant(access_token_expires_at=None))[0]


def test_idle_refresh_token_is_due_at_the_warning_age() -> None:
    idle = _grant(refresh_token_issued_at=NOW - timedelta(days=SETTINGS.warn_after_days))
    due, reason = _decide(idle)
    assert due
    assert "idle for 45 days" in reason
    younger = _grant(refresh_token_issued_at=NOW - timedelta(days=SETTINGS.warn_after_days - 1))
    assert not _decide(younger)[0]


def test_unconnected_and_reauthorize_are_never_due_even_forced() -> None:
    assert _decide(None, force=True) == (False, "not connected yet: `grantctl plan` shows the link to send")
    assert not _decide(_grant(tenant=None), force=True)[0]
    marked = _grant(reauthorize=Reauthorize(reason="invalid_grant", at=NOW))
    decision = decide(marked, now=NOW, settings=SETTINGS, force=True, run_started=NOW)
    assert not decision.due
    assert decision.attention


def test_force_refreshes_a_fresh_token() -> None:
    assert _decide(_grant(), force=True) == (True, "forced")


def test_force_skips_what_another_run_refreshed_after_this_run_started() -> None:
    started = NOW - timedelta(minutes=10)
    by_other_run = _grant(refreshed_at=NOW - timedelta(minutes=5))
    due, reason = _decide(by_other_run, force=True, started=started)
    assert not due
    assert "another run" in reason


def test_force_skips_a_refresh_younger_than_the_minimum_age() -> None:
    started = NOW
    just_now = _grant(refreshed_at=NOW - FORCE_MIN_AGE + timedelta(seconds=1))
    assert not _decide(just_now, force=True, started=started)[0]
    older = _grant(refreshed_at=NOW - FORCE_MIN_AGE - timedelta(seconds=1))
    assert _decide(older, force=True, started=started)[0]


# -- rotation -----------------------------------------------------------------------------------------


def _answer(refresh_token: str | None, id_token: str | None = None) -> TokenSet:
    return TokenSet(
        access_token="new-access",
        refresh_token=refresh_token,
        id_token=id_token,
        expires_at=NOW + timedelta(minutes=30),
        granted_scopes=("openid", "offline_access", "accounting.invoices"),
        auth_event_id="evt-2",
    )


def test_rotation_stores_the_new_refresh_token_and_resets_failures() -> None:
    grant = _grant(consecutive_failures=3, reauthorize=Reauthorize(reason="x", at=NOW))
    old = Tokens(access_token="old-access", refresh_token="old-refresh", id_token="old-id")
    new_grant, new_tokens = rotated(grant, old, _answer("new-refresh", "new-id"), now=NOW)
    assert new_tokens == Tokens(access_token="new-access", refresh_token="new-refresh", id_token="new-id")
    assert new_grant.refreshed_at == NOW
    assert new_grant.refresh_token_issued_at == NOW
    assert new_grant.access_token_expires_at == NOW + timedelta(minutes=30)
    assert new_grant.consecutive_failures == 0
    assert new_grant.reauthorize is None
    assert new_grant.granted_scopes == ["accounting.invoices", "offline_access", "openid"]
    assert new_grant.auth_event_id == "evt-2"


def test_a_response_without_a_refresh_token_keeps_the_old_one() -> None:
    old = Tokens(access_token="old-access", refresh_token="old-refresh", id_token="old-id")
    _, new_tokens = rotated(_grant(), old, _answer(None), now=NOW)
    assert new_tokens.refresh_token == "old-refresh"
    assert new_tokens.id_token == "old-id"
    assert new_tokens.access_token == "new-access"


# -- health findings ----------------------------------------------------------------------------------


def test_offline_statuses() -> None:
    connection = _connection()
    assert offline_status(connection, None) is not None
    assert offline_status(connection, None)[0] == "never-connected"  # type: ignore[index]
    marked = _grant(reauthorize=Reauthorize(reason="the provider refused", at=NOW))
    assert offline_status(connection, marked)[0] == "reauthorize"  # type: ignore[index]
    assert offline_status(connection, _grant()) is None
    other = _grant(tenant=Tenant(id="t-9", name="Acme Holdings"))
    status, detail = offline_status(connection, other)  # type: ignore[misc]
    assert status == "wrong-organization"
    assert "Acme Holdings" in detail
    pinned = _connection(organization={"name": "Acme Ltd", "tenantId": "t-2"})
    assert offline_status(pinned, _grant())[0] == "wrong-organization"  # type: ignore[index]
    # Names compare ignoring case and runs of whitespace, like the callback.
    spaced = _grant(tenant=Tenant(id="t-1", name="ACME   ltd"))
    assert offline_status(connection, spaced) is None


def test_idle_age_and_scope_findings() -> None:
    connection = _connection()
    assert age_and_scope_findings(connection, _grant(), now=NOW, settings=SETTINGS) == []
    idle = _grant(refresh_token_issued_at=NOW - timedelta(days=50))
    found = age_and_scope_findings(connection, idle, now=NOW, settings=SETTINGS)
    assert [status for status, _ in found] == ["expiring"]
    assert "50 days" in found[0][1]
    dead = _grant(refresh_token_issued_at=NOW - timedelta(days=61))
    assert [s for s, _ in age_and_scope_findings(connection, dead, now=NOW, settings=SETTINGS)] == ["reauthorize"]
    drift = _grant(granted_scopes=["accounting.transactions", "email", "offline_access", "openid"])
    (status, detail), *_ = age_and_scope_findings(connection, drift, now=NOW, settings=SETTINGS)
    assert status == "scope-drift"
    assert "missing accounting.invoices, accounting.settings.read" in detail
    assert "excess accounting.transactions" in detail


# -- reports and exit codes ---------------------------------------------------------------------------


def test_refresh_exit_codes() -> None:
    def result(outcome: str) -> RefreshResult:
        return RefreshResult("x", outcome, "")  # type: ignore[arg-type]

    assert refresh_exit_code([result("refreshed"), result("skipped")]) == 0
    assert refresh_exit_code([result("refreshed"), result("reauthorize")]) == 2
    assert refresh_exit_code([result("failed")]) == 2
    assert refresh_exit_code([result("reauthorize"), result("error")]) == 1
    assert refresh_exit_code([]) == 0


def test_health_exit_codes() -> None:
    def result(status: str) -> HealthResult:
        return HealthResult("x", status, "")  # type: ignore[arg-type]

    assert health_exit_code([result("healthy")]) == 0
    assert health_exit_code([result("healthy"), result("expiring")]) == 2
    assert health_exit_code([result("never-connected")]) == 2
    assert health_exit_code([result("revoked"), result("error")]) == 1


def test_json_reports_are_versioned_and_complete() -> None:
    counters = RunCounters()
    counters.record_status(200)
    counters.record_status(429)
    results = [
        RefreshResult("b", "refreshed", "forced", 2, (Evidence("refresh", "tokens refreshed"),)),
        RefreshResult("a", "skipped", "not due"),
    ]
    document = json.loads(render_refresh(results, counters, fmt="json", generated_at=NOW))
    assert document["apiVersion"] == "grantctl/v1"
    assert document["kind"] == "RefreshReport"
    assert document["generatedAt"] == "2026-12-01T12:00:00Z"
    assert document["summary"] == {"error": 0, "reauthorize": 0, "failed": 0, "refreshed": 1, "skipped": 1}
    assert document["calls"]["calls"] == 2
    assert document["calls"]["rateLimited"] == 1
    assert document["connections"][0]["evidence"] == [{"call": "refresh", "answer": "tokens refreshed"}]
    health = json.loads(render_health([HealthResult("a", "revoked", "gone")], counters, fmt="json", generated_at=NOW))
    assert health["kind"] == "HealthReport"
    assert health["summary"]["revoked"] == 1
    assert health["connections"][0]["status"] == "revoked"


def test_markdown_stays_under_the_github_limit_and_escapes_cells() -> None:
    results = [
        HealthResult(f"conn-{i:05d}", "revoked", "x" * 300 + " | <b>", (Evidence("connections list", "y" * 200),))
        for i in range(2_000)
    ]
    text = render_health(results, RunCounters(), fmt="markdown", generated_at=NOW)
    assert len(text) <= MARKDOWN_LIMIT + 1
    assert "more: run the command with `--format json`" in text
    assert "<b>" not in text
    assert "&#124;" in text


def test_text_report_lists_evidence_and_a_summary() -> None:
    results = [RefreshResult("acme-ltd", "reauthorize", "refused", 1, (Evidence("refresh", "invalid_grant"),))]
    text = render_refresh(results, RunCounters(), fmt="text", generated_at=NOW)
    assert "reauthorize  acme-ltd  refused" in text
    assert "refresh: invalid_grant" in text
    assert text.rstrip().endswith("0 rate-limited (429).")
    assert "1 to reauthorize" in text


# -- retries and credentials --------------------------------------------------------------------------


def test_retry_policy_is_bounded_and_honours_retry_after() -> None:
    policy = RetryPolicy(attempts=4, base_delay=0.5, max_delay=2.0, max_retry_after=30)
    assert policy.delay(1, 7.0) == 7.0
    assert policy.delay(1, 31.0) is None
    for attempt in range(1, 10):
        delay = policy.delay(attempt, None)
        assert delay is not None
        assert 0 < delay <= 2.0


def test_credentials_shape_is_checked_without_echoing_values(tmp_path: Path) -> None:
    path = tmp_path / "acme-ltd.secrets.yaml"
    assert credentials_from_mapping(path, {"client_id": "id ", "client_secret": "s3cr3t"}) == ClientCredentials(
        "id", "s3cr3t"
    )
    with pytest.raises(SopsError, match="has no client_secret") as caught:
        credentials_from_mapping(path, {"client_id": "the-id-value", "client_secret": ""})
    assert "the-id-value" not in str(caught.value)
    with pytest.raises(SopsError, match="expected a mapping"):
        credentials_from_mapping(path, ["not", "a", "mapping"])


def test_each_credentials_file_is_decrypted_once_even_when_asked_concurrently(tmp_path: Path) -> None:
    calls: list[Path] = []

    def reader(path: Path) -> ClientCredentials:
        calls.append(path)
        return ClientCredentials("id", "secret")

    async def run_blocking(func: object, *args: object) -> object:
        await asyncio.sleep(0.01)
        return func(*args)  # type: ignore[operator]

    async def main() -> None:
        cache = CredentialsCache(run_blocking, reader)
        path = tmp_path / "a.secrets.yaml"
        results = await asyncio.gather(*(cache.get(path) for _ in range(10)), cache.get(tmp_path / "b.secrets.yaml"))
        assert all(r.client_id == "id" for r in results)

    asyncio.run(main())
    assert sorted(p.name for p in calls) == ["a.secrets.yaml", "b.secrets.yaml"]


def test_created_on_fixture_is_a_granular_app() -> None:
    # Guards the fixture above: a broad-scope lint would make the health findings meaningless.
    assert _connection().spec.app.created_on == date(2026, 11, 20)
