"""Splitting a run over worker processes: the same results, exit codes and output as one process."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from grantctl.errors import GrantctlError, StateError
from grantctl.maintenance import PAUSE_HOOK_ENV, RunCounters
from grantctl.maintenance._workers import (
    WORKERS_ENV,
    PartResult,
    Share,
    merge_counters,
    run_parts,
    worker_count,
)
from grantctl.providers.xero import XeroProvider
from grantctl.state.model import Tokens

NAMES = [f"conn-{i:03d}" for i in range(11)]


def _report(stdout: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(stdout)
    report.pop("generatedAt")
    return report


def _without_timing(report: dict[str, Any]) -> dict[str, Any]:
    """The report minus what differs between any two runs (retry delays are random)."""
    for item in report["connections"]:
        item.pop("evidence", None)
    return report


# -- the split itself ------------------------------------------------------------------------------------


def test_concurrency_is_dealt_out_exactly() -> None:
    for concurrency in (1, 2, 5, 63, 64):
        for count in range(1, 5):
            shares = [Share(index, count).of_concurrency(concurrency) for index in range(count)]
            assert sum(shares) == concurrency
            assert max(shares) - min(shares) <= 1


def test_each_worker_keeps_to_its_share_of_the_rate_limits() -> None:
    limits = XeroProvider.limits
    assert Share().of_limits(limits) == limits
    half = Share(1, 2).of_limits(limits)
    assert half.per_app_per_minute * 2 <= limits.per_app_per_minute
    assert half.per_tenant_per_minute * 2 <= limits.per_tenant_per_minute
    assert half.per_tenant_concurrency * 2 <= limits.per_tenant_concurrency
    tiny = Share(0, 8).of_limits(limits)
    assert tiny.per_tenant_concurrency == 1  # never zero: a worker must be able to make a call


def test_worker_count_follows_the_environment_then_the_machine() -> None:
    assert worker_count(1000, 64, env={WORKERS_ENV: "3"}) == 3
    assert worker_count(2, 64, env={WORKERS_ENV: "3"}) == 2  # never more than connections
    assert worker_count(1000, 2, env={WORKERS_ENV: "3"}) == 2  # nor than concurrency slots
    assert worker_count(1000, 64, env={WORKERS_ENV: "1"}) == 1
    assert worker_count(50, 64, env={}) == 1  # too few connections to be worth a process
    assert 1 <= worker_count(10_000, 64, env={}) <= 4
    for bad in ("0", "two"):
        with pytest.raises(GrantctlError, match=WORKERS_ENV):
            worker_count(1000, 64, env={WORKERS_ENV: bad})


def test_counters_of_the_parts_add_up() -> None:
    first, second = RunCounters(), RunCounters()
    for status in (200, 200, 429):
        first.record_status(status)
    second.record_status(200)
    second.record_no_answer()
    second.retries, second.transient_failures, second.persist_retries = 2, 1, 1
    total = merge_counters([first, second])
    assert total.as_dict() == {
        "calls": 5,
        "retries": 2,
        "rateLimited": 1,
        "transientFailures": 1,
        "persistRetries": 1,
        "byStatus": {"200": 3, "429": 1, "none": 1},
    }


def _single_threaded() -> None:
    if threading.active_count() != 1:
        pytest.skip("another thread is running in this test process: run_parts would not fork")


def _part(names: list[str], share: Share) -> PartResult[tuple[str, int, int]]:
    counters = RunCounters()
    counters.record_status(200)
    return PartResult([(name, os.getpid(), share.count) for name in names], counters)


def test_parts_run_in_their_own_processes_and_come_back_in_order() -> None:
    _single_threaded()
    run = run_parts(NAMES, 3, _part)
    assert [name for name, _, _ in run.results] == NAMES
    pids = {pid for _, pid, _ in run.results}
    assert len(pids) == 3
    assert os.getpid() in pids  # the parent works on a part too
    assert {count for _, _, count in run.results} == {3}
    assert run.counters.calls == 3


def test_parts_that_get_no_process_run_in_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    _single_threaded()
    real_fork, forks = os.fork, []

    def fork_once() -> int:
        if forks:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", fork_once)
    run = run_parts(NAMES, 3, _part)
    assert [name for name, _, _ in run.results] == NAMES
    assert len({pid for _, pid, _ in run.results}) == 2  # the parent ran its own part and the third
    assert run.counters.calls == 3


def test_one_worker_runs_everything_here() -> None:
    run = run_parts(NAMES, 1, _part)
    assert {pid for _, pid, _ in run.results} == {os.getpid()}
    assert [name for name, _, _ in run.results] == NAMES


def test_an_error_in_a_worker_is_raised_in_the_parent() -> None:
    _single_threaded()

    def failing(names: list[str], share: Share) -> PartResult[str]:
        if share.index == 1:
            raise StateError(f"{names[0]}: disk full (simulated)")
        return PartResult(names, RunCounters())

    with pytest.raises(StateError, match=f"{NAMES[1]}: disk full"):
        run_parts(NAMES, 2, failing)


def test_a_worker_that_dies_is_reported_with_its_connections() -> None:
    _single_threaded()

    def dying(names: list[str], share: Share) -> PartResult[str]:
        if share.index == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return PartResult(names, RunCounters())

    with pytest.raises(GrantctlError, match="was killed by signal 9") as caught:
        run_parts(NAMES, 2, dying)
    assert NAMES[1] in str(caught.value)
    assert "run the command again" in str(caught.value)


# -- whole commands, as separate processes ------------------------------------------------------------------


def _env(workers: int, **extra: str) -> dict[str, str]:
    return {**os.environ, WORKERS_ENV: str(workers), **extra}


def test_refresh_and_health_split_over_workers_report_as_one_process(fleet: Any, grantctl: Any) -> None:
    f = fleet(12, no_rights=(4,))
    runner = grantctl(f)
    dead = f.names[7]  # the provider refuses its refresh token: invalid_grant
    f.write_state(dead, tokens=Tokens(refresh_token="a-refresh-token-the-provider-never-issued"))
    split = runner.start("refresh", "--format", "json", "--concurrency", "6", env=_env(3))
    stdout, stderr = split.communicate(timeout=120)
    assert split.returncode == 2, stderr  # one connection needs a person
    report = _report(stdout)
    outcomes = {item["name"]: item["outcome"] for item in report["connections"]}
    assert [item["name"] for item in report["connections"]] == sorted(f.names)
    assert outcomes.pop(dead) == "reauthorize"
    assert set(outcomes.values()) == {"refreshed"}
    assert report["calls"]["calls"] == len(f.names)  # one token call each, the refused one too
    assert all(f.emulator_grant(name)["refreshes"] == 1 for name in outcomes)
    # Health split the same way, and the same answers as a single process gives.
    reports = []
    for workers in (3, 1):
        health = runner.start("health", "--format", "json", env=_env(workers))
        stdout, stderr = health.communicate(timeout=120)
        assert health.returncode == 2, stderr
        reports.append(_report(stdout))
    assert reports[0] == reports[1]
    statuses = {item["name"]: item["status"] for item in reports[0]["connections"]}
    assert statuses[f.names[4]] == "access-denied"
    assert statuses[dead] == "reauthorize"
    for secret in f.secrets():
        assert secret not in json.dumps(reports)


def test_text_output_is_the_same_with_workers(fleet: Any, grantctl: Any) -> None:
    f = fleet(6)
    runner = grantctl(f)
    assert runner.run("refresh").returncode == 0  # then neither health run has a token to refresh
    outputs = []
    for workers in (2, 1):
        process = runner.start("health", env=_env(workers))
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        outputs.append(stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("healthy ") >= len(f.names)


def _processes_running(argv_fragment: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if argv_fragment in cmdline and "\nState:\tZ" not in status:
            found.append(int(entry.name))
    return found


def test_killing_grantctl_kills_its_workers(fleet: Any, grantctl: Any, tmp_path: Path) -> None:
    f = fleet(4)
    hook = tmp_path / "pause"
    process = grantctl(f).start("refresh", "--concurrency", "4", env=_env(2, **{PAUSE_HOOK_ENV: str(hook)}))
    deadline = time.monotonic() + 60
    while not Path(f"{hook}.reached").exists():
        assert time.monotonic() < deadline, "no worker reached the pause"
        time.sleep(0.02)
    repo_argument = str(f.repo.root)
    assert len(_processes_running(repo_argument)) == 2  # the parent and its worker
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    deadline = time.monotonic() + 10
    while _processes_running(repo_argument):
        assert time.monotonic() < deadline, "a worker outlived the grantctl process that started it"
        time.sleep(0.05)
    # Nothing was lost: every refresh token in the state still works, rotated or not (grace window).
    for name in f.names:
        assert f.token_call(name, f.tokens(name).refresh_token).status_code == 200, name
