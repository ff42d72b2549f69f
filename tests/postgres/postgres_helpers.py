"""Fixtures (registered by conftest.py) and helpers for the PostgreSQL store tests.

The server comes from ``GRANTCTL_TEST_POSTGRES_DSN``; ``.ci/postgres.sh`` installs, starts and
prints one (``export GRANTCTL_TEST_POSTGRES_DSN=$(bash .ci/postgres.sh)``). Without it these tests
fail rather than skip: a backend that is never tested is a backend that does not work.

Each test gets its own schema (dropped afterwards) and a DSN whose ``search_path`` points at it,
so tests never see each other's tables, rows or advisory locks (lock keys include the schema).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pyrage import x25519

from grantctl.emulator import RateLimitSettings, Seed, SeedApp, SeedGrant, SeedOrganisation, SeedUser, create_app
from grantctl.emulator.testing import EmulatorControl, serve_in_thread
from grantctl.repo import Repo
from grantctl.sops import native
from grantctl.sops.rules import CreationRules
from grantctl.state.model import Grant, Tenant, Tokens
from grantctl.state.postgres import PostgresStore

pytestmark = pytest.mark.postgres

TEST_DSN_ENV = "GRANTCTL_TEST_POSTGRES_DSN"
DSN_ENV = "GRANTCTL_POSTGRES_DSN"
SOPS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sops"
PUBLIC_URL = "http://127.0.0.1:8080"

ACCESS = "eyJhbGciOiJSUzI1NiJ9.PG-ACCESS-SECRET-4b1d"
REFRESH = "PG-REFRESH-SECRET-77aa01"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.PG-IDTOKEN-SECRET-c0de"
SECRET_VALUES = (ACCESS, REFRESH, ID_TOKEN)


@dataclass(frozen=True)
class AgeKey:
    identity: str = field(repr=False)
    recipient: str
    path: Path


@dataclass(frozen=True)
class Database:
    """The test's own schema: ``dsn`` has ``search_path`` set to it; ``admin`` runs SQL in it."""

    dsn: str = field(repr=False)
    schema: str

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in the schema (autocommit); its rows, if it returns any."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            cursor = connection.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def document(self, name: str) -> str:
        (row,) = self.sql("SELECT document FROM grantctl_state WHERE name = %s", (name,))
        return str(row[0])


@pytest.fixture(scope="session")
def server_dsn() -> str:
    dsn = os.environ.get(TEST_DSN_ENV, "")
    if not dsn:
        pytest.fail(
            f"{TEST_DSN_ENV} is not set: these tests need a real PostgreSQL. Run "
            f"`export {TEST_DSN_ENV}=$(bash .ci/postgres.sh)` (installs and starts one) and try again",
            pytrace=False,
        )
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error:
        pytest.fail(
            f"cannot connect to the PostgreSQL in {TEST_DSN_ENV}; is it running? `bash .ci/postgres.sh` starts it",
            pytrace=False,
        )
    return dsn


@pytest.fixture
def database(server_dsn: str) -> Iterator[Database]:
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    yield Database(make_conninfo(server_dsn, options=f"-csearch_path={schema}"), schema)
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(autouse=True)
def age_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AgeKey:
    """A fresh age key in SOPS_AGE_KEY_FILE; no other key source; a private HOME."""
    for var in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
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


def write_config(root: Path, key: AgeKey, *, providers: str = "") -> None:
    """grantctl.yaml keeping state in PostgreSQL, and a .sops.yaml for state and credentials."""
    (root / "connections").mkdir(parents=True, exist_ok=True)
    (root / "grantctl.yaml").write_text(
        f"apiVersion: grantctl/v1\nkind: Config\npublicUrl: {PUBLIC_URL}\nstate:\n  backend: postgres\n{providers}"
    )
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: (^|/)state/[^/]+\\.yaml$\n"
        "    encrypted_regex: ^(access_token|refresh_token|id_token)$\n"
        f"    age: {key.recipient}\n"
        "  - path_regex: (^|/)connections/[^/]+\\.secrets\\.yaml$\n"
        f"    age: {key.recipient}\n"
    )


@pytest.fixture
def repo(tmp_path: Path, age_key: AgeKey, database: Database, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """A connections repo with `state: {backend: postgres}`; the DSN in $GRANTCTL_POSTGRES_DSN."""
    root = tmp_path / "repo"
    write_config(root, age_key)
    monkeypatch.setenv(DSN_ENV, database.dsn)
    return Repo.load(root)


@pytest.fixture
def store(repo: Repo, database: Database) -> Iterator[PostgresStore]:
    with PostgresStore(repo, dsn=database.dsn) as opened:
        yield opened


def make_grant(name: str = "acme-ltd", **changes: object) -> Grant:
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


def make_tokens(**changes: str | None) -> Tokens:
    values: dict[str, str | None] = {"access_token": ACCESS, "refresh_token": REFRESH, "id_token": ID_TOKEN}
    values.update(changes)
    return Tokens(**values)


def sops_decrypt(document: str, name: str, directory: Path, key: AgeKey) -> subprocess.CompletedProcess[str]:
    """``sops -d`` on ``document`` saved as ``<directory>/state/<name>.yaml``, with only ``key``."""
    path = directory / "state" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(directory), "SOPS_AGE_KEY_FILE": str(key.path)}
    return subprocess.run(
        [str(SOPS), "-d", str(path)], capture_output=True, text=True, env=env, timeout=30, check=False
    )


