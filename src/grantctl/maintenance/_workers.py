"""One refresh or health run split over a few worker processes.

Why: both commands are CPU-bound in Python (parsing, decrypting and re-encrypting state files,
HTTP), so one process uses one core however many connections wait on the network. Threads do not
help: they share the GIL, and handing it back and forth cost more CPU than it saved.

How: the connections are dealt out round-robin into one part per worker. The process forks a child
per extra part (after every import, before any thread or event loop exists, so the child starts
with nothing half-done) and works on the first part itself. Each part is an ordinary run over its
own connections with its :class:`Share` of ``--concurrency`` and of the rate limits, so the parts
together stay within both. Nothing else has to be coordinated: every connection is in exactly one
part, and the per-connection locks (``flock``) already keep concurrent processes apart. A child
sends its results and counters back through a pipe and exits; the parent merges them in the
original order, so output and exit code are the same as with one process.

A child dies with its parent (``PR_SET_PDEATHSIG``): killing grantctl kills the whole run, as it
would kill a single process. The worker count comes from ``GRANTCTL_WORKERS`` (``1`` turns the
split off), else from the usable CPUs (see :func:`worker_count`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeVar

from grantctl.errors import GrantctlError
from grantctl.maintenance._results import RunCounters
from grantctl.providers.base import RateLimits

R = TypeVar("R")

WORKERS_ENV = "GRANTCTL_WORKERS"
# Two processes per core: a worker's core idles while its event loop waits for an fsync or for the
# next answers, and another worker fills that time (measured on 2 cores, N=1,000: 3 or 4 workers
# gave ratios of 1.75-1.9, 2 workers 1.75-2.2). Beyond a few, per-worker costs (one more process,
# memory pages copied after the fork, credentials decrypted once per worker) outweigh the gain.
WORKERS_PER_CPU = 2
MAX_WORKERS = 4
# Below this many connections per worker a second process costs more than it saves.
MIN_CONNECTIONS_PER_WORKER = 100
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class Share:
    """Part ``index`` of ``count``: what one worker may use of the run's concurrency and rate limits."""

    index: int = 0
    count: int = 1

    def of_concurrency(self, concurrency: int) -> int:
        """This part's slots: ``concurrency`` dealt out so the parts add up to it exactly."""
        return concurrency // self.count + (1 if self.index < concurrency % self.count else 0)

    def of_limits(self, limits: RateLimits) -> RateLimits:
        """Each budget divided by the number of parts (at least 1), so all parts together keep to it."""
        if self.count == 1:
            return limits
        return RateLimits(
            per_tenant_concurrency=max(1, limits.per_tenant_concurrency // self.count),
            per_tenant_per_minute=max(1, limits.per_tenant_per_minute // self.count),
            per_app_per_minute=max(1, limits.per_app_per_minute // self.count),
        )


@dataclass(frozen=True)
class PartResult(Generic[R]):
    """What one part produced: per-connection results (in its input order) and its counters."""

    results: list[R]
    counters: RunCounters


RunPart = Callable[[list[str], Share], PartResult[R]]


def worker_count(connections: int, concurrency: int, *, env: dict[str, str] | None = None) -> int:
    """How many processes to use for ``connections`` connections (1: no split).

    ``GRANTCTL_WORKERS`` wins when set (still at most one per connection and per concurrency slot);
    otherwise :data:`WORKERS_PER_CPU` per usable CPU, up to :data:`MAX_WORKERS`, and only with
    :data:`MIN_CONNECTIONS_PER_WORKER` connections or more each.
    """
    environ = os.environ if env is None else env
    requested = environ.get(WORKERS_ENV, "").strip()
    if requested:
        try:
            wanted = int(requested)
        except ValueError:
            raise GrantctlError(f"{WORKERS_ENV}={requested!r} is not a number: set it to 1 or more") from None
        if wanted < 1:
            raise GrantctlError(f"{WORKERS_ENV} must be at least 1 (1 runs everything in one process)")
        return max(1, min(wanted, connections, concurrency))
    automatic = min(WORKERS_PER_CPU * _usable_cpus(), MAX_WORKERS, connections // MIN_CONNECTIONS_PER_WORKER)
    return max(1, min(automatic, concurrency))


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Forking is safe here: Linux, and no other thread whose state the child would inherit half-done."""
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


def run_parts(names: Sequence[str], workers: int, run_part: RunPart[R]) -> PartResult[R]:
    """``run_part`` over ``names`` split into ``workers`` parts, one process each; merged in ``names`` order.

    With one worker (or where forking is not safe) this is just ``run_part(names, Share())``. An
    exception in a child is raised here once every part has finished.
    """
    names = list(names)
    if workers <= 1 or len(names) < 2 or not can_fork():
        return run_part(names, Share())
    workers = min(workers, len(names))
    parts = [names[index::workers] for index in range(workers)]
    _flush_standard_streams()  # or the children would print what the parent had buffered
    # Shared memory pages are copied when either process first writes to them. The cyclic GC
    # writes to every object it scans; frozen, the objects loaded so far are never scanned again.
    gc.freeze()
    children: list[_Child] = []
    for index in range(1, workers):
        try:
            children.append(_fork(parts[index], Share(index, workers), run_part))
        except OSError:  # no process to spare (EAGAIN, ENOMEM): the parts left over run here
            break
    try:
        own = run_part(parts[0], Share(0, workers))
        leftover = [run_part(parts[index], Share(index, workers)) for index in range(len(children) + 1, workers)]
    except BaseException:
        for child in children:  # they finish their parts (and release their locks) before we go
            _collect(child)
        raise
    collected: list[PartResult[R]] = []
    failures: list[BaseException] = []
    for child in children:
        outcome: PartResult[R] | BaseException = _collect(child)
        if isinstance(outcome, BaseException):
            failures.append(outcome)
        else:
            collected.append(outcome)
    if failures:
        raise failures[0]
    return _merge(names, [own, *collected, *leftover], parts)


@dataclass(frozen=True)
class _Child:
    pid: int
    reader: int
    names: tuple[str, ...]


def _fork(part: list[str], share: Share, run_part: RunPart[R]) -> _Child:
    reader, writer = os.pipe()
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(reader)
        os.close(writer)
        raise
    if pid == 0:  # the child: never returns
        os.close(reader)
        _die_with(parent)
        _run_child(part, share, run_part, writer)
    os.close(writer)
    return _Child(pid, reader, tuple(part))


def _run_child(part: list[str], share: Share, run_part: RunPart[R], writer: int) -> NoReturn:
    status = 0
    try:
        payload = pickle.dumps(("ok", run_part(part, share)))
    except BaseException as exc:  # everything must reach the parent; the child never unwinds further
        payload, status = _failure_payload(exc), 1
    try:
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(payload)
    finally:
        # os._exit: no atexit handlers, no flushing of buffers inherited from the parent.
        os._exit(status)


def _failure_payload(exc: BaseException) -> bytes:
    if isinstance(exc, GrantctlError | OSError | KeyboardInterrupt):
        with contextlib.suppress(Exception):
            pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes; some exceptions cannot be rebuilt
            return pickle.dumps(("raise", exc))
        message = str(exc) if isinstance(exc, GrantctlError) else type(exc).__name__
        return pickle.dumps(("raise", GrantctlError(message)))
    traceback.print_exc()  # a bug: show it as a single process would, then fail the run
    return pickle.dumps(("raise", GrantctlError(f"a worker process failed with {type(exc).__name__} (see above)")))


def _die_with(parent: int) -> None:
    """Ask Linux to SIGKILL this child when its parent dies (a killed grantctl leaves nothing behind)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: the child still finishes its part
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _collect(child: _Child) -> PartResult[R] | BaseException:
    """The child's part, or what went wrong with it (after the child has exited)."""
    with os.fdopen(child.reader, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(child.pid, 0)
    if not payload:
        return GrantctlError(
            f"a worker process (pid {child.pid}) {_how_it_ended(status)} before reporting on "
            f"{len(child.names)} connection(s) ({_sample(child.names)}); their state files are consistent "
            "(every write is atomic): run the command again"
        )
    kind, value = pickle.loads(payload)  # noqa: S301 - our own child process, through a private pipe
    if kind == "raise":
        failure: BaseException = value
        return failure
    result: PartResult[R] = value
    return result


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _sample(names: Sequence[str]) -> str:
    shown = ", ".join(names[:3])
    return f"{shown}, ..." if len(names) > 3 else shown


def _merge(names: list[str], parts: list[PartResult[R]], split: list[list[str]]) -> PartResult[R]:
    by_name: dict[str, R] = {}
    for part, part_names in zip(parts, split, strict=True):
        by_name.update(zip(part_names, part.results, strict=True))
    return PartResult([by_name[name] for name in names], merge_counters([part.counters for part in parts]))


def merge_counters(counters: Sequence[RunCounters]) -> RunCounters:
    """The counters of several parts of one run, added up."""
    total = RunCounters()
    for part in counters:
        total.calls += part.calls
        total.retries += part.retries
        total.rate_limited += part.rate_limited
        total.transient_failures += part.transient_failures
        total.persist_retries += part.persist_retries
        for status, count in part.by_status.items():
            total.by_status[status] = total.by_status.get(status, 0) + count
    return total


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def workers_for_run(
    selected: Sequence[str], concurrency: int, *, requested: int | None, injected: bool, fork_safe: bool
) -> int:
    """How many processes ``refresh``/``health`` split a run over.

    Always 1 with an injected store or transport (they live in this process only) and with a store
    that is not fork-safe; else ``requested`` or :func:`worker_count`.
    """
    if injected or not fork_safe:
        return 1
    return requested if requested is not None else worker_count(len(selected), concurrency)
