"""The catalogue data model, and turning a parsed YAML document into a checked :class:`Catalogue`.

Nothing here reads files or imports YAML: :mod:`grantctl.catalogue._registry` does that, so that
``parse_catalogue`` can be tested (and reused for catalogue overrides) with plain dictionaries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from grantctl.errors import GrantctlError

Access = Literal["read", "write", "identity"]
Severity = Literal["error", "warning"]

_ACCESS: frozenset[str] = frozenset({"read", "write", "identity"})
_SEVERITIES: frozenset[str] = frozenset({"error", "warning"})
_TOP_KEYS: frozenset[str] = frozenset(
    {
        "provider",
        "display_name",
        "source",
        "scope_param",
        "refresh_requires",
        "granular_required_from",
        "broad_deadline",
        "required_scopes",
        "implicit_scopes",
        "scopes",
    }
)
_SCOPE_KEYS: frozenset[str] = frozenset({"description", "access", "implies", "broad", "replaced_by", "confirmed"})
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class ScopeInfo:
    """One scope of one provider.

    ``implies`` lists the scopes this one directly includes (a write scope includes its read
    variant); ``broad`` scopes name their granular ``replaced_by`` scopes, which they do NOT imply.
    """

    name: str
    description: str
    access: Access
    implies: frozenset[str] = frozenset()
    broad: bool = False
    replaced_by: tuple[str, ...] = ()
    confirmed: bool = True


@dataclass(frozen=True)
class Requirement:
    """A scope every manifest of a provider should list, how bad leaving it out is, and why."""

    scope: str
    severity: Severity
    why: str


# eq=False: a catalogue is a loaded singleton; identity equality keeps it hashable (usable as a
# cache key) even though it holds mappings.
@dataclass(frozen=True, eq=False)
class Catalogue:
    """The scopes of one provider plus the rules that go with them.

    Example::

        >>> from grantctl.catalogue import catalogue_for
        >>> xero = catalogue_for("xero")
        >>> xero.get("accounting.invoices").description
        'Read, create and update invoices and bills'
        >>> xero.closest("acounting.invoices", 1)
        ['accounting.invoices']
    """

    provider: str
    scopes: Mapping[str, ScopeInfo]
    granular_required_from: dt.date | None
    broad_deadline: str | None
    refresh_scope: str | None
    scope_param: bool
    display_name: str = ""
    source: str = ""
    required_scopes: Mapping[str, Requirement] = field(default_factory=dict)
    implicit_scopes: frozenset[str] = frozenset()
    # name -> the scope itself plus everything it implies, transitively; computed once at load time
    # so coverage checks are a set lookup per scope.
    closures: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    granular_scopes: frozenset[str] = field(default=frozenset(), repr=False)

    def __repr__(self) -> str:
        return f"Catalogue(provider={self.provider!r}, scopes={len(self.scopes)})"

    def get(self, name: str) -> ScopeInfo | None:
        """The scope called ``name``, or None when this provider has no such scope."""
        return self.scopes.get(name)

    def closest(self, name: str, n: int = 3) -> list[str]:
        """Up to ``n`` known scope names that look like ``name``, best first ("did you mean")."""
        return [candidate for candidate, _ in self.ranked_matches(name)[:n]]

    def ranked_matches(self, name: str) -> list[tuple[str, float]]:
        """Known names similar to ``name`` with their similarity (0..1), best first."""
        # Imported here: difflib is only needed when a scope is misspelt, and importing the
        # package must stay cheap.
        import difflib

        wanted = name.strip().lower()
        scored: dict[str, float] = {}
        for candidate in self.scopes:
            ratio = difflib.SequenceMatcher(None, wanted, candidate).ratio()
            if _is_segment_match(wanted, candidate):
                # "invoices" for "accounting.invoices": short but unambiguous, worth suggesting.
                ratio = max(ratio, 0.8)
            if ratio >= 0.6:
                scored[candidate] = ratio
        return sorted(scored.items(), key=lambda item: (-item[1], item[0]))

    def closure(self, name: str) -> frozenset[str]:
        """``name`` plus every scope it implies, transitively (an unknown name covers only itself)."""
        return self.closures.get(name) or frozenset((name,))

    def expand(self, scopes: Iterable[str]) -> frozenset[str]:
        """Everything a grant of ``scopes`` gives access to, including the provider's implicit scopes."""
        covered: set[str] = set(self.implicit_scopes)
        for scope in scopes:
            covered.update(self.closure(scope))
        return frozenset(covered)

    def is_granular(self, name: str) -> bool:
        """True when ``name`` replaces a broad scope, or is implied by a scope that does."""
        return name in self.granular_scopes

    def deadline_text(self) -> str:
        """The broad-scope deadline in words ("September 2027"), or "" when there is none."""
        if not self.broad_deadline:
            return ""
        year, month = _parse_year_month(self.broad_deadline)
        return f"{_MONTHS[month - 1]} {year}"

    def deadline_passed(self, today: dt.date) -> bool:
        """True once the whole deadline month is over.

        Xero named the month but not the day, so we only escalate when every day of it has passed.
        """
        if not self.broad_deadline:
            return False
        year, month = _parse_year_month(self.broad_deadline)
        return (today.year, today.month) > (year, month)


