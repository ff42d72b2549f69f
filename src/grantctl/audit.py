"""Audit: what each client granted, by whom and when, from the repo alone.

Pure functions, no files, no network, no keys (``grantctl.commands.audit`` does the reading):

- :func:`build_rows`: one :class:`AuditRow` per connection, from manifests and the plaintext grants:
  organisation and tenant (a granted tenant that is not the manifest's is flagged), owner, contact,
  desired and granted scopes with the missing and excess ones, who authorised and when, last refresh,
  last health, links issued. Connections with a manifest and no grant, and grants with no manifest
  (orphans), get a row too. Rows are sorted by name.
- :func:`grant_changes`: what one commit changed in one state file, from the plaintext document before
  and after it. The ``sops`` block and the encrypted token values are ignored (they change on every
  refresh): a commit that only refreshed tokens is one "tokens refreshed" change.
- :func:`render`: the rows (and history) as ``table`` (fits a terminal; long cells are cut with "…",
  the notes under it are complete), ``markdown`` (every value escaped), ``json`` (versioned, complete) or
  ``csv`` (complete; cells that a spreadsheet would run as a formula are prefixed with ``'``).

Output is deterministic: it depends on the inputs only (and, for ``table``, the width).

Example::

    >>> rows = build_rows([connection], {"acme-ltd": grant})
    >>> rows[0].missing_scopes
    ('accounting.payments',)
    >>> print(render(rows, fmt="csv"))
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from grantctl.catalogue import excess_scopes, missing_scopes

if TYPE_CHECKING:
    from grantctl.models import Connection
    from grantctl.state.model import Grant

FORMATS = ("table", "markdown", "json", "csv")
FORMAT_VERSION = 1
DEFAULT_WIDTH = 120
Status = Literal["connected", "not-connected", "orphan"]

# --- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    """Everything the audit says about one connection. ``None`` means "not known / not applicable"."""

    name: str
    provider: str
    status: Status
    organization: str | None = None  # the manifest's organisation
    pinned_tenant_id: str | None = None  # the manifest's tenantId
    tenant_name: str | None = None  # the granted tenant
    tenant_id: str | None = None
    tenant_mismatch: str | None = None  # what the manifest expected, when the granted tenant is not it
    owner: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    desired_scopes: tuple[str, ...] = ()
    granted_scopes: tuple[str, ...] = ()
    missing_scopes: tuple[str, ...] = ()
    excess_scopes: tuple[str, ...] = ()
    authorized_by_name: str | None = None
    authorized_by_email: str | None = None
    authorized_by_user_id: str | None = None
    authorized_at: datetime | None = None
    refreshed_at: datetime | None = None
    health_status: str | None = None
    health_at: datetime | None = None
    health_detail: str | None = None
    reauthorize_reason: str | None = None
    reauthorize_at: datetime | None = None
    links_issued: int = 0
    last_link_issued_at: datetime | None = None
    findings: tuple[str, ...] = ()


def build_rows(connections: Iterable[Connection], grants: Mapping[str, Grant]) -> list[AuditRow]:
    """One row per connection named by a manifest or a grant, sorted by name."""
    by_name = {connection.name: connection for connection in connections}
    return [_row(name, by_name.get(name), grants.get(name)) for name in sorted({*by_name, *grants})]


def _row(name: str, connection: Connection | None, grant: Grant | None) -> AuditRow:
    fields: dict[str, Any] = {"name": name}
    if connection is not None:
        fields.update(_manifest_fields(connection))
    if grant is not None:
        fields.update(_grant_fields(grant))
    fields["provider"] = _provider(connection, grant)
    fields["status"] = _status(connection, grant)
    fields.update(_coverage(connection, grant))
    if connection is not None and grant is not None and grant.tenant is not None:
        fields["tenant_mismatch"] = _tenant_mismatch(connection, grant.tenant.id, grant.tenant.name)
    row = AuditRow(**fields)
    return replace(row, findings=_findings(row, connection, grant))


def _provider(connection: Connection | None, grant: Grant | None) -> str:
    """The manifest's provider; an orphan's comes from its grant."""
    if connection is not None:
        return connection.spec.provider
    return grant.provider if grant is not None else ""


def _manifest_fields(connection: Connection) -> dict[str, Any]:
    spec = connection.spec
    return {
        "organization": spec.organization.name,
        "pinned_tenant_id": spec.organization.tenant_id,
        "owner": connection.metadata.owner,
        "contact_name": spec.contact.name,
        "contact_email": spec.contact.email,
        "desired_scopes": tuple(sorted(spec.scopes)),
    }


def _grant_fields(grant: Grant) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "granted_scopes": tuple(sorted(set(grant.granted_scopes))),
        "authorized_at": grant.authorized_at,
        "refreshed_at": grant.refreshed_at,
        "links_issued": len(grant.links),
        "last_link_issued_at": max((link.issued_at for link in grant.links), default=None),
    }
    if grant.tenant is not None:
        fields.update(tenant_name=grant.tenant.name, tenant_id=grant.tenant.id)
    if grant.authorized_by is not None:
        by = grant.authorized_by
        fields.update(authorized_by_name=by.name, authorized_by_email=by.email, authorized_by_user_id=by.user_id)
    if grant.last_health is not None:
        health = grant.last_health
        fields.update(health_status=health.status, health_at=health.at, health_detail=health.detail or None)
    if grant.reauthorize is not None:
        fields.update(reauthorize_reason=grant.reauthorize.reason, reauthorize_at=grant.reauthorize.at)
    return fields


def _status(connection: Connection | None, grant: Grant | None) -> Status:
    if connection is None:
        return "orphan"
    return "connected" if grant is not None and grant.tenant is not None else "not-connected"


def _coverage(connection: Connection | None, grant: Grant | None) -> dict[str, tuple[str, ...]]:
    """Missing (desired, not covered) and excess (granted, not needed), with the catalogue's semantics."""
    desired = list(connection.spec.scopes) if connection is not None else []
    granted = list(grant.granted_scopes) if grant is not None else []
    if connection is not None and grant is not None and grant.provider != connection.spec.provider:
        # Scopes of one provider say nothing about another's: nothing granted counts.
        return {"missing_scopes": tuple(sorted(desired)), "excess_scopes": tuple(sorted(set(granted)))}
    provider = _provider(connection, grant)
    return {
        "missing_scopes": tuple(missing_scopes(provider, granted, desired)),
        "excess_scopes": tuple(excess_scopes(provider, granted, desired)),
    }


