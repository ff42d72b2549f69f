"""Per-connection locks that hold across processes and across threads of one process.

A lock is ``fcntl.flock`` on ``state/.locks/<name>.lock``. ``flock`` belongs to an open file
description, so two processes (or two opens in one process) exclude each other, and the kernel
drops the lock when its holder dies: a crashed refresh never leaves a connection locked.

Inside one process a :class:`threading.Lock` per name comes first, so threads queue on it instead
of polling the file (asyncio refresh takes locks from worker threads).

    locks = LockDirectory(repo.state_dir / ".locks")
    with locks.hold("acme-ltd", timeout=5):
        ...  # nobody else, in any process, holds acme-ltd
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grantctl.errors import LockTimeout, StateError

LOCKS_DIR = ".locks"
LOCK_SUFFIX = ".lock"

# Polling starts fast (a write holds a lock ~1 ms) and backs off so a long wait costs little CPU.
_FIRST_POLL = 0.002
_MAX_POLL = 0.05
# pids fit in 7 digits on Linux (pid_max <= 2**22); earlier versions wrote "<pid>\n", never longer
_HOLDER_WIDTH = 15


class LockDirectory:
    """Exclusive named locks backed by files in ``directory`` (created on first use)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._thread_locks: dict[str, threading.Lock] = {}
        self._owners: dict[str, int] = {}
        self._guard = threading.Lock()

    def path(self, name: str) -> Path:
        """The lock file of ``name``."""
        return self.directory / f"{name}{LOCK_SUFFIX}"

    @contextmanager
    def hold(self, name: str, timeout: float) -> Iterator[None]:
        """Hold ``name``'s lock for the ``with`` block; :class:`LockTimeout` after ``timeout`` seconds."""
        deadline = time.monotonic() + max(timeout, 0.0)
        if self._owners.get(name) == threading.get_ident():
            # Waiting would only time out: fail at once, at the line that has the bug.
            raise StateError(f"{name}: this thread already holds the connection's lock (locks are not reentrant)")
        thread_lock = self._thread_lock(name)
        if not thread_lock.acquire(timeout=max(timeout, 0.0)):
            raise self._timeout(name, timeout, holder=f"another thread of this process (pid {os.getpid()})")
        try:
            fd = self._acquire_file(name, deadline, timeout)
            self._owners[name] = threading.get_ident()
            try:
                yield
            finally:
                del self._owners[name]
                # Closing the descriptor releases the flock; the file stays so that a waiter that
                # already opened it keeps locking the same inode (unlinking here would let two
                # processes hold "the" lock at once).
                os.close(fd)
        finally:
            thread_lock.release()

    def _thread_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._thread_locks.setdefault(name, threading.Lock())

    def _acquire_file(self, name: str, deadline: float, timeout: float) -> int:
        fd = self._open(name)
        try:
            self._poll_flock(fd, deadline)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise self._timeout(name, timeout, holder=holder) from None
        except BaseException:
            os.close(fd)
            raise
        _record_holder(fd)
        return fd

    def _open(self, name: str) -> int:
        path, flags = self.path(name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            try:
                return os.open(path, flags, 0o600)
            except FileNotFoundError:  # the first lock ever taken here: no directory yet
                self.directory.mkdir(parents=True, exist_ok=True)
                return os.open(path, flags, 0o600)
        except OSError as exc:
            raise StateError(
                f"{self.path(name)}: cannot open the lock file ({exc.strerror}); "
                "check that the state directory is writable"
            ) from None

    @staticmethod
    def _poll_flock(fd: int, deadline: float) -> None:
        """Take the flock, retrying until ``deadline``; re-raises the last BlockingIOError on timeout."""
        pause = _FIRST_POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, _MAX_POLL)
            except OSError as exc:  # pragma: no cover - e.g. a filesystem without flock support
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    raise BlockingIOError(exc.errno, exc.strerror) from None
                raise StateError(f"cannot lock ({exc.strerror}); is the state directory on NFS?") from None

    def _timeout(self, name: str, timeout: float, *, holder: str) -> LockTimeout:
        return LockTimeout(
            f"{name}: the connection is locked by {holder} and was not released within {timeout:g}s "
            f"(lock file {self.path(name)}); wait for that grantctl run (e.g. a refresh) to finish "
            "and try again"
        )


def _record_holder(fd: int) -> None:
    """Write our pid into the lock file so a process that times out can say who holds it.

    Always the same width, so it overwrites any earlier pid without an ``ftruncate`` first (a
    truncate is a journaled metadata change: up to milliseconds per lock on ext4).
    """
    with contextlib.suppress(OSError):  # informational only, never worth failing a lock over
        os.pwrite(fd, f"{os.getpid():>{_HOLDER_WIDTH}}\n".encode(), 0)


def _read_holder(fd: int) -> str:
    try:
        # the first line: a longer record from before may follow it (records are never truncated)
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").split("\n", 1)[0].strip()
    except OSError:  # pragma: no cover - informational only
        pid = ""
    return f"another process (pid {pid})" if pid.isdigit() else "another process"
