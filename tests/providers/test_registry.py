"""get_provider, overrides from grantctl.yaml, Endpoints validation and the package's public surface."""

from __future__ import annotations

import pytest

import grantctl.providers as providers
from grantctl.errors import GrantctlError, ManifestError
from grantctl.providers import Endpoints, HubSpotProvider, PipedriveProvider, XeroProvider, get_provider

EMULATOR = "http://127.0.0.1:8765"


def test_known_names_give_their_provider():
    assert providers.provider_names() == ("hubspot", "pipedrive", "xero")
    assert isinstance(get_provider("xero"), XeroProvider)
    assert isinstance(get_provider("hubspot"), HubSpotProvider)
    assert isinstance(get_provider("pipedrive"), PipedriveProvider)


def test_an_unknown_name_lists_the_valid_ones():
    with pytest.raises(GrantctlError, match="unknown provider 'quickbooks'; valid providers: hubspot, pipedrive, xero"):
        get_provider("quickbooks")


def test_defaults_are_the_real_endpoints():
    endpoints = get_provider("xero").endpoints
    assert endpoints == Endpoints(
        authorize_url="https://login.xero.com/identity/connect/authorize",
        token_url="https://identity.xero.com/connect/token",
        revocation_url="https://identity.xero.com/connect/revocation",
        api_url="https://api.xero.com",
    )


def test_overrides_point_a_provider_at_the_emulator():
    xero = get_provider(
        "xero",
        {
            "authorizeUrl": f"{EMULATOR}/identity/connect/authorize",
            "tokenUrl": f"{EMULATOR}/identity/connect/token",
            "revocationUrl": f"{EMULATOR}/identity/connect/revocation",
            "apiUrl": EMULATOR,
            "pkce": True,
            "timeoutSeconds": 5,
        },
    )
    assert xero.endpoints.token_url == f"{EMULATOR}/identity/connect/token"
    assert xero.endpoints.api("/connections") == f"{EMULATOR}/connections"
    assert xero.pkce is True
    assert xero.timeout == 5.0


def test_partial_overrides_keep_the_other_defaults_and_null_revocation_disables_it():
    xero = get_provider("xero", {"apiUrl": EMULATOR + "/", "revocationUrl": None})
    assert xero.endpoints.token_url == "https://identity.xero.com/connect/token"
    assert xero.endpoints.revocation_url is None
    assert xero.endpoints.api("/connections") == f"{EMULATOR}/connections"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tokenUrl", "identity.xero.com/connect/token", "http:// or https://"),
        ("apiUrl", "ftp://example.com", "http:// or https://"),
        ("authorizeUrl", "https://", "must name a host"),
        ("tokenUrl", "https://user:pw@example.com/token", "must not carry credentials"),
        ("apiUrl", 42, "non-empty string"),
        ("authorizeUrl", None, "non-empty string"),
        ("apiUrl", "https://bad host.example", "spaces or control characters"),
        ("apiUrl", "http://[::1/x", "not a valid URL"),
        ("apiUrl", "http://127.0.0.1:99999", "not a valid URL"),
    ],
)
def test_a_bad_url_is_a_manifest_error_naming_the_field(key, value, message):
    with pytest.raises(ManifestError) as caught:
        get_provider("xero", {key: value}, source="conf/grantctl.yaml")
    assert caught.value.field == f"providers.xero.{key}"
    assert message in str(caught.value)
    assert str(caught.value).startswith("conf/grantctl.yaml: providers.xero.")


def test_a_bad_url_never_echoes_credentials_in_it():
    with pytest.raises(ManifestError) as caught:
        get_provider("xero", {"tokenUrl": "https://user:hunter2@example.com/token"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tokenURL": "https://x.example"}, "providers.xero.tokenURL"),
        ({"pkce": "yes"}, "providers.xero.pkce"),
        ({"timeoutSeconds": 0}, "providers.xero.timeoutSeconds"),
        ({"timeoutSeconds": True}, "providers.xero.timeoutSeconds"),
        ({"timeoutSeconds": 1000}, "providers.xero.timeoutSeconds"),
    ],
)
def test_unknown_keys_and_bad_values_are_rejected(overrides, field):
    with pytest.raises(ManifestError) as caught:
        get_provider("xero", overrides)
    assert caught.value.field == field


def test_endpoints_validate_themselves():
    with pytest.raises(ValueError, match="token_url"):
        Endpoints("https://a.example", "not a url", None, "https://a.example")


def test_capabilities_per_provider():
    assert (XeroProvider.supports_scope_param, XeroProvider.supports_disconnect) == (True, True)
    assert (PipedriveProvider.supports_scope_param, PipedriveProvider.supports_disconnect) == (False, False)
    assert XeroProvider.limits.per_tenant_concurrency == 5
    assert XeroProvider.limits.per_tenant_per_minute == 60
    assert XeroProvider.limits.per_app_per_minute == 10_000


def test_all_is_sorted_and_every_name_exists():
    # isort order, as ruff keeps it: CONSTANTS, then Classes, then functions.
    assert list(providers.__all__) == sorted(providers.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n))
    for name in providers.__all__:
        assert hasattr(providers, name), name


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout"):
        XeroProvider(timeout=0)
