"""The token and revocation endpoints: codes, client authentication, rotation, grace, expiry, revocation."""

from __future__ import annotations

from grantctl.emulator import Behaviour
from grantctl.emulator.testing import decode_claims

DAY = 86_400


def test_client_secret_in_the_body_works_like_basic(flow, world):
    code = flow.code_via_script(tenants=[world.acme])
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": world.redirect_uri,
        "client_id": world.new_app,
        "client_secret": world.new_secret,
    }

    response = flow.client.post("/connect/token", data=form)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert set(response.json()) == {"id_token", "access_token", "refresh_token", "expires_in", "token_type"}


def test_bad_client_credentials_are_invalid_client(flow, world):
    code = flow.code_via_script(tenants=[world.acme])
    for client_id, secret in ((world.new_app, "wrong"), ("NOPE", world.new_secret), (world.old_app, world.new_secret)):
        response = flow.exchange(code, client_id=client_id, secret=secret)
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_client"}
    # the code was never consumed by the refused attempts
    assert flow.exchange(code).status_code == 200


def test_missing_client_credentials_are_invalid_client(flow, world):
    response = flow.client.post("/connect/token", data={"grant_type": "refresh_token", "refresh_token": "x"})

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client"}


def test_malformed_basic_headers_are_invalid_client(flow):
    form = {"grant_type": "refresh_token", "refresh_token": "x"}
    for header in ("Basic !!!", "Basic " + "é" * 8, "Basic bm9jb2xvbg==", "Basic //79"):  # no colon; bad UTF-8
        response = flow.client.post("/connect/token", data=form, headers={"Authorization": header.encode("latin-1")})
        assert response.status_code == 401, header
        assert response.json() == {"error": "invalid_client"}


def test_basic_and_body_client_ids_must_agree(flow, world):
    code = flow.code_via_script(tenants=[world.acme])

    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": world.redirect_uri}

    response = flow.client.post(
        "/connect/token", data={**form, "client_id": world.old_app}, auth=(world.new_app, world.new_secret)
    )

    assert response.status_code == 401
    assert flow.client.post("/connect/token", data=form, auth=(world.new_app, world.new_secret)).status_code == 200


def test_other_grant_types_are_unsupported(flow, world):
    for grant_type in ("client_credentials", "password", ""):
        response = flow.client.post(
            "/identity/connect/token", data={"grant_type": grant_type}, auth=(world.new_app, world.new_secret)
        )
        assert response.status_code == 400
        assert response.json() == {"error": "unsupported_grant_type"}


def test_a_json_body_is_not_accepted(flow, world):
    response = flow.client.post(
        "/connect/token", json={"grant_type": "refresh_token"}, auth=(world.new_app, world.new_secret)
    )

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request"}


def test_a_code_is_single_use(flow, world):
    code = flow.code_via_script(tenants=[world.acme])
    assert flow.exchange(code).status_code == 200

    reused = flow.exchange(code)

    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant"}


def test_a_code_expires_after_five_minutes(flow, world):
    fresh = flow.code_via_script(tenants=[world.acme])
    stale = flow.code_via_script(tenants=[world.acme])
    flow.advance(299)
    assert flow.exchange(fresh).status_code == 200

    flow.advance(2)

    assert flow.exchange(stale).json() == {"error": "invalid_grant"}


def test_redirect_uri_must_equal_the_authorize_one(flow, world):
    code = flow.code_via_script(tenants=[world.acme])

    response = flow.exchange(code, redirect_uri="http://localhost:8123/callback")

    assert response.json() == {"error": "invalid_grant"}


def test_a_code_belongs_to_its_app(flow, world):
    code = flow.code_via_script(tenants=[world.acme])

    response = flow.exchange(code, client_id=world.old_app, secret=world.old_secret)

    assert response.json() == {"error": "invalid_grant"}


def test_no_refresh_token_without_offline_access_and_no_id_token_without_openid(flow, world):
    tokens = flow.connect(tenants=[world.acme], scope="accounting.settings.read")

    assert set(tokens) == {"access_token", "expires_in", "token_type"}


