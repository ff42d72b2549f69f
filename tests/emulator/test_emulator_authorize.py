"""Authorize, the consent page and scripted consent, over a real loopback server."""

from __future__ import annotations

import re

from grantctl.emulator import Behaviour
from grantctl.emulator.testing import decode_claims


def test_full_code_flow_through_the_consent_page(flow, world):
    page = flow.authorize()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")

    redirect = flow.submit_consent(page, tenants=[world.acme])

    params = flow.redirect_params(redirect)
    assert redirect.headers["location"].startswith(world.redirect_uri + "?")
    assert params["state"] == "state-123"
    tokens = flow.exchange(params["code"]).json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 1800
    claims = decode_claims(tokens["access_token"])
    assert claims["xero_userid"] == world.sam
    assert claims["client_id"] == world.new_app
    assert sorted(claims["scope"]) == sorted(world.scopes.split())
    assert claims["exp"] - claims["nbf"] == 1800
    connections = flow.connections(tokens["access_token"]).json()
    assert [c["tenantId"] for c in connections] == [world.acme]
    assert connections[0]["authEventId"] == claims["authentication_event_id"]
    assert connections[0]["tenantName"] == "Acme Ltd"
    assert connections[0]["tenantType"] == "ORGANISATION"


def test_consent_page_has_the_elements_a_browser_test_clicks(flow, world):
    page = flow.authorize().text

    assert f'<input type="checkbox" name="tenant" value="{world.acme}"' in page
    assert f'<input type="checkbox" name="tenant" value="{world.holdings}"' in page
    assert world.bakery not in page  # Sam does not belong to the bakery
    assert re.search(r'<button type="submit" id="allow" name="action" value="allow">', page)
    assert re.search(r'<button type="submit" id="deny" name="action" value="deny">', page)
    assert 'id="signed-in-user" data-user-id="u-sam"' in page
    assert 'data-scope="accounting.invoices"' in page
    assert 'action="/identity/connect/authorize/consent"' in page


def test_consent_page_escapes_what_it_echoes(flow):
    page = flow.authorize(state="<script>alert(1)</script>").text

    assert "New &amp; &lt;Shiny&gt; App" in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the state, in the switch-user form


def test_login_hint_signs_in_another_user(flow, world):
    page = flow.authorize(login_hint="rosa@bluebird.example").text

    assert 'data-user-id="u-rosa"' in page
    assert "Bluebird &lt;Bakery&gt; &amp; Co" in page
    assert world.acme not in page


def test_unknown_login_hint_is_an_error_page(flow):
    response = flow.authorize(login_hint="nobody@example.invalid")

    assert response.status_code == 400
    assert "location" not in response.headers


def test_cancel_redirects_with_access_denied(flow):
    redirect = flow.submit_consent(flow.authorize(), tenants=[], action="deny")

    assert flow.redirect_params(redirect) == {"error": "access_denied", "state": "state-123"}
    assert flow.state()["counters"]["consents_denied"] == 1


def test_a_consent_page_can_be_answered_once(flow, world):
    page = flow.authorize()
    assert flow.submit_consent(page, tenants=[world.acme]).status_code == 302

    again = flow.submit_consent(page, tenants=[world.acme])

    assert again.status_code == 400
    assert "expired or was already answered" in again.text


def test_ticking_an_organisation_of_someone_else_is_refused(flow, world):
    response = flow.submit_consent(flow.authorize(), tenants=[world.bakery])

    assert response.status_code == 400
    assert flow.state()["counters"].get("consents_allowed", 0) == 0


def test_scripted_consent_redirects_without_a_page(flow, world):
    flow.client.post("/_emulator/consent", json={"user": world.rosa, "tenants": [world.bakery]})

    params = flow.redirect_params(flow.authorize())

    tokens = flow.exchange(params["code"]).json()
    assert decode_claims(tokens["access_token"])["xero_userid"] == world.rosa
    assert [c["tenantId"] for c in flow.connections(tokens["access_token"]).json()] == [world.bakery]


