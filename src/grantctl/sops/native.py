"""The sops YAML file format for age recipients, in-process: no ``sops`` process per file.

Files written here are what ``sops`` 3.11 writes (``sops -d`` reads them; ``sops -e`` output is
read here), so both tools can work on the same repository. A state file round-trip (decrypt,
change a field, re-encrypt with the same data key) costs well under 2 ms instead of ~40 ms of
CPU for one sops process.

Example::

    keyring = AgeKeyring.from_environment()
    doc = load("state/acme-ltd.yaml")
    doc.plaintext()                          # grant fields, no key needed; encrypted values -> None
    opened = open_document(doc, keyring)     # checks the MAC
    tree = opened.tree                       # everything decrypted
    tree["tokens"]["refresh_token"] = "new"
    text = opened.reencrypt(tree)            # only the changed value gets a new ciphertext

    text = encrypt({"client_id": "...", "client_secret": "..."}, rules.rule_for(path))

What this module refuses (:class:`~grantctl.sops.SopsUnsupported`), the binary handles: comments
(sops encrypts them), several YAML documents, Shamir key groups, comment-based selectors.
"""

from __future__ import annotations

import collections
import hmac
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyrage import x25519

from grantctl.errors import SopsError
from grantctl.fileio import atomic_write_text
from grantctl.sops import _goyaml, _yamlfast
from grantctl.sops._errors import SopsUnsupported
from grantctl.sops._format import (
    CipherError,
    MacHasher,
    Selectors,
    additional_data,
    decrypt_value,
    encrypt_value,
    is_enc,
    type_and_bytes,
)
from grantctl.sops.keys import AgeKeyring, AgeStanza
from grantctl.sops.rules import DEFAULT_INDENT, CreationRule, CreationRules

FORMAT_VERSION = "3.11.0"
# go-yaml writes no newline after a literal string that ends with U+2028 / U+2029 (a line break
# for YAML 1.1), so the next key, `sops:` too, may follow one directly
_INDENT = re.compile("(?:^|[\u2028\u2029])sops:\n( +)\\S", re.MULTILINE)
_SELECTOR_KEYS = ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex")
_COMMENT_SELECTOR_KEYS = ("unencrypted_comment_regex", "encrypted_comment_regex")

Tree = dict[str, Any]


# -- the document, as found on disk -------------------------------------------------------------------


@dataclass(frozen=True)
class SopsMetadata:
    """The ``sops:`` block. ``raw`` is kept as read so a rewrite changes only lastmodified and mac."""

    age: tuple[AgeStanza, ...]
    lastmodified: str
    mac: str
    version: str
    selectors: Selectors
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def recipients(self) -> tuple[str, ...]:
        """The age recipients the data key is encrypted to."""
        return tuple(stanza.recipient for stanza in self.age)


@dataclass(frozen=True, repr=False)
class SopsDocument:
    """A sops YAML file as read, without decrypting anything (no key needed).

    ``tree`` is the data part (``ENC[...]`` values as they are in the file), ``text`` the file.
    """

    path: Path
    text: str
    tree: Tree
    metadata: SopsMetadata
    has_comments: bool

    def __repr__(self) -> str:
        return f"SopsDocument({str(self.path)!r}, recipients={list(self.recipients)!r})"

    @property
    def recipients(self) -> tuple[str, ...]:
        """The age recipients of this file (read from metadata, no key needed)."""
        return self.metadata.recipients

    @property
    def indent(self) -> int:
        """The indentation this file was written with (sops' ``stores.yaml.indent``)."""
        text = self.text
        start = text.find("\nsops:\n")
        if start < 0 or text.startswith("sops:") or "\u2028" in text or "\u2029" in text:
            start = 0  # the pattern may match before that point: search it all
        match = _INDENT.search(text, start)  # from the first candidate: the same match, found sooner
        return len(match.group(1)) if match else DEFAULT_INDENT

    def plaintext(self) -> Tree:
        """The data with every encrypted value replaced by None: what plan and audit may read."""
        return _walk_tree(self.tree, lambda value, _path: None if is_enc(value) else value, self.path)

    def encrypted_paths(self) -> list[tuple[str, ...]]:
        """Key paths whose value is encrypted in the file (list items share their list's path)."""
        found: list[tuple[str, ...]] = []

        def note(value: Any, path: tuple[str, ...]) -> Any:
            if is_enc(value):
                found.append(path)
            return value

        _walk(self.tree, note)
        return found


