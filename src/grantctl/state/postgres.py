"""State in PostgreSQL: the same SOPS documents as ``state/<name>.yaml``, one row per connection.

For deployments where a long-running callback server and several CI runners share state
(``state: {backend: postgres, dsnEnv: GRANTCTL_POSTGRES_DSN}`` in ``grantctl.yaml``). The DSN is
read from that environment variable, never from a file, and never appears in a message.

One table, created on first use when it is missing (see :data:`CREATE_TABLE`)::

    grantctl_state(name text primary key, grant_fields jsonb, document text, updated_at timestamptz)

- ``document`` is the full SOPS document, byte for byte what the files backend would write:
  tokens encrypted per the ``.sops.yaml`` creation rule for ``state/<name>.yaml``, a MAC over
  everything. ``sops decrypt`` reads it once saved to a file.
- ``grant_fields`` is the plaintext grant as JSONB, so ``plan`` and ``audit`` read every grant in
  one query with no key. It is not covered by the MAC: :meth:`PostgresStore.verify` compares it
  with the signed document, and a write refuses to re-sign a document whose column disagrees.

Locks are session-level advisory locks (``pg_advisory_lock``) on a 64-bit hash of the schema,
table and connection name, held on a dedicated database connection for the ``with`` block: they
exclude other processes on any machine, and the server drops them when the holder's session
ends (a crashed runner never leaves a connection locked). Writes go through that same
connection in one transaction, so a write cannot succeed after the lock was lost.

    store = PostgresStore(repo, dsn=os.environ["GRANTCTL_POSTGRES_DSN"])
    store.read_grants()                           # one SELECT, no key
    with store.lock("acme-ltd", timeout=10):
        tokens = store.read_tokens("acme-ltd")    # decrypted natively, MAC verified
        store.write("acme-ltd", grant, new_tokens)
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter, ValidationError

from grantctl.errors import GrantctlError, LockTimeout, SopsError, StateError
from grantctl.models import NAME_PATTERN, PostgresBackend
from grantctl.repo import Repo
from grantctl.sops import AgeKeyring, SopsUnsupported, binary, native
from grantctl.sops.keys import environment_fingerprint
from grantctl.state.base import DEFAULT_LOCK_TIMEOUT, StateStore
from grantctl.state.document import new_document, tokens_from_tree, updated_document
from grantctl.state.files import Integrity
from grantctl.state.model import Grant, Tokens
from grantctl.state.plaintext import SOPS_KEY, TOKENS_KEY, check_tokens_encrypted

TABLE = "grantctl_state"
DEFAULT_DSN_ENV = PostgresBackend.model_fields["dsn_env"].default
CONNECT_TIMEOUT_SECONDS = 10
# Every statement but the lock wait (bounded by its own timeout) ends within this.
STATEMENT_TIMEOUT_MS = 60_000

CREATE_TABLE = """
CREATE TABLE grantctl_state (
    name         text        PRIMARY KEY,
    grant_fields jsonb       NOT NULL,
    document     text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
)
"""
_UPSERT = """
INSERT INTO grantctl_state (name, grant_fields, document, updated_at) VALUES (%s, %s, %s, now())
ON CONFLICT (name) DO UPDATE
   SET grant_fields = EXCLUDED.grant_fields, document = EXCLUDED.document, updated_at = EXCLUDED.updated_at
"""
_TABLE_SCHEMA = """
SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)
"""
# Who holds an advisory lock: a bigint key shows in pg_locks as classid (high half), objid (low half).
_LOCK_HOLDER = """
SELECT a.application_name, l.pid
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid::bigint = %s AND l.objid::bigint = %s
 LIMIT 1
