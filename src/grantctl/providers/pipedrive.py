"""Pipedrive: OAuth at oauth.pipedrive.com, the API at each company's ``api_domain``.

Scopes are fixed when the app is registered, so the authorize URL takes no scope parameter and the
granted scopes come only from the token response's ``scope`` (comma separated). A grant reaches one
company: ``GET {api_domain}/api/v1/users/me`` names it (``data.company_id``, ``data.company_name``).
Revocation (``POST /oauth/revoke``, RFC 7009) is UNCONFIRMED: a 404 is reported as "not supported".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx

from grantctl.errors import ProviderError
from grantctl.providers._http import Call, JsonObject, json_object, label_for, optional_str, sanitize
from grantctl.providers._tokens import expiry, optional_token, parse_scopes, required_str
from grantctl.providers.base import (
    DEFINITE_REFUSALS,
    AuthorizedUser,
    ClientCredentials,
    Endpoints,
    ProbeResult,
    Provider,
    RateLimits,
    Tenant,
    TokenSet,
    UnsupportedOperation,
    http_url_problem,
)

# Pipedrive's company domains serve the API under /api/v1 (api.pipedrive.com answers there too).
USERS_ME_PATH = "/api/v1/users/me"


@dataclass(frozen=True)
class _Me:
    company: Tenant | None
    user: AuthorizedUser | None


class PipedriveProvider(Provider):
    """Pipedrive Marketplace / private apps."""

    name = "pipedrive"
    default_endpoints = Endpoints(
        authorize_url="https://oauth.pipedrive.com/oauth/authorize",
        token_url="https://oauth.pipedrive.com/oauth/token",  # noqa: S106 (a URL, not a password)
        revocation_url="https://oauth.pipedrive.com/oauth/revoke",
        # Used only when a token set carries no api_domain (e.g. tokens loaded from older state).
        api_url="https://api.pipedrive.com",
    )
    # Not from Pipedrive's docs: conservative limits for the handful of calls grantctl makes per company.
    limits = RateLimits(per_tenant_concurrency=5, per_tenant_per_minute=60, per_app_per_minute=600)
    supports_scope_param = False
    # One grant = one company; removing it needs the client credentials, which disconnect() does not get.
    supports_disconnect = False
    default_pkce = False
    client_auth = "basic"

    async def _token_set(
        self,
        http: httpx.AsyncClient,
        answer: JsonObject,
        *,
        status: int,
        previous_refresh_token: str | None,
        first_grant: bool,
    ) -> TokenSet:
        access_token = required_str(self.name, answer, "access_token", what="the token response", status=status)
        scopes = parse_scopes(answer.get("scope"))
        if scopes is None:
            raise ProviderError(self.name, "the token response does not say which scopes were granted", status=status)
        api_domain = _valid_api_domain(answer.get("api_domain"))
        tokens = TokenSet(
            access_token=access_token,
            refresh_token=optional_token(answer, "refresh_token") or previous_refresh_token,
            id_token=None,
            expires_at=expiry(answer, {}, now=self._now()),
            granted_scopes=scopes,
            api_domain=api_domain,
        )
        if not first_grant:
            return tokens
        # Who consented is only in /users/me; ask once, at the consent, for the audit trail.
        me = await self._me(http, tokens)
        return replace(tokens, user=me.user)

    def _api(self, tokens: TokenSet, path: str) -> str:
        base = tokens.api_domain or self.endpoints.api_url
        return base.rstrip("/") + path

    async def _me(self, http: httpx.AsyncClient, tokens: TokenSet) -> _Me:
        call = self._me_call(tokens)
        return _parse_me(await self._get_json(http, call))

    def _me_call(self, tokens: TokenSet) -> Call:
        url = self._api(tokens, USERS_ME_PATH)
        return Call("GET", url, label=label_for("GET", url), headers=self._bearer(tokens), secrets=tokens.secrets())

    # -- tenants ---------------------------------------------------------------------------------------

    async def tenants_of_authorization(self, http: httpx.AsyncClient, tokens: TokenSet) -> list[Tenant]:
        """The one company the grant belongs to."""
        return await self.list_tenants(http, tokens)

    async def list_tenants(self, http: httpx.AsyncClient, tokens: TokenSet) -> list[Tenant]:
        """The company of the access token (``GET /api/v1/users/me``)."""
        me = await self._me(http, tokens)
        return [me.company] if me.company else []

    # -- disconnect, revoke, probe ---------------------------------------------------------------------

    async def disconnect(self, http: httpx.AsyncClient, tokens: TokenSet, tenant: Tenant) -> None:
        """Not available: a Pipedrive grant is one company, so use :meth:`revoke` (it needs the app credentials)."""
        raise UnsupportedOperation(
            self.name, "cannot disconnect a single company; revoke the grant instead (grantctl revoke)"
        )

    async def revoke(self, http: httpx.AsyncClient, creds: ClientCredentials, refresh_token: str) -> None:
        """``POST /oauth/revoke`` (RFC 7009, HTTP Basic). A 404 raises :class:`UnsupportedOperation`."""
        url = self._revocation_url()
        call = Call(
            "POST",
            url,
            label=label_for("POST", url),
            headers={"Accept": "application/json"},
            form={"token": refresh_token, "token_type_hint": "refresh_token"},
            auth=httpx.BasicAuth(creds.client_id, creds.client_secret),
            secrets=(refresh_token, creds.client_secret),
        )
        response = await self._send(http, call, accept={404})
        if response.status_code == 404:
            raise UnsupportedOperation(
                self.name,
                f"{call.label} answered 404: token revocation does not seem to be supported here; "
                "uninstall the app from the Pipedrive company's Marketplace settings instead",
                status=404,
            )

    async def probe(self, http: httpx.AsyncClient, tokens: TokenSet, tenant_id: str) -> ProbeResult:
        """``GET /api/v1/users/me``: the token works and still belongs to company ``tenant_id``."""
        call = self._me_call(tokens)
        response = await self._send(http, call, accept=DEFINITE_REFUSALS)
        if not response.is_success:
            return self._refusal_result(call, response)
        company = _parse_me(json_object(self.name, call, response)).company
        if company is None:
            return ProbeResult(False, call.label, response.status_code, "answered without a company")
        if company.id != tenant_id:
            return ProbeResult(
                False, call.label, response.status_code, f"token belongs to company {company.id}, not {tenant_id}"
            )
        return ProbeResult(True, call.label, response.status_code, f"company {company.id} {sanitize(company.name)!r}")


def _valid_api_domain(value: object) -> str | None:
    # The access token is sent to this host, so only a well-formed http(s) URL is accepted; otherwise the
    # configured api_url is used.
    if isinstance(value, str) and http_url_problem(value) is None:
        return value
    return None


def _parse_me(answer: JsonObject) -> _Me:
    data = answer.get("data")
    if not isinstance(data, dict):
        return _Me(company=None, user=None)
    company_id = optional_str(data, "company_id")
    company = Tenant(id=company_id, name=optional_str(data, "company_name") or company_id) if company_id else None
    user_id, email, name = (optional_str(data, k) for k in ("id", "email", "name"))
    user = AuthorizedUser(id=user_id, email=email, name=name) if user_id or email or name else None
    return _Me(company=company, user=user)
