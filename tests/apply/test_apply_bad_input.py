"""`grantctl apply` with a bad option value: one clear message, exit 1, and nothing changed on disk.

Both options are only used after the links are issued and recorded in the state, so without an
up-front check a typo would record links nobody receives (and, for --links-out, crash with a traceback
after the state was written).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from grantctl.cli import cli
from repo_helpers import AddConnection, TeamRepo, tree_snapshot


def apply(team_repo: TeamRepo, *args: str) -> Result:
    return CliRunner().invoke(cli, ["apply", "--repo", str(team_repo.root), *args])


def test_links_out_in_a_missing_directory_changes_nothing(
    team_repo: TeamRepo, add_connection: AddConnection, tmp_path: Path
) -> None:
    add_connection("acme-ltd")
    before = tree_snapshot(team_repo.root)
    target = tmp_path / "no-such-dir" / "links.json"

    result = apply(team_repo, "--links-out", str(target))

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert "--links-out" in result.output
    assert "no-such-dir" in result.output
    assert "/connect/" not in result.output
    assert tree_snapshot(team_repo.root) == before
    assert not target.parent.exists()


WEBHOOK_TOKEN = "T0KEN-of-the-webhook-9f8e7d"


@pytest.mark.parametrize(
    "url",
    [
        f"hooks.agency.example/{WEBHOOK_TOKEN}",
        f"ftp://hooks.agency.example/{WEBHOOK_TOKEN}",
        f"https:///{WEBHOOK_TOKEN}",
    ],
)
def test_a_notify_url_that_is_not_http_changes_nothing(
    team_repo: TeamRepo, add_connection: AddConnection, url: str
) -> None:
    add_connection("acme-ltd")
    before = tree_snapshot(team_repo.root)

    result = apply(team_repo, "--notify", url)

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "--notify" in result.output
    assert "http(s) URL" in result.output
    assert WEBHOOK_TOKEN not in result.output  # webhook URLs often carry a token of their own
    assert "/connect/" not in result.output
    assert tree_snapshot(team_repo.root) == before
