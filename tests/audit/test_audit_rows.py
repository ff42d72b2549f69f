"""build_rows: one row per connection from manifests and grants, with coverage and organisation checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from audit_helpers import DESIRED, OTHER_TENANT_ID, TENANT_ID, grant_document, manifest_document

from grantctl.audit import AuditRow, build_rows
from grantctl.models import Connection
from grantctl.state.model import Grant


def connection(name: str = "acme-ltd", **options: Any) -> Connection:
    return Connection.model_validate(manifest_document(name, **options))


def grant(name: str = "acme-ltd", **options: Any) -> Grant:
    return Grant.model_validate(grant_document(name, **options))


def only_row(connections: list[Connection], grants: dict[str, Grant]) -> AuditRow:
    rows = build_rows(connections, grants)
    assert len(rows) == 1
    return rows[0]


def test_a_grant_that_matches_its_manifest_has_nothing_missing_or_excess() -> None:
    row = only_row([connection()], {"acme-ltd": grant()})

    assert row.status == "connected"
    assert row.desired_scopes == tuple(sorted(DESIRED))
    assert row.granted_scopes == tuple(sorted(DESIRED))
    assert (row.missing_scopes, row.excess_scopes, row.findings) == ((), (), ())


def test_missing_and_excess_scopes_are_marked_and_named_in_the_findings() -> None:
    granted = [s for s in DESIRED if s != "accounting.invoices"] + ["payroll.employees"]
    row = only_row([connection()], {"acme-ltd": grant(scopes=granted)})

    assert row.missing_scopes == ("accounting.invoices",)
    assert row.excess_scopes == ("payroll.employees",)
    assert "missing (desired, not granted): accounting.invoices" in row.findings
    assert "excess (granted, not needed): payroll.employees" in row.findings


def test_coverage_follows_the_catalogue_not_string_equality() -> None:
    # A granted write scope covers its desired read variant; a broad Xero scope does not cover a granular one.
    desired = ["openid", "offline_access", "accounting.contacts.read", "accounting.invoices"]
    granted = ["openid", "offline_access", "accounting.contacts", "accounting.transactions"]
    row = only_row([connection(scopes=desired)], {"acme-ltd": grant(scopes=granted)})

    assert row.missing_scopes == ("accounting.invoices",)
    # Write access where read was wanted is more than needed: excess, like the broad scope.
    assert row.excess_scopes == ("accounting.contacts", "accounting.transactions")


def test_a_manifest_without_a_grant_is_not_connected_and_lists_no_missing_finding() -> None:
    row = only_row([connection()], {})

    assert row.status == "not-connected"
    assert row.tenant_id is None
    assert row.authorized_at is None
    assert row.missing_scopes == tuple(sorted(DESIRED))
    assert row.findings == ("not connected: no state file yet (the client has not consented)",)


def test_a_state_without_a_tenant_is_not_connected() -> None:
    row = only_row([connection()], {"acme-ltd": grant(tenant_id=None, scopes=[])})

    assert row.status == "not-connected"
    assert row.findings[0].startswith("not connected: the state has no tenant")


def test_an_orphan_state_gets_a_row_and_everything_it_holds_is_excess() -> None:
    row = only_row([], {"gone": grant("gone", scopes=["openid", "accounting.contacts"])})

    assert row.status == "orphan"
    assert (row.organization, row.owner, row.desired_scopes) == (None, None, ())
    assert row.excess_scopes == ("accounting.contacts", "openid")
    assert row.findings[0].startswith("orphan: a state file with no manifest")


def test_a_granted_tenant_other_than_the_pinned_one_is_flagged() -> None:
    row = only_row([connection()], {"acme-ltd": grant(tenant_id=OTHER_TENANT_ID, tenant_name="Other Ltd")})

    assert row.tenant_id == OTHER_TENANT_ID
    assert row.pinned_tenant_id == TENANT_ID
    assert row.tenant_mismatch == f"Acme Ltd ({TENANT_ID})"
    assert any(f.startswith("organisation mismatch: granted Other Ltd") for f in row.findings)


def test_without_a_pinned_tenant_the_organisation_name_is_compared() -> None:
    same = only_row([connection(tenant_id=None)], {"acme-ltd": grant(tenant_name="  acme   LTD ")})
    other = only_row([connection(tenant_id=None)], {"acme-ltd": grant(tenant_name="Acme Holdings")})

    assert same.tenant_mismatch is None
    assert other.tenant_mismatch == "Acme Ltd (tenant id not pinned; compared by name)"


def test_who_authorised_when_refresh_health_and_links_are_reported() -> None:
    links = [
        {
            "issued_at": "2026-11-20T09:00:00Z",
            "action": "connect",
            "scopes": list(DESIRED),
            "expires_at": "2026-11-27T09:00:00Z",
        },
        {
            "issued_at": "2026-12-24T09:00:00Z",
            "action": "extend",
            "scopes": list(DESIRED),
            "expires_at": "2026-12-31T09:00:00Z",
        },
    ]
    health = {"status": "expiring", "at": "2027-01-11T07:00:00Z", "detail": "refresh token idle 46 days"}
    row = only_row([connection()], {"acme-ltd": grant(links=links, last_health=health)})

    assert (row.authorized_by_name, row.authorized_by_email, row.authorized_by_user_id) == (
        "Sam Lee",
        "sam@acme.example",
        "u-1",
    )
    assert row.authorized_at == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert row.refreshed_at == datetime(2027, 1, 10, 6, tzinfo=UTC)
    assert (row.health_status, row.health_at) == ("expiring", datetime(2027, 1, 11, 7, tzinfo=UTC))
    assert row.health_detail == "refresh token idle 46 days"
    assert row.links_issued == 2
    assert row.last_link_issued_at == datetime(2026, 12, 24, 9, tzinfo=UTC)


def test_a_reauthorize_flag_becomes_a_finding() -> None:
    flag = {"reason": "invalid_grant on refresh", "at": "2027-01-12T06:00:00Z"}
    row = only_row([connection()], {"acme-ltd": grant(reauthorize=flag)})

    assert row.reauthorize_reason == "invalid_grant on refresh"
    assert "marked for reauthorization on 2027-01-12: invalid_grant on refresh" in row.findings


def test_rows_are_sorted_by_name_and_cover_manifests_and_orphans() -> None:
    rows = build_rows(
        [connection("zeta"), connection("alpha")],
        {"alpha": grant("alpha"), "mid": grant("mid")},
    )

    assert [(row.name, row.status) for row in rows] == [
        ("alpha", "connected"),
        ("mid", "orphan"),
        ("zeta", "not-connected"),
    ]


def test_a_grant_from_another_provider_than_the_manifest_covers_nothing() -> None:
    row = only_row(
        [connection()], {"acme-ltd": grant(provider="hubspot", scopes=["oauth", "crm.objects.contacts.read"])}
    )

    assert row.missing_scopes == tuple(sorted(DESIRED))
    assert row.excess_scopes == ("crm.objects.contacts.read", "oauth")
    assert "provider mismatch: the manifest says xero, the grant is hubspot" in row.findings
