"""Xero: OAuth 2.0 (web app, confidential client) and the Xero API's connections and Organisation.

Facts used (see the provider-facts brief): HTTP Basic client auth at the token endpoint; granted scopes
in the access-token JWT ``scope`` claim; ``authentication_event_id`` ties a token to the connections of
its consent; ``DELETE /connections/{id}`` answers 404 when the connection is already gone; revoking a
refresh token removes all of that user's connections to the app.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from grantctl.errors import ProviderError
from grantctl.providers._http import Call, JsonObject, json_list, json_object, label_for, optional_str, sanitize
from grantctl.providers._tokens import (
    expiry,
    jwt_claims,
    optional_token,
    parse_scopes,
    parse_timestamp,
    required_str,
)
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
    path_segment,
)

# Organisations ticked in one consent are stamped within moments of each other; when Xero keeps an old
# authEventId on re-consent we can only group by time, and a few seconds separates this consent's
# connections from any earlier one.
SAME_CONSENT_WINDOW = timedelta(seconds=10)


class XeroProvider(Provider):
    """Xero identity (login.xero.com / identity.xero.com) and API (api.xero.com)."""

    name = "xero"
    default_endpoints = Endpoints(
        authorize_url="https://login.xero.com/identity/connect/authorize",
        token_url="https://identity.xero.com/connect/token",  # noqa: S106 (a URL, not a password)
        revocation_url="https://identity.xero.com/connect/revocation",
        api_url="https://api.xero.com",
    )
    # developer.xero.com/faq/limits: 5 concurrent and 60/minute per tenant, 10,000/minute per app.
    limits = RateLimits(per_tenant_concurrency=5, per_tenant_per_minute=60, per_app_per_minute=10_000)
    supports_scope_param = True
    # PKCE for confidential web apps is UNCONFIRMED: off by default, switchable per provider config.
    default_pkce = False
    client_auth = "basic"
    extra_authorize_params: ClassVar[Mapping[str, str]] = {"response_type": "code"}

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
        claims = jwt_claims(access_token)
        id_token = optional_token(answer, "id_token")
        return TokenSet(
            access_token=access_token,
            refresh_token=optional_token(answer, "refresh_token") or previous_refresh_token,
            id_token=id_token,
            expires_at=expiry(answer, claims, now=self._now()),
            granted_scopes=self._granted_scopes(answer, claims, status=status),
            auth_event_id=optional_str(claims, "authentication_event_id"),
            user=_user(jwt_claims(id_token), claims),
        )

    def _granted_scopes(self, answer: JsonObject, claims: dict[str, Any], *, status: int) -> tuple[str, ...]:
        # The JWT claim is documented; a ``scope`` response field is UNCONFIRMED, so it only fills in
        # when the access token is opaque or carries no claim.
        scopes = parse_scopes(claims.get("scope"))
        if scopes is None:
            scopes = parse_scopes(answer.get("scope"))
        if scopes is None:
            raise ProviderError(
                self.name,
                "the token response does not say which scopes were granted "
                "(no 'scope' claim in the access token, no 'scope' field)",
                status=status,
            )
        return scopes

    # -- tenants ---------------------------------------------------------------------------------------

    async def tenants_of_authorization(self, http: httpx.AsyncClient, tokens: TokenSet) -> list[Tenant]:
        """The connections made by the consent behind ``tokens``.

        ``GET /connections?authEventId=<token's authentication_event_id>``; when that finds nothing (a
        re-consent may keep an older authEventId) the connection(s) updated most recently stand in.
        """
        if tokens.auth_event_id:
            filtered = await self._connections(http, tokens, auth_event_id=tokens.auth_event_id)
            # Filter again ourselves: a server that ignores the query parameter must not widen the result.
            mine = [t for t in filtered if t.auth_event_id == tokens.auth_event_id]
            if mine:
                return mine
            everything = filtered or await self._connections(http, tokens)
        else:
            everything = await self._connections(http, tokens)
        return most_recently_updated(everything)

    async def list_tenants(self, http: httpx.AsyncClient, tokens: TokenSet) -> list[Tenant]:
        """Every connection the tokens' user has made to this app (``GET /connections``)."""
        return await self._connections(http, tokens)

    async def _connections(
        self, http: httpx.AsyncClient, tokens: TokenSet, *, auth_event_id: str | None = None
    ) -> list[Tenant]:
        url = self.endpoints.api("/connections")
        call = Call(
            "GET",
            url,
            label=label_for("GET", url),
            headers=self._bearer(tokens),
            params={"authEventId": auth_event_id} if auth_event_id else None,
            secrets=tokens.secrets(),
        )
        response = await self._send(http, call)
        return [tenant for item in json_list(self.name, call, response) if (tenant := _tenant(item))]

    # -- disconnect, revoke, probe ---------------------------------------------------------------------

    async def disconnect(self, http: httpx.AsyncClient, tokens: TokenSet, tenant: Tenant) -> None:
        """``DELETE /connections/{id}``; 404 (or no such connection) means it is already gone."""
        connection_id = tenant.connection_id or await self._connection_id_of(http, tokens, tenant.id)
        if connection_id is None:
            return
        url = self.endpoints.api(f"/connections/{path_segment(connection_id)}")
        call = Call(
            "DELETE", url, label=label_for("DELETE", url), headers=self._bearer(tokens), secrets=tokens.secrets()
        )
        await self._send(http, call, accept={404})

    async def _connection_id_of(self, http: httpx.AsyncClient, tokens: TokenSet, tenant_id: str) -> str | None:
        for tenant in await self._connections(http, tokens):
            if tenant.id == tenant_id:
                return tenant.connection_id
        return None

    async def revoke(self, http: httpx.AsyncClient, creds: ClientCredentials, refresh_token: str) -> None:
        """``POST /connect/revocation`` with ``token=<refresh_token>``: removes ALL the user's connections."""
        url = self._revocation_url()
        call = Call(
            "POST",
            url,
            label=label_for("POST", url),
            headers={"Accept": "application/json"},
            form={"token": refresh_token},
            auth=httpx.BasicAuth(creds.client_id, creds.client_secret),
            secrets=(refresh_token, creds.client_secret),
        )
        await self._send(http, call)

    async def probe(self, http: httpx.AsyncClient, tokens: TokenSet, tenant_id: str) -> ProbeResult:
        """``GET /api.xro/2.0/Organisation`` for ``tenant_id`` (needs accounting.settings[.read])."""
        url = self.endpoints.api("/api.xro/2.0/Organisation")
        call = Call(
            "GET",
            url,
            label=label_for("GET", url),
            headers=self._bearer(tokens, **{"xero-tenant-id": tenant_id}),
            secrets=tokens.secrets(),
        )
        response = await self._send(http, call, accept=DEFINITE_REFUSALS)
        if not response.is_success:
            return self._refusal_result(call, response)
        name = _organisation_name(json_object(self.name, call, response))
        if name is None:
            return ProbeResult(False, call.label, response.status_code, "answered without an organisation")
        return ProbeResult(True, call.label, response.status_code, f"organisation {sanitize(name)!r}")


