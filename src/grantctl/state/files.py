"""State as SOPS files in the repo: ``state/<name>.yaml``.

A state document is the plaintext grant (:meth:`Grant.to_document`), a ``tokens:`` mapping whose
values SOPS encrypts (``encrypted_regex: ^(access_token|refresh_token|id_token)$`` in the creation
rule), and the ``sops:`` metadata. The MAC covers every value, plaintext ones included, so a hand
edit of a grant field is detectable wherever the age key is present. The files stay readable and
writable with the plain ``sops`` binary.

    store = FilesStore(repo)
    store.read_grants()                      # no key: libyaml, no sops process, no decryption
    with store.lock("acme-ltd"):
        tokens = store.read_tokens("acme-ltd")
        store.write("acme-ltd", grant, new_tokens)

Writes update a document in place with its existing data key and re-encrypt only the values that
changed, so a git diff shows only the changed lines.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grantctl.errors import SopsError, StateError
from grantctl.fileio import atomic_write_bytes
from grantctl.models import NAME_PATTERN
from grantctl.repo import Repo
from grantctl.sops import AgeKeyring, CreationRules, Selectors, SopsUnsupported, _yamlfast, binary, native
from grantctl.sops.keys import environment_fingerprint
from grantctl.state import plaintext
from grantctl.state.base import DEFAULT_LOCK_TIMEOUT, StateStore
from grantctl.state.lock import LOCKS_DIR, LockDirectory
from grantctl.state.model import TOKEN_FIELDS, Grant, Tokens
from grantctl.state.plaintext import TOKENS_KEY

STATE_SUFFIX = ".yaml"
_NAME = re.compile(NAME_PATTERN)
STATE_ENCRYPTED_REGEX = "^(access_token|refresh_token|id_token)$"


class FilesStore(StateStore):
    """State documents as SOPS-encrypted YAML files under ``repo.state_dir``."""

    # local files and flock: see StateStore
    cheap_reads = True
    fork_safe = True

    def __init__(self, repo: Repo, *, keyring: AgeKeyring | None = None) -> None:
        self.repo = repo
        self.directory = repo.state_dir
        self._keyring = keyring
        self._locks = LockDirectory(self.directory / LOCKS_DIR)
        self._held: set[str] = set()
        # The keyring found in the environment, and what it was found from (see _current_keyring).
        self._found_keyring: tuple[tuple[object, ...], AgeKeyring] | None = None
        # Documents opened (decrypted, MAC verified) while their lock is held: a refresh reads the
        # tokens and then writes the same document, which need not be parsed and decrypted twice.
        self._opened: dict[str, native.OpenDocument] = {}
        # Messages name files relative to the repo; resolving a path costs an lstat per component,
        # so the state directory is resolved once (see _shown).
        self._shown_directory = repo.relative(self.directory)

    # -- reading without a key ------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """The file of connection ``name`` (the name is checked: it becomes part of a path)."""
        if not _NAME.fullmatch(name):
            raise StateError(
                f"{name!r} is not a connection name (lowercase letters, digits and dashes); "
                "state files are named after their connection"
            )
        return self.directory / f"{name}{STATE_SUFFIX}"

    def names(self) -> list[str]:
        """Connections with a state file, sorted; temp files and anything not named like one are skipped."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        found = (entry.name.removesuffix(STATE_SUFFIX) for entry in entries if entry.name.endswith(STATE_SUFFIX))
        return sorted(name for name in found if _NAME.fullmatch(name))

    def read_grant(self, name: str) -> Grant | None:
        """The plaintext grant of ``name``, or None when it has no state file. Needs no key."""
        path = self.path(name)
        text = self._read_if_exists(path)
        return None if text is None else self._grant_from_text(path, text)

    def read_grants(self) -> dict[str, Grant]:
        """Every grant by name, with no key and no sops process (what ``plan`` runs on every file)."""
        return plaintext.read_grants([self.path(name) for name in self.names()], shown=self._shown)

    def _grant_from_text(self, path: Path, text: str) -> Grant:
        return plaintext.read_grant(path, text.encode("utf-8"), shown=self._shown, parse=_parse_plaintext)

    # -- integrity --------------------------------------------------------------------------------

    def verify(self) -> dict[str, str | None]:
        """Per connection None when its MAC checks out, else the problem (also when it could not be checked)."""
        return {name: check.problem for name, check in self.integrity().items()}

    def integrity(self) -> dict[str, Integrity]:
        """Per connection, sorted: ok, tampered, unverifiable (no key here) or invalid, and why."""
        keyring = self._current_keyring()
        return {name: self.check(name, keyring=keyring) for name in self.names()}

    def check(self, name: str, *, keyring: AgeKeyring | None = None) -> Integrity:
        """Check one state file: its MAC (where a key is at hand) and that it is a valid state document."""
        keyring = self._current_keyring() if keyring is None else keyring
        path = self.path(name)
        try:
            text = self._read_if_exists(path)
        except StateError as exc:
            return Integrity("invalid", str(exc))
        if text is None:
            return Integrity("invalid", f"{self._shown(path)}: the file disappeared while it was being checked")
        mac = self._check_mac(path, text, keyring)
        if mac.status in ("tampered", "invalid"):
            return mac
        try:
            self._grant_from_text(path, text)
        except StateError as exc:
            return Integrity("invalid", str(exc))
        return mac

    def _check_mac(self, path: Path, text: str, keyring: AgeKeyring) -> Integrity:
        try:
            document = self._sops_document(path, text)
        except SopsUnsupported:
            return _check_with_binary(path)
        except SopsError as exc:
            return Integrity("invalid", str(exc))  # not encrypted at all, or damaged metadata
        if not keyring.can_decrypt_for(document.recipients):
            if keyring.not_supported:
                return _check_with_binary(path)  # SOPS_AGE_KEY_CMD / SSH keys: only sops uses them
            return Integrity("unverifiable", f"{self._shown(path)}: {_no_key(keyring, document.recipients)}")
        try:
            native.open_document(document, keyring)
        except SopsUnsupported:
            return _check_with_binary(path)
        except SopsError as exc:
            return Integrity("tampered", str(exc))
        return Integrity("ok")

    # -- locking ----------------------------------------------------------------------------------

    @contextmanager
    def lock(self, name: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
        """Hold ``name``'s lock (across processes and threads) for the ``with`` block."""
        self.path(name)  # reject bad names before they reach the lock directory
        with self._locks.hold(name, timeout):
            self._held.add(name)
            try:
                yield
            finally:
                self._held.discard(name)
                self._opened.pop(name, None)

    def _require_lock(self, name: str) -> None:
        if name not in self._held:
            raise StateError(f"{name}: write without holding the connection's lock (a bug in grantctl)")

    # -- reading and writing with the key ----------------------------------------------------------

    def read_tokens(self, name: str) -> Tokens | None:
        """The decrypted tokens of ``name`` (MAC verified), or None when it has no state or no tokens."""
        path = self.path(name)
        text = self._read_if_exists(path)
        if text is None:
            return None
        keyring = self._current_keyring()
        if not keyring and keyring.not_supported:
            tree = binary.decrypt_file(path)  # SOPS_AGE_KEY_CMD or SSH keys: only sops itself uses them
        else:
            try:
                tree = self._open(name, path, text, keyring).tree
            except SopsUnsupported:
                tree = binary.decrypt_file(path)
        return _tokens_from_tree(tree, self._shown(path))

    def write(self, name: str, grant: Grant, tokens: Tokens | None = None) -> None:
        """Replace ``name``'s document atomically; ``tokens=None`` keeps the stored tokens untouched.

        ``Tokens()`` (no values) removes the stored tokens, e.g. after a revocation.

        The caller holds ``name``'s lock. An existing document keeps its data key and the exact
        ciphertext of every unchanged value; a new one is encrypted per ``.sops.yaml``. Needs the
        key either way: the MAC covers the plaintext grant, and the tokens are part of it.
        """
        self.prepare_write(name, grant, tokens)()

    def prepare_write(self, name: str, grant: Grant, tokens: Tokens | None = None) -> Callable[[], None]:
        """The new document, encrypted as :meth:`write` does; the returned function writes it.

        Only that function touches the disk (temp file, fsync, rename, fsync of the directory), so
        an event loop can run this part itself and hand the function to a thread.
        """
        self._require_lock(name)
        path = self.path(name)
        if grant.connection != name:
            raise StateError(
                f"{name}: refusing to write the grant of connection {grant.connection!r} into it (a bug in grantctl)"
            )
        old_text = self._read_if_exists(path)
        if old_text is None:
            new_text = self._encrypt_new(path, grant, tokens)
        else:
            new_text = self._reencrypt(name, path, old_text, grant, tokens)
            if new_text == old_text:
                return _nothing_to_write  # nothing changed: no write, no new lastmodified, no git diff
        return functools.partial(self._commit, name, path, new_text)

    def _commit(self, name: str, path: Path, text: str) -> None:
        self._require_lock(name)
        self._opened.pop(name, None)  # whatever happens next, the opened document is not the file
        try:
            atomic_write_bytes(path, text.encode("utf-8"), mode=_mode_of(path))
        except OSError as exc:
            raise StateError(
                f"{self._shown(path)}: could not write the state file ({_reason(exc)}); "
                "the previous version is unchanged"
            ) from None

    def _encrypt_new(self, path: Path, grant: Grant, tokens: Tokens | None) -> str:
        tree = _tree(grant, tokens.to_document() if tokens is not None else None)
        rules = CreationRules.load(self.repo.sops_config)
        rule = rules.rule_for(path.absolute())
        shown = self._shown(path)
        _check_selectors(rule.selectors, tree, shown, f"creation rule {rule.number} in {rules.path.name}")
        return native.encrypt(tree, rule, indent=rules.indent, path=shown)

    def _reencrypt(self, name: str, path: Path, old_text: str, grant: Grant, tokens: Tokens | None) -> str:
        # Opening verifies the MAC: a tampered file is never re-signed with our key.
        opened = self._open(name, path, old_text)
        stored = opened.tree.get(TOKENS_KEY)
        tree = _tree(grant, tokens.to_document() if tokens is not None else stored)
        shown = self._shown(path)
        _check_selectors(opened.document.metadata.selectors, tree, shown, "its sops metadata")
        return opened.reencrypt(tree)

    def _open(self, name: str, path: Path, text: str, keyring: AgeKeyring | None = None) -> native.OpenDocument:
        """``text`` (the file just read) decrypted and MAC-verified; reused while ``name``'s lock is held.

        The file is read again at every use and the document reused only for the very same text,
        so an edit made meanwhile without the lock (e.g. with ``sops``) is opened, and checked, anew.
        """
        opened = self._opened.get(name)
        if opened is not None and opened.document.text == text and name in self._held:
            return opened
        keyring = self._current_keyring() if keyring is None else keyring
        opened = native.open_document(self._sops_document(path, text), keyring)
        if name in self._held:
            self._opened[name] = opened
        return opened

    def delete(self, name: str) -> None:
        """Remove ``name``'s state file (the caller holds the lock); no file is not an error."""
        self._require_lock(name)
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"{self._shown(path)}: cannot delete the state file ({_reason(exc)})") from None
        _fsync_directory(self.directory)

    # -- helpers ----------------------------------------------------------------------------------

    def _current_keyring(self) -> AgeKeyring:
        # Found in the environment as sops does, unless the caller gave one. Parsed again only when
        # the environment or a key file changed: parsing it costs more than opening a state file.
        if self._keyring is not None:
            return self._keyring
        fingerprint = environment_fingerprint()
        found = self._found_keyring
        if found is None or found[0] != fingerprint:
            found = self._found_keyring = (fingerprint, AgeKeyring.from_environment())
        return found[1]

    def _sops_document(self, path: Path, text: str) -> native.SopsDocument:
        return native.loads(text, path=self._shown(path))

    def _read_if_exists(self, path: Path) -> str | None:
        try:
            return _read_text(path)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"{self._shown(path)}: cannot read the state file ({_reason(exc)})") from None

    def _shown(self, path: Path) -> Path:
        if path.parent == self.directory:
            return self._shown_directory / path.name
        return self.repo.relative(path)


