"""The sops binary wrapper: decrypt to memory, encrypt through stdin, atomic writes, set."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sops_support import ACCESS, CLIENT_SECRET, REFRESH, AgeKey, state_tree

from grantctl.errors import SopsError
from grantctl.sops import AgeKeyring, load, native
from grantctl.sops import binary as sops_binary


def test_encrypt_to_file_then_decrypt_file(repo: Path, with_key: AgeKey) -> None:
    path = repo / "connections" / "acme-ltd.secrets.yaml"
    sops_binary.encrypt_to_file(
        {"client_id": "app-1", "client_secret": CLIENT_SECRET}, path, config=repo / ".sops.yaml"
    )

    assert CLIENT_SECRET not in path.read_text()
    assert sops_binary.is_encrypted(path)
    assert sops_binary.recipients(path) == [with_key.recipient]
    assert sops_binary.decrypt_file(path) == {"client_id": "app-1", "client_secret": CLIENT_SECRET}
    assert native.decrypt_file(path) == {"client_id": "app-1", "client_secret": CLIENT_SECRET}
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_state_values_keep_their_types(repo: Path, with_key: AgeKey) -> None:
    path = repo / "state" / "acme-ltd.yaml"
    tree = {**state_tree(), "authorized_at": datetime(2026, 11, 20, 10, 0, tzinfo=UTC)}
    sops_binary.encrypt_to_file(tree, path, config=repo / ".sops.yaml")
    decrypted = sops_binary.decrypt_file(path)
    assert decrypted == tree
    assert load(path).plaintext()["tokens"] == {"access_token": None, "refresh_token": None, "id_token": None}
    assert load(path).plaintext()["tenant"]["name"] == "Acme Ltd"


def test_rules_of_the_repo_win_over_sops_environment_variables(
    repo: Path, with_key: AgeKey, other_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_RECIPIENTS", other_key.recipient)
    path = repo / "state" / "acme-ltd.yaml"
    sops_binary.encrypt_to_file(state_tree(), path, config=repo / ".sops.yaml")
    assert sops_binary.recipients(path) == [with_key.recipient]


def test_explicit_env_is_used(repo: Path, age_key: AgeKey) -> None:
    path = repo / "connections" / "x.secrets.yaml"
    env = {"SOPS_AGE_KEY_FILE": str(age_key.path), "PATH": ""}
    sops_binary.encrypt_to_file({"client_secret": CLIENT_SECRET}, path, config=repo / ".sops.yaml", env=env)
    assert sops_binary.decrypt_file(path, env=env) == {"client_secret": CLIENT_SECRET}


def test_failed_encrypt_writes_nothing_and_keeps_the_old_file(repo: Path, with_key: AgeKey) -> None:
    unmatched = repo / "notes" / "x.yaml"
    unmatched.parent.mkdir()
    with pytest.raises(SopsError, match="no creation rule"):
        sops_binary.encrypt_to_file({"a": CLIENT_SECRET}, unmatched, config=repo / ".sops.yaml")
    assert list(unmatched.parent.iterdir()) == []

    existing = repo / "connections" / "acme-ltd.secrets.yaml"
    sops_binary.encrypt_to_file({"client_secret": "old"}, existing, config=repo / ".sops.yaml")
    before = existing.read_bytes()
    with pytest.raises(SopsError, match=r"config .* not found"):
        sops_binary.encrypt_to_file({"client_secret": "new"}, existing, config=repo / "missing.yaml")
    with pytest.raises(SopsError, match="cannot encrypt"):
        sops_binary.encrypt_to_file({"client_secret": object()}, existing, config=repo / ".sops.yaml")
    assert existing.read_bytes() == before


def test_plaintext_never_touches_the_command_line(
    repo: Path, with_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    real_run = subprocess.run

    def spy(args: list[str], **kwargs: Any) -> Any:
        seen.append(list(args))
        return real_run(args, **kwargs)

    monkeypatch.setattr(sops_binary.subprocess, "run", spy)
    path = repo / "state" / "acme-ltd.yaml"
    sops_binary.encrypt_to_file(state_tree(), path, config=repo / ".sops.yaml")
    sops_binary.set_value(path, ["tokens", "refresh_token"], "ROTATED-SECRET", config=repo / ".sops.yaml")
    sops_binary.decrypt_file(path)
    assert len(seen) == 3
    flat = " ".join(" ".join(args) for args in seen)
    for secret in (ACCESS, REFRESH, "ROTATED-SECRET"):
        assert secret not in flat


def test_set_value_changes_one_value_and_is_idempotent(repo: Path, with_key: AgeKey) -> None:
    path = repo / "state" / "acme-ltd.yaml"
    sops_binary.encrypt_to_file(state_tree(), path, config=repo / ".sops.yaml")
    before = load(path)

    assert sops_binary.set_value(path, ["tokens", "refresh_token"], "ROTATED", config=repo / ".sops.yaml")
    after = load(path)
    assert after.tree["tokens"]["access_token"] == before.tree["tokens"]["access_token"]
    assert after.tree["tokens"]["refresh_token"] != before.tree["tokens"]["refresh_token"]
    assert native.decrypt(after, AgeKeyring.from_environment())["tokens"]["refresh_token"] == "ROTATED"

    text = path.read_text()
    assert not sops_binary.set_value(path, ["tokens", "refresh_token"], "ROTATED", config=repo / ".sops.yaml")
    assert path.read_text() == text
    assert sops_binary.set_value(path, ["links", 0, "commit"], "def456", config=repo / ".sops.yaml")
    assert sops_binary.decrypt_file(path)["links"][0]["commit"] == "def456"
    assert sorted(p.name for p in path.parent.iterdir()) == ["acme-ltd.yaml"]


def test_is_encrypted(repo: Path, with_key: AgeKey) -> None:
    state = repo / "state" / "acme-ltd.yaml"
    sops_binary.encrypt_to_file(state_tree(), state, config=repo / ".sops.yaml")
    assert sops_binary.is_encrypted(state)  # plaintext grant fields are expected in a state file

    leaked = repo / "state" / "leaked.yaml"
    leaked.write_text(state.read_text().replace(load(state).tree["tokens"]["access_token"], ACCESS))
    assert not sops_binary.is_encrypted(leaked)

    plain = repo / "state" / "plain.yaml"
    plain.write_text("tokens:\n  access_token: x\n")
    assert not sops_binary.is_encrypted(plain)
    (repo / "state" / "garbage.yaml").write_text("a: [\n")
    assert not sops_binary.is_encrypted(repo / "state" / "garbage.yaml")
    assert not sops_binary.is_encrypted(repo / "state" / "missing.yaml")
    with pytest.raises(SopsError, match="not encrypted"):
        sops_binary.recipients(plain)


def test_set_value_in_a_fully_encrypted_secrets_file(repo: Path, with_key: AgeKey) -> None:
    path = repo / "connections" / "acme-ltd.secrets.yaml"
    sops_binary.encrypt_to_file({"client_id": "app-1", "client_secret": "old"}, path, config=repo / ".sops.yaml")
    assert sops_binary.set_value(path, ["client_secret"], CLIENT_SECRET, config=repo / ".sops.yaml")
    assert native.decrypt_file(path) == {"client_id": "app-1", "client_secret": CLIENT_SECRET}
