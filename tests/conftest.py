"""Suite-wide fixtures: no test reads or writes the real home directory or inherits real keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from grantctl.commands.init import run_init
from grantctl.commands.new import NewConnection, run_new
from grantctl.repo import Repo
from repo_helpers import CLIENT_ID, CLIENT_SECRET, AddConnection, TeamRepo

SECRET_ENV = ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "GRANTCTL_SIGNING_KEY", "GRANTCTL_POSTGRES_DSN")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def team_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TeamRepo:
    key_file = tmp_path / "keys" / "team.agekey"
    run_init(tmp_path / "repo", public_url="https://connect.agency.example", key_file=key_file)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    return TeamRepo(Repo.load((tmp_path / "repo").resolve()), key_file)


@pytest.fixture
def add_connection(team_repo: TeamRepo) -> AddConnection:
    def add(
        name: str = "acme-ltd",
        *,
        scopes: tuple[str, ...] = ("openid", "email", "offline_access", "accounting.invoices"),
        provider: str = "xero",
        created_on: str | None = "2026-11-20",
        organization: str = "Acme Ltd",
    ) -> Path:
        request = NewConnection(
            name=name,
            provider=provider,
            organization=organization,
            owner="jane@agency.example",
            contact_email="sam@acme.example",
            contact_name="Sam Lee",
            scopes=list(scopes),
            created_on=created_on,
        )
        run_new(team_repo.repo, request, read_credentials=lambda: (CLIENT_ID, CLIENT_SECRET))
        return team_repo.repo.manifest_path(name)

    return add
