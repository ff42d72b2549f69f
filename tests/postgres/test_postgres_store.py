"""PostgresStore against a real PostgreSQL: the same SOPS documents as the files backend, in a table."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
import yaml
from postgres_helpers import (
    ACCESS,
    REFRESH,
    SECRET_VALUES,
    AgeKey,
    Database,
    make_grant,
    make_tokens,
    sops_decrypt,
)
from psycopg.conninfo import make_conninfo

from grantctl.errors import SopsError, StateError
from grantctl.repo import Repo
from grantctl.sops import AgeKeyring
from grantctl.state.model import Tokens
from grantctl.state.postgres import CREATE_TABLE, PostgresStore

pytestmark = pytest.mark.postgres


def _write(store: PostgresStore, name: str = "acme-ltd", tokens: Tokens | None = None, **changes: object) -> None:
    with store.lock(name):
        store.write(name, make_grant(name, **changes), tokens)


def test_round_trip(store: PostgresStore) -> None:
    assert store.names() == []
    assert store.read_grant("acme-ltd") is None
    assert store.read_tokens("acme-ltd") is None

    _write(store, tokens=make_tokens())

    assert store.names() == ["acme-ltd"]
    assert store.read_grant("acme-ltd") == make_grant()
    assert store.read_grants() == {"acme-ltd": make_grant()}
    assert store.read_tokens("acme-ltd") == make_tokens()
    assert store.verify() == {"acme-ltd": None}


def test_names_and_grants_are_sorted_like_the_files_backend(store: PostgresStore) -> None:
    # a collation that ignores punctuation would put "a-c" between "ab" and "ad"
    for name in ("ad", "a-c", "ab", "b"):
        _write(store, name)
    assert store.names() == ["a-c", "ab", "ad", "b"]
    assert list(store.read_grants()) == ["a-c", "ab", "ad", "b"]


def test_tokens_are_encrypted_in_the_stored_document(store: PostgresStore, database: Database) -> None:
    _write(store, tokens=make_tokens())

    document = database.document("acme-ltd")
    for secret in SECRET_VALUES:
        assert secret not in document
    parsed = yaml.safe_load(document)
    assert all(value.startswith("ENC[AES256_GCM,") for value in parsed["tokens"].values())
    assert parsed["sops"]["encrypted_regex"] == "^(access_token|refresh_token|id_token)$"
    assert parsed["granted_scopes"] == make_grant().granted_scopes  # grant fields stay plaintext
    ((fields,),) = database.sql("SELECT grant_fields FROM grantctl_state")
    assert "tokens" not in fields
    assert not any(secret in str(fields) for secret in SECRET_VALUES)


def test_grants_are_read_without_any_key(repo: Repo, database: Database, store: PostgresStore) -> None:
    _write(store, tokens=make_tokens())

    with PostgresStore(repo, dsn=database.dsn, keyring=AgeKeyring()) as keyless:
        assert keyless.read_grants() == {"acme-ltd": make_grant()}
        assert keyless.read_grant("acme-ltd") == make_grant()
        with pytest.raises(SopsError, match="no age key") as caught:
            keyless.read_tokens("acme-ltd")
        assert keyless.verify()["acme-ltd"] is not None  # "could not be checked", never a silent pass
    assert not any(secret in str(caught.value) for secret in SECRET_VALUES)


def test_the_stored_document_decrypts_with_the_real_sops(
    store: PostgresStore, database: Database, age_key: AgeKey, tmp_path: Path
) -> None:
    _write(store, tokens=make_tokens())
    _write(store, tokens=None, consecutive_failures=3)  # an update, too, stays a valid sops file

    result = sops_decrypt(database.document("acme-ltd"), "acme-ltd", tmp_path / "sops", age_key)

    assert result.returncode == 0, result.stderr
    decrypted = yaml.safe_load(result.stdout)
    assert decrypted["tokens"] == make_tokens().to_document()
    assert decrypted["consecutive_failures"] == 3
    assert decrypted["connection"] == "acme-ltd"


def test_tokens_none_keeps_the_stored_tokens_and_their_ciphertext(store: PostgresStore, database: Database) -> None:
    _write(store, tokens=make_tokens())
    before = yaml.safe_load(database.document("acme-ltd"))

    _write(store, tokens=None, consecutive_failures=2)

    assert store.read_tokens("acme-ltd") == make_tokens()
    assert store.read_grant("acme-ltd") == make_grant(consecutive_failures=2)
    after = yaml.safe_load(database.document("acme-ltd"))
    assert after["tokens"] == before["tokens"]  # same data key, unchanged values keep their ciphertext
    assert after["sops"]["age"] == before["sops"]["age"]


def test_new_tokens_replace_and_empty_tokens_remove(store: PostgresStore, database: Database) -> None:
    _write(store, tokens=make_tokens())
    _write(store, tokens=Tokens(access_token="new-access-xyz", refresh_token=REFRESH))
    assert store.read_tokens("acme-ltd") == Tokens(access_token="new-access-xyz", refresh_token=REFRESH)
    assert "new-access-xyz" not in database.document("acme-ltd")

    _write(store, tokens=Tokens())
    assert store.read_tokens("acme-ltd") is None
    assert "tokens" not in yaml.safe_load(database.document("acme-ltd"))


def test_an_unchanged_write_leaves_the_row_alone(store: PostgresStore, database: Database) -> None:
    _write(store, tokens=make_tokens())
    before = database.sql("SELECT document, updated_at FROM grantctl_state")

    _write(store, tokens=make_tokens())

    assert database.sql("SELECT document, updated_at FROM grantctl_state") == before


def test_delete(store: PostgresStore) -> None:
    _write(store, tokens=make_tokens())
    _write(store, "beta-co")
    with store.lock("acme-ltd"):
        store.delete("acme-ltd")
        store.delete("acme-ltd")  # nothing left: not an error
    assert store.names() == ["beta-co"]
    assert store.read_tokens("acme-ltd") is None


def test_writes_and_deletes_need_the_lock(store: PostgresStore) -> None:
    with pytest.raises(StateError, match="without holding the connection's lock"):
        store.write("acme-ltd", make_grant(), make_tokens())
    with pytest.raises(StateError, match="without holding the connection's lock"):
        store.delete("acme-ltd")
    with store.lock("beta-co"), pytest.raises(StateError, match="without holding"):
        store.write("acme-ltd", make_grant())
    assert store.names() == []


def test_a_grant_is_only_written_under_its_own_name(store: PostgresStore) -> None:
    with store.lock("acme-ltd"), pytest.raises(StateError, match="refusing to write the grant of connection"):
        store.write("acme-ltd", make_grant("beta-co"))


def test_names_that_are_not_connection_names_are_refused(store: PostgresStore) -> None:
    for bad in ("../etc", "Acme", "a b", "x'; DROP TABLE grantctl_state; --"):
        with pytest.raises(StateError, match="is not a connection name"):
            store.read_grant(bad)
        with pytest.raises(StateError, match="is not a connection name"), store.lock(bad):
            pass


def test_a_failed_write_leaves_the_old_document(store: PostgresStore, database: Database, repo: Repo) -> None:
    _write(store, tokens=make_tokens())
    before = database.document("acme-ltd")
    with (
        PostgresStore(repo, dsn=database.dsn, keyring=AgeKeyring()) as keyless,
        keyless.lock("acme-ltd"),
        pytest.raises(SopsError, match="no age key"),
    ):
        keyless.write("acme-ltd", make_grant(consecutive_failures=9), None)
    assert database.document("acme-ltd") == before
    assert store.read_grant("acme-ltd") == make_grant()


def test_a_creation_rule_that_would_leave_tokens_in_plaintext_writes_nothing(
    store: PostgresStore, repo: Repo, age_key: AgeKey
) -> None:
    repo.sops_config.write_text(
        f"creation_rules:\n  - path_regex: (^|/)state/[^/]+\\.yaml$\n    encrypted_regex: ^nothing$\n"
        f"    age: {age_key.recipient}\n"
    )
    with store.lock("acme-ltd"), pytest.raises(StateError, match="would leave it in plaintext at tokens"):
        store.write("acme-ltd", make_grant(), make_tokens())
    assert store.names() == []


def test_verify_reports_a_tampered_document_by_name(store: PostgresStore, database: Database) -> None:
    _write(store, "acme-ltd", tokens=make_tokens())
    _write(store, "beta-co", tokens=make_tokens())
    # Add a scope to both the document and the column, as someone with table access but no key would.
    document = database.document("beta-co").replace("    - email\n", "    - email\n    - payroll.employees\n")
    database.sql(
        "UPDATE grantctl_state SET document = %s, "
        "grant_fields = jsonb_set(grant_fields, '{granted_scopes}', "
        "grant_fields->'granted_scopes' || '\"payroll.employees\"')"
        " WHERE name = 'beta-co'",
        (document,),
    )

    problems = store.verify()

    assert problems["acme-ltd"] is None
    assert problems["beta-co"] is not None
    assert problems["beta-co"].startswith("tampered: postgres:beta-co: MAC mismatch")
    assert store.integrity()["beta-co"].status == "tampered"
    with store.lock("beta-co"), pytest.raises(SopsError, match="MAC mismatch"):
        store.write("beta-co", make_grant("beta-co", consecutive_failures=1))  # never re-signed


def test_verify_reports_a_grant_column_changed_without_the_document(store: PostgresStore, database: Database) -> None:
    _write(store, tokens=make_tokens())
    database.sql("UPDATE grantctl_state SET grant_fields = jsonb_set(grant_fields, '{tenant,name}', '\"Evil Ltd\"')")

    problem = store.verify()["acme-ltd"]

    assert problem is not None
    assert problem.startswith("tampered: postgres:acme-ltd: the grant_fields column differs")
    # plan would read the forged column, so a write must not launder it into a signed document
    forged = store.read_grant("acme-ltd")
    assert forged is not None
    with store.lock("acme-ltd"), pytest.raises(StateError, match="grant_fields column differs"):
        store.write("acme-ltd", forged.model_copy(update={"consecutive_failures": 1}))


def test_verify_reports_an_unreadable_grant_column(store: PostgresStore, database: Database) -> None:
    _write(store)
    database.sql('UPDATE grantctl_state SET grant_fields = grant_fields || \'{"provider": "nowhere"}\'')
    problem = store.verify()["acme-ltd"]
    assert problem is not None
    assert problem.startswith("invalid: postgres:acme-ltd: provider")
    with pytest.raises(StateError, match="postgres:acme-ltd: provider"):
        store.read_grants()


def test_the_table_is_created_once_even_when_stores_race(repo: Repo, database: Database) -> None:
    stores = [PostgresStore(repo, dsn=database.dsn) for _ in range(4)]
    errors: list[BaseException] = []

    def first_use(store: PostgresStore) -> None:
        try:
            store.names()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()

    assert errors == []
    tables = database.sql(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'grantctl_state' "
        "AND table_schema IN (%s, 'public')",
        (database.schema,),
    )
    assert tables == [(database.schema,)]  # in the first schema of the search_path, once
    columns = database.sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'grantctl_state' ORDER BY ordinal_position",
        (database.schema,),
    )
    assert columns == [
        ("name", "text"),
        ("grant_fields", "jsonb"),
        ("document", "text"),
        ("updated_at", "timestamp with time zone"),
    ]


def test_a_store_survives_a_dropped_database_session(store: PostgresStore, database: Database) -> None:
    _write(store, tokens=make_tokens())
    # The server ends every session of this store (as a restart or a failover would).
    ended = database.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (f"grantctl pid {os.getpid()} on {socket.gethostname()}"[:63],),
    )
    assert ended  # the read session and the idle lock session
    assert store.read_grant("acme-ltd") == make_grant()
    _write(store, tokens=None, consecutive_failures=1)
    assert store.read_tokens("acme-ltd") == make_tokens()


def test_repr_and_messages_hold_no_secret(store: PostgresStore, database: Database) -> None:
    _write(store, tokens=make_tokens())
    assert ACCESS not in repr(store.read_tokens("acme-ltd"))
    assert database.dsn not in repr(store)
    assert "password" not in repr(store)


def test_a_role_that_may_not_create_tables_uses_an_existing_one(repo: Repo, database: Database) -> None:
    database.sql(f'REVOKE CREATE ON SCHEMA "{database.schema}" FROM CURRENT_USER')
    with (
        PostgresStore(repo, dsn=database.dsn) as store,
        pytest.raises(StateError, match=r"creating the table grantctl_state .*failed: permission denied for schema"),
    ):
        store.names()

    database.sql(f'GRANT CREATE ON SCHEMA "{database.schema}" TO CURRENT_USER')
    database.sql(CREATE_TABLE)
    database.sql(f'REVOKE CREATE ON SCHEMA "{database.schema}" FROM CURRENT_USER')
    with PostgresStore(repo, dsn=database.dsn) as store:
        _write(store, tokens=make_tokens())
        assert store.read_tokens("acme-ltd") == make_tokens()


def test_the_dsn_can_override_the_statement_timeout(repo: Repo, database: Database) -> None:
    dsn = make_conninfo(database.dsn, options=f"-csearch_path={database.schema} -cstatement_timeout=1234")
    with PostgresStore(repo, dsn=dsn) as store:
        store.names()
        assert store._query("SHOW statement_timeout", (), "test") == [("1234ms",)]
    with PostgresStore(repo, dsn=database.dsn) as store:
        assert store._query("SHOW statement_timeout", (), "test") == [("1min",)]
