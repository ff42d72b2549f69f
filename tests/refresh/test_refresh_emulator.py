"""``refresh`` against the emulator over loopback, with real state files and natively decrypted credentials."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from grantctl.commands.plan import run_plan
from grantctl.commands.refresh import run_refresh
from grantctl.state.model import Tokens

SOPS = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sops"
GRACE_PLUS = 31 * 60  # seconds: past the emulator's (and Xero's) 30-minute grace window


def _refresh(fleet: Any, *names: str, force: bool = False, fmt: str = "json") -> tuple[int, dict[str, Any]]:
    outcome = run_refresh(fleet.repo, list(names), force=force, concurrency=8, fmt=fmt)
    for secret in fleet.secrets():
        assert secret not in outcome.output
    return outcome.exit_code, json.loads(outcome.output) if fmt == "json" else {"text": outcome.output}


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in document["connections"]}


def test_refresh_rotates_tokens_and_persists_them(fleet: Any) -> None:
    f = fleet(2)
    before = datetime.now(UTC)
    code, report = _refresh(f)
    assert code == 0
    assert report["summary"]["refreshed"] == 2
    for name in f.names:
        member = f.member(name)
        tokens = f.tokens(name)
        assert tokens.refresh_token
        assert tokens.refresh_token != member.seed_refresh_token
        assert tokens.access_token
        grant = f.grant(name)
        assert grant.refreshed_at is not None
        assert grant.refreshed_at >= before
        assert grant.access_token_expires_at is not None
        assert timedelta(minutes=29) < grant.access_token_expires_at - before < timedelta(minutes=31)
        assert grant.refresh_token_issued_at == grant.refreshed_at
        assert f.emulator_grant(name)["refreshes"] == 1
        on_disk = (f.repo.state_dir / f"{name}.yaml").read_text()
        assert tokens.refresh_token not in on_disk
        assert tokens.access_token not in on_disk
    # Nothing is due any more: a second run calls nobody.
    code, again = _refresh(f)
    assert code == 0
    assert again["summary"]["skipped"] == 2
    assert again["calls"]["calls"] == 0
    assert all(f.emulator_grant(name)["refreshes"] == 1 for name in f.names)
    # The stored token is the live one: past the grace window the seeded token is dead, the stored one works.
    f.control.advance_clock(GRACE_PLUS)
    name = f.names[0]
    assert f.token_call(name, f.member(name).seed_refresh_token).json() == {"error": "invalid_grant"}
    assert f.token_call(name, f.tokens(name).refresh_token).status_code == 200


def test_refresh_only_the_named_connections(fleet: Any) -> None:
    f = fleet(3)
    code, report = _refresh(f, f.names[1])
    assert code == 0
    assert [item["name"] for item in report["connections"]] == [f.names[1]]
    assert f.emulator_grant(f.names[0])["refreshes"] == 0
    assert f.emulator_grant(f.names[1])["refreshes"] == 1


def test_force_refreshes_fresh_tokens_once(fleet: Any) -> None:
    f = fleet(2)
    assert _refresh(f)[0] == 0
    # A forced run right after refreshes nothing (refreshed less than a minute ago)...
    code, report = _refresh(f, force=True)
    assert code == 0
    assert report["summary"]["skipped"] == 2
    # ...but one that comes later does, although the access tokens are still valid.
    for name in f.names:
        f.write_state(name, refreshed_at=datetime.now(UTC) - timedelta(minutes=5))
    code, report = _refresh(f, force=True)
    assert report["summary"]["refreshed"] == 2
    assert all(item["reason"] == "forced" for item in report["connections"])
    assert all(f.emulator_grant(name)["refreshes"] == 2 for name in f.names)


def test_invalid_grant_marks_reauthorization_and_plan_shows_it(fleet: Any) -> None:
    f = fleet(2)
    broken, fine = f.names
    f.write_state(broken, tokens=Tokens(refresh_token="a-refresh-token-the-provider-never-issued"))
    code, report = _refresh(f)
    assert code == 2
    results = _by_name(report)
    assert results[broken]["outcome"] == "reauthorize"
    assert "invalid_grant" in results[broken]["reason"]
    assert results[fine]["outcome"] == "refreshed"
    grant = f.grant(broken)
    assert grant.reauthorize is not None
    assert "invalid_grant" in grant.reauthorize.reason
    assert grant.consecutive_failures == 1
    # The next plan asks for a new consent; the next refresh leaves the dead grant alone.
    plan = json.loads(run_plan(f.repo, fmt="json").output)
    kinds = {(a["connection"], a["kind"]) for a in plan["actions"]}
    assert (broken, "reauthorize") in kinds
    assert not any(name == fine and kind == "reauthorize" for name, kind in kinds)
    calls_before = f.counters().get("token_error_invalid_grant", 0)
    code, report = _refresh(f, force=True)
    assert code == 2
    assert _by_name(report)[broken]["outcome"] == "reauthorize"
    assert f.counters().get("token_error_invalid_grant", 0) == calls_before


def test_429_with_retry_after_is_honoured(fleet: Any) -> None:
    f = fleet(1)
    f.control.set_faults(fail=[{"endpoint": "token", "mode": "429", "retry_after": 1, "count": 1}])
    started = time.monotonic()
    code, report = _refresh(f)
    elapsed = time.monotonic() - started
    assert code == 0
    (result,) = report["connections"]
    assert result["outcome"] == "refreshed"
    assert result["attempts"] == 2
    assert any("retry after 1 s" in item["answer"] for item in result["evidence"])
    assert report["calls"]["rateLimited"] == 1
    assert report["calls"]["retries"] == 1
    assert elapsed >= 1.0
    assert f.emulator_grant(f.names[0])["refreshes"] == 1


def test_a_transient_server_error_is_retried(fleet: Any) -> None:
    f = fleet(1)
    f.control.set_faults(fail=[{"endpoint": "token", "mode": "503", "count": 1}])
    code, report = _refresh(f)
    assert code == 0
    (result,) = report["connections"]
    assert result["outcome"] == "refreshed"
    assert report["calls"]["byStatus"] == {"200": 1, "503": 1}


def test_waits_for_a_lock_held_elsewhere_then_refreshes(fleet: Any) -> None:
    f = fleet(1)
    name = f.names[0]
    store = f.store()
    held = threading.Event()

    def hold() -> None:
        with store.lock(name):
            held.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    started = time.monotonic()
    code, report = _refresh(f)
    holder.join()
    assert code == 0
    assert report["summary"]["refreshed"] == 1
    assert time.monotonic() - started >= 0.4


def test_state_and_credentials_stay_compatible_with_the_sops_binary(fleet: Any, tmp_path: Path) -> None:
    f = fleet(2)
    env = dict(os.environ)
    first, second = f.names
    # Credentials written by the sops binary are read natively by refresh.
    member = f.member(second)
    credentials = f.repo.connections_dir / f"{second}.secrets.yaml"
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"client_id": member.client_id, "client_secret": member.client_secret}))
    encrypted = subprocess.run(
        [
            str(SOPS),
            "--config",
            str(f.repo.root / ".sops.yaml"),
            "encrypt",
            "--filename-override",
            str(credentials),
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            str(plain),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=f.repo.root,
    ).stdout
    plain.unlink()
    credentials.write_text(encrypted)
    # A refresh token put into a state file with `sops set` is read natively by refresh.
    f.write_state(first, tokens=Tokens(refresh_token="placeholder-token-replaced-by-sops-set"))
    state_first = f.repo.state_dir / f"{first}.yaml"
    subprocess.run(
        [
            str(SOPS),
            "set",
            str(state_first),
            '["tokens"]["refresh_token"]',
            json.dumps(f.member(first).seed_refresh_token),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=f.repo.root,
    )
    code, report = _refresh(f)
    assert code == 0, report
    assert report["summary"]["refreshed"] == 2
    # The state written natively decrypts with `sops -d`, with the stored tokens.
    for name in f.names:
        decrypted = subprocess.run(
            [str(SOPS), "decrypt", str(f.repo.state_dir / f"{name}.yaml")],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        document = yaml.safe_load(decrypted)
        assert document["tokens"]["refresh_token"] == f.tokens(name).refresh_token
        assert document["connection"] == name