def most_recently_updated(tenants: list[Tenant]) -> list[Tenant]:
    """The tenants updated within :data:`SAME_CONSENT_WINDOW` of the newest ``updated_at``.

    Tenants without a timestamp are never picked: guessing could make the caller disconnect an
    organisation that belongs to another consent.
    """
    stamped = [t for t in tenants if t.updated_at is not None]
    if not stamped:
        return []
    newest = max(t.updated_at for t in stamped if t.updated_at is not None)
    return [t for t in stamped if t.updated_at is not None and newest - t.updated_at <= SAME_CONSENT_WINDOW]


def _tenant(item: object) -> Tenant | None:
    if not isinstance(item, dict):
        return None
    tenant_id = optional_str(item, "tenantId")
    if tenant_id is None:
        return None
    return Tenant(
        id=tenant_id,
        name=optional_str(item, "tenantName") or "",
        type=optional_str(item, "tenantType"),
        connection_id=optional_str(item, "id"),
        auth_event_id=optional_str(item, "authEventId"),
        updated_at=parse_timestamp(item.get("updatedDateUtc")),
    )


def _user(id_claims: dict[str, Any], access_claims: dict[str, Any]) -> AuthorizedUser | None:
    """Who consented: the id_token when there is one (openid scope), else the access token's xero_userid."""
    if id_claims:
        names = [optional_str(id_claims, k) for k in ("given_name", "family_name")]
        full_name = " ".join(n for n in names if n) or None
        user_id = optional_str(id_claims, "xero_userid") or optional_str(access_claims, "xero_userid")
        email = optional_str(id_claims, "email")
        if user_id or email or full_name:
            return AuthorizedUser(id=user_id, email=email, name=full_name)
    user_id = optional_str(access_claims, "xero_userid")
    return AuthorizedUser(id=user_id) if user_id else None


def _organisation_name(answer: JsonObject) -> str | None:
    organisations = answer.get("Organisations")
    if isinstance(organisations, list) and organisations and isinstance(organisations[0], dict):
        return optional_str(organisations[0], "Name") or ""
    return None
