"""Carrying out a plan: a link for every gap, refreshes that are due, and approved destructive actions.

What each kind of action does (design.md, "Apply, links and the callback"):

==================  =====================================================================================
connect, extend,    issue a signed link for the desired scopes and record it in the state's link history
reauthorize
wrong-organization  with ``allow_destructive``: disconnect the wrong tenant, clear the grant, issue a link;
                    else held back
reduce              with ``allow_destructive``: revoke the grant, clear it, issue a link; else held back
orphan              with ``allow_destructive``: revoke the grant and delete the state; else held back
refresh             refresh the tokens now (rotated refresh token persisted first)
pin                 suggest the manifest edit (grantctl never edits manifests: they are reviewed in PRs)
==================  =====================================================================================

Actions run one after another in plan order; a failure is reported and the next action still runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from grantctl.errors import GrantctlError, ProviderError
from grantctl.grants import token_set_from_state
from grantctl.links import IssuedLink, SigningKey, issue_link, record_link
from grantctl.maintenance import RunContext, refresh_connection
from grantctl.maintenance._context import Target
from grantctl.maintenance._credentials import read_credentials
from grantctl.maintenance._results import Trace
from grantctl.maintenance.refresh import persist, refresh_locked
from grantctl.models import Connection
from grantctl.plan import LINK_KINDS, Action, Plan
from grantctl.providers import ClientCredentials, Provider
from grantctl.state.base import StateStore
from grantctl.state.model import Grant, Tokens

Status = Literal["link", "refreshed", "suggested", "done", "held", "failed"]
HELD = "held back: destructive, run apply again with --allow-destructive after review"


@dataclass(frozen=True)
class ApplyResult:
    """What happened to one action. ``link`` is set when a link was issued."""

    action: Action
    status: Status
    detail: str
    link: IssuedLink | None = None
    connection: Connection | None = None


async def apply_plan(ctx: RunContext, plan: Plan, *, key: SigningKey, allow_destructive: bool) -> list[ApplyResult]:
    """Carry out every action of ``plan``; never raises for one action's failure."""
    results: list[ApplyResult] = []
    for action in plan.actions:
        try:
            results += await _apply_action(ctx, action, key=key, allow_destructive=allow_destructive)
        except GrantctlError as exc:
            results.append(ApplyResult(action, "failed", str(exc)))
    return results


async def _apply_action(
    ctx: RunContext, action: Action, *, key: SigningKey, allow_destructive: bool
) -> list[ApplyResult]:
    if action.kind == "pin":
        return [ApplyResult(action, "suggested", _pin_suggestion(action))]
    if action.kind == "refresh":
        return [await _refresh(ctx, action)]
    if action.kind == "orphan":
        if not allow_destructive:
            return [ApplyResult(action, "held", HELD)]
        return [await _remove_orphan(ctx, action)]
    connection = await ctx.connection(action.connection)
    results = []
    if action.kind in ("reduce", "wrong-organization"):
        if not allow_destructive:
            # No link either. Reduce: a consent only adds scopes, so the excess would stay. Wrong
            # organisation: the consent replaces the stored tokens, and with them the only way to
            # disconnect the wrong tenant, which would stay connected with nothing showing it.
            return [ApplyResult(action, "held", HELD)]
        results.append(await _take_back(ctx, action, connection))
    if action.kind in LINK_KINDS:
        try:
            results.append(await _issue(ctx, action, connection, key))
        except GrantctlError as exc:
            # Keep what was already done (a revoke cannot be undone): the report must show it.
            results.append(ApplyResult(action, "failed", str(exc)))
    return results


async def _issue(ctx: RunContext, action: Action, connection: Connection, key: SigningKey) -> ApplyResult:
    link = issue_link(ctx.repo, connection, key=key, action=action.kind, now=ctx.clock())
    await ctx.io(record_link, ctx.store, connection, link.record)
    contact = connection.spec.contact
    detail = f"link for {contact.name} <{contact.email}>, valid until {link.expires_at:%Y-%m-%d %H:%M} UTC"
    return ApplyResult(action, "link", detail, link=link, connection=connection)


async def _refresh(ctx: RunContext, action: Action) -> ApplyResult:
    result = await refresh_connection(ctx, action.connection, force=False)
    status: Status = "refreshed" if result.outcome in ("refreshed", "skipped") else "failed"
    return ApplyResult(action, status, result.reason or result.outcome)


def _pin_suggestion(action: Action) -> str:
    return (
        f"add `tenantId: {action.tenant_id}` under spec.organization in connections/{action.connection}.yaml "
        "and open a pull request"
    )