def _is_segment_match(wanted: str, candidate: str) -> bool:
    return bool(wanted) and candidate.endswith("." + wanted)


def _parse_year_month(text: str) -> tuple[int, int]:
    year, _, month = text.partition("-")
    return int(year), int(month)


class CatalogueDataError(GrantctlError):
    """A catalogue document is malformed (a bug in the shipped data or in an override)."""


def parse_catalogue(provider: str, document: Mapping[str, Any]) -> Catalogue:
    """Check a parsed catalogue document and build the :class:`Catalogue` it describes.

    Raises :class:`CatalogueDataError` naming the provider and the offending key when the document
    has unknown keys, wrong types, or references a scope it does not define.
    """
    where = f"scope catalogue for {provider!r}"
    _require_keys(where, document, _TOP_KEYS, required=_TOP_KEYS)
    if document["provider"] != provider:
        raise CatalogueDataError(f"{where}: 'provider' is {document['provider']!r}")
    raw_scopes = _mapping(where, "scopes", document["scopes"])
    scopes = {name: _parse_scope(where, name, raw) for name, raw in raw_scopes.items()}
    required = _parse_requirements(where, document["required_scopes"])
    implicit = frozenset(_str_list(where, "implicit_scopes", document["implicit_scopes"]))
    refresh_scope = _optional_str(where, "refresh_requires", document["refresh_requires"])
    granular_from = _optional_date(where, document["granular_required_from"])
    broad_deadline = _optional_year_month(where, document["broad_deadline"])
    if any(info.broad for info in scopes.values()) and (granular_from is None or broad_deadline is None):
        # The broad-scope lint messages quote both dates; without them they would say nothing useful.
        raise CatalogueDataError(f"{where}: broad scopes need granular_required_from and broad_deadline")
    _check_references(where, scopes, [*required, *implicit, *([refresh_scope] if refresh_scope else [])])
    return Catalogue(
        provider=provider,
        display_name=_str(where, "display_name", document["display_name"]),
        source=_str(where, "source", document["source"]),
        scopes=MappingProxyType(scopes),
        granular_required_from=granular_from,
        broad_deadline=broad_deadline,
        refresh_scope=refresh_scope,
        scope_param=_bool(where, "scope_param", document["scope_param"]),
        required_scopes=MappingProxyType(required),
        implicit_scopes=implicit,
        closures=MappingProxyType(_closures(scopes)),
        granular_scopes=_granular(scopes),
    )


