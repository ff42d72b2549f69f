"""Failures that must never cost a token or stop the other connections."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx

from grantctl.commands.refresh import run_refresh
from grantctl.errors import StateError
from grantctl.maintenance import RetryPolicy
from grantctl.state.files import FilesStore
from grantctl.state.model import Grant, Tokens

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, persist_first_delay=0.01)


def _report(outcome: Any) -> tuple[int, dict[str, dict[str, Any]], dict[str, Any]]:
    document = json.loads(outcome.output)
    return outcome.exit_code, {item["name"]: item for item in document["connections"]}, document


def test_a_mix_of_200_connections_with_injected_failures(fleet: Any) -> None:
    f = fleet(200)
    recovers: set[str] = set()
    exhausted: set[str] = set()
    dead: set[str] = set()
    rules: list[dict[str, Any]] = []
    for index, member in enumerate(f.members):
        kind = index % 10
        if kind == 1:  # one 500, then fine
            rules.append({"endpoint": "token", "mode": "500", "count": 1, "client_id": member.client_id})
            recovers.add(member.name)
        elif kind == 2:  # 429 with Retry-After 0, then fine
            rules.append(
                {"endpoint": "token", "mode": "429", "retry_after": 0, "count": 1, "client_id": member.client_id}
            )
            recovers.add(member.name)
        elif kind == 3:  # 503 for longer than the retries last
            rules.append({"endpoint": "token", "mode": "503", "count": 50, "client_id": member.client_id})
            exhausted.add(member.name)
        elif kind == 4:  # a refresh token the provider refuses
            f.write_state(member.name, tokens=Tokens(refresh_token=f"revoked-long-ago-{index}"))
            dead.add(member.name)
    f.control.set_faults(fail=rules)
    outcome = run_refresh(f.repo, [], force=False, concurrency=32, fmt="json", policy=FAST)
    code, results, document = _report(outcome)
    assert code == 2
    healthy = set(f.names) - exhausted - dead
    for name in f.names:
        result = results[name]
        if name in healthy:
            assert result["outcome"] == "refreshed", result
            assert f.tokens(name).refresh_token != f.member(name).seed_refresh_token
            assert f.emulator_grant(name)["refreshes"] == 1
        elif name in exhausted:
            assert result["outcome"] == "failed", result
            assert result["attempts"] == FAST.attempts
            assert "503" in result["reason"]
            assert f.tokens(name).refresh_token == f.member(name).seed_refresh_token  # untouched, still valid
            assert f.grant(name).consecutive_failures == 1
        else:
            assert result["outcome"] == "reauthorize", result
            assert f.grant(name).reauthorize is not None
    for name in recovers:
        assert results[name]["attempts"] == 2
    assert document["summary"] == {
        "error": 0,
        "reauthorize": len(dead),
        "failed": len(exhausted),
        "refreshed": len(healthy),
        "skipped": 0,
    }
    assert document["calls"]["rateLimited"] == 20
    for secret in f.secrets():
        assert secret not in outcome.output


class FlakyStore(FilesStore):
    """A FilesStore whose writes of new tokens fail ``failures`` times first, when the file is written.

    ``write`` is ``prepare_write`` then the function it returns (which refresh runs in its pool), so
    failing that function fails both.
    """

    def __init__(self, *args: Any, failures: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures
        self.attempts = 0

    def prepare_write(self, name: str, grant: Grant, tokens: Tokens | None = None) -> Callable[[], None]:
        commit = super().prepare_write(name, grant, tokens)
        if tokens is None:
            return commit

        def flaky_commit() -> None:
            self.attempts += 1
            if self.attempts <= self.failures:
                raise StateError(f"{name}: disk full (simulated)")
            commit()

        return flaky_commit


def test_a_failed_write_of_rotated_tokens_is_retried(fleet: Any) -> None:
    f = fleet(1)
    store = FlakyStore(f.repo, failures=2)
    outcome = run_refresh(f.repo, [], force=False, concurrency=2, fmt="json", store=store, policy=FAST)
    code, results, document = _report(outcome)
    assert code == 0
    assert results[f.names[0]]["outcome"] == "refreshed"
    assert document["calls"]["persistRetries"] == 2
    assert f.tokens(f.names[0]).refresh_token != f.member(f.names[0]).seed_refresh_token


def test_when_writes_keep_failing_the_run_errors_and_the_old_token_survives(fleet: Any) -> None:
    f = fleet(2)
    broken = f.names[0]
    store = FlakyStore(f.repo, failures=10**6)
    outcome = run_refresh(f.repo, [broken], force=False, concurrency=2, fmt="text", store=store, policy=FAST)
    assert outcome.exit_code == 1
    assert "saving them failed 5 times" in outcome.output
    assert "30 minutes" in outcome.output
    assert f.tokens(broken).refresh_token == f.member(broken).seed_refresh_token
    # Within the grace window the next run (with a working disk) recovers with the old token.
    outcome = run_refresh(f.repo, [broken], force=False, concurrency=2, fmt="json")
    assert outcome.exit_code == 0
    assert f.counters()["refresh_grace_reuses"] == 1


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_a_timeout_is_retried_and_a_response_without_refresh_token_keeps_the_old_one(fleet: Any) -> None:
    f = fleet(1)
    (name,) = f.names
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if len(seen) == 1:
            raise httpx.ReadTimeout("simulated", request=request)
        access = _jwt({"scope": ["openid", "offline_access", "accounting.invoices"], "exp": 4102444800})
        return httpx.Response(200, json={"access_token": access, "expires_in": 1800, "token_type": "Bearer"})

    outcome = run_refresh(
        f.repo, [], force=False, concurrency=2, fmt="json", policy=FAST, transport=httpx.MockTransport(handler)
    )
    code, results, document = _report(outcome)
    assert code == 0, outcome.output
    assert results[name]["outcome"] == "refreshed"
    assert results[name]["attempts"] == 2
    assert "timed out" in results[name]["evidence"][0]["answer"]
    assert document["calls"]["byStatus"] == {"200": 1, "none": 1}
    tokens = f.tokens(name)
    assert tokens.refresh_token == f.member(name).seed_refresh_token  # kept: the answer had none
    assert tokens.access_token is not None
    assert "same refresh token kept" in results[name]["evidence"][-1]["answer"]
    assert f.grant(name).granted_scopes == ["accounting.invoices", "offline_access", "openid"]


def test_unreadable_credentials_are_an_error_for_that_connection_only(fleet: Any) -> None:
    f = fleet(2)
    broken, fine = f.names
    (f.repo.connections_dir / f"{broken}.secrets.yaml").write_text("client_id: x\nclient_secret: s3cr3t-value-xyz\n")
    outcome = run_refresh(f.repo, [], force=False, concurrency=2, fmt="json")
    code, results, _ = _report(outcome)
    assert code == 1
    assert results[broken]["outcome"] == "error"
    assert f"{broken}.secrets.yaml" in results[broken]["reason"]
    assert "s3cr3t-value-xyz" not in results[broken]["reason"]
    assert results[fine]["outcome"] == "refreshed"
