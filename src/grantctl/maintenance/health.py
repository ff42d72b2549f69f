"""``grantctl health``: one status per connection, with the evidence (which call, what it answered).

Checks, in order, stopping at the first that settles the matter:

1. offline, from the state and the manifest: never connected; marked for reauthorization; the
   granted organisation is not the manifest's (wrong-organization);
2. the token works: an access token that expired (or expires within minutes) is refreshed first,
   under the connection's lock, and the rotated tokens are persisted before anything else
   (``invalid_grant`` -> reauthorize);
3. the tenant is still in the provider's connections (Xero ``GET /connections``): clients can
   disconnect the app at any time (revoked);
4. a cheap API call succeeds (Xero ``GET /api.xro/2.0/Organisation``): a 403 means the user who
   authorised may connect the organisation but not read it (access-denied);
5. the refresh token's idle age against ``refresh.warnAfterDays`` / ``expireAfterDays`` (expiring),
   and granted against desired scopes (scope-drift).

Timeouts, 5xx and 429 are retried within the rate limits; what still fails is ``unreachable``. Each
result is written to the state (``last_health``, ``consecutive_failures``) so ``plan`` and ``audit``
see it: ``plan`` turns ``revoked`` and ``reauthorize`` into ``! reauthorize``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from grantctl.catalogue import excess_scopes, missing_scopes
from grantctl.errors import GrantctlError, ProviderError
from grantctl.grants import token_set_from_state
from grantctl.maintenance._context import RunContext, Target, short_error
from grantctl.maintenance._results import HealthResult, Trace
from grantctl.maintenance.refresh import ACCESS_TOKEN_MARGIN, idle_days, refresh_locked
from grantctl.models import Connection
from grantctl.models import Refresh as RefreshSettings
from grantctl.providers import ProbeResult, Tenant, TokenSet
from grantctl.state.model import Grant, Health, HealthStatus, Tokens

T_ = TypeVar("T_")

# Most severe first: the status of a connection is the most severe of its findings.
SEVERITY: tuple[HealthStatus, ...] = (
    "never-connected",
    "reauthorize",
    "revoked",
    "wrong-organization",
    "access-denied",
    "unreachable",
    "scope-drift",
    "expiring",
    "healthy",
)
# Statuses that do not count as a failure in ``consecutive_failures``.
PASSING: frozenset[str] = frozenset({"healthy", "expiring"})
# The probe needs one of these scopes; without them the check relies on the connections list alone.
PROBE_SCOPES: dict[str, frozenset[str]] = {
    "xero": frozenset({"accounting.settings", "accounting.settings.read"}),
}
PROBE = "API probe"
CONNECTIONS = "connections list"
ACCESS_DENIED_ADVICE = (
    "the user who authorised{who} can connect {org} but may not read its data (their role in the "
    "organisation lacks the rights): ask someone with full access to {org} to authorise again "
    "with a new link (`grantctl link {name}`)"
)


@dataclass
class _Findings:
    trace: Trace = field(default_factory=Trace)
    found: list[tuple[HealthStatus, str]] = field(default_factory=list)
    refreshed: bool = False

    def add(self, status: HealthStatus, detail: str) -> None:
        self.found.append((status, detail))

    def result(self, name: str, healthy_detail: str) -> HealthResult:
        if not self.found:
            return HealthResult(name, "healthy", healthy_detail, tuple(self.trace.evidence), self.refreshed)
        status, detail = min(self.found, key=lambda item: SEVERITY.index(item[0]))
        return HealthResult(name, status, detail, tuple(self.trace.evidence), self.refreshed)


def offline_status(connection: Connection, grant: Grant | None) -> tuple[HealthStatus, str] | None:
    """A status that needs no network (and makes network checks pointless), or None."""
    if grant is None or not grant.connected:
        return "never-connected", "no grant yet: `grantctl plan` shows the link to send"
    if grant.reauthorize is not None:
        when = grant.reauthorize.at.date().isoformat()
        return "reauthorize", f"marked on {when}: {grant.reauthorize.reason}; send a new link"
    if grant.provider != connection.spec.provider:
        return "reauthorize", f"the manifest now names {connection.spec.provider}; a new consent is needed"
    expected = connection.spec.organization
    tenant = grant.tenant
    assert tenant is not None  # connected
    if not expected.accepts(tenant.id, tenant.name, provider=connection.spec.provider):
        pinned = f" ({expected.tenant_id})" if expected.tenant_id else ""
        return (
            "wrong-organization",
            f"granted {tenant.name} ({tenant.id}), the manifest expects {expected.name}{pinned}",
        )
    return None


def age_and_scope_findings(
    connection: Connection, grant: Grant, *, now: datetime, settings: RefreshSettings
) -> list[tuple[HealthStatus, str]]:
    """Refresh-token idle age and granted-vs-desired scopes: pure checks on the (fresh) grant."""
    found: list[tuple[HealthStatus, str]] = []
    idle = idle_days(grant, now)
    if idle is not None and idle >= settings.expire_after_days:
        found.append(
            ("reauthorize", f"refresh token unused for {idle} days; it expires after {settings.expire_after_days}")
        )
    elif idle is not None and idle >= settings.warn_after_days:
        found.append(
            (
                "expiring",
                f"refresh token idle for {idle} days (warn after {settings.warn_after_days}, "
                f"expires after {settings.expire_after_days}): run `grantctl refresh {connection.name}`",
            )
        )
    provider = connection.spec.provider
    missing = missing_scopes(provider, grant.granted_scopes, connection.spec.scopes)
    excess = excess_scopes(provider, grant.granted_scopes, connection.spec.scopes)
    if missing or excess:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"excess {', '.join(excess)}"] if excess else []
        found.append(
            (
                "scope-drift",
                f"granted scopes differ from the manifest: {'; '.join(parts)} (`grantctl plan` shows the link)",
            )
        )
    return found


async def check_connection(ctx: RunContext, name: str) -> HealthResult:
    """Check one connection and record the result in its state. Never raises for a per-connection problem."""
    try:
        return await _check_connection(ctx, name)
    except GrantctlError as exc:
        return HealthResult(name, "error", str(exc))


async def _check_connection(ctx: RunContext, name: str) -> HealthResult:
    connection = await ctx.connection(name)
    # Everything below holds the lock: the result is recorded in the state, and a check may refresh.
    async with ctx.locked(name, lambda: ctx.store.read_grant(name)) as grant:
        offline = offline_status(connection, grant)
        if grant is None or offline is not None:
            result = HealthResult(name, *offline) if offline else HealthResult(name, "never-connected", "")
            latest = grant
        else:
            target = await ctx.target(name, connection)
            tokens = await ctx.local(ctx.store.read_tokens, name)
            result, latest = await _online_checks(ctx, target, grant, tokens)
        if latest is not None:
            await _record(ctx, name, latest, result)
    return result


async def _record(ctx: RunContext, name: str, grant: Grant, result: HealthResult) -> None:
    """Write last_health and consecutive_failures onto ``grant``, the current one (the lock is held)."""
    if result.status == "error":
        return
    failures = 0 if result.status in PASSING else grant.consecutive_failures + 1
    if result.status == "never-connected":
        failures = grant.consecutive_failures
    health = Health(status=result.status, at=ctx.clock(), detail=result.detail)
    updated = grant.model_copy(update={"last_health": health, "consecutive_failures": failures})
    await ctx.write(name, updated, None)


class _Stop(Exception):
    """A finding settled the connection's status; no further call is useful."""