def load(path: Path | str) -> SopsDocument:
    """Read the sops file at ``path`` (no key needed). SopsError when missing, invalid or plaintext."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SopsError(path, "file not found; check the path (or create it with `sops encrypt`)") from None
    except IsADirectoryError:
        raise SopsError(path, "is a directory, not a sops file") from None
    except UnicodeDecodeError:
        raise SopsError(path, "is not UTF-8 text, so not a sops YAML file") from None
    return loads(text, path=path)


def loads(text: str, *, path: Path | str = "<string>") -> SopsDocument:
    """Parse the text of a sops YAML file (see :func:`load`)."""
    path = Path(path)
    try:
        # sops' own layout is read by the fast reader; anything else (or nothing it can vouch for)
        # by the full one, which alone decides what is refused and how it is reported
        document = _yamlfast.load(text)
        if document is None:
            document = _goyaml.load(text)
    except _goyaml.YamlUnsupported as error:
        raise SopsUnsupported(path, f"not supported natively: {error}; use the sops binary") from None
    except _goyaml.YamlInvalid as error:
        raise SopsError(path, f"{error}: fix the YAML syntax (or restore the file from git)") from None
    if not isinstance(document, dict):
        raise SopsError(path, "expected a YAML mapping at the top level")
    raw_metadata = document.pop("sops", None)
    if not isinstance(raw_metadata, dict) or not raw_metadata.get("mac"):
        raise SopsError(
            path,
            "is not encrypted (no sops metadata with a MAC): plaintext where ciphertext belongs. "
            f"Encrypt it with `sops encrypt --in-place {path.name}`, and rotate any secret it held "
            "if it was ever committed",
        )
    metadata = _parse_metadata(raw_metadata, path)
    return SopsDocument(path, text, document, metadata, _goyaml.has_comments(text))


def _parse_metadata(raw: dict[str, Any], path: Path) -> SopsMetadata:
    groups = raw.get("key_groups")
    if groups:
        if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], dict):
            raise SopsUnsupported(path, "uses several key groups (Shamir); use the sops binary")
        entries = groups[0].get("age") or []
    else:
        entries = raw.get("age") or []
    if not isinstance(entries, list):
        raise SopsError(path, "damaged sops metadata: `age` must be a list; restore the file from git")
    stanzas = tuple(_stanza(entry, path) for entry in entries)
    if any(raw.get(name) for name in _COMMENT_SELECTOR_KEYS):
        raise SopsUnsupported(path, "selects encrypted values by comment; use the sops binary")
    selectors = Selectors(
        **{name: _text(raw.get(name), name, path) for name in _SELECTOR_KEYS},
        mac_only_encrypted=_flag(raw.get("mac_only_encrypted"), path),
    )
    try:
        selectors.check()
    except _goyaml.YamlUnsupported as error:
        raise SopsUnsupported(path, f"{error}; use the sops binary") from None
    lastmodified = raw.get("lastmodified")
    if isinstance(lastmodified, datetime):
        lastmodified = _goyaml.format_timestamp(lastmodified.replace(microsecond=0))
    return SopsMetadata(
        age=stanzas,
        lastmodified=_text(lastmodified, "lastmodified", path),
        mac=_text(raw.get("mac"), "mac", path),
        version=str(raw.get("version") or ""),
        selectors=selectors,
        raw=raw,
    )


def _stanza(entry: Any, path: Path) -> AgeStanza:
    if not isinstance(entry, dict) or not isinstance(entry.get("recipient"), str):
        raise SopsError(path, "damaged sops metadata: an age entry has no recipient; restore it from git")
    enc = entry.get("enc")
    if not isinstance(enc, str):
        raise SopsError(path, "damaged sops metadata: an age entry has no `enc`; restore it from git")
    return AgeStanza(entry["recipient"].strip(), enc)


def _text(value: Any, name: str, path: Path) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SopsError(path, f"damaged sops metadata: `{name}` must be a string; restore it from git")
    return value


def _flag(value: Any, path: Path) -> bool:
    if value is None or value is False or value == "":
        return False
    if value is True:
        return True
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "t", "f"):
        return value.lower() in ("true", "1", "t")
    raise SopsError(path, "damaged sops metadata: `mac_only_encrypted` must be true or false")


# -- decrypting ---------------------------------------------------------------------------------------


@dataclass(repr=False)
class OpenDocument:
    """A document decrypted with its data key: ``tree`` holds the plaintext. Never logged or shown.

    :meth:`reencrypt` writes a new version with the same data key, reusing the exact ciphertext of
    every value that did not change (what ``sops set`` does), so a git diff shows only real changes.
    """

    document: SopsDocument
    tree: Tree
    _key: bytes
    _reusable: dict[tuple[bytes, str, bytes], collections.deque[str]]
    # taken when decrypting: ``tree`` is the caller's to change in place
    _original: Any = None

    def __post_init__(self) -> None:
        self._original = _canonical(self.tree, self.document.path)

    def __repr__(self) -> str:
        return f"OpenDocument({str(self.document.path)!r})"

    def reencrypt(self, new_tree: Mapping[str, Any], *, now: datetime | None = None) -> str:
        """The file text for ``new_tree``; the original text when nothing changed."""
        path = self.document.path
        if _canonical(new_tree, path) == self._original:
            return self.document.text
        if self.document.has_comments:
            raise SopsUnsupported(
                path,
                "has YAML comments, which grantctl cannot keep when rewriting it; remove them "
                "(or edit the file with `sops`)",
            )
        metadata = self.document.metadata
        reusable = {key: collections.deque(values) for key, values in self._reusable.items()}
        data, mac = _encrypt_tree(new_tree, self._key, metadata.selectors, reusable, path)
        lastmodified = _lastmodified(now)
        sops = dict(metadata.raw)
        sops["lastmodified"] = lastmodified
        sops["mac"] = encrypt_value(mac, AESGCM(self._key), lastmodified.encode())
        return _dump(data, sops, self.document.indent, path)


def open_document(document: SopsDocument, keyring: AgeKeyring) -> OpenDocument:
    """Decrypt ``document`` and verify its MAC; SopsError (no key, wrong key, tampered) otherwise."""
    path = document.path
    metadata = document.metadata
    key = keyring.unwrap(metadata.age, path)
    cipher = AESGCM(key)
    mac = MacHasher(metadata.selectors)
    reusable: dict[tuple[bytes, str, bytes], collections.deque[str]] = {}

    def decrypt_leaf(value: Any, key_path: tuple[str, ...]) -> Any:
        encrypted = metadata.selectors.should_encrypt(key_path)
        if not encrypted:
            mac.add(_leaf_bytes(value, key_path, path)[1], encrypted=False)
            return value
        if not isinstance(value, str) or (value and not is_enc(value)):
            raise SopsError(
                path,
                f"the value at {'.'.join(key_path)} should be encrypted but is plaintext: re-encrypt "
                "the file with sops (and rotate that secret if it was committed)",
            )
        aad = additional_data(key_path)
        try:
            plain = decrypt_value(value, cipher, aad)
        except CipherError as error:
            raise SopsError(
                path, f"cannot decrypt the value at {'.'.join(key_path)}: {error}; restore it from git"
            ) from None
        type_name, plain_bytes = _leaf_bytes(plain, key_path, path)
        mac.add(plain_bytes, encrypted=True)
        if value:
            reusable.setdefault((aad, type_name, plain_bytes), collections.deque()).append(value)
        return plain

    tree = _walk_tree(document.tree, decrypt_leaf, path)
    _verify_mac(document, cipher, mac.hexdigest())
    return OpenDocument(document, tree, key, reusable)


def _verify_mac(document: SopsDocument, cipher: AESGCM, computed: str) -> None:
    metadata = document.metadata
    try:
        stored = decrypt_value(metadata.mac, cipher, _mac_aad(metadata.lastmodified))
    except CipherError:
        stored = None
    if not isinstance(stored, str) or not hmac.compare_digest(stored.upper(), computed):
        raise SopsError(
            document.path,
            "MAC mismatch: the file was changed without its key (tampered, or hand-edited); "
            "restore it from git or re-encrypt it with sops",
        )


def _mac_aad(lastmodified: str) -> bytes:
    # sops parses lastmodified and formats it back as RFC 3339 (whole seconds) for the MAC's AAD.
    stamp = _goyaml.parse_timestamp(lastmodified)
    if stamp is None:
        return lastmodified.encode()
    return _goyaml.format_timestamp(stamp.replace(microsecond=0)).encode()


def decrypt(document: SopsDocument, keyring: AgeKeyring) -> Tree:
    """The decrypted data of ``document`` (MAC verified). See :func:`open_document`."""
    return open_document(document, keyring).tree


def reencrypt(
    document: SopsDocument, keyring: AgeKeyring, new_tree: Mapping[str, Any], *, now: datetime | None = None
) -> str:
    """``new_tree`` encrypted with ``document``'s data key and metadata (see OpenDocument.reencrypt)."""
    return open_document(document, keyring).reencrypt(new_tree, now=now)


