"""What refresh and health report per connection, and the counters of one run.

Every text here is built from labels (``"POST /connect/token (refresh_token)"``), HTTP statuses, OAuth
error codes and names: never from a token, code or secret, so results can be printed, logged and
written to the state file as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from grantctl.state.model import HealthStatus

RefreshOutcome = Literal["refreshed", "skipped", "reauthorize", "failed", "error"]
HealthReportStatus = HealthStatus | Literal["error"]

# Refresh outcomes that need a person (exit 2) and those that are grantctl or setup errors (exit 1).
REFRESH_ATTENTION: frozenset[str] = frozenset({"reauthorize", "failed"})
REFRESH_ERRORS: frozenset[str] = frozenset({"error"})


@dataclass(frozen=True)
class Evidence:
    """One observation: which call (or which stored fact) and what it answered."""

    call: str
    answer: str

    def __str__(self) -> str:
        return f"{self.call}: {self.answer}"


@dataclass
class Trace:
    """What happened to one connection during a run: evidence in order, and how many calls it took."""

    evidence: list[Evidence] = field(default_factory=list)
    attempts: int = 0

    def note(self, call: str, answer: str) -> None:
        self.evidence.append(Evidence(call, answer))


@dataclass(frozen=True)
class RefreshResult:
    """What ``refresh`` did for one connection.

    ``outcome``: refreshed; skipped (not due, not connected, or refreshed by another run meanwhile);
    reauthorize (the provider refused the refresh token, now or earlier: a person must send a new link);
    failed (transient failures outlasted the retries); error (a setup or storage problem).
    """

    name: str
    outcome: RefreshOutcome
    reason: str
    attempts: int = 0
    evidence: tuple[Evidence, ...] = ()

    @property
    def needs_attention(self) -> bool:
        return self.outcome in REFRESH_ATTENTION or self.outcome in REFRESH_ERRORS


@dataclass(frozen=True)
class HealthResult:
    """One connection's health: a single status, a one-line detail and the evidence behind it.

    ``status`` is one of the design's statuses, or ``error`` when grantctl could not check at all
    (unreadable state, credentials that do not decrypt); ``refreshed`` says the check had to refresh
    an expired access token first (and persisted the rotated tokens).
    """

    name: str
    status: HealthReportStatus
    detail: str
    evidence: tuple[Evidence, ...] = ()
    refreshed: bool = False

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"


@dataclass
class RunCounters:
    """Counts over one run: HTTP calls made, transient retries, 429 answers, failures after retries."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    transient_failures: int = 0
    persist_retries: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def record_status(self, status: int) -> None:
        """One HTTP answer arrived (called from the client's response hook)."""
        self.calls += 1
        key = str(status)
        self.by_status[key] = self.by_status.get(key, 0) + 1
        if status == 429:
            self.rate_limited += 1

    def record_no_answer(self) -> None:
        """One call got no HTTP answer at all (timeout, connection refused)."""
        self.calls += 1
        self.by_status["none"] = self.by_status.get("none", 0) + 1

    def as_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "retries": self.retries,
            "rateLimited": self.rate_limited,
            "transientFailures": self.transient_failures,
            "persistRetries": self.persist_retries,
            "byStatus": dict(sorted(self.by_status.items())),
        }
