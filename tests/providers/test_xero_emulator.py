"""XeroProvider against the real emulator over loopback: the whole life of a grant, and its failures."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from grantctl.emulator.testing import EmulatorControl, decode_claims
from grantctl.errors import ProviderError
from grantctl.providers import ClientCredentials, RateLimiter, XeroProvider, get_provider

REQUESTED = ["openid", "profile", "email", "offline_access", "accounting.settings.read", "accounting.invoices"]


def xero_for(world, **settings) -> XeroProvider:
    base = world.base_url
    provider = get_provider(
        "xero",
        {
            "authorizeUrl": f"{base}/identity/connect/authorize",
            "tokenUrl": f"{base}/identity/connect/token",
            "revocationUrl": f"{base}/identity/connect/revocation",
            "apiUrl": base,
            "timeoutSeconds": 5,
            **settings,
        },
    )
    assert isinstance(provider, XeroProvider)
    return provider


def creds_for(world) -> ClientCredentials:
    return ClientCredentials(world.client_id, world.client_secret)


async def consent(http, world, provider, *, tenants, granted=None, state="state-1", **pkce) -> str:
    """Script the user's answer, follow the authorize URL and return the code from the redirect."""
    with EmulatorControl(world.base_url) as control:
        control.queue_consent(tenants=tenants, user=world.sam, scopes=granted, client_id=world.client_id)
    url = provider.authorize_url(
        creds_for(world), redirect_uri=world.redirect_uri, scopes=REQUESTED, state=state, **pkce
    )
    response = await http.get(url)
    assert response.is_redirect, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == world.redirect_uri
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["state"] == state
    return params["code"]


def test_the_whole_life_of_a_grant(emulator):
    provider, creds = xero_for(emulator), creds_for(emulator)
    granted = ["openid", "email", "offline_access", "accounting.settings.read"]
    said: list[str] = []  # every message and detail the provider produced, checked for secrets at the end

    async def life():
        async with httpx.AsyncClient() as http:
            code = await consent(http, emulator, provider, tenants=[emulator.acme], granted=granted)
            tokens = await provider.exchange_code(http, creds, code=code, redirect_uri=emulator.redirect_uri)

            # What was granted, read from the token: less than what was requested.
            assert tokens.granted_scopes == tuple(sorted(granted))
            assert tokens.auth_event_id == decode_claims(tokens.access_token)["authentication_event_id"]
            assert tokens.user is not None
            assert (tokens.user.id, tokens.user.email, tokens.user.name) == (
                emulator.sam,
                "sam@acme.example",
                "Sam Lee",
            )
            assert tokens.refresh_token
            assert tokens.id_token

            tenants = await provider.tenants_of_authorization(http, tokens)
            assert [(t.id, t.name, t.type) for t in tenants] == [(emulator.acme, "Acme Ltd", "ORGANISATION")]
            assert tenants[0].connection_id
            assert tenants[0].updated_at is not None

            probe = await provider.probe(http, tokens, emulator.acme)
            assert (probe.ok, probe.status, probe.call) == (True, 200, "GET /api.xro/2.0/Organisation")
            assert "Acme Ltd" in probe.detail
            said.append(probe.detail)

            refreshed = await provider.refresh(http, creds, tokens.refresh_token)
            assert refreshed.refresh_token not in (None, tokens.refresh_token)  # Xero rotates on every refresh
            assert refreshed.granted_scopes == tokens.granted_scopes
            assert (await provider.probe(http, refreshed, emulator.acme)).ok

            await provider.disconnect(http, refreshed, tenants[0])
            assert await provider.list_tenants(http, refreshed) == []
            await provider.disconnect(http, refreshed, tenants[0])  # already gone: not an error
            gone = await provider.probe(http, refreshed, emulator.acme)
            assert (gone.ok, gone.status) == (False, 403)
            assert "AuthenticationUnsuccessful" in gone.detail
            said.append(gone.detail)

            await provider.revoke(http, creds, refreshed.refresh_token)
            with pytest.raises(ProviderError) as caught:
                await provider.refresh(http, creds, refreshed.refresh_token)
            assert (caught.value.status, caught.value.oauth_error) == (400, "invalid_grant")
            said.append(str(caught.value))
            return tokens, refreshed

    tokens, refreshed = asyncio.run(life())
    for secret in (*tokens.secrets(), *refreshed.secrets(), emulator.client_secret):
        assert all(secret not in text for text in said)


def test_several_ticked_organisations_are_all_tenants_of_the_authorization(emulator):
    provider = xero_for(emulator)

    async def flow():
        async with httpx.AsyncClient() as http:
            code = await consent(http, emulator, provider, tenants=[emulator.acme, emulator.holdings])
            tokens = await provider.exchange_code(
                http, creds_for(emulator), code=code, redirect_uri=emulator.redirect_uri
            )
            return await provider.tenants_of_authorization(http, tokens)

    assert sorted(t.id for t in asyncio.run(flow())) == sorted([emulator.acme, emulator.holdings])


def test_a_second_consent_reports_only_its_own_organisation(emulator):
    provider = xero_for(emulator)

    async def flow():
        async with httpx.AsyncClient() as http:
            first = await consent(http, emulator, provider, tenants=[emulator.acme])
            await provider.exchange_code(http, creds_for(emulator), code=first, redirect_uri=emulator.redirect_uri)
            second = await consent(http, emulator, provider, tenants=[emulator.holdings])
            tokens = await provider.exchange_code(
                http, creds_for(emulator), code=second, redirect_uri=emulator.redirect_uri
            )
            return await provider.tenants_of_authorization(http, tokens), await provider.list_tenants(http, tokens)

    mine, everything = asyncio.run(flow())
    assert [t.id for t in mine] == [emulator.holdings]
    assert sorted(t.id for t in everything) == sorted([emulator.acme, emulator.holdings])