def _tenant_mismatch(connection: Connection, tenant_id: str, tenant_name: str) -> str | None:
    """What the manifest expected, when the granted tenant is not it (the same rule as ``plan``)."""
    organization = connection.spec.organization
    if organization.accepts(tenant_id, tenant_name, provider=connection.spec.provider):
        return None
    if organization.tenant_id is not None:
        return f"{organization.name} ({organization.tenant_id})"
    return f"{organization.name} (tenant id not pinned; compared by name)"


def _findings(row: AuditRow, connection: Connection | None, grant: Grant | None) -> tuple[str, ...]:
    """The sentences a reviewer should read about this row, most serious first."""
    found = []
    if row.status == "orphan":
        found.append("orphan: a state file with no manifest (`grantctl plan` proposes revoking it)")
    elif grant is None:
        found.append("not connected: no state file yet (the client has not consented)")
    elif grant.tenant is None:
        found.append("not connected: the state has no tenant (consent was never completed)")
    if connection is not None and grant is not None and grant.provider != connection.spec.provider:
        found.append(f"provider mismatch: the manifest says {connection.spec.provider}, the grant is {grant.provider}")
    if row.tenant_mismatch is not None:
        found.append(
            f"organisation mismatch: granted {row.tenant_name} ({row.tenant_id}), "
            f"the manifest expects {row.tenant_mismatch}"
        )
    if row.reauthorize_reason is not None:
        found.append(f"marked for reauthorization on {_day(row.reauthorize_at)}: {row.reauthorize_reason}")
    if row.missing_scopes and row.status != "not-connected":
        found.append(f"missing (desired, not granted): {', '.join(row.missing_scopes)}")
    if row.excess_scopes:
        found.append(f"excess (granted, not needed): {', '.join(row.excess_scopes)}")
    return tuple(found)


# --- history -------------------------------------------------------------------------------------

ChangeKind = Literal[
    "created",
    "removed",
    "provider",
    "tenant",
    "scopes",
    "authorized",
    "reauthorize",
    "link",
    "health",
    "failures",
    "refreshed",
    "other",
    "unchanged",
    "unreadable",
    "plaintext-tokens",
]


