"""``plan --base REF``: the desired-state change between a git ref and the work tree, in a real git repo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import grantctl.desired_diff as desired_diff_module
from grantctl.commands.plan import run_plan
from grantctl.desired_diff import FieldChange
from grantctl.errors import GrantctlError

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text())
OLD_SCOPES = ("openid", "email", "offline_access", "accounting.invoices", "accounting.settings.read")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


@pytest.fixture
def history(plan_repo: Any) -> Any:
    """A committed base (acme, beta, gamma, dropped) and a work tree that changes it the way a PR would."""
    for name in ("acme-ltd", "beta", "gamma", "dropped"):
        plan_repo.add_manifest(name, scopes=OLD_SCOPES)
    git(plan_repo.root, "init", "-q", "-b", "main")
    git(plan_repo.root, "add", "-A")
    git(plan_repo.root, "commit", "-q", "-m", "base")
    # The PR: acme swaps a scope, beta moves organisation/owner/contact and gets pinned, gamma is only
    # reformatted (a comment and key order), dropped is removed and newcomer is added.
    plan_repo.add_manifest("acme-ltd", scopes=(*OLD_SCOPES[:3], "accounting.invoices.read", "accounting.contacts"))
    plan_repo.add_manifest(
        "beta",
        scopes=OLD_SCOPES,
        organization="Beta Holdings",
        owner="joe@agency.example",
        contact_email="fin@beta.example",
        tenant_id="11111111-2222-4333-8444-555555555555",
    )
    gamma = plan_repo.root / "connections" / "gamma.yaml"
    gamma.write_text("# reviewed by Jane\n" + gamma.read_text())
    plan_repo.remove_manifest("dropped")
    plan_repo.add_manifest("newcomer", organization="Newcomer Ltd")
    return plan_repo


def test_changes_per_connection(history: Any, make: Any) -> None:
    document = json.loads(run_plan(history.repo, fmt="json", base="main", now=make.NOW).output)

    Draft202012Validator(SCHEMA).validate(document)
    assert document["base"] == {"ref": "main", "commit": git(history.root, "rev-parse", "main")}
    changes = {c["connection"]: c for c in document["desiredChanges"]}
    assert sorted(changes) == ["acme-ltd", "beta", "dropped", "newcomer"]  # gamma: formatting only
    assert changes["acme-ltd"] == {
        "connection": "acme-ltd",
        "change": "changed",
        "scopesAdded": ["accounting.contacts", "accounting.invoices.read"],
        "scopesRemoved": ["accounting.invoices", "accounting.settings.read"],
        "fields": [],
    }
    assert changes["beta"]["fields"] == [
        {"field": "organization", "old": "Acme Ltd", "new": "Beta Holdings"},
        {"field": "owner", "old": "jane@agency.example", "new": "joe@agency.example"},
        {"field": "contact.email", "old": "sam@acme.example", "new": "fin@beta.example"},
        {"field": "organization.tenantId", "old": make.TENANT_ID, "new": "11111111-2222-4333-8444-555555555555"},
    ]
    assert changes["dropped"]["change"] == "removed"
    assert changes["dropped"]["scopesRemoved"] == sorted(OLD_SCOPES)
    assert changes["newcomer"]["change"] == "added"
    assert {"field": "organization", "old": None, "new": "Newcomer Ltd"} in changes["newcomer"]["fields"]


def test_text_shows_the_changes_above_the_actions(history: Any, make: Any) -> None:
    text = run_plan(history.repo, base="main", now=make.NOW).output

    commit = git(history.root, "rev-parse", "main")
    assert text.startswith(f"Desired-state changes since main ({commit[:12]}):\n")
    assert "  ~ acme-ltd: changed\n      scopes added: [accounting.contacts, accounting.invoices.read]\n" in text
    assert "      organization: Acme Ltd -> Beta Holdings\n" in text
    assert f"      organization.tenantId: {make.TENANT_ID} -> 11111111-2222-4333-8444-555555555555\n" in text
    assert "  - dropped: removed\n" in text
    assert "  + newcomer: added\n" in text
    assert text.index("Desired-state changes") < text.index("grantctl will perform the following actions:")


def test_markdown_shows_what_the_change_asks_for(history: Any, make: Any) -> None:
    markdown = run_plan(history.repo, fmt="markdown", base="main", now=make.NOW).output

    assert "#### What this change asks for (since `main`" in markdown
    assert "- **changed** `acme-ltd`: scopes added `accounting.contacts`, `accounting.invoices.read`" in markdown
    assert markdown.index("What this change asks for") < markdown.index("#### Actions")


def test_three_git_processes_whatever_the_number_of_manifests(
    history: Any, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(20):
        history.add_manifest(f"extra-{index:02d}")
    git(history.root, "add", "-A")
    git(history.root, "commit", "-q", "-m", "more")
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(argv: list[str], **kwargs: Any) -> Any:
        calls.append(argv)
        return real_run(argv, **kwargs)

    monkeypatch.setattr(desired_diff_module.subprocess, "run", counting_run)
    run_plan(history.repo, base="HEAD~1", now=make.NOW)

    assert [argv[1] for argv in calls] == ["rev-parse", "ls-tree", "cat-file"]


def test_no_change_since_head(history: Any, make: Any) -> None:
    git(history.root, "add", "-A")
    git(history.root, "commit", "-q", "-m", "the PR")

    document = json.loads(run_plan(history.repo, fmt="json", base="HEAD", now=make.NOW).output)
    text = run_plan(history.repo, base="HEAD", now=make.NOW).output

    assert document["desiredChanges"] == []
    assert "Desired-state changes since HEAD" in text
    assert "  (none)\n" in text


def test_base_without_a_connections_directory(history: Any, make: Any) -> None:
    empty = git(history.root, "commit-tree", "-m", "empty", git(history.root, "hash-object", "-t", "tree", "/dev/null"))

    document = json.loads(run_plan(history.repo, fmt="json", base=empty, now=make.NOW).output)

    assert {c["change"] for c in document["desiredChanges"]} == {"added"}


def test_invalid_manifest_at_base_is_compared_as_written(history: Any, make: Any) -> None:
    (history.root / "connections" / "beta.yaml").write_text("kind: [broken\n")
    git(history.root, "add", "-A")
    git(history.root, "commit", "-q", "-m", "broken beta")
    history.add_manifest("beta")

    document = json.loads(run_plan(history.repo, fmt="json", base="HEAD", now=make.NOW).output)

    beta = next(c for c in document["desiredChanges"] if c["connection"] == "beta")
    assert beta["change"] == "changed"
    assert beta["fields"][0] == {"field": "manifest", "old": "unreadable YAML", "new": "valid"}
    assert {"field": "organization", "old": None, "new": "Acme Ltd"} in beta["fields"]
    assert beta["scopesAdded"] == sorted(OLD_SCOPES)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no-such-branch", "--base 'no-such-branch': no such commit in .*; fetch it first"),
        ("--output=/tmp/x", "is not a git ref"),
    ],
)
def test_bad_refs_are_clear_errors(history: Any, make: Any, ref: str, message: str) -> None:
    with pytest.raises(GrantctlError, match=message):
        run_plan(history.repo, base=ref, now=make.NOW)


def test_outside_a_git_repository(plan_repo: Any, make: Any) -> None:
    plan_repo.add_manifest("acme-ltd")

    with pytest.raises(GrantctlError, match=r"git rev-parse failed .*not a git repository"):
        run_plan(plan_repo.repo, base="main", now=make.NOW)


def test_field_change_reads_well() -> None:
    assert str(FieldChange("owner", "a@x.example", None)) == "owner: a@x.example -> (none)"
