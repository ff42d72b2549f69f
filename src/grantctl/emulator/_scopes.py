"""The emulator's own table of Xero scopes.

Kept apart from grantctl's catalogue on purpose: the emulator plays the provider, so it must not learn
what a scope is from the code it is testing. Sources: /work/shared/brief/provider-facts.md (Xero section).
"""

from __future__ import annotations

from datetime import date

#: Apps created on or after this day must use granular scopes (developer.xero.com/faq/granular-scopes).
GRANULAR_ONLY_FROM = date(2026, 3, 2)

_OPENID = ("openid", "profile", "email", "offline_access")

# Each of these exists as written and with a ".read" suffix.
_READ_WRITE = (
    "accounting.transactions",
    "accounting.settings",
    "accounting.contacts",
    "accounting.attachments",
    "accounting.invoices",
    "accounting.payments",
    "accounting.banktransactions",
    "accounting.manualjournals",
    "accounting.classicexpenses",
    "payroll.employees",
    "payroll.payruns",
    "payroll.payslip",
    "payroll.settings",
    "payroll.timesheets",
    "files",
    "assets",
    "projects",
)

_GRANULAR_REPORTS = (
    "accounting.reports.aged.read",
    "accounting.reports.balancesheet.read",
    "accounting.reports.profitandloss.read",
    "accounting.reports.trialbalance.read",
    # UNCONFIRMED in provider-facts.md; accepted so grantctl is not blocked if Xero does ship them.
    "accounting.reports.banksummary.read",
    "accounting.reports.budgetsummary.read",
    "accounting.reports.executivesummary.read",
    "accounting.reports.taxreports.read",
)

_READ_ONLY = (
    "accounting.reports.read",
    "accounting.journals.read",
    "accounting.budgets.read",
    "accounting.reports.tenninetynine.read",
    "finance.statements.read",
    "finance.cashvalidation.read",
    "finance.bankstatementsplus.read",
    *_GRANULAR_REPORTS,
)

_GRANULAR_TRANSACTIONS = (
    "accounting.invoices",
    "accounting.payments",
    "accounting.banktransactions",
    "accounting.manualjournals",
    "accounting.classicexpenses",
)

#: Broad scopes that were split into granular ones, and their replacements. Only these are refused
#: for new apps: accounting.settings / contacts / attachments were not split and stay valid.
BROAD_REPLACEMENTS: dict[str, tuple[str, ...]] = {
    "accounting.transactions": _GRANULAR_TRANSACTIONS,
    "accounting.transactions.read": tuple(f"{scope}.read" for scope in _GRANULAR_TRANSACTIONS),
    "accounting.reports.read": _GRANULAR_REPORTS[:4],
}

KNOWN_SCOPES: frozenset[str] = frozenset(
    (*_OPENID, *_READ_WRITE, *(f"{scope}.read" for scope in _READ_WRITE), *_READ_ONLY, "bankfeeds")
)

#: Either of these lets a token read the Organisation endpoint.
ORGANISATION_SCOPES = frozenset({"accounting.settings", "accounting.settings.read"})


def scope_problem(scope: str, app_created_on: date) -> str | None:
    """Why Xero would refuse ``scope`` for an app created on ``app_created_on``; ``None`` when it is fine.

    >>> scope_problem("accounting.transactions", date(2026, 4, 1)) is not None
    True
    """
    if scope not in KNOWN_SCOPES:
        return f"unknown scope {scope!r}"
    if scope in BROAD_REPLACEMENTS and app_created_on >= GRANULAR_ONLY_FROM:
        replacements = " ".join(BROAD_REPLACEMENTS[scope])
        return (
            f"broad scope {scope!r} is not available to apps created on or after "
            f"{GRANULAR_ONLY_FROM.isoformat()}; use granular scopes: {replacements}"
        )
    return None
