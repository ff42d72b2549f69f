"""Advisory locks: exclusive across processes (and so machines), released when the holder goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from postgres_helpers import Database, make_grant, make_tokens

from grantctl.errors import LockTimeout, StateError
from grantctl.repo import Repo
from grantctl.state.postgres import PostgresStore, lock_key

pytestmark = pytest.mark.postgres

HOLDER = """
import os, sys
from pathlib import Path
from grantctl.repo import Repo
from grantctl.state.postgres import PostgresStore, lock_key

store = PostgresStore(Repo.load(Path(sys.argv[1])), dsn=os.environ["GRANTCTL_POSTGRES_DSN"])
with store.lock(sys.argv[2], timeout=10):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@contextmanager
def held_by_another_process(repo: Repo, name: str) -> Iterator[subprocess.Popen[str]]:
    """A separate Python process holding ``name``'s lock until its stdin gets a line (or it is killed)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(repo.root), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == "locked\n", process.stderr.read() if process.stderr else ""
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def _release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("\n")
    process.stdin.flush()
    assert process.stdout.readline() == "released\n"


def test_a_lock_held_by_another_process_times_out_then_is_taken_after_release(repo: Repo, store: PostgresStore) -> None:
    with held_by_another_process(repo, "acme-ltd") as holder:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught, store.lock("acme-ltd", timeout=0.5):
            pass
        waited = time.monotonic() - started
        assert 0.45 <= waited < 5
        message = str(caught.value)
        assert message.startswith("acme-ltd: the connection is locked by ")
        assert f"grantctl pid {holder.pid} on " in message  # who holds it, from pg_stat_activity
        assert "within 0.5s" in message
        with pytest.raises(LockTimeout), store.lock("acme-ltd", timeout=0):  # the no-wait path
            pass
        with store.lock("beta-co", timeout=0):  # other connections are not affected
            store.write("beta-co", make_grant("beta-co"))

        _release(holder)

        with store.lock("acme-ltd", timeout=5):
            store.write("acme-ltd", make_grant(), make_tokens())
    assert store.names() == ["acme-ltd", "beta-co"]


def test_a_waiter_gets_the_lock_as_soon_as_it_is_released(repo: Repo, store: PostgresStore) -> None:
    with held_by_another_process(repo, "acme-ltd") as holder:
        acquired: list[float] = []

        def wait() -> None:
            with store.lock("acme-ltd", timeout=20):
                acquired.append(time.monotonic())

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.3)
        assert acquired == []
        released = time.monotonic()
        _release(holder)
        waiter.join(timeout=20)
    assert acquired
    assert acquired[0] - released < 2  # woken by the server, not at the end of the 20 s timeout


def test_a_killed_holder_releases_its_lock(repo: Repo, store: PostgresStore) -> None:
    with held_by_another_process(repo, "acme-ltd") as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        with store.lock("acme-ltd", timeout=10):
            store.write("acme-ltd", make_grant())
    assert store.read_grant("acme-ltd") == make_grant()


def test_threads_and_stores_of_one_process_exclude_each_other(repo: Repo, database: Database) -> None:
    with PostgresStore(repo, dsn=database.dsn) as first, PostgresStore(repo, dsn=database.dsn) as second:
        with first.lock("acme-ltd"):
            with pytest.raises(LockTimeout), second.lock("acme-ltd", timeout=0.2):
                pass
            outcome: list[BaseException] = []

            def other_thread() -> None:
                try:
                    with first.lock("acme-ltd", timeout=0.2):
                        pass
                except BaseException as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join()
            assert [type(exc) for exc in outcome] == [LockTimeout]
        with second.lock("acme-ltd", timeout=1):
            pass


def test_locks_are_not_reentrant(store: PostgresStore) -> None:
    with store.lock("acme-ltd"), pytest.raises(StateError, match="already holds"), store.lock("acme-ltd"):
        pass


def test_read_modify_write_under_the_lock_loses_no_update(repo: Repo, database: Database, store: PostgresStore) -> None:
    with store.lock("acme-ltd"):
        store.write("acme-ltd", make_grant(), make_tokens())
    workers, rounds = 4, 5

    def increment() -> None:
        with PostgresStore(repo, dsn=database.dsn) as mine:
            for _ in range(rounds):
                with mine.lock("acme-ltd", timeout=30):
                    grant = mine.read_grant("acme-ltd")
                    assert grant is not None
                    time.sleep(0.002)  # widen the window a lost update would need
                    mine.write(
                        "acme-ltd", grant.model_copy(update={"consecutive_failures": grant.consecutive_failures + 1})
                    )

    threads = [threading.Thread(target=increment) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    grant = store.read_grant("acme-ltd")
    assert grant is not None
    assert grant.consecutive_failures == workers * rounds
    assert store.read_tokens("acme-ltd") == make_tokens()
    assert store.verify() == {"acme-ltd": None}


def test_lock_keys_are_stable_and_distinct(store: PostgresStore, database: Database) -> None:
    assert store.lock_key("acme-ltd") == lock_key(database.schema, "acme-ltd")
    assert lock_key("s", "acme-ltd") == lock_key("s", "acme-ltd")
    assert len({lock_key("s", "acme-ltd"), lock_key("s", "beta-co"), lock_key("t", "acme-ltd")}) == 3
    assert -(2**63) <= lock_key("s", "acme-ltd") < 2**63
