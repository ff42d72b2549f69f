"""grantctl refresh as separate processes: a SIGKILL after the token response, and two runs at once."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from grantctl.commands.refresh import run_refresh
from grantctl.maintenance import PAUSE_HOOK_ENV

GRACE_PLUS = 31 * 60


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_killed_after_the_token_response_recovers_within_the_grace_window(
    fleet: Any, grantctl: Any, tmp_path: Path
) -> None:
    f = fleet(1)
    (name,) = f.names
    seed = f.member(name).seed_refresh_token
    hook = tmp_path / "pause"
    process = grantctl(f).start("refresh", env={**os.environ, PAUSE_HOOK_ENV: str(hook)})
    try:
        _wait_for(Path(f"{hook}.reached"))
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL
    # The provider rotated the token, but the state still holds the previous one: the response is lost.
    assert f.emulator_grant(name)["refreshes"] == 1
    assert f.tokens(name).refresh_token == seed
    assert f.grant(name).refreshed_at is None
    # The kernel released the dead process's lock; the next run retries the old token within the grace window.
    outcome = run_refresh(f.repo, [], force=False, concurrency=4, fmt="json")
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.output)["summary"]["refreshed"] == 1
    assert f.counters()["refresh_grace_reuses"] == 1
    assert f.counters().get("token_error_invalid_grant", 0) == 0
    stored = f.tokens(name).refresh_token
    assert stored
    assert stored != seed
    f.control.advance_clock(GRACE_PLUS)
    assert f.token_call(name, stored).status_code == 200


@pytest.mark.parametrize("force", [False, True], ids=["due", "forced"])
def test_two_processes_at_once_refresh_every_token_exactly_once(fleet: Any, grantctl: Any, force: bool) -> None:
    f = fleet(16)
    runner = grantctl(f)
    args = ["--format", "json", "--concurrency", "4", *(["--force"] if force else [])]
    processes = [runner.start("refresh", *args) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    reports = [json.loads(stdout) for stdout, _ in outputs]
    refreshed = [item["name"] for report in reports for item in report["connections"] if item["outcome"] == "refreshed"]
    assert sorted(refreshed) == sorted(f.names)  # each by exactly one of the two processes
    for report in reports:
        assert {item["outcome"] for item in report["connections"]} <= {"refreshed", "skipped"}
    assert all(f.emulator_grant(name)["refreshes"] == 1 for name in f.names)
    assert f.counters().get("token_error_invalid_grant", 0) == 0
    # None lost: past the grace window every stored refresh token still works.
    f.control.advance_clock(GRACE_PLUS)
    for name in f.names:
        assert f.token_call(name, f.tokens(name).refresh_token).status_code == 200, name


def test_cli_text_output_and_exit_code(fleet: Any, grantctl: Any) -> None:
    f = fleet(2)
    result = grantctl(f).run("refresh", f.names[0])
    assert result.returncode == 0, result.stderr
    assert f"refreshed    {f.names[0]}" in result.stdout
    assert "Refresh: 1 refreshed, 0 skipped, 0 to reauthorize, 0 failed, 0 errors" in result.stdout
    for secret in f.secrets():
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_cli_health_markdown_and_exit_code(fleet: Any, grantctl: Any) -> None:
    f = fleet(2, no_rights=(1,))
    runner = grantctl(f)
    assert runner.run("refresh").returncode == 0
    result = runner.run("health", "--format", "markdown")
    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith("### grantctl health")
    assert f"| `{f.names[1]}` | access-denied |" in result.stdout
    assert f"1 healthy: `{f.names[0]}`." in result.stdout
    for secret in f.secrets():
        assert secret not in result.stdout
        assert secret not in result.stderr