def test_scripted_consent_is_used_once_then_the_page_returns(flow, world):
    flow.client.post("/_emulator/consent", json={"tenants": [world.acme]})

    assert flow.authorize().status_code == 302
    assert flow.authorize().status_code == 200


def test_scripted_consent_for_one_app_leaves_other_apps_alone(flow, world):
    flow.client.post("/_emulator/consent", json={"tenants": [world.acme], "client_id": world.old_app})

    assert flow.authorize(client_id=world.new_app).status_code == 200
    assert flow.authorize(client_id=world.old_app).status_code == 302


def test_scripted_deny(flow):
    flow.client.post("/_emulator/consent", json={"action": "deny"})

    assert flow.redirect_params(flow.authorize()) == {"error": "access_denied", "state": "state-123"}


def test_scripted_consent_can_grant_fewer_scopes_than_requested(flow, world):
    flow.client.post(
        "/_emulator/consent",
        json={"tenants": [world.acme], "scopes": ["openid", "offline_access", "accounting.invoices", "files"]},
    )

    tokens = flow.exchange(flow.redirect_params(flow.authorize())["code"]).json()

    # "files" was never requested: a consent cannot grant it.
    assert sorted(decode_claims(tokens["access_token"])["scope"]) == [
        "accounting.invoices",
        "offline_access",
        "openid",
    ]


