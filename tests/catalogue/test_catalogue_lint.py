"""lint_scopes: every finding's severity, position, scope, code and wording."""

from __future__ import annotations

import datetime as dt

import pytest

from grantctl.catalogue import Catalogue, ScopeFinding, UnknownProviderError, lint_scopes

TODAY = dt.date(2026, 11, 1)  # inside the window where older Xero apps may still use broad scopes
NEW_APP = dt.date(2026, 3, 2)  # the first day Xero requires granular scopes
OLD_APP = dt.date(2025, 6, 1)
# A Xero scope list with nothing to complain about; tests add one problem at a time.
CLEAN = ["openid", "profile", "email", "offline_access", "accounting.invoices", "accounting.contacts"]
TRANSACTION_REPLACEMENTS = (
    "accounting.invoices, accounting.payments, accounting.banktransactions, "
    "accounting.manualjournals, accounting.classicexpenses"
)


def lint(scopes: list[str], *, created_on: dt.date | None = NEW_APP, today: dt.date = TODAY) -> list[ScopeFinding]:
    return lint_scopes("xero", scopes, created_on=created_on, today=today)


def only(findings: list[ScopeFinding]) -> ScopeFinding:
    assert len(findings) == 1, findings
    return findings[0]


@pytest.mark.parametrize("created_on", [NEW_APP, OLD_APP, None])
def test_clean_list_has_no_findings(created_on: dt.date | None) -> None:
    assert lint(CLEAN, created_on=created_on) == []


@pytest.mark.parametrize(
    ("typo", "message"),
    [
        ("acounting.invoices", "unknown xero scope 'acounting.invoices'; did you mean 'accounting.invoices'?"),
        ("Accounting.Invoices", "unknown xero scope 'Accounting.Invoices'; did you mean 'accounting.invoices'?"),
        ("invoices", "unknown xero scope 'invoices'; did you mean 'accounting.invoices'?"),
        ("offline-access", "unknown xero scope 'offline-access'; did you mean 'offline_access'?"),
        (
            "accounting.contact",
            "unknown xero scope 'accounting.contact'; did you mean 'accounting.contacts'?",
        ),
        (
            "payroll.employee.read",
            "unknown xero scope 'payroll.employee.read'; did you mean 'payroll.employees.read'?",
        ),
    ],
)
def test_unknown_scope_suggests_the_closest_name(typo: str, message: str) -> None:
    finding = only(lint([*CLEAN, typo]))
    assert finding == ScopeFinding("error", len(CLEAN), typo, message, "unknown-scope")


def test_unknown_scope_offers_several_names_when_they_are_equally_close() -> None:
    finding = only(lint([*CLEAN, "payroll.pay"]))
    assert finding.message.startswith("unknown xero scope 'payroll.pay'; did you mean ")
    assert "'payroll.payruns' or 'payroll.payslip'" in finding.message


def test_unknown_scope_without_any_similar_name_points_to_the_list() -> None:
    finding = only(lint([*CLEAN, "zzzz"]))
    assert finding.message == (
        "unknown xero scope 'zzzz'; run `grantctl scopes xero` to list the scopes grantctl knows, "
        "or see https://developer.xero.com/documentation/guides/oauth2/scopes/"
    )


def test_unknown_scope_gets_no_other_findings() -> None:
    # Even though 'accounting.transactionz' is close to a broad scope, it is only "unknown".
    finding = only(lint([*CLEAN, "accounting.transactionz"]))
    assert finding.code == "unknown-scope"


def test_duplicate_is_an_error_on_the_second_occurrence() -> None:
    finding = only(lint([*CLEAN, "accounting.contacts"]))
    assert finding == ScopeFinding(
        "error",
        len(CLEAN),
        "accounting.contacts",
        "duplicate scope 'accounting.contacts' (it is listed more than once); remove this one",
        "duplicate-scope",
    )


