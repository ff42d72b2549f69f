from __future__ import annotations

import pytest
from click.testing import CliRunner
from state_helpers import AgeKey, GrantFactory

from grantctl.commands.verify import run_verify
from grantctl.repo import Repo
from grantctl.state.files import FilesStore
from grantctl.state.model import Tokens

NAMES = ("acme-ltd", "beta-co", "gamma")


@pytest.fixture
def three(repo: Repo, with_key: AgeKey, make_grant: GrantFactory, tokens: Tokens) -> FilesStore:
    """Three connections with grants and tokens, written by grantctl."""
    store = FilesStore(repo)
    for name in NAMES:
        with store.lock(name, timeout=5):
            store.write(name, make_grant(name), tokens)
    return store


def edit(store: FilesStore, name: str, old: str, new: str) -> None:
    path = store.path(name)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_all_ok(three: FilesStore, repo: Repo) -> None:
    assert three.verify() == dict.fromkeys(NAMES)
    outcome = run_verify(repo)
    assert outcome.exit_code == 0
    for name in NAMES:
        assert f"ok            {name}" in outcome.output
    assert "3 state files: 3 ok" in outcome.output


def test_a_tampered_plaintext_grant_field_is_reported_by_name(three: FilesStore, repo: Repo) -> None:
    """Someone widens a grant by hand: the MAC catches it, though the field is plaintext."""
    edit(three, "beta-co", "    - accounting.invoices\n", "    - accounting.invoices\n    - payroll.employees\n")
    assert three.read_grant("beta-co") is not None  # still reads without a key: that is the point
    problems = three.verify()
    assert problems["acme-ltd"] is None
    assert problems["gamma"] is None
    problem = problems["beta-co"]
    assert problem is not None
    assert problem.startswith("tampered: state/beta-co.yaml")
    assert "MAC mismatch" in problem

    outcome = run_verify(repo)
    assert outcome.exit_code == 1
    row = next(line for line in outcome.output.splitlines() if "beta-co" in line)
    assert row.startswith("TAMPERED")
    assert "3 state files: 2 ok, 1 tampered" in outcome.output
    assert "git log -p -- state/beta-co.yaml" in outcome.output


def test_a_changed_timestamp_is_tampering(three: FilesStore) -> None:
    edit(three, "gamma", 'authorized_at: "2026-11-20T09:30:00Z"', 'authorized_at: "2026-11-20T09:31:00Z"')
    assert three.integrity()["gamma"].status == "tampered"


def test_swapped_token_ciphertexts_are_tampering(three: FilesStore) -> None:
    """Each value is bound to its key path: moving ciphertext between fields is detected."""
    path = three.path("acme-ltd")
    lines = path.read_text().splitlines(keepends=True)
    access = next(i for i, line in enumerate(lines) if line.startswith("    access_token:"))
    refresh = next(i for i, line in enumerate(lines) if line.startswith("    refresh_token:"))
    lines[access], lines[refresh] = (
        lines[access].replace(lines[access].split(": ", 1)[1], lines[refresh].split(": ", 1)[1]),
        lines[refresh].replace(lines[refresh].split(": ", 1)[1], lines[access].split(": ", 1)[1]),
    )
    path.write_text("".join(lines))
    check = three.integrity()["acme-ltd"]
    assert check.status == "tampered"
    assert "access_token" in check.detail


def test_without_a_key_files_are_unverifiable_not_passed(
    three: FilesStore, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    problems = FilesStore(repo).verify()
    assert set(problems) == set(NAMES)
    for problem in problems.values():
        assert problem is not None
        assert problem.startswith("could not be checked:")
        assert "SOPS_AGE_KEY_FILE" in problem
    outcome = run_verify(repo)
    assert outcome.exit_code == 1
    assert "3 state files: 0 ok, 3 unverifiable" in outcome.output
    assert "Not checked: acme-ltd, beta-co, gamma" in outcome.output
    assert "SOPS_AGE_KEY_FILE" in outcome.output


def test_with_someone_elses_key_files_are_unverifiable(
    three: FilesStore, repo: Repo, key: AgeKey, other_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other_key.path))
    check = FilesStore(repo).integrity()["acme-ltd"]
    assert check.status == "unverifiable"
    assert key.recipient in check.detail
    assert other_key.recipient in check.detail
    assert other_key.identity not in check.detail


def test_unencrypted_and_broken_files_are_invalid(three: FilesStore, repo: Repo) -> None:
    three.path("delta").write_text("apiVersion: grantctl/v1\nkind: State\nconnection: delta\nprovider: xero\n")
    three.path("epsilon").write_text("connection: [\n")
    integrity = three.integrity()
    assert integrity["delta"].status == "invalid"
    assert "not encrypted" in integrity["delta"].detail
    assert integrity["epsilon"].status == "invalid"
    outcome = run_verify(repo)
    assert outcome.exit_code == 1
    assert "INVALID: delta, epsilon" in outcome.output


def test_a_valid_mac_on_an_invalid_grant_is_still_invalid(
    three: FilesStore, repo: Repo, key: AgeKey, make_grant: GrantFactory
) -> None:
    """sops itself can write anything: a correctly signed file must also be a state document."""
    from grantctl.sops import AgeKeyring, CreationRules, native

    tree = {**make_grant("zeta").to_document(), "surprise": "field"}
    text = native.encrypt(tree, CreationRules.load(repo.sops_config).rule_for(three.path("zeta")))
    three.path("zeta").write_text(text)
    check = three.check("zeta", keyring=AgeKeyring.from_text(key.path.read_text()))
    assert check.status == "invalid"
    assert "surprise" in check.detail


def test_no_state_files(repo: Repo, with_key: AgeKey) -> None:
    outcome = run_verify(repo)
    assert outcome.exit_code == 0
    assert "nothing to verify" in outcome.output


def test_output_never_contains_secrets(
    three: FilesStore, repo: Repo, secret_values: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    edit(three, "beta-co", "consecutive_failures: 0", "consecutive_failures: 7")
    outputs = [run_verify(repo).output]
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    outputs.append(run_verify(repo).output)
    for output in outputs:
        for secret in secret_values:
            assert secret not in output


def test_cli_exit_codes(three: FilesStore, repo: Repo) -> None:
    from grantctl.cli import cli

    runner = CliRunner()
    ok = runner.invoke(cli, ["verify", "--repo", str(repo.root)])
    assert ok.exit_code == 0, ok.output
    edit(three, "gamma", "consecutive_failures: 0", "consecutive_failures: 1")
    bad = runner.invoke(cli, ["verify", "--repo", str(repo.root)])
    assert bad.exit_code == 1
    assert "TAMPERED" in bad.output
    assert "gamma" in bad.output
