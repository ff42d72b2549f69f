"""How failures become ProviderError, and that no secret ever reaches a message or a repr."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from grantctl.errors import ProviderError
from grantctl.providers import (
    AuthorizedUser,
    ClientCredentials,
    HubSpotProvider,
    PipedriveProvider,
    ProbeResult,
    Tenant,
    TokenSet,
    XeroProvider,
)
from grantctl.providers._http import parse_retry_after, sanitize

SECRET = "CLIENT-SECRET-d2a4f1c07b9e43a58e16"
CODE = "AUTH-CODE-7f3e9a1b2c4d5e6f"
REFRESH = "REFRESH-TOKEN-99999999999999999999"
REDIRECT = "https://grantctl.example/callback"


def exchange(clock, creds, call_with, provider_cls=XeroProvider):
    return call_with(
        lambda http: provider_cls(clock=clock).exchange_code(http, creds, code=CODE, redirect_uri=REDIRECT)
    )


def raised_by(action) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        action()
    return caught.value


def everything_said(error: BaseException) -> str:
    """All the text an error can show: message, repr, args, and anything chained to it."""
    texts = [str(error), repr(error), *map(str, error.args)]
    if error.__cause__ is not None:
        texts.append(everything_said(error.__cause__))
    if error.__context__ is not None and not error.__suppress_context__:
        texts.append(everything_said(error.__context__))
    return "\n".join(texts)


# -- mapping ---------------------------------------------------------------------------------------------


def test_invalid_grant_is_a_permanent_refusal_with_the_oauth_code(creds, clock, server, call_with):
    server.reply("POST", "/connect/token", status=400, json={"error": "invalid_grant"})

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert (error.provider, error.status, error.oauth_error) == ("xero", 400, "invalid_grant")
    assert not error.transient
    assert "authorise again" in str(error)


def test_invalid_client_points_at_the_credentials(creds, clock, server, call_with):
    server.reply("POST", "/connect/token", status=401, json={"error": "invalid_client"})

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert (error.status, error.oauth_error) == (401, "invalid_client")
    assert "credentials" in str(error)
    assert not error.transient


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(creds, clock, server, call_with, status):
    server.reply("POST", "/connect/token", status=status, text="<html>upstream broke</html>")

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert error.status == status
    assert error.transient
    assert "<html>" not in str(error)


def test_429_carries_retry_after_in_seconds(creds, clock, server, call_with):
    server.reply("POST", "/connect/token", status=429, headers={"Retry-After": "17", "X-Rate-Limit-Problem": "minute"})

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert (error.status, error.retry_after, error.transient) == (429, 17.0, True)
    assert "retry after 17 s" in str(error)


def test_429_retry_after_may_be_an_http_date(creds, clock, server, call_with):
    when = format_datetime(clock() + timedelta(seconds=42), usegmt=True)
    server.reply("POST", "/connect/token", status=429, headers={"Retry-After": when})

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert error.retry_after == 42.0


def test_timeouts_become_transient_errors_without_status(creds, clock, server, call_with):
    def too_slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    server.route("POST", "/connect/token", too_slow)

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert error.status is None
    assert error.transient
    assert "timed out after 20 s" in str(error)


def test_connection_failures_become_transient_errors_naming_only_the_host(creds, clock, server, call_with):
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    server.route("POST", "/connect/token", refused)

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert error.status is None
    assert error.transient
    assert "could not reach identity.xero.com (ConnectError)" in str(error)


def test_an_invalid_url_is_a_permanent_error_that_does_not_quote_it(clock, call_with):
    access = "ACCESS-TOKEN-" + "q" * 30
    # A NUL cannot appear in a URL: httpx refuses to build the request at all.
    tokens = TokenSet(access, None, None, clock(), (), api_domain="https://exa\x00mple.com")

    error = raised_by(lambda: call_with(lambda http: PipedriveProvider(clock=clock).list_tenants(http, tokens)))

    assert not error.transient
    assert "not valid" in str(error)
    assert access not in everything_said(error)


def test_a_2xx_answer_that_is_not_json_is_an_error_that_does_not_quote_it(creds, clock, server, call_with):
    server.reply("POST", "/connect/token", text=f"access_token={CODE}")

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert error.status == 200
    assert CODE not in str(error)


def test_a_token_answer_without_access_token_names_the_field(creds, clock, server, call_with):
    server.reply("POST", "/connect/token", json={"refresh_token": REFRESH})

    error = raised_by(lambda: exchange(clock, creds, call_with))

    assert "has no 'access_token'" in str(error)
    assert REFRESH not in str(error)


def test_prose_in_the_error_field_is_a_description_not_an_oauth_code(clock, server, call_with):
    server.reply("GET", "/api/v1/users/me", status=401, json={"success": False, "error": "unauthorized access"})
    tokens = TokenSet("ACCESS-" + "a" * 40, None, None, clock(), ())

    result = call_with(lambda http: PipedriveProvider(clock=clock).probe(http, tokens, "1"))

    assert not result.ok
    assert "unauthorized access" in result.detail


def test_hubspot_status_codes_are_mapped_to_oauth_codes(creds, clock, server, call_with):
    server.reply(
        "POST", "/oauth/v1/token", status=400, json={"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown"}
    )

    error = raised_by(lambda: call_with(lambda http: HubSpotProvider(clock=clock).refresh(http, creds, REFRESH)))

    assert error.oauth_error == "invalid_grant"
    assert "BAD_REFRESH_TOKEN" in str(error)


# -- secrets ---------------------------------------------------------------------------------------------


def test_secrets_echoed_by_the_server_are_redacted(creds, clock, server, call_with):
    echo = {
        "error": "invalid_grant",
        "error_description": f"code {CODE} with secret {SECRET} and jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig123",
    }
    server.reply("POST", "/connect/token", status=400, json=echo)

    error = raised_by(lambda: exchange(clock, creds, call_with))

    said = everything_said(error)
    for secret in (CODE, SECRET, "eyJhbGciOiJSUzI1NiJ9"):
        assert secret not in said
    assert "[redacted]" in said
    assert "invalid_grant" in said


def test_a_token_in_the_error_field_is_never_taken_as_the_oauth_code(clock, creds, server, call_with):
    server.reply("POST", "/connect/token", status=400, json={"error": REFRESH})

    error = raised_by(lambda: call_with(lambda http: XeroProvider(clock=clock).refresh(http, creds, REFRESH)))

    assert error.oauth_error is None
    assert REFRESH not in everything_said(error)


def test_transport_errors_do_not_chain_the_request_that_held_the_token(clock, server, call_with):
    access = "ACCESS-TOKEN-" + "z" * 40

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"failed {request.url}", request=request)

    server.route("GET", f"/oauth/v1/access-tokens/{access}", refused)
    tokens = TokenSet(access, None, None, clock(), ())

    error = raised_by(lambda: call_with(lambda http: HubSpotProvider(clock=clock).list_tenants(http, tokens)))

    assert error.__cause__ is None
    assert error.__suppress_context__
    assert access not in everything_said(error)
    assert "<access token>" in str(error)


def test_no_secret_in_any_repr():
    tokens = TokenSet(
        access_token="ACCESS-SECRET-VALUE",
        refresh_token="REFRESH-SECRET-VALUE",
        id_token="ID-SECRET-VALUE",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        granted_scopes=("openid",),
        auth_event_id="e",
        user=AuthorizedUser("u", "sam@acme.example", "Sam"),
    )
    shown = " ".join(
        [
            repr(tokens),
            str(tokens),
            repr(ClientCredentials("id", "CLIENT-SECRET-VALUE")),
            repr(XeroProvider()),
            repr(Tenant("t", "n")),
            repr(ProbeResult(True, "GET /x", 200, "ok")),
        ]
    )
    assert "SECRET-VALUE" not in shown
    assert "expires_at" in shown
    assert "client_id='id'" in shown


def test_sanitize_removes_known_secrets_token_like_runs_and_control_characters():
    text = sanitize("bad\ncode ABC123 and " + "x" * 40 + " " + "y" * 500, secrets=["ABC123"])
    assert "ABC123" not in text
    assert "\n" not in text
    assert "x" * 32 not in text
    assert len(text) <= 200


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("0", 0.0), ("2.5", 2.5), ("-5", 0.0), ("soon", None), ("nan", None), ("inf", None)],
)
def test_parse_retry_after(clock, header, expected):
    assert parse_retry_after(header, now=clock()) == expected


def test_sanitize_leaves_values_too_short_to_be_secrets_alone():
    assert sanitize("a grant", secrets=["a"]) == "a grant"