@dataclass(frozen=True)
class Change:
    """One thing a commit changed in a grant, as a sentence; ``added``/``removed`` list scopes."""

    kind: ChangeKind
    summary: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryEntry:
    """One commit that changed one connection's state file."""

    connection: str
    commit: str
    date: datetime
    author_name: str
    author_email: str
    subject: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class History:
    """What ``--history`` found. ``shallow``: the clone is shallow, so the oldest entries may be missing."""

    entries: tuple[HistoryEntry, ...] = ()
    shallow: bool = False
    paths: tuple[str, ...] = ()  # what was searched, for the "no history" message


Document = Mapping[str, Any]
"""A parsed state file as it was in one commit: any shape (old versions need not match today's model)."""

UNREADABLE: Document = {"\0unreadable": True}
"""Stands for a state file that was not valid YAML (or not a mapping) in some commit."""

# Grant fields compared one by one; a change to any other key is reported by name only, because an
# unknown field could hold anything, and a value must never be echoed unless we know it is plaintext.
_KNOWN = frozenset(
    {
        "apiVersion",
        "kind",
        "connection",
        "provider",
        "tenant",
        "granted_scopes",
        "authorized_by",
        "authorized_at",
        "auth_event_id",
        "api_domain",
        "refreshed_at",
        "access_token_expires_at",
        "refresh_token_issued_at",
        "reauthorize",
        "last_health",
        "consecutive_failures",
        "links",
    }
)
_NOT_GRANT = frozenset({"sops", "tokens"})
_REFRESH_FIELDS = ("refreshed_at", "access_token_expires_at", "refresh_token_issued_at")
_AUTH_FIELDS = ("authorized_by", "authorized_at", "auth_event_id", "api_domain")


def grant_changes(before: Document | None, after: Document | None) -> tuple[Change, ...]:
    """What changed between two versions of one state file (``None``: the file did not exist).

    Tokens and the sops block are ignored, except that tokens stored unencrypted are flagged (never
    shown). Values of fields grantctl does not know are never shown either: only their names.
    """
    if after is UNREADABLE:
        return (Change("unreadable", "the state file is not valid YAML in this commit (restore it from git)"),)
    if after is None:
        return (Change("removed", "state file removed: the grant was revoked or the state deleted"),)
    old = _plain(before) if before is not None and before is not UNREADABLE else {}
    new = _plain(after)
    changes = [*_opening(before, new), *_field_changes(old, new)]
    if before is not None and not changes:
        changes.append(_quiet_change(before, after))
    leak = _plaintext_tokens(after)
    return (*changes, *leak)


def _plain(document: Document) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in _NOT_GRANT}


def _opening(before: Document | None, new: Mapping[str, Any]) -> list[Change]:
    if before is None:
        connected = "" if isinstance(new.get("tenant"), dict) else " (not connected yet)"
        return [Change("created", f"state created{connected}")]
    if before is UNREADABLE:
        return [Change("created", "state readable again (the previous version was not valid YAML)")]
    return []


def _field_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    producers: tuple[Callable[[Mapping[str, Any], Mapping[str, Any]], list[Change]], ...] = (
        _provider_change,
        _tenant_change,
        _scope_change,
        _authorization_change,
        _reauthorize_change,
        _link_changes,
        _health_change,
        _failures_change,
        _refresh_change,
        _other_change,
    )
    return [change for produce in producers for change in produce(old, new)]


def _provider_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    if old and old.get("provider") != new.get("provider"):
        return [Change("provider", f"provider: {_text(old.get('provider'))} → {_text(new.get('provider'))}")]
    return []


def _tenant_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = _tenant_text(old.get("tenant")), _tenant_text(new.get("tenant"))
    if before == after:
        return []
    if before is None:
        return [Change("tenant", f"tenant: {after}")]
    return [Change("tenant", f"tenant: {before} → {after or '(none)'}")]