def test_id_token_claims(flow, world):
    tokens = flow.connect(tenants=[world.acme])

    claims = decode_claims(tokens["id_token"])

    assert claims["xero_userid"] == world.sam
    assert claims["email"] == claims["preferred_username"] == "sam@acme.example"
    assert (claims["given_name"], claims["family_name"]) == ("Sam", "Lee")
    assert claims["aud"] == world.new_app
    assert claims["iss"] == flow.client.base_url.scheme + "://" + flow.client.base_url.netloc.decode()
    assert claims["sub"] == decode_claims(tokens["access_token"])["sub"]


def test_access_token_claims_match_xeros(flow, world):
    claims = decode_claims(flow.connect(tenants=[world.acme])["access_token"])

    expected = {"nbf", "exp", "iss", "aud", "client_id", "sub", "auth_time", "xero_userid", "global_session_id"}
    assert expected | {"jti", "authentication_event_id", "scope"} <= set(claims)
    assert isinstance(claims["scope"], list)


def test_token_response_scope_field_is_switchable(flow_for, make_seed, world):
    flow = flow_for(make_seed(behaviour=Behaviour(token_response_includes_scope=True)))

    tokens = flow.connect(tenants=[world.acme], scope="openid offline_access accounting.invoices")

    assert sorted(tokens["scope"].split()) == ["accounting.invoices", "offline_access", "openid"]


def test_refresh_rotates_the_refresh_token(flow, world):
    first = flow.connect(tenants=[world.acme])

    second = flow.refresh(first["refresh_token"]).json()
    third = flow.refresh(second["refresh_token"]).json()

    tokens = {first["refresh_token"], second["refresh_token"], third["refresh_token"]}
    assert len(tokens) == 3
    assert third["access_token"] != second["access_token"]
    assert flow.connections(third["access_token"]).status_code == 200
    grant = next(g for g in flow.state()["grants"] if g["client_id"] == world.new_app)
    assert grant["refreshes"] == 2
    assert flow.state()["counters"]["refreshes"] == 2


def test_a_used_refresh_token_can_be_retried_within_the_grace_window(flow, world):
    first = flow.connect(tenants=[world.acme])
    lost = flow.refresh(first["refresh_token"]).json()
    flow.advance(1_799)

    retried = flow.refresh(first["refresh_token"])

    assert retried.status_code == 200
    assert retried.json()["refresh_token"] not in (first["refresh_token"], lost["refresh_token"])
    assert flow.state()["counters"]["refresh_grace_reuses"] == 1
    # the token from the "lost" response is still good too
    assert flow.refresh(lost["refresh_token"]).status_code == 200


def test_a_used_refresh_token_is_dead_after_the_grace_window(flow, world):
    first = flow.connect(tenants=[world.acme])
    second = flow.refresh(first["refresh_token"]).json()
    flow.advance(1_801)

    assert flow.refresh(first["refresh_token"]).json() == {"error": "invalid_grant"}
    assert flow.refresh(second["refresh_token"]).status_code == 200


def test_seeded_refresh_token_works_and_expires_after_sixty_days_unused(flow, world):
    flow.advance(60 * DAY - 1)
    still_alive = flow.refresh(world.seeded_refresh_token, client_id=world.seeded_app, secret=world.seeded_secret)
    assert still_alive.status_code == 200
    fresh = still_alive.json()["refresh_token"]

    flow.advance(60 * DAY + 1)

    expired = flow.refresh(fresh, client_id=world.seeded_app, secret=world.seeded_secret)
    assert expired.status_code == 400
    assert expired.json() == {"error": "invalid_grant"}


def test_seeded_grant_lists_its_connections(flow, world):
    tokens = flow.refresh(world.seeded_refresh_token, client_id=world.seeded_app, secret=world.seeded_secret).json()

    connections = flow.connections(tokens["access_token"]).json()

    assert {c["tenantId"] for c in connections} == {world.bakery, world.practice}
    assert decode_claims(tokens["access_token"])["xero_userid"] == world.rosa


