"""`grantctl new` errors name the argument or option to change and say how, not the manifest field's regex."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from grantctl.cli import cli
from repo_helpers import CLIENT_ID, CLIENT_SECRET, TeamRepo, tree_snapshot

GOOD = {
    "name": "acme-ltd",
    "--owner": "jane@agency.example",
    "--contact": "sam@acme.example",
    "--created-on": "2026-11-20",
}


@pytest.mark.parametrize(
    ("changed", "value", "expected"),
    [
        ("name", "Acme_Ltd", "NAME: use lowercase letters, digits and dashes"),
        ("--owner", "jane", "--owner: give an email address"),
        ("--contact", "sam at acme", "--contact: give an email address"),
        ("--created-on", "2026-13-01", "--created-on: "),
    ],
)
def test_a_bad_value_names_its_option_and_what_to_type(
    team_repo: TeamRepo, changed: str, value: str, expected: str
) -> None:
    values = {**GOOD, changed: value}
    before = tree_snapshot(team_repo.root)
    result = CliRunner().invoke(
        cli,
        [
            "new",
            values["name"],
            "--provider=xero",
            "--org=Acme Ltd",
            f"--owner={values['--owner']}",
            f"--contact={values['--contact']}",
            f"--created-on={values['--created-on']}",
            "--scope=openid",
            "--scope=offline_access",
            "--scope=accounting.invoices",
            "--credentials-from-stdin",
            "--repo",
            str(team_repo.root),
        ],
        input=f"{CLIENT_ID}\n{CLIENT_SECRET}\n",
    )
    assert result.exit_code == 1, result.output
    assert expected in result.output
    assert "should match pattern" not in result.output
    assert tree_snapshot(team_repo.root) == before
