"""XeroProvider against httpx.MockTransport: request shapes, token reading, tenants, disconnect, probe."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from grantctl.errors import ProviderError
from grantctl.providers import Endpoints, Tenant, TokenSet, UnsupportedOperation, XeroProvider

SECRET = "CLIENT-SECRET-d2a4f1c07b9e43a58e16"
CODE = "AUTH-CODE-7f3e9a1b2c4d5e6f"
REDIRECT = "https://grantctl.example/callback"
REQUESTED = ["openid", "email", "offline_access", "accounting.invoices", "accounting.contacts"]


def xero(clock, **kwargs):
    return XeroProvider(clock=clock, **kwargs)


def access_token(jwt, **claims):
    base = {
        "xero_userid": "user-1",
        "authentication_event_id": "event-1",
        "scope": ["offline_access", "openid", "email", "accounting.invoices"],
        "exp": 1_900_000_000,
    }
    return jwt({**base, **claims})


def token_answer(jwt, **overrides):
    answer = {
        "access_token": access_token(jwt),
        "refresh_token": "REFRESH-TOKEN-11111111111111111111",
        "id_token": jwt(
            {"xero_userid": "user-1", "email": "sam@acme.example", "given_name": "Sam", "family_name": "Lee"}
        ),
        "expires_in": 1800,
        "token_type": "Bearer",
    }
    answer.update(overrides)
    return {k: v for k, v in answer.items() if v is not None}


def tokens_with(jwt, auth_event_id="event-1"):
    return TokenSet(
        access_token=access_token(jwt),
        refresh_token="REFRESH-TOKEN-11111111111111111111",
        id_token=None,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        granted_scopes=("accounting.invoices",),
        auth_event_id=auth_event_id,
    )


def connection(tenant_id, *, event, updated, conn_id=None, name=None):
    return {
        "id": conn_id or f"conn-{tenant_id}",
        "authEventId": event,
        "tenantId": tenant_id,
        "tenantType": "ORGANISATION",
        "tenantName": name or f"Org {tenant_id}",
        "createdDateUtc": "2026-01-01T00:00:00.0000000",
        "updatedDateUtc": updated,
    }


# -- authorize URL ---------------------------------------------------------------------------------------


def test_authorize_url_carries_exactly_the_documented_parameters(creds, clock):
    url = xero(clock).authorize_url(creds, redirect_uri=REDIRECT, scopes=REQUESTED, state="st-1")

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://login.xero.com/identity/connect/authorize"
    assert dict(parse_qsl(parts.query)) == {
        "response_type": "code",
        "client_id": "client-id-123",
        "redirect_uri": REDIRECT,
        "scope": " ".join(REQUESTED),
        "state": "st-1",
    }
    assert "+" not in parts.query  # spaces are %20, which every OAuth server reads the same way
    assert SECRET not in url


def test_pkce_is_off_by_default_and_sends_s256_challenge_when_enabled(creds, clock):
    assert xero(clock).pkce is False
    with pytest.raises(ValueError, match="PKCE is disabled"):
        xero(clock).authorize_url(creds, redirect_uri=REDIRECT, scopes=[], state="s", code_challenge="c")

    url = xero(clock, pkce=True).authorize_url(creds, redirect_uri=REDIRECT, scopes=[], state="s", code_challenge="ch")

    query = dict(parse_qsl(urlsplit(url).query))
    assert query["code_challenge"] == "ch"
    assert query["code_challenge_method"] == "S256"
    with pytest.raises(ValueError, match="PKCE is enabled"):
        xero(clock, pkce=True).authorize_url(creds, redirect_uri=REDIRECT, scopes=[], state="s")


def test_authorize_url_keeps_a_query_already_in_an_overridden_url(creds, clock):
    endpoints = Endpoints(
        authorize_url="http://127.0.0.1:9/identity/connect/authorize?tenant=x",
        token_url="http://127.0.0.1:9/t",
        revocation_url=None,
        api_url="http://127.0.0.1:9",
    )
    url = XeroProvider(endpoints, clock=clock).authorize_url(creds, redirect_uri=REDIRECT, scopes=["a"], state="s")
    assert url.startswith("http://127.0.0.1:9/identity/connect/authorize?tenant=x&response_type=code&")


# -- code exchange ---------------------------------------------------------------------------------------


def test_exchange_code_uses_basic_auth_and_the_documented_form(creds, clock, jwt, server, call_with):
    server.reply("POST", "/connect/token", json=token_answer(jwt))

    call_with(lambda http: xero(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    request = server.requests[0]
    assert str(request.url) == "https://identity.xero.com/connect/token"
    expected = base64.b64encode(f"client-id-123:{SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert server.form() == {"grant_type": "authorization_code", "code": CODE, "redirect_uri": REDIRECT}


def test_exchange_reads_scopes_from_the_token_not_from_the_request(creds, clock, jwt, server, call_with):
    server.reply("POST", "/connect/token", json=token_answer(jwt))

    tokens = call_with(lambda http: xero(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    # accounting.contacts was requested but is not in the token: it was not granted.
    assert tokens.granted_scopes == ("accounting.invoices", "email", "offline_access", "openid")
    assert tokens.auth_event_id == "event-1"
    assert tokens.expires_at == clock() + timedelta(seconds=1800)
    assert tokens.refresh_token == "REFRESH-TOKEN-11111111111111111111"
    assert tokens.user is not None
    assert (tokens.user.id, tokens.user.email, tokens.user.name) == ("user-1", "sam@acme.example", "Sam Lee")


def test_scope_claim_may_be_a_space_separated_string(creds, clock, jwt, server, call_with):
    answer = token_answer(jwt, access_token=access_token(jwt, scope="openid  accounting.contacts offline_access"))
    server.reply("POST", "/connect/token", json=answer)

    tokens = call_with(lambda http: xero(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    assert tokens.granted_scopes == ("accounting.contacts", "offline_access", "openid")


def test_response_scope_field_stands_in_only_when_the_token_has_no_claim(creds, clock, server, call_with):
    answer = {"access_token": "opaque-token", "expires_in": 1800, "scope": "openid offline_access"}
    server.reply("POST", "/connect/token", json=answer)

    tokens = call_with(lambda http: xero(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    assert tokens.granted_scopes == ("offline_access", "openid")
    assert tokens.auth_event_id is None


def test_no_scope_information_at_all_is_an_error_not_an_empty_grant(creds, clock, server, call_with):
    server.reply("POST", "/connect/token", json={"access_token": "opaque-token", "expires_in": 1800})

    with pytest.raises(ProviderError, match="does not say which scopes were granted") as caught:
        call_with(lambda http: xero(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))
    assert "opaque-token" not in str(caught.value)


def test_user_falls_back_to_the_access_token_without_an_id_token(creds, clock, jwt, server, call_with):
    server.reply("POST", "/connect/token", json=token_answer(jwt, id_token=None))

    tokens = call_with(lambda http: xero(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    assert tokens.id_token is None
    assert tokens.user is not None
    assert (tokens.user.id, tokens.user.email, tokens.user.name) == ("user-1", None, None)


def test_expiry_falls_back_to_the_exp_claim(creds, clock, jwt, server, call_with):
    server.reply("POST", "/connect/token", json=token_answer(jwt, expires_in=None))

    tokens = call_with(lambda http: xero(clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT))

    assert tokens.expires_at.timestamp() == 1_900_000_000


def test_exchange_sends_the_verifier_when_pkce_is_on(creds, clock, jwt, server, call_with):
    server.reply("POST", "/connect/token", json=token_answer(jwt))
    provider = xero(clock, pkce=True)

    call_with(
        lambda http: provider.exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT, code_verifier="v" * 43)
    )

    assert server.form()["code_verifier"] == "v" * 43


# -- refresh ---------------------------------------------------------------------------------------------


def test_refresh_sends_the_refresh_token_and_takes_the_rotated_one(creds, clock, jwt, server, call_with):
    server.reply("POST", "/connect/token", json=token_answer(jwt, refresh_token="REFRESH-TOKEN-NEW-22222222222"))

    tokens = call_with(lambda http: xero(clock).refresh(http, creds, "REFRESH-TOKEN-OLD-1111111111"))

    assert server.form() == {"grant_type": "refresh_token", "refresh_token": "REFRESH-TOKEN-OLD-1111111111"}
    assert server.requests[0].headers["Authorization"].startswith("Basic ")
    assert tokens.refresh_token == "REFRESH-TOKEN-NEW-22222222222"


def test_refresh_keeps_the_old_refresh_token_when_none_comes_back(creds, clock, jwt, server, call_with):
    server.reply("POST", "/connect/token", json=token_answer(jwt, refresh_token=None))

    tokens = call_with(lambda http: xero(clock).refresh(http, creds, "REFRESH-TOKEN-OLD-1111111111"))

    assert tokens.refresh_token == "REFRESH-TOKEN-OLD-1111111111"


# -- tenants ---------------------------------------------------------------------------------------------


def test_tenants_of_authorization_filters_by_the_tokens_auth_event(clock, jwt, server, call_with):
    server.reply(
        "GET",
        "/connections",
        json=[
            connection("t-1", event="event-1", updated="2026-11-20T11:59:00"),
            connection("t-2", event="event-1", updated="2026-11-20T11:59:01"),
        ],
    )

    tenants = call_with(lambda http: xero(clock).tenants_of_authorization(http, tokens_with(jwt)))

    request = server.requests[0]
    assert str(request.url) == "https://api.xero.com/connections?authEventId=event-1"
    assert request.headers["Authorization"] == f"Bearer {access_token(jwt)}"
    assert [t.id for t in tenants] == ["t-1", "t-2"]
    first = tenants[0]
    assert (first.name, first.type, first.connection_id, first.auth_event_id) == (
        "Org t-1",
        "ORGANISATION",
        "conn-t-1",
        "event-1",
    )
    assert first.updated_at is not None
    assert first.updated_at.tzinfo is not None


def test_tenants_of_authorization_refilters_when_the_server_ignores_the_query(clock, jwt, server, call_with):
    server.reply(
        "GET",
        "/connections",
        json=[
            connection("t-old", event="event-0", updated="2026-11-20T11:59:59"),
            connection("t-mine", event="event-1", updated="2026-01-01T00:00:00"),
        ],
    )

    tenants = call_with(lambda http: xero(clock).tenants_of_authorization(http, tokens_with(jwt)))

    assert [t.id for t in tenants] == ["t-mine"]


def test_tenants_fall_back_to_the_most_recently_updated_connections(clock, jwt, server, call_with):
    everything = [
        connection("t-earlier", event="event-0", updated="2026-11-01T10:00:00.1234567"),
        connection("t-now-a", event="event-0", updated="2026-11-20T11:59:58.1833130"),
        connection("t-now-b", event="event-0", updated="2026-11-20T11:59:59.0000000"),
    ]

    def connections(request: httpx.Request) -> httpx.Response:
        # The re-consent kept its old authEventId: filtering by the new one finds nothing.
        return httpx.Response(200, json=[] if "authEventId" in request.url.params else everything)

    server.route("GET", "/connections", connections)

    tenants = call_with(lambda http: xero(clock).tenants_of_authorization(http, tokens_with(jwt)))

    assert [str(r.url) for r in server.requests] == [
        "https://api.xero.com/connections?authEventId=event-1",
        "https://api.xero.com/connections",
    ]
    assert [t.id for t in tenants] == ["t-now-a", "t-now-b"]


def test_fallback_never_guesses_among_connections_without_timestamps(clock, jwt, server, call_with):
    undated = [connection("t-1", event="e", updated=None), connection("t-2", event="e", updated="garbage")]
    server.reply("GET", "/connections", json=undated)

    tenants = call_with(lambda http: xero(clock).tenants_of_authorization(http, tokens_with(jwt, auth_event_id=None)))

    assert tenants == []
    assert len(server.requests) == 1  # no authEventId in the token: one unfiltered call


def test_list_tenants_skips_entries_without_a_tenant_id(clock, jwt, server, call_with):
    server.reply("GET", "/connections", json=[{"id": "c"}, "junk", connection("t-1", event="e", updated=None)])

    tenants = call_with(lambda http: xero(clock).list_tenants(http, tokens_with(jwt)))

    assert [t.id for t in tenants] == ["t-1"]
    assert tenants[0].updated_at is None


def test_a_non_list_connections_answer_is_a_provider_error(clock, jwt, server, call_with):
    server.reply("GET", "/connections", json={"oops": True})

    with pytest.raises(ProviderError, match="other than a JSON array"):
        call_with(lambda http: xero(clock).list_tenants(http, tokens_with(jwt)))


# -- disconnect and revoke -------------------------------------------------------------------------------


def test_disconnect_deletes_the_connection_by_its_id(clock, jwt, server, call_with):
    server.reply("DELETE", "/connections/conn-1", status=204)
    tenant = Tenant(id="t-1", name="Acme", connection_id="conn-1")

    call_with(lambda http: xero(clock).disconnect(http, tokens_with(jwt), tenant))

    request = server.requests[0]
    assert (request.method, str(request.url)) == ("DELETE", "https://api.xero.com/connections/conn-1")
    assert request.headers["Authorization"] == f"Bearer {access_token(jwt)}"


def test_disconnect_treats_404_as_already_gone(clock, jwt, server, call_with):
    server.reply("DELETE", "/connections/conn-1", status=404)

    call_with(
        lambda http: xero(clock).disconnect(http, tokens_with(jwt), Tenant("t-1", "Acme", connection_id="conn-1"))
    )

    assert len(server.requests) == 1


def test_disconnect_raises_on_other_failures(clock, jwt, server, call_with):
    server.reply("DELETE", "/connections/conn-1", status=403, json={"Title": "Forbidden"})

    with pytest.raises(ProviderError) as caught:
        call_with(
            lambda http: xero(clock).disconnect(http, tokens_with(jwt), Tenant("t-1", "Acme", connection_id="conn-1"))
        )
    assert caught.value.status == 403
    assert not caught.value.transient


def test_disconnect_without_connection_id_looks_it_up(clock, jwt, server, call_with):
    server.reply("GET", "/connections", json=[connection("t-1", event="e", updated=None, conn_id="c/1")])
    server.reply("DELETE", "/connections/c/1", status=204)  # the fake routes on the decoded path

    call_with(lambda http: xero(clock).disconnect(http, tokens_with(jwt), Tenant("t-1", "Acme")))

    assert [r.method for r in server.requests] == ["GET", "DELETE"]
    assert server.requests[1].url.raw_path == b"/connections/c%2F1"  # an id can never add a path segment


def test_disconnect_of_a_tenant_no_longer_listed_does_nothing(clock, jwt, server, call_with):
    server.reply("GET", "/connections", json=[])

    call_with(lambda http: xero(clock).disconnect(http, tokens_with(jwt), Tenant("t-9", "Gone")))

    assert [r.method for r in server.requests] == ["GET"]


def test_revoke_posts_the_refresh_token_with_basic_auth(creds, clock, server, call_with):
    server.reply("POST", "/connect/revocation", status=200)

    call_with(lambda http: xero(clock).revoke(http, creds, "REFRESH-TOKEN-11111111111111111111"))

    request = server.requests[0]
    assert str(request.url) == "https://identity.xero.com/connect/revocation"
    assert server.form() == {"token": "REFRESH-TOKEN-11111111111111111111"}
    assert request.headers["Authorization"].startswith("Basic ")


def test_revoke_without_a_revocation_endpoint_is_unsupported(creds, clock, server, call_with):
    endpoints = Endpoints("http://127.0.0.1:9/a", "http://127.0.0.1:9/t", None, "http://127.0.0.1:9")

    with pytest.raises(UnsupportedOperation) as caught:
        call_with(lambda http: XeroProvider(endpoints, clock=clock).revoke(http, creds, "R" * 40))
    assert not caught.value.transient
    assert server.requests == []


# -- probe -----------------------------------------------------------------------------------------------


def test_probe_calls_organisation_for_the_tenant(clock, jwt, server, call_with):
    server.reply("GET", "/api.xro/2.0/Organisation", json={"Organisations": [{"Name": "Acme Ltd"}]})

    result = call_with(lambda http: xero(clock).probe(http, tokens_with(jwt), "t-1"))

    request = server.requests[0]
    assert request.headers["xero-tenant-id"] == "t-1"
    assert request.headers["Authorization"] == f"Bearer {access_token(jwt)}"
    assert result.ok
    assert result.call == "GET /api.xro/2.0/Organisation"
    assert result.status == 200
    assert "Acme Ltd" in result.detail


def test_probe_reports_a_refusal_as_evidence_not_an_exception(clock, jwt, server, call_with):
    problem = {"Type": None, "Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"}
    server.reply("GET", "/api.xro/2.0/Organisation", status=403, json=problem)

    result = call_with(lambda http: xero(clock).probe(http, tokens_with(jwt), "t-1"))

    assert not result.ok
    assert result.status == 403
    assert "AuthenticationUnsuccessful" in result.detail
    assert access_token(jwt) not in result.detail


def test_probe_raises_transient_errors_for_the_caller_to_retry(clock, jwt, server, call_with):
    server.reply("GET", "/api.xro/2.0/Organisation", status=429, headers={"Retry-After": "12"})

    with pytest.raises(ProviderError) as caught:
        call_with(lambda http: xero(clock).probe(http, tokens_with(jwt), "t-1"))
    assert caught.value.transient
    assert caught.value.retry_after == 12


def test_probe_without_an_organisation_is_not_ok(clock, jwt, server, call_with):
    server.reply("GET", "/api.xro/2.0/Organisation", json={"Organisations": []})

    result = call_with(lambda http: xero(clock).probe(http, tokens_with(jwt), "t-1"))

    assert not result.ok
    assert result.status == 200


def test_every_call_passes_a_timeout(clock, jwt, server, call_with):
    seen = []

    def organisation(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"Organisations": [{"Name": "A"}]})

    server.route("GET", "/api.xro/2.0/Organisation", organisation)

    call_with(lambda http: xero(clock, timeout=3.5).probe(http, tokens_with(jwt), "t-1"))

    assert seen == [{"connect": 3.5, "read": 3.5, "write": 3.5, "pool": 3.5}]