def test_unknown_or_foreign_refresh_token_is_invalid_grant(flow, world):
    assert flow.refresh("not-a-token").json() == {"error": "invalid_grant"}
    # the seeded token belongs to another app
    assert flow.refresh(world.seeded_refresh_token).json() == {"error": "invalid_grant"}


def test_access_token_expires_after_thirty_minutes(flow, world):
    tokens = flow.connect(tenants=[world.acme])
    flow.advance(1_799)
    assert flow.connections(tokens["access_token"]).status_code == 200

    flow.advance(1)

    response = flow.connections(tokens["access_token"])
    assert response.status_code == 401
    assert response.json()["Detail"].startswith("TokenExpired")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_revocation_removes_every_connection_and_kills_the_tokens(flow, world):
    tokens = flow.connect(tenants=[world.acme, world.holdings])
    older = flow.refresh(tokens["refresh_token"]).json()  # tokens["refresh_token"] is now in its grace window

    response = flow.client.post(
        "/identity/connect/revocation", data={"token": older["refresh_token"]}, auth=(world.new_app, world.new_secret)
    )

    assert response.status_code == 200
    assert flow.connections(older["access_token"]).status_code == 401
    assert flow.refresh(older["refresh_token"]).json() == {"error": "invalid_grant"}
    assert flow.refresh(tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    grant = next(g for g in flow.state()["grants"] if g["client_id"] == world.new_app)
    assert grant["connections"] == []
    assert grant["scopes"] == []


def test_consent_after_revocation_starts_a_fresh_grant(flow, world):
    tokens = flow.connect(tenants=[world.acme], scope="openid offline_access accounting.invoices")
    flow.client.post(
        "/connect/revocation", data={"token": tokens["refresh_token"]}, auth=(world.new_app, world.new_secret)
    )

    again = flow.connect(tenants=[world.holdings], scope="openid offline_access accounting.settings.read")

    assert sorted(decode_claims(again["access_token"])["scope"]) == [
        "accounting.settings.read",
        "offline_access",
        "openid",
    ]
    assert [c["tenantId"] for c in flow.connections(again["access_token"]).json()] == [world.holdings]


def test_revocation_touches_only_that_users_grant_to_that_app(flow, world):
    mine = flow.connect(tenants=[world.acme])
    flow.client.post(
        "/connect/revocation", data={"token": mine["refresh_token"]}, auth=(world.new_app, world.new_secret)
    )

    seeded = flow.refresh(world.seeded_refresh_token, client_id=world.seeded_app, secret=world.seeded_secret)

    assert seeded.status_code == 200


def test_revoking_an_unknown_token_is_not_an_error(flow, world):
    response = flow.client.post(
        "/connect/revocation", data={"token": "never-issued"}, auth=(world.new_app, world.new_secret)
    )

    assert response.status_code == 200


def test_revocation_needs_client_authentication(flow, world):
    unauthenticated = flow.client.post("/connect/revocation", data={"token": world.seeded_refresh_token})
    foreign = flow.client.post(
        "/connect/revocation", data={"token": world.seeded_refresh_token}, auth=(world.new_app, world.new_secret)
    )

    assert unauthenticated.status_code == 401
    assert foreign.status_code == 400
    refreshed = flow.refresh(world.seeded_refresh_token, client_id=world.seeded_app, secret=world.seeded_secret)
    assert refreshed.status_code == 200


def test_a_code_issued_before_a_revocation_is_dead(flow, world):
    tokens = flow.connect(tenants=[world.acme])
    code = flow.code_via_script(tenants=[world.acme])
    flow.client.post(
        "/connect/revocation", data={"token": tokens["refresh_token"]}, auth=(world.new_app, world.new_secret)
    )

    assert flow.exchange(code).json() == {"error": "invalid_grant"}


def test_discovery_document_points_at_the_emulator(flow):
    document = flow.client.get("/.well-known/openid-configuration").json()

    base = str(flow.client.base_url).rstrip("/")
    assert document["token_endpoint"] == f"{base}/connect/token"
    assert document["authorization_endpoint"] == f"{base}/identity/connect/authorize"
    assert "accounting.invoices" in document["scopes_supported"]
