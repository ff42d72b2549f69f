"""`grantctl init` and `grantctl new` through the real sops binary and real age keys."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grantctl.cli import cli
from grantctl.sops.binary import find_sops
from repo_helpers import CLIENT_ID, CLIENT_SECRET, AddConnection, TeamRepo, tree_snapshot


def sops_decrypt(path: Path, key_file: Path) -> dict[str, object]:
    env = {"PATH": os.environ["PATH"], "SOPS_AGE_KEY_FILE": str(key_file), "HOME": os.environ["HOME"]}
    result = subprocess.run([find_sops(), "decrypt", str(path)], capture_output=True, env=env, check=True)
    return yaml.safe_load(result.stdout)  # type: ignore[no-any-return]


def test_init_output_decrypts_with_the_printed_key(tmp_path: Path) -> None:
    key_file = tmp_path / "outside" / "team.agekey"
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "repo"), "--public-url", "https://c.example", "--key-file", str(key_file)]
    )
    assert result.exit_code == 0, result.output
    assert f"age private key written to {key_file}" in result.output
    assert "AGE-SECRET-KEY" not in result.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    signing = sops_decrypt(tmp_path / "repo" / "secrets" / "signing-key.yaml", key_file)
    assert len(str(signing["signing_key"])) >= 32
    config = yaml.safe_load((tmp_path / "repo" / "grantctl.yaml").read_text())
    assert config["publicUrl"] == "https://c.example"


def test_init_refuses_a_key_inside_the_repo_and_writes_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "repo"), "--key-file", str(tmp_path / "repo" / "k.agekey")]
    )
    assert result.exit_code == 1
    assert "must live outside the repo" in result.output
    assert not (tmp_path / "repo").exists()


def test_init_refuses_a_bad_public_url_and_writes_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "repo"), "--public-url", "ftp://x", "--key-file", str(tmp_path / "k")]
    )
    assert result.exit_code == 1
    assert "--public-url" in result.output
    assert not (tmp_path / "repo").exists()
    assert not (tmp_path / "k").exists()


def test_init_twice_is_refused(team_repo: TeamRepo, tmp_path: Path) -> None:
    before = tree_snapshot(team_repo.root)
    result = CliRunner().invoke(cli, ["init", str(team_repo.root), "--key-file", str(tmp_path / "other.agekey")])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert tree_snapshot(team_repo.root) == before


def test_new_writes_manifest_and_encrypted_credentials_never_the_secret(team_repo: TeamRepo) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "new",
            "acme-ltd",
            "--repo",
            str(team_repo.root),
            "--provider",
            "xero",
            "--org",
            "Acme Ltd",
            "--owner",
            "jane@agency.example",
            "--contact",
            "sam@acme.example",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
            "--scope",
            "accounting.invoices",
            "--created-on",
            "2026-11-20",
        ],
        input=f"{CLIENT_ID}\n{CLIENT_SECRET}\n",
    )
    assert result.exit_code == 0, result.output
    assert CLIENT_SECRET not in result.output
    assert CLIENT_ID not in result.output
    for path in team_repo.root.rglob("*"):
        if path.is_file():
            assert CLIENT_SECRET.encode() not in path.read_bytes(), path
    manifest = (team_repo.root / "connections" / "acme-ltd.yaml").read_text()
    assert manifest.startswith("# yaml-language-server: $schema=../schemas/connection.schema.json\n")
    secrets_path = team_repo.root / "connections" / "acme-ltd.secrets.yaml"
    assert sops_decrypt(secrets_path, team_repo.key_file) == {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    validate = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root)])
    assert validate.exit_code == 0, validate.output


def test_new_refuses_to_overwrite(team_repo: TeamRepo, add_connection: AddConnection) -> None:
    add_connection("acme-ltd")
    before = tree_snapshot(team_repo.root)
    with pytest.raises(Exception, match="never overwrites"):
        add_connection("acme-ltd")
    assert tree_snapshot(team_repo.root) == before


def test_new_with_a_bad_scope_asks_for_nothing_and_writes_nothing(team_repo: TeamRepo) -> None:
    before = tree_snapshot(team_repo.root)
    result = CliRunner().invoke(
        cli,
        [
            "new",
            "acme-ltd",
            "--repo",
            str(team_repo.root),
            "--provider",
            "xero",
            "--org",
            "Acme Ltd",
            "--owner",
            "jane@agency.example",
            "--contact",
            "sam@acme.example",
            "--scope",
            "offline_access",
            "--scope",
            "acounting.invoices",
        ],
        input=f"{CLIENT_ID}\n{CLIENT_SECRET}\n",
    )
    assert result.exit_code == 1
    assert "did you mean 'accounting.invoices'" in result.output
    assert "Client id" not in result.output
    assert tree_snapshot(team_repo.root) == before


def test_new_reads_credentials_from_stdin_for_scripts(team_repo: TeamRepo) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "new",
            "bluebird",
            "--repo",
            str(team_repo.root),
            "--provider",
            "hubspot",
            "--org",
            "Bluebird",
            "--owner",
            "jane@agency.example",
            "--contact",
            "p@bluebird.example",
            "--scope",
            "oauth",
            "--scope",
            "crm.objects.contacts.read",
            "--credentials-from-stdin",
        ],
        input=f"{CLIENT_ID}\n{CLIENT_SECRET}\n",
    )
    assert result.exit_code == 0, result.output
    secrets_path = team_repo.root / "connections" / "bluebird.secrets.yaml"
    assert sops_decrypt(secrets_path, team_repo.key_file)["client_secret"] == CLIENT_SECRET


def test_init_writes_the_ci_workflows_this_repo_runs(team_repo: TeamRepo) -> None:
    project = Path(__file__).resolve().parents[2] / ".github" / "workflows"
    written = sorted(p.name for p in (team_repo.root / ".github" / "workflows").iterdir())
    assert written == ["grantctl-apply.yml", "grantctl-maintain.yml", "grantctl-plan.yml"]
    for name in written:
        assert (team_repo.root / ".github" / "workflows" / name).read_text() == (project / name).read_text(), name


def test_init_refuses_a_directory_with_its_own_sops_rules(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / ".sops.yaml").write_text("creation_rules: []\n")
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "repo"), "--key-file", str(tmp_path / "k.agekey")])
    assert result.exit_code == 1
    assert ".sops.yaml already exists" in result.output
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == [".sops.yaml"]
    assert not (tmp_path / "k.agekey").exists()
