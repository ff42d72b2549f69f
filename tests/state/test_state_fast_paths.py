"""What the files store saves per connection without giving up a guarantee.

The keyring is parsed once per environment, a document opened under a lock is reused only for the
very same bytes, a write is prepared apart from the disk work, the lock file is not truncated, and
the grant is read by a faster reader only where it reads exactly as libyaml.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from state_helpers import AgeKey, GrantFactory

from grantctl.errors import LockTimeout, SopsError, StateError
from grantctl.repo import Repo
from grantctl.sops import native
from grantctl.state import files, plaintext
from grantctl.state.files import FilesStore
from grantctl.state.lock import LockDirectory
from grantctl.state.model import Grant, Tokens


@pytest.fixture
def store(repo: Repo, with_key: AgeKey) -> FilesStore:
    return FilesStore(repo)


def _write(store: FilesStore, name: str, grant: Grant, tokens: Tokens | None = None) -> None:
    with store.lock(name, timeout=5):
        store.write(name, grant, tokens)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts how often a state document is decrypted (and its MAC checked)."""
    calls: list[str] = []
    real = native.open_document

    def counting(document: native.SopsDocument, keyring: Any) -> native.OpenDocument:
        calls.append(document.path.name)
        return real(document, keyring)

    monkeypatch.setattr(native, "open_document", counting)
    return calls


def test_the_keyring_is_read_once_but_follows_the_environment(
    store: FilesStore, grant: Grant, tokens: Tokens, other_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(store, "acme-ltd", grant, tokens)
    first = store._current_keyring()
    assert store._current_keyring() is first
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(other_key.path))
    with pytest.raises(SopsError, match="cannot decrypt"):
        store.read_tokens("acme-ltd")  # the same store sees the new variable


def test_a_rewritten_key_file_is_noticed(
    store: FilesStore, grant: Grant, tokens: Tokens, with_key: AgeKey, other_key: AgeKey
) -> None:
    _write(store, "acme-ltd", grant, tokens)
    assert store.read_tokens("acme-ltd") == tokens
    with_key.path.write_text(other_key.path.read_text() + "\n")  # same path, other key
    with pytest.raises(SopsError, match="cannot decrypt"):
        store.read_tokens("acme-ltd")


def test_read_then_write_under_one_lock_opens_the_document_once(
    store: FilesStore, grant: Grant, tokens: Tokens, opened: list[str]
) -> None:
    _write(store, "acme-ltd", grant, tokens)
    opened.clear()
    with store.lock("acme-ltd"):
        assert store.read_tokens("acme-ltd") == tokens
        store.write("acme-ltd", grant.model_copy(update={"consecutive_failures": 1}), tokens)
        assert store.read_tokens("acme-ltd") == tokens  # the file changed: opened again
    assert opened == ["acme-ltd.yaml", "acme-ltd.yaml"]
    with store.lock("acme-ltd"):
        store.read_tokens("acme-ltd")  # a new lock: nothing carried over from the last one
    assert len(opened) == 3


def test_a_file_changed_under_the_lock_is_opened_again_and_a_tampered_one_is_not_signed(
    store: FilesStore, grant: Grant, tokens: Tokens, opened: list[str]
) -> None:
    _write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    with store.lock("acme-ltd"):
        store.read_tokens("acme-ltd")
        # someone edits the file by hand meanwhile (no lock, no key): the MAC no longer matches
        path.write_text(path.read_text().replace("Acme Ltd", "Evil Ltd"))
        tampered = path.read_bytes()
        with pytest.raises(SopsError, match="MAC mismatch"):
            store.write("acme-ltd", grant.model_copy(update={"consecutive_failures": 1}))
    assert path.read_bytes() == tampered  # never re-signed with our key


