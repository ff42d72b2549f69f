"""The exceptions grantctl raises, and how they become exit codes.

    GrantctlError                  anything the user can fix; message says what to do (exit 1)
     +-- ManifestError             a manifest, config or other input file is invalid (file, line, column, field)
     +-- SopsError                 encrypting or decrypting failed (file, which sops step)
     +-- StateError                a state document is unreadable, tampered or locked (file / connection)
     |    +-- LockTimeout          another process holds a connection's lock
     +-- ProviderError             an OAuth provider answered with an error (provider, HTTP status, OAuth error)
     +-- LinkError                 an authorization link or state parameter is invalid or expired

Messages never contain secrets: callers pass names and paths, never values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130


class GrantctlError(Exception):
    """Base class: a problem the user can fix. ``str()`` is the one-line message shown to them."""

    exit_code = EXIT_ERROR


@dataclass(frozen=True)
class Location:
    """Where in which file a problem is; ``line`` and ``column`` are 1-based."""

    path: Path | str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = str(self.path)
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text


class ManifestError(GrantctlError):
    """An input file (manifest, config, plan file) is invalid."""

    def __init__(self, location: Location, message: str, *, field: str | None = None) -> None:
        self.location = location
        self.field = field
        self.detail = message
        where = f"{location}: " if str(location.path) else ""
        at_field = f"{field}: " if field else ""
        super().__init__(f"{where}{at_field}{message}")


class SopsError(GrantctlError):
    """The sops layer failed for one file."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {message}")


class StateError(GrantctlError):
    """A state document cannot be read or written."""


class LockTimeout(StateError):
    """Another process holds the lock of a connection for longer than we are willing to wait."""


class ProviderError(GrantctlError):
    """A provider answered with an error; ``oauth_error`` is the OAuth ``error`` code when there is one."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        oauth_error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.oauth_error = oauth_error
        self.retry_after = retry_after
        parts = [f"{provider}: {message}"]
        if status is not None:
            parts.append(f"(HTTP {status}{', ' + oauth_error if oauth_error else ''})")
        super().__init__(" ".join(parts))

    @property
    def transient(self) -> bool:
        """True when trying again later may succeed (timeouts, 5xx, 429)."""
        return self.status is None or self.status == 429 or self.status >= 500


class LinkError(GrantctlError):
    """An authorization link or OAuth ``state`` is invalid, tampered or expired."""
