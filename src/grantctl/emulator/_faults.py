"""Injected latency and failures: bounded and deterministic (count-based, never random)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Endpoint = Literal["authorize", "consent", "token", "revocation", "connections", "organisation", "*"]
FaultMode = Literal["500", "503", "429", "timeout"]

ENDPOINTS: tuple[str, ...] = ("authorize", "consent", "token", "revocation", "connections", "organisation")


class FaultRule(BaseModel):
    """Fail the next ``count`` calls of ``endpoint`` (optionally only those of ``client_id``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: Endpoint = "*"
    mode: FaultMode
    count: int = Field(default=1, ge=1, le=10_000)
    client_id: str | None = None
    #: For mode 429: the Retry-After seconds and the X-Rate-Limit-Problem value sent.
    retry_after: int = Field(default=1, ge=0, le=86_400)
    problem: Literal["minute", "concurrent", "day", "appminute"] = "minute"
    #: For mode "timeout": how long the call hangs before answering 504.
    timeout_seconds: float = Field(default=30.0, gt=0, le=120)

    @field_validator("mode", mode="before")
    @classmethod
    def _status_as_text(cls, value: Any) -> Any:
        # Accept {"mode": 503} as well as {"mode": "503"}.
        return str(value) if isinstance(value, int) else value

    def matches(self, endpoint: str, client_id: str | None) -> bool:
        """True when this rule applies to a call of ``endpoint`` made by ``client_id``."""
        if self.endpoint not in ("*", endpoint):
            return False
        return self.client_id is None or self.client_id == client_id


class FaultConfig(BaseModel):
    """What ``POST /_emulator/faults`` sets; each POST replaces the previous configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(default=0, ge=0, le=10_000)
    fail: list[FaultRule] = Field(default_factory=list, max_length=100)
    #: Overrides the seed's rate_limits.enabled while set; ``None`` keeps the seed's choice.
    rate_limits: bool | None = None


class FaultInjector:
    """Holds the current configuration and how many failures each rule still has to inject."""

    def __init__(self) -> None:
        self.config = FaultConfig()
        self._remaining: list[int] = []

    def replace(self, config: FaultConfig) -> None:
        """Install ``config``; counts start afresh."""
        self.config = config
        self._remaining = [rule.count for rule in config.fail]

    def take(self, endpoint: str, client_id: str | None) -> FaultRule | None:
        """The first rule with failures left that matches this call, consuming one of them."""
        for index, rule in enumerate(self.config.fail):
            if self._remaining[index] > 0 and rule.matches(endpoint, client_id):
                self._remaining[index] -= 1
                return rule
        return None

    def describe(self) -> dict[str, Any]:
        """The configuration with the failures each rule still has left (for ``/_emulator/state``)."""
        rules = [
            {**rule.model_dump(), "remaining": remaining}
            for rule, remaining in zip(self.config.fail, self._remaining, strict=True)
        ]
        return {"latency_ms": self.config.latency_ms, "rate_limits": self.config.rate_limits, "fail": rules}
