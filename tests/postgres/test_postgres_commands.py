"""grantctl commands end to end with `state: {backend: postgres}`: plan, refresh, health, verify."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from postgres_helpers import (
    DSN_ENV,
    SECRET_VALUES,
    Database,
    Fleet,
    FleetFactory,
    grantctl_process,
    make_grant,
    make_tokens,
)

from grantctl.commands.health import run_health
from grantctl.commands.plan import run_plan
from grantctl.commands.refresh import run_refresh
from grantctl.commands.verify import run_verify
from grantctl.errors import EXIT_ERROR, EXIT_OK
from grantctl.repo import Repo
from grantctl.state.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def _manifest(name: str, scopes: tuple[str, ...]) -> str:
    listed = "".join(f"    - {scope}\n" for scope in scopes)
    return (
        "apiVersion: grantctl/v1\nkind: Connection\n"
        f"metadata:\n  name: {name}\n  owner: jane@agency.example\n"
        "spec:\n  provider: xero\n"
        "  organization:\n    name: Acme Ltd\n    tenantId: 7d3c1a8e-0000-4000-8000-000000000001\n"
        "  contact:\n    name: Sam Lee\n    email: sam@acme.example\n"
        f"  app:\n    credentials: {name}.secrets.yaml\n    createdOn: 2026-11-20\n"
        f"  scopes:\n{listed}"
    )


def _plan_repo(repo: Repo, store: PostgresStore) -> None:
    """acme-ltd wants one scope more than it has; new-client has no state; gone-co has no manifest."""
    wanted = ("openid", "email", "offline_access", "accounting.invoices", "accounting.contacts")
    (repo.connections_dir / "acme-ltd.yaml").write_text(_manifest("acme-ltd", wanted))
    (repo.connections_dir / "new-client.yaml").write_text(_manifest("new-client", wanted))
    for name in ("acme-ltd", "gone-co"):
        with store.lock(name):
            store.write(name, make_grant(name), make_tokens())


def test_plan_reads_grants_from_postgres(repo: Repo, store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _plan_repo(repo, store)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")  # plan needs no key

    outcome = run_plan(repo, fmt="json")

    assert outcome.exit_code == EXIT_OK
    actions = {item["connection"]: item["kind"] for item in json.loads(outcome.output)["actions"]}
    assert actions == {"acme-ltd": "extend", "new-client": "connect", "gone-co": "orphan"}
    assert not repo.state_dir.exists()  # nothing went to files


def test_grantctl_plan_process_with_postgres_state_and_no_key(repo: Repo, store: PostgresStore) -> None:
    _plan_repo(repo, store)
    env = {k: v for k, v in os.environ.items() if k != "SOPS_AGE_KEY_FILE"}

    result = grantctl_process(repo.root, "plan", "--detailed-exitcode", env=env)

    assert result.returncode == 2, result.stderr
    assert "~ extend  acme-ltd" in result.stdout
    assert "+ connect  new-client" in result.stdout
    assert "- orphan  gone-co" in result.stdout


def _assert_no_secret(fleet: Fleet, *outputs: str) -> None:
    for secret in fleet.secrets():
        for output in outputs:
            assert secret not in output


def test_refresh_and_health_against_the_emulator(fleet: FleetFactory) -> None:
    f = fleet(2)
    seeded = {m.name: m.seed_refresh_token for m in f.members}

    refreshed = run_refresh(f.repo, [], concurrency=8, fmt="json")

    _assert_no_secret(f, refreshed.output)
    assert refreshed.exit_code == EXIT_OK, refreshed.output
    assert json.loads(refreshed.output)["summary"]["refreshed"] == 2
    with f.store() as store:
        for name in f.names:
            tokens = store.read_tokens(name)
            assert tokens is not None
            assert tokens.refresh_token
            assert tokens.access_token
            assert tokens.refresh_token != seeded[name]  # the rotated token was persisted
            assert f.emulator_grant(name)["refreshes"] == 1
            document = f.database.document(name)
            assert tokens.refresh_token not in document
            assert tokens.access_token not in document
            grant = store.read_grant(name)
            assert grant is not None
            assert grant.refreshed_at is not None
        assert store.verify() == dict.fromkeys(f.names)

    health = run_health(f.repo, [], fmt="json")

    _assert_no_secret(f, health.output)
    assert health.exit_code == EXIT_OK, health.output
    assert {item["status"] for item in json.loads(health.output)["connections"]} == {"healthy"}
    with f.store() as store:
        for name in f.names:
            grant = store.read_grant(name)
            assert grant is not None
            assert grant.last_health is not None
            assert grant.last_health.status == "healthy"


def test_grantctl_refresh_and_health_processes(fleet: FleetFactory) -> None:
    f = fleet(2)
    env = dict(os.environ)

    refreshed = grantctl_process(f.repo.root, "refresh", "--format", "json", env=env)
    health = grantctl_process(f.repo.root, "health", env=env)

    _assert_no_secret(f, refreshed.stdout, refreshed.stderr, health.stdout, health.stderr)
    assert env[DSN_ENV] not in refreshed.stderr + health.stderr
    assert refreshed.returncode == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["summary"]["refreshed"] == 2
    assert health.returncode == 0, health.stdout + health.stderr
    assert all(f.emulator_grant(name)["refreshes"] == 1 for name in f.names)


def test_verify_names_the_tampered_connection(repo: Repo, store: PostgresStore, database: Database) -> None:
    for name in ("acme-ltd", "beta-co"):
        with store.lock(name):
            store.write(name, make_grant(name), make_tokens())
    document = database.document("beta-co").replace("name: Acme Ltd", "name: Evil Ltd")
    database.sql("UPDATE grantctl_state SET document = %s WHERE name = 'beta-co'", (document,))

    outcome = run_verify(repo)

    assert outcome.exit_code == EXIT_ERROR
    rows = {line.split()[1]: line for line in outcome.output.splitlines()[:2]}
    assert rows["acme-ltd"].startswith("ok")
    assert "tampered: postgres:beta-co: MAC mismatch" in rows["beta-co"]


def test_plan_fails_clearly_when_the_database_is_unreachable(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = "postgresql://grantctl:pw-Unreachable-7731@127.0.0.1:1/grantctl_test"
    monkeypatch.setenv(DSN_ENV, dsn)
    (repo.connections_dir / "acme-ltd.yaml").write_text(_manifest("acme-ltd", ("openid", "offline_access")))

    result = grantctl_process(repo.root, "plan", env=dict(os.environ))

    assert result.returncode == 1
    assert f"cannot connect to PostgreSQL (the DSN in ${DSN_ENV})" in result.stderr
    assert "pw-Unreachable-7731" not in result.stderr + result.stdout
    assert dsn not in result.stderr


def test_state_tokens_never_reach_command_output(repo: Repo, store: PostgresStore, tmp_path: Path) -> None:
    _plan_repo(repo, store)
    outputs: list[Any] = [run_plan(repo).output, run_plan(repo, fmt="markdown").output, run_verify(repo).output]
    for output in outputs:
        assert not any(secret in output for secret in SECRET_VALUES)
