"""The state store contract, and the in-memory store used by tests.

Callers never touch files or tables directly; they go through a :class:`StateStore`:

    with store.lock("acme-ltd"):
        tokens = store.read_tokens("acme-ltd")       # needs the key
        new = provider.refresh(...)
        store.write("acme-ltd", grant, new_tokens)   # persisted before anything else happens

Rules every backend keeps:
- ``read_grant`` / ``read_grants`` need no key (plan, audit).
- ``write`` and ``delete`` are only allowed while holding that connection's lock, are atomic (a reader
  sees the old document or the new one, never a mix), and a failed write leaves the old document.
- ``write(..., tokens=None)`` keeps the stored tokens as they are.
- ``lock`` is exclusive across processes (and, for shared backends, across machines) and gives up
  with :class:`~grantctl.errors.LockTimeout` after ``timeout`` seconds.
"""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import ClassVar

from grantctl.errors import LockTimeout, StateError
from grantctl.state.model import Grant, Tokens

DEFAULT_LOCK_TIMEOUT = 30.0


class StateStore(ABC):
    """Where observed grants and their tokens live."""

    #: True when reads, lock attempts with ``timeout=0`` and :meth:`prepare_write` only touch local
    #: files the OS caches (or memory): they never wait, so code running an event loop may call them
    #: on the loop's own thread, and hand only the function :meth:`prepare_write` returns (which
    #: fsyncs) to a worker thread. False for a store that talks to a server.
    cheap_reads: ClassVar[bool] = False
    #: True when a copy of this store in a forked child process works on the same data, and its
    #: locks exclude the parent's (files and ``flock``): a run may then be split over worker
    #: processes. False for a store in memory, or one holding a server connection a child must not share.
    fork_safe: ClassVar[bool] = False

    @abstractmethod
    def names(self) -> list[str]:
        """Names of all connections that have a state document, sorted."""

    @abstractmethod
    def read_grant(self, name: str) -> Grant | None:
        """The plaintext grant of ``name``, or None when there is no state yet. Needs no key."""

    def read_grants(self) -> dict[str, Grant]:
        """Every grant, by name. Backends override this when they can do it in bulk."""
        grants = {}
        for name in self.names():
            grant = self.read_grant(name)
            if grant is not None:
                grants[name] = grant
        return grants

    @abstractmethod
    def read_tokens(self, name: str) -> Tokens | None:
        """The decrypted tokens of ``name`` (None when there are none). Needs the key."""

    @abstractmethod
    def lock(self, name: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> AbstractContextManager[None]:
        """Hold ``name``'s exclusive lock for the duration of the ``with`` block."""

    @abstractmethod
    def write(self, name: str, grant: Grant, tokens: Tokens | None = None) -> None:
        """Atomically replace ``name``'s document; ``tokens=None`` keeps the stored tokens."""

    def prepare_write(self, name: str, grant: Grant, tokens: Tokens | None = None) -> Callable[[], None]:
        """:meth:`write` in two steps: this call does the work, the function it returns stores it.

        Only the returned function waits on the disk (or the network). Both steps need ``name``'s
        lock; nothing is stored unless the function is called. Backends that cannot split a write
        return a function that does all of it.
        """
        return functools.partial(self.write, name, grant, tokens)

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove ``name``'s document (orphan clean-up after a revoke)."""

    def verify(self) -> dict[str, str | None]:
        """Per connection, None when the document's integrity checks out, else what is wrong."""
        return dict.fromkeys(self.names())


class MemoryStore(StateStore):
    """A store in a dict, for tests and for dry runs. Locks are per-process only."""

    cheap_reads = True

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}
        self._tokens: dict[str, Tokens] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._held: set[str] = set()
        self._guard = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._grants)

    def read_grant(self, name: str) -> Grant | None:
        return self._grants.get(name)

    def read_tokens(self, name: str) -> Tokens | None:
        return self._tokens.get(name)

    @contextmanager
    def lock(self, name: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise LockTimeout(f"{name}: another process holds this connection's lock; try again shortly")
        self._held.add(name)
        try:
            yield
        finally:
            self._held.discard(name)
            lock.release()

    def _require_lock(self, name: str) -> None:
        if name not in self._held:
            raise StateError(f"{name}: write without holding the connection's lock (a bug in grantctl)")

    def write(self, name: str, grant: Grant, tokens: Tokens | None = None) -> None:
        self._require_lock(name)
        self._grants[name] = grant
        if tokens is not None:
            self._tokens[name] = tokens

    def delete(self, name: str) -> None:
        self._require_lock(name)
        self._grants.pop(name, None)
        self._tokens.pop(name, None)
