"""The CI workflows call grantctl the way the CLI really works (a renamed option would break them)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from grantctl.cli import cli

WORKFLOWS = sorted((Path(__file__).resolve().parents[2] / ".github" / "workflows").glob("*.yml"))


def load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def grantctl_calls(document: dict[Any, Any]) -> list[list[str]]:
    calls = []
    for job in document["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                match = re.match(r"\s*grantctl\s+([^;|>&]*)", line)  # a command line, not a commit message
                if match:
                    calls.append(shlex.split(match.group(1).replace('"${notify[@]}"', "")))
    return calls


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_grantctl_call_uses_real_commands_and_options(path: Path) -> None:
    calls = grantctl_calls(load(path))
    if path.name.startswith("grantctl-"):
        assert calls, f"{path.name} calls no grantctl command"
    for words in calls:
        command = cli.commands.get(words[0])
        assert isinstance(command, click.Command), f"{path.name}: unknown command {words[0]!r}"
        known = {opt for param in command.params for opt in getattr(param, "opts", [])}
        for word in words[1:]:
            if word.startswith("--"):
                assert word in known, f"{path.name}: `grantctl {words[0]}` has no option {word}"


def test_state_writers_share_one_concurrency_group_that_never_cancels() -> None:
    groups = {}
    for path in WORKFLOWS:
        document = load(path)
        if path.name in ("grantctl-apply.yml", "grantctl-maintain.yml"):
            groups[path.name] = document["concurrency"]
    assert groups["grantctl-apply.yml"] == groups["grantctl-maintain.yml"]
    assert groups["grantctl-apply.yml"]["cancel-in-progress"] is False


def test_plan_workflow_needs_no_secrets() -> None:
    text = (WORKFLOWS[0].parent / "grantctl-plan.yml").read_text()
    assert "secrets." not in text  # fork pull requests get no secrets
