"""The machinery one refresh or health run shares across its connections.

One :class:`RunContext` per run holds the state store, the HTTP clients, the rate limiter, a provider
instance per provider, the decrypted app credentials (each file decrypted once per run, in-process)
and the counters. Connections run as asyncio tasks. A large run is split over worker processes
(:mod:`grantctl.maintenance._workers`); each runs its part with its own context.

HTTP: one ``httpx.AsyncClient`` per concurrency slot, each with a single keep-alive connection,
rather than one client whose pool holds ``concurrency`` connections. httpcore scans every
connection of a pool (a syscall per idle connection) each time a request starts or ends, so a pool
of 64 cost, measured over 1,000 requests, about 8 ms of CPU per request. Each running task owns one
slot (``_slot``), so a client never has more than one request in flight and nothing waits for a pool
connection. The clients share one TLS context and use the lean transport of
:mod:`grantctl.maintenance._transport` (httpcore's costs ~0.45 ms of CPU per request, it ~0.17 ms).

Locks are taken without a thread waiting: a non-blocking attempt, then an asyncio sleep and another
attempt. Threads blocked in ``flock`` polling could otherwise fill the pool while the tasks holding
the locks wait for a thread to persist their tokens, in this process or another one.

Threads only for what waits, and only where it pays. With a store whose reads are cheap
(:attr:`StateStore.cheap_reads`, the files store), reading manifests, credentials and state, taking
locks and encrypting a new document happen on the event loop's own thread (:meth:`RunContext.local`):
Python code in pool threads competes with the loop for the GIL, and over 1,000 refreshes that
contention cost more CPU than the work itself (4.6-5.1 ms per connection with the state work in
4 threads, 3.6-3.9 ms on the loop). Writing a document (:meth:`RunContext.write`) waits for two
fsyncs: a worker of a split run does that on its own thread too (meanwhile the other workers use the
CPU; in a pool thread each of the write's ~10 system calls has to win the GIL back from the busy loop:
~30 ms per write and ~1 ms more CPU), while a single process hands it to the pool so its event
loop keeps going.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from grantctl.errors import GrantctlError, Location, LockTimeout, ManifestError, ProviderError
from grantctl.maintenance._credentials import CredentialsCache
from grantctl.maintenance._results import RunCounters, Trace
from grantctl.maintenance._transport import LeanTransport, lean_transport_usable
from grantctl.maintenance._workers import Share
from grantctl.manifest import MANIFEST_SUFFIX, load_connection_fast
from grantctl.models import Config, Connection
from grantctl.providers import ClientCredentials, Provider, RateLimiter, get_provider
from grantctl.repo import Repo
from grantctl.sops import _yamlfast
from grantctl.state.base import StateStore
from grantctl.state.model import Grant, Tokens
from grantctl.state.plaintext import resolve_plain_scalar

T = TypeVar("T")
Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_CONCURRENCY = 64
DEFAULT_LOCK_TIMEOUT = 60.0
# A state write fsyncs the file and the directory: ~6 ms one at a time on this ext4 disk, ~2 ms each
# with 4 writers (journal commits are shared) and no better with more. More threads only add GIL
# hand-offs: measured over 1,000 refreshes, 8 threads cost ~30% more CPU than 4.
IO_THREADS = 4
# Test-only hook (see docs/refresh-and-health.md): after a token response arrives and before it is
# persisted, touch ``<path>.reached`` and sleep until killed, so a test can SIGKILL the process there.
PAUSE_HOOK_ENV = "GRANTCTL_TEST_PAUSE_AFTER_TOKEN_RESPONSE"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient provider failures (timeouts, 5xx, 429).

    ``attempts`` counts the first try. Without a Retry-After the delay doubles from ``base_delay`` up
    to ``max_delay`` with jitter, so connections that failed together do not retry in lockstep. A
    Retry-After longer than ``max_retry_after`` is not waited for: the call fails as transient.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 120.0
    # Writing rotated tokens: more patient, because giving up costs a client a new consent.
    persist_attempts: int = 5
    persist_first_delay: float = 0.2

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before try ``attempt + 1``; None when the server asks for too long a wait."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True)
class Target:
    """One connection ready for network work: its manifest, provider and decrypted app credentials."""

    name: str
    connection: Connection
    provider: Provider
    credentials: ClientCredentials  # its repr hides the secret


class RunContext:
    """Shared resources of one run; use :func:`open_run` to create and close one."""

    def __init__(
        self,
        repo: Repo,
        store: StateStore,
        *,
        new_client: Callable[[], httpx.AsyncClient],
        concurrency: int,
        limiter: RateLimiter,
        counters: RunCounters,
        clock: Clock,
        executor: ThreadPoolExecutor,
        policy: RetryPolicy,
        lock_timeout: float,
        sleep: Sleep,
        inline_writes: bool = False,
    ) -> None:
        self.repo = repo
        self.store = store
        self._new_client = new_client
        self._clients: dict[int, httpx.AsyncClient] = {}
        self.concurrency = concurrency
        self.limiter = limiter
        self.counters = counters
        self.clock = clock
        self.policy = policy
        self.lock_timeout = lock_timeout
        self.sleep = sleep
        self.started_at = clock()
        self._executor = executor
        self._inline = store.cheap_reads
        self._inline_writes = store.cheap_reads and inline_writes
        self._task_locks: dict[str, asyncio.Lock] = {}
        self._providers: dict[str, Provider] = {}
        self._credentials = CredentialsCache(self.local)

    @property
    def config(self) -> Config:
        return self.repo.config

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client of the calling task's slot (see the module docstring)."""
        slot = _slot.get()
        client = self._clients.get(slot)
        if client is None:  # created on first use: a run over 3 connections needs 3, not 64
            client = self._clients[slot] = self._new_client()
        return client

    async def aclose(self) -> None:
        """Close the HTTP clients created during the run."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def each(self, items: Sequence[str], worker: Callable[[str], Awaitable[T]], concurrency: int) -> list[T]:
        """``worker(item)`` for every item, at most ``concurrency`` at a time; results in input order."""
        slots: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(min(concurrency, self.concurrency)):
            slots.put_nowait(slot)

        async def one(item: str) -> T:
            slot = await slots.get()
            _slot.set(slot)  # each gather() task runs in its own context copy
            try:
                return await worker(item)
            finally:
                slots.put_nowait(slot)

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def io(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking function (state read or write, decryption) in the run's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)

    async def local(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func``, which reads local files or computes, right here when the store's reads are cheap.

        Otherwise (a store that talks to a server) it goes to the pool like :meth:`io`.
        """
        if self._inline:
            return func(*args)
        return await self.io(func, *args)

    async def write(self, name: str, grant: Grant, tokens: Tokens | None) -> None:
        """``store.write``, returning once the document is on disk (fsynced).

        The document is prepared by :meth:`local`; it is written (temp file, fsync, rename, fsync of
        the directory) right here in a worker of a split run, in the pool otherwise (see
        :func:`open_run`).
        """
        commit = await self.local(self.store.prepare_write, name, grant, tokens)
        if self._inline_writes:
            commit()
        else:
            await self.io(commit)

    # -- connections -----------------------------------------------------------------------------------

    async def connection(self, name: str) -> Connection:
        """``name``'s manifest (``ManifestError`` when it does not load)."""
        return await self.local(load_manifest, self.repo.manifest_path(name))

    async def target(self, name: str, connection: Connection | None = None) -> Target:
        """``name``'s manifest, provider and app credentials (each credentials file decrypted once per run)."""
        connection = connection or await self.connection(name)
        provider = self.provider(connection.spec.provider)
        credentials = await self._credentials.get(self.repo.credentials_path(connection))
        return Target(name, connection, provider, credentials)

    def provider(self, name: str) -> Provider:
        """The provider ``name`` with the repo's endpoint overrides, on this run's clock."""
        if name not in self._providers:
            overrides = self.config.providers.get(name)  # type: ignore[call-overload]
            mapping = overrides.model_dump(by_alias=True, exclude_none=True) if overrides else {}
            configured = get_provider(name, mapping, source=self.repo.root / "grantctl.yaml")
            # Rebuilt with our clock so token expiry and Retry-After dates follow ``now`` in tests.
            self._providers[name] = type(configured)(
                configured.endpoints, pkce=configured.pkce, timeout=configured.timeout, clock=self.clock
            )
        return self._providers[name]

    # -- locks -----------------------------------------------------------------------------------------

    @asynccontextmanager
    async def locked(self, name: str, then: Callable[[], T]) -> AsyncIterator[T]:
        """Hold ``name``'s lock (exclusive across processes) without tying up a thread while waiting.

        ``then`` (e.g. reading the state) runs right after the lock is taken, in the same call (see
        :meth:`local`). Its result is what the ``with`` statement binds.
        """
        # Tasks of this run wait for each other here first: taken on the event loop's thread, the
        # store's lock would see a second task of the same thread as a reentrant (refused) attempt.
        async with self._task_locks.setdefault(name, asyncio.Lock()):
            lock, value = await self._acquire(name, then)
            try:
                yield value
            finally:
                await self.local(lock.__exit__, None, None, None)

    async def _acquire(self, name: str, then: Callable[[], T]) -> tuple[Any, T]:
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.005
        while True:
            try:
                # One non-blocking attempt (taking a file lock costs a few syscalls); the waiting
                # happens here, in asyncio, so no thread ever blocks on a lock.
                return await self.local(_enter_then, self.store.lock(name, timeout=0), then)
            except LockTimeout:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockTimeout(
                        f"{name}: another grantctl run has held this connection's lock for over "
                        f"{self.lock_timeout:g} s; let it finish and run this command again"
                    ) from None
                await asyncio.sleep(min(pause, remaining))
                pause = min(pause * 2, 0.1)

    # -- provider calls --------------------------------------------------------------------------------

    async def call(
        self,
        target: Target,
        operation: Callable[[], Awaitable[T]],
        *,
        tenant: str | None,
        what: str,
        trace: Trace,
    ) -> T:
        """Run one provider operation inside the rate limits, retrying transient failures.

        Each attempt is counted and each retry noted in ``trace``; the last failure is raised as the provider's
        :class:`ProviderError` (``transient`` tells a caller whether it was an outage or an answer).
        """
        attempt = 0
        while True:
            attempt += 1
            trace.attempts += 1
            try:
                async with self.limiter.slot(target.provider.name, tenant=tenant, app=target.credentials.client_id):
                    return await operation()
            except ProviderError as exc:
                if exc.transient and exc.status is None:
                    self.counters.record_no_answer()
                delay = self.policy.delay(attempt, exc.retry_after) if exc.transient else None
                if delay is None or attempt >= self.policy.attempts:
                    if exc.transient:
                        self.counters.transient_failures += 1
                    raise
                self.counters.retries += 1
                trace.note(what, f"{short_error(exc)}; retry {attempt} of {self.policy.attempts - 1} in {delay:.1f} s")
                await self.sleep(delay)

    def pause_if_requested(self) -> None:
        """The crash-test hook: see :data:`PAUSE_HOOK_ENV`. Does nothing unless the variable is set."""
        path = os.environ.get(PAUSE_HOOK_ENV)
        if not path:
            return
        Path(f"{path}.reached").touch()
        while True:  # blocks the whole process on purpose: nothing may persist before the kill
            time.sleep(1)


