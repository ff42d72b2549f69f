"""The planner, table-driven: one manifest and its grant in, the exact actions out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from grantctl.plan import PlanSettings, build_plan

NO_GRANT = None
DESIRED = ("openid", "email", "offline_access", "accounting.invoices", "accounting.settings.read")  # = conftest.DESIRED
INVOICES_WRITE = ("openid", "offline_access", "accounting.invoices")


@dataclass
class Case:
    id: str
    manifest: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] | None = field(default_factory=dict)  # None: no state file
    kinds: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # label -> value on the first action
    absent_labels: tuple[str, ...] = ()


T1 = "8c5b3a1e-0000-4000-8000-000000000001"  # = conftest.TENANT_ID, pinned by default
T2 = "8c5b3a1e-0000-4000-8000-0000000000ff"
JAN_10 = "2027-01-10T00:00:00Z"

CASES = [
    Case("match-pinned", kinds=[]),
    Case("connect-no-state", state=NO_GRANT, kinds=["connect"]),
    Case("connect-state-without-tenant", state={"tenant_id": None}, kinds=["connect"],
         evidence={"state": "present, but consent was never completed (no tenant)"}),
    Case("pin-unpinned-same-name", manifest={"tenant_id": None}, state={"tenant_name": "  ACME   ltd "},
         kinds=["pin"], evidence={"suggested edit": f"spec.organization.tenantId: {T1}"}),
    Case("extend-missing-scope", state={"scopes": ["openid", "email", "offline_access", "accounting.settings.read"]},
         kinds=["extend"], evidence={"missing": ("accounting.invoices",)}, absent_labels=("why", "excess")),
    Case("extend-read-granted-write-desired", manifest={"scopes": INVOICES_WRITE},
         state={"scopes": ["openid", "offline_access", "accounting.invoices.read"]}, kinds=["extend"],
         evidence={"missing": ("accounting.invoices",),
                   "why": "granted 'accounting.invoices.read' gives less access than 'accounting.invoices': "
                          "the client must consent again to 'accounting.invoices'"}),
    Case("extend-broad-does-not-cover-granular",
         manifest={"scopes": ("openid", "offline_access", "accounting.transactions", "accounting.invoices")},
         state={"scopes": ["openid", "offline_access", "accounting.transactions"]}, kinds=["extend"],
         evidence={"missing": ("accounting.invoices",),
                   "why": "granted broad 'accounting.transactions' does not satisfy granular 'accounting.invoices': "
                          "the client must consent again"}),
    Case("reduce-broad-to-granular-migration", manifest={"scopes": INVOICES_WRITE},
         state={"scopes": ["openid", "offline_access", "accounting.transactions"]}, kinds=["reduce"],
         evidence={"excess": ("accounting.transactions",), "missing": ("accounting.invoices",)}),
    Case("reduce-excess-scope", state={"scopes": [*DESIRED, "payroll.employees"]},
         kinds=["reduce"], evidence={"excess": ("payroll.employees",)}, absent_labels=("missing",)),
    Case("reduce-write-granted-read-desired",
         manifest={"scopes": ("openid", "offline_access", "accounting.settings.read")},
         state={"scopes": ["openid", "offline_access", "accounting.settings"]}, kinds=["reduce"],
         evidence={"excess": ("accounting.settings",)}),
    Case("write-desired-read-also-granted-is-fine", manifest={"scopes": INVOICES_WRITE},
         state={"scopes": [*INVOICES_WRITE, "accounting.invoices.read"]}, kinds=[]),
    Case("wrong-org-pinned-id", state={"tenant_id": T2}, kinds=["wrong-organization"],
         evidence={"expected": f"Acme Ltd (tenantId {T1})"}),
    Case("wrong-org-unpinned-name", manifest={"tenant_id": None}, state={"tenant_name": "Acme Holdings"},
         kinds=["wrong-organization"], evidence={"tenant": f"Acme Holdings (tenantId {T1})"}),
    Case("wrong-org-and-missing-scopes-is-one-action",
         state={"tenant_id": T2, "tenant_name": "Other Co", "scopes": ["openid", "offline_access"]},
         kinds=["wrong-organization"],
         evidence={"missing": ("accounting.invoices", "accounting.settings.read", "email")}),
    Case("pinned-tenant-renamed-is-not-wrong", state={"tenant_name": "Acme Limited"}, kinds=[]),
    Case("reauthorize-invalid-grant",
         state={"reauthorize": {"reason": "invalid_grant on refresh", "at": "2027-01-14T00:00:00Z"}},
         kinds=["reauthorize"],
         evidence={"cause": "marked for reauthorization on 2027-01-14: invalid_grant on refresh"}),
    Case("reauthorize-expired-token", state={"idle_days": 61}, kinds=["reauthorize"],
         evidence={"cause": "refresh token unused for 61 days; it expires after 60"}),
    Case("reauthorize-health-revoked",
         state={"last_health": {"status": "revoked", "at": JAN_10, "detail": "tenant not in /connections"}},
         kinds=["reauthorize"],
         evidence={"cause": "last health check on 2027-01-10 said revoked: tenant not in /connections"}),
    Case("healthy-health-is-no-action", state={"last_health": {"status": "healthy", "at": JAN_10}}, kinds=[]),
    Case("reauthorize-and-wrong-org-and-excess-is-one-action", manifest={"tenant_id": None},
         state={"idle_days": 90, "tenant_name": "Other Co", "scopes": [*DESIRED, "files"]}, kinds=["reauthorize"],
         evidence={"expected": "Acme Ltd (not pinned; compared by name)", "excess": ("files",)}),
    Case("refresh-idle-at-warning-age", state={"idle_days": 45}, kinds=["refresh"]),
    Case("no-refresh-one-day-before-warning", state={"idle_days": 44}, kinds=[]),
    Case("refresh-on-last-day", state={"idle_days": 59}, kinds=["refresh"],
         evidence={"refresh token": "59 days since the refresh token was issued (warn after 45, expires after 60)"}),
    Case("refresh-beside-extend", state={"idle_days": 50, "scopes": ["openid", "email", "offline_access"]},
         kinds=["extend", "refresh"]),
    Case("no-refresh-before-a-revoke", state={"idle_days": 50, "scopes": [*DESIRED, "files"]}, kinds=["reduce"]),
    Case("refresh-and-pin", manifest={"tenant_id": None}, state={"idle_days": 46}, kinds=["refresh", "pin"]),
    Case("provider-switched", manifest={"provider": "hubspot", "scopes": ("oauth", "crm.objects.contacts.read")},
         kinds=["reduce"], evidence={"provider": "xero -> hubspot"}),
    Case("pipedrive-extend-notes-registration",
         manifest={"provider": "pipedrive", "scopes": ("base", "deals:full")},
         state={"provider": "pipedrive", "scopes": ["base", "deals:read"]}, kinds=["extend"],
         evidence={"missing": ("deals:full",)}),
]  # fmt: skip


def _grant_for(make: Any, case: Case) -> Any:
    if case.state is None:
        return None
    return make.grant("acme-ltd", **case.state)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_planner_table(make: Any, case: Case) -> None:
    manifest = make.connection("acme-ltd", **case.manifest)
    the_grant = _grant_for(make, case)
    plan = build_plan([manifest], {"acme-ltd": the_grant} if the_grant else {}, now=make.NOW)

    assert [action.kind for action in plan.actions] == case.kinds
    assert plan.unchanged == (() if case.kinds else ("acme-ltd",))
    if not case.kinds:
        return
    first = plan.actions[0]
    lines = {line.label: line.value for line in first.evidence}
    for label, value in case.evidence.items():
        assert lines.get(label) == value, (label, first.evidence)
    for label in case.absent_labels:
        assert label not in lines


@pytest.mark.parametrize("case", [c for c in CASES if c.kinds and c.kinds[0] != "pin"], ids=lambda c: c.id)
def test_every_link_action_asks_for_the_desired_set_and_nothing_else_does(make: Any, case: Case) -> None:
    manifest = make.connection("acme-ltd", **case.manifest)
    the_grant = _grant_for(make, case)
    plan = build_plan([manifest], {"acme-ltd": the_grant} if the_grant else {}, now=make.NOW)

    for action in plan.actions:
        if action.kind in ("refresh", "pin", "orphan"):
            assert action.scopes == ()
        else:
            assert action.scopes == tuple(sorted(manifest.spec.scopes))
            assert "authorization link for the desired scopes to Sam Lee <sam@acme.example>" in action.apply


def test_table_uses_the_fixture_constants(make: Any) -> None:
    assert (DESIRED, T1) == (make.DESIRED, make.TENANT_ID)


def test_symbols_and_destructive_flags(make: Any) -> None:
    plan = build_plan(
        [
            make.connection("a-new"),
            make.connection("b-extend"),
            make.connection("c-reduce"),
            make.connection("d-wrong", tenant_id=None),
            make.connection("e-stale"),
        ],
        {
            "b-extend": make.grant("b-extend", scopes=["openid"]),
            "c-reduce": make.grant("c-reduce", scopes=[*make.DESIRED, "files"]),
            "d-wrong": make.grant("d-wrong", tenant_name="Wrong Co"),
            "e-stale": make.grant("e-stale", idle_days=50),
            "f-orphan": make.grant("f-orphan"),
        },
        now=make.NOW,
    )

    found = [(a.connection, a.symbol, a.kind, a.destructive) for a in plan.actions]
    assert found == [
        ("a-new", "+", "connect", False),
        ("b-extend", "~", "extend", False),
        ("c-reduce", "-/+", "reduce", True),
        ("d-wrong", "!", "wrong-organization", True),
        ("e-stale", "~", "refresh", False),
        ("f-orphan", "-", "orphan", True),
    ]
    assert plan.destructive_count == 3
    assert plan.counts["connect"] == 1
    assert plan.counts["pin"] == 0


def test_wrong_organization_names_the_tenant_to_disconnect(make: Any) -> None:
    plan = build_plan(
        [make.connection()],
        {"acme-ltd": make.grant(tenant_id=make.OTHER_TENANT_ID, tenant_name="Other Co")},
        now=make.NOW,
    )

    (action,) = plan.actions
    assert action.tenant_id == make.OTHER_TENANT_ID
    assert action.apply.startswith("disconnect Other Co, then issue an authorization link")


def test_reduce_says_revoke_then_link(make: Any) -> None:
    plan = build_plan([make.connection()], {"acme-ltd": make.grant(scopes=[*make.DESIRED, "files"])}, now=make.NOW)

    (action,) = plan.actions
    assert action.apply.startswith("revoke the grant")
    assert "Xero only removes scopes by revoking and consenting again" in action.reason


def test_extend_says_when_broad_scopes_do_not_satisfy_granular_ones(make: Any) -> None:
    desired = ("openid", "offline_access", "accounting.transactions", "accounting.invoices")
    plan = build_plan(
        [make.connection(scopes=desired)],
        {"acme-ltd": make.grant(scopes=["openid", "offline_access", "accounting.transactions"])},
        now=make.NOW,
    )

    assert "broad scopes, which do not satisfy the granular scopes" in plan.actions[0].reason


def test_pipedrive_links_cannot_change_scopes(make: Any) -> None:
    plan = build_plan(
        [make.connection(provider="pipedrive", scopes=("base", "deals:full"))],
        {"acme-ltd": make.grant(provider="pipedrive", scopes=["base", "deals:read"])},
        now=make.NOW,
    )

    assert "Pipedrive fixes scopes when the app is registered" in plan.actions[0].apply


@pytest.mark.parametrize(
    ("extra", "expected_apply"),
    [
        ({}, "revoke the grant at Xero (removes the app's access to Gone Ltd), then delete the state document"),
        (
            {"idle_days": 75},
            "revoke the grant at Xero (removes the app's access to Gone Ltd), then delete the state document "
            "(the refresh token is no longer usable, so the revoke may find nothing to remove)",
        ),
        ({"tenant_id": None}, "delete the state document; there is no grant to revoke"),
    ],
    ids=["orphan", "orphan-with-expired-token", "orphan-never-connected"],
)
def test_orphans(make: Any, extra: dict[str, Any], expected_apply: str) -> None:
    plan = build_plan([], {"gone": make.grant("gone", tenant_name="Gone Ltd", **extra)}, now=make.NOW)

    (action,) = plan.actions
    assert (action.kind, action.symbol, action.destructive) == ("orphan", "-", True)
    assert action.apply == expected_apply
    assert plan.unchanged == ()


def test_orphan_with_expired_token_lists_why_in_evidence(make: Any) -> None:
    plan = build_plan([], {"gone": make.grant("gone", idle_days=75)}, now=make.NOW)

    lines = [str(line) for line in plan.actions[0].evidence]
    assert "token: refresh token unused for 75 days; it expires after 60" in lines
    assert plan.actions[0].tenant_id == make.TENANT_ID


def test_settings_come_from_the_config(make: Any) -> None:
    from grantctl.models import Config

    config = Config.model_validate(
        {"apiVersion": "grantctl/v1", "kind": "Config", "publicUrl": "https://c.example",
         "refresh": {"warnAfterDays": 20, "expireAfterDays": 30}}
    )  # fmt: skip
    settings = PlanSettings.from_config(config)
    connections = [make.connection("idle-20"), make.connection("idle-30")]
    grants = {"idle-20": make.grant("idle-20", idle_days=20), "idle-30": make.grant("idle-30", idle_days=30)}

    plan = build_plan(connections, grants, now=make.NOW, settings=settings)

    assert [(a.connection, a.kind) for a in plan.actions] == [("idle-20", "refresh"), ("idle-30", "reauthorize")]


def test_ages_count_whole_days(make: Any) -> None:
    from datetime import timedelta

    almost = make.grant(idle_days=0, refresh_token_issued_at=make.NOW - timedelta(days=45) + timedelta(seconds=1))
    plan = build_plan([make.connection()], {"acme-ltd": almost}, now=make.NOW)

    assert plan.actions == ()


def test_now_must_carry_a_timezone(make: Any) -> None:
    with pytest.raises(ValueError, match="timezone"):
        build_plan([make.connection()], {}, now=datetime(2027, 1, 1))


def test_an_unpinned_hubspot_hub_is_not_a_wrong_organisation_but_should_be_pinned(make: Any) -> None:
    scopes = ["oauth", "crm.objects.contacts.read"]
    hub = make.connection(provider="hubspot", organization="Northwind Traders", tenant_id=None, scopes=scopes)
    granted = make.grant(provider="hubspot", tenant_id="12345", tenant_name="northwind.hubspot.com", scopes=scopes)
    plan = build_plan([hub], {"acme-ltd": granted}, now=make.NOW)
    assert [action.kind for action in plan.actions] == ["pin"]
