"""App credentials (``connections/<name>.secrets.yaml``), decrypted in-process and once per run.

Why not the ``sops`` binary: one sops process costs about 40 ms of CPU, so 1,000 connections would
spend 40 s decrypting before the first refresh. The files are ordinary SOPS YAML files encrypted to
age recipients, which the native codec (:mod:`grantctl.sops.native`) reads with the same keys
(``SOPS_AGE_KEY`` / ``SOPS_AGE_KEY_FILE`` / the sops default key file) and the same MAC check.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from grantctl.errors import SopsError
from grantctl.providers import ClientCredentials
from grantctl.sops.keys import AgeKeyring

RunBlocking = Callable[..., Awaitable[Any]]


def read_credentials(path: Path, keyring: AgeKeyring | None = None) -> ClientCredentials:
    """Decrypt ``path`` (MAC checked) and return its ``client_id`` / ``client_secret``.

    ``keyring`` defaults to the keys sops would find; ``SopsError`` names the file, never a value.
    """
    from grantctl.sops import native

    data = native.decrypt_file(path, keyring)
    return credentials_from_mapping(path, data)


def credentials_from_mapping(path: Path, data: object) -> ClientCredentials:
    """Check the decrypted document's shape; messages name the missing field, never a value."""
    if not isinstance(data, Mapping):
        raise SopsError(path, "expected a mapping with client_id and client_secret")
    values = {}
    for key in ("client_id", "client_secret"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise SopsError(path, f"has no {key}: re-create it with `grantctl new` or `sops edit`")
        values[key] = value.strip()
    return ClientCredentials(values["client_id"], values["client_secret"])


class CredentialsCache:
    """Decrypts each credentials file at most once per run, even when tasks ask for it concurrently.

    The age keys are looked up once per run too (lazily: a run with nothing due needs none).
    """

    def __init__(self, run_blocking: RunBlocking, reader: Callable[[Path], ClientCredentials] | None = None):
        self._run_blocking = run_blocking
        self._reader = reader or self._read_with_run_keyring
        self._pending: dict[Path, asyncio.Future[ClientCredentials]] = {}
        self._keyring: AgeKeyring | None = None
        self._keyring_guard = threading.Lock()

    def _read_with_run_keyring(self, path: Path) -> ClientCredentials:
        with self._keyring_guard:
            if self._keyring is None:
                self._keyring = AgeKeyring.from_environment()
            keyring = self._keyring
        return read_credentials(path, keyring)

    async def get(self, path: Path) -> ClientCredentials:
        """The credentials in ``path``; a failure is remembered too (the file will not change mid-run)."""
        key = Path(os.path.abspath(path))  # not resolve(): no symlink walk (lstat per component) per call
        future = self._pending.get(key)
        if future is None:
            # The first caller reads, right in its own task: when ``run_blocking`` runs the reader
            # directly this never goes back to the event loop (a new task would wait for a turn).
            future = self._pending[key] = asyncio.get_running_loop().create_future()
            try:
                future.set_result(await self._run_blocking(self._reader, path))
            except asyncio.CancelledError:
                del self._pending[key]  # not read: a later caller tries again
                future.cancel()
                raise
            except Exception as exc:  # remembered, and raised to every caller
                future.set_exception(exc)
        if future.done():
            return future.result()
        return await asyncio.shield(future)
