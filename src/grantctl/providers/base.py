"""The provider contract: value types every provider returns, and the :class:`Provider` base class.

A provider knows one OAuth server and one API: how to build the authorization URL, exchange a code,
refresh, find the tenants (organisations, hubs, companies) a grant covers, disconnect and revoke, and
make one cheap API call to prove a grant still works. All network I/O goes through an ``httpx.AsyncClient``
the caller injects, so tests can use ``httpx.MockTransport`` or the emulator on loopback.

Nothing here logs or formats a token, code or secret: the value types hide them from ``repr`` and
every error message is built from labels, HTTP statuses and OAuth error codes only.

Example::

    provider = get_provider("xero")
    url = provider.authorize_url(creds, redirect_uri=cb, scopes=["openid", "offline_access"], state=s)
    async with httpx.AsyncClient() as http:
        tokens = await provider.exchange_code(http, creds, code=code, redirect_uri=cb)
        tenants = await provider.tenants_of_authorization(http, tokens)
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlencode, urlsplit

import httpx

from grantctl.providers._http import (
    Call,
    Clock,
    JsonObject,
    PermanentProviderError,
    describe_refusal,
    json_object,
    send,
)

DEFAULT_TIMEOUT_SECONDS = 20.0
# Every 4xx except 429 is a definite answer about the grant (401 dead token, 403 revoked / wrong tenant,
# 404 unknown); 429 and 5xx only say "not now" and are raised as transient errors instead.
DEFINITE_REFUSALS = frozenset(range(400, 500)) - {429}

OVERRIDE_URL_KEYS = {
    "authorizeUrl": "authorize_url",
    "tokenUrl": "token_url",
    "revocationUrl": "revocation_url",
    "apiUrl": "api_url",
}


def http_url_problem(value: object) -> str | None:
    """Why ``value`` is not an absolute http(s) URL we may send requests to; None when it is one."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(value)
        _ = parts.port  # reading it validates it: a bad port raises ValueError
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@); they would be sent to the provider in clear"
    if parts.fragment:
        return "must not have a #fragment"
    return None


class BadOverride(ValueError):
    """An endpoint override is not usable; ``key`` is its camelCase name, ``reason`` says why."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key} {reason}")


@dataclass(frozen=True)
class Endpoints:
    """Where a provider lives. ``revocation_url`` is None when the provider has no revocation endpoint."""

    authorize_url: str
    token_url: str
    revocation_url: str | None
    api_url: str

    def __post_init__(self) -> None:
        for name in ("authorize_url", "token_url", "revocation_url", "api_url"):
            value = getattr(self, name)
            if value is None and name == "revocation_url":
                continue
            problem = http_url_problem(value)
            if problem:
                raise ValueError(f"{name} {problem}")

    def with_overrides(self, overrides: Mapping[str, object]) -> Endpoints:
        """A copy with the camelCase keys of ``grantctl.yaml`` ``providers.<name>`` applied.

        Unknown keys are ignored here (the registry rejects them with a location); a bad URL raises
        :class:`BadOverride` naming the key.
        """
        changes: dict[str, Any] = {}
        for key, attribute in OVERRIDE_URL_KEYS.items():
            if key not in overrides:
                continue
            value = overrides[key]
            if value is None and attribute == "revocation_url":
                changes[attribute] = None
                continue
            problem = http_url_problem(value)
            if problem:
                raise BadOverride(key, problem)
            changes[attribute] = value
        return replace(self, **changes)

    def api(self, path: str) -> str:
        """``api_url`` joined with ``path`` (which starts with '/'), keeping any base path of an override."""
        return self.api_url.rstrip("/") + path


@dataclass(frozen=True)
class ClientCredentials:
    """An app's OAuth client credentials. The secret never shows in ``repr``."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class AuthorizedUser:
    """Who clicked "Allow": from id_token claims or the provider's token metadata."""

    id: str | None
    email: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class TokenSet:
    """The result of a code exchange or refresh.

    ``granted_scopes`` always come from the provider's answer (token claim or response field), never from
    what was requested. ``api_domain`` is the per-account API base some providers return (Pipedrive);
    callers that persist tokens should keep it. Token values never show in ``repr``.
    """

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    expires_at: datetime
    granted_scopes: tuple[str, ...]
    auth_event_id: str | None = None
    user: AuthorizedUser | None = None
    api_domain: str | None = None

    def secrets(self) -> tuple[str, ...]:
        """The sensitive values held, for redaction and for tests that check nothing leaked."""
        return tuple(v for v in (self.access_token, self.refresh_token, self.id_token) if v)


