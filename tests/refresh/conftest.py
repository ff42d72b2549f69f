"""Fixtures for refresh and health: a real emulator on loopback and a real connections repo.

``fleet(n, ...)`` seeds the emulator with ``n`` connected apps (one app, organisation and user per
connection, each with a pre-seeded refresh token) and writes the matching repo: manifests,
credentials encrypted natively to an age key generated for the test, and state files holding the
seeded refresh tokens. Nothing here reads a developer's keys or home directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyrage import x25519

from grantctl.emulator import RateLimitSettings, Seed, SeedApp, SeedGrant, SeedOrganisation, SeedUser, create_app
from grantctl.emulator.testing import EmulatorControl, serve_in_thread
from grantctl.repo import Repo
from grantctl.sops import native
from grantctl.sops.rules import CreationRules
from grantctl.state.files import FilesStore
from grantctl.state.model import Grant, Tenant, Tokens

SCOPES = ("openid", "email", "offline_access", "accounting.invoices", "accounting.settings.read")
SOPS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sops"
PUBLIC_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class AgeKey:
    identity: str = field(repr=False)
    recipient: str
    path: Path


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AgeKey:
    """A fresh age key in SOPS_AGE_KEY_FILE; no other key source; a private HOME."""
    for var in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("GRANTCTL_TEST_PAUSE_AFTER_TOKEN_RESPONSE", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    key_path = tmp_path / "team.agekey"
    key_path.write_text(f"# public key: {recipient}\n{identity}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_path))
    return AgeKey(str(identity), recipient, key_path)


@dataclass(frozen=True)
class Member:
    """One connection of a fleet, on both sides: the emulator's seed and the repo."""

    name: str
    client_id: str
    client_secret: str = field(repr=False)
    tenant_id: str
    org_name: str
    user_id: str
    seed_refresh_token: str = field(repr=False)
    scopes: tuple[str, ...] = SCOPES
    no_rights: bool = False


@dataclass
class Fleet:
    """A running emulator plus a repo whose connections point at it."""

    base_url: str
    control: EmulatorControl
    repo: Repo
    members: list[Member]
    key: AgeKey

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def store(self) -> FilesStore:
        return FilesStore(self.repo)

    def tokens(self, name: str) -> Tokens:
        tokens = self.store().read_tokens(name)
        assert tokens is not None
        return tokens

    def grant(self, name: str) -> Grant:
        grant = self.store().read_grant(name)
        assert grant is not None
        return grant

    def emulator_grant(self, name: str) -> dict[str, Any]:
        member = self.member(name)
        (found,) = self.control.state(member.client_id)["grants"]
        return dict(found)

    def counters(self) -> dict[str, int]:
        return dict(self.control.state()["counters"])

    def token_call(self, name: str, refresh_token: str) -> httpx.Response:
        """POST a refresh straight to the emulator (to check whether a stored token still works)."""
        member = self.member(name)
        return httpx.post(
            f"{self.base_url}/connect/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(member.client_id, member.client_secret),
            timeout=10,
        )

    def write_state(self, name: str, *, tokens: Tokens | None = None, **changes: Any) -> None:
        """Overwrite ``name``'s state (grant fields changed as given) under its lock."""
        store = self.store()
        grant = self.grant(name).model_copy(update=changes)
        with store.lock(name):
            store.write(name, grant, tokens)

    def secrets(self) -> list[str]:
        """Every secret this fleet knows of right now: client secrets, seeded and stored tokens."""
        values = [m.client_secret for m in self.members] + [m.seed_refresh_token for m in self.members]
        store = self.store()
        for name in self.names:
            tokens = store.read_tokens(name)
            if tokens is not None:
                values += [v for v in (tokens.access_token, tokens.refresh_token, tokens.id_token) if v]
        return values


def _members(count: int, prefix: str, no_rights: Sequence[int]) -> list[Member]:
    return [
        Member(
            name=f"{prefix}-{i:03d}",
            client_id=f"APP{i:04d}{'C' * 24}",
            client_secret=f"client-secret-{i:04d}-{os.urandom(8).hex()}",
            tenant_id=f"00000000-0000-4000-8000-{i:012d}",
            org_name=f"Client {i:03d} Ltd",
            user_id=f"u-{i:04d}",
            seed_refresh_token=f"seed-refresh-{i:04d}-{os.urandom(12).hex()}",
            no_rights=i in no_rights,
        )
        for i in range(count)
    ]


def build_seed(members: Sequence[Member], *, rate_limits: bool = False) -> Seed:
    """One app, organisation, user and pre-seeded grant per member."""
    return Seed(
        apps=[
            SeedApp(
                client_id=m.client_id,
                client_secret=m.client_secret,  # type: ignore[arg-type]
                redirect_uris=[f"{PUBLIC_URL}/callback"],
                created_on=date(2026, 11, 20),
            )
            for m in members
        ],
        organisations=[SeedOrganisation(tenant_id=m.tenant_id, name=m.org_name) for m in members],
        users=[
            SeedUser(
                id=m.user_id,
                email=f"{m.user_id}@client.example",
                given_name="Pat",
                family_name=m.user_id,
                organisations=[m.tenant_id],
                no_rights=[m.tenant_id] if m.no_rights else [],
            )
            for m in members
        ],
        grants=[
            SeedGrant(
                client_id=m.client_id,
                user=m.user_id,
                tenants=[m.tenant_id],
                scopes=list(m.scopes),
                refresh_token=m.seed_refresh_token,  # type: ignore[arg-type]
            )
            for m in members
        ],
        rate_limits=RateLimitSettings(enabled=rate_limits),
    )