@pytest.mark.parametrize(
    ("broad", "replacements"),
    [
        ("accounting.transactions", TRANSACTION_REPLACEMENTS),
        ("accounting.transactions.read", TRANSACTION_REPLACEMENTS.replace(",", ".read,") + ".read"),
        (
            "accounting.reports.read",
            "accounting.reports.aged.read, accounting.reports.balancesheet.read, "
            "accounting.reports.profitandloss.read, accounting.reports.trialbalance.read, "
            "accounting.reports.banksummary.read (unconfirmed), "
            "accounting.reports.budgetsummary.read (unconfirmed), "
            "accounting.reports.executivesummary.read (unconfirmed), "
            "accounting.reports.taxreports.read (unconfirmed)",
        ),
    ],
)
def test_broad_scope_on_a_new_app_is_an_error_naming_replacements(broad: str, replacements: str) -> None:
    scopes = ["openid", "offline_access", broad]
    finding = only(lint(scopes, created_on=NEW_APP))
    assert finding == ScopeFinding(
        "error",
        2,
        broad,
        f"apps created on or after 2026-03-02 must use granular scopes: replace {broad!r} with "
        f"{replacements} (keep only those the integration needs)",
        "broad-scope",
    )


def test_broad_scope_on_an_app_created_long_after_the_cutoff_is_an_error() -> None:
    finding = only(lint(["openid", "offline_access", "accounting.transactions"], created_on=dt.date(2026, 11, 20)))
    assert finding.severity == "error"
    assert f"replace 'accounting.transactions' with {TRANSACTION_REPLACEMENTS}" in finding.message


def test_broad_scope_on_an_older_app_is_a_warning_with_the_deadline() -> None:
    finding = only(lint(["openid", "offline_access", "accounting.transactions"], created_on=dt.date(2026, 3, 1)))
    assert finding.severity == "warning"
    assert (finding.index, finding.scope, finding.code) == (2, "accounting.transactions", "broad-scope")
    assert "September 2027" in finding.message
    assert "every client must then consent again" in finding.message
    assert TRANSACTION_REPLACEMENTS in finding.message


def test_broad_scope_with_unknown_created_on_warns_and_asks_for_it() -> None:
    finding = only(lint(["openid", "offline_access", "accounting.reports.read"], created_on=None))
    assert finding.severity == "warning"
    assert "spec.app.createdOn is not set" in finding.message
    assert "2026-03-02" in finding.message
    assert "September 2027" in finding.message
    assert "set createdOn" in finding.message
    assert "every client must then consent again" in finding.message


@pytest.mark.parametrize("created_on", [OLD_APP, None])
def test_broad_scope_after_the_deadline_month_is_an_error(created_on: dt.date | None) -> None:
    scopes = ["openid", "offline_access", "accounting.transactions"]
    assert only(lint(scopes, created_on=created_on, today=dt.date(2027, 9, 30))).severity == "warning"
    finding = only(lint(scopes, created_on=created_on, today=dt.date(2027, 10, 1)))
    assert finding.severity == "error"
    assert finding.code == "broad-scope-deadline"
    assert "deadline (September 2027)" in finding.message
    assert f"replace it with {TRANSACTION_REPLACEMENTS}" in finding.message


def test_missing_offline_access_is_an_error_about_the_list() -> None:
    finding = only(lint(["openid", "accounting.invoices"]))
    assert finding == ScopeFinding(
        "error",
        None,
        "offline_access",
        "missing 'offline_access': without it Xero issues no refresh token and the connection stops "
        "working after 30 minutes; add offline_access to scopes",
        "missing-scope",
    )


def test_missing_openid_is_a_warning() -> None:
    finding = only(lint(["offline_access", "accounting.invoices"]))
    assert (finding.severity, finding.index, finding.scope) == ("warning", None, "openid")
    assert "cannot record who authorised the connection" in finding.message