@dataclass(frozen=True)
class Tenant:
    """One organisation / hub / company a grant reaches. ``connection_id`` is Xero's connection id."""

    id: str
    name: str
    type: str | None = None
    connection_id: str | None = None
    auth_event_id: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ProbeResult:
    """Evidence from one cheap API call: which call, what status, what it answered (never a secret)."""

    ok: bool
    call: str
    status: int | None
    detail: str


@dataclass(frozen=True)
class RateLimits:
    """The limits grantctl keeps to for one provider (see :mod:`grantctl.providers.ratelimit`)."""

    per_tenant_concurrency: int
    per_tenant_per_minute: int
    per_app_per_minute: int


class UnsupportedOperation(PermanentProviderError):
    """The provider cannot do this at all (no revocation endpoint, no per-tenant disconnect).

    Never transient: retrying will not help, whatever the status.
    """


ClientAuth = Literal["basic", "body"]


class Provider(abc.ABC):
    """Base class of every provider. Subclasses set the class attributes and implement the abstract methods.

    ``pkce`` says whether grantctl uses PKCE with this provider: when True callers must pass a
    ``code_challenge`` to :meth:`authorize_url` and the matching ``code_verifier`` to :meth:`exchange_code`;
    when False they must pass neither (a mismatch is a programming error: ``ValueError``).
    """

    name: ClassVar[str]
    default_endpoints: ClassVar[Endpoints]
    limits: ClassVar[RateLimits]
    supports_scope_param: ClassVar[bool] = True
    supports_disconnect: ClassVar[bool] = True
    default_pkce: ClassVar[bool] = False
    client_auth: ClassVar[ClientAuth] = "basic"
    # Authorize query parameters beyond client_id / redirect_uri / state / scope (e.g. response_type).
    extra_authorize_params: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        endpoints: Endpoints | None = None,
        *,
        pkce: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.endpoints = endpoints or self.default_endpoints
        self.pkce = self.default_pkce if pkce is None else pkce
        self.timeout = timeout
        self._clock = clock or _utc_now

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, endpoints={self.endpoints!r}, pkce={self.pkce!r})"

    # -- authorization ---------------------------------------------------------------------------------

    def authorize_url(
        self,
        creds: ClientCredentials,
        *,
        redirect_uri: str,
        scopes: Iterable[str],
        state: str,
        code_challenge: str | None = None,
    ) -> str:
        """The URL that sends the user to the provider's consent page.

        Scopes are sent space-separated when the provider takes a scope parameter; providers whose scopes
        are fixed at app registration (Pipedrive) ignore ``scopes``.
        """
        self._check_pkce_argument("code_challenge", code_challenge)
        params = {**self.extra_authorize_params, "client_id": creds.client_id, "redirect_uri": redirect_uri}
        if self.supports_scope_param:
            params["scope"] = " ".join(scopes)
        params["state"] = state
        if code_challenge is not None:
            params.update(code_challenge=code_challenge, code_challenge_method="S256")
        separator = "&" if urlsplit(self.endpoints.authorize_url).query else "?"
        return self.endpoints.authorize_url + separator + urlencode(params, quote_via=quote)

    async def exchange_code(
        self,
        http: httpx.AsyncClient,
        creds: ClientCredentials,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str | None = None,
    ) -> TokenSet:
        """Exchange an authorization code for tokens; granted scopes are read from the answer."""
        self._check_pkce_argument("code_verifier", code_verifier)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        answer, status = await self._token_request(http, creds, form, secrets=(code, code_verifier or ""))
        return await self._token_set(http, answer, status=status, previous_refresh_token=None, first_grant=True)

    async def refresh(self, http: httpx.AsyncClient, creds: ClientCredentials, refresh_token: str) -> TokenSet:
        """Use ``refresh_token`` for new tokens. Keeps ``refresh_token`` when the answer carries no new one."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        answer, status = await self._token_request(http, creds, form, secrets=(refresh_token,))
        return await self._token_set(
            http, answer, status=status, previous_refresh_token=refresh_token, first_grant=False
        )

    # -- provider specifics ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def _token_set(
        self,
        http: httpx.AsyncClient,
        answer: JsonObject,
        *,
        status: int,
        previous_refresh_token: str | None,
        first_grant: bool,
    ) -> TokenSet:
        """Build a :class:`TokenSet` from a successful token-endpoint answer."""

    @abc.abstractmethod
    async def tenants_of_authorization(self, http: httpx.AsyncClient, tokens: TokenSet) -> list[Tenant]:
        """The tenants this particular consent connected (the user may have ticked several)."""

    @abc.abstractmethod
    async def list_tenants(self, http: httpx.AsyncClient, tokens: TokenSet) -> list[Tenant]:
        """Every tenant the tokens can currently reach."""

    @abc.abstractmethod
    async def disconnect(self, http: httpx.AsyncClient, tokens: TokenSet, tenant: Tenant) -> None:
        """Remove the app's access to one tenant. A tenant that is already gone is not an error."""

    @abc.abstractmethod
    async def revoke(self, http: httpx.AsyncClient, creds: ClientCredentials, refresh_token: str) -> None:
        """Revoke the grant behind ``refresh_token`` (for Xero this removes ALL of the user's connections)."""

    @abc.abstractmethod
    async def probe(self, http: httpx.AsyncClient, tokens: TokenSet, tenant_id: str) -> ProbeResult:
        """One cheap API call proving the grant works for ``tenant_id``.

        Definite answers (2xx, 4xx other than 429) come back as a :class:`ProbeResult`; timeouts, 429 and
        5xx raise a transient :class:`ProviderError` so the caller can retry within its rate limits.
        """

    # -- helpers for subclasses ------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock()

    def _check_pkce_argument(self, name: str, value: str | None) -> None:
        if self.pkce and value is None:
            raise ValueError(f"{self.name}: PKCE is enabled, so {name} is required")
        if not self.pkce and value is not None:
            raise ValueError(f"{self.name}: PKCE is disabled, so {name} must not be passed")

    async def _send(self, http: httpx.AsyncClient, call: Call, *, accept: Collection[int] = ()) -> httpx.Response:
        return await send(http, self.name, call, timeout=self.timeout, clock=self._clock, accept=accept)

    async def _token_request(
        self, http: httpx.AsyncClient, creds: ClientCredentials, form: dict[str, str], *, secrets: Iterable[str]
    ) -> tuple[JsonObject, int]:
        """POST ``form`` to the token endpoint with this provider's client authentication."""
        auth: httpx.Auth | None = None
        if self.client_auth == "basic":
            auth = httpx.BasicAuth(creds.client_id, creds.client_secret)
        else:
            form = {**form, "client_id": creds.client_id, "client_secret": creds.client_secret}
        call = Call(
            "POST",
            self.endpoints.token_url,
            label=f"POST {urlsplit(self.endpoints.token_url).path or '/'} ({form['grant_type']})",
            headers={"Accept": "application/json"},
            form=form,
            auth=auth,
            secrets=(*secrets, creds.client_secret),
        )
        response = await self._send(http, call)
        return json_object(self.name, call, response), response.status_code

    def _bearer(self, tokens: TokenSet, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.access_token}", "Accept": "application/json", **extra}

    def _revocation_url(self) -> str:
        if self.endpoints.revocation_url is None:
            raise UnsupportedOperation(self.name, "has no revocation endpoint configured (revocationUrl)")
        return self.endpoints.revocation_url

    def _refusal_result(self, call: Call, response: httpx.Response) -> ProbeResult:
        """A failed probe: the safe reading of the refusal stands as evidence."""
        refusal = describe_refusal(call, response, clock=self._clock)
        detail = f"{refusal.message} (HTTP {response.status_code})"
        return ProbeResult(ok=False, call=call.label, status=response.status_code, detail=detail)

    async def _get_json(self, http: httpx.AsyncClient, call: Call) -> JsonObject:
        response = await self._send(http, call)
        return json_object(self.name, call, response)


def path_segment(value: str) -> str:
    """``value`` quoted for use as one URL path segment (no '/' or '?' can slip through)."""
    return quote(value, safe="")


def _utc_now() -> datetime:
    return datetime.now(UTC)
