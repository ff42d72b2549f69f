"""Which tenant a consent keeps, and the grant written for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from grantctl.grants import (
    choose_tenants,
    grant_after_consent,
    is_right_tenant,
    tokens_for_state,
)
from grantctl.models import Connection, Organization
from grantctl.providers import AuthorizedUser, Tenant, TokenSet
from grantctl.state.model import Grant, LinkRecord, Reauthorize

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
ACME = Tenant(id="t-acme", name="Acme Ltd", type="ORGANISATION", connection_id="c1", auth_event_id="ev1")
HOLDINGS = Tenant(id="t-hold", name="Acme Holdings", type="ORGANISATION", connection_id="c2")
ACME_TWIN = Tenant(id="t-twin", name="ACME  ltd", type="ORGANISATION", connection_id="c3")


def organisation(name: str = "Acme Ltd", tenant_id: str | None = None) -> Organization:
    return Organization.model_validate({"name": name, "tenantId": tenant_id})


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("Acme Ltd", "acme ltd", True),
        ("  Acme   Ltd ", "Acme Ltd", True),
        ("Acme\tLtd", "ACME LTD", True),
        ("Acme Ltd", "Acme Limited", False),
        ("Acme Ltd", "AcmeLtd", False),
    ],
)
def test_same_organisation_name(left: str, right: str, same: bool) -> None:
    assert organisation(right).accepts("t-any", left, provider="xero") is same


def test_hubspot_hubs_are_named_by_domain_so_unpinned_accepts_any_until_pinned() -> None:
    assert organisation("Northwind Traders").accepts("12345", "northwind.hubspot.com", provider="hubspot")
    pinned = organisation("Northwind Traders", tenant_id="12345")
    assert not pinned.accepts("99999", "northwind.hubspot.com", provider="hubspot")


def test_pinned_tenant_id_decides_over_the_name() -> None:
    pinned = organisation("Acme Ltd", tenant_id="t-hold")
    assert is_right_tenant(pinned, HOLDINGS, provider="xero")
    assert not is_right_tenant(pinned, ACME, provider="xero")


def test_one_right_tenant_is_kept() -> None:
    choice = choose_tenants(organisation(), [ACME], provider="xero")
    assert choice.keep == ACME
    assert choice.release == ()
    assert choice.extra == ()


def test_several_ticked_keeps_the_right_one_and_releases_the_rest() -> None:
    choice = choose_tenants(organisation(), [HOLDINGS, ACME], provider="xero")
    assert choice.keep == ACME
    assert choice.release == (HOLDINGS,)
    assert choice.extra == (HOLDINGS,)


def test_wrong_organisation_releases_everything() -> None:
    choice = choose_tenants(organisation(), [HOLDINGS], provider="xero")
    assert choice.keep is None
    assert choice.release == (HOLDINGS,)
    assert not choice.ambiguous
    assert choice.extra == ()


def test_nothing_ticked() -> None:
    choice = choose_tenants(organisation(), [], provider="xero")
    assert choice.keep is None
    assert choice.release == ()


def test_two_organisations_with_the_expected_name_keep_neither() -> None:
    choice = choose_tenants(organisation(), [ACME, ACME_TWIN], provider="xero")
    assert choice.keep is None
    assert choice.ambiguous
    assert set(choice.release) == {ACME, ACME_TWIN}


def test_pinning_resolves_the_ambiguity() -> None:
    choice = choose_tenants(organisation(tenant_id="t-twin"), [ACME, ACME_TWIN], provider="xero")
    assert choice.keep == ACME_TWIN
    assert choice.release == (ACME,)


def test_duplicate_tenants_count_once() -> None:
    choice = choose_tenants(organisation(), [ACME, ACME], provider="xero")
    assert choice.keep == ACME
    assert choice.release == ()


def connection() -> Connection:
    return Connection.model_validate(
        {
            "apiVersion": "grantctl/v1",
            "kind": "Connection",
            "metadata": {"name": "acme-ltd", "owner": "jane@agency.example"},
            "spec": {
                "provider": "xero",
                "organization": {"name": "Acme Ltd"},
                "contact": {"name": "Sam", "email": "sam@acme.example"},
                "app": {"credentials": "acme-ltd.secrets.yaml"},
                "scopes": ["offline_access", "accounting.invoices", "accounting.contacts"],
            },
        }
    )


def token_set(**changes: object) -> TokenSet:
    values: dict[str, object] = {
        "access_token": "ACCESS-TOKEN-VALUE",
        "refresh_token": "REFRESH-TOKEN-VALUE",
        "id_token": "ID-TOKEN-VALUE",
        "expires_at": NOW + timedelta(minutes=30),
        # Granted differs from the manifest on purpose: the grant must say what was GRANTED.
        "granted_scopes": ("offline_access", "accounting.invoices", "openid"),
        "auth_event_id": "ev-token",
        "user": AuthorizedUser(id="u-1", email="sam@acme.example", name="Sam Lee"),
    }
    values.update(changes)
    return TokenSet(**values)  # type: ignore[arg-type]


def test_grant_records_what_was_granted_by_whom_and_when() -> None:
    grant = grant_after_consent(connection(), token_set(), ACME, previous=None, now=NOW)

    assert grant.connection == "acme-ltd"
    assert grant.provider == "xero"
    assert grant.tenant is not None
    assert (grant.tenant.id, grant.tenant.name, grant.tenant.type) == ("t-acme", "Acme Ltd", "ORGANISATION")
    assert grant.granted_scopes == ["accounting.invoices", "offline_access", "openid"]
    assert grant.authorized_by is not None
    assert grant.authorized_by.email == "sam@acme.example"
    assert grant.authorized_by.user_id == "u-1"
    assert grant.authorized_at == NOW
    assert grant.auth_event_id == "ev-token"
    assert grant.access_token_expires_at == NOW + timedelta(minutes=30)
    assert grant.refresh_token_issued_at == NOW


def test_grant_keeps_link_history_and_clears_old_trouble() -> None:
    record = LinkRecord(issued_at=NOW, action="connect", scopes=["a"], expires_at=NOW + timedelta(days=7))
    previous = Grant(
        connection="acme-ltd",
        provider="xero",
        links=[record],
        consecutive_failures=4,
        reauthorize=Reauthorize(reason="invalid_grant", at=NOW),
    )
    grant = grant_after_consent(connection(), token_set(), ACME, previous=previous, now=NOW)
    assert grant.links == [record]
    assert grant.consecutive_failures == 0
    assert grant.reauthorize is None


def test_grant_without_user_or_refresh_token() -> None:
    tokens = token_set(user=None, refresh_token=None, auth_event_id=None)
    grant = grant_after_consent(connection(), tokens, ACME, previous=None, now=NOW)
    assert grant.authorized_by is None
    assert grant.refresh_token_issued_at is None
    assert grant.auth_event_id == "ev1"  # falls back to the connection's authEventId


def test_tokens_for_state_and_no_secret_in_reprs() -> None:
    tokens = tokens_for_state(token_set())
    assert tokens.access_token == "ACCESS-TOKEN-VALUE"
    assert tokens.refresh_token == "REFRESH-TOKEN-VALUE"
    assert tokens.id_token == "ID-TOKEN-VALUE"
    grant = grant_after_consent(connection(), token_set(), ACME, previous=None, now=NOW)
    for text in (repr(tokens), repr(grant), str(grant.to_document())):
        for secret in ("ACCESS-TOKEN-VALUE", "REFRESH-TOKEN-VALUE", "ID-TOKEN-VALUE"):
            assert secret not in text
