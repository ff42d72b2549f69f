"""Which :class:`~grantctl.state.base.StateStore` a repo uses: ``state.backend`` in ``grantctl.yaml``.

store = open_store(repo)      # FilesStore for `state: {backend: files}` (the default)
                              # PostgresStore for `state: {backend: postgres, dsnEnv: GRANTCTL_POSTGRES_DSN}`
"""

from __future__ import annotations

import os
from typing import Any

from grantctl.errors import GrantctlError
from grantctl.models import FilesBackend, PostgresBackend
from grantctl.repo import Repo
from grantctl.state.base import StateStore

BACKENDS = ("files", "postgres")


def open_store(repo: Repo, *, keyring: Any = None) -> StateStore:
    """The state store ``repo`` is configured for; ``keyring`` overrides age key discovery."""
    settings = repo.config.state
    if isinstance(settings, FilesBackend):
        from grantctl.state.files import FilesStore

        return FilesStore(repo, keyring=keyring)
    if isinstance(settings, PostgresBackend):
        return _open_postgres(repo, settings, keyring)
    raise GrantctlError(  # pragma: no cover - the config model only admits BACKENDS
        f"unknown state backend {settings.backend!r}: choose one of {', '.join(BACKENDS)}"
    )


def _open_postgres(repo: Repo, settings: PostgresBackend, keyring: Any) -> StateStore:
    """The PostgreSQL store, with the DSN from the environment variable ``state.dsnEnv`` names."""
    dsn = os.environ.get(settings.dsn_env, "")
    if not dsn.strip():
        raise GrantctlError(
            f"grantctl.yaml keeps state in PostgreSQL, but ${settings.dsn_env} is not set: export the "
            "connection string in it (e.g. postgresql://grantctl@db.internal:5432/grantctl, the password "
            "from your secret store). The DSN never goes in grantctl.yaml; `state.dsnEnv` names the variable"
        )
    try:
        from grantctl.state.postgres import PostgresStore  # deferred: psycopg is an optional dependency
    except ImportError as exc:
        if not (exc.name or "").startswith("psycopg"):
            raise
        raise GrantctlError(
            "grantctl.yaml keeps state in PostgreSQL, which needs the psycopg driver: pip install 'grantctl[postgres]'"
        ) from None
    return PostgresStore(repo, dsn=dsn, keyring=keyring)