class _Session:
    """One connection's online checks: the current grant and tokens, refreshed at most once."""

    def __init__(self, ctx: RunContext, target: Target, grant: Grant, tokens: Tokens, findings: _Findings):
        self.ctx = ctx
        self.target = target
        self.grant = grant
        self.tokens = tokens
        self.findings = findings

    def token_set(self) -> TokenSet:
        return token_set_from_state(self.grant, self.tokens, now=self.ctx.clock())

    async def refresh(self, why: str) -> None:
        """Refresh (persisting first); a refusal or an outage settles the status."""
        if not self.tokens.refresh_token:
            self.findings.add("reauthorize", f"{why}, and no refresh token is stored: send a new link")
            raise _Stop
        self.findings.trace.note("access token", why)
        step = await refresh_locked(self.ctx, self.target, self.grant, self.tokens, self.findings.trace)
        self.grant = step.grant  # what is now in the state (an invalid_grant was recorded there)
        if step.error is not None:
            self.findings.add(*_refresh_failure(step.error))
            raise _Stop
        self.tokens, self.findings.refreshed = step.tokens, True

    async def with_token(self, what: str, operation: Callable[[TokenSet], Awaitable[T_]], tenant: str | None) -> T_:
        """Run ``operation`` with a working access token; one 401 triggers one refresh and one retry."""
        for _ in range(2):
            try:
                return await self.ctx.call(
                    self.target,
                    lambda: operation(self.token_set()),
                    tenant=tenant,
                    what=what,
                    trace=self.findings.trace,
                )
            except ProviderError as exc:
                if exc.status == 401 and not self.findings.refreshed:
                    self.findings.trace.note(what, short_error(exc))
                    await self.refresh("the access token was not accepted")
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _refresh_failure(error: ProviderError) -> tuple[HealthStatus, str]:
    if error.oauth_error == "invalid_grant":
        return "reauthorize", "the provider refused the refresh token (invalid_grant): send a new link"
    if error.transient:
        return "unreachable", f"refreshing the access token failed: {short_error(error)}"
    raise GrantctlError(short_error(error))


