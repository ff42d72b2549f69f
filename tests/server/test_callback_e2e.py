"""End to end over real loopback: link -> /connect -> emulator consent -> /callback -> state and page."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from server_helpers import (
    ACME,
    BAKERY,
    CLIENT_ID,
    HOLDINGS,
    NAME,
    SAM,
    SCOPES,
    Live,
    page_text,
)

from grantctl.emulator.testing import decode_claims
from grantctl.links import verify_link
from grantctl.server import SECURITY_HEADERS, cookie_name

GRANTED = [s for s in SCOPES if s != "profile"]  # the emulator grants less than was asked


def state_file(live: Live) -> str:
    path = live.repo.state_dir / f"{NAME}.yaml"
    return path.read_text() if path.exists() else ""


def assert_secured(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name


def assert_accessible_page(response: httpx.Response) -> None:
    html = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in html
    assert re.search(r"<title>[^<]+</title>", html)
    assert html.count("<h1>") == 1
    assert "<script" not in html.lower()


# -- the happy path ---------------------------------------------------------------------------------------


def test_link_to_connected_with_state_written(live: Live) -> None:
    link = live.link()

    first = live.browser.client.get(link)
    assert first.status_code == 302
    assert_secured(first)
    location = urlsplit(first.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == live.emulator_url
    assert location.path == "/identity/connect/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{live.server_url}/callback"]
    assert query["response_type"] == ["code"]
    assert query["scope"][0].split(" ") == SCOPES
    assert "code_challenge" not in query  # PKCE is off by default for Xero web apps
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(NAME)}=")
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/callback", "Max-Age=600"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # http public URL: a Secure cookie would never come back

    live.control.queue_consent(tenants=[ACME], scopes=GRANTED, user=SAM)
    page = live.open(first.headers["location"])

    assert page.status_code == 200
    assert_secured(page)
    assert_accessible_page(page)
    text = page_text(page.text)
    assert "Connected Acme Ltd with:" in text
    assert "Read, create and update invoices and bills" in text
    assert "Some access we asked for was not granted: See your name as shown in Xero" in text
    # The binding cookie is cleared once used.
    assert cookie_name(NAME) not in live.browser.client.cookies

    grant = live.store.read_grant(NAME)
    assert grant is not None
    assert grant.tenant is not None
    assert (grant.tenant.id, grant.tenant.name) == (ACME, "Acme Ltd")
    assert grant.granted_scopes == sorted(GRANTED)  # as granted, not as requested
    assert grant.authorized_by is not None
    assert grant.authorized_by.email == "sam@acme.example"
    assert grant.auth_event_id
    assert grant.authorized_at is not None

    tokens = live.store.read_tokens(NAME)
    assert tokens is not None
    assert tokens.access_token
    assert tokens.refresh_token
    assert tokens.id_token
    assert sorted(decode_claims(tokens.access_token)["scope"]) == sorted(GRANTED)
    on_disk = state_file(live)
    for value in (tokens.access_token, tokens.refresh_token, tokens.id_token):
        assert value not in on_disk  # tokens are encrypted at rest
    assert re.search(r"access_token: ENC\[AES256_GCM,", on_disk)
    assert "name: Acme Ltd" in on_disk  # the grant stays plaintext for plan and audit
    assert "accounting.invoices" in on_disk


def test_consent_by_posting_the_emulator_form(live: Live) -> None:
    consent = live.open(live.link())  # nothing scripted: the emulator shows its consent page
    assert consent.status_code == 200
    assert 'id="allow"' in consent.text
    request_id = re.search(r'name="request" value="([^"]+)"', consent.text)
    user = re.search(r'name="user" value="([^"]+)"', consent.text)
    assert request_id
    assert user

    page = live.browser.post_form(
        f"{live.emulator_url}/identity/connect/authorize/consent",
        [("request", request_id.group(1)), ("user", user.group(1)), ("tenant", ACME), ("action", "allow")],
    )

    assert page.status_code == 200
    assert "Connected Acme Ltd with:" in page_text(page.text)
    grant = live.store.read_grant(NAME)
    assert grant is not None
    assert grant.tenant is not None
    assert grant.tenant.id == ACME
    assert grant.granted_scopes == sorted(SCOPES)


# -- organisations ------------------------------------------------------------------------------------------


def test_wrong_organisation_is_disconnected_and_nothing_stored(live: Live) -> None:
    page = live.consent(live.link(), [HOLDINGS])

    assert page.status_code == 409
    assert_accessible_page(page)
    text = page_text(page.text)
    assert "This connection is for Acme Ltd." in text
    assert "You picked Acme Holdings" in text
    assert [c["tenantId"] for c in live.emulator_connections()] == []  # disconnected at the provider
    assert live.store.read_grant(NAME) is None
    assert state_file(live) == ""

    fresh = re.search(r'id="fresh-link" href="([^"]+)"', page.text)
    assert fresh is not None
    fresh_link = fresh.group(1).replace("&amp;", "&")
    assert fresh_link.startswith(f"{live.server_url}/connect/")
    assert verify_link(fresh_link.rsplit("/", 1)[1], key=live.key, now=live.clock()).connection == NAME

    # The fresh link works: this time the right organisation.
    again = live.consent(fresh_link, [ACME])
    assert "Connected Acme Ltd with:" in page_text(again.text)


def test_several_organisations_keep_only_the_right_one(live: Live) -> None:
    page = live.consent(live.link(), [HOLDINGS, ACME, BAKERY])

    assert page.status_code == 200
    text = page_text(page.text)
    assert "Connected Acme Ltd with:" in text
    assert "You also picked Acme Holdings and Bluebird <Bakery> & Co" in text
    assert "Bluebird &lt;Bakery&gt; &amp; Co" in page.text  # escaped, not markup
    assert [c["tenantId"] for c in live.emulator_connections()] == [ACME]
    grant = live.store.read_grant(NAME)
    assert grant is not None
    assert grant.tenant is not None
    assert grant.tenant.id == ACME


def test_right_one_not_among_several_disconnects_all(live: Live) -> None:
    page = live.consent(live.link(), [HOLDINGS, BAKERY])

    assert page.status_code == 409
    assert "You picked Acme Holdings and Bluebird <Bakery> & Co" in page_text(page.text)
    assert live.emulator_connections() == []
    assert live.store.read_grant(NAME) is None


def test_nothing_ticked(live: Live) -> None:
    page = live.consent(live.link(), [])
    assert page.status_code == 409
    assert "No organisation was picked" in page_text(page.text)
    assert live.store.read_grant(NAME) is None


def test_extend_scopes_with_a_second_consent(live: Live) -> None:
    old_link = live.link()
    live.consent(old_link, [ACME])
    first = live.store.read_grant(NAME)
    assert first is not None
    assert "accounting.contacts" not in first.granted_scopes

    live.set_scopes([*SCOPES, "accounting.contacts"])
    stale = live.open(old_link)
    assert stale.status_code == 400
    assert "This link is out of date" in page_text(stale.text)

    page = live.consent(live.link(), [ACME])
    assert page.status_code == 200
    assert "Read, create and update contacts" in page_text(page.text)
    second = live.store.read_grant(NAME)
    assert second is not None
    assert second.granted_scopes == sorted([*SCOPES, "accounting.contacts"])
    assert second.authorized_at is not None
    assert first.authorized_at is not None
    assert second.authorized_at >= first.authorized_at


# -- refusals ------------------------------------------------------------------------------------------------


def test_consent_denied_changes_nothing(live: Live) -> None:
    live.control.queue_consent(action="deny", user=SAM)
    page = live.open(live.link())

    assert page.status_code == 200
    text = page_text(page.text)
    assert "Nothing was changed" in text
    assert "You cancelled" in text
    assert 'id="fresh-link"' in page.text
    assert live.store.read_grant(NAME) is None


def test_expired_link(live: Live) -> None:
    link = live.link(ttl=timedelta(hours=1))
    live.clock.advance(timedelta(hours=2))
    page = live.open(link)

    assert page.status_code == 400
    assert_secured(page)
    text = page_text(page.text)
    assert "This link has expired" in text
    assert "jane@agency.example" in text
    assert len(live.browser.hops) == 1  # never sent to the provider
    assert "fresh-link" not in page.text


def test_tampered_link(live: Live) -> None:
    link = live.link()
    tampered = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    page = live.open(tampered)

    assert page.status_code == 400
    assert "This link does not work" in page_text(page.text)
    assert len(live.browser.hops) == 1


def test_link_for_another_scope_set(live: Live) -> None:
    link = live.link()
    live.set_scopes([*SCOPES, "accounting.contacts"])
    page = live.open(link)

    assert page.status_code == 400
    assert "This link is out of date" in page_text(page.text)
    assert len(live.browser.hops) == 1


def test_unknown_connection(live: Live) -> None:
    link = live.link()
    live.repo.manifest_path(NAME).unlink()
    page = live.open(link)
    assert page.status_code == 404
    assert "Unknown connection" in page_text(page.text)


def test_replayed_callback_is_refused(live: Live) -> None:
    live.control.queue_consent(tenants=[ACME], user=SAM)
    at_callback = live.browser.open(live.link(), stop_at=f"{live.server_url}/callback")
    callback_url = at_callback.headers["location"]
    binding = live.browser.client.cookies[cookie_name(NAME)]

    first = live.browser.open(callback_url)
    assert first.status_code == 200
    before = state_file(live)

    # Same browser, cookie put back: the state itself has been used.
    live.browser.client.cookies.set(cookie_name(NAME), binding, path="/callback")
    replay = live.browser.open(callback_url)
    assert replay.status_code == 409
    assert "This page was already used" in page_text(replay.text)
    assert state_file(live) == before

    # Without the cookie it is refused too.
    live.browser.client.cookies.clear()
    assert live.browser.open(callback_url).status_code == 400
    assert state_file(live) == before


def test_callback_without_the_cookie(live: Live) -> None:
    live.control.queue_consent(tenants=[ACME], user=SAM)
    at_callback = live.browser.open(live.link(), stop_at=f"{live.server_url}/callback")
    live.browser.client.cookies.clear()  # as if the answer arrived in another browser

    page = live.browser.open(at_callback.headers["location"])

    assert page.status_code == 400
    text = page_text(page.text)
    assert "opened in a different browser" in text
    assert "Nothing was changed" in text
    assert live.store.read_grant(NAME) is None


def test_callback_after_the_state_expired(live: Live) -> None:
    live.control.queue_consent(tenants=[ACME], user=SAM)
    at_callback = live.browser.open(live.link(), stop_at=f"{live.server_url}/callback")
    live.clock.advance(timedelta(minutes=11))

    page = live.browser.open(at_callback.headers["location"])
    assert page.status_code == 400
    assert "more than ten minutes" in page_text(page.text)
    assert live.store.read_grant(NAME) is None


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?code=abc",
        "?state=not-a-state&code=abc",
        "?state=a.b&state=c.d&code=abc",
        "?error=%3Cscript%3Ealert(1)%3C/script%3E&state=x.y",
    ],
)
def test_callback_without_a_usable_state(live: Live, query: str) -> None:
    page = live.browser.open(f"{live.server_url}/callback{query}")
    assert page.status_code == 400
    assert_secured(page)
    assert "<script>alert" not in page.text
    assert "This page cannot be used like this" in page_text(page.text)


def test_provider_failure_at_token_exchange_stores_nothing(live: Live) -> None:
    live.control.set_faults(fail=[{"endpoint": "token", "mode": "500", "count": 1}])
    page = live.consent(live.link(), [ACME])

    assert page.status_code == 502
    text = page_text(page.text)
    assert "did not complete the connection" in text
    assert "Technical detail:" in text
    assert 'id="fresh-link"' in page.text
    assert live.store.read_grant(NAME) is None


def test_provider_failure_at_tenant_lookup_stores_nothing(live: Live) -> None:
    live.control.queue_consent(tenants=[ACME], user=SAM)
    at_callback = live.browser.open(live.link(), stop_at=f"{live.server_url}/callback")
    live.control.set_faults(fail=[{"endpoint": "connections", "mode": "503", "count": 1}])
    page = live.browser.open(at_callback.headers["location"])
    assert page.status_code == 502
    assert live.store.read_grant(NAME) is None


def test_error_other_than_access_denied(live: Live) -> None:
    live.control.queue_consent(tenants=[ACME], user=SAM)
    at_callback = live.browser.open(live.link(), stop_at=f"{live.server_url}/callback")
    state = parse_qs(urlsplit(at_callback.headers["location"]).query)["state"][0]
    page = live.browser.open(f"{live.server_url}/callback?error=server_error&state={state}")
    assert page.status_code == 502
    assert "server_error" in page_text(page.text)
    assert live.store.read_grant(NAME) is None


def test_unreadable_credentials_is_a_setup_error(live: Live) -> None:
    live.repo.credentials_path(live.connection).write_text("client_id: not-encrypted\n")
    page = live.open(live.link())
    assert page.status_code == 500
    assert "Something is wrong on our side" in page_text(page.text)
    assert len(live.browser.hops) == 1


# -- plumbing ------------------------------------------------------------------------------------------------


def test_healthz(live: Live) -> None:
    response = live.browser.client.get(f"{live.server_url}/healthz")
    assert response.status_code == 200
    assert response.text == "ok"
    assert_secured(response)


def test_unknown_path_and_wrong_method(live: Live) -> None:
    missing = live.browser.client.get(f"{live.server_url}/nothing/here")
    assert missing.status_code == 404
    assert_secured(missing)
    assert_accessible_page(missing)
    wrong = live.browser.client.post(f"{live.server_url}/callback")
    assert wrong.status_code == 405
    assert_secured(wrong)


def test_state_that_cannot_be_written_is_a_clear_page(live: Live, server_logs: pytest.LogCaptureFixture) -> None:
    (live.repo.state_dir / f"{NAME}.yaml").mkdir()  # a directory where the state file belongs
    page = live.consent(live.link(), [ACME])

    assert page.status_code == 503
    text = page_text(page.text)
    assert "We could not save the connection" in text
    assert 'id="fresh-link"' in page.text
    assert "state/acme-ltd.yaml" not in text  # our file names stay in the log
    assert any("could not store the grant" in r.getMessage() for r in server_logs.records)
