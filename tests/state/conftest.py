from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyrage import x25519
from state_helpers import AgeKey, GrantFactory, TokensFactory

from grantctl.repo import Repo
from grantctl.state.model import Grant, Tenant, Tokens

ACCESS = "eyJhbGciOiJSUzI1NiJ9.ACCESS-SECRET-7f3a9c"
REFRESH = "REFRESH-SECRET-1b2c3d4e5f"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.IDTOKEN-SECRET-9e8d"
SECRET_VALUES = (ACCESS, REFRESH, ID_TOKEN)


def _new_key(path: Path) -> AgeKey:
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    path.write_text(f"# public key: {recipient}\n{identity}\n")
    return AgeKey(str(identity), recipient, path)


@pytest.fixture
def key(tmp_path: Path) -> AgeKey:
    return _new_key(tmp_path / "team.agekey")


@pytest.fixture
def other_key(tmp_path: Path) -> AgeKey:
    return _new_key(tmp_path / "other.agekey")


@pytest.fixture(autouse=True)
def isolated_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test ever sees a developer's real age keys or sops settings."""
    for var in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


@pytest.fixture
def with_key(monkeypatch: pytest.MonkeyPatch, key: AgeKey) -> AgeKey:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key.path))
    return key


@pytest.fixture
def repo(tmp_path: Path, key: AgeKey) -> Repo:
    """A connections repo whose state files are encrypted to ``key``."""
    root = tmp_path / "repo"
    (root / "state").mkdir(parents=True)
    (root / "connections").mkdir()
    (root / "grantctl.yaml").write_text("apiVersion: grantctl/v1\nkind: Config\npublicUrl: http://127.0.0.1:8080\n")
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: (^|/)state/[^/]+\\.yaml$\n"
        "    encrypted_regex: ^(access_token|refresh_token|id_token)$\n"
        f"    age: {key.recipient}\n"
        "  - path_regex: (^|/)connections/[^/]+\\.secrets\\.yaml$\n"
        f"    age: {key.recipient}\n"
    )
    return Repo.load(root)


def _make_grant(name: str = "acme-ltd", **changes: object) -> Grant:
    base: dict[str, object] = {
        "connection": name,
        "provider": "xero",
        "tenant": Tenant(id="7d3c1a8e-0000-4000-8000-000000000001", name="Acme Ltd", type="ORGANISATION"),
        "granted_scopes": ["openid", "email", "offline_access", "accounting.invoices"],
        "authorized_at": datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        "refreshed_at": datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    }
    base.update(changes)
    return Grant.model_validate(base)


def _make_tokens(**changes: str | None) -> Tokens:
    values: dict[str, str | None] = {"access_token": ACCESS, "refresh_token": REFRESH, "id_token": ID_TOKEN}
    values.update(changes)
    return Tokens(**values)


@pytest.fixture
def make_grant() -> GrantFactory:
    """``make_grant(name="acme-ltd", **field_changes)`` -> a connected Grant."""
    return _make_grant


@pytest.fixture
def make_tokens() -> TokensFactory:
    """``make_tokens(**changes)`` -> Tokens with the three well-known fake secrets."""
    return _make_tokens


@pytest.fixture
def grant() -> Grant:
    return _make_grant()


@pytest.fixture
def tokens() -> Tokens:
    return _make_tokens()


@pytest.fixture
def secret_values() -> tuple[str, ...]:
    """Every secret the fixtures use: none may ever appear in a message, log or repr."""
    return SECRET_VALUES
