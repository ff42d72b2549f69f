"""Minimal HS256 JSON Web Tokens: the emulator signs its own tokens; clients only decode them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

_HEADER = {"alg": "HS256", "typ": "JWT", "kid": "grantctl-emulator"}


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: bytes, key: bytes) -> str:
    return _b64encode(hmac.new(key, signing_input, hashlib.sha256).digest())


_ENCODED_HEADER = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())


def encode(claims: Mapping[str, Any], key: bytes) -> str:
    """Serialise ``claims`` as a compact JWS signed with HMAC-SHA256."""
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{_ENCODED_HEADER}.{payload}"
    return f"{signing_input}.{_sign(signing_input.encode(), key)}"


def decode(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of ``token`` if it is well formed and signed with ``key``; ``None`` otherwise.

    Expiry is not checked here: the emulator's clock is not wall time, so callers compare ``exp``.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header, payload, signature = parts
    expected = _sign(f"{header}.{payload}".encode(), key)
    signature_ok = hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
    if not signature_ok or header != _ENCODED_HEADER:
        return None
    try:
        claims = json.loads(_b64decode(payload))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT without checking its signature (what a client of Xero does)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_b64decode(parts[1]))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None