# -- a fleet: the emulator on loopback and a repo whose state is in PostgreSQL ---------------------------


@dataclass(frozen=True)
class Member:
    name: str
    client_id: str
    client_secret: str = field(repr=False)
    tenant_id: str
    org_name: str
    user_id: str
    seed_refresh_token: str = field(repr=False)


SCOPES = ("openid", "email", "offline_access", "accounting.invoices", "accounting.settings.read")


@dataclass
class Fleet:
    base_url: str
    control: EmulatorControl
    repo: Repo
    database: Database
    members: list[Member]

    @property
    def names(self) -> list[str]:
        return [member.name for member in self.members]

    def store(self) -> PostgresStore:
        return PostgresStore(self.repo, dsn=self.database.dsn)

    def emulator_grant(self, name: str) -> dict[str, Any]:
        member = next(m for m in self.members if m.name == name)
        (found,) = self.control.state(member.client_id)["grants"]
        return dict(found)

    def secrets(self) -> list[str]:
        """Client secrets, seeded tokens and every token stored now: none may ever be printed."""
        values = [m.client_secret for m in self.members] + [m.seed_refresh_token for m in self.members]
        with self.store() as store:
            for name in self.names:
                tokens = store.read_tokens(name)
                if tokens is not None:
                    values += [v for v in (tokens.access_token, tokens.refresh_token, tokens.id_token) if v]
        return values


def _members(count: int) -> list[Member]:
    return [
        Member(
            name=f"pg-{i:03d}",
            client_id=f"APP{i:04d}{'P' * 24}",
            client_secret=f"client-secret-{i:04d}-{os.urandom(8).hex()}",
            tenant_id=f"00000000-0000-4000-8000-{i:012d}",
            org_name=f"Client {i:03d} Ltd",
            user_id=f"u-{i:04d}",
            seed_refresh_token=f"seed-refresh-{i:04d}-{os.urandom(12).hex()}",
        )
        for i in range(count)
    ]


def _seed(members: list[Member]) -> Seed:
    return Seed(
        apps=[
            SeedApp(
                client_id=m.client_id,
                client_secret=m.client_secret,
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
            )
            for m in members
        ],
        grants=[
            SeedGrant(
                client_id=m.client_id,
                user=m.user_id,
                tenants=[m.tenant_id],
                scopes=list(SCOPES),
                refresh_token=m.seed_refresh_token,
            )
            for m in members
        ],
        rate_limits=RateLimitSettings(enabled=False),
    )


def _manifest(member: Member) -> str:
    scopes = "".join(f"    - {scope}\n" for scope in SCOPES)
    return (
        "apiVersion: grantctl/v1\nkind: Connection\n"
        f"metadata:\n  name: {member.name}\n  owner: jane@agency.example\n"
        "spec:\n  provider: xero\n"
        f"  organization:\n    name: {member.org_name}\n    tenantId: {member.tenant_id}\n"
        "  contact:\n    name: Pat Client\n    email: pat@client.example\n"
        f"  app:\n    credentials: {member.name}.secrets.yaml\n    createdOn: 2026-11-20\n"
        f"  scopes:\n{scopes}"
    )


def _write_fleet_repo(root: Path, base_url: str, key: AgeKey, database: Database, members: list[Member]) -> Repo:
    providers = (
        "providers:\n  xero:\n"
        f"    authorizeUrl: {base_url}/identity/connect/authorize\n"
        f"    tokenUrl: {base_url}/connect/token\n"
        f"    revocationUrl: {base_url}/connect/revocation\n"
        f"    apiUrl: {base_url}\n"
    )
    write_config(root, key, providers=providers)
    rules = CreationRules.load(root / ".sops.yaml")
    for member in members:
        (root / "connections" / f"{member.name}.yaml").write_text(_manifest(member))
        native.write_file(
            root / "connections" / f"{member.name}.secrets.yaml",
            {"client_id": member.client_id, "client_secret": member.client_secret},
            rules=rules,
        )
    repo = Repo.load(root)
    now = datetime.now(UTC)
    with PostgresStore(repo, dsn=database.dsn) as store:
        for member in members:
            grant = Grant(
                connection=member.name,
                provider="xero",
                tenant=Tenant(id=member.tenant_id, name=member.org_name, type="ORGANISATION"),
                granted_scopes=sorted(SCOPES),
                authorized_at=now - timedelta(days=1),
                refresh_token_issued_at=now - timedelta(days=1),
            )
            with store.lock(member.name):
                store.write(member.name, grant, Tokens(refresh_token=member.seed_refresh_token))
    return repo


FleetFactory = Callable[[int], Fleet]


@pytest.fixture
def fleet(
    tmp_path: Path, age_key: AgeKey, database: Database, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FleetFactory]:
    """``fleet(n)`` -> a running emulator with ``n`` connected apps and a postgres-backed repo for them."""
    servers: list[Any] = []
    monkeypatch.setenv(DSN_ENV, database.dsn)

    def make(count: int) -> Fleet:
        members = _members(count)
        server = serve_in_thread(create_app(_seed(members)))
        base_url = server.__enter__()
        servers.append(server)
        control = EmulatorControl(base_url)
        servers.append(control)
        repo = _write_fleet_repo(tmp_path / "repo", base_url, age_key, database, members)
        return Fleet(base_url, control, repo, database, members)

    yield make
    for item in reversed(servers):
        item.__exit__(None, None, None)


def grantctl_process(root: Path, command: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``grantctl <command> ... --repo root`` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "grantctl", command, *args, "--repo", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
