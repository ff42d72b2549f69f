"""Constants and helpers shared by the sops tests (fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyrage import x25519

ACCESS = "eyJhbGciOiJSUzI1NiJ9.ACCESS-SECRET-7f3a9c"
REFRESH = "REFRESH-SECRET-1b2c3d4e5f"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.IDTOKEN-SECRET-9e8d"
CLIENT_SECRET = "CLIENT-SECRET-q8w7e6r5t4"
SECRETS = (ACCESS, REFRESH, ID_TOKEN, CLIENT_SECRET)
TOKEN_REGEX = "^(access_token|refresh_token|id_token)$"


@dataclass(frozen=True)
class AgeKey:
    """A real age key pair; ``secret`` is the AGE-SECRET-KEY-1... line."""

    secret: str
    recipient: str
    path: Path


def make_key(directory: Path, name: str) -> AgeKey:
    identity = x25519.Identity.generate()
    path = directory / f"{name}.txt"
    path.write_text(f"# created: test\n# public key: {identity.to_public()}\n{identity}\n")
    return AgeKey(str(identity), str(identity.to_public()), path)


def sops_config(age: str, *, extra_rules: str = "") -> str:
    return (
        "creation_rules:\n"
        f"{extra_rules}"
        "  - path_regex: (^|/)state/[^/]*\\.yaml$\n"
        f"    encrypted_regex: {TOKEN_REGEX}\n"
        f"    age: {age}\n"
        "  - path_regex: (^|/)connections/[^/]*\\.secrets\\.yaml$\n"
        f"    age: {age}\n"
    )


def state_tree() -> dict[str, object]:
    """A realistic state document: plaintext grant fields and three encrypted tokens."""
    return {
        "provider": "xero",
        "tenant": {"id": "1c2d3e4f-aaaa-bbbb-cccc-1234567890ab", "name": "Acme Ltd", "type": "ORGANISATION"},
        "granted_scopes": ["openid", "email", "offline_access", "accounting.invoices"],
        "authorized_by": {"user_id": "u-1", "email": "sam@acme.example", "name": "Sam Lee"},
        "authorized_at": "2026-11-20T10:00:00Z",
        "auth_event_id": "e-42",
        "refreshed_at": "2026-11-21T10:00:00Z",
        "access_token_expires_at": "2026-11-21T10:30:00Z",
        "consecutive_failures": 0,
        "last_health": {"status": "healthy", "at": "2026-11-21T10:00:01Z", "detail": "Organisation: 200 OK"},
        "links": [{"issued_at": "2026-11-19T09:00:00Z", "scopes": ["openid"], "commit": "abc123"}],
        "tokens": {"access_token": ACCESS, "refresh_token": REFRESH, "id_token": ID_TOKEN},
    }