IntegrityStatus = Literal["ok", "tampered", "unverifiable", "invalid"]


@dataclass(frozen=True)
class Integrity:
    """The verdict on one state file. ``detail`` names the file and says what to do; never a secret."""

    status: IntegrityStatus
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def problem(self) -> str | None:
        """None when ok, else one line for :meth:`StateStore.verify`."""
        if self.ok:
            return None
        label = "could not be checked" if self.status == "unverifiable" else self.status
        return f"{label}: {self.detail}"


def _read_text(path: Path) -> str:
    """``path.read_text(encoding="utf-8")`` in four system calls rather than seven.

    A refresh reads each state file three times under its lock (to decide, to decrypt, to write);
    no buffered file object is needed for a file read whole. Line endings are translated as text
    mode does.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) != size:  # it grew or shrank since fstat, or a short read: read on to the end
            parts = [data]
            while chunk := os.read(fd, 65536):
                parts.append(chunk)
            data = b"".join(parts)
    finally:
        os.close(fd)
    text = data.decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _parse_plaintext(cut: bytes) -> Any:
    """The fast reader for sops' layout, typing scalars as plaintext's libyaml does; None to decline."""
    try:
        text = cut.decode("utf-8")
    except UnicodeDecodeError:
        return None  # libyaml reports it
    return _yamlfast.load(text, resolve=plaintext.resolve_plain_scalar)


def _nothing_to_write() -> None:
    """What :meth:`FilesStore.prepare_write` returns when the document would not change."""


def _check_with_binary(path: Path) -> Integrity:
    """The verdict of ``sops decrypt`` for what the native code does not handle."""
    try:
        binary.decrypt_file(path)
    except SopsError as exc:
        message = str(exc)
        tampered = "MAC mismatch" in message or "tampered" in message
        return Integrity("tampered" if tampered else "unverifiable", message)
    return Integrity("ok")


def _no_key(keyring: AgeKeyring, recipients: tuple[str, ...]) -> str:
    if not keyring:
        return f"MAC not checked: {keyring.no_key_message()}"
    return (
        f"MAC not checked: none of your age keys ({', '.join(keyring.recipients)}) is a recipient "
        f"of this file ({', '.join(recipients) or 'no age recipient'}); use one of those keys"
    )


_RESTORE = "State files are written by grantctl only: restore it from git (`git checkout -- <file>`)"


def _tree(grant: Grant, tokens: Mapping[str, Any] | None) -> dict[str, Any]:
    """The plaintext document: grant fields, then the tokens (omitted when there are none)."""
    tree = grant.to_document()
    if tokens:
        tree[TOKENS_KEY] = dict(tokens)
    return tree


def _check_selectors(selectors: Selectors, tree: Mapping[str, Any], shown: Path, source: str) -> None:
    """Tokens must be encrypted and grant fields must not be, or the file breaks its promises.

    A token in plaintext would be committed to git; an encrypted grant field would blind ``plan``
    and ``audit``, which read grants without a key.
    """
    for key_path in _leaf_paths(tree):
        should = key_path[0] == TOKENS_KEY
        if selectors.should_encrypt(key_path) != should:
            state = "leave it in plaintext" if should else "encrypt it"
            raise StateError(
                f"{shown}: {source} would {state} at {'.'.join(key_path)}; state files need "
                f"`encrypted_regex: {STATE_ENCRYPTED_REGEX}` in their .sops.yaml creation rule. "
                "Nothing was written"
            )


def _leaf_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaf_paths(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _leaf_paths(item, path)
    elif value is not None:
        yield path


def _tokens_from_tree(tree: Mapping[str, Any], shown: Path) -> Tokens | None:
    stored = tree.get(TOKENS_KEY)
    if stored is None:
        return None
    if (
        not isinstance(stored, dict)
        or set(stored) - set(TOKEN_FIELDS)
        or not all(isinstance(value, str) for value in stored.values())
    ):
        raise StateError(f"{shown}: `tokens` must map {', '.join(TOKEN_FIELDS)} to strings. {_RESTORE}")
    return Tokens(**stored) if stored else None


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644


def _fsync_directory(directory: Path) -> None:
    """Make an unlink durable, like the rename of a write."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
