"""Documentation is part of the product: every command is in the README and has an example in --help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from grantctl.cli import cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_in_the_readme_table(name: str) -> None:
    assert f"| `grantctl {name}" in README, f"README.md's command table lacks `grantctl {name}`"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_help_has_an_example(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert f"grantctl {name}" in result.output.split("Example:", 1)[1]
