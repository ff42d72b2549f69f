"""An asyncio rate limiter that keeps refresh and health inside each provider's limits.

Three limits apply to every call, all from :class:`~grantctl.providers.base.RateLimits`:

- per (provider, tenant): at most ``per_tenant_concurrency`` calls in flight, and
  ``per_tenant_per_minute`` calls started in any sliding 60-second window;
- per (provider, app), the app being the OAuth client id: ``per_app_per_minute`` calls per window.

The server's own view wins over our bookkeeping: a 429 blocks the tenant (or, when Xero's
``X-Rate-Limit-Problem`` says ``appminute``, the app) for ``Retry-After`` seconds, and
``X-MinLimit-Remaining: 0`` / ``X-AppMinLimit-Remaining: 0`` make us wait for the window to roll over.
Hints reach the limiter either through :meth:`RateLimiter.observe` or, with no extra code at the call
site, through :meth:`RateLimiter.on_response` installed as an httpx response hook: the hook knows which
tenant a response belongs to because :meth:`RateLimiter.slot` records the key in a context variable.

Waiting is bounded: if a call would have to wait more than ``max_wait`` seconds, the slot raises a
transient :class:`~grantctl.errors.ProviderError` (status 429) instead of sleeping.

Example::

    limiter = RateLimiter({"xero": XeroProvider.limits})
    async with httpx.AsyncClient(event_hooks={"response": [limiter.on_response]}) as http:
        async with limiter.slot("xero", tenant=tenant_id, app=client_id):
            result = await provider.probe(http, tokens, tenant_id)
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from grantctl.errors import ProviderError
from grantctl.providers._http import parse_retry_after
from grantctl.providers.base import RateLimits

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

WINDOW_SECONDS = 60.0
DEFAULT_MAX_WAIT_SECONDS = 300.0
# 429 without a usable Retry-After: wait this long rather than hammer the server.
DEFAULT_RETRY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class LimitKey:
    """Which budget a call spends: the provider, the tenant (None for tenant-less calls) and the app."""

    provider: str
    tenant: str | None
    app: str


@dataclass
class _Window:
    """Start times of recent calls in a sliding window, plus a "blocked until" set by server hints."""

    limit: int
    seconds: float
    started: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0

    def ready_at(self, now: float) -> float:
        """The earliest time a new call may start."""
        self._forget_before(now)
        ready = self.blocked_until
        if len(self.started) >= self.limit:
            # The call that started ``limit`` calls ago must leave the window first.
            ready = max(ready, self.started[-self.limit] + self.seconds)
        return ready

    def record(self, now: float) -> None:
        self.started.append(now)

    def block_until(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)

    def exhausted(self, now: float) -> None:
        """The server says nothing is left in its window.

        Its window holds at least our own calls, so one slot frees no later than our oldest call in the
        window leaves it; without a call of ours in view, wait a whole window.
        """
        self._forget_before(now)
        self.block_until(self.started[0] + self.seconds if self.started else now + self.seconds)

    def _forget_before(self, now: float) -> None:
        while self.started and self.started[0] <= now - self.seconds:
            self.started.popleft()


_current_key: contextvars.ContextVar[LimitKey | None] = contextvars.ContextVar("grantctl_ratelimit_key", default=None)


class RateLimiter:
    """Per-tenant concurrency and per-minute windows, and a per-app window, for each provider.

    ``limits`` maps provider names to their limits. ``clock`` (monotonic seconds) and ``sleep`` are
    injectable so tests run instantly and exactly.
    """

    def __init__(
        self,
        limits: Mapping[str, RateLimits],
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        window: float = WINDOW_SECONDS,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._limits = dict(limits)
        self._clock = clock
        self._wall_clock = wall_clock  # only to read Retry-After given as an HTTP date
        self._sleep = sleep
        self.max_wait = max_wait
        self._window_seconds = window
        self._tenant_windows: dict[tuple[str, str | None], _Window] = {}
        self._app_windows: dict[tuple[str, str], _Window] = {}
        self._semaphores: dict[tuple[str, str | None], asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, provider: str, *, tenant: str | None, app: str) -> AsyncIterator[LimitKey]:
        """Wait until a call for ``tenant`` of ``app`` may start, and hold a concurrency slot meanwhile.

        ``tenant=None`` is for calls that spend no tenant's budget (token endpoint): only the app window
        applies. Raises ``ProviderError`` (status 429, transient) when the wait would exceed ``max_wait``.
        """
        key = LimitKey(provider, tenant, app)
        # Concurrency first: a task queued behind the cap must not hold a place in the minute window.
        async with self._semaphore(key):
            await self._wait_for_windows(key)
            token = _current_key.set(key)
            try:
                yield key
            finally:
                _current_key.reset(token)

    async def _wait_for_windows(self, key: LimitKey) -> None:
        windows = self._windows(key)
        while True:
            now = self._clock()
            ready = max(window.ready_at(now) for window in windows)
            if ready <= now:
                # No await between this check and the records: no other task can take the place.
                for window in windows:
                    window.record(now)
                return
            wait = ready - now
            if wait > self.max_wait:
                raise ProviderError(
                    key.provider,
                    f"rate limit: the next call may start in {wait:.0f} s, "
                    f"longer than the {self.max_wait:g} s grantctl waits",
                    status=429,
                    retry_after=wait,
                )
            await self._sleep(wait)

    def observe(self, key: LimitKey, *, status: int, headers: Mapping[str, str]) -> None:
        """Apply the server's hints from one response (429 + Retry-After, remaining-call headers)."""
        now = self._clock()
        lowered = {name.lower(): value for name, value in headers.items()}
        if status == 429:
            retry_after = parse_retry_after(lowered.get("retry-after"), now=self._wall_clock())
            wait = DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after
            # Xero names the exhausted limit: minute, day, concurrent (tenant) or appminute (app).
            problem = lowered.get("x-rate-limit-problem", "").lower()
            window = self._app_window(key) if "app" in problem or key.tenant is None else self._tenant_window(key)
            window.block_until(now + wait)
        if key.tenant is not None and _is_zero(lowered.get("x-minlimit-remaining")):
            self._tenant_window(key).exhausted(now)
        if _is_zero(lowered.get("x-appminlimit-remaining")):
            self._app_window(key).exhausted(now)

    async def on_response(self, response: httpx.Response) -> None:
        """httpx response hook: feeds :meth:`observe` for calls made inside :meth:`slot`; ignores others."""
        key = _current_key.get()
        if key is not None:
            self.observe(key, status=response.status_code, headers=response.headers)

    def _limits_of(self, provider: str) -> RateLimits:
        try:
            return self._limits[provider]
        except KeyError:
            raise ValueError(f"no rate limits registered for provider {provider!r}") from None

    def _windows(self, key: LimitKey) -> list[_Window]:
        if key.tenant is None:
            return [self._app_window(key)]
        return [self._tenant_window(key), self._app_window(key)]

    def _semaphore(self, key: LimitKey) -> AbstractAsyncContextManager[object]:
        if key.tenant is None:
            self._limits_of(key.provider)  # unknown providers fail the same way with or without a tenant
            return nullcontext()
        index = (key.provider, key.tenant)
        if index not in self._semaphores:
            self._semaphores[index] = asyncio.Semaphore(self._limits_of(key.provider).per_tenant_concurrency)
        return self._semaphores[index]

    def _tenant_window(self, key: LimitKey) -> _Window:
        index = (key.provider, key.tenant)
        if index not in self._tenant_windows:
            limit = self._limits_of(key.provider).per_tenant_per_minute
            self._tenant_windows[index] = _Window(limit, self._window_seconds)
        return self._tenant_windows[index]

    def _app_window(self, key: LimitKey) -> _Window:
        index = (key.provider, key.app)
        if index not in self._app_windows:
            limit = self._limits_of(key.provider).per_app_per_minute
            self._app_windows[index] = _Window(limit, self._window_seconds)
        return self._app_windows[index]


def _is_zero(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return int(value.strip()) <= 0
    except ValueError:
        return False
