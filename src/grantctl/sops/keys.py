"""Age identities, found where sops finds them, and the data keys they unwrap.

Like sops 3.10+, every source present is used (not only the first one found):

1. ``SOPS_AGE_KEY``: one or more ``AGE-SECRET-KEY-1...`` lines;
2. ``SOPS_AGE_KEY_FILE``: a keys file (``age-keygen`` format: comments and blank lines allowed);
3. ``$XDG_CONFIG_HOME/sops/age/keys.txt``, else ``$HOME/.config/sops/age/keys.txt``, when it exists.

sops can also run ``SOPS_AGE_KEY_CMD`` and use SSH keys; the native keyring does not, and says so
when it finds no key, so the binary wrapper remains the way to use those.

Example::

    keyring = AgeKeyring.from_environment()
    data_key = keyring.unwrap_data_key(document)   # in grantctl.sops.native

Secret keys never appear in ``repr``, messages or logs; only their public recipients do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
from pyrage import x25519

from grantctl.errors import SopsError
from grantctl.sops import _age

KEY_ENV = "SOPS_AGE_KEY"
KEY_FILE_ENV = "SOPS_AGE_KEY_FILE"
_NOT_NATIVE_ENV = ("SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE")
_SECRET_PREFIX = "AGE-SECRET-KEY-1"  # noqa: S105 - a prefix, not a secret
DATA_KEY_SIZE = 32


@dataclass(frozen=True)
class AgeStanza:
    """One ``sops.age[]`` entry: a recipient and the data key age-encrypted (armored) to it."""

    recipient: str
    enc: str = field(repr=False)


@dataclass(frozen=True, repr=False)
class AgeKeyring:
    """The age identities available to this process, by public recipient.

    ``looked_in`` lists every place checked (for "no key" messages) and ``problems`` what was
    wrong with a source (a missing file, an unreadable line) without any key material.
    """

    _identities: Mapping[str, Any] = field(default_factory=dict)
    looked_in: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    not_supported: tuple[str, ...] = ()
    # The identities as `cryptography` keys for the fast path (see _age), made on first use.
    _fast_keys: dict[str, _age.X25519Key | None] = field(default_factory=dict, compare=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> AgeKeyring:
        """Identities from ``SOPS_AGE_KEY``, ``SOPS_AGE_KEY_FILE`` and the user's sops keys file."""
        env = os.environ if env is None else env
        collected: dict[str, Any] = {}
        looked_in: list[str] = [KEY_ENV]
        problems: list[str] = []
        if KEY_ENV in env:
            _parse_into(collected, problems, env[KEY_ENV], KEY_ENV)
        if KEY_FILE_ENV in env:
            looked_in.append(f"{KEY_FILE_ENV} ({env[KEY_FILE_ENV]})")
            _read_file_into(collected, problems, Path(env[KEY_FILE_ENV]), KEY_FILE_ENV)
        else:
            looked_in.append(KEY_FILE_ENV)
        default = default_keys_file(env)
        if default is not None:
            looked_in.append(str(default))
            if default.is_file():
                _read_file_into(collected, problems, default, str(default))
        not_supported = tuple(name for name in _NOT_NATIVE_ENV if env.get(name))
        return cls(collected, tuple(looked_in), tuple(problems), not_supported)

    @classmethod
    def from_text(cls, text: str, *, source: str = "keys") -> AgeKeyring:
        """Identities from the text of a keys file (or of ``SOPS_AGE_KEY``)."""
        collected: dict[str, Any] = {}
        problems: list[str] = []
        _parse_into(collected, problems, text, source)
        return cls(collected, (source,), tuple(problems))

    @classmethod
    def from_identities(cls, identities: Iterable[Any]) -> AgeKeyring:
        """A keyring holding ``pyrage.x25519.Identity`` objects (tests, embedding)."""
        collected = {str(identity.to_public()): identity for identity in identities}
        return cls(collected, ("given identities",))

    @property
    def recipients(self) -> tuple[str, ...]:
        """The public recipients of the identities held, sorted."""
        return tuple(sorted(self._identities))

    def __bool__(self) -> bool:
        return bool(self._identities)

    def __len__(self) -> int:
        return len(self._identities)

    def __repr__(self) -> str:
        return f"AgeKeyring(recipients={list(self.recipients)!r})"

    def can_decrypt_for(self, recipients: Iterable[str]) -> bool:
        """True when one of ``recipients`` is an identity held here."""
        return any(recipient in self._identities for recipient in recipients)

    def unwrap(self, stanzas: Sequence[AgeStanza], path: Path | str) -> bytes:
        """The data key of the file at ``path`` from its age stanzas; a clear SopsError otherwise."""
        damaged: list[str] = []
        for stanza in stanzas:
            identity = self._identities.get(stanza.recipient.strip())
            if identity is None:
                continue
            data_key = self._fast_unwrap(stanza)
            if data_key is None:  # not something the fast path reads: pyrage decides
                try:
                    data_key = pyrage.decrypt(stanza.enc.encode("utf-8"), [identity])
                except Exception:  # pyrage raises DecryptError and, on bad armor, others
                    damaged.append(stanza.recipient)
                    continue
            if len(data_key) == DATA_KEY_SIZE:
                return bytes(data_key)
            damaged.append(stanza.recipient)
        raise self._unwrap_error(stanzas, damaged, path)

    def _fast_unwrap(self, stanza: AgeStanza) -> bytes | None:
        recipient = stanza.recipient.strip()
        if recipient not in self._fast_keys:
            self._fast_keys[recipient] = _age.x25519_key(str(self._identities[recipient]), recipient)
        key = self._fast_keys[recipient]
        return None if key is None else _age.decrypt(stanza.enc, key)

    def _unwrap_error(self, stanzas: Sequence[AgeStanza], damaged: list[str], path: Path | str) -> SopsError:
        if damaged:
            return SopsError(
                path,
                f"the data key encrypted to {', '.join(damaged)} is damaged and cannot be decrypted; "
                "restore the file from git",
            )
        if not self._identities:
            return SopsError(path, self.no_key_message())
        file_recipients = ", ".join(stanza.recipient for stanza in stanzas) or "no age recipient"
        return SopsError(
            path,
            f"your age keys cannot decrypt this file: it is encrypted to {file_recipients}, "
            f"your keys are {', '.join(self.recipients)}. Use the key of one of those recipients "
            f"({KEY_FILE_ENV} / {KEY_ENV}), or ask someone who has one to add yours (`sops updatekeys`)",
        )

    def no_key_message(self) -> str:
        """What to do when no age key is available at all."""
        message = (
            f"no age key available to decrypt it: set {KEY_FILE_ENV} to your age keys file or "
            f"{KEY_ENV} to the key itself (looked in: {', '.join(self.looked_in) or 'nothing'})"
        )
        if self.problems:
            message += f"; problems: {'; '.join(self.problems)}"
        if self.not_supported:
            message += (
                f"; {', '.join(self.not_supported)} is set, which only the sops binary supports (grantctl.sops.binary)"
            )
        return message