"""

_NAME = re.compile(NAME_PATTERN)
_GRANTS = TypeAdapter(list[Grant])
# Lock connections kept open between locks: a refresh takes hundreds, and connecting costs more
# than the lock itself. More than this are closed on release.
_MAX_IDLE_LOCK_CONNECTIONS = 8
_MAX_LOCK_TIMEOUT_MS = 2**31 - 1  # PostgreSQL's limit for lock_timeout
_RESTORE = (
    "State is written by grantctl only: restore the row from a database backup, or let grantctl "
    "record the grant again (reconnect or refresh)"
)

Connection = psycopg.Connection[TupleRow]


@dataclass(frozen=True)
class _Held:
    """A lock this process holds: the session holding it, and the thread that took it."""

    connection: Connection
    thread: int


class PostgresStore(StateStore):
    """State documents in the ``grantctl_state`` table of the PostgreSQL database at ``dsn``.

    ``dsn`` is a libpq connection string or URI (it may carry a password: it is never shown).
    The table lives in the first schema of the connection's ``search_path`` (set it with
    ``options=-csearch_path=<schema>`` in the DSN). ``keyring`` overrides age key discovery.
    """

    def __init__(self, repo: Repo, *, dsn: str, keyring: AgeKeyring | None = None) -> None:
        self.repo = repo
        settings = repo.config.state
        self._dsn_env = settings.dsn_env if isinstance(settings, PostgresBackend) else DEFAULT_DSN_ENV
        self._params = _connection_parameters(dsn, self._dsn_env)
        self._secrets = _secret_forms(dsn, self._params.get("password"))
        self._keyring = keyring
        self._found_keyring: tuple[tuple[object, ...], AgeKeyring] | None = None
        self._schema: str | None = None  # where the table is: part of every lock key
        self._shared: Connection | None = None  # reads, one query at a time
        self._shared_guard = threading.Lock()
        self._idle: list[Connection] = []  # lock connections between locks
        self._idle_guard = threading.Lock()
        self._held: dict[str, _Held] = {}
        # Documents opened (decrypted, MAC verified) while their lock is held: a refresh reads the
        # tokens and then writes the same document, which need not be decrypted twice.
        self._opened: dict[str, native.OpenDocument] = {}
        self._connections: set[Connection] = set()
        # Commands open a store and drop it; its connections close with it (or at exit) instead
        # of each warning that it was never closed.
        weakref.finalize(self, _close_all, self._connections)

    def __repr__(self) -> str:
        return f"PostgresStore(table={TABLE!r}, dsn from ${self._dsn_env})"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every database connection (and so release any lock still held)."""
        with self._shared_guard:
            self._shared = None
        with self._idle_guard:
            self._idle.clear()
        _close_all(self._connections)

    # -- reading without a key ------------------------------------------------------------------

    def names(self) -> list[str]:
        """Connections with a row, sorted as the files backend sorts them (not by the DB collation)."""
        return sorted(name for (name,) in self._query("SELECT name FROM grantctl_state", (), "listing connections"))

    def read_grant(self, name: str) -> Grant | None:
        """The plaintext grant of ``name`` (from ``grant_fields``), or None when it has no row. Needs no key."""
        self._check_name(name)
        rows = self._query("SELECT grant_fields FROM grantctl_state WHERE name = %s", (name,), f"reading {name}")
        return self._grant(name, rows[0][0]) if rows else None

    def read_grants(self) -> dict[str, Grant]:
        """Every grant by name, in one query with no key (what ``plan`` and ``audit`` run)."""
        rows = self._query("SELECT name, grant_fields FROM grantctl_state", (), "reading the grants")
        rows.sort(key=lambda row: str(row[0]))  # as the files backend sorts, not by the DB collation
        try:
            grants = _GRANTS.validate_python([fields for _, fields in rows])
        except ValidationError:  # find the row to blame, with its field
            grants = [self._grant(name, fields) for name, fields in rows]
        found = {}
        for (name, _), grant in zip(rows, grants, strict=True):
            self._check_connection(name, grant)
            found[name] = grant
        return found

    # -- reading and writing with the key ----------------------------------------------------------

    def read_tokens(self, name: str) -> Tokens | None:
        """The decrypted tokens of ``name`` (MAC verified), or None when it has no row or no tokens."""
        row = self._row(name)
        if row is None:
            return None
        text = row[1]
        keyring = self._current_keyring()
        if not keyring and keyring.not_supported:
            tree = self._decrypt_with_binary(name, text)  # SOPS_AGE_KEY_CMD or SSH keys: only sops uses them
        else:
            try:
                tree = self._open(name, text, keyring).tree
            except SopsUnsupported:
                tree = self._decrypt_with_binary(name, text)
        return tokens_from_tree(tree, self._label(name), restore=_RESTORE)

    def write(self, name: str, grant: Grant, tokens: Tokens | None = None) -> None:
        """Replace ``name``'s document in one transaction; ``tokens=None`` keeps the stored tokens.

        ``Tokens()`` (no values) removes the stored tokens. The caller holds ``name``'s lock; the
        write runs on the lock's own session. An existing document keeps its data key and the
        ciphertext of unchanged values (as in the files backend); a new one is encrypted per
        ``.sops.yaml``. Needs the key either way: the MAC covers the grant.
        """
        held = self._require_lock(name)
        if grant.connection != name:
            raise StateError(
                f"{name}: refusing to write the grant of connection {grant.connection!r} into it (a bug in grantctl)"
            )
        try:
            self._write_on(held.connection, name, grant, tokens)
        except psycopg.Error as exc:
            raise self._database_error(exc, f"writing the state of {name} (nothing was written)") from None
        finally:
            self._opened.pop(name, None)  # the row may have changed: open it anew next time

    def _write_on(self, connection: Connection, name: str, grant: Grant, tokens: Tokens | None) -> None:
        label = self._label(name)
        with connection.transaction():
            row = connection.execute(
                "SELECT grant_fields, document FROM grantctl_state WHERE name = %s FOR UPDATE", (name,)
            ).fetchone()
            if row is None:
                text = new_document(
                    grant, tokens, sops_config=self.repo.sops_config, path=self._state_path(name), shown=label
                )
            else:
                fields, old_text = row
                # Opening verifies the MAC: a tampered document is never re-signed with our key,
                # and neither is a grant column that no longer matches it.
                opened = self._open(name, old_text, self._current_keyring())
                self._require_consistent(name, fields, opened.tree)
                text = updated_document(opened, grant, tokens, shown=label)
                if text == old_text:
                    return  # nothing changed: no write, no new updated_at
            connection.execute(_UPSERT, (name, Jsonb(grant.to_document()), text))

    def delete(self, name: str) -> None:
        """Remove ``name``'s row (the caller holds the lock); no row is not an error."""
        held = self._require_lock(name)
        self._opened.pop(name, None)
        try:
            held.connection.execute("DELETE FROM grantctl_state WHERE name = %s", (name,))
        except psycopg.Error as exc:
            raise self._database_error(exc, f"deleting the state of {name}") from None

    # -- integrity --------------------------------------------------------------------------------

    def verify(self) -> dict[str, str | None]:
        """Per connection None when its MAC and its grant column check out, else the problem."""
        return {name: check.problem for name, check in self.integrity().items()}

    def integrity(self) -> dict[str, Integrity]:
        """Per connection, sorted: ok, tampered, unverifiable (no key here) or invalid, and why."""
        keyring = self._current_keyring()
        return {name: self.check(name, keyring=keyring) for name in self.names()}

    def check(self, name: str, *, keyring: AgeKeyring | None = None) -> Integrity:
        """Check one row: the document's MAC (where a key is at hand) and that ``grant_fields`` matches it."""
        keyring = self._current_keyring() if keyring is None else keyring
        label = self._label(name)
        row = self._row(name)
        if row is None:
            return Integrity("invalid", f"{label}: the row disappeared while it was being checked")
        fields, text = row
        try:
            document = native.loads(text, path=label)
        except SopsUnsupported:
            return self._check_with_binary(name, text)
        except SopsError as exc:
            return Integrity("invalid", str(exc))  # not encrypted at all, or damaged metadata
        mac = self._check_mac(name, document, keyring)
        if mac.status in ("tampered", "invalid"):
            return mac
        try:
            check_tokens_encrypted(document.tree, label)
            self._require_consistent(name, fields, document.plaintext())
        except StateError as exc:
            return Integrity("tampered" if isinstance(exc, _Inconsistent) else "invalid", str(exc))
        return mac

    def _check_mac(self, name: str, document: native.SopsDocument, keyring: AgeKeyring) -> Integrity:
        if not keyring.can_decrypt_for(document.recipients):
            if keyring.not_supported:
                return self._check_with_binary(name, document.text)
            return Integrity("unverifiable", f"{self._label(name)}: MAC not checked: {_no_key(keyring, document)}")
        try:
            native.open_document(document, keyring)
        except SopsUnsupported:
            return self._check_with_binary(name, document.text)
        except SopsError as exc:
            return Integrity("tampered", str(exc))
        return Integrity("ok")

    def _check_with_binary(self, name: str, text: str) -> Integrity:
        """The verdict of ``sops decrypt`` for what the native code does not handle."""
        try:
            self._decrypt_with_binary(name, text)
        except SopsError as exc:
            message = str(exc)
            tampered = "MAC mismatch" in message or "tampered" in message
            return Integrity("tampered" if tampered else "unverifiable", message)
        return Integrity("ok")

    def _require_consistent(self, name: str, fields: Any, signed_tree: Mapping[str, Any]) -> None:
        """``grant_fields`` must be the grant of the signed document: the MAC does not cover the column."""
        stored = self._grant(name, fields)
        signed = self._grant(name, {k: v for k, v in signed_tree.items() if k not in (TOKENS_KEY, SOPS_KEY)})
        if stored != signed:
            raise _Inconsistent(
                f"{self._label(name)}: the grant_fields column differs from the grant in the signed document "
                "(the row was changed without grantctl), so the grant cannot be trusted and grantctl will "
                f"not write over it. {_RESTORE}"
            )

    # -- locking ----------------------------------------------------------------------------------

    @contextmanager
    def lock(self, name: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
        """Hold ``name``'s advisory lock (across processes and machines) for the ``with`` block."""
        self._check_name(name)
        held = self._held.get(name)
        if held is not None and held.thread == threading.get_ident():
            # Waiting would only time out: fail at once, at the line that has the bug.
            raise StateError(f"{name}: this thread already holds the connection's lock (locks are not reentrant)")
        key = self.lock_key(name)
        connection = self._locked_connection(name, key, timeout)
        self._held[name] = _Held(connection, threading.get_ident())
        try:
            yield
        finally:
            del self._held[name]
            self._opened.pop(name, None)
            self._unlock(connection, key)

    def lock_key(self, name: str) -> int:
        """The advisory lock key of ``name``: stable across processes, machines and versions."""
        return lock_key(self._table_schema(), name)

    def _locked_connection(self, name: str, key: int, timeout: float) -> Connection:
        """A session holding ``key``; LockTimeout when another session keeps it past ``timeout``."""
        for attempt in (1, 2):
            connection, reused = self._lock_connection()
            try:
                if self._acquire(connection, key, timeout):
                    return connection
                holder = self._holder(connection, key)
            except psycopg.OperationalError as exc:
                self._discard(connection)
                if reused and attempt == 1 and connection.broken:
                    continue  # an idle session that the server dropped meanwhile: take a fresh one
                raise self._database_error(exc, f"locking {name}") from None
            except psycopg.Error as exc:
                self._discard(connection)
                raise self._database_error(exc, f"locking {name}") from None
            except BaseException:
                self._discard(connection)  # e.g. Ctrl-C while waiting: the session may hold the lock
                raise
            self._give_back(connection)
            raise LockTimeout(
                f"{name}: the connection is locked by {holder} and was not released within {timeout:g}s "
                f"(PostgreSQL advisory lock {key} on {TABLE}); wait for that grantctl run (e.g. a refresh) "
                "to finish and try again"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _acquire(connection: Connection, key: int, timeout: float) -> bool:
        if timeout <= 0:
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            return bool(row and row[0])
        # The server wakes the waiter the moment the lock is free: no polling. The settings are
        # local to this transaction; the session-level lock outlives it.
        wait = f"{min(max(round(timeout * 1000), 1), _MAX_LOCK_TIMEOUT_MS)}ms"
        try:
            with connection.transaction():
                connection.execute(
                    "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', '0', true)", (wait,)
                )
                connection.execute("SELECT pg_advisory_lock(%s)", (key,))
        except pg_errors.LockNotAvailable:
            return False
        return True

    @staticmethod
    def _holder(connection: Connection, key: int) -> str:
        """Who holds ``key``, for the timeout message (best effort: pg_stat_activity may hide it)."""
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        row = connection.execute(_LOCK_HOLDER, (unsigned >> 32, unsigned & 0xFFFF_FFFF)).fetchone()
        if row is None:
            return "another session (which has just let go: try again)"
        application, pid = row
        return f"{application or 'another session'} (PostgreSQL backend pid {pid})"

    def _unlock(self, connection: Connection, key: int) -> None:
        try:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.Error:
            self._discard(connection)  # ending the session releases the lock
            return
        self._give_back(connection)

    def _require_lock(self, name: str) -> _Held:
        held = self._held.get(name)
        if held is None:
            raise StateError(f"{name}: write without holding the connection's lock (a bug in grantctl)")
        return held

    # -- connections ------------------------------------------------------------------------------

    def _connect(self) -> Connection:
        try:
            connection = psycopg.connect(autocommit=True, **self._params)
        except psycopg.Error as exc:
            raise StateError(
                f"cannot connect to PostgreSQL (the DSN in ${self._dsn_env}): {self._reason(exc)}; "
                f"check that the server is up and that ${self._dsn_env} names the right host, database and user"
            ) from None
        self._connections.add(connection)
        return connection

    def _discard(self, connection: Connection) -> None:
        self._connections.discard(connection)
        connection.close()

    def _lock_connection(self) -> tuple[Connection, bool]:
        """An idle lock session if there is one (True), else a new one (False)."""
        self._table_schema()  # creates the table first: a lock is always followed by its use
        with self._idle_guard:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed:
                    return connection, True
                self._connections.discard(connection)
        return self._connect(), False

    def _give_back(self, connection: Connection) -> None:
        healthy = not connection.broken and connection.info.transaction_status == TransactionStatus.IDLE
        with self._idle_guard:
            if healthy and len(self._idle) < _MAX_IDLE_LOCK_CONNECTIONS:
                self._idle.append(connection)
                return
        self._discard(connection)

    def _query(self, sql: str, params: tuple[Any, ...], doing: str) -> list[tuple[Any, ...]]:
        """Rows of one read on the shared session; reconnects once if the server dropped it."""
        for attempt in (1, 2):
            with self._shared_guard:
                connection = self._shared_connection()
                try:
                    return connection.execute(sql, params).fetchall()
                except psycopg.Error as exc:
                    if connection.broken:
                        self._shared = None
                        self._discard(connection)
                        if attempt == 1 and isinstance(exc, psycopg.OperationalError):
                            continue
                    raise self._database_error(exc, doing) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _row(self, name: str) -> tuple[Any, str] | None:
        self._check_name(name)
        rows = self._query(
            "SELECT grant_fields, document FROM grantctl_state WHERE name = %s", (name,), f"reading {name}"
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def _shared_connection(self) -> Connection:
        """The session for reads (the caller holds ``_shared_guard``); sets the table up on first use."""
        if self._shared is None or self._shared.closed:
            self._shared = self._connect()
        if self._schema is None:
            self._schema = self._set_up(self._shared)
        return self._shared

    def _table_schema(self) -> str:
        if self._schema is None:
            with self._shared_guard:
                self._shared_connection()
        assert self._schema is not None
        return self._schema

    def _set_up(self, connection: Connection) -> str:
        """Create the table when it is missing (idempotent, safe when runners race); its schema."""
        try:
            schema = _find_table_schema(connection)
            if schema is None:
                with connection.transaction():
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("", "(create table)"),))
                    if _find_table_schema(connection) is None:
                        connection.execute(CREATE_TABLE)
                schema = _find_table_schema(connection)
        except psycopg.Error as exc:
            raise self._database_error(
                exc,
                f"creating the table {TABLE} (create it yourself as docs/state.md shows, or let this role "
                "CREATE in the first schema of its search_path)",
            ) from None
        if schema is None:  # pragma: no cover - created just above
            raise StateError(f"PostgreSQL: the table {TABLE} is not visible after creating it")
        return schema

    # -- helpers ----------------------------------------------------------------------------------

    def _open(self, name: str, text: str, keyring: AgeKeyring) -> native.OpenDocument:
        """``text`` decrypted and MAC-verified; reused while ``name``'s lock is held and the text is the same."""
        opened = self._opened.get(name)
        if opened is not None and opened.document.text == text and name in self._held:
            return opened
        opened = native.open_document(native.loads(text, path=self._label(name)), keyring)
        if name in self._held:
            self._opened[name] = opened
        return opened

    def _decrypt_with_binary(self, name: str, text: str) -> dict[str, Any]:
        """Decrypt with ``sops`` itself (key sources only it supports), via a private temp file."""
        with tempfile.TemporaryDirectory(prefix="grantctl-state-") as directory:
            path = Path(directory) / "state" / f"{name}.yaml"
            path.parent.mkdir()
            path.write_text(text, encoding="utf-8")
            try:
                return binary.decrypt_file(path)
            except SopsError as exc:
                message = str(exc).replace(str(path), self._label(name))
                raise SopsError(self._label(name), message.removeprefix(f"{self._label(name)}: ")) from None

    def _grant(self, name: str, fields: Any) -> Grant:
        try:
            grant = Grant.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(part) for part in first["loc"]) or "(document)"
            raise StateError(f"{self._label(name)}: {field}: {first['msg']}. {_RESTORE}") from None
        self._check_connection(name, grant)
        return grant

    def _check_connection(self, name: str, grant: Grant) -> None:
        if grant.connection != name:
            raise StateError(
                f"{self._label(name)}: the document is for connection {grant.connection!r}, not {name!r}. {_RESTORE}"
            )

    def _current_keyring(self) -> AgeKeyring:
        # As sops finds it, unless the caller gave one; parsed again only when the environment changed.
        if self._keyring is not None:
            return self._keyring
        fingerprint = environment_fingerprint()
        found = self._found_keyring
        if found is None or found[0] != fingerprint:
            found = self._found_keyring = (fingerprint, AgeKeyring.from_environment())
        return found[1]

    def _state_path(self, name: str) -> Path:
        """Where the files backend would keep ``name``: the ``.sops.yaml`` rules are matched against it."""
        return self.repo.state_dir / f"{name}.yaml"

    @staticmethod
    def _label(name: str) -> str:
        return f"postgres:{name}"

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.fullmatch(name):
            raise StateError(
                f"{name!r} is not a connection name (lowercase letters, digits and dashes); "
                "state documents are named after their connection"
            )

    def _database_error(self, exc: psycopg.Error, doing: str) -> StateError:
        return StateError(f"PostgreSQL (the DSN in ${self._dsn_env}): {doing} failed: {self._reason(exc)}")

    def _reason(self, exc: BaseException) -> str:
        """libpq's message on one line, with the DSN and password cut out wherever they appear."""
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class _Inconsistent(StateError):
    """``grant_fields`` and the signed document disagree."""


