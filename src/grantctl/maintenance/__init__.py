"""Keeping grants alive and checking them: ``grantctl refresh`` and ``grantctl health``.

Both run every connection as an asyncio task, inside each provider's rate limits
(:mod:`grantctl.providers.ratelimit`), and both take the connection's lock before they touch its
tokens. A rotated refresh token is persisted before anything else happens. A large run is split
over a few worker processes (:mod:`grantctl.maintenance._workers`), each with its share of the
concurrency and of the limits.

Example::

    async with open_run(repo, store, concurrency=64) as ctx:
        results = await refresh_all(ctx, ["acme-ltd"], force=False, concurrency=64)
        health = await check_all(ctx, ["acme-ltd"], concurrency=64)

The CLI-facing functions are :func:`grantctl.commands.refresh.run_refresh` and
:func:`grantctl.commands.health.run_health`.
"""

from __future__ import annotations

from grantctl.maintenance._context import (
    DEFAULT_CONCURRENCY,
    PAUSE_HOOK_ENV,
    RetryPolicy,
    RunContext,
    connection_names,
    open_run,
)
from grantctl.maintenance._results import Evidence, HealthResult, RefreshResult, RunCounters
from grantctl.maintenance.health import check_all, check_connection
from grantctl.maintenance.refresh import decide, refresh_all, refresh_connection

__all__ = [
    "DEFAULT_CONCURRENCY",
    "PAUSE_HOOK_ENV",
    "Evidence",
    "HealthResult",
    "RefreshResult",
    "RetryPolicy",
    "RunContext",
    "RunCounters",
    "check_all",
    "check_connection",
    "connection_names",
    "decide",
    "open_run",
    "refresh_all",
    "refresh_connection",
]
