"""Xero's API rate limits, on the emulator's clock.

Per (app, tenant): calls in progress, calls in the last 60 seconds, calls this (UTC) day; per app: calls
in the last 60 seconds. Windows are sliding deques, so every check is O(1) amortised.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TypeVar

from ._seed import RateLimitSettings

_MINUTE = 60.0
_DAY = 86_400.0

TenantKey = tuple[str, str]  # (client_id, tenant_id)
K = TypeVar("K")


@dataclass(frozen=True)
class Admitted:
    """The call may go ahead; ``headers`` are the remaining-quota headers Xero sends on success."""

    headers: dict[str, str]


@dataclass(frozen=True)
class Rejected:
    """Over a limit: answer 429 with these values."""

    problem: str  # X-Rate-Limit-Problem: concurrent | minute | day | appminute
    retry_after: int  # seconds


class RateLimiter:
    """Counts calls and decides whether the next one is over a limit (only when ``enforce`` is true).

    Counting happens whether or not limits are enforced, so the remaining-quota headers are always right.
    """

    def __init__(self, settings: RateLimitSettings) -> None:
        self._settings = settings
        self._in_flight: dict[TenantKey, int] = {}
        self._tenant_minute: dict[TenantKey, deque[float]] = {}
        self._tenant_day: dict[TenantKey, tuple[int, int]] = {}
        self._app_minute: dict[str, deque[float]] = {}

    def acquire(self, client_id: str, tenant_id: str, now: float, *, enforce: bool) -> Admitted | Rejected:
        """Admit one call (the caller must ``release`` it) or say which limit it breaks."""
        key = (client_id, tenant_id)
        limits = self._settings
        minute = _window(self._tenant_minute, key, now)
        app_minute = _window(self._app_minute, client_id, now)
        day_index = int(now // _DAY)
        day_count = self._day_count(key, day_index)
        if enforce:
            rejection = self._first_rejection(key, now, minute, app_minute, day_count, day_index)
            if rejection is not None:
                return rejection
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        minute.append(now)
        app_minute.append(now)
        self._tenant_day[key] = (day_index, day_count + 1)
        return Admitted(
            {
                "X-MinLimit-Remaining": str(max(limits.tenant_minute - len(minute), 0)),
                "X-DayLimit-Remaining": str(max(limits.tenant_day - day_count - 1, 0)),
                "X-AppMinLimit-Remaining": str(max(limits.app_minute - len(app_minute), 0)),
            }
        )

    def release(self, client_id: str, tenant_id: str) -> None:
        """The admitted call has finished."""
        key = (client_id, tenant_id)
        remaining = self._in_flight.get(key, 0) - 1
        if remaining > 0:
            self._in_flight[key] = remaining
        else:
            self._in_flight.pop(key, None)

    def _first_rejection(
        self,
        key: TenantKey,
        now: float,
        minute: deque[float],
        app_minute: deque[float],
        day_count: int,
        day_index: int,
    ) -> Rejected | None:
        limits = self._settings
        if self._in_flight.get(key, 0) >= limits.tenant_concurrent:
            return Rejected("concurrent", 1)
        if len(minute) >= limits.tenant_minute:
            return Rejected("minute", _seconds_until(minute[0] + _MINUTE, now))
        if day_count >= limits.tenant_day:
            return Rejected("day", _seconds_until((day_index + 1) * _DAY, now))
        if len(app_minute) >= limits.app_minute:
            return Rejected("appminute", _seconds_until(app_minute[0] + _MINUTE, now))
        return None

    def _day_count(self, key: TenantKey, day_index: int) -> int:
        stored_day, count = self._tenant_day.get(key, (day_index, 0))
        return count if stored_day == day_index else 0


def _window(windows: dict[K, deque[float]], key: K, now: float) -> deque[float]:
    window = windows.get(key)
    if window is None:
        window = windows[key] = deque()
    while window and window[0] <= now - _MINUTE:
        window.popleft()
    return window


def _seconds_until(moment: float, now: float) -> int:
    return max(1, math.ceil(moment - now))