async def _online_checks(
    ctx: RunContext, target: Target, grant: Grant, tokens: Tokens | None
) -> tuple[HealthResult, Grant]:
    """The result, and the grant as it now is in the state (a refresh during the check replaces it)."""
    findings = _Findings()
    if tokens is None or not (tokens.access_token or tokens.refresh_token):
        findings.add("reauthorize", "no tokens stored for this grant: send a new link")
        return findings.result(target.name, ""), grant
    session = _Session(ctx, target, grant, tokens, findings)
    try:
        await _token_works(session)
        await _tenant_connected(session)
        await _probe(session)
    except _Stop:
        return findings.result(target.name, ""), session.grant
    for status, detail in age_and_scope_findings(
        target.connection, session.grant, now=ctx.clock(), settings=ctx.config.refresh
    ):
        findings.add(status, detail)
    tenant = session.grant.tenant
    assert tenant is not None
    return findings.result(target.name, f"{tenant.name} connected and answering"), session.grant


async def _token_works(session: _Session) -> None:
    expires = session.grant.access_token_expires_at
    now = session.ctx.clock()
    if not session.tokens.access_token or expires is None:
        await session.refresh("no access token stored")
    elif expires <= now + ACCESS_TOKEN_MARGIN:
        await session.refresh("access token expired" if expires <= now else "access token about to expire")


async def _tenant_connected(session: _Session) -> None:
    provider, tenant = session.target.provider, session.grant.tenant
    assert tenant is not None
    try:
        tenants: list[Tenant] = await session.with_token(
            CONNECTIONS, lambda tokens: provider.list_tenants(session.ctx.http, tokens), tenant=None
        )
    except ProviderError as exc:
        session.findings.trace.note(CONNECTIONS, short_error(exc))
        session.findings.add(*_call_failure(CONNECTIONS, exc))
        raise _Stop from None
    if any(item.id == tenant.id for item in tenants):
        session.findings.trace.note(CONNECTIONS, f"{len(tenants)} connection(s), {tenant.name} among them")
        return
    session.findings.trace.note(
        CONNECTIONS, f"{len(tenants)} connection(s), {tenant.name} ({tenant.id}) not among them"
    )
    session.findings.add(
        "revoked",
        f"{tenant.name} is no longer connected (the app was disconnected in {provider.name}): send a new link",
    )
    raise _Stop


async def _probe(session: _Session) -> None:
    provider, grant = session.target.provider, session.grant
    tenant = grant.tenant
    assert tenant is not None
    needed = PROBE_SCOPES.get(provider.name)
    if needed is not None and not needed & set(grant.granted_scopes):
        session.findings.trace.note(PROBE, f"skipped: needs one of {', '.join(sorted(needed))}")
        return
    try:
        result: ProbeResult = await session.with_token(
            PROBE, lambda tokens: _probe_or_raise(session, tokens, tenant.id), tenant=tenant.id
        )
    except ProviderError as exc:
        session.findings.trace.note(PROBE, short_error(exc))
        session.findings.add(*_call_failure(PROBE, exc))
        raise _Stop from None
    session.findings.trace.note(result.call, f"HTTP {result.status}: {result.detail}")
    if result.ok:
        return
    if result.status == 401:
        session.findings.add("reauthorize", f"{result.call} refused the access token even right after a refresh")
    elif result.status == 403:
        who = grant.authorized_by.email if grant.authorized_by and grant.authorized_by.email else None
        advice = ACCESS_DENIED_ADVICE.format(who=f" ({who})" if who else "", org=tenant.name, name=grant.connection)
        session.findings.add("access-denied", f"{result.call} answered 403: {advice}")
    else:
        session.findings.add("unreachable", f"{result.call} answered HTTP {result.status}: {result.detail}")
    raise _Stop


async def _probe_or_raise(session: _Session, tokens: TokenSet, tenant_id: str) -> ProbeResult:
    """The probe, with a 401 raised as an error so :meth:`_Session.with_token` refreshes and retries."""
    result = await session.target.provider.probe(session.ctx.http, tokens, tenant_id)
    if result.status == 401 and not session.findings.refreshed:
        raise ProviderError(session.target.provider.name, f"{result.call} was refused: {result.detail}", status=401)
    return result


def _call_failure(what: str, exc: ProviderError) -> tuple[HealthStatus, str]:
    if exc.transient:
        return "unreachable", f"{what} failed after retries: {short_error(exc)}"
    if exc.status == 401:
        return "reauthorize", f"{what}: the access token is refused even right after a refresh; send a new link"
    if exc.status == 403:
        return "access-denied", f"{what}: {short_error(exc)}"
    return "unreachable", f"{what}: {short_error(exc)}"


async def check_all(ctx: RunContext, names: list[str], *, concurrency: int) -> list[HealthResult]:
    """Health of every connection among ``names``, ``concurrency`` at a time, in input order."""

    async def one(name: str) -> HealthResult:
        return await check_connection(ctx, name)

    return await ctx.each(names, one, concurrency)


__all__ = ["SEVERITY", "age_and_scope_findings", "check_all", "check_connection", "offline_status"]