# -- encrypting ---------------------------------------------------------------------------------------


def encrypt(
    tree: Mapping[str, Any],
    rule: CreationRule,
    *,
    now: datetime | None = None,
    indent: int = DEFAULT_INDENT,
    path: Path | str = "<new document>",
) -> str:
    """A new sops document for ``tree``: a fresh data key age-encrypted to the rule's recipients."""
    if rule.native_blocker is not None:
        raise SopsUnsupported(path, f"creation rule {rule.number}: {rule.native_blocker}; use the sops binary")
    if "sops" in tree:
        raise SopsError(path, "a top-level key named `sops` is reserved for sops' metadata")
    key = os.urandom(32)
    stanzas = [{"recipient": recipient, "enc": _age_encrypt(key, recipient)} for recipient in rule.age]
    data, mac = _encrypt_tree(tree, key, rule.selectors, {}, Path(path))
    lastmodified = _lastmodified(now)
    sops: dict[str, Any] = {
        "age": stanzas,
        "lastmodified": lastmodified,
        "mac": encrypt_value(mac, AESGCM(key), lastmodified.encode()),
        **rule.selectors.metadata(),
        "version": FORMAT_VERSION,
    }
    return _dump(data, sops, indent, Path(path))


def _age_encrypt(data_key: bytes, recipient: str) -> str:
    armored = pyrage.encrypt(data_key, [x25519.Recipient.from_str(recipient)], armored=True)
    return bytes(armored).decode("ascii")


