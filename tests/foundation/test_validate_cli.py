"""`grantctl validate`, `schema --check` and `guide` as users run them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from grantctl.cli import cli
from repo_helpers import AddConnection, TeamRepo, tree_snapshot

PROJECT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grantctl", *args], capture_output=True, text=True, cwd=PROJECT, check=False
    )


def test_the_bundled_examples_validate_in_a_real_process() -> None:
    result = run("validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 connection(s) checked: valid" in result.stdout
    # the older Xero app keeps its broad scopes, with the deadline warning
    assert "connections/example-bluebird-broad.yaml:" in result.stdout
    assert "September 2027" in result.stdout


def test_committed_schemas_are_fresh() -> None:
    result = run("schema", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_stale_schema_is_reported(tmp_path: Path) -> None:
    shutil.copytree(PROJECT / "schemas", tmp_path / "schemas")
    shutil.copy(PROJECT / "grantctl.yaml", tmp_path / "grantctl.yaml")
    (tmp_path / "schemas" / "connection.schema.json").write_text("{}\n")
    result = CliRunner().invoke(cli, ["schema", "--check", "--repo", str(tmp_path)])
    assert result.exit_code == 1
    assert "stale: schemas/connection.schema.json" in result.output


def misspell(path: Path) -> None:
    path.write_text(path.read_text().replace("- accounting.invoices", "- acounting.invoices"))


def test_misspelled_scope_fails_with_location_and_suggestion(
    team_repo: TeamRepo, add_connection: AddConnection
) -> None:
    misspell(add_connection("acme-ltd"))
    before = tree_snapshot(team_repo.root)
    result = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root)])
    assert result.exit_code == 1
    line = next(li for li in result.output.splitlines() if "acounting" in li)
    assert line.startswith("connections/acme-ltd.yaml:22:7: error: spec.scopes[3]: unknown xero scope"), line
    assert "did you mean 'accounting.invoices'" in line
    assert tree_snapshot(team_repo.root) == before


def test_github_format_prints_annotations(team_repo: TeamRepo, add_connection: AddConnection) -> None:
    misspell(add_connection("acme-ltd"))
    result = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root), "--format", "github"])
    assert result.exit_code == 1
    assert (
        "::error file=connections/acme-ltd.yaml,line=22,col=7,title=grantctl validate::spec.scopes[3]" in result.output
    )


def test_json_format(team_repo: TeamRepo, add_connection: AddConnection) -> None:
    misspell(add_connection("acme-ltd"))
    result = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root), "--format", "json"])
    document = json.loads(result.output)
    assert document["valid"] is False
    assert document["diagnostics"][0] == {
        "file": "connections/acme-ltd.yaml",
        "line": 22,
        "column": 7,
        "severity": "error",
        "field": "spec.scopes[3]",
        "message": document["diagnostics"][0]["message"],
    }


def test_plaintext_secrets_file_is_an_error(team_repo: TeamRepo, add_connection: AddConnection) -> None:
    add_connection("acme-ltd")
    (team_repo.root / "connections" / "acme-ltd.secrets.yaml").write_text("client_id: x\nclient_secret: y\n")
    result = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root)])
    assert result.exit_code == 1
    assert "connections/acme-ltd.secrets.yaml:1:1: error: credentials file is not SOPS-encrypted" in result.output


def test_demo_key_outside_examples_is_an_error(team_repo: TeamRepo, add_connection: AddConnection) -> None:
    add_connection("acme-ltd")
    shutil.copy(
        PROJECT / "connections" / "example-acme-granular.secrets.yaml",
        team_repo.root / "connections" / "acme-ltd.secrets.yaml",
    )
    result = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root)])
    assert result.exit_code == 1
    assert "encrypted to the public DEMO key" in result.output


def test_guide_names_the_redirect_uri_and_scopes_in_plain_words(
    team_repo: TeamRepo, add_connection: AddConnection
) -> None:
    add_connection("acme-ltd")
    result = CliRunner().invoke(cli, ["guide", "acme-ltd", "--repo", str(team_repo.root)])
    assert result.exit_code == 0, result.output
    assert "https://connect.agency.example/callback" in result.output
    assert "**Web app**" in result.output
    assert "**Acme Ltd**" in result.output
    assert "(`accounting.invoices`)" in result.output


def test_guide_html_escapes_what_it_echoes(team_repo: TeamRepo, add_connection: AddConnection) -> None:
    add_connection("acme-ltd", organization="<script>alert(1)</script> & Co")
    result = CliRunner().invoke(cli, ["guide", "acme-ltd", "--repo", str(team_repo.root), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert "<script>" not in result.output
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in result.output


def test_unknown_connection_is_a_clear_error(team_repo: TeamRepo) -> None:
    result = CliRunner().invoke(cli, ["guide", "nope", "--repo", str(team_repo.root)])
    assert result.exit_code == 1
    assert "no connection 'nope'" in result.output


def test_usage_errors_exit_1_not_2() -> None:
    result = CliRunner().invoke(cli, ["plan", "--format", "yaml"])
    assert result.exit_code == 1


def test_a_bad_config_is_reported_with_its_location_by_every_command(team_repo: TeamRepo) -> None:
    config = team_repo.root / "grantctl.yaml"
    config.write_text(config.read_text().replace("publicUrl: https://connect.agency.example", "publicUrl: connect"))
    for args in (["validate"], ["plan"], ["audit"]):
        result = CliRunner().invoke(cli, [*args, "--repo", str(team_repo.root)])
        assert result.exit_code == 1, (args, result.output)
        assert f"{config}:4:12: publicUrl: 'connect' does not match" in result.output, (args, result.output)


def test_an_unwritable_place_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    result = CliRunner().invoke(cli, ["init", str(blocker / "repo"), "--key-file", str(tmp_path / "k.agekey")])
    assert result.exit_code == 1
    assert result.output.startswith("error: Not a directory")
    assert "Traceback" not in result.output