def test_scripted_consent_is_validated_when_queued(flow, world):
    for body in (
        {"user": "nobody"},
        {"tenants": [world.bakery]},  # not one of Sam's
        {"action": "maybe"},
        {"client_id": "no-such-app"},
        {"surprise": True},
    ):
        response = flow.client.post("/_emulator/consent", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"] == "invalid_request"
    assert flow.state()["scripted_consents_queued"] == 0


def test_bad_redirect_uri_shows_an_error_page_and_never_redirects(flow):
    response = flow.authorize(redirect_uri="http://127.0.0.1:8123/callback/<b>evil</b>")

    assert response.status_code == 400
    assert "location" not in response.headers
    assert '<code id="error-code">unauthorized_client</code>' in response.text
    assert "Invalid redirect_uri" in response.text
    assert "<b>evil</b>" not in response.text
    assert "&lt;b&gt;evil&lt;/b&gt;" in response.text


def test_redirect_uri_must_match_exactly(flow, world):
    for near_miss in (world.redirect_uri + "/", world.redirect_uri.upper(), world.redirect_uri + "?x=1"):
        assert flow.authorize(redirect_uri=near_miss).status_code == 400, near_miss


def test_unknown_client_id_shows_an_error_page(flow):
    response = flow.authorize(client_id="NOPE")

    assert response.status_code == 400
    assert "unauthorized_client" in response.text
    assert "location" not in response.headers


def test_unknown_scope_shows_invalid_scope(flow):
    response = flow.authorize(scope="openid accounting.everything")

    assert response.status_code == 400
    assert '<code id="error-code">invalid_scope</code>' in response.text


def test_broad_scope_refused_for_an_app_created_after_the_cutoff(flow):
    response = flow.authorize(scope="openid offline_access accounting.transactions")

    assert response.status_code == 400
    assert '<code id="error-code">unauthorized_client</code>' in response.text
    assert "accounting.invoices" in response.text  # names the granular replacements


def test_broad_scope_accepted_for_an_older_app(flow, world):
    response = flow.authorize(client_id=world.old_app, scope="openid offline_access accounting.transactions")

    assert response.status_code == 200


def test_scripted_consent_does_not_bypass_validation(flow, world):
    flow.client.post("/_emulator/consent", json={"tenants": [world.acme]})

    assert flow.authorize(redirect_uri="http://evil.example/cb").status_code == 400
    assert flow.state()["scripted_consents_queued"] == 1  # still waiting for a valid request


def test_response_type_other_than_code_is_refused(flow):
    assert flow.authorize(response_type="token").status_code == 400


def test_repeated_parameters_are_refused(flow, world):
    query = [
        ("response_type", "code"),
        ("client_id", world.new_app),
        ("redirect_uri", world.redirect_uri),
        ("scope", "openid"),
        ("scope", "email"),
    ]
    response = flow.client.get("/identity/connect/authorize", params=query)

    assert response.status_code == 400
    assert "invalid_request" in response.text


def test_scopes_are_additive_per_user_and_app(flow, world):
    flow.connect(tenants=[world.acme], scope="openid offline_access accounting.invoices")

    tokens = flow.connect(tenants=[world.acme], scope="openid offline_access accounting.settings.read")

    scopes = decode_claims(tokens["access_token"])["scope"]
    assert sorted(scopes) == ["accounting.invoices", "accounting.settings.read", "offline_access", "openid"]


def test_one_consent_connects_several_tenants_under_one_auth_event(flow, world):
    tokens = flow.connect(tenants=[world.acme, world.holdings])

    connections = flow.connections(tokens["access_token"]).json()
    assert {c["tenantId"] for c in connections} == {world.acme, world.holdings}
    assert len({c["authEventId"] for c in connections}) == 1
    assert len({c["id"] for c in connections}) == 2


def test_reconsent_keeps_the_connection_and_updates_its_date(flow, world):
    first = flow.connect(tenants=[world.acme])
    before = flow.connections(first["access_token"]).json()[0]
    flow.advance(120)

    second = flow.connect(tenants=[world.acme, world.holdings])

    after = {c["tenantId"]: c for c in flow.connections(second["access_token"]).json()}
    assert after[world.acme]["id"] == before["id"]
    assert after[world.acme]["createdDateUtc"] == before["createdDateUtc"]
    assert after[world.acme]["updatedDateUtc"] > before["updatedDateUtc"]
    new_event = decode_claims(second["access_token"])["authentication_event_id"]
    assert new_event != before["authEventId"]
    assert after[world.acme]["authEventId"] == new_event
    filtered = flow.connections(second["access_token"], authEventId=new_event).json()
    assert {c["tenantId"] for c in filtered} == {world.acme, world.holdings}


def test_reconsent_can_keep_the_old_auth_event_id(flow_for, make_seed, world):
    flow = flow_for(make_seed(behaviour=Behaviour(reconsent_keeps_auth_event_id=True)))
    first = flow.connect(tenants=[world.acme])
    old_event = decode_claims(first["access_token"])["authentication_event_id"]

    second = flow.connect(tenants=[world.acme, world.holdings])

    new_event = decode_claims(second["access_token"])["authentication_event_id"]
    filtered = flow.connections(second["access_token"], authEventId=new_event).json()
    assert [c["tenantId"] for c in filtered] == [world.holdings]  # acme kept its old event id
    assert flow.connections(second["access_token"], authEventId=old_event).json()[0]["tenantId"] == world.acme


def test_connection_dates_use_xeros_format(flow, world):
    tokens = flow.connect(tenants=[world.acme])

    connection = flow.connections(tokens["access_token"]).json()[0]

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", connection["createdDateUtc"])


def test_pkce_code_needs_the_matching_verifier(flow, world):
    verifier, challenge = flow.pkce_pair("v" * 50)
    code = flow.code_via_script(tenants=[world.acme], code_challenge=challenge, code_challenge_method="S256")

    assert flow.exchange(code).json() == {"error": "invalid_grant"}

    code = flow.code_via_script(tenants=[world.acme], code_challenge=challenge, code_challenge_method="S256")
    assert flow.exchange(code, code_verifier=verifier).status_code == 200


def test_pkce_method_must_be_s256(flow):
    response = flow.authorize(code_challenge="c" * 43, code_challenge_method="plain")

    assert response.status_code == 400
    assert "S256" in response.text
