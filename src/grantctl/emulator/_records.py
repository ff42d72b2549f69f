"""The emulator's records and errors: plain data, no behaviour beyond formatting."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GrantKey = tuple[str, str]  # (user id, client_id)


class AuthorizeError(Exception):
    """An authorize request Xero would answer with its own error page (no redirect)."""

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")


class OAuthError(Exception):
    """A token or revocation endpoint error: the OAuth ``error`` code and the HTTP status."""

    def __init__(self, error: str, status: int = 400) -> None:
        self.error = error
        self.status = status
        super().__init__(f"{error} (HTTP {status})")


class ApiError(Exception):
    """An API error in Xero's problem+json shape."""

    def __init__(self, status: int, title: str, detail: str, www_authenticate: str | None = None) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.www_authenticate = www_authenticate
        super().__init__(f"{status} {title}: {detail}")


def xero_timestamp(moment: float) -> str:
    """Xero's connection timestamp format: UTC, no offset, 7 fractional digits."""
    text = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text + "0"


@dataclass
class Connection:
    """One tenant connected to one (user, app) grant."""

    id: str
    tenant_id: str
    auth_event_id: str
    created_at: float
    updated_at: float


@dataclass
class Session:
    """What a consent establishes and every token derived from it repeats."""

    auth_event_id: str
    auth_time: float
    session_id: str


@dataclass
class Grant:
    """Everything one user granted one app. ``generation`` goes up on revocation, killing older tokens."""

    user_id: str
    client_id: str
    scopes: set[str] = field(default_factory=set)
    connections: dict[str, Connection] = field(default_factory=dict)  # by tenant id
    generation: int = 0
    refreshes: int = 0
    tokens_issued: int = 0

    @property
    def key(self) -> GrantKey:
        """The (user, app) pair this grant belongs to."""
        return (self.user_id, self.client_id)


@dataclass(frozen=True)
class AuthorizeRequest:
    """A validated authorize request (no secrets in it: codes and tokens come later)."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    login_hint: str | None


@dataclass
class PendingConsent:
    """An authorize request whose consent page is waiting for Allow or Cancel."""

    request: AuthorizeRequest
    created_at: float


@dataclass
class CodeRecord:
    """What an authorization code stands for. The code itself is only ever a dict key, so no
    record that might be printed or logged contains it (the same holds for the token records)."""

    key: GrantKey
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    session: Session
    issued_at: float
    generation: int


@dataclass
class RefreshTokenRecord:
    """A refresh token's life: when issued, when first used (the grace window starts there)."""

    key: GrantKey
    issued_at: float
    session: Session
    generation: int
    first_used_at: float | None = None


@dataclass(frozen=True)
class AccessTokenRecord:
    """Which grant generation an access token (by ``jti``) belongs to; revocation bumps the generation."""

    key: GrantKey
    generation: int
    expires_at: float


@dataclass(frozen=True)
class ScriptedConsent:
    """A queued answer for the next matching authorize request."""

    user_id: str
    tenants: tuple[str, ...]
    allow: bool
    scopes: frozenset[str] | None  # None: grant everything requested
    client_id: str | None  # None: the next authorize request of any app


@dataclass(frozen=True)
class TokenSet:
    """A token response. Tokens are left out of the repr."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    expires_in: int
    scopes: tuple[str, ...]

    def as_response(self, *, include_scope: bool) -> dict[str, Any]:
        """The JSON body of a successful token response."""
        body: dict[str, Any] = {}
        if self.id_token is not None:
            body["id_token"] = self.id_token
        body["access_token"] = self.access_token
        body["expires_in"] = self.expires_in
        body["token_type"] = "Bearer"  # noqa: S105 - a token type, not a password
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if include_scope:
            body["scope"] = " ".join(self.scopes)
        return body


@dataclass(frozen=True)
class AccessContext:
    """Who is calling the API, as read from a valid access token."""

    grant: Grant
    generation: int
    client_id: str
    scopes: frozenset[str]
