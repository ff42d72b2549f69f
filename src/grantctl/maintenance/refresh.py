"""``grantctl refresh``: keep every grant's tokens alive without ever losing a rotated refresh token.

Per connection, concurrently (asyncio tasks, one shared HTTP client, inside the provider's rate limits):

1. read the grant (no key) and skip it when nothing is due;
2. load the manifest and decrypt the app credentials (once per run);
3. take the connection's lock, RE-READ the state, and decide again: another run may have refreshed it
   meanwhile (then it is skipped: every token is refreshed once);
4. refresh; on success persist the rotated tokens atomically BEFORE anything else, retrying the write;
5. release the lock.

Due means: the access token has expired or expires within :data:`ACCESS_TOKEN_MARGIN`; the refresh
token has been idle for ``refresh.warnAfterDays``; or ``--force``. Under ``--force`` a connection that
was refreshed after this run started, or less than :data:`FORCE_MIN_AGE` ago, is skipped: a second
``refresh --force`` started at the same moment must not rotate every token twice.

Failures: ``invalid_grant`` marks the grant for reauthorization (``plan`` then shows ``! reauthorize``);
timeouts, 5xx and 429 are retried with bounded backoff and counted, never fatal to the other
connections. If the process dies between the token response and the write, the state still holds the
previous refresh token, which Xero honours for 30 minutes: the next run simply uses it again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from grantctl.errors import GrantctlError, ProviderError
from grantctl.maintenance._context import RunContext, Target, short_error
from grantctl.maintenance._results import RefreshResult, Trace
from grantctl.models import Refresh as RefreshSettings
from grantctl.providers import TokenSet
from grantctl.state.model import Grant, Reauthorize, Tokens

ACCESS_TOKEN_MARGIN = timedelta(minutes=5)
FORCE_MIN_AGE = timedelta(seconds=60)


@dataclass(frozen=True)
class Decision:
    """Whether a connection is due, and why (or why not). ``attention``: skipped but needs a person."""

    due: bool
    reason: str
    attention: bool = False


def decide(
    grant: Grant | None,
    *,
    now: datetime,
    settings: RefreshSettings,
    force: bool,
    run_started: datetime,
) -> Decision:
    """Is ``grant`` due for a refresh? A pure function of the plaintext grant and the time."""
    if grant is None or not grant.connected:
        return Decision(False, "not connected yet: `grantctl plan` shows the link to send")
    if grant.reauthorize is not None:
        return Decision(
            False, f"marked for reauthorization ({grant.reauthorize.reason}): send a new link", attention=True
        )
    if force:
        return _decide_forced(grant, now=now, run_started=run_started)
    expires = grant.access_token_expires_at
    if expires is None:
        return Decision(True, "no access token expiry recorded")
    if expires <= now:
        return Decision(True, f"access token expired {_ago(now - expires)} ago")
    if expires <= now + ACCESS_TOKEN_MARGIN:
        return Decision(True, f"access token expires in {_ago(expires - now)}")
    idle = idle_days(grant, now)
    if idle is not None and idle >= settings.warn_after_days:
        return Decision(True, f"refresh token idle for {idle} days (warn after {settings.warn_after_days})")
    return Decision(False, f"not due: access token valid for {_ago(expires - now)}")


def _decide_forced(grant: Grant, *, now: datetime, run_started: datetime) -> Decision:
    refreshed = grant.refreshed_at
    if refreshed is not None and (refreshed >= run_started or now - refreshed < FORCE_MIN_AGE):
        return Decision(False, f"refreshed {_ago(max(now - refreshed, timedelta()))} ago by another run; not again")
    return Decision(True, "forced")


def idle_days(grant: Grant, now: datetime) -> int | None:
    """Whole days since the refresh token was last issued or used (the provider's idle clock)."""
    issued = grant.refresh_token_issued_at or grant.refreshed_at or grant.authorized_at
    if issued is None:
        return None
    return max((now - issued).days, 0)


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86_400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


def rotated(grant: Grant, tokens: Tokens, answer: TokenSet, *, now: datetime) -> tuple[Grant, Tokens]:
    """The grant and tokens to persist after a successful refresh.

    A response without a new refresh token keeps the old one (and without an id_token, the old
    id_token). ``refresh_token_issued_at`` restarts on every successful refresh: a used refresh token's
    idle clock restarts too, whether or not the provider rotated it.
    """
    new_tokens = Tokens(
        access_token=answer.access_token,
        refresh_token=answer.refresh_token or tokens.refresh_token,
        id_token=answer.id_token or tokens.id_token,
    )
    new_grant = grant.model_copy(
        update={
            "granted_scopes": sorted(set(answer.granted_scopes)) or grant.granted_scopes,
            "auth_event_id": answer.auth_event_id or grant.auth_event_id,
            "api_domain": answer.api_domain or grant.api_domain,
            "refreshed_at": now,
            "access_token_expires_at": answer.expires_at,
            "refresh_token_issued_at": now,
            "reauthorize": None,
            "consecutive_failures": 0,
        }
    )
    return new_grant, new_tokens


class PersistFailed(GrantctlError):
    """Rotated tokens could not be written after every retry (the old refresh token is still valid)."""


async def persist(ctx: RunContext, name: str, grant: Grant, tokens: Tokens | None) -> None:
    """Write ``name``'s state, retrying with backoff: losing a rotated refresh token costs a client click."""
    delay, attempts = ctx.policy.persist_first_delay, ctx.policy.persist_attempts
    for attempt in range(1, attempts + 1):
        try:
            await ctx.write(name, grant, tokens)
            return
        except (GrantctlError, OSError) as exc:
            if attempt == attempts:
                raise PersistFailed(
                    f"{name}: the provider issued new tokens but saving them failed {attempt} times "
                    f"({_safe_reason(exc)}). The previous refresh token stays valid for about 30 minutes: "
                    f"fix the problem and run `grantctl refresh {name}` within that time"
                ) from None
            ctx.counters.persist_retries += 1
            await ctx.sleep(delay)
            delay *= 2


def _safe_reason(exc: BaseException) -> str:
    # grantctl errors never carry secrets; an OSError is reduced to its errno text.
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


@dataclass(frozen=True)
class RefreshStep:
    """The outcome of refreshing one connection's tokens while its lock is held."""

    grant: Grant
    tokens: Tokens
    error: ProviderError | None = None


async def refresh_locked(ctx: RunContext, target: Target, grant: Grant, tokens: Tokens, trace: Trace) -> RefreshStep:
    """Refresh while holding the lock; persist the rotated tokens before returning.

    Returns the new grant and tokens, or (unchanged grant and tokens, the provider's error). An
    ``invalid_grant`` is recorded in the state (``reauthorize``) before returning. Raises
    :class:`PersistFailed` when the rotated tokens cannot be written.
    """
    refresh_token = tokens.refresh_token
    assert refresh_token is not None  # callers check first
    label = "refresh"
    try:
        answer = await ctx.call(
            target,
            lambda: target.provider.refresh(ctx.http, target.credentials, refresh_token),
            tenant=None,
            what=label,
            trace=trace,
        )
    except ProviderError as exc:
        trace.note(label, short_error(exc))
        if exc.oauth_error == "invalid_grant":
            marked = grant.model_copy(
                update={
                    "reauthorize": Reauthorize(
                        reason="the provider refused the refresh token (invalid_grant)", at=ctx.clock()
                    ),
                    "consecutive_failures": grant.consecutive_failures + 1,
                }
            )
            await persist(ctx, target.name, marked, None)
            return RefreshStep(marked, tokens, exc)
        return RefreshStep(grant, tokens, exc)
    ctx.pause_if_requested()
    new_grant, new_tokens = rotated(grant, tokens, answer, now=ctx.clock())
    await persist(ctx, target.name, new_grant, new_tokens)
    rotated_note = "new refresh token" if answer.refresh_token != refresh_token else "same refresh token kept"
    trace.note(label, f"tokens refreshed ({rotated_note}) and saved")
    return RefreshStep(new_grant, new_tokens)


async def refresh_connection(ctx: RunContext, name: str, *, force: bool) -> RefreshResult:
    """Refresh one connection if it is due. Never raises for a per-connection problem."""
    try:
        return await _refresh_connection(ctx, name, force=force)
    except GrantctlError as exc:
        return RefreshResult(name, "error", str(exc))


async def _refresh_connection(ctx: RunContext, name: str, *, force: bool) -> RefreshResult:
    settings = ctx.config.refresh

    def decision_for(grant: Grant | None) -> Decision:
        return decide(grant, now=ctx.clock(), settings=settings, force=force, run_started=ctx.started_at)

    if not force:
        # Without the lock first: most connections of a scheduled run are not due, and need no lock.
        first = decision_for(await ctx.local(ctx.store.read_grant, name))
        if not first.due:
            return RefreshResult(name, "reauthorize" if first.attention else "skipped", first.reason)

    def read_under_lock() -> tuple[Grant | None, Decision, Tokens | None]:
        # Re-read under the lock: another process may have refreshed (and rotated) meanwhile.
        grant = ctx.store.read_grant(name)
        decision = decision_for(grant)
        tokens = ctx.store.read_tokens(name) if decision.due else None
        return grant, decision, tokens

    async with ctx.locked(name, read_under_lock) as (grant, decision, tokens):
        if grant is None or not decision.due:
            return RefreshResult(name, "reauthorize" if decision.attention else "skipped", decision.reason)
        target = await ctx.target(name)
        if grant.provider != target.connection.spec.provider:
            return RefreshResult(
                name,
                "skipped",
                f"the manifest now names {target.connection.spec.provider}: `grantctl plan` "
                "shows the new consent to ask for",
            )
        if tokens is None or not tokens.refresh_token:
            return RefreshResult(
                name, "reauthorize", "no refresh token stored (was offline_access granted?): send a new link"
            )
        return await _refresh_due(ctx, target, grant, tokens, decision.reason)


async def _refresh_due(ctx: RunContext, target: Target, grant: Grant, tokens: Tokens, why: str) -> RefreshResult:
    trace = Trace()
    step = await refresh_locked(ctx, target, grant, tokens, trace)
    attempts, evidence = trace.attempts, tuple(trace.evidence)
    if step.error is None:
        return RefreshResult(target.name, "refreshed", why, attempts, evidence)
    error = step.error
    if error.oauth_error == "invalid_grant":
        reason = "the provider refused the refresh token (invalid_grant): send a new link (`grantctl plan`)"
        return RefreshResult(target.name, "reauthorize", reason, attempts, evidence)
    if error.transient:
        await _count_failure(ctx, target.name, step.grant)
        reason = f"still failing after {attempts} attempt(s): {short_error(error)}"
        return RefreshResult(target.name, "failed", reason, attempts, evidence)
    return RefreshResult(target.name, "error", short_error(error), attempts, evidence)


async def _count_failure(ctx: RunContext, name: str, grant: Grant) -> None:
    """Record one more consecutive failure; losing this count is harmless, so a failed write is ignored."""
    updated = grant.model_copy(update={"consecutive_failures": grant.consecutive_failures + 1})
    with contextlib.suppress(GrantctlError, OSError):
        await ctx.write(name, updated, None)


async def refresh_all(ctx: RunContext, names: list[str], *, force: bool, concurrency: int) -> list[RefreshResult]:
    """Refresh every due connection among ``names``, ``concurrency`` at a time; results sorted by name."""

    async def one(name: str) -> RefreshResult:
        return await refresh_connection(ctx, name, force=force)

    return await ctx.each(names, one, concurrency)