def lock_key(schema: str, name: str) -> int:
    """A signed 64-bit advisory lock key for ``name`` in ``schema``'s state table (first 8 bytes of SHA-256)."""
    digest = hashlib.sha256(f"grantctl-state\0{schema}.{TABLE}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _find_table_schema(connection: Connection) -> str | None:
    row = connection.execute(_TABLE_SCHEMA, (TABLE,)).fetchone()
    return None if row is None else str(row[0])


def _connection_parameters(dsn: str, env: str) -> dict[str, Any]:
    """libpq parameters from ``dsn``, with our defaults where it sets none; never echoes the DSN."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        raise GrantctlError(
            f"${env} is not a valid PostgreSQL connection string: use a URI "
            "(postgresql://user:password@host:5432/database) or key=value pairs (host=... dbname=... user=...)"
        ) from None
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
    params.setdefault("application_name", f"grantctl pid {os.getpid()} on {socket.gethostname()}"[:63])
    # First, so a statement_timeout in the DSN's own options wins.
    params["options"] = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} {params.get('options') or ''}".strip()
    return params


def _secret_forms(dsn: str, password: object) -> tuple[str, ...]:
    """Every form in which the DSN or its password could show up in a driver message, longest first."""
    forms = {dsn.strip()}
    if isinstance(password, str) and password:
        forms |= {password, quote(password, safe="")}
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))


def _no_key(keyring: AgeKeyring, document: native.SopsDocument) -> str:
    if not keyring:
        return keyring.no_key_message()
    return (
        f"none of your age keys ({', '.join(keyring.recipients)}) is a recipient of this document "
        f"({', '.join(document.recipients) or 'no age recipient'}); use one of those keys"
    )


def _close_all(connections: set[Connection]) -> None:
    for connection in list(connections):
        connection.close()
    connections.clear()
