"""PipedriveProvider against httpx.MockTransport."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from grantctl.errors import ProviderError
from grantctl.providers import PipedriveProvider, Tenant, TokenSet, UnsupportedOperation

SECRET = "CLIENT-SECRET-d2a4f1c07b9e43a58e16"
CODE = "AUTH-CODE-7f3e9a1b2c4d5e6f"
ACCESS = "53:179:6317ef33a9fb0c4d604ce0695dad44a12bad44c9"
REFRESH = "53:179:5de81994d77491d22bc10eab3bc0810f84864297"
REDIRECT = "https://grantctl.example/callback"
ME = {
    "success": True,
    "data": {"id": 777, "name": "Sam Lee", "email": "sam@acme.example", "company_id": 42, "company_name": "Acme"},
}


def pipedrive(clock):
    return PipedriveProvider(clock=clock)


def token_answer(**overrides):
    answer = {
        "access_token": ACCESS,
        "token_type": "Bearer",
        "expires_in": 3599,
        "refresh_token": REFRESH,
        "scope": "base,deals:full,contacts:read",
        "api_domain": "https://acme.pipedrive.com",
    }
    answer.update(overrides)
    return {k: v for k, v in answer.items() if v is not None}


def tokens(api_domain="https://acme.pipedrive.com"):
    return TokenSet(ACCESS, REFRESH, None, datetime(2030, 1, 1, tzinfo=UTC), ("base",), api_domain=api_domain)


def test_authorize_url_has_no_scope_parameter(creds, clock):
    url = pipedrive(clock).authorize_url(creds, redirect_uri=REDIRECT, scopes=["deals:full"], state="s")

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://oauth.pipedrive.com/oauth/authorize"
    assert dict(parse_qsl(parts.query)) == {"client_id": "client-id-123", "redirect_uri": REDIRECT, "state": "s"}


def test_exchange_uses_basic_auth_reads_comma_scopes_and_the_user(creds, clock, server, call_with):
    server.reply("POST", "/oauth/token", json=token_answer())
    server.reply("GET", "/api/v1/users/me", json=ME)

    result = call_with(lambda http: pipedrive(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    token_request, me_request = server.requests
    expected = base64.b64encode(f"client-id-123:{SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == f"Basic {expected}"
    assert server.form(0) == {"grant_type": "authorization_code", "code": CODE, "redirect_uri": REDIRECT}
    assert str(me_request.url) == "https://acme.pipedrive.com/api/v1/users/me"
    assert me_request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert result.granted_scopes == ("base", "contacts:read", "deals:full")
    assert result.api_domain == "https://acme.pipedrive.com"
    assert result.user is not None
    assert (result.user.id, result.user.email, result.user.name) == ("777", "sam@acme.example", "Sam Lee")


def test_refresh_does_not_call_the_api_and_keeps_the_old_refresh_token(creds, clock, server, call_with):
    server.reply("POST", "/oauth/token", json=token_answer(refresh_token=None))

    result = call_with(lambda http: pipedrive(clock).refresh(http, creds, REFRESH))

    assert len(server.requests) == 1
    assert result.refresh_token == REFRESH
    assert result.user is None


def test_missing_scope_is_an_error(creds, clock, server, call_with):
    server.reply("POST", "/oauth/token", json=token_answer(scope=None))

    with pytest.raises(ProviderError, match="which scopes were granted"):
        call_with(lambda http: pipedrive(clock).refresh(http, creds, REFRESH))


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "ftp://acme.pipedrive.com", "https://u:p@x.example", 7])
def test_a_malformed_api_domain_is_ignored_so_the_token_goes_nowhere_odd(creds, clock, server, call_with, bad):
    server.reply("POST", "/oauth/token", json=token_answer(api_domain=bad))

    result = call_with(lambda http: pipedrive(clock).refresh(http, creds, REFRESH))

    assert result.api_domain is None


def test_tenant_is_the_company_from_users_me(clock, server, call_with):
    server.reply("GET", "/api/v1/users/me", json=ME)

    tenants = call_with(lambda http: pipedrive(clock).tenants_of_authorization(http, tokens()))

    assert tenants == [Tenant(id="42", name="Acme")]


def test_without_api_domain_the_configured_api_url_is_used(clock, server, call_with):
    server.reply("GET", "/api/v1/users/me", json=ME)

    call_with(lambda http: pipedrive(clock).list_tenants(http, tokens(api_domain=None)))

    assert str(server.requests[0].url) == "https://api.pipedrive.com/api/v1/users/me"


def test_revoke_is_rfc7009_with_basic_auth(creds, clock, server, call_with):
    server.reply("POST", "/oauth/revoke", status=200)

    call_with(lambda http: pipedrive(clock).revoke(http, creds, REFRESH))

    assert server.form() == {"token": REFRESH, "token_type_hint": "refresh_token"}
    assert server.requests[0].headers["Authorization"].startswith("Basic ")


def test_revoke_404_says_revocation_is_not_supported(creds, clock, server, call_with):
    server.reply("POST", "/oauth/revoke", status=404)

    with pytest.raises(UnsupportedOperation) as caught:
        call_with(lambda http: pipedrive(clock).revoke(http, creds, REFRESH))

    assert caught.value.status == 404
    assert not caught.value.transient
    assert "not seem to be supported" in str(caught.value)
    assert REFRESH not in str(caught.value)


def test_revoke_other_failures_are_ordinary_errors(creds, clock, server, call_with):
    server.reply("POST", "/oauth/revoke", status=503)

    with pytest.raises(ProviderError) as caught:
        call_with(lambda http: pipedrive(clock).revoke(http, creds, REFRESH))

    assert not isinstance(caught.value, UnsupportedOperation)
    assert caught.value.transient


def test_disconnect_is_unsupported_and_says_what_to_do(clock, server, call_with):
    assert PipedriveProvider.supports_disconnect is False
    with pytest.raises(UnsupportedOperation, match="revoke"):
        call_with(lambda http: pipedrive(clock).disconnect(http, tokens(), Tenant("42", "Acme")))
    assert server.requests == []


def test_probe_checks_the_company(clock, server, call_with):
    server.reply("GET", "/api/v1/users/me", json=ME)

    good = call_with(lambda http: pipedrive(clock).probe(http, tokens(), "42"))
    wrong = call_with(lambda http: pipedrive(clock).probe(http, tokens(), "43"))

    assert (good.ok, good.call, good.status) == (True, "GET /api/v1/users/me", 200)
    assert "Acme" in good.detail
    assert not wrong.ok


def test_probe_timeout_raises(clock, server, call_with):
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    server.route("GET", "/api/v1/users/me", slow)

    with pytest.raises(ProviderError) as caught:
        call_with(lambda http: pipedrive(clock).probe(http, tokens(), "42"))

    assert caught.value.status is None
