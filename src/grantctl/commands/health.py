"""``grantctl health [NAME...] [--format text|json|markdown]``.

One status per connection (healthy, expiring, reauthorize, revoked, wrong-organization, access-denied,
scope-drift, unreachable, never-connected) with the evidence, written to each state's ``last_health``.
Exit 0 when every connection is healthy, 2 when some need attention, 1 on an error.

Example::

    outcome = run_health(repo, [], fmt="markdown")
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx

from grantctl.commands import Outcome
from grantctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, GrantctlError
from grantctl.maintenance import HealthResult, RetryPolicy, RunCounters, check_all, connection_names, open_run
from grantctl.maintenance._context import DEFAULT_CONCURRENCY, shared_tls_context
from grantctl.maintenance._workers import PartResult, Share, run_parts, workers_for_run
from grantctl.maintenance.report import render_health
from grantctl.repo import Repo
from grantctl.state.base import StateStore

FORMATS = ("text", "json", "markdown")


def run_health(
    repo: Repo,
    names: Sequence[str],
    *,
    fmt: str = "text",
    now: datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    store: StateStore | None = None,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    workers: int | None = None,
) -> Outcome:
    """Check ``names`` (default: every connection), record each result in its state, and report.

    ``now`` fixes the clock (tests); ``store``, ``policy`` and ``transport`` replace the repo's state
    store, the retry policy and the network (tests). ``workers``: processes to split the run over
    (default: see :func:`~grantctl.maintenance._workers.worker_count`; always 1 with an injected
    store or transport, which live in this process only, and with a store that is not
    :attr:`~grantctl.state.base.StateStore.fork_safe`).
    """
    if fmt not in FORMATS:
        raise GrantctlError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    selected = connection_names(repo, names)
    run_store = store or _open_store(repo)
    workers = workers_for_run(
        selected,
        concurrency,
        requested=workers,
        injected=store is not None or transport is not None,
        fork_safe=run_store.fork_safe,
    )
    clock = (lambda: now) if now is not None else None

    def run_part(part: list[str], share: Share) -> PartResult[HealthResult]:
        slots = share.of_concurrency(concurrency)
        results, counters = asyncio.run(_health(repo, run_store, part, slots, clock, policy, transport, share))
        return PartResult(results, counters)

    if workers > 1:
        shared_tls_context()  # made once, before the workers fork (see there)
    run = run_parts(selected, workers, run_part)
    output = render_health(run.results, run.counters, fmt=fmt, generated_at=now or datetime.now(UTC))
    return Outcome(output, health_exit_code(run.results))


async def _health(
    repo: Repo,
    store: StateStore,
    names: list[str],
    concurrency: int,
    clock: Callable[[], datetime] | None,
    policy: RetryPolicy | None,
    transport: httpx.AsyncBaseTransport | None,
    share: Share,
) -> tuple[list[HealthResult], RunCounters]:
    async with open_run(
        repo, store, concurrency=concurrency, clock=clock, policy=policy, transport=transport, share=share
    ) as ctx:
        results = await check_all(ctx, names, concurrency=concurrency)
        return results, ctx.counters


def health_exit_code(results: Sequence[HealthResult]) -> int:
    """1 when any connection could not be checked, else 2 when any is not healthy, else 0."""
    if any(result.status == "error" for result in results):
        return EXIT_ERROR
    if any(not result.healthy for result in results):
        return EXIT_CHANGES
    return EXIT_OK


def _open_store(repo: Repo) -> StateStore:
    from grantctl.state.registry import open_store

    return open_store(repo)
