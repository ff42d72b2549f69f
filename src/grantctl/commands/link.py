"""``grantctl link NAME [--ttl 7d]``: print one connection's authorization link.

The link goes to stdout alone (so ``grantctl link acme-ltd | pbcopy`` works); what it is for and
when it expires go to stderr. The signing key never appears in either.
"""

from __future__ import annotations

from datetime import UTC, datetime

from grantctl.commands import Outcome
from grantctl.errors import GrantctlError
from grantctl.links import IssuedLink, issue_link, load_signing_key, parse_duration
from grantctl.manifest import load_connection_fast
from grantctl.models import Connection
from grantctl.plan import LINK_KINDS, PlanSettings, plan_connection
from grantctl.repo import Repo
from grantctl.state.model import Grant


def run_link(repo: Repo, name: str, *, ttl: str | None, now: datetime | None = None) -> Outcome:
    """Issue a link for ``name``'s current desired scopes.

    Example::

        grantctl link acme-ltd --ttl 3d
    """
    now = now or datetime.now(UTC)
    connection = load_connection(repo, name)
    duration = parse_duration(ttl, what="--ttl") if ttl is not None else None
    key = load_signing_key(repo)
    action = link_action(repo, connection, _grant(repo, name), now=now)
    issued = issue_link(repo, connection, key=key, action=action, ttl=duration, now=now)
    return Outcome(issued.url, notes=_notes(connection, issued))


def load_connection(repo: Repo, name: str) -> Connection:
    """The manifest of ``name``; a clear error when there is none."""
    path = repo.manifest_path(name)
    if not path.is_file():
        raise GrantctlError(f"no connection {name!r}: {repo.relative(path)} does not exist (see `grantctl new`)")
    return load_connection_fast(path)


def link_action(repo: Repo, connection: Connection, grant: Grant | None, *, now: datetime) -> str:
    """The plan action this link answers (``connect``, ``extend``, ...), or ``reconnect`` when none is due."""
    actions = plan_connection(connection, grant, now=now, settings=PlanSettings.from_config(repo.config))
    for action in actions:
        if action.kind in LINK_KINDS:
            return action.kind
    return "reconnect"


def _grant(repo: Repo, name: str) -> Grant | None:
    from grantctl.state.registry import open_store  # deferred: only the plaintext grant is read, no key

    return open_store(repo).read_grant(name)


def _notes(connection: Connection, issued: IssuedLink) -> list[str]:
    record = issued.record
    notes = [
        f"{connection.name}: {record.action} link for {connection.spec.organization.name}, "
        f"to send to {connection.spec.contact.name} <{connection.spec.contact.email}>",
        f"valid until {record.expires_at:%Y-%m-%d %H:%M} UTC; manifest commit {record.commit}",
    ]
    if record.action == "reduce":
        notes.append(
            "the grant holds scopes the manifest no longer wants and a consent cannot remove them: "
            "revoke first with `grantctl apply --allow-destructive`"
        )
    if record.action == "reconnect":
        notes.append("nothing is due for this connection; the link lets the client consent again anyway")
    return notes


__all__ = ["link_action", "load_connection", "run_link"]
