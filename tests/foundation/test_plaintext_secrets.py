"""A SOPS file is not enough: the client secret and the tokens themselves must be ciphertext.

A `.sops.yaml` with one catch-all rule that only encrypts the token fields (a natural first draft:
"encrypt the tokens") gives every credentials file sops metadata and a MAC while leaving
`client_secret` in plaintext. `grantctl new` must refuse to write such a file, and `grantctl validate`
must flag one that is already there, without echoing the secret.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from grantctl.cli import cli
from grantctl.sops.binary import encrypt_to_file
from repo_helpers import CLIENT_ID, CLIENT_SECRET, AddConnection, TeamRepo, tree_snapshot

TOKENS_ONLY = "^(access_token|refresh_token|id_token)$"
REFRESH_TOKEN = "refresh-token-in-plaintext-0123456789"


def _recipient(team_repo: TeamRepo) -> str:
    rules = yaml.safe_load((team_repo.root / ".sops.yaml").read_text())["creation_rules"]
    return str(rules[0]["age"])


def _write_sops_config(path: Path, recipient: str, *, encrypted_regex: str) -> None:
    path.write_text(
        yaml.safe_dump({"creation_rules": [{"encrypted_regex": encrypted_regex, "age": recipient}]}, sort_keys=False)
    )


def _new(team_repo: TeamRepo) -> Result:
    return CliRunner().invoke(
        cli,
        [
            "new",
            "acme-ltd",
            "--provider=xero",
            "--org=Acme Ltd",
            "--owner=jane@agency.example",
            "--contact=sam@acme.example",
            "--scope=openid",
            "--scope=offline_access",
            "--scope=accounting.invoices",
            "--created-on=2026-11-20",
            "--credentials-from-stdin",
            "--repo",
            str(team_repo.root),
        ],
        input=f"{CLIENT_ID}\n{CLIENT_SECRET}\n",
    )


def test_new_refuses_a_creation_rule_that_leaves_the_client_secret_in_plaintext(team_repo: TeamRepo) -> None:
    _write_sops_config(team_repo.root / ".sops.yaml", _recipient(team_repo), encrypted_regex=TOKENS_ONLY)
    before = tree_snapshot(team_repo.root)

    result = _new(team_repo)

    assert result.exit_code == 1, result.output
    output = result.output
    assert "client_secret" in output
    assert ".sops.yaml" in output
    assert "Nothing was written" in output
    assert CLIENT_SECRET not in output
    assert tree_snapshot(team_repo.root) == before
    for text in tree_snapshot(team_repo.root).values():
        assert CLIENT_SECRET.encode() not in text


def test_new_still_works_with_the_default_rules(team_repo: TeamRepo) -> None:
    result = _new(team_repo)
    assert result.exit_code == 0, result.output
    written = (team_repo.root / "connections" / "acme-ltd.secrets.yaml").read_text()
    assert CLIENT_SECRET not in written


def test_validate_flags_a_credentials_file_whose_client_secret_is_plaintext(
    team_repo: TeamRepo, add_connection: AddConnection, tmp_path: Path
) -> None:
    add_connection("acme-ltd")
    narrow = tmp_path / "narrow.sops.yaml"
    _write_sops_config(narrow, _recipient(team_repo), encrypted_regex=TOKENS_ONLY)
    secrets_file = team_repo.root / "connections" / "acme-ltd.secrets.yaml"
    encrypt_to_file({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, secrets_file, config=narrow)
    assert CLIENT_SECRET in secrets_file.read_text()  # the premise: sops metadata, plaintext secret

    result = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root)])

    assert result.exit_code == 1, result.output
    line = next(li for li in result.output.splitlines() if "acme-ltd.secrets.yaml" in li)
    assert "error" in line
    assert "client_secret" in line
    assert "rotate" in line
    assert CLIENT_SECRET not in result.output


def test_validate_flags_a_state_file_with_a_plaintext_token(
    team_repo: TeamRepo, add_connection: AddConnection, tmp_path: Path
) -> None:
    add_connection("acme-ltd")
    narrow = tmp_path / "narrow.sops.yaml"
    _write_sops_config(narrow, _recipient(team_repo), encrypted_regex="^access_token$")
    state_file = team_repo.root / "state" / "acme-ltd.yaml"
    document = {
        "apiVersion": "grantctl/v1",
        "kind": "State",
        "connection": "acme-ltd",
        "provider": "xero",
        "tokens": {"access_token": "access-token-0123456789", "refresh_token": REFRESH_TOKEN},
    }
    encrypt_to_file(document, state_file, config=narrow)
    assert REFRESH_TOKEN in state_file.read_text()

    result = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root)])

    assert result.exit_code == 1, result.output
    line = next(li for li in result.output.splitlines() if "state/acme-ltd.yaml" in li)
    assert "refresh_token" in line
    assert REFRESH_TOKEN not in result.output


def test_validate_accepts_files_written_by_grantctl(team_repo: TeamRepo, add_connection: AddConnection) -> None:
    add_connection("acme-ltd")
    result = CliRunner().invoke(cli, ["validate", "--repo", str(team_repo.root)])
    assert result.exit_code == 0, result.output
