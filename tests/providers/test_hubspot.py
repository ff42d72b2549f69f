"""HubSpotProvider against httpx.MockTransport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest

from grantctl.errors import ProviderError
from grantctl.providers import HubSpotProvider, Tenant, TokenSet, UnsupportedOperation

SECRET = "CLIENT-SECRET-d2a4f1c07b9e43a58e16"
CODE = "AUTH-CODE-7f3e9a1b2c4d5e6f"
ACCESS = "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4"
REFRESH = "5f3c2ae9-5c77-4ae7-b5c2-6cbe1a9a3e0f"
REDIRECT = "https://grantctl.example/callback"
METADATA_PATH = f"/oauth/v1/access-tokens/{ACCESS}"
METADATA = {
    "token": ACCESS,
    "user": "sam@acme.example",
    "hub_domain": "acme.hubspot.com",
    "scopes": ["oauth", "crm.objects.contacts.read"],
    "hub_id": 62515,
    "app_id": 456,
    "expires_in": 1750,
    "user_id": 123,
    "token_type": "access",
}


def hubspot(clock):
    return HubSpotProvider(clock=clock)


def tokens(refresh=REFRESH):
    return TokenSet(ACCESS, refresh, None, datetime(2030, 1, 1, tzinfo=UTC), ("oauth",))


def test_authorize_url_has_client_redirect_scope_state(creds, clock):
    url = hubspot(clock).authorize_url(
        creds, redirect_uri=REDIRECT, scopes=["oauth", "crm.objects.contacts.read"], state="s"
    )

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://app.hubspot.com/oauth/authorize"
    assert dict(parse_qsl(parts.query)) == {
        "client_id": "client-id-123",
        "redirect_uri": REDIRECT,
        "scope": "oauth crm.objects.contacts.read",
        "state": "s",
    }


def test_exchange_authenticates_in_the_body_and_reads_hub_and_user(creds, clock, server, call_with):
    server.reply(
        "POST",
        "/oauth/v1/token",
        json={
            "access_token": ACCESS,
            "refresh_token": REFRESH,
            "expires_in": 1800,
            "hub_id": 62515,
            "scopes": ["crm.objects.contacts.read", "oauth"],
        },
    )
    server.reply("GET", METADATA_PATH, json=METADATA)

    result = call_with(lambda http: hubspot(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    token_request = server.requests[0]
    assert str(token_request.url) == "https://api.hubapi.com/oauth/v1/token"
    assert "Authorization" not in token_request.headers
    assert server.form(0) == {
        "grant_type": "authorization_code",
        "code": CODE,
        "redirect_uri": REDIRECT,
        "client_id": "client-id-123",
        "client_secret": SECRET,
    }
    assert result.granted_scopes == ("crm.objects.contacts.read", "oauth")
    assert result.user is not None
    assert (result.user.id, result.user.email) == ("123", "sam@acme.example")
    assert result.expires_at == clock() + timedelta(seconds=1800)


def test_exchange_before_2025_answers_takes_scopes_from_metadata(creds, clock, server, call_with):
    server.reply("POST", "/oauth/v1/token", json={"access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 1800})
    server.reply("GET", METADATA_PATH, json={**METADATA, "scopes": ["oauth", "tickets"]})

    result = call_with(lambda http: hubspot(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    assert result.granted_scopes == ("oauth", "tickets")


def test_refresh_with_scopes_in_the_answer_makes_one_call(creds, clock, server, call_with):
    server.reply("POST", "/oauth/v1/token", json={"access_token": ACCESS, "expires_in": 1800, "scopes": ["oauth"]})

    result = call_with(lambda http: hubspot(clock).refresh(http, creds, REFRESH))

    assert len(server.requests) == 1
    assert server.form()["grant_type"] == "refresh_token"
    assert server.form()["refresh_token"] == REFRESH
    assert result.refresh_token == REFRESH  # none returned: the old one stays
    assert result.granted_scopes == ("oauth",)


def test_refresh_takes_a_new_refresh_token_when_one_is_returned(creds, clock, server, call_with):
    server.reply(
        "POST",
        "/oauth/v1/token",
        json={"access_token": ACCESS, "refresh_token": "new-refresh", "expires_in": 1800, "scopes": "oauth"},
    )

    result = call_with(lambda http: hubspot(clock).refresh(http, creds, REFRESH))

    assert result.refresh_token == "new-refresh"


def test_no_scopes_anywhere_is_an_error(creds, clock, server, call_with):
    server.reply("POST", "/oauth/v1/token", json={"access_token": ACCESS, "expires_in": 1800})
    server.reply("GET", METADATA_PATH, json={"hub_id": 1})

    with pytest.raises(ProviderError, match="list the scopes") as caught:
        call_with(lambda http: hubspot(clock).refresh(http, creds, REFRESH))
    assert not caught.value.transient  # the provider answered; asking again gives the same answer


def test_tenant_is_the_hub_from_metadata(clock, server, call_with):
    server.reply("GET", METADATA_PATH, json=METADATA)

    tenants = call_with(lambda http: hubspot(clock).tenants_of_authorization(http, tokens()))

    assert tenants == [Tenant(id="62515", name="acme.hubspot.com")]


def test_metadata_failure_message_hides_the_token_in_the_path(clock, server, call_with):
    server.reply("GET", METADATA_PATH, status=404, json={"status": "error", "message": "not found"})

    with pytest.raises(ProviderError) as caught:
        call_with(lambda http: hubspot(clock).list_tenants(http, tokens()))

    assert ACCESS not in str(caught.value)
    assert "GET /oauth/v1/access-tokens/<access token>" in str(caught.value)


def test_revoke_deletes_the_refresh_token(creds, clock, server, call_with):
    server.reply("DELETE", f"/oauth/v1/refresh-tokens/{REFRESH}", status=204)

    call_with(lambda http: hubspot(clock).revoke(http, creds, REFRESH))

    request = server.requests[0]
    assert (request.method, str(request.url)) == ("DELETE", f"https://api.hubapi.com/oauth/v1/refresh-tokens/{REFRESH}")


def test_revoke_failure_hides_the_refresh_token(creds, clock, server, call_with):
    server.reply("DELETE", f"/oauth/v1/refresh-tokens/{REFRESH}", status=400, json={"message": f"bad {REFRESH}"})

    with pytest.raises(ProviderError) as caught:
        call_with(lambda http: hubspot(clock).revoke(http, creds, REFRESH))

    assert REFRESH not in str(caught.value)


def test_disconnect_deletes_the_refresh_token_of_the_hub(clock, server, call_with):
    server.reply("DELETE", f"/oauth/v1/refresh-tokens/{REFRESH}", status=204)

    call_with(lambda http: hubspot(clock).disconnect(http, tokens(), Tenant("62515", "acme")))

    assert server.requests[0].method == "DELETE"


def test_disconnect_without_a_refresh_token_is_unsupported(clock, server, call_with):
    with pytest.raises(UnsupportedOperation):
        call_with(lambda http: hubspot(clock).disconnect(http, tokens(refresh=None), Tenant("62515", "acme")))
    assert server.requests == []


def test_probe_checks_the_token_still_belongs_to_the_hub(clock, server, call_with):
    server.reply("GET", METADATA_PATH, json=METADATA)

    good = call_with(lambda http: hubspot(clock).probe(http, tokens(), "62515"))
    wrong = call_with(lambda http: hubspot(clock).probe(http, tokens(), "999"))

    assert good.ok
    assert "acme.hubspot.com" in good.detail
    assert not wrong.ok
    assert "not 999" in wrong.detail
    assert ACCESS not in good.call + good.detail + wrong.detail


def test_probe_refusal_is_evidence(clock, server, call_with):
    server.reply("GET", METADATA_PATH, status=401, json={"status": "error", "category": "EXPIRED_AUTHENTICATION"})

    result = call_with(lambda http: hubspot(clock).probe(http, tokens(), "62515"))

    assert (result.ok, result.status) == (False, 401)
    assert "EXPIRED_AUTHENTICATION" in result.detail