def _encrypt_tree(
    tree: Mapping[str, Any],
    key: bytes,
    selectors: Selectors,
    reusable: dict[tuple[bytes, str, bytes], collections.deque[str]],
    path: Path,
) -> tuple[Tree, str]:
    cipher = AESGCM(key)
    mac = MacHasher(selectors)

    def encrypt_leaf(value: Any, key_path: tuple[str, ...]) -> Any:
        encrypted = selectors.should_encrypt(key_path)
        type_name, plain_bytes = _leaf_bytes(value, key_path, path)
        mac.add(plain_bytes, encrypted=encrypted)
        if not encrypted or value == "":
            return value
        aad = additional_data(key_path)
        previous = reusable.get((aad, type_name, plain_bytes))
        if previous:
            return previous.popleft()
        return encrypt_value(value, cipher, aad)

    data = _walk_tree(tree, encrypt_leaf, path)
    return data, mac.hexdigest()


def _lastmodified(now: datetime | None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(data: Tree, sops: dict[str, Any], indent: int, path: Path) -> str:
    try:
        return _goyaml.dump({**data, "sops": sops}, indent=indent)
    except _goyaml.YamlUnsupported as error:
        raise SopsUnsupported(path, f"cannot be written natively: {error}") from None


# -- files --------------------------------------------------------------------------------------------


def decrypt_file(path: Path | str, keyring: AgeKeyring | None = None) -> Tree:
    """Load and decrypt the sops file at ``path`` (keys from the environment by default)."""
    keyring = AgeKeyring.from_environment() if keyring is None else keyring
    return decrypt(load(path), keyring)


def write_file(
    path: Path | str,
    tree: Mapping[str, Any],
    *,
    rules: CreationRules,
    keyring: AgeKeyring | None = None,
    now: datetime | None = None,
) -> bool:
    """Write ``tree`` to the sops file at ``path`` atomically; True when the file changed.

    An existing file keeps its data key and recipients (only changed values are re-encrypted);
    a new file gets the creation rule that matches its path. Nothing is written on any error.
    """
    path = Path(path)
    if path.exists():
        keyring = AgeKeyring.from_environment() if keyring is None else keyring
        document = load(path)
        text = open_document(document, keyring).reencrypt(tree, now=now)
        if text == document.text:
            return False
    else:
        text = encrypt(tree, rules.rule_for(path), now=now, indent=rules.indent, path=path)
    atomic_write_text(path, text, mode=_mode_of(path))
    return True


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644


# -- tree helpers -------------------------------------------------------------------------------------


def _walk_tree(tree: Mapping[str, Any], leaf: Callable[[Any, tuple[str, ...]], Any], path: Path) -> Tree:
    """:func:`_walk` over a whole document (a mapping at the top); SopsError for non-string keys."""
    try:
        return {key: _walk(item, leaf, (_key(key),)) for key, item in tree.items()}
    except _goyaml.YamlUnsupported as error:
        raise SopsError(path, f"cannot be encrypted: {error}") from None


def _walk(value: Any, leaf: Callable[[Any, tuple[str, ...]], Any], path: tuple[str, ...] = ()) -> Any:
    """A copy of ``value`` with every non-null scalar replaced by ``leaf(scalar, key path)``.

    The key path holds mapping keys only: sops does not put list positions into it.
    """
    # exact-type checks first: isinstance against the ABCs is slow and this runs per value
    if type(value) is dict or (not isinstance(value, str | list) and isinstance(value, Mapping)):
        return {key: _walk(item, leaf, (*path, _key(key))) for key, item in value.items()}
    if type(value) is list or isinstance(value, tuple):
        return [_walk(item, leaf, path) for item in value]
    if value is None:
        return None
    return leaf(value, path)


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise _goyaml.YamlUnsupported(f"mapping keys must be strings, not {type(key).__name__}")
    return key


def _leaf_bytes(value: Any, key_path: Sequence[str], path: Path) -> tuple[str, bytes]:
    try:
        return type_and_bytes(value)
    except _goyaml.YamlUnsupported as error:
        raise SopsError(path, f"the value at {'.'.join(key_path) or '(root)'}: {error}") from None


def _canonical(tree: Mapping[str, Any], path: Path) -> Any:
    """A comparable form that differs whenever the written file or its MAC would differ."""

    def leaf(value: Any, key_path: tuple[str, ...]) -> Any:
        return _leaf_bytes(value, key_path, path)

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return ("map", tuple((key, shape(item)) for key, item in value.items()))
        if isinstance(value, list):
            return ("list", tuple(shape(item) for item in value))
        return value

    return shape(_walk_tree(tree, leaf, path))
