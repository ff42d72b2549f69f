from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grantctl.errors import LockTimeout, StateError
from grantctl.repo import Repo
from grantctl.state.files import FilesStore

HOLDER = """
import sys
from pathlib import Path
from grantctl.repo import Repo
from grantctl.state.files import FilesStore

store = FilesStore(Repo.load(Path(sys.argv[1])))
with store.lock(sys.argv[2], timeout=10):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def holder(repo: Repo) -> Iterator[subprocess.Popen[str]]:
    """Another process holding acme-ltd's lock until its stdin is closed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(repo.root), "acme-ltd"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def test_lock_is_exclusive_across_processes(repo: Repo, holder: subprocess.Popen[str]) -> None:
    store = FilesStore(repo)
    started = time.monotonic()
    with pytest.raises(LockTimeout) as caught, store.lock("acme-ltd", timeout=0.3):
        pytest.fail("acquired a lock another process holds")
    waited = time.monotonic() - started
    assert 0.3 <= waited < 2.0
    message = str(caught.value)
    assert "acme-ltd" in message
    assert f"pid {holder.pid}" in message
    assert "0.3s" in message

    assert holder.stdin is not None
    holder.stdin.close()  # the holder leaves its `with` block
    with store.lock("acme-ltd", timeout=10):
        assert holder.wait(timeout=10) == 0


def test_waiter_gets_the_lock_as_soon_as_it_is_released(repo: Repo, holder: subprocess.Popen[str]) -> None:
    store = FilesStore(repo)
    assert holder.stdin is not None
    threading.Timer(0.3, holder.stdin.close).start()
    started = time.monotonic()
    with store.lock("acme-ltd", timeout=10):
        assert 0.2 < time.monotonic() - started < 5


def test_lock_of_a_killed_process_is_released(repo: Repo, holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait(timeout=10)
    with FilesStore(repo).lock("acme-ltd", timeout=5):
        pass


def test_other_connections_are_not_blocked(repo: Repo, holder: subprocess.Popen[str]) -> None:
    with FilesStore(repo).lock("beta-co", timeout=0.5):
        pass


def test_lock_is_exclusive_across_threads(repo: Repo) -> None:
    store = FilesStore(repo)
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with store.lock("acme-ltd", timeout=5):
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(5)
        with pytest.raises(LockTimeout, match="another thread"), store.lock("acme-ltd", timeout=0.1):
            pytest.fail("two threads held one lock")
    finally:
        leave.set()
        thread.join(5)
    with store.lock("acme-ltd", timeout=1):
        pass


def test_two_stores_in_one_process_exclude_each_other(repo: Repo) -> None:
    """Two opens of the lock file are two flock holders, even inside one process."""
    first, second = FilesStore(repo), FilesStore(repo)
    with first.lock("acme-ltd", timeout=1), pytest.raises(LockTimeout), second.lock("acme-ltd", timeout=0.1):
        pytest.fail("two stores held one lock")


def test_many_threads_serialise(repo: Repo) -> None:
    store = FilesStore(repo)
    active = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal active, most
        with store.lock("acme-ltd", timeout=10):
            with guard:
                active += 1
                most = max(most, active)
            time.sleep(0.002)
            with guard:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most == 1


def test_lock_files_live_in_state_locks(repo: Repo) -> None:
    with FilesStore(repo).lock("acme-ltd", timeout=1):
        assert (repo.state_dir / ".locks" / "acme-ltd.lock").is_file()
    assert FilesStore(repo).names() == []  # lock files are not state


@pytest.mark.parametrize("name", ["../escape", "Acme", "a/b", "", "-lead"])
def test_names_that_are_not_slugs_are_refused(repo: Repo, name: str, tmp_path: Path) -> None:
    with pytest.raises(StateError, match="not a connection name"), FilesStore(repo).lock(name, timeout=0.1):
        pass
    assert not (repo.root.parent / "escape.lock").exists()


def test_taking_a_held_lock_again_in_the_same_thread_fails_at_once(repo: Repo) -> None:
    store = FilesStore(repo)
    started = time.monotonic()
    with (
        store.lock("acme-ltd", timeout=5),
        pytest.raises(StateError, match="not reentrant"),
        store.lock("acme-ltd", timeout=5),
    ):
        pass
    assert time.monotonic() - started < 1
    with store.lock("acme-ltd", timeout=1):  # and the first hold was released properly
        pass
