"""Observed state: what a client actually granted, as written to ``state/<name>.yaml``.

A state document has two parts:

- the *grant* (:class:`Grant`): plaintext in the file, readable with no key, so ``plan`` and ``audit``
  run anywhere and reviewers see grant changes in diffs;
- the *tokens* (:class:`Tokens`): SOPS-encrypted values under ``tokens:``; only refresh, health and
  the callback server, which hold the key, ever see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from grantctl.models import ProviderName

STATE_KIND = "State"
TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")
HealthStatus = Literal[
    "healthy",
    "expiring",
    "reauthorize",
    "revoked",
    "wrong-organization",
    "access-denied",
    "scope-drift",
    "unreachable",
    "never-connected",
]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a timezone (write them in UTC with a Z)")
    return value


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tenant(_Model):
    id: str
    name: str
    type: str | None = None


class AuthorizedBy(_Model):
    user_id: str | None = None
    email: str | None = None
    name: str | None = None


class Health(_Model):
    status: HealthStatus
    at: UtcDateTime
    detail: str = ""


class Reauthorize(_Model):
    """Set when the grant can no longer be used and the client must click a new link."""

    reason: str
    at: UtcDateTime


class LinkRecord(_Model):
    """An authorization link that was issued (the link itself is not stored: it is a bearer secret)."""

    issued_at: UtcDateTime
    action: str
    scopes: list[str]
    expires_at: UtcDateTime
    commit: str | None = None


class Grant(_Model):
    """The plaintext part of a state document."""

    api_version: Literal["grantctl/v1"] = Field(default="grantctl/v1", alias="apiVersion")
    kind: Literal["State"] = "State"
    connection: str
    provider: ProviderName
    tenant: Tenant | None = None
    granted_scopes: list[str] = Field(default_factory=list)
    authorized_by: AuthorizedBy | None = None
    authorized_at: UtcDateTime | None = None
    auth_event_id: str | None = None
    api_domain: str | None = None  # Pipedrive answers with a per-company API host
    refreshed_at: UtcDateTime | None = None
    access_token_expires_at: UtcDateTime | None = None
    refresh_token_issued_at: UtcDateTime | None = None
    reauthorize: Reauthorize | None = None
    last_health: Health | None = None
    consecutive_failures: int = 0
    links: list[LinkRecord] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def connected(self) -> bool:
        """True once a client has completed consent at least once (and it was not revoked since)."""
        return self.tenant is not None

    def to_document(self) -> dict[str, object]:
        """The plaintext mapping written to disk (stable key order, no empty optional fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Tokens(_Model):
    """The encrypted part. ``repr`` hides every value."""

    access_token: str | None = Field(default=None, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    id_token: str | None = Field(default=None, repr=False)

    def to_document(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}