def load_manifest(path: Path) -> Connection:
    """:func:`~grantctl.manifest.load_connection_fast`, with the fast reader of sops' layout first.

    That reader types scalars as libyaml does here (:func:`grantctl.state.plaintext.resolve_plain_scalar`)
    and declines anything it cannot vouch for, so where it answers the document is the one libyaml
    would give, at half the cost, for the one manifest read per connection. Any problem, and any
    file it declines (comments, non-ASCII text...), goes the reference way, which also words errors.
    """
    try:
        document = _yamlfast.load(_read_manifest(path), resolve=resolve_plain_scalar)
    except (OSError, UnicodeDecodeError):
        document = None
    if document is not None:
        try:
            connection = Connection.model_validate(document)
        except ValidationError:
            connection = None
        if connection is not None and connection.name == path.name.removesuffix(MANIFEST_SUFFIX):
            return connection
    return load_connection_fast(path)


def _read_manifest(path: Path) -> str:
    with open(path, "rb") as handle:  # bytes, as load_fast gets them: no newline translation
        return handle.read().decode("utf-8")


def _enter_then(lock: Any, then: Callable[[], T]) -> tuple[Any, T]:
    """Take ``lock``, then run ``then``; a failing ``then`` releases the lock again."""
    lock.__enter__()
    try:
        return lock, then()
    except BaseException:
        lock.__exit__(None, None, None)
        raise