@pytest.mark.parametrize(
    ("extra", "container"),
    [
        ("accounting.invoices.read", "accounting.invoices"),
        ("accounting.contacts.read", "accounting.contacts"),
    ],
)
def test_scope_included_in_another_is_redundant(extra: str, container: str) -> None:
    finding = only(lint([extra, *CLEAN]))
    assert finding == ScopeFinding(
        "warning",
        0,
        extra,
        f"redundant: {extra!r} is already included in {container!r}; remove {extra!r}",
        "redundant-scope",
    )


def test_broad_read_next_to_broad_write_is_both_broad_and_redundant() -> None:
    findings = lint(
        ["openid", "offline_access", "accounting.transactions", "accounting.transactions.read"], created_on=OLD_APP
    )
    assert [(f.index, f.code) for f in findings] == [
        (2, "broad-scope"),
        (3, "broad-scope"),
        (3, "redundant-scope"),
    ]


def test_broad_scope_does_not_make_granular_ones_redundant() -> None:
    findings = lint(["openid", "offline_access", "accounting.transactions", "accounting.invoices"], created_on=OLD_APP)
    assert [f.code for f in findings] == ["broad-scope"]


def test_unconfirmed_scope_is_a_warning() -> None:
    finding = only(lint([*CLEAN, "accounting.reports.taxreports.read"]))
    assert finding == ScopeFinding(
        "warning",
        len(CLEAN),
        "accounting.reports.taxreports.read",
        "'accounting.reports.taxreports.read' is not confirmed by Xero's documentation; check it exists "
        "before relying on it (the authorization may fail)",
        "unconfirmed-scope",
    )


def test_findings_come_in_list_order_then_list_wide() -> None:
    findings = lint(["accounting.invoices.read", "acounting.contacts", "accounting.invoices", "accounting.invoices"])
    assert [(f.index, f.code) for f in findings] == [
        (0, "redundant-scope"),
        (1, "unknown-scope"),
        (3, "duplicate-scope"),
        (None, "missing-scope"),
        (None, "missing-scope"),
    ]
    assert [f.scope for f in findings[-2:]] == ["offline_access", "openid"]


def test_empty_xero_list_reports_the_required_scopes() -> None:
    assert [(f.severity, f.scope) for f in lint([])] == [("error", "offline_access"), ("warning", "openid")]


def test_hubspot_needs_oauth_and_does_not_call_read_plus_write_redundant() -> None:
    scopes = ["crm.objects.contacts.read", "crm.objects.contacts.write"]
    finding = only(lint_scopes("hubspot", scopes, created_on=None, today=TODAY))
    assert finding == ScopeFinding(
        "error",
        None,
        "oauth",
        "missing 'oauth': HubSpot requires the 'oauth' scope on every app that uses OAuth; add oauth to scopes",
        "missing-scope",
    )
    assert lint_scopes("hubspot", ["oauth", *scopes], created_on=None, today=TODAY) == []


def test_hubspot_typo_uses_the_provider_name() -> None:
    finding = only(lint_scopes("hubspot", ["oauth", "crm.objects.contact.read"], created_on=None, today=TODAY))
    assert finding.message == (
        "unknown hubspot scope 'crm.objects.contact.read'; did you mean 'crm.objects.contacts.read'?"
    )


def test_pipedrive_full_makes_read_redundant_and_needs_nothing(pipedrive: Catalogue) -> None:
    assert lint_scopes(pipedrive, [], created_on=None, today=TODAY) == []
    finding = only(lint_scopes(pipedrive, ["deals:full", "deals:read"], created_on=None, today=TODAY))
    assert (finding.index, finding.code) == (1, "redundant-scope")
    assert finding.message == "redundant: 'deals:read' is already included in 'deals:full'; remove 'deals:read'"


def test_pipedrive_unconfirmed_names_pipedrive() -> None:
    finding = only(lint_scopes("pipedrive", ["goals:read"], created_on=None, today=TODAY))
    assert "not confirmed by Pipedrive's documentation" in finding.message


def test_unknown_provider_raises() -> None:
    with pytest.raises(UnknownProviderError):
        lint_scopes("salesforce", ["api"], created_on=None, today=TODAY)
