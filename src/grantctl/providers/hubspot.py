"""HubSpot: OAuth v1 token endpoint, token metadata for hub and user, refresh-token deletion.

A HubSpot grant reaches exactly one account (hub). The token response carries ``hub_id`` and ``scopes``
since 2025-08-18; older answers do not, and the token metadata endpoint
(``GET /oauth/v1/access-tokens/{token}``) fills the gap. Whether a refresh returns a new refresh token is
UNCONFIRMED: both answers are handled (the old one is kept when none comes back).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from grantctl.errors import ProviderError
from grantctl.providers._http import Call, JsonObject, json_object, optional_str, sanitize
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
    path_segment,
)

# Paths of the metadata and refresh-token endpoints hold the token itself: messages use these labels.
METADATA_LABEL = "GET /oauth/v1/access-tokens/<access token>"
DELETE_LABEL = "DELETE /oauth/v1/refresh-tokens/<refresh token>"


@dataclass(frozen=True)
class _Metadata:
    hub_id: str | None
    hub_domain: str | None
    scopes: tuple[str, ...] | None
    user: AuthorizedUser | None


class HubSpotProvider(Provider):
    """HubSpot public apps (app.hubspot.com / api.hubapi.com)."""

    name = "hubspot"
    default_endpoints = Endpoints(
        authorize_url="https://app.hubspot.com/oauth/authorize",
        token_url="https://api.hubapi.com/oauth/v1/token",  # noqa: S106 (a URL, not a password)
        # DELETE {revocation_url}/{refresh_token} (developers.hubspot.com: "Delete a refresh token").
        revocation_url="https://api.hubapi.com/oauth/v1/refresh-tokens",
        api_url="https://api.hubapi.com",
    )
    # Not from HubSpot's docs: conservative limits for the handful of calls grantctl makes per hub.
    limits = RateLimits(per_tenant_concurrency=5, per_tenant_per_minute=100, per_app_per_minute=1_000)
    supports_scope_param = True
    default_pkce = False
    client_auth = "body"

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
        scopes = parse_scopes(answer.get("scopes"))
        if scopes is None:
            scopes = parse_scopes(answer.get("scope"))
        user: AuthorizedUser | None = None
        # The token answer never names the user, so a first grant always asks the metadata endpoint; a
        # refresh only does when the answer lacks the scopes (pre-2025-08-18 behaviour).
        if scopes is None or first_grant:
            metadata = await self._metadata(http, access_token)
            scopes = scopes if scopes is not None else metadata.scopes
            user = metadata.user
        if scopes is None:
            raise ProviderError(
                self.name, "neither the token response nor the token metadata list the scopes", status=status
            )
        return TokenSet(
            access_token=access_token,
            refresh_token=optional_token(answer, "refresh_token") or previous_refresh_token,
            id_token=None,
            expires_at=expiry(answer, {}, now=self._now()),
            granted_scopes=scopes,
            user=user,
        )

    async def _metadata(self, http: httpx.AsyncClient, access_token: str) -> _Metadata:
        call = self._metadata_call(access_token)
        return _parse_metadata(await self._get_json(http, call))

    def _metadata_call(self, access_token: str) -> Call:
        url = self.endpoints.api(f"/oauth/v1/access-tokens/{path_segment(access_token)}")
        return Call("GET", url, label=METADATA_LABEL, headers={"Accept": "application/json"}, secrets=(access_token,))

    # -- tenants ---------------------------------------------------------------------------------------

    async def tenants_of_authorization(self, http: httpx.AsyncClient, tokens: TokenSet) -> list[Tenant]:
        """The one hub the tokens belong to (HubSpot grants are per hub)."""
        return await self.list_tenants(http, tokens)

    async def list_tenants(self, http: httpx.AsyncClient, tokens: TokenSet) -> list[Tenant]:
        """The hub of the access token, from the token metadata endpoint."""
        metadata = await self._metadata(http, tokens.access_token)
        if metadata.hub_id is None:
            return []
        return [Tenant(id=metadata.hub_id, name=metadata.hub_domain or metadata.hub_id)]

    # -- disconnect, revoke, probe ---------------------------------------------------------------------

    async def disconnect(self, http: httpx.AsyncClient, tokens: TokenSet, tenant: Tenant) -> None:
        """A HubSpot grant covers one hub, so disconnecting it deletes the refresh token."""
        if tokens.refresh_token is None:
            raise UnsupportedOperation(
                self.name, "cannot disconnect a hub without its refresh token; uninstall the app in HubSpot instead"
            )
        await self._delete_refresh_token(http, tokens.refresh_token)

    async def revoke(self, http: httpx.AsyncClient, creds: ClientCredentials, refresh_token: str) -> None:
        """``DELETE /oauth/v1/refresh-tokens/{token}`` (HubSpot asks for no client authentication here).

        Access tokens already issued stay valid until they expire (at most 30 minutes).
        """
        await self._delete_refresh_token(http, refresh_token)

    async def _delete_refresh_token(self, http: httpx.AsyncClient, refresh_token: str) -> None:
        url = self._revocation_url().rstrip("/") + "/" + path_segment(refresh_token)
        call = Call("DELETE", url, label=DELETE_LABEL, secrets=(refresh_token,))
        await self._send(http, call)

    async def probe(self, http: httpx.AsyncClient, tokens: TokenSet, tenant_id: str) -> ProbeResult:
        """Token metadata: the token works and still belongs to hub ``tenant_id``."""
        call = self._metadata_call(tokens.access_token)
        response = await self._send(http, call, accept=DEFINITE_REFUSALS)
        if not response.is_success:
            return self._refusal_result(call, response)
        metadata = _parse_metadata(json_object(self.name, call, response))
        hub = sanitize(metadata.hub_id or "?")
        if metadata.hub_id != tenant_id:
            return ProbeResult(False, call.label, response.status_code, f"token belongs to hub {hub}, not {tenant_id}")
        domain = sanitize(metadata.hub_domain or "")
        return ProbeResult(True, call.label, response.status_code, f"hub {hub} {domain}".strip())


def _parse_metadata(answer: JsonObject) -> _Metadata:
    # The metadata answer echoes the token under "token": only the named fields below are ever read.
    user_id = optional_str(answer, "user_id")
    email = optional_str(answer, "user")
    return _Metadata(
        hub_id=optional_str(answer, "hub_id"),
        hub_domain=optional_str(answer, "hub_domain"),
        scopes=parse_scopes(answer.get("scopes")),
        user=AuthorizedUser(id=user_id, email=email) if user_id or email else None,
    )