def environment_fingerprint(env: Mapping[str, str] | None = None) -> tuple[object, ...]:
    """What :meth:`AgeKeyring.from_environment` reads: the variables, and which key files are there.

    Equal fingerprints mean an equal keyring, so a caller may keep one keyring for as long as the
    fingerprint stays the same (parsing a keys file and deriving its public keys costs more than
    decrypting a state file). A key file is identified by inode, size and modification time.
    """
    env = os.environ if env is None else env
    names = (KEY_ENV, KEY_FILE_ENV, "XDG_CONFIG_HOME", "HOME", *_NOT_NATIVE_ENV)
    key_file = env.get(KEY_FILE_ENV)
    files = (Path(key_file) if key_file else None, default_keys_file(env))
    return (*(env.get(name) for name in names), *(_file_identity(path) for path in files))


def _file_identity(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)


def default_keys_file(env: Mapping[str, str]) -> Path | None:
    """Where sops looks for the user's age keys on Linux (``os.UserConfigDir`` + sops/age/keys.txt)."""
    config_home = env.get("XDG_CONFIG_HOME", "")
    if config_home:
        base = Path(config_home)
        return base / "sops" / "age" / "keys.txt" if base.is_absolute() else None
    home = env.get("HOME", "")
    return Path(home) / ".config" / "sops" / "age" / "keys.txt" if home else None


def _read_file_into(collected: dict[str, Any], problems: list[str], path: Path, source: str) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{source}: {path} does not exist")
        return
    except (OSError, UnicodeDecodeError):
        problems.append(f"{source}: {path} cannot be read")
        return
    _parse_into(collected, problems, text, source)


def _parse_into(collected: dict[str, Any], problems: list[str], text: str, source: str) -> None:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(_SECRET_PREFIX):
            # e.g. AGE-PLUGIN-... identities; never echo the line, it may be a key
            problems.append(f"{source}: line {number} is not an X25519 age secret key")
            continue
        try:
            identity = x25519.Identity.from_str(line)
        except Exception:
            problems.append(f"{source}: line {number} is not a valid age secret key")
            continue
        collected[str(identity.to_public())] = identity
