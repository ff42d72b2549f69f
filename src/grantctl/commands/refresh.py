"""``grantctl refresh [NAME...] [--force] [--concurrency N] [--format text|json|markdown]``.

Refreshes the tokens that are due, concurrently and within the provider's rate limits; persists every
rotated refresh token before anything else. Exit 0 when all is fine, 2 when a connection needs a person
(reauthorization, or failures that outlasted the retries), 1 on an error (credentials that do not
decrypt, a state file that cannot be written, a bad manifest).

Example::

    outcome = run_refresh(repo, [], force=False, concurrency=64, fmt="text")
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import httpx

from grantctl.commands import Outcome
from grantctl.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, GrantctlError
from grantctl.maintenance import RefreshResult, RetryPolicy, RunCounters, connection_names, open_run, refresh_all
from grantctl.maintenance._context import shared_tls_context
from grantctl.maintenance._results import REFRESH_ATTENTION, REFRESH_ERRORS
from grantctl.maintenance._workers import PartResult, Share, run_parts, workers_for_run
from grantctl.maintenance.report import render_refresh
from grantctl.repo import Repo
from grantctl.state.base import StateStore

FORMATS = ("text", "json", "markdown")


def run_refresh(
    repo: Repo,
    names: Sequence[str],
    *,
    force: bool = False,
    concurrency: int = 64,
    fmt: str = "text",
    now: datetime | None = None,
    store: StateStore | None = None,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    workers: int | None = None,
) -> Outcome:
    """Refresh ``names`` (default: every connection) and report per connection and in total.

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

    def run_part(part: list[str], share: Share) -> PartResult[RefreshResult]:
        slots = share.of_concurrency(concurrency)
        results, counters = asyncio.run(_refresh(repo, run_store, part, force, slots, clock, policy, transport, share))
        return PartResult(results, counters)

    if workers > 1:
        shared_tls_context()  # made once, before the workers fork (see there)
    run = run_parts(selected, workers, run_part)
    output = render_refresh(run.results, run.counters, fmt=fmt, generated_at=now or datetime.now(UTC))
    return Outcome(output, refresh_exit_code(run.results))


async def _refresh(
    repo: Repo,
    store: StateStore,
    names: list[str],
    force: bool,
    concurrency: int,
    clock: Callable[[], datetime] | None,
    policy: RetryPolicy | None,
    transport: httpx.AsyncBaseTransport | None,
    share: Share,
) -> tuple[list[RefreshResult], RunCounters]:
    async with open_run(
        repo, store, concurrency=concurrency, clock=clock, policy=policy, transport=transport, share=share
    ) as ctx:
        results = await refresh_all(ctx, names, force=force, concurrency=concurrency)
        return results, ctx.counters


def refresh_exit_code(results: Sequence[RefreshResult]) -> int:
    """1 when any connection hit an error, else 2 when any needs a person, else 0."""
    if any(result.outcome in REFRESH_ERRORS for result in results):
        return EXIT_ERROR
    if any(result.outcome in REFRESH_ATTENTION for result in results):
        return EXIT_CHANGES
    return EXIT_OK


def _open_store(repo: Repo) -> StateStore:
    from grantctl.state.registry import open_store

    return open_store(repo)
