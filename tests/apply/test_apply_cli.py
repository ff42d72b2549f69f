"""`grantctl apply` without a provider: links, link history, webhook delivery, saved plans, held actions."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from grantctl.cli import cli
from grantctl.commands.plan import run_plan
from grantctl.emulator.testing import serve_in_thread
from grantctl.links import load_signing_key
from grantctl.state.model import Grant, Tenant, Tokens
from grantctl.state.registry import open_store
from repo_helpers import CLIENT_SECRET, AddConnection, TeamRepo


class Webhook:
    """A real HTTP endpoint on loopback that records what it receives; answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []

    def app(self) -> Starlette:
        async def receive(request: Request) -> JSONResponse:
            self.received.append(await request.json())
            return JSONResponse({"ok": self.status < 400}, status_code=self.status)

        return Starlette(routes=[Route("/hook", receive, methods=["POST"])])


@pytest.fixture
def webhook() -> Iterator[tuple[Webhook, str]]:
    hook = Webhook()
    with serve_in_thread(hook.app()) as base_url:
        yield hook, f"{base_url}/hook"


def apply(team_repo: TeamRepo, *args: str) -> Any:
    return CliRunner().invoke(cli, ["apply", "--repo", str(team_repo.root), *args])


def test_apply_issues_links_records_them_and_notifies(
    team_repo: TeamRepo, add_connection: AddConnection, webhook: tuple[Webhook, str], tmp_path: Path
) -> None:
    add_connection("acme-ltd")
    add_connection("bluebird", organization="Bluebird Bakery")
    hook, url = webhook
    links_out = tmp_path / "links.json"
    result = apply(team_repo, "--links-out", str(links_out), "--notify", url)
    assert result.exit_code == 0, result.output
    assert "Apply: 2 link(s) issued" in result.output
    assert "2 of 2 delivered to the webhook" in result.output
    document = json.loads(links_out.read_text())
    assert stat.S_IMODE(links_out.stat().st_mode) == 0o600
    assert [entry["connection"] for entry in document["links"]] == ["acme-ltd", "bluebird"]
    first = document["links"][0]
    assert first["url"].startswith("https://connect.agency.example/connect/")
    assert first["contact"] == {"name": "Sam Lee", "email": "sam@acme.example"}
    assert first["action"] == "connect"
    assert hook.received == document["links"]
    grant = open_store(team_repo.repo).read_grant("acme-ltd")
    assert grant is not None
    assert [link.action for link in grant.links] == ["connect"]
    assert grant.links[0].scopes == sorted(first["scopes"])
    signing = load_signing_key(team_repo.repo).secret.decode()
    for text in (
        result.output,
        links_out.read_text(),
        *(p.read_text() for p in (team_repo.root / "state").glob("*.yaml")),
    ):
        assert CLIENT_SECRET not in text
        assert signing not in text


def test_a_failing_webhook_is_reported_and_does_not_stop_the_rest(
    team_repo: TeamRepo, add_connection: AddConnection
) -> None:
    add_connection("acme-ltd")
    add_connection("bluebird", organization="Bluebird Bakery")
    hook = Webhook(status=503)
    with serve_in_thread(hook.app()) as base_url:
        result = apply(team_repo, "--notify", f"{base_url}/hook")
    assert result.exit_code == 2, result.output
    assert "webhook acme-ltd: not delivered after 3 attempt(s): HTTP 503" in result.output
    assert "webhook bluebird: not delivered after 3 attempt(s): HTTP 503" in result.output
    assert len(hook.received) == 6  # bounded: three tries per link


def test_a_saved_plan_is_refused_once_the_repo_changed(
    team_repo: TeamRepo, add_connection: AddConnection, tmp_path: Path
) -> None:
    manifest = add_connection("acme-ltd")
    saved = tmp_path / "plan.json"
    run_plan(team_repo.repo, fmt="text", out=saved)
    manifest.write_text(manifest.read_text().replace("- accounting.invoices", "- accounting.payments"))
    state_before = sorted((team_repo.root / "state").iterdir())
    result = apply(team_repo, "--plan", str(saved))
    assert result.exit_code == 1
    assert "the saved plan no longer matches" in result.output
    assert sorted((team_repo.root / "state").iterdir()) == state_before


def test_a_current_saved_plan_is_applied(team_repo: TeamRepo, add_connection: AddConnection, tmp_path: Path) -> None:
    add_connection("acme-ltd")
    saved = tmp_path / "plan.json"
    run_plan(team_repo.repo, fmt="text", out=saved)
    result = apply(team_repo, "--plan", str(saved), "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("## grantctl apply")
    assert "| `acme-ltd` | connect | link: link for Sam Lee" in result.output


def test_destructive_actions_are_held_back_without_approval(team_repo: TeamRepo, add_connection: AddConnection) -> None:
    add_connection("acme-ltd")
    store = open_store(team_repo.repo)
    orphan = Grant(
        connection="gone-ltd",
        provider="xero",
        tenant=Tenant(id="t-1", name="Gone Ltd"),
        granted_scopes=["offline_access"],
        authorized_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    with store.lock("gone-ltd"):
        store.write("gone-ltd", orphan, Tokens(refresh_token="rt-orphan-0123456789"))
    result = apply(team_repo)
    assert result.exit_code == 2, result.output
    assert "  - orphan  gone-ltd: held" in result.output
    assert "--allow-destructive" in result.output
    assert (team_repo.root / "state" / "gone-ltd.yaml").is_file()


def test_nothing_to_do(team_repo: TeamRepo) -> None:
    result = apply(team_repo)
    assert result.exit_code == 0
    assert "No changes" in result.output
