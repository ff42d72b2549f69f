"""Checks on the scope list of one manifest; each finding says what to do about it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from grantctl.catalogue._model import Catalogue, ScopeInfo, Severity
from grantctl.catalogue._registry import catalogue_for

# How much worse than the best match a "did you mean" candidate may be and still be offered, so
# "acounting.invoices" suggests only accounting.invoices, while a vaguer name lists a few.
_SUGGESTION_WINDOW = 0.05
_MAX_SUGGESTIONS = 3


@dataclass(frozen=True)
class ScopeFinding:
    """One problem with a manifest's scopes.

    ``index`` is the 0-based position of the offending scope in the manifest's ``scopes`` list (None
    when the problem is the list as a whole, such as a missing scope); ``code`` is a stable
    machine-readable kind: unknown-scope, duplicate-scope, broad-scope, broad-scope-deadline,
    redundant-scope, unconfirmed-scope or missing-scope.
    """

    severity: Severity
    index: int | None
    scope: str | None
    message: str
    code: str = ""


def lint_scopes(
    provider: str | Catalogue, scopes: Sequence[str], *, created_on: dt.date | None, today: dt.date
) -> list[ScopeFinding]:
    """Check a manifest's ``scopes`` against the provider's catalogue.

    ``created_on`` is the app's ``spec.app.createdOn`` (None when unknown), ``today`` the date
    deadlines are judged against. Findings come in list order, then findings about the whole list.

        >>> [f.message for f in lint_scopes("xero", ["acounting.invoices", "offline_access", "openid"],
        ...                                 created_on=None, today=dt.date(2026, 11, 1))]
        ["unknown xero scope 'acounting.invoices'; did you mean 'accounting.invoices'?"]
    """
    catalogue = provider if isinstance(provider, Catalogue) else catalogue_for(provider)
    findings: list[ScopeFinding] = []
    first_index: dict[str, int] = {}
    for index, scope in enumerate(scopes):
        if scope in first_index:
            findings.append(_duplicate(index, scope))
            continue
        first_index[scope] = index
        info = catalogue.get(scope)
        if info is None:
            findings.append(_unknown(catalogue, index, scope))
            continue
        findings.extend(_scope_findings(catalogue, index, info, created_on, today))
    findings.extend(_redundancy(catalogue, first_index))
    # Stable sort: per position, the order the checks ran in.
    findings.sort(key=lambda finding: finding.index or 0)
    findings.extend(_missing_required(catalogue, first_index))
    return findings


def _duplicate(index: int, scope: str) -> ScopeFinding:
    message = f"duplicate scope {scope!r} (it is listed more than once); remove this one"
    return ScopeFinding("error", index, scope, message, "duplicate-scope")


def _unknown(catalogue: Catalogue, index: int, scope: str) -> ScopeFinding:
    ranked = catalogue.ranked_matches(scope)
    best = ranked[0][1] if ranked else 0.0
    close = [name for name, ratio in ranked[:_MAX_SUGGESTIONS] if ratio >= best - _SUGGESTION_WINDOW]
    message = f"unknown {catalogue.provider} scope {scope!r}"
    if close:
        message += f"; did you mean {_either(close)}?"
    else:
        message += (
            f"; run `grantctl scopes {catalogue.provider}` to list the scopes grantctl knows, or see {catalogue.source}"
        )
    return ScopeFinding("error", index, scope, message, "unknown-scope")


def _scope_findings(
    catalogue: Catalogue, index: int, info: ScopeInfo, created_on: dt.date | None, today: dt.date
) -> list[ScopeFinding]:
    findings: list[ScopeFinding] = []
    if info.broad:
        findings.append(_broad(catalogue, index, info, created_on, today))
    if not info.confirmed:
        message = (
            f"{info.name!r} is not confirmed by {catalogue.display_name}'s documentation; "
            f"check it exists before relying on it (the authorization may fail)"
        )
        findings.append(ScopeFinding("warning", index, info.name, message, "unconfirmed-scope"))
    return findings


def _broad(
    catalogue: Catalogue, index: int, info: ScopeInfo, created_on: dt.date | None, today: dt.date
) -> ScopeFinding:
    replacements = _replacement_list(catalogue, info)
    cutoff = catalogue.granular_required_from
    deadline = catalogue.deadline_text()
    if cutoff is not None and created_on is not None and created_on >= cutoff:
        message = (
            f"apps created on or after {cutoff.isoformat()} must use granular scopes: "
            f"replace {info.name!r} with {replacements}"
        )
        return ScopeFinding("error", index, info.name, message, "broad-scope")
    if catalogue.deadline_passed(today):
        message = (
            f"{info.name!r} is a broad scope and {catalogue.display_name}'s deadline ({deadline}) for "
            f"moving to granular scopes has passed: replace it with {replacements}; "
            "every client must then consent again"
        )
        return ScopeFinding("error", index, info.name, message, "broad-scope-deadline")
    if created_on is None and cutoff is not None:
        message = (
            f"{info.name!r} is a broad scope and spec.app.createdOn is not set: apps created on or after "
            f"{cutoff.isoformat()} cannot use it, older apps must move to granular scopes by {deadline} "
            f"and every client must then consent again; set createdOn, and plan to replace it with "
            f"{replacements}"
        )
    else:
        message = (
            f"{info.name!r} is a broad scope: {catalogue.display_name} requires older apps to move to "
            f"granular scopes by {deadline}, and every client must then consent again; plan to replace "
            f"it with {replacements}"
        )
    return ScopeFinding("warning", index, info.name, message, "broad-scope")


def _replacement_list(catalogue: Catalogue, info: ScopeInfo) -> str:
    names = []
    for name in info.replaced_by:
        replacement = catalogue.get(name)
        names.append(name if replacement is None or replacement.confirmed else f"{name} (unconfirmed)")
    return ", ".join(names) + " (keep only those the integration needs)"


def _redundancy(catalogue: Catalogue, first_index: dict[str, int]) -> list[ScopeFinding]:
    findings = []
    for scope, index in first_index.items():
        including = [other for other in first_index if other != scope and scope in catalogue.closure(other)]
        if including:
            container = min(including, key=first_index.__getitem__)
            message = f"redundant: {scope!r} is already included in {container!r}; remove {scope!r}"
            findings.append(ScopeFinding("warning", index, scope, message, "redundant-scope"))
    return findings


def _missing_required(catalogue: Catalogue, listed: dict[str, int]) -> list[ScopeFinding]:
    findings = []
    for scope, requirement in catalogue.required_scopes.items():
        if scope not in listed:
            message = f"missing {scope!r}: {requirement.why}"
            findings.append(ScopeFinding(requirement.severity, None, scope, message, "missing-scope"))
    return findings


def _either(names: list[str]) -> str:
    quoted = [repr(name) for name in names]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
