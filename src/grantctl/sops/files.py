"""Reading secrets the fast way when possible, the sops way when needed.

:func:`read_secrets` decrypts in-process (:mod:`grantctl.sops.native`) and falls back to the
``sops`` binary for what the native reader does not handle (comments, Shamir key groups,
``SOPS_AGE_KEY_CMD`` or SSH keys). Writing has no silent fallback: :func:`grantctl.sops.native.write_file`
raises :class:`~grantctl.sops.SopsUnsupported` with what to do instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grantctl.sops import binary, native
from grantctl.sops._errors import SopsUnsupported
from grantctl.sops.keys import AgeKeyring


def read_secrets(
    path: Path | str, *, keyring: AgeKeyring | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The decrypted document at ``path``: natively, else with the sops binary (same result).

    Example: ``read_secrets(repo / "connections/acme-ltd.secrets.yaml")["client_secret"]``
    """
    env = os.environ if env is None else env
    keyring = AgeKeyring.from_environment(env) if keyring is None else keyring
    if not keyring and keyring.not_supported:
        return binary.decrypt_file(path, env=env)
    try:
        return native.decrypt_file(path, keyring)
    except SopsUnsupported:
        return binary.decrypt_file(path, env=env)
