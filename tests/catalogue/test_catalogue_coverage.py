"""covers / why_not_covered / missing_scopes / excess_scopes / describe / closest."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grantctl.catalogue import (
    Catalogue,
    catalogue_for,
    covers,
    describe,
    excess_scopes,
    missing_scopes,
    why_not_covered,
)


@pytest.mark.parametrize(
    ("provider", "granted", "desired", "expected"),
    [
        # a scope covers itself
        ("xero", ["accounting.invoices"], "accounting.invoices", True),
        # write covers its .read
        ("xero", ["accounting.invoices"], "accounting.invoices.read", True),
        ("xero", ["accounting.transactions"], "accounting.transactions.read", True),
        # ... but not the other way round
        ("xero", ["accounting.invoices.read"], "accounting.invoices", False),
        # a broad grant does not cover granular scopes, write or read
        ("xero", ["accounting.transactions"], "accounting.invoices", False),
        ("xero", ["accounting.transactions"], "accounting.invoices.read", False),
        ("xero", ["accounting.reports.read"], "accounting.reports.aged.read", False),
        # nor does a granular grant cover the broad scope
        ("xero", ["accounting.invoices", "accounting.payments"], "accounting.transactions", False),
        # identity scopes and offline_access are compared like any other
        ("xero", ["openid", "email"], "profile", False),
        ("xero", ["openid", "offline_access"], "offline_access", True),
        ("xero", [], "openid", False),
        # unknown granted scopes cover only themselves
        ("xero", ["accounting.future"], "accounting.future", True),
        ("xero", ["accounting.future"], "accounting.invoices", False),
        # HubSpot: write does not cover read
        ("hubspot", ["crm.objects.contacts.write"], "crm.objects.contacts.read", False),
        ("hubspot", ["crm.objects.contacts.read"], "crm.objects.contacts.read", True),
        # Pipedrive: full covers read; base is always granted
        ("pipedrive", ["deals:full"], "deals:read", True),
        ("pipedrive", ["deals:read"], "deals:full", False),
        ("pipedrive", [], "base", True),
    ],
)
def test_covers(provider: str, granted: list[str], desired: str, expected: bool) -> None:
    catalogue = catalogue_for(provider)
    assert covers(catalogue, granted, desired) is expected
    assert (why_not_covered(catalogue, granted, desired) is None) is expected
    assert (missing_scopes(provider, granted, [desired]) == []) is expected


@pytest.mark.parametrize(
    ("granted", "desired", "reason"),
    [
        (
            ["accounting.transactions"],
            "accounting.invoices",
            "granted broad 'accounting.transactions' does not satisfy granular 'accounting.invoices': "
            "the client must consent again",
        ),
        (
            ["offline_access", "accounting.transactions"],
            "accounting.payments.read",
            "granted broad 'accounting.transactions' does not satisfy granular 'accounting.payments.read': "
            "the client must consent again",
        ),
        (
            ["accounting.transactions.read"],
            "accounting.invoices.read",
            "granted broad 'accounting.transactions.read' does not satisfy granular 'accounting.invoices.read': "
            "the client must consent again",
        ),
        (
            ["accounting.reports.read"],
            "accounting.reports.profitandloss.read",
            "granted broad 'accounting.reports.read' does not satisfy granular "
            "'accounting.reports.profitandloss.read': the client must consent again",
        ),
        (
            ["accounting.invoices.read"],
            "accounting.invoices",
            "granted 'accounting.invoices.read' gives less access than 'accounting.invoices': "
            "the client must consent again to 'accounting.invoices'",
        ),
        (
            ["openid"],
            "offline_access",
            "'offline_access' was not granted: the client must consent to it",
        ),
    ],
)
def test_why_not_covered_explains(granted: list[str], desired: str, reason: str) -> None:
    assert why_not_covered(catalogue_for("xero"), granted, desired) == reason


def test_broad_read_grant_does_not_claim_to_block_granular_write() -> None:
    # accounting.transactions.read never gave write access, so the "broad vs granular" story is wrong here.
    reason = why_not_covered(catalogue_for("xero"), ["accounting.transactions.read"], "accounting.invoices")
    assert reason == "'accounting.invoices' was not granted: the client must consent to it"


def test_missing_and_excess_for_a_migration_to_granular() -> None:
    granted = ["openid", "offline_access", "accounting.transactions", "accounting.contacts"]
    desired = ["openid", "offline_access", "accounting.invoices", "accounting.payments.read", "accounting.contacts"]
    assert missing_scopes("xero", granted, desired) == ["accounting.invoices", "accounting.payments.read"]
    assert excess_scopes("xero", granted, desired) == ["accounting.transactions"]


@pytest.mark.parametrize(
    ("granted", "desired", "missing", "excess"),
    [
        ([], [], [], []),
        ([], ["openid", "offline_access"], ["offline_access", "openid"], []),
        (["openid", "offline_access"], [], [], ["offline_access", "openid"]),
        # a harmless .read granted next to its desired write scope is not excess
        (["accounting.invoices", "accounting.invoices.read"], ["accounting.invoices"], [], []),
        # write granted, only read desired: the write scope gives more than asked
        (["accounting.invoices"], ["accounting.invoices.read"], [], ["accounting.invoices"]),
        # output is sorted and de-duplicated
        (["b.unknown", "a.unknown", "a.unknown"], ["z.unknown", "y.unknown", "y.unknown"],
         ["y.unknown", "z.unknown"], ["a.unknown", "b.unknown"]),
    ],
)  # fmt: skip
def test_missing_and_excess_table(
    granted: list[str], desired: list[str], missing: list[str], excess: list[str]
) -> None:
    assert missing_scopes("xero", granted, desired) == missing
    assert excess_scopes("xero", granted, desired) == excess


def test_pipedrive_base_is_never_missing_or_excess() -> None:
    assert missing_scopes("pipedrive", ["deals:full"], ["base", "deals:read"]) == []
    assert excess_scopes("pipedrive", ["base", "deals:full"], ["deals:full"]) == []
    assert excess_scopes("pipedrive", ["base", "deals:full"], ["deals:read"]) == ["deals:full"]


def test_hubspot_write_without_read_is_missing_the_read() -> None:
    granted = ["oauth", "crm.objects.deals.write"]
    desired = ["oauth", "crm.objects.deals.read", "crm.objects.deals.write"]
    assert missing_scopes("hubspot", granted, desired) == ["crm.objects.deals.read"]
    assert excess_scopes("hubspot", granted, desired) == []


def test_functions_accept_a_catalogue_or_a_provider_name(xero: Catalogue) -> None:
    assert missing_scopes(xero, ["accounting.transactions"], ["accounting.invoices"]) == ["accounting.invoices"]
    assert excess_scopes(xero, ["accounting.transactions"], ["accounting.invoices"]) == ["accounting.transactions"]
    assert describe(xero, "accounting.invoices") == describe("xero", "accounting.invoices")


XERO_NAMES = [*sorted(catalogue_for("xero").scopes), "not.a.scope"]


@settings(max_examples=150, deadline=None, database=None)  # no .hypothesis/ dir in the repo
@given(
    granted=st.lists(st.sampled_from(XERO_NAMES), max_size=8),
    desired=st.lists(st.sampled_from(XERO_NAMES), max_size=8),
)
def test_missing_and_excess_agree_with_covers(granted: list[str], desired: list[str]) -> None:
    xero = catalogue_for("xero")
    missing = missing_scopes(xero, granted, desired)
    assert missing == sorted({d for d in desired if not covers(xero, granted, d)})
    excess = excess_scopes(xero, granted, desired)
    assert set(excess) <= set(granted)
    # nothing is excess when the grant is exactly what is desired, and nothing is then missing
    assert excess_scopes(xero, desired, desired) == []
    assert missing_scopes(xero, desired, desired) == []
    # excess = exactly the granted scopes outside what the desired scopes give access to
    wanted = xero.expand(desired)
    assert excess == sorted({g for g in granted if g not in wanted})


def test_ten_thousand_connections_stay_fast() -> None:
    xero = catalogue_for("xero")
    granted = [
        "openid",
        "email",
        "profile",
        "offline_access",
        "accounting.transactions",
        "accounting.contacts",
        "accounting.settings.read",
        "payroll.employees",
    ]
    desired = ["openid", "email", "profile", "offline_access", "accounting.invoices", "accounting.payments",
               "accounting.contacts", "accounting.settings.read", "accounting.reports.aged.read"]  # fmt: skip
    started = time.perf_counter()
    for _ in range(10_000):
        missing_scopes(xero, granted, desired)
        excess_scopes(xero, granted, desired)
    elapsed = time.perf_counter() - started
    # ~0.1 s on a laptop; the bound only catches an accidental quadratic or per-call reload.
    assert elapsed < 2.0


@pytest.mark.parametrize(
    ("provider", "scope", "text"),
    [
        ("xero", "accounting.invoices", "Read, create and update invoices and bills"),
        ("xero", "accounting.invoices.read", "Read invoices and bills"),
        ("xero", "offline_access", "Stay connected, so the app keeps working without asking you to sign in again"),
        ("hubspot", "crm.objects.contacts.write", "Create, update and delete contacts (does not include reading them)"),
        ("pipedrive", "base", "See your user settings and the account's currencies (always granted)"),
        # unknown scopes fall back to their name, so a page listing a grant never breaks
        ("xero", "accounting.future", "accounting.future"),
    ],
)  # fmt: skip
def test_describe(provider: str, scope: str, text: str) -> None:
    assert describe(provider, scope) == text


@pytest.mark.parametrize(
    ("provider", "name", "n", "expected"),
    [
        ("xero", "acounting.invoices", 1, ["accounting.invoices"]),
        ("xero", "acounting.invoices", 2, ["accounting.invoices", "accounting.invoices.read"]),
        ("xero", "ACCOUNTING.SETTINGS", 1, ["accounting.settings"]),
        ("xero", " offline_access ", 1, ["offline_access"]),
        ("xero", "invoices", 3, ["accounting.invoices"]),
        ("xero", "zzzz", 3, []),
        ("hubspot", "crm.objects.deal.write", 1, ["crm.objects.deals.write"]),
        ("pipedrive", "deals:ful", 1, ["deals:full"]),
        ("pipedrive", "deals", 2, ["deals:full", "deals:read"]),
    ],
)
def test_closest(provider: str, name: str, n: int, expected: list[str]) -> None:
    assert catalogue_for(provider).closest(name, n) == expected


def test_closest_defaults_to_three(xero: Catalogue) -> None:
    assert len(xero.closest("accounting.report")) == 3
    assert xero.closest("accounting.report")[0] == "accounting.reports.read"
