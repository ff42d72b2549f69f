"""Choosing the backend, and the DSN: read from the variable grantctl.yaml names, never shown."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from postgres_helpers import DSN_ENV, AgeKey, Database, write_config

from grantctl.errors import GrantctlError, StateError
from grantctl.repo import Repo
from grantctl.state.postgres import PostgresStore
from grantctl.state.registry import open_store

pytestmark = pytest.mark.postgres

PASSWORD = "pw-Do-Not-Print-0f9e"


def _everything_said(exc: BaseException) -> str:
    """The message, its repr and the whole traceback a user could see (chained exceptions included)."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def _with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"grantctl:{password}@{host}"))


def test_open_store_returns_the_postgres_store(repo: Repo) -> None:
    store = open_store(repo)
    assert isinstance(store, PostgresStore)
    assert store.names() == []


def test_an_unset_or_empty_dsn_variable_is_named(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    for value in (None, "", "  "):
        if value is None:
            monkeypatch.delenv(DSN_ENV)
        else:
            monkeypatch.setenv(DSN_ENV, value)
        with pytest.raises(GrantctlError, match=rf"\${DSN_ENV} is not set") as caught:
            open_store(repo)
        assert "state.dsnEnv" in str(caught.value)


def test_the_variable_is_the_one_grantctl_yaml_names(
    tmp_path: Path, age_key: AgeKey, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "custom"
    write_config(root, age_key)
    config = root / "grantctl.yaml"
    config.write_text(
        config.read_text().replace("  backend: postgres\n", "  backend: postgres\n  dsnEnv: TEAM_STATE_DSN\n")
    )
    repo = Repo.load(root)
    monkeypatch.delenv("TEAM_STATE_DSN", raising=False)
    monkeypatch.setenv(DSN_ENV, database.dsn)  # the default variable is not consulted
    with pytest.raises(GrantctlError, match=r"\$TEAM_STATE_DSN is not set"):
        open_store(repo)
    monkeypatch.setenv("TEAM_STATE_DSN", database.dsn)
    assert open_store(repo).names() == []


def test_a_missing_driver_says_what_to_install(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails as if not installed
    monkeypatch.delitem(sys.modules, "grantctl.state.postgres")
    with pytest.raises(GrantctlError, match=r"pip install 'grantctl\[postgres\]'"):
        open_store(repo)


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://grantctl:{PASSWORD}@127.0.0.1:5432/grantctl_test?bogus=1",
        f"host=127.0.0.1 password={PASSWORD} dbname",
        f"postgresql://grantctl:{PASSWORD}@127.0.0.1:notaport/grantctl_test",
        # libpq quotes these back in its own messages: the token, or the whole URI
        f"postgresql://grantctl:{PASSWORD}%zz@127.0.0.1:5432/grantctl_test",
        f"postgresql://grantctl:{PASSWORD}@[127.0.0.1:5432/grantctl_test",
        f"postgresql://grantctl:{PASSWORD}@127.0.0.1:5432/grantctl_test?sslmode={PASSWORD}",
    ],
    ids=["unknown-parameter", "key-without-value", "bad-port", "bad-percent-encoding", "open-bracket", "bad-sslmode"],
)
def test_a_malformed_dsn_is_reported_without_echoing_it(repo: Repo, monkeypatch: pytest.MonkeyPatch, dsn: str) -> None:
    monkeypatch.setenv(DSN_ENV, dsn)
    with pytest.raises(GrantctlError) as caught:
        open_store(repo).names()
    said = _everything_said(caught.value)
    assert f"${DSN_ENV}" in str(caught.value)
    assert PASSWORD not in said
    assert dsn not in said


def test_a_wrong_password_is_reported_without_the_dsn(
    repo: Repo, server_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = _with_password(server_dsn, PASSWORD)
    monkeypatch.setenv(DSN_ENV, dsn)
    store = open_store(repo)
    with pytest.raises(StateError, match="password authentication failed") as caught:
        store.names()
    said = _everything_said(caught.value)
    assert f"the DSN in ${DSN_ENV}" in said
    assert PASSWORD not in said
    assert dsn not in said
    assert PASSWORD not in repr(store)


def test_an_unreachable_server_is_reported_without_the_dsn(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = f"postgresql://grantctl:{PASSWORD}@127.0.0.1:1/grantctl_test"
    monkeypatch.setenv(DSN_ENV, dsn)
    store = open_store(repo)
    with pytest.raises(StateError, match="cannot connect to PostgreSQL") as caught, store.lock("acme-ltd"):
        pass
    said = _everything_said(caught.value)
    assert PASSWORD not in said
    assert dsn not in said


def test_database_errors_name_the_variable_not_the_dsn(repo: Repo, database: Database) -> None:
    with PostgresStore(repo, dsn=database.dsn) as store:
        store.names()  # creates the table
        database.sql("REVOKE ALL ON grantctl_state FROM CURRENT_USER")
        try:
            with pytest.raises(StateError, match="permission denied") as caught:
                store.read_grants()
        finally:
            database.sql("GRANT ALL ON grantctl_state TO CURRENT_USER")
    said = _everything_said(caught.value)
    assert f"PostgreSQL (the DSN in ${DSN_ENV}): reading the grants failed" in said
    assert database.dsn not in said