def write_repo(root: Path, base_url: str, key: AgeKey, members: Sequence[Member], *, now: datetime) -> Repo:
    """grantctl.yaml pointing at the emulator, .sops.yaml, manifests, credentials and states."""
    (root / "connections").mkdir(parents=True)
    (root / "state").mkdir()
    (root / "grantctl.yaml").write_text(
        "apiVersion: grantctl/v1\nkind: Config\n"
        f"publicUrl: {PUBLIC_URL}\n"
        "providers:\n  xero:\n"
        f"    authorizeUrl: {base_url}/identity/connect/authorize\n"
        f"    tokenUrl: {base_url}/connect/token\n"
        f"    revocationUrl: {base_url}/connect/revocation\n"
        f"    apiUrl: {base_url}\n"
    )
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: (^|/)state/[^/]+\\.yaml$\n"
        "    encrypted_regex: ^(access_token|refresh_token|id_token)$\n"
        f"    age: {key.recipient}\n"
        "  - path_regex: (^|/)connections/[^/]+\\.secrets\\.yaml$\n"
        f"    age: {key.recipient}\n"
    )
    rules = CreationRules.load(root / ".sops.yaml")
    for member in members:
        (root / "connections" / f"{member.name}.yaml").write_text(manifest_text(member))
        native.write_file(
            root / "connections" / f"{member.name}.secrets.yaml",
            {"client_id": member.client_id, "client_secret": member.client_secret},
            rules=rules,
        )
    repo = Repo.load(root)
    store = FilesStore(repo)
    for member in members:
        with store.lock(member.name):
            store.write(member.name, initial_grant(member, now=now), Tokens(refresh_token=member.seed_refresh_token))
    return repo


def manifest_text(member: Member) -> str:
    scopes = "".join(f"    - {scope}\n" for scope in member.scopes)
    return (
        "apiVersion: grantctl/v1\nkind: Connection\n"
        f"metadata:\n  name: {member.name}\n  owner: jane@agency.example\n"
        "spec:\n  provider: xero\n"
        f"  organization:\n    name: {member.org_name}\n    tenantId: {member.tenant_id}\n"
        "  contact:\n    name: Pat Client\n    email: pat@client.example\n"
        f"  app:\n    credentials: {member.name}.secrets.yaml\n    createdOn: 2026-11-20\n"
        f"  scopes:\n{scopes}"
    )


def initial_grant(member: Member, *, now: datetime) -> Grant:
    """A connected grant whose access token is unknown (so refresh finds it due)."""
    return Grant(
        connection=member.name,
        provider="xero",
        tenant=Tenant(id=member.tenant_id, name=member.org_name, type="ORGANISATION"),
        granted_scopes=sorted(member.scopes),
        authorized_at=now - timedelta(days=1),
        refresh_token_issued_at=now - timedelta(days=1),
    )


FleetFactory = Callable[..., Fleet]


@pytest.fixture
def fleet(tmp_path: Path, isolated_environment: AgeKey) -> Iterator[FleetFactory]:
    """``fleet(n=3, prefix="conn", no_rights=(), rate_limits=False)`` -> a running Fleet."""
    stack: list[Any] = []

    def make(n: int = 3, *, prefix: str = "conn", no_rights: Sequence[int] = (), rate_limits: bool = False) -> Fleet:
        members = _members(n, prefix, no_rights)
        server = serve_in_thread(create_app(build_seed(members, rate_limits=rate_limits)))
        base_url = server.__enter__()
        stack.append(server)
        control = EmulatorControl(base_url)
        stack.append(control)
        repo = write_repo(tmp_path / "repo", base_url, isolated_environment, members, now=datetime.now(UTC))
        return Fleet(base_url, control, repo, members, isolated_environment)

    yield make
    for item in reversed(stack):
        item.__exit__(None, None, None)


# -- running grantctl as a separate process -------------------------------------------------------------


class GrantctlRunner:
    """Runs ``grantctl refresh`` / ``grantctl health`` as separate processes against one repo."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo

    def argv(self, command: str, *args: str) -> list[str]:
        return [sys.executable, "-m", "grantctl", command, *args, "--repo", str(self.repo)]

    def run(self, command: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command, *args), capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, command: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )


RunnerFactory = Callable[[Fleet], GrantctlRunner]


@pytest.fixture
def grantctl() -> RunnerFactory:
    """``grantctl(fleet)`` -> a runner for separate grantctl processes on that fleet's repo."""
    return lambda fleet: GrantctlRunner(fleet.repo.root)