def short_error(exc: ProviderError) -> str:
    """The error's message without the provider prefix (results already say which connection)."""
    return str(exc).removeprefix(f"{exc.provider}: ")


@asynccontextmanager
async def open_run(
    repo: Repo,
    store: StateStore,
    *,
    concurrency: int,
    clock: Clock | None = None,
    policy: RetryPolicy | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
    share: Share | None = None,
) -> AsyncIterator[RunContext]:
    """Create the shared resources of a run and close them afterwards.

    ``transport`` replaces the network (``httpx.MockTransport`` in unit tests). ``share``: this
    process runs one part of a run split over worker processes (``concurrency`` is then already its
    part), so it keeps to its share of each provider's rate limits.
    """
    if concurrency < 1:
        raise GrantctlError("--concurrency must be at least 1")
    from grantctl.providers import PROVIDERS

    policy = policy or RetryPolicy()
    counters = RunCounters()
    share = share or Share()
    limiter = RateLimiter(
        {name: share.of_limits(cls.limits) for name, cls in PROVIDERS.items()},
        sleep=sleep,
        max_wait=policy.max_retry_after,
    )

    async def count(response: httpx.Response) -> None:
        counters.record_status(response.status_code)

    pool = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = shared_tls_context()
    hooks = {"response": [limiter.on_response, count]}

    lean = transport is None and lean_transport_usable()

    def new_client() -> httpx.AsyncClient:
        # httpx's client layer with a lean transport (see _transport); httpx's own when a proxy is set
        own = LeanTransport(tls) if lean else transport
        return httpx.AsyncClient(limits=pool, verify=tls, transport=own, event_hooks=hooks)

    executor = ThreadPoolExecutor(max_workers=min(IO_THREADS, concurrency), thread_name_prefix="grantctl-io")
    ctx = RunContext(
        repo,
        store,
        new_client=new_client,
        concurrency=concurrency,
        limiter=limiter,
        counters=counters,
        clock=clock or _utc_now,
        executor=executor,
        policy=policy,
        lock_timeout=lock_timeout,
        sleep=sleep,
        # A worker of a split run waits for its own fsyncs: meanwhile the other workers use the CPU.
        # One process hands them to the pool, so its event loop keeps going (see the module docstring).
        inline_writes=share.count > 1,
    )
    try:
        yield ctx
    finally:
        try:
            await ctx.aclose()
        finally:
            executor.shutdown(wait=True)


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """One TLS context per process for every client (loading the CA bundle takes ~20 ms).

    Made before a run forks its workers, they all inherit it rather than each loading it again.
    """
    return ssl.create_default_context()


def connection_names(repo: Repo, names: Sequence[str]) -> list[str]:
    """The connections to work on: ``names`` (each must have a manifest), or every manifest; sorted."""
    if not names:
        return sorted(path.name.removesuffix(".yaml") for path in repo.manifest_paths())
    unknown = sorted({name for name in names if not repo.manifest_path(name).is_file()})
    if unknown:
        raise ManifestError(
            Location(repo.connections_dir),
            f"no manifest for {', '.join(unknown)}: check the name(s) against `ls connections/`",
        )
    return sorted(set(names))


_slot: contextvars.ContextVar[int] = contextvars.ContextVar("grantctl_run_slot", default=0)


def _utc_now() -> datetime:
    return datetime.now(UTC)
