"""Which :class:`~grantctl.state.base.StateStore` a repo uses: ``state.backend`` in ``grantctl.yaml``.

store = open_store(repo)      # FilesStore for `state: {backend: files}` (the default)
"""

from __future__ import annotations

from typing import Any

from grantctl.errors import GrantctlError
from grantctl.models import FilesBackend
from grantctl.repo import Repo
from grantctl.state.base import StateStore

BACKENDS = ("files", "postgres")


def open_store(repo: Repo, *, keyring: Any = None) -> StateStore:
    """The state store ``repo`` is configured for; ``keyring`` overrides age key discovery (files backend)."""
    settings = repo.config.state
    if isinstance(settings, FilesBackend):
        from grantctl.state.files import FilesStore

        return FilesStore(repo, keyring=keyring)
    if settings.backend == "postgres":
        raise GrantctlError(
            "PostgreSQL backend not available in this version: set `state: {backend: files}` in "
            "grantctl.yaml (or remove the `state` setting) to keep state in the repo's state/ directory"
        )
    raise GrantctlError(  # pragma: no cover - the config model only admits BACKENDS
        f"unknown state backend {settings.backend!r}: choose one of {', '.join(BACKENDS)}"
    )
