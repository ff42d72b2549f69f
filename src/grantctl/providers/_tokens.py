"""Reading what a token response says: JWT claims, granted scopes, expiry.

JWTs are decoded WITHOUT verifying the signature. That is sound here: the tokens come straight from
the provider's token endpoint over TLS (OpenID Connect Core 3.1.3.7 allows TLS server validation in
place of the signature for the code flow), and we only read claims about our own grant; we never
accept a token from anyone else on the strength of these claims.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from grantctl.errors import ProviderError

_SCOPE_SEPARATORS = re.compile(r"[\s,]+")


def jwt_claims(token: str | None) -> dict[str, Any]:
    """The payload of a JWT as a dict; ``{}`` for an opaque (non-JWT) or malformed token."""
    if not token:
        return {}
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def parse_scopes(value: object) -> tuple[str, ...] | None:
    """Scopes from a list, or a space/comma separated string; sorted and de-duplicated.

    None when ``value`` carries no scope information at all (absent or of an unexpected type), so callers
    can tell "the provider said nothing" from "the provider granted nothing".
    """
    if isinstance(value, str):
        items: list[object] = list(_SCOPE_SEPARATORS.split(value))
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    return tuple(sorted({item.strip() for item in items if isinstance(item, str) and item.strip()}))


def expiry(answer: dict[str, Any], claims: dict[str, Any], *, now: datetime) -> datetime:
    """When the access token expires: ``expires_in`` from the response, else the JWT ``exp`` claim.

    With neither, the token is treated as already expired: refreshing too early is harmless, trusting a
    dead token is not.
    """
    expires_in = answer.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return now + timedelta(seconds=float(expires_in))
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        return now + timedelta(seconds=int(expires_in))
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return datetime.fromtimestamp(exp, tz=UTC)
    return now


def required_str(provider: str, answer: dict[str, Any], key: str, *, what: str, status: int) -> str:
    """``answer[key]`` as a non-empty string, or a ``ProviderError`` naming the missing field (not its value)."""
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise ProviderError(provider, f"{what} has no '{key}'", status=status)
    return value


def optional_token(answer: dict[str, Any], key: str) -> str | None:
    """A token field that may be absent (``refresh_token`` without offline access, ``id_token`` without openid)."""
    value = answer.get(key)
    return value if isinstance(value, str) and value else None


def parse_timestamp(value: object) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime (naive values are UTC); None when unparseable.

    Xero writes ``2019-07-09T23:40:30.1833130`` (seven fractional digits, no zone), which Python 3.11 reads.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
