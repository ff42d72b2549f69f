"""/connections and the Organisation endpoint."""

from __future__ import annotations

from grantctl.emulator.testing import decode_claims


def test_organisation_returns_the_tenant(flow, world):
    tokens = flow.connect(tenants=[world.acme])

    response = flow.organisation(tokens["access_token"], world.acme)

    assert response.status_code == 200
    organisation = response.json()["Organisations"][0]
    assert organisation["OrganisationID"] == world.acme
    assert organisation["Name"] == "Acme Ltd"
    for header in ("X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining"):
        assert header.lower() in response.headers


def test_organisation_without_tenant_header_is_forbidden(flow, world):
    tokens = flow.connect(tenants=[world.acme])

    response = flow.organisation(tokens["access_token"], None)

    assert response.status_code == 403
    assert response.json()["Detail"] == "AuthenticationUnsuccessful"
    assert response.json()["Title"] == "Forbidden"


def test_organisation_of_an_unconnected_tenant_is_forbidden(flow, world):
    tokens = flow.connect(tenants=[world.acme])

    assert flow.organisation(tokens["access_token"], world.holdings).status_code == 403
    assert flow.organisation(tokens["access_token"], world.bakery).status_code == 403


def test_user_without_rights_gets_403_though_the_connection_is_listed(flow, world):
    tokens = flow.refresh(world.seeded_refresh_token, client_id=world.seeded_app, secret=world.seeded_secret).json()

    denied = flow.organisation(tokens["access_token"], world.practice)

    assert denied.status_code == 403
    assert denied.json()["Detail"] == "AuthenticationUnsuccessful"
    assert world.practice in {c["tenantId"] for c in flow.connections(tokens["access_token"]).json()}
    assert flow.organisation(tokens["access_token"], world.bakery).status_code == 200


def test_organisation_needs_a_settings_scope(flow, world):
    tokens = flow.connect(tenants=[world.acme], scope="openid offline_access accounting.invoices")

    response = flow.organisation(tokens["access_token"], world.acme)

    assert response.status_code == 401
    assert response.json()["Detail"] == "AuthorizationUnsuccessful"
    assert "insufficient_scope" in response.headers["www-authenticate"]


def test_broad_settings_scope_also_reads_the_organisation(flow, world):
    code = flow.code_via_script(tenants=[world.acme], client_id=world.old_app, scope="accounting.settings")
    tokens = flow.exchange(code, client_id=world.old_app, secret=world.old_secret).json()

    assert flow.organisation(tokens["access_token"], world.acme).status_code == 200


def test_api_rejects_missing_malformed_and_forged_tokens(flow, world):
    tokens = flow.connect(tenants=[world.acme])
    header, payload, _signature = tokens["access_token"].split(".")
    forged = f"{header}.{payload}.{'A' * 43}"

    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer not.a.jwt"}, flow.bearer(forged)):
        response = flow.client.get("/connections", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["Detail"] == "AuthenticationUnsuccessful"


def test_connections_filtered_by_auth_event(flow, world):
    flow.connect(tenants=[world.acme])
    second = flow.connect(tenants=[world.holdings])
    second_event = decode_claims(second["access_token"])["authentication_event_id"]

    everything = flow.connections(second["access_token"]).json()
    only_second = flow.connections(second["access_token"], authEventId=second_event).json()

    assert {c["tenantId"] for c in everything} == {world.acme, world.holdings}
    assert [c["tenantId"] for c in only_second] == [world.holdings]
    assert flow.connections(second["access_token"], authEventId="no-such-event").json() == []


def test_delete_connection(flow, world):
    tokens = flow.connect(tenants=[world.acme, world.holdings])
    connections = flow.connections(tokens["access_token"]).json()
    target = next(c for c in connections if c["tenantId"] == world.holdings)

    deleted = flow.client.delete(f"/connections/{target['id']}", headers=flow.bearer(tokens["access_token"]))

    assert deleted.status_code == 204
    remaining = flow.connections(tokens["access_token"]).json()
    assert [c["tenantId"] for c in remaining] == [world.acme]
    assert flow.organisation(tokens["access_token"], world.holdings).status_code == 403
    again = flow.client.delete(f"/connections/{target['id']}", headers=flow.bearer(tokens["access_token"]))
    assert again.status_code == 404


def test_delete_someone_elses_connection_is_404(flow, world):
    mine = flow.connect(tenants=[world.acme])
    seeded = flow.refresh(world.seeded_refresh_token, client_id=world.seeded_app, secret=world.seeded_secret).json()
    theirs = flow.connections(seeded["access_token"]).json()[0]["id"]

    response = flow.client.delete(f"/connections/{theirs}", headers=flow.bearer(mine["access_token"]))

    assert response.status_code == 404
    assert len(flow.connections(seeded["access_token"]).json()) == 2


def test_deleting_the_last_connection_leaves_the_tokens_working(flow, world):
    tokens = flow.connect(tenants=[world.acme])
    connection = flow.connections(tokens["access_token"]).json()[0]
    flow.client.delete(f"/connections/{connection['id']}", headers=flow.bearer(tokens["access_token"]))

    assert flow.connections(tokens["access_token"]).json() == []
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
