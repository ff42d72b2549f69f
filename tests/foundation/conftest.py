"""A freshly initialised connections repo with a real age key, and a helper to add connections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from grantctl.commands.init import run_init
from grantctl.commands.new import NewConnection, run_new
from grantctl.repo import Repo

CLIENT_SECRET = "s3cr3t-Client-Secret-0123456789abcdefXYZ"
CLIENT_ID = "CLIENTID0123456789ABCDEF01234567"


@dataclass
class TeamRepo:
    repo: Repo
    key_file: Path

    @property
    def root(self) -> Path:
        return self.repo.root


@pytest.fixture
def team_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TeamRepo:
    key_file = tmp_path / "keys" / "team.agekey"
    run_init(tmp_path / "repo", public_url="https://connect.agency.example", key_file=key_file)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    return TeamRepo(Repo.load((tmp_path / "repo").resolve()), key_file)


AddConnection = Callable[..., Path]


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


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content, to prove a command changed nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