def _parse_scope(where: str, name: str, raw: Any) -> ScopeInfo:
    here = f"{where}: scope {name!r}"
    body = _mapping(here, "scope", raw)
    _require_keys(here, body, _SCOPE_KEYS, required=frozenset({"description", "access"}))
    access = body["access"]
    if access not in _ACCESS:
        raise CatalogueDataError(f"{here}: access must be one of {sorted(_ACCESS)}, not {access!r}")
    broad = _bool(here, "broad", body.get("broad", False))
    replaced_by = tuple(_str_list(here, "replaced_by", body.get("replaced_by", [])))
    if broad != bool(replaced_by):
        raise CatalogueDataError(f"{here}: a broad scope needs replaced_by, and only a broad one has it")
    return ScopeInfo(
        name=name,
        description=_str(here, "description", body["description"]),
        access=access,
        implies=frozenset(_str_list(here, "implies", body.get("implies", []))),
        broad=broad,
        replaced_by=replaced_by,
        confirmed=_bool(here, "confirmed", body.get("confirmed", True)),
    )


def _parse_requirements(where: str, raw: Any) -> dict[str, Requirement]:
    requirements: dict[str, Requirement] = {}
    for scope, body in _mapping(where, "required_scopes", raw).items():
        here = f"{where}: required_scopes.{scope}"
        body = _mapping(here, "requirement", body)
        _require_keys(here, body, frozenset({"severity", "why"}), required=frozenset({"severity", "why"}))
        if body["severity"] not in _SEVERITIES:
            raise CatalogueDataError(f"{here}: severity must be error or warning")
        requirements[scope] = Requirement(scope, body["severity"], _str(here, "why", body["why"]))
    return requirements


def _check_references(where: str, scopes: Mapping[str, ScopeInfo], extra: Iterable[str]) -> None:
    for info in scopes.values():
        for target in (*sorted(info.implies), *info.replaced_by):
            if target not in scopes:
                raise CatalogueDataError(f"{where}: scope {info.name!r} refers to undefined {target!r}")
    for target in extra:
        if target not in scopes:
            raise CatalogueDataError(f"{where}: refers to undefined scope {target!r}")


def _closures(scopes: Mapping[str, ScopeInfo]) -> dict[str, frozenset[str]]:
    return {name: _walk_implies(scopes, name) for name in scopes}


def _walk_implies(scopes: Mapping[str, ScopeInfo], start: str) -> frozenset[str]:
    seen = {start}
    pending = [start]
    while pending:
        for implied in scopes[pending.pop()].implies:
            if implied not in seen:
                seen.add(implied)
                pending.append(implied)
    return frozenset(seen)


def _granular(scopes: Mapping[str, ScopeInfo]) -> frozenset[str]:
    granular: set[str] = set()
    for info in scopes.values():
        for replacement in info.replaced_by:
            granular.update(_walk_implies(scopes, replacement))
    return frozenset(granular)


def _require_keys(where: str, body: Mapping[str, Any], allowed: Collection[str], *, required: Collection[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise CatalogueDataError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    missing = sorted(set(required) - set(body))
    if missing:
        raise CatalogueDataError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")


def _mapping(where: str, key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise CatalogueDataError(f"{where}: {key} must be a mapping with string keys")
    return value


def _str(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogueDataError(f"{where}: {key} must be a non-empty string")
    return value


def _optional_str(where: str, key: str, value: Any) -> str | None:
    return None if value is None else _str(where, key, value)


def _bool(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise CatalogueDataError(f"{where}: {key} must be true or false")
    return value


def _str_list(where: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CatalogueDataError(f"{where}: {key} must be a list of strings")
    return value


def _optional_date(where: str, value: Any) -> dt.date | None:
    # YAML parses an unquoted 2026-03-02 as a date; a datetime would be a data mistake.
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    raise CatalogueDataError(f"{where}: granular_required_from must be a date (YYYY-MM-DD) or null")


def _optional_year_month(where: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        year, month = _parse_year_month(value) if isinstance(value, str) else (0, 0)
    except ValueError:
        year, month = 0, 0
    if year < 2000 or not 1 <= month <= 12 or len(value) != 7:
        raise CatalogueDataError(f"{where}: broad_deadline must be a quoted 'YYYY-MM' or null")
    return str(value)