def test_prepare_write_touches_no_file_until_its_commit_runs(store: FilesStore, grant: Grant, tokens: Tokens) -> None:
    _write(store, "acme-ltd", grant, tokens)
    path = store.path("acme-ltd")
    before = path.read_bytes()
    changed = grant.model_copy(update={"consecutive_failures": 3})
    with store.lock("acme-ltd"):
        commit = store.prepare_write("acme-ltd", changed, None)
        assert path.read_bytes() == before
        assert sorted(p.name for p in path.parent.iterdir()) == [".locks", "acme-ltd.yaml"]
        commit()
        unchanged = store.prepare_write("acme-ltd", changed, None)
    assert store.read_grant("acme-ltd") == changed
    after = path.read_bytes()
    with store.lock("acme-ltd"):
        unchanged()  # nothing to write: not even a new lastmodified
    assert path.read_bytes() == after
    with pytest.raises(StateError, match="without holding"):
        commit()  # a commit outside the lock is refused like a write


def test_the_lock_file_records_the_holder_without_truncating(tmp_path: Path) -> None:
    locks = LockDirectory(tmp_path / "locks")
    (tmp_path / "locks").mkdir()
    locks.path("acme-ltd").write_text("99999999999999999999\n")  # longer than any pid
    with locks.hold("acme-ltd", timeout=1):
        assert locks.path("acme-ltd").read_text().split("\n")[0].strip() == str(os.getpid())
        other = LockDirectory(tmp_path / "locks")
        with pytest.raises(LockTimeout, match=f"pid {os.getpid()}"), other.hold("acme-ltd", timeout=0):
            pass


def test_the_lock_directory_is_made_when_missing(tmp_path: Path) -> None:
    locks = LockDirectory(tmp_path / "state" / ".locks")
    with locks.hold("acme-ltd", timeout=1):
        assert locks.path("acme-ltd").exists()


def test_state_files_are_read_as_text_mode_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    for data in (b"a: 1\r\nb: 2\r\n", b"a: 1\rb: 2\n", b"plain\n", b"", "Caf\u00e9\n".encode()):
        path.write_bytes(data)
        assert files._read_text(path) == path.read_text(encoding="utf-8")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(UnicodeDecodeError):
        files._read_text(path)


def test_the_grant_reads_the_same_through_the_fast_reader(
    store: FilesStore, make_grant: GrantFactory, tokens: Tokens
) -> None:
    grants = [
        make_grant("acme-ltd"),
        make_grant("yes", tenant={"id": "0123", "name": "On", "type": "ORGANISATION"}),
        make_grant("cafe", tenant={"id": "t-1", "name": "Caf\u00e9 # 1", "type": "ORGANISATION"}),
    ]
    for grant in grants:
        _write(store, grant.connection, grant, tokens)
        data = store.path(grant.connection).read_bytes()
        assert store.read_grant(grant.connection) == grant
        assert plaintext.read_grant(store.path(grant.connection), data) == grant  # the reference reader
    cut = plaintext._SOPS_BLOCK.sub(b"", store.path("acme-ltd").read_bytes())
    assert files._parse_plaintext(cut) is not None  # the plain one does take the fast path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("NULL", None),
        ("~", None),
        ("42", 42),
        ("-7", -7),
        ("xero", "xero"),
        ("10000000-0000-4000-8000-000000000001", "10000000-0000-4000-8000-000000000001"),
        ("2026-11-20", "2026-11-20"),  # load_fast keeps dates as text
        ("1e3", "1e3"),  # a YAML 1.1 float needs a dot (go-yaml says 1000.0)
    ],
)
def test_plain_scalars_the_fast_reader_may_type(text: str, expected: object) -> None:
    value = plaintext.resolve_plain_scalar(text)
    assert type(value) is type(expected)
    assert value == expected


@pytest.mark.parametrize("text", ["yes", "Off", "012", "0x1F", "1.5", "1_000", "12:30", ".inf", "<<"])
def test_plain_scalars_yaml_11_types_are_left_to_libyaml(text: str) -> None:
    with pytest.raises(ValueError, match=r"YAML 1\.1 resolver"):
        plaintext.resolve_plain_scalar(text)
