"""Unwrapping a sops data key from an age X25519 stanza with ``cryptography``: a fast path for pyrage.

Opening a sops file starts with decrypting its data key, an armored age file encrypted to the
recipient's X25519 key. pyrage takes ~130 us for that, mostly around the X25519 operation; done
here with the same primitives from ``cryptography`` it takes ~60 us, and ``refresh`` opens two sops
files per connection (its state and its app credentials).

Only the shape age and rage write is read (spec: https://age-encryption.org/v1): the armor, the
``age-encryption.org/v1`` header with X25519 stanzas (and other stanzas such as rage's "grease",
which are skipped), the header MAC, and a payload of one STREAM chunk. Everything is authenticated
as age does (the wrapped file key by ChaCha20-Poly1305, the header by its HMAC, the payload by
ChaCha20-Poly1305). Anything else, and any failure, gives None: the caller then asks pyrage,
which decides (and words the error). So this never refuses a file pyrage reads, and never accepts
one that does not authenticate.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

_ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = "-----END AGE ENCRYPTED FILE-----"
_VERSION_LINE = b"age-encryption.org/v1"
_X25519_LABEL = b"age-encryption.org/v1/X25519"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_FILE_KEY_SIZE = 16
_NONCE_SIZE = 16
_TAG_SIZE = 16
_CHUNK_SIZE = 64 * 1024
_LAST_CHUNK_NONCE = b"\x00" * 11 + b"\x01"


@dataclass(frozen=True, repr=False)
class X25519Key:
    """An age X25519 identity as ``cryptography`` objects. Never shown: ``repr`` says nothing."""

    private: X25519PrivateKey = field(repr=False)
    public: bytes

    def __repr__(self) -> str:
        return "X25519Key(...)"


def x25519_key(secret: str, recipient: str) -> X25519Key | None:
    """The key of ``AGE-SECRET-KEY-1...`` if it decodes to the key of ``recipient`` (``age1...``), else None."""
    private_bytes = _bech32_payload(secret.lower(), "age-secret-key-")
    public_bytes = _bech32_payload(recipient, "age")
    if private_bytes is None or public_bytes is None or len(private_bytes) != 32:
        return None
    try:
        private = X25519PrivateKey.from_private_bytes(private_bytes)
    except ValueError:
        return None
    if private.public_key().public_bytes_raw() != public_bytes:
        return None  # decoded wrongly: leave this key to pyrage
    return X25519Key(private, public_bytes)


def decrypt(armored: str, key: X25519Key) -> bytes | None:
    """The plaintext of the armored age file ``armored`` for ``key``; None to let pyrage decide."""
    raw = _dearmor(armored)
    if raw is None:
        return None
    try:
        return _decrypt(raw, key)
    except (ValueError, InvalidTag, binascii.Error, IndexError):
        return None


def _decrypt(raw: bytes, key: X25519Key) -> bytes | None:
    header_end = raw.find(b"\n--- ")
    mac_end = raw.find(b"\n", header_end + 1)
    if header_end < 0 or mac_end < 0:
        return None
    lines = raw[:header_end].split(b"\n")
    if lines[0] != _VERSION_LINE:
        return None
    file_key = _file_key(lines[1:], key)
    if file_key is None:
        return None
    mac = _unpadded_b64(raw[header_end + 5 : mac_end])
    header_key = _hkdf(file_key, b"", b"header")
    if not hmac.compare_digest(hmac.digest(header_key, raw[: header_end + 4], "sha256"), mac):
        return None
    payload = raw[mac_end + 1 :]
    nonce, sealed = payload[:_NONCE_SIZE], payload[_NONCE_SIZE:]
    if len(nonce) != _NONCE_SIZE or not _TAG_SIZE <= len(sealed) <= _CHUNK_SIZE + _TAG_SIZE:
        return None  # several STREAM chunks: not a data key; pyrage handles it
    return ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload")).decrypt(_LAST_CHUNK_NONCE, sealed, None)


def _file_key(stanza_lines: list[bytes], key: X25519Key) -> bytes | None:
    """The file key from the first X25519 stanza that ``key`` opens."""
    for arguments, body in _stanzas(stanza_lines):
        if len(arguments) != 2 or arguments[0] != b"X25519":
            continue  # another recipient type, or grease
        share = _unpadded_b64(arguments[1])
        shared = key.private.exchange(X25519PublicKey.from_public_bytes(share))
        wrap_key = _hkdf(shared, share + key.public, _X25519_LABEL)
        try:
            file_key = ChaCha20Poly1305(wrap_key).decrypt(bytes(12), _unpadded_b64(body), None)
        except InvalidTag:
            continue  # a stanza for another recipient
        if len(file_key) == _FILE_KEY_SIZE:
            return file_key
    return None


def _stanzas(lines: list[bytes]) -> list[tuple[list[bytes], bytes]]:
    stanzas: list[tuple[list[bytes], bytes]] = []
    for line in lines:
        if line.startswith(b"-> "):
            stanzas.append((line[3:].split(b" "), b""))
        elif stanzas:
            arguments, body = stanzas[-1]
            stanzas[-1] = (arguments, body + line)
        else:
            raise ValueError("stanza body before any stanza")
    return stanzas


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA-256 (RFC 5869) with a 32-byte output: one HMAC to extract, one to expand."""
    pseudo_random_key = hmac.digest(salt or bytes(32), secret, "sha256")
    return hmac.digest(pseudo_random_key, info + b"\x01", "sha256")


def _unpadded_b64(text: bytes) -> bytes:
    return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)


def _dearmor(armored: str) -> bytes | None:
    lines = armored.strip().split("\n")
    if len(lines) < 3 or lines[0].strip() != _ARMOR_BEGIN or lines[-1].strip() != _ARMOR_END:
        return None
    try:
        return base64.b64decode("".join(line.strip() for line in lines[1:-1]), validate=True)
    except (ValueError, binascii.Error):
        return None


def _bech32_payload(text: str, prefix: str) -> bytes | None:
    """The bytes of a bech32 string with human-readable part ``prefix`` (checksum not re-checked:
    the caller compares the result with a known public key)."""
    separator = text.rfind("1")
    if separator < 0 or text[:separator] != prefix:
        return None
    try:
        values = [_BECH32.index(char) for char in text[separator + 1 :]][:-6]  # drop the checksum
    except ValueError:
        return None
    accumulator, bits, out = 0, 0, bytearray()
    for value in values:
        accumulator = (accumulator << 5) | value
        bits += 5
        while bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    return bytes(out)
