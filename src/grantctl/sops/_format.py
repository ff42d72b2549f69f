"""The pieces of the sops file format that do not depend on YAML: value encryption, MAC bytes,
and which values a document encrypts.

Details follow sops 3.11 (``aes/cipher.go``, ``sops.go``):

- a value is ``ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<str|int|float|bool|time>]``,
  AES-256-GCM with a 32-byte IV and, as additional data, the path of mapping keys leading to it
  joined and terminated by ``:`` (list positions are *not* part of the path: every item of
  ``scopes: [a, b]`` is authenticated as ``scopes:``); the empty string stays ``""``;
- the MAC is SHA-512 over the plaintext bytes of every value in document order (``null`` and
  comments excluded), upper-case hex, itself encrypted with ``sops.lastmodified`` as additional
  data; with ``mac_only_encrypted`` it covers only encrypted values, after a fixed 32-byte prefix.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from grantctl.sops._goyaml import (
    YamlUnsupported,
    check_int64,
    format_float_f,
    format_timestamp,
    parse_timestamp,
)

IV_SIZE = 32
TAG_SIZE = 16
DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"
# sops.MACOnlyEncryptedInitialization: sha256(b"sops"), hashed first when only encrypted values count.
MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()

_ENC = re.compile(r"ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")


class CipherError(Exception):
    """A value cannot be decrypted or encrypted; the message never contains the value."""


def is_enc(value: object) -> bool:
    """True for a sops ciphertext value (``ENC[AES256_GCM,...``)."""
    return isinstance(value, str) and value.startswith("ENC[AES256_GCM,")


def type_and_bytes(value: Any) -> tuple[str, bytes]:
    """sops' ``ToBytes`` and cipher type name for a leaf value."""
    if isinstance(value, str):
        try:
            return "str", value.encode("utf-8")
        except UnicodeEncodeError:
            raise YamlUnsupported("strings must be valid Unicode text") from None
    if isinstance(value, bool):
        return "bool", b"True" if value else b"False"
    if isinstance(value, int):
        check_int64(value)
        return "int", str(value).encode()
    if isinstance(value, float):
        return "float", format_float_f(value).encode()
    if isinstance(value, datetime):
        return "time", format_timestamp(value).encode()
    raise YamlUnsupported(f"values of type {type(value).__name__} are not supported")


def additional_data(path: Sequence[str]) -> bytes:
    """The AES-GCM additional data sops binds a value to: ``a:b:c:``."""
    return (":".join(path) + ":").encode("utf-8")


def encrypt_value(value: Any, cipher: AESGCM, aad: bytes, *, iv: bytes | None = None) -> str:
    """``value`` as a sops ``ENC[...]`` string (a fresh random IV unless ``iv`` is given)."""
    if isinstance(value, str) and value == "":
        return ""
    type_name, plaintext = type_and_bytes(value)
    iv = os.urandom(IV_SIZE) if iv is None else iv
    sealed = cipher.encrypt(iv, plaintext, aad)
    data, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
    return f"ENC[AES256_GCM,data:{_b64(data)},iv:{_b64(iv)},tag:{_b64(tag)},type:{type_name}]"


def decrypt_value(text: str, cipher: AESGCM, aad: bytes) -> Any:
    """The plaintext of a sops ``ENC[...]`` string, typed as sops types it."""
    if text == "":
        return ""
    match = _ENC.match(text)
    if match is None:
        raise CipherError("not a sops-encrypted value")
    try:
        data, iv, tag = (base64.b64decode(part, validate=True) for part in match.groups()[:3])
    except ValueError:
        raise CipherError("damaged encrypted value (bad base64)") from None
    if len(iv) < 8 or len(tag) != TAG_SIZE:
        raise CipherError("damaged encrypted value (bad IV or tag)")
    try:
        plaintext = cipher.decrypt(iv, data + tag, aad)
    except InvalidTag:
        raise CipherError("encrypted value does not authenticate (damaged, moved or tampered)") from None
    return _typed(plaintext, match.group(4))


def _typed(plaintext: bytes, type_name: str) -> Any:
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise CipherError("encrypted value is not UTF-8 text") from None
    if type_name in ("str", "bytes"):
        return text
    if type_name in ("int", "int64"):
        return int(text)
    if type_name == "float":
        return float(text)
    if type_name == "bool":
        return _go_parse_bool(text)
    if type_name == "time":
        stamp = parse_timestamp(text)
        if stamp is None:
            raise CipherError("encrypted time value is not RFC 3339")
        return stamp
    raise CipherError(f"unsupported encrypted value type {type_name!r}")


def _go_parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise CipherError("encrypted bool value is not a boolean")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Selectors:
    """Which values of a document are encrypted (sops' ``shouldBeEncrypted``), and what the MAC covers.

    At most one of the four selectors is set in practice (sops refuses more in ``.sops.yaml``);
    they are applied in sops' order, each over the mapping keys of the value's path.
    """

    unencrypted_suffix: str = ""
    encrypted_suffix: str = ""
    unencrypted_regex: str = ""
    encrypted_regex: str = ""
    mac_only_encrypted: bool = False

    def should_encrypt(self, path: tuple[str, ...]) -> bool:
        """True when the value at ``path`` (mapping keys only) is encrypted."""
        return _should_encrypt(self, path)

    def _decide(self, path: tuple[str, ...]) -> bool:
        encrypted = True
        if self.unencrypted_suffix and any(key.endswith(self.unencrypted_suffix) for key in path):
            encrypted = False
        if self.encrypted_suffix:
            encrypted = any(key.endswith(self.encrypted_suffix) for key in path)
        if self.unencrypted_regex and any(_search(self.unencrypted_regex, key) for key in path):
            encrypted = False
        if self.encrypted_regex:
            encrypted = any(_search(self.encrypted_regex, key) for key in path)
        return encrypted

    def metadata(self) -> dict[str, Any]:
        """The selector fields as sops writes them into ``sops:`` (in sops' field order)."""
        fields: dict[str, Any] = {}
        for name in ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex"):
            if getattr(self, name):
                fields[name] = getattr(self, name)
        if self.mac_only_encrypted:
            fields["mac_only_encrypted"] = True
        return fields

    def check(self) -> None:
        """Raise :class:`YamlUnsupported` when a regex is not one Python reads as Go does."""
        for pattern in (self.unencrypted_regex, self.encrypted_regex):
            if pattern:
                try:
                    _compiled(pattern)
                except re.error:
                    raise YamlUnsupported(f"the regex {pattern!r} is not supported natively") from None


@functools.lru_cache(maxsize=4096)
def _should_encrypt(selectors: Selectors, path: tuple[str, ...]) -> bool:
    # the same few paths come up in every state file
    return selectors._decide(path)


def _search(pattern: str, key: str) -> bool:
    # Go's regexp.Match is a search, like re.search (not re.match).
    return _compiled(pattern).search(key) is not None


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class MacHasher:
    """sops' running SHA-512 over value bytes; ``hexdigest`` is what ``sops.mac`` encrypts."""

    def __init__(self, selectors: Selectors) -> None:
        self._only_encrypted = selectors.mac_only_encrypted
        self._hash = hashlib.sha512()
        if self._only_encrypted:
            self._hash.update(MAC_ONLY_ENCRYPTED_INIT)

    def add(self, plaintext: bytes, *, encrypted: bool) -> None:
        if encrypted or not self._only_encrypted:
            self._hash.update(plaintext)

    def hexdigest(self) -> str:
        return self._hash.hexdigest().upper()