def _tenant_text(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return f"{_text(value.get('name'))} ({_text(value.get('id'))})"


def _scope_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = _scope_set(old.get("granted_scopes")), _scope_set(new.get("granted_scopes"))
    added, removed = tuple(sorted(after - before)), tuple(sorted(before - after))
    if not added and not removed:
        return []
    parts = ([f"added {', '.join(added)}"] if added else []) + ([f"removed {', '.join(removed)}"] if removed else [])
    return [Change("scopes", f"scopes {'; '.join(parts)}", added=added, removed=removed)]


def _scope_set(value: Any) -> set[str]:
    return {_text(scope) for scope in value} if isinstance(value, list) else set()


def _authorization_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    if all(old.get(key) == new.get(key) for key in _AUTH_FIELDS):
        return []
    who, was = _person(new.get("authorized_by")), _person(old.get("authorized_by"))
    when = new.get("authorized_at")
    text = f"authorised by {who or '(unknown)'}" + (f" at {_text(when)}" if when else "")
    if was is not None and was != who:
        text += f" (was {was})"
    elif was is not None and old.get("authorized_at") != when:
        text = "consent renewed: " + text
    return [Change("authorized", text)]


def _person(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    name, email, user_id = (value.get(key) for key in ("name", "email", "user_id"))
    if name and email:
        return f"{_text(name)} <{_text(email)}>"
    found = name or email or user_id
    return _text(found) if found else None


def _reauthorize_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = old.get("reauthorize"), new.get("reauthorize")
    if before == after:
        return []
    if not isinstance(after, dict):
        return [Change("reauthorize", "reauthorization flag cleared")]
    return [Change("reauthorize", f"marked for reauthorization: {_text(after.get('reason'))}")]


def _link_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = _list(old.get("links")), _list(new.get("links"))
    changes = []
    for link in after:
        if link not in before and isinstance(link, dict):
            scopes = _list(link.get("scopes"))
            changes.append(
                Change(
                    "link",
                    f"link issued ({_text(link.get('action'))}) for {len(scopes)} scope(s), "
                    f"expires {_text(link.get('expires_at'))}",
                )
            )
    return changes


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _health_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = old.get("last_health"), new.get("last_health")
    if before == after or not isinstance(after, dict):
        return []
    status = _text(after.get("status"))
    previous = before.get("status") if isinstance(before, dict) else None
    if previous is not None and previous != after.get("status"):
        return [Change("health", f"health: {_text(previous)} → {status}")]
    return [Change("health", f"health checked: {status}")]


def _failures_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = old.get("consecutive_failures", 0), new.get("consecutive_failures", 0)
    return [] if before == after else [Change("failures", f"consecutive failures: {_text(before)} → {_text(after)}")]


def _refresh_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    if not old or all(old.get(key) == new.get(key) for key in _REFRESH_FIELDS):
        return []
    if old.get("authorized_at") != new.get("authorized_at"):
        return []  # a new consent brings new tokens: "authorised by" already says it
    return [Change("refreshed", "tokens refreshed")]


def _other_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    if not old:
        return []
    names = sorted(str(key) for key in {*old, *new} - _KNOWN if old.get(key) != new.get(key))
    return [Change("other", f"other fields changed: {', '.join(names)}")] if names else []


def _quiet_change(before: Document, after: Document) -> Change:
    """A commit that touched the file but no grant field: tokens re-encrypted, or only metadata."""
    if before.get("tokens") != after.get("tokens"):
        return Change("refreshed", "tokens refreshed")
    return Change("unchanged", "no grant change (sops metadata or formatting only)")


def _plaintext_tokens(document: Document) -> tuple[Change, ...]:
    tokens = document.get("tokens")
    if not isinstance(tokens, dict):
        return ()
    exposed = sorted(str(key) for key, value in tokens.items() if not _encrypted(value))
    if not exposed:
        return ()
    return (
        Change(
            "plaintext-tokens",
            f"WARNING: {', '.join(exposed)} committed unencrypted: treat as leaked (revoke and reconnect)",
        ),
    )


def _encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ENC[") and value.endswith("]")


def _text(value: Any) -> str:
    """A scalar from a historical document as text (``None`` as "(none)")."""
    if value is None:
        return "(none)"
    if isinstance(value, datetime):
        return _instant(value)
    return str(value)


# --- rendering -------------------------------------------------------------------------------------


def render(rows: Sequence[AuditRow], *, fmt: str, history: History | None = None, width: int = DEFAULT_WIDTH) -> str:
    """``rows`` (and ``history`` when given) as ``fmt``: table, markdown, json or csv.

    CSV is one table: with ``history`` it holds the history (one row per change), not the connections.
    """
    if fmt == "json":
        return render_json(rows, history)
    if fmt == "csv":
        return render_history_csv(history) if history is not None else render_csv(rows)
    if fmt == "markdown":
        return render_markdown(rows, history)
    if fmt == "table":
        return render_table(rows, history, width=width)
    raise ValueError(f"unknown audit format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def _instant(value: datetime | None) -> str:
    """ISO 8601 in UTC with a Z, to the second: how state files write time."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d") if value is not None else "-"


def _authorizer(row: AuditRow, *, with_email: bool = True) -> str:
    if row.authorized_by_name and row.authorized_by_email and with_email:
        return f"{row.authorized_by_name} <{row.authorized_by_email}>"
    return row.authorized_by_name or row.authorized_by_email or row.authorized_by_user_id or ""


def _contact(row: AuditRow) -> str:
    if row.contact_name and row.contact_email:
        return f"{row.contact_name} <{row.contact_email}>"
    return row.contact_name or row.contact_email or ""


def summary_line(rows: Sequence[AuditRow]) -> str:
    """``5 connections: 3 connected, 1 not connected, 1 orphan; 1 with missing scopes, ...``."""
    counts = [
        (sum(row.status == "connected" for row in rows), "connected"),
        (sum(row.status == "not-connected" for row in rows), "not connected"),
        (sum(row.status == "orphan" for row in rows), "orphan"),
    ]
    problems = [
        (sum(bool(row.missing_scopes) and row.status == "connected" for row in rows), "with missing scopes"),
        (sum(bool(row.excess_scopes) for row in rows), "with excess scopes"),
        (sum(row.tenant_mismatch is not None for row in rows), "with the wrong organisation"),
        (sum(row.reauthorize_reason is not None for row in rows), "to reauthorize"),
    ]
    noun = "connection" if len(rows) == 1 else "connections"
    text = f"{len(rows)} {noun}"
    states = ", ".join(f"{count} {label}" for count, label in counts if count)
    issues = ", ".join(f"{count} {label}" for count, label in problems if count)
    return text + (f": {states}" if states else "") + (f"; {issues}" if issues else "") + "."


# --- json ----------------------------------------------------------------------------------------


def render_json(rows: Sequence[AuditRow], history: History | None = None) -> str:
    """A versioned JSON document with every field (two-space indent, trailing newline)."""
    document: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "kind": "audit",
        "summary": summary_line(rows),
        "connections": [_row_document(row) for row in rows],
    }
    if history is not None:
        document["history"] = [_entry_document(entry) for entry in history.entries]
        document["historyShallow"] = history.shallow
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _row_document(row: AuditRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "provider": row.provider,
        "status": row.status,
        "organization": row.organization,
        "pinnedTenantId": row.pinned_tenant_id,
        "tenant": {"name": row.tenant_name, "id": row.tenant_id} if row.tenant_id is not None else None,
        "tenantMismatch": row.tenant_mismatch,
        "owner": row.owner,
        "contact": {"name": row.contact_name, "email": row.contact_email} if row.contact_email else None,
        "desiredScopes": list(row.desired_scopes),
        "grantedScopes": list(row.granted_scopes),
        "missingScopes": list(row.missing_scopes),
        "excessScopes": list(row.excess_scopes),
        "authorizedBy": _authorized_by_document(row),
        "authorizedAt": _instant(row.authorized_at) or None,
        "refreshedAt": _instant(row.refreshed_at) or None,
        "lastHealth": _health_document(row),
        "reauthorize": (
            {"reason": row.reauthorize_reason, "at": _instant(row.reauthorize_at)} if row.reauthorize_reason else None
        ),
        "links": {"issued": row.links_issued, "lastIssuedAt": _instant(row.last_link_issued_at) or None},
        "findings": list(row.findings),
    }


def _authorized_by_document(row: AuditRow) -> dict[str, str | None] | None:
    if not (row.authorized_by_name or row.authorized_by_email or row.authorized_by_user_id):
        return None
    return {"name": row.authorized_by_name, "email": row.authorized_by_email, "userId": row.authorized_by_user_id}


def _health_document(row: AuditRow) -> dict[str, str | None] | None:
    if row.health_status is None:
        return None
    return {"status": row.health_status, "at": _instant(row.health_at), "detail": row.health_detail}


def _entry_document(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "connection": entry.connection,
        "commit": entry.commit,
        "date": _instant(entry.date),
        "author": {"name": entry.author_name, "email": entry.author_email},
        "subject": entry.subject,
        "changes": [
            {"kind": c.kind, "summary": c.summary, "added": list(c.added), "removed": list(c.removed)}
            for c in entry.changes
        ],
    }


# --- csv -----------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "name",
    "provider",
    "status",
    "organization",
    "pinned_tenant_id",
    "tenant_name",
    "tenant_id",
    "tenant_mismatch",
    "owner",
    "contact_name",
    "contact_email",
    "desired_scopes",
    "granted_scopes",
    "missing_scopes",
    "excess_scopes",
    "authorized_by_name",
    "authorized_by_email",
    "authorized_by_user_id",
    "authorized_at",
    "refreshed_at",
    "health_status",
    "health_at",
    "health_detail",
    "reauthorize_reason",
    "links_issued",
    "last_link_issued_at",
    "findings",
)
HISTORY_CSV_COLUMNS = ("connection", "commit", "date", "author_name", "author_email", "subject", "change", "summary")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def render_csv(rows: Sequence[AuditRow]) -> str:
    """One record per connection with every field (RFC 4180: CRLF line ends).

    Lists are space separated (scopes have no spaces); findings are separated by "; ".
    """
    return _csv([CSV_COLUMNS, *([_csv_cell(row, column) for column in CSV_COLUMNS] for row in rows)])


def render_history_csv(history: History) -> str:
    """One line per change per commit per connection."""
    lines: list[Sequence[str]] = [HISTORY_CSV_COLUMNS]
    for entry in history.entries:
        for change in entry.changes:
            lines.append(
                (
                    entry.connection,
                    entry.commit,
                    _instant(entry.date),
                    entry.author_name,
                    entry.author_email,
                    entry.subject,
                    change.kind,
                    change.summary,
                )
            )
    return _csv(lines)


def _csv_cell(row: AuditRow, column: str) -> str:
    value = getattr(row, column)
    if isinstance(value, tuple):
        return ("; " if column == "findings" else " ").join(value)
    if isinstance(value, datetime):
        return _instant(value)
    return "" if value is None else str(value)


def _csv(lines: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180; also makes csv quote a lone \r
    writer.writerows([csv_safe(cell) for cell in line] for line in lines)
    return buffer.getvalue()


def csv_safe(text: str) -> str:
    """``text``, with a ``'`` in front when a spreadsheet would otherwise run it as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


# --- markdown ------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_CODE_SAFE = re.compile(r"^[A-Za-z0-9._:/+=-]+$")
# C0/C1 controls and the bidi overrides that can make text read differently from what it is.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_MENTION = re.compile(r"(^|\s)@")


def md(text: str) -> str:
    """``text`` as one line of GitHub markdown that renders as itself: no markup, HTML, table breaks or mentions."""
    text = _UNSAFE.sub(" ", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # A word joiner after a leading "@" keeps a name like "@org/team" from pinging anyone;
    # "@" inside an email address mentions no one and is left alone.
    return _MENTION.sub("\\1@\u2060", text)


def _md_code(text: str) -> str:
    return f"`{text}`" if _CODE_SAFE.match(text) else md(text)


def _md_scopes(scopes: Sequence[str], marked: Sequence[str], mark: str) -> str:
    if not scopes:
        return "-"
    return ", ".join(f"{_md_code(s)} **{mark}**" if s in marked else _md_code(s) for s in scopes)


_MD_HEADERS = (
    "Connection",
    "Provider",
    "Organisation",
    "Tenant id",
    "Owner",
    "Contact",
    "Desired scopes",
    "Granted scopes",
    "Authorised by",
    "Authorised at",
    "Last refresh",
    "Last health",
    "Links issued",
)


def render_markdown(rows: Sequence[AuditRow], history: History | None = None) -> str:
    """A heading, the summary, one table row per connection, findings, and the history when given."""
    lines = ["## grantctl audit", "", md(summary_line(rows)), ""]
    if rows:
        lines += ["| " + " | ".join(_MD_HEADERS) + " |", "|" + "---|" * len(_MD_HEADERS)]
        lines += ["| " + " | ".join(_md_row(row)) + " |" for row in rows]
        lines.append("")
    findings = [f"- **{md(row.name)}**: {md(finding)}" for row in rows for finding in row.findings]
    if findings:
        lines += ["### Findings", "", *findings, ""]
    if history is not None:
        lines += _md_history(history)
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_row(row: AuditRow) -> list[str]:
    missing = row.missing_scopes if row.status != "not-connected" else ()
    return [
        md(row.name) + (" (orphan)" if row.status == "orphan" else ""),
        md(row.provider),
        _md_organization(row),
        _md_code(row.tenant_id) if row.tenant_id else "-",
        md(row.owner or "-"),
        md(_contact(row) or "-"),
        _md_scopes(row.desired_scopes, missing, "(missing)"),
        _md_scopes(row.granted_scopes, row.excess_scopes, "(excess)"),
        md(_authorizer(row) or "-"),
        _instant(row.authorized_at) or "-",
        _instant(row.refreshed_at) or "-",
        md(f"{row.health_status} {_instant(row.health_at)}") if row.health_status else "-",
        md(_links_text(row, _instant)),
    ]


def _md_organization(row: AuditRow) -> str:
    if row.tenant_name is None:
        return md(row.organization or "-") + (" (not connected)" if row.status == "not-connected" else "")
    text = md(row.tenant_name)
    if row.tenant_mismatch is not None:
        text += f" **(expected {md(row.tenant_mismatch)})**"
    return text


def _links_text(row: AuditRow, when: Callable[[datetime | None], str]) -> str:
    return f"{row.links_issued}, last {when(row.last_link_issued_at)}" if row.links_issued else "0"


def _md_history(history: History) -> list[str]:
    lines = ["### History (newest first)", ""]
    if history.shallow:
        lines += ["_The clone is shallow: older changes are missing (`git fetch --unshallow`)._", ""]
    if not history.entries:
        return [*lines, md(no_history_text(history)), ""]
    for name, entries in _by_connection(history.entries):
        lines += [f"#### {md(name)}", "", "| Commit | Date | Author | Changes |", "|---|---|---|---|"]
        for entry in entries:
            author = md(f"{entry.author_name} <{entry.author_email}>")
            changes = "<br>".join(md(change.summary) for change in entry.changes)
            lines.append(f"| `{entry.commit[:12]}` | {_instant(entry.date)} | {author} | {changes} |")
        lines.append("")
    return lines


def _by_connection(entries: Iterable[HistoryEntry]) -> list[tuple[str, list[HistoryEntry]]]:
    grouped: dict[str, list[HistoryEntry]] = {}
    for entry in entries:
        grouped.setdefault(entry.connection, []).append(entry)
    return sorted(grouped.items())


def no_history_text(history: History) -> str:
    """The message for a repo whose history has no commit touching the state files (yet)."""
    where = ", ".join(history.paths) or "the state files"
    return f"No commit changes {where} yet: grants appear in history once their state files are committed."


# --- table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    title: str
    min_width: int
    keep: int  # when the table is too wide, the lowest ``keep`` gives way first (narrowed, then hidden)
    cell: Callable[[AuditRow], str]


def _organization_cell(row: AuditRow) -> str:
    if row.tenant_name is None:
        return row.organization or "-"
    return f"{row.tenant_name} ≠ {row.organization}" if row.tenant_mismatch is not None else row.tenant_name


def _scopes_cell(row: AuditRow) -> str:
    if row.status == "not-connected":
        return f"not connected ({len(row.desired_scopes)} wanted)"
    parts = [f"{len(row.granted_scopes)} granted" if row.granted_scopes else "none granted"]
    if row.missing_scopes:
        parts.append(f"{len(row.missing_scopes)} missing")
    if row.excess_scopes:
        parts.append(f"{len(row.excess_scopes)} excess")
    if len(parts) == 1 and row.granted_scopes and row.status == "connected":
        parts.append("as desired")
    return ", ".join(parts)


_COLUMNS = (  # (title, narrowest useful width, importance: the least important gives way first)
    _Column("NAME", 40, 12, lambda row: row.name + (" (orphan)" if row.status == "orphan" else "")),
    _Column("PROVIDER", 8, 4, lambda row: row.provider),
    _Column("ORGANISATION", 14, 10, _organization_cell),
    _Column("TENANT", 8, 6, lambda row: row.tenant_id or "-"),
    _Column("OWNER", 12, 3, lambda row: row.owner or "-"),
    _Column("CONTACT", 12, 1, lambda row: row.contact_email or "-"),
    _Column("SCOPES", 24, 11, _scopes_cell),
    _Column("AUTHORISED BY", 14, 9, lambda row: _authorizer(row, with_email=False) or "-"),
    _Column("AUTHORISED", 10, 8, lambda row: _day(row.authorized_at)),
    _Column("REFRESHED", 10, 5, lambda row: _day(row.refreshed_at)),
    _Column("HEALTH", 10, 7, lambda row: f"{row.health_status} {_day(row.health_at)}" if row.health_status else "-"),
    _Column("LINKS", 5, 2, lambda row: _links_text(row, _day)),
)
_GAP = "  "
_HARD_FLOOR = 4


def render_table(rows: Sequence[AuditRow], history: History | None = None, *, width: int = DEFAULT_WIDTH) -> str:
    """A terminal table no wider than ``width`` (cells cut with "…"), then the notes and the history.

    When even the narrowest columns do not fit, the least important columns are hidden and the
    output says which; ``--format json`` or ``csv`` always has everything.
    """
    lines: list[str] = []
    if rows:
        cells = [[_clean(column.cell(row)) for column in _COLUMNS] for row in rows]
        shown, widths = _fit(cells, width)
        lines += [_table_line([_COLUMNS[i].title for i in shown], widths)]
        lines += [_table_line([line[i] for i in shown], widths) for line in cells]
        hidden = [column.title.lower() for i, column in enumerate(_COLUMNS) if i not in shown]
        if hidden:
            note = f"(hidden to fit {width} columns: {', '.join(hidden)}; see --format json or csv)"
            lines += _wrapped(note, width, "")
        lines.append("")
    lines += _notes(rows, width)
    lines += _wrapped(summary_line(rows), width, "")
    if history is not None:
        lines += ["", *_table_history(history, width)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _fit(cells: Sequence[Sequence[str]], width: int) -> tuple[list[int], list[int]]:
    """Which columns to show and how wide each is, so that a line is at most ``width`` characters.

    Columns are hidden, least important first, until their narrowest useful widths fit; then the
    least important shown columns are narrowed first, so names and scopes are cut last.
    """
    natural = [max(len(column.title), *(len(line[i]) for line in cells)) for i, column in enumerate(_COLUMNS)]
    floors = [min(natural[i], max(column.min_width, len(column.title))) for i, column in enumerate(_COLUMNS)]
    by_importance = sorted(range(len(_COLUMNS)), key=lambda i: _COLUMNS[i].keep)
    shown = set(range(len(_COLUMNS)))
    for i in by_importance:
        if _line_width(floors[j] for j in shown) <= width or len(shown) <= 2:
            break
        shown.remove(i)
    widths = {i: natural[i] for i in shown}
    # Narrow to the useful widths first; only a very narrow terminal cuts further (to 4 characters).
    for floor in (floors, [_HARD_FLOOR] * len(_COLUMNS)):
        for i in by_importance:
            excess = _line_width(widths.values()) - width
            if excess <= 0:
                break
            if i in shown:
                widths[i] -= max(min(excess, widths[i] - floor[i]), 0)
    order = sorted(shown)
    return order, [widths[i] for i in order]


def _line_width(widths: Iterable[int]) -> int:
    widths = list(widths)
    return sum(widths) + len(_GAP) * max(len(widths) - 1, 0)


def _table_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return _GAP.join(_cut(cell, w).ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _clean(text: str) -> str:
    """No control characters: a tenant name must not be able to drive the terminal."""
    return _UNSAFE.sub("?", text)


def _wrapped(text: str, width: int, indent: str) -> list[str]:
    return textwrap.wrap(
        _clean(text),
        width=max(width, len(indent) + 20),
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
    )


def _notes(rows: Sequence[AuditRow], width: int) -> list[str]:
    lines = []
    for row in rows:
        for finding in row.findings:
            lines += _wrapped(f"{row.name}: {finding}", width, "  ")
    return ["Notes:", *lines, ""] if lines else []


def _table_history(history: History, width: int) -> list[str]:
    lines = ["History (newest first):"]
    if history.shallow:
        lines += _wrapped("the clone is shallow: older changes are missing (`git fetch --unshallow`)", width, "  ")
    if not history.entries:
        return [*lines, *_wrapped(no_history_text(history), width, "  ")]
    for name, entries in _by_connection(history.entries):
        lines += ["", _clean(name)]
        for entry in entries:
            head = f"{entry.commit[:12]}  {_instant(entry.date)}  {entry.author_name} <{entry.author_email}>"
            lines.append(_cut("  " + _clean(head), width))
            for change in entry.changes:
                lines += _wrapped(change.summary, width, "      ")
    return lines


__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_WIDTH",
    "FORMATS",
    "FORMAT_VERSION",
    "HISTORY_CSV_COLUMNS",
    "UNREADABLE",
    "AuditRow",
    "Change",
    "Document",
    "History",
    "HistoryEntry",
    "build_rows",
    "csv_safe",
    "grant_changes",
    "md",
    "no_history_text",
    "render",
    "render_csv",
    "render_history_csv",
    "render_json",
    "render_markdown",
    "render_table",
    "summary_line",
]
