"""Turning a provider's answer to a consent into observed state: which tenant to keep, and the new Grant.

Shared by the callback server (``grantctl serve``) and ``grantctl connect``. Pure functions of their
inputs: no I/O, no clock of their own.

The organisation rule is :meth:`grantctl.models.Organization.accepts` (the same one plan, health and
audit use): the pinned ``organization.tenantId`` decides; when nothing is pinned, the name, ignoring
case and runs of whitespace (HubSpot, whose tenants are named by domain, accepts any tenant until it is
pinned). Of the tenants one consent connected, exactly one right tenant
is kept and every other one is let go; no right tenant, or several that the name cannot tell apart,
means nothing is kept.

Example::

    choice = choose_tenants(connection.spec.organization, tenants, provider=connection.spec.provider)
    if choice.keep is not None:
        grant = grant_after_consent(connection, token_set, choice.keep, previous=old, now=now)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from grantctl.models import Connection, Organization
from grantctl.providers.base import Tenant as ProviderTenant
from grantctl.providers.base import TokenSet
from grantctl.state.model import AuthorizedBy, Grant, Tenant, Tokens


@dataclass(frozen=True)
class TenantChoice:
    """What to do with the tenants of one consent.

    ``keep`` is the right tenant (None when there is none, or when several match an unpinned name:
    ``ambiguous``); ``release`` are the tenants to disconnect: every tenant that is not kept.
    """

    keep: ProviderTenant | None
    release: tuple[ProviderTenant, ...]
    ambiguous: bool = False

    @property
    def extra(self) -> tuple[ProviderTenant, ...]:
        """Tenants ticked next to the kept one (empty when nothing is kept)."""
        return self.release if self.keep is not None else ()


def is_right_tenant(organization: Organization, tenant: ProviderTenant, *, provider: str) -> bool:
    """The rule of :meth:`Organization.accepts`, for a tenant a provider just returned."""
    return organization.accepts(tenant.id, tenant.name, provider=provider)


def choose_tenants(organization: Organization, tenants: Sequence[ProviderTenant], *, provider: str) -> TenantChoice:
    """Which of one consent's ``tenants`` to keep and which to let go."""
    unique = list({tenant.id: tenant for tenant in tenants}.values())
    right = [tenant for tenant in unique if is_right_tenant(organization, tenant, provider=provider)]
    if len(right) == 1:
        keep = right[0]
        return TenantChoice(keep=keep, release=tuple(t for t in unique if t.id != keep.id))
    # Two organisations with the expected name and no pinned id: keeping either could keep the
    # wrong one, so neither is kept and the client is asked to tick only the right one.
    return TenantChoice(keep=None, release=tuple(unique), ambiguous=len(right) > 1)


def grant_after_consent(
    connection: Connection,
    tokens: TokenSet,
    tenant: ProviderTenant,
    *,
    previous: Grant | None,
    now: datetime,
) -> Grant:
    """The grant to store after a successful consent for ``tenant``.

    Granted scopes come from the token answer, never from the request. The link history of
    ``previous`` is kept; everything that described the old grant's health or refresh is reset.
    """
    user = tokens.user
    return Grant(
        connection=connection.name,
        provider=connection.spec.provider,
        tenant=Tenant(id=tenant.id, name=tenant.name, type=tenant.type),
        granted_scopes=sorted(set(tokens.granted_scopes)),
        authorized_by=AuthorizedBy(user_id=user.id, email=user.email, name=user.name) if user else None,
        authorized_at=now,
        auth_event_id=tokens.auth_event_id or tenant.auth_event_id,
        api_domain=tokens.api_domain,
        access_token_expires_at=tokens.expires_at,
        refresh_token_issued_at=now if tokens.refresh_token else None,
        links=list(previous.links) if previous else [],
    )


def tokens_for_state(tokens: TokenSet) -> Tokens:
    """The encrypted part of the state document."""
    return Tokens(access_token=tokens.access_token, refresh_token=tokens.refresh_token, id_token=tokens.id_token)


def token_set_from_state(grant: Grant, tokens: Tokens, *, now: datetime) -> TokenSet:
    """The stored tokens in the shape providers take, for calls made on an existing grant.

    An unknown expiry counts as "now": the provider's 401 then triggers one refresh.
    """
    if tokens.access_token is None:
        raise ValueError("no access token stored")  # callers refresh first when there is none
    return TokenSet(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        id_token=tokens.id_token,
        expires_at=grant.access_token_expires_at or now,
        granted_scopes=tuple(grant.granted_scopes),
        auth_event_id=grant.auth_event_id,
        api_domain=grant.api_domain,
    )


__all__ = [
    "TenantChoice",
    "choose_tenants",
    "grant_after_consent",
    "is_right_tenant",
    "token_set_from_state",
    "tokens_for_state",
]