async def _take_back(ctx: RunContext, action: Action, connection: Connection) -> ApplyResult:
    """Reduce: revoke the whole grant. Wrong organisation: disconnect just that tenant. Then clear the grant."""
    target = await ctx.target(action.connection, connection)
    async with ctx.locked(action.connection, lambda: _grant_and_tokens(ctx.store, action.connection)) as stored:
        grant, tokens = stored
        if action.kind == "reduce":
            await _revoke(ctx, target.provider, target.credentials, tokens, action.connection)
            cleared_tokens: Tokens | None = Tokens()
            what = "revoked the grant"
        else:
            tokens = await _disconnect_tenant(ctx, target, grant, tokens, action)
            cleared_tokens = None  # the tokens stay: they belong to the user, not to the wrong tenant
            what = f"disconnected tenant {action.tenant_id}"
        await persist(ctx, action.connection, _cleared(grant), cleared_tokens)
    return ApplyResult(action, "done", f"{what}; the state no longer holds a grant")


async def _disconnect_tenant(ctx: RunContext, target: Target, grant: Grant, tokens: Tokens, action: Action) -> Tokens:
    """Disconnect the tenant the action names (Xero: DELETE /connections/{id}); returns the current tokens."""
    trace = Trace()
    if not tokens.refresh_token:
        raise GrantctlError(f"{action.connection}: no refresh token stored, cannot disconnect the tenant")
    step = await refresh_locked(ctx, target, grant, tokens, trace)  # a fresh access token, persisted first
    if step.error is not None:
        raise GrantctlError(f"{action.connection}: could not refresh before disconnecting: {step.error}")
    token_set = token_set_from_state(step.grant, step.tokens, now=ctx.clock())
    tenants = await ctx.call(
        target, lambda: target.provider.list_tenants(ctx.http, token_set), tenant=None, what="connections", trace=trace
    )
    for tenant in tenants:
        if tenant.id == action.tenant_id:
            await ctx.call(
                target,
                lambda: target.provider.disconnect(ctx.http, token_set, tenant),  # noqa: B023 - awaited in the loop
                tenant=None,
                what="disconnect",
                trace=trace,
            )
    return step.tokens


async def _remove_orphan(ctx: RunContext, action: Action) -> ApplyResult:
    """Revoke an orphan's grant with the credentials still in the repo, then delete its state."""
    name = action.connection
    credentials_path = ctx.repo.connections_dir / f"{name}.secrets.yaml"
    if not credentials_path.is_file():
        raise GrantctlError(
            f"{name}: cannot revoke without {ctx.repo.relative(credentials_path)}; restore it from git, or ask "
            f"the client to disconnect the app, then delete state/{name}.yaml by hand"
        )
    credentials = await ctx.io(read_credentials, credentials_path)
    async with ctx.locked(name, lambda: _grant_and_tokens(ctx.store, name)) as stored:
        grant, tokens = stored
        await _revoke(ctx, ctx.provider(grant.provider), credentials, tokens, name)
        await ctx.io(ctx.store.delete, name)
    return ApplyResult(action, "done", f"revoked the grant and deleted state/{name}.yaml")


async def _revoke(
    ctx: RunContext, provider: Provider, credentials: ClientCredentials, tokens: Tokens, name: str
) -> None:
    if not tokens.refresh_token:
        return  # nothing left to revoke at the provider
    try:
        await provider.revoke(ctx.http, credentials, tokens.refresh_token)
    except ProviderError as exc:
        if exc.oauth_error == "invalid_grant":
            return  # already revoked or expired: the access is gone either way
        raise GrantctlError(f"{name}: revocation failed: {exc}") from None


def _grant_and_tokens(store: StateStore, name: str) -> tuple[Grant, Tokens]:
    """Re-read under the lock: another run may have refreshed or removed the grant since planning."""
    grant = store.read_grant(name)
    if grant is None:
        raise GrantctlError(f"{name}: the state disappeared while applying; run `grantctl plan` again")
    return grant, store.read_tokens(name) or Tokens()


def _cleared(grant: Grant) -> Grant:
    """The grant with the access removed; link history and health stay for the audit trail."""
    return grant.model_copy(
        update={
            "tenant": None,
            "granted_scopes": [],
            "authorized_by": None,
            "authorized_at": None,
            "auth_event_id": None,
            "access_token_expires_at": None,
            "refresh_token_issued_at": None,
            "reauthorize": None,
        }
    )


def issued_links(results: Sequence[ApplyResult]) -> list[ApplyResult]:
    return [result for result in results if result.link is not None]
