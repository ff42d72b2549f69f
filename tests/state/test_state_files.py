from __future__ import annotations

import difflib
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from state_helpers import AgeKey, GrantFactory, TokensFactory

from grantctl.errors import GrantctlError, SopsError, StateError
from grantctl.repo import Repo
from grantctl.state.base import StateStore
from grantctl.state.files import FilesStore
from grantctl.state.model import Grant, Health, LinkRecord, Tokens


@pytest.fixture
def store(repo: Repo, with_key: AgeKey) -> FilesStore:
    return FilesStore(repo)


def write(store: StateStore, name: str, grant: Grant, tokens: Tokens | None = None) -> None:
    with store.lock(name, timeout=5):
        store.write(name, grant, tokens)


def changed_lines(before: str, after: str) -> list[str]:
    """The lines a git diff would show as removed (-) or added (+)."""
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


# -- round trip and what is on disk ---------------------------------------------------------------------


def test_round_trip(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    assert store.names() == ["acme-ltd"]
    assert store.read_grant("acme-ltd") == grant
    assert store.read_tokens("acme-ltd") == tokens
    assert store.read_grants() == {"acme-ltd": grant}


def test_a_fresh_store_sees_what_another_wrote(repo: Repo, store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    again = FilesStore(repo)
    assert again.read_grant("acme-ltd") == grant
    assert again.read_tokens("acme-ltd") == tokens


def test_missing_connection_reads_as_none(store: FilesStore) -> None:
    assert store.read_grant("nobody") is None
    assert store.read_tokens("nobody") is None
    assert store.read_grants() == {}
    assert store.names() == []


def test_a_grant_without_tokens(store: FilesStore, grant: Grant) -> None:
    write(store, "acme-ltd", grant)
    assert store.read_tokens("acme-ltd") is None
    assert "tokens:" not in store.path("acme-ltd").read_text()
    assert store.read_grant("acme-ltd") == grant


def test_tokens_are_encrypted_on_disk_and_grant_fields_are_not(
    store: FilesStore, grant: Grant, tokens: Tokens, secret_values: tuple[str, ...]
) -> None:
    write(store, "acme-ltd", grant, tokens)
    text = store.path("acme-ltd").read_text()
    for secret in secret_values:
        assert secret not in text
        for fragment in (secret[:12], secret[-12:]):
            assert fragment not in text
    for field in ("access_token", "refresh_token", "id_token"):
        assert f"    {field}: ENC[AES256_GCM," in text
    assert "connection: acme-ltd\n" in text
    assert "    name: Acme Ltd\n" in text
    assert "    - accounting.invoices\n" in text
    assert 'authorized_at: "2026-11-20T09:30:00Z"\n' in text
    assert "encrypted_regex: ^(access_token|refresh_token|id_token)$" in text
    assert text.index("tokens:") < text.index("\nsops:\n")


def test_document_layout_is_sops_layout(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    lines = store.path("acme-ltd").read_text().splitlines()
    top = [line.split(":")[0] for line in lines if line and not line.startswith(" ")]
    assert top == [
        "apiVersion",
        "kind",
        "connection",
        "provider",
        "tenant",
        "granted_scopes",
        "authorized_at",
        "refreshed_at",
        "consecutive_failures",
        "links",
        "tokens",
        "sops",
    ]


def test_repr_of_tokens_read_back_hides_them(
    store: FilesStore, grant: Grant, tokens: Tokens, secret_values: tuple[str, ...]
) -> None:
    write(store, "acme-ltd", grant, tokens)
    read = store.read_tokens("acme-ltd")
    for secret in secret_values:
        assert secret not in repr(read)
        assert secret not in repr(store)


# -- updates: minimal diffs, kept tokens -----------------------------------------------------------------


def test_update_changes_only_the_changed_lines(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    before = path.read_text()
    write(store, "acme-ltd", grant.model_copy(update={"consecutive_failures": 3}), tokens)
    after = path.read_text()
    changed = changed_lines(before, after)
    assert [line for line in changed if "consecutive_failures" in line] == [
        "-consecutive_failures: 0",
        "+consecutive_failures: 3",
    ]
    others = sorted(line[1:].strip().split(":")[0] for line in changed if "consecutive_failures" not in line)
    # lastmodified has whole seconds: it moves unless both writes fall in the same second
    assert others in (["lastmodified", "lastmodified", "mac", "mac"], ["mac", "mac"])


def test_rotating_one_token_changes_only_its_line(
    store: FilesStore, grant: Grant, tokens: Tokens, make_tokens: TokensFactory
) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    before = path.read_text()
    rotated = make_tokens(refresh_token="REFRESH-SECRET-rotated-99")
    write(store, "acme-ltd", grant.model_copy(update={"refreshed_at": datetime(2026, 11, 21, tzinfo=UTC)}), rotated)
    keys = sorted(line[1:].strip().split(":")[0] for line in changed_lines(before, path.read_text()))
    assert [k for k in keys if k != "lastmodified"] == sorted(["refresh_token", "refreshed_at", "mac"] * 2)
    assert store.read_tokens("acme-ltd") == rotated


def test_tokens_none_keeps_stored_tokens_byte_identical(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    token_lines = [line for line in path.read_text().splitlines() if "_token: ENC[" in line]
    assert len(token_lines) == 3
    new_grant = grant.model_copy(
        update={"last_health": Health(status="healthy", at=datetime(2026, 11, 22, tzinfo=UTC), detail="ok")}
    )
    write(store, "acme-ltd", new_grant, None)
    after = path.read_text()
    assert [line for line in after.splitlines() if "_token: ENC[" in line] == token_lines
    assert store.read_tokens("acme-ltd") == tokens
    assert store.read_grant("acme-ltd") == new_grant


def test_same_content_does_not_touch_the_file(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    before = path.read_text()
    inode = path.stat().st_ino
    write(store, "acme-ltd", grant, tokens)
    write(store, "acme-ltd", grant, None)
    assert path.read_text() == before  # not even lastmodified moves: no git diff
    assert path.stat().st_ino == inode


def test_data_key_is_kept_on_update(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    enc_block = path.read_text().split("enc: |")[1].split("lastmodified")[0]
    write(store, "acme-ltd", grant.model_copy(update={"consecutive_failures": 1}), tokens)
    assert path.read_text().split("enc: |")[1].split("lastmodified")[0] == enc_block


def test_dropping_a_token(store: FilesStore, grant: Grant, tokens: Tokens, make_tokens: TokensFactory) -> None:
    write(store, "acme-ltd", grant, tokens)
    write(store, "acme-ltd", grant, make_tokens(id_token=None))
    read = store.read_tokens("acme-ltd")
    assert read is not None
    assert read.id_token is None
    assert read.refresh_token == tokens.refresh_token
    assert "    id_token:" not in store.path("acme-ltd").read_text()


def test_links_and_nested_fields_round_trip(store: FilesStore, make_grant: GrantFactory, tokens: Tokens) -> None:
    link = LinkRecord(
        issued_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        action="connect",
        scopes=["openid", "offline_access"],
        expires_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        commit="0123456789abcdef",
    )
    grant = make_grant(links=[link, link.model_copy(update={"action": "extend", "commit": None})])
    write(store, "acme-ltd", grant, tokens)
    assert store.read_grant("acme-ltd") == grant
    text = store.path("acme-ltd").read_text()
    assert "links:\n    - issued_at: " in text  # sops' own layout for lists of mappings


# -- reading with no key ---------------------------------------------------------------------------------


def test_read_grants_needs_no_key(
    repo: Repo, store: FilesStore, make_grant: GrantFactory, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    grants = {name: make_grant(name) for name in ("acme-ltd", "beta-co", "gamma")}
    for name, grant in grants.items():
        write(store, name, grant, tokens)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    keyless = FilesStore(repo)
    assert keyless.read_grants() == grants
    assert keyless.read_grant("beta-co") == grants["beta-co"]
    with pytest.raises(SopsError, match="no age key"):
        keyless.read_tokens("acme-ltd")


def test_read_grants_does_not_run_sops(
    repo: Repo, store: FilesStore, grant: Grant, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(store, "acme-ltd", grant, tokens)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("read_grants started a process or decrypted")

    monkeypatch.setattr("subprocess.run", forbidden)
    monkeypatch.setattr("subprocess.Popen", forbidden)
    monkeypatch.setattr("grantctl.sops.native.open_document", forbidden)
    assert FilesStore(repo).read_grants() == {"acme-ltd": grant}


def test_names_skip_temp_and_lock_files(store: FilesStore, grant: Grant) -> None:
    write(store, "acme-ltd", grant)
    directory = store.directory
    (directory / ".acme-ltd.yaml.abc123.tmp").write_text("half")
    (directory / "README.md").write_text("notes")
    (directory / "Not_A_Name.yaml").write_text("x: 1")
    assert store.names() == ["acme-ltd"]


def test_sops_block_need_not_be_last(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    """The fast path cuts the sops block out textually; a file laid out otherwise still reads."""
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    text = path.read_text()
    head, sops_block = text.split("\nsops:\n")
    first_line, rest = head.split("\n", 1)
    path.write_text(f"{first_line}\nsops:\n{sops_block.rstrip()}\n{rest}\n")
    assert store.read_grant("acme-ltd") == grant


# -- bad documents ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("connection: [unclosed\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("connection: acme-ltd\nprovider: myspace\n", "provider"),
        ("connection: acme-ltd\nprovider: xero\nsurprise: 1\n", "surprise"),
        ("connection: beta-co\nprovider: xero\n", "connection 'beta-co'"),
        ("connection: acme-ltd\nprovider: xero\nauthorized_at: yesterday\n", "authorized_at"),
    ],
)
def test_bad_documents_name_the_file_and_what_to_do(store: FilesStore, content: str, expected: str) -> None:
    store.path("acme-ltd").write_text(content)
    with pytest.raises(StateError) as caught:
        store.read_grant("acme-ltd")
    message = str(caught.value)
    assert "state/acme-ltd.yaml" in message
    assert expected in message
    assert "git" in message
    with pytest.raises(StateError):
        store.read_grants()


def test_plaintext_tokens_are_refused_without_echoing_them(
    store: FilesStore, grant: Grant, tokens: Tokens, secret_values: tuple[str, ...]
) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    text = path.read_text()
    start = text.index("    refresh_token: ENC[")
    end = text.index("\n", start)
    path.write_text(f"{text[:start]}    refresh_token: {tokens.refresh_token}{text[end:]}")
    with pytest.raises(StateError, match="refresh_token not encrypted") as caught:
        store.read_grant("acme-ltd")
    assert "leaked" in str(caught.value)
    with pytest.raises(GrantctlError) as on_read:
        store.read_tokens("acme-ltd")
    for secret in secret_values:
        assert secret not in str(caught.value)
        assert secret not in str(on_read.value)


def test_tampered_token_ciphertext_fails_read_tokens(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    text = path.read_text()
    start = text.index("access_token: ENC[AES256_GCM,data:") + len("access_token: ENC[AES256_GCM,data:")
    flipped = "B" if text[start] != "B" else "C"
    path.write_text(text[:start] + flipped + text[start + 1 :])
    with pytest.raises(SopsError) as caught:
        store.read_tokens("acme-ltd")
    assert "state/acme-ltd.yaml" in str(caught.value)
    assert "access_token" in str(caught.value)


def test_tampered_grant_field_fails_read_tokens_and_write(
    store: FilesStore, grant: Grant, tokens: Tokens, secret_values: tuple[str, ...]
) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    tampered = path.read_text().replace(
        "    - accounting.invoices\n", "    - accounting.invoices\n    - payroll.employees\n"
    )
    path.write_text(tampered)
    with pytest.raises(SopsError, match="MAC mismatch") as caught:
        store.read_tokens("acme-ltd")
    assert "state/acme-ltd.yaml" in str(caught.value)
    # A write must not re-sign a tampered file (and must leave it for inspection).
    with pytest.raises(SopsError, match="MAC mismatch"):
        write(store, "acme-ltd", grant, None)
    assert path.read_text() == tampered
    for secret in secret_values:
        assert secret not in str(caught.value)


def test_wrong_key_says_whose_key_is_needed(
    repo: Repo,
    store: FilesStore,
    grant: Grant,
    tokens: Tokens,
    other_key: AgeKey,
    key: AgeKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(store, "acme-ltd", grant, tokens)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other_key.path))
    with pytest.raises(SopsError) as caught:
        FilesStore(repo).read_tokens("acme-ltd")
    message = str(caught.value)
    assert key.recipient in message
    assert key.identity not in message
    assert other_key.identity not in message


# -- writing: rules, locks, atomicity ----------------------------------------------------------------------


def test_write_needs_the_lock(store: FilesStore, grant: Grant) -> None:
    with pytest.raises(StateError, match="without holding"):
        store.write("acme-ltd", grant)
    with pytest.raises(StateError, match="without holding"):
        store.delete("acme-ltd")
    with store.lock("beta-co", timeout=1), pytest.raises(StateError, match="without holding"):
        store.write("acme-ltd", grant)
    assert not store.path("acme-ltd").exists()


def test_write_refuses_a_grant_for_another_connection(store: FilesStore, make_grant: GrantFactory) -> None:
    with pytest.raises(StateError, match="beta-co"):
        write(store, "acme-ltd", make_grant("beta-co"))


def test_delete(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    with store.lock("acme-ltd", timeout=1):
        store.delete("acme-ltd")
        store.delete("acme-ltd")  # already gone: nothing to do
    assert store.read_grant("acme-ltd") is None
    assert store.names() == []


def test_a_failed_replace_leaves_the_old_file_and_no_temp_file(
    store: FilesStore, grant: Grant, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    before = path.read_bytes()
    listing = sorted(os.listdir(store.directory))

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StateError) as caught:
        write(store, "acme-ltd", grant.model_copy(update={"consecutive_failures": 9}), None)
    assert "state/acme-ltd.yaml" in str(caught.value)
    assert "No space left on device" in str(caught.value)
    assert "unchanged" in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(store.directory)) == listing


def test_a_failed_first_write_leaves_nothing(
    store: FilesStore, grant: Grant, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fsync_fails(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync_fails)
    with pytest.raises(StateError, match="Input/output error"):
        write(store, "acme-ltd", grant, tokens)
    assert [entry for entry in os.listdir(store.directory) if entry != ".locks"] == []


def test_new_file_needs_a_creation_rule(repo: Repo, store: FilesStore, grant: Grant) -> None:
    repo.sops_config.write_text(
        "creation_rules:\n  - path_regex: ^connections/.*\\.secrets\\.yaml$\n    age: "
        + repo.sops_config.read_text().split("age: ")[1].split("\n")[0]
        + "\n"
    )
    with pytest.raises(SopsError, match="no creation rule"):
        write(store, "acme-ltd", grant)
    assert not store.path("acme-ltd").exists()


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("encrypted_regex: ^(access_token|refresh_token)$", "leave it in plaintext at tokens.id_token"),
        ("unencrypted_suffix: _unencrypted", "encrypt it at apiVersion"),
        ("encrypted_regex: ^(access_token|refresh_token|id_token|name)$", "encrypt it at tenant.name"),
    ],
)
def test_a_rule_that_would_leak_tokens_or_hide_grants_is_refused(
    repo: Repo,
    store: FilesStore,
    grant: Grant,
    tokens: Tokens,
    key: AgeKey,
    selector: str,
    expected: str,
    secret_values: tuple[str, ...],
) -> None:
    repo.sops_config.write_text(
        f"creation_rules:\n  - path_regex: state/.*\n    {selector}\n    age: {key.recipient}\n"
    )
    with pytest.raises(StateError, match="Nothing was written") as caught:
        write(store, "acme-ltd", grant, tokens)
    assert expected in str(caught.value)
    assert not store.path("acme-ltd").exists()
    for secret in secret_values:
        assert secret not in str(caught.value)


def test_write_with_no_key_changes_nothing(
    repo: Repo, store: FilesStore, grant: Grant, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(store, "acme-ltd", grant, tokens)
    before = store.path("acme-ltd").read_bytes()
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    with pytest.raises(SopsError, match="no age key"):
        write(FilesStore(repo), "acme-ltd", grant.model_copy(update={"consecutive_failures": 2}))
    assert store.path("acme-ltd").read_bytes() == before


def test_explicit_keyring_is_used(repo: Repo, key: AgeKey, grant: Grant, tokens: Tokens) -> None:
    from grantctl.sops import AgeKeyring

    store = FilesStore(repo, keyring=AgeKeyring.from_text(key.path.read_text()))
    write(store, "acme-ltd", grant, tokens)  # no key in the environment at all
    assert store.read_tokens("acme-ltd") == tokens


def test_secrets_never_in_errors_of_a_broken_tokens_mapping(
    store: FilesStore, grant: Grant, tokens: Tokens, secret_values: tuple[str, ...]
) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    path.write_text(path.read_text().replace("    id_token:", "    session_token:"))
    with pytest.raises(GrantctlError) as caught:
        store.read_grant("acme-ltd")
    assert "tokens" in str(caught.value)
    for secret in secret_values:
        assert secret not in str(caught.value)


def test_files_are_plain_files_in_state_dir(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    assert path == store.directory / "acme-ltd.yaml"
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    write(store, "acme-ltd", grant.model_copy(update={"consecutive_failures": 1}), None)
    assert path.stat().st_mode & 0o777 == 0o600  # a stricter mode chosen by the user is kept


def test_open_store_and_contract(repo: Repo) -> None:
    from grantctl.state.registry import open_store

    assert isinstance(open_store(repo), FilesStore)
    assert isinstance(open_store(repo), StateStore)


def test_postgres_backend_without_its_dsn_is_refused_clearly(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from grantctl.models import Config
    from grantctl.state.registry import open_store

    config = Config.model_validate(
        {
            "apiVersion": "grantctl/v1",
            "kind": "Config",
            "publicUrl": "http://127.0.0.1:8080",
            "state": {"backend": "postgres"},
        }
    )
    monkeypatch.delenv("GRANTCTL_POSTGRES_DSN", raising=False)
    with pytest.raises(GrantctlError, match=r"\$GRANTCTL_POSTGRES_DSN is not set"):
        open_store(Repo(root=Path(repo.root), config=config))


def test_empty_tokens_remove_the_stored_ones(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    write(store, "acme-ltd", grant, tokens)
    write(store, "acme-ltd", grant, Tokens())
    assert store.read_tokens("acme-ltd") is None
    assert "tokens:" not in store.path("acme-ltd").read_text()


def test_locked_read_modify_write_loses_no_update(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    """The pattern refresh uses, from several threads at once: every increment survives."""
    write(store, "acme-ltd", grant, tokens)

    def bump() -> None:
        for _ in range(10):
            with store.lock("acme-ltd", timeout=30):
                current = store.read_grant("acme-ltd")
                assert current is not None
                store.write(
                    "acme-ltd", current.model_copy(update={"consecutive_failures": current.consecutive_failures + 1})
                )

    threads = [threading.Thread(target=bump) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    final = store.read_grant("acme-ltd")
    assert final is not None
    assert final.consecutive_failures == 30
    assert store.read_tokens("acme-ltd") == tokens
    assert store.verify() == {"acme-ltd": None}


def test_writes_and_token_reads_run_no_process(
    store: FilesStore, grant: Grant, tokens: Tokens, make_tokens: TokensFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refresh rewrites hundreds of files: each write is in-process (about a millisecond), never a sops run."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr("subprocess.run", forbidden)
    monkeypatch.setattr("subprocess.Popen", forbidden)
    write(store, "acme-ltd", grant, tokens)
    write(store, "acme-ltd", grant, make_tokens(refresh_token="REFRESH-SECRET-next"))
    write(store, "acme-ltd", grant.model_copy(update={"consecutive_failures": 1}), None)
    assert store.read_tokens("acme-ltd") == make_tokens(refresh_token="REFRESH-SECRET-next")
    assert store.verify() == {"acme-ltd": None}


@pytest.mark.parametrize("awkward", ["<<", "=", "a\u2028b", " leading space", "on", "2026-11-28"])
def test_awkward_grant_values_survive_the_store_and_the_plan_reader(
    store: FilesStore, grant: Grant, tokens: Tokens, awkward: str
) -> None:
    assert grant.tenant is not None
    odd = grant.model_copy(update={"tenant": grant.tenant.model_copy(update={"name": awkward})})
    with store.lock(odd.connection):
        store.write(odd.connection, odd, tokens)
    assert store.read_grant(odd.connection) == odd
    assert store.read_grants() == {odd.connection: odd}
    assert store.read_tokens(odd.connection) == tokens
