"""OAuth providers: a small base (:mod:`.base`), one module per provider, a registry and a rate limiter.

Example::

    from grantctl.providers import get_provider

    xero = get_provider("xero", {"tokenUrl": "http://127.0.0.1:8765/identity/connect/token"})

``overrides`` is the ``providers.<name>`` mapping of ``grantctl.yaml``: ``authorizeUrl``, ``tokenUrl``,
``revocationUrl`` (null: no revocation), ``apiUrl``, ``pkce`` (bool) and ``timeoutSeconds`` (number).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from grantctl.errors import GrantctlError, Location, ManifestError
from grantctl.providers.base import (
    DEFAULT_TIMEOUT_SECONDS,
    OVERRIDE_URL_KEYS,
    AuthorizedUser,
    BadOverride,
    ClientCredentials,
    Endpoints,
    ProbeResult,
    Provider,
    RateLimits,
    Tenant,
    TokenSet,
    UnsupportedOperation,
)
from grantctl.providers.hubspot import HubSpotProvider
from grantctl.providers.pipedrive import PipedriveProvider
from grantctl.providers.ratelimit import LimitKey, RateLimiter
from grantctl.providers.xero import XeroProvider

PROVIDERS: Mapping[str, type[Provider]] = {
    HubSpotProvider.name: HubSpotProvider,
    PipedriveProvider.name: PipedriveProvider,
    XeroProvider.name: XeroProvider,
}
OVERRIDE_KEYS = (*OVERRIDE_URL_KEYS, "pkce", "timeoutSeconds")


def provider_names() -> tuple[str, ...]:
    """The valid provider names, sorted."""
    return tuple(sorted(PROVIDERS))


def get_provider(
    name: str, overrides: Mapping[str, object] | None = None, *, source: Path | str = "grantctl.yaml"
) -> Provider:
    """The provider called ``name``, with ``grantctl.yaml`` overrides applied.

    Raises ``GrantctlError`` listing the valid names for an unknown provider, and ``ManifestError``
    (located in ``source``, field ``providers.<name>.<key>``) for an unknown key or a bad value.
    """
    try:
        cls = PROVIDERS[name]
    except KeyError:
        raise GrantctlError(f"unknown provider {name!r}; valid providers: {', '.join(provider_names())}") from None
    overrides = overrides or {}
    _reject_unknown_keys(name, overrides, source)
    try:
        endpoints = cls.default_endpoints.with_overrides(overrides)
    except BadOverride as exc:
        raise ManifestError(Location(source), exc.reason, field=f"providers.{name}.{exc.key}") from None
    return cls(
        endpoints,
        pkce=_optional_bool(name, overrides, "pkce", source),
        timeout=_timeout(name, overrides, source),
    )


def _reject_unknown_keys(name: str, overrides: Mapping[str, object], source: Path | str) -> None:
    for key in overrides:
        if key not in OVERRIDE_KEYS:
            raise ManifestError(
                Location(source),
                f"unknown setting; expected one of: {', '.join(OVERRIDE_KEYS)}",
                field=f"providers.{name}.{key}",
            )


def _optional_bool(name: str, overrides: Mapping[str, object], key: str, source: Path | str) -> bool | None:
    value = overrides.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ManifestError(Location(source), "must be true or false", field=f"providers.{name}.{key}")


def _timeout(name: str, overrides: Mapping[str, object], source: Path | str) -> float:
    value = overrides.get("timeoutSeconds")
    if value is None:
        return DEFAULT_TIMEOUT_SECONDS
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 300:
        return float(value)
    raise ManifestError(
        Location(source), "must be a number of seconds between 0 and 300", field=f"providers.{name}.timeoutSeconds"
    )


__all__ = [
    "PROVIDERS",
    "AuthorizedUser",
    "ClientCredentials",
    "Endpoints",
    "HubSpotProvider",
    "LimitKey",
    "PipedriveProvider",
    "ProbeResult",
    "Provider",
    "RateLimiter",
    "RateLimits",
    "Tenant",
    "TokenSet",
    "UnsupportedOperation",
    "XeroProvider",
    "get_provider",
    "provider_names",
]