def test_reconsent_that_keeps_the_old_auth_event_falls_back_to_the_newest_connection(emulator_keeping_auth_event):
    world = emulator_keeping_auth_event
    provider = xero_for(world)

    async def flow():
        async with httpx.AsyncClient() as http:
            first = await consent(http, world, provider, tenants=[world.acme, world.holdings])
            await provider.exchange_code(http, creds_for(world), code=first, redirect_uri=world.redirect_uri)
            with EmulatorControl(world.base_url) as control:
                control.advance_clock(3600)  # the client comes back an hour later
            again = await consent(http, world, provider, tenants=[world.holdings])
            tokens = await provider.exchange_code(http, creds_for(world), code=again, redirect_uri=world.redirect_uri)
            return tokens, await provider.tenants_of_authorization(http, tokens)

    tokens, tenants = asyncio.run(flow())
    assert [t.id for t in tenants] == [world.holdings]
    assert tenants[0].auth_event_id != tokens.auth_event_id  # the fallback really was needed


def test_a_code_works_once(emulator):
    provider, creds = xero_for(emulator), creds_for(emulator)

    async def flow():
        async with httpx.AsyncClient() as http:
            code = await consent(http, emulator, provider, tenants=[emulator.acme])
            await provider.exchange_code(http, creds, code=code, redirect_uri=emulator.redirect_uri)
            with pytest.raises(ProviderError) as caught:
                await provider.exchange_code(http, creds, code=code, redirect_uri=emulator.redirect_uri)
            return caught.value, code

    error, code = asyncio.run(flow())
    assert (error.status, error.oauth_error, error.transient) == (400, "invalid_grant", False)
    assert code not in str(error)


def test_a_wrong_secret_is_invalid_client_and_never_echoed(emulator):
    provider = xero_for(emulator)
    wrong = ClientCredentials(emulator.client_id, "not-the-secret-0123456789abcdef")

    async def flow():
        async with httpx.AsyncClient() as http:
            code = await consent(http, emulator, provider, tenants=[emulator.acme])
            with pytest.raises(ProviderError) as caught:
                await provider.exchange_code(http, wrong, code=code, redirect_uri=emulator.redirect_uri)
            return caught.value

    error = asyncio.run(flow())
    assert (error.status, error.oauth_error) == (401, "invalid_client")
    assert "not-the-secret" not in str(error)


def test_pkce_round_trip_when_enabled(emulator):
    provider = xero_for(emulator, pkce=True)
    verifier = "v" * 43
    challenge = "7w_YNF9DSfIdPf_pRjSq646_kPr-2-o9NAl16JGghdM"  # base64url(sha256(verifier)), no padding

    async def flow():
        async with httpx.AsyncClient() as http:
            code = await consent(http, emulator, provider, tenants=[emulator.acme], code_challenge=challenge)
            return await provider.exchange_code(
                http, creds_for(emulator), code=code, redirect_uri=emulator.redirect_uri, code_verifier=verifier
            )

    assert asyncio.run(flow()).refresh_token


def test_injected_faults_become_transient_errors(emulator):
    provider = xero_for(emulator, timeoutSeconds=0.3)

    async def flow():
        async with httpx.AsyncClient() as http:
            code = await consent(http, emulator, provider, tenants=[emulator.acme])
            tokens = await provider.exchange_code(
                http, creds_for(emulator), code=code, redirect_uri=emulator.redirect_uri
            )
            with EmulatorControl(emulator.base_url) as control:
                control.set_faults(
                    fail=[
                        {"endpoint": "organisation", "mode": "429", "retry_after": 7, "problem": "minute"},
                        {"endpoint": "organisation", "mode": "503"},
                        {"endpoint": "organisation", "mode": "timeout", "timeout_seconds": 2},
                    ]
                )
            errors = []
            for _ in range(3):
                with pytest.raises(ProviderError) as caught:
                    await provider.probe(http, tokens, emulator.acme)
                errors.append(caught.value)
            return errors

    limited, unavailable, timed_out = asyncio.run(flow())
    assert (limited.status, limited.retry_after, limited.transient) == (429, 7.0, True)
    assert (unavailable.status, unavailable.transient) == (503, True)
    assert (timed_out.status, timed_out.transient) == (None, True)
    assert "timed out after 0.3 s" in str(timed_out)


def test_the_rate_limiter_hears_the_emulators_remaining_call_headers(emulator):
    provider = xero_for(emulator)
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        raise asyncio.CancelledError  # stop here: the wait itself is what this test is about

    limiter = RateLimiter({"xero": provider.limits}, clock=lambda: 500.0, sleep=fake_sleep)

    async def flow():
        with EmulatorControl(emulator.base_url) as control:
            control.set_faults(rate_limits=True)  # the seed allows 2 calls per tenant per minute
        async with httpx.AsyncClient(event_hooks={"response": [limiter.on_response]}) as http:
            code = await consent(http, emulator, provider, tenants=[emulator.acme])
            tokens = await provider.exchange_code(
                http, creds_for(emulator), code=code, redirect_uri=emulator.redirect_uri
            )
            for _ in range(2):
                async with limiter.slot("xero", tenant=emulator.acme, app=emulator.client_id):
                    assert (await provider.probe(http, tokens, emulator.acme)).ok
            with pytest.raises(asyncio.CancelledError):
                async with limiter.slot("xero", tenant=emulator.acme, app=emulator.client_id):
                    pass

    asyncio.run(flow())
    # The second answer said X-MinLimit-Remaining: 0, so the third call waits for the window.
    assert waits == [60.0]
