"""``--history`` on a real temporary git repository: which commit changed which grant, and how."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import DESIRED, ENC_ACCESS, OTHER_TENANT_ID, SECRET_MARKERS, SOPS_MAC, AuditRepo

import grantctl.commands.audit as audit_command
from grantctl.commands.audit import parse_log, read_history, run_audit
from grantctl.errors import GrantctlError

WITHOUT_INVOICES = [s for s in DESIRED if s != "accounting.invoices"]


@pytest.fixture(autouse=True)
def _no_git_above_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever surrounds the temp directory, git must not find a repository above it."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture
def history_repo(audit_repo: AuditRepo) -> dict[str, str]:
    """acme-ltd: created, scope added, refresh only, tenant changed; beta: created; old-client: created, removed.

    Returns the commit id of each step by name.
    """
    r = audit_repo
    r.git("init", "-q")
    commits = {}
    r.add_manifest("acme-ltd")
    r.add_manifest("beta", organization="Beta Ltd", tenant_id=None)
    (r.root / "README.md").write_text("connections\n")
    commits["setup"] = r.commit("Add manifests", when="2026-12-30T09:00:00Z")

    r.add_state("acme-ltd", scopes=WITHOUT_INVOICES)
    r.add_state("old-client", tenant_name="Old Client Ltd")
    commits["created"] = r.commit("acme-ltd connected", when="2027-01-01T10:00:00+02:00", author="Grantctl Bot")

    r.add_state("acme-ltd", scopes=DESIRED)
    (r.root / "state" / ".locks").mkdir()
    (r.root / "state" / ".locks" / "acme-ltd.yaml").write_text("pid: 1\n")  # not a state document
    commits["scope-added"] = r.commit("acme-ltd: extend", when="2027-01-05T10:00:00Z", author="Grantctl Bot")

    r.add_state(
        "acme-ltd",
        refreshed_at="2027-01-11T06:00:00Z",
        access_token_expires_at="2027-01-11T06:30:00Z",
        refresh_token_issued_at="2027-01-11T06:00:00Z",
        tokens={"access_token": ENC_ACCESS.replace("aXYx", "bmV3"), "refresh_token": ENC_ACCESS},
        mac=SOPS_MAC.replace("aXYz", "bmV3"),
    )
    (r.root / "state" / "old-client.yaml").unlink()
    commits["refreshed"] = r.commit("scheduled refresh", when="2027-01-11T06:00:05Z", author="Grantctl Bot")

    (r.root / "README.md").write_text("connections, documented\n")
    commits["unrelated"] = r.commit("docs", when="2027-01-12T09:00:00Z")

    r.add_state("beta", tenant_name="Beta Ltd", tenant_id="t-beta")
    r.add_state(
        "acme-ltd",
        tenant_id=OTHER_TENANT_ID,
        tenant_name="Acme Trading Ltd",
        refreshed_at="2027-01-11T06:00:00Z",
        access_token_expires_at="2027-01-11T06:30:00Z",
        refresh_token_issued_at="2027-01-11T06:00:00Z",
    )
    commits["tenant-changed"] = r.commit("reconnect acme-ltd and beta", when="2027-01-15T12:00:00Z")
    return commits


def summaries(entry: dict[str, Any]) -> list[str]:
    return [change["summary"] for change in entry["changes"]]


def test_each_commit_that_changed_a_grant_is_listed_newest_first_with_what_changed(
    audit_repo: AuditRepo, history_repo: dict[str, str]
) -> None:
    document = json.loads(run_audit(audit_repo.repo, fmt="json", history=True).output)
    acme = [entry for entry in document["history"] if entry["connection"] == "acme-ltd"]

    assert [entry["commit"] for entry in acme] == [
        history_repo["tenant-changed"],
        history_repo["refreshed"],
        history_repo["scope-added"],
        history_repo["created"],
    ]
    tenant_changed, refreshed, scope_added, created = acme
    assert summaries(tenant_changed) == [
        "tenant: Acme Ltd (8c5b3a1e-0000-4000-8000-000000000001) → "
        "Acme Trading Ltd (8c5b3a1e-0000-4000-8000-0000000000ff)"
    ]
    assert tenant_changed["author"] == {"name": "Jane Doe", "email": "jane.doe@agency.example"}
    assert summaries(refreshed) == ["tokens refreshed"]
    assert refreshed["subject"] == "scheduled refresh"
    assert scope_added["changes"] == [
        {
            "kind": "scopes",
            "summary": "scopes added accounting.invoices",
            "added": ["accounting.invoices"],
            "removed": [],
        }
    ]
    assert [change["kind"] for change in created["changes"]] == ["created", "tenant", "scopes", "authorized"]
    assert created["date"] == "2027-01-01T08:00:00Z"  # author dates are shown in UTC
    assert created["author"]["name"] == "Grantctl Bot"


def test_removed_state_files_and_other_connections_have_their_own_history(
    audit_repo: AuditRepo, history_repo: dict[str, str]
) -> None:
    document = json.loads(run_audit(audit_repo.repo, fmt="json", history=True).output)
    by_connection: dict[str, list[str]] = {}
    for entry in document["history"]:
        by_connection.setdefault(entry["connection"], []).append(entry["changes"][0]["kind"])

    assert by_connection == {"acme-ltd": ["tenant", "refreshed", "scopes", "created"], "beta": ["created"],
                             "old-client": ["removed", "created"]}  # fmt: skip
    assert document["historyShallow"] is False
    # An unrelated commit, and the lock file committed under state/.locks/, are not grant changes.
    assert history_repo["unrelated"] not in {entry["commit"] for entry in document["history"]}


def test_a_removed_connection_can_be_named_with_history(audit_repo: AuditRepo, history_repo: dict[str, str]) -> None:
    document = json.loads(run_audit(audit_repo.repo, fmt="json", history=True, names=["old-client"]).output)

    assert document["connections"] == []
    assert [entry["commit"] for entry in document["history"]] == [history_repo["refreshed"], history_repo["created"]]
    with pytest.raises(GrantctlError, match="shows up with --history"):
        run_audit(audit_repo.repo, names=["old-client"])


def test_history_uses_three_git_processes_however_many_commits_and_files(
    audit_repo: AuditRepo, history_repo: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real_run: Callable[..., Any] = subprocess.run

    def counting_run(command: list[str], **options: Any) -> Any:
        calls.append(command)
        return real_run(command, **options)

    monkeypatch.setattr(audit_command.subprocess, "run", counting_run)
    history = read_history(audit_repo.repo)

    assert len({entry.commit for entry in history.entries}) == 4
    assert len(history.entries) == 7
    verbs = [next(arg for arg in command[1:] if not arg.startswith("-") and "=" not in arg) for command in calls]
    assert verbs == ["rev-parse", "log", "cat-file"]


def test_the_table_lists_history_per_connection_and_fits_the_width(
    audit_repo: AuditRepo, history_repo: dict[str, str]
) -> None:
    text = run_audit(audit_repo.repo, fmt="table", history=True, width=90).output
    history = text.split("History (newest first):", 1)[1]

    assert max(len(line) for line in text.splitlines()) <= 90
    assert history.index("\nacme-ltd\n") < history.index("\nbeta\n") < history.index("\nold-client\n")
    assert f"{history_repo['refreshed'][:12]}  2027-01-11T06:00:05Z  Grantctl Bot" in history
    assert "      tokens refreshed" in history
    assert "      scopes added accounting.invoices" in history


def test_markdown_and_csv_carry_the_history(audit_repo: AuditRepo, history_repo: dict[str, str]) -> None:
    markdown = run_audit(audit_repo.repo, fmt="markdown", history=True).output
    outcome = run_audit(audit_repo.repo, fmt="csv", history=True)
    records = list(csv.DictReader(io.StringIO(outcome.output)))

    assert "#### acme-ltd" in markdown
    assert f"| `{history_repo['refreshed'][:12]}` | 2027-01-11T06:00:05Z | Grantctl Bot" in markdown
    assert {"connection": "acme-ltd", "commit": history_repo["scope-added"], "change": "scopes"}.items() <= next(
        r for r in records if r["change"] == "scopes" and r["commit"] == history_repo["scope-added"]
    ).items()
    assert any("one row per change" in note for note in outcome.notes)


def test_history_output_never_shows_ciphertext_or_sops_metadata(
    audit_repo: AuditRepo, history_repo: dict[str, str]
) -> None:
    for fmt in ("table", "markdown", "json", "csv"):
        outcome = run_audit(audit_repo.repo, fmt=fmt, history=True, width=300)
        assert [m for m in SECRET_MARKERS if m in outcome.output + "".join(outcome.notes)] == [], fmt


def test_a_commit_with_plaintext_tokens_is_flagged_in_history_without_showing_them(audit_repo: AuditRepo) -> None:
    audit_repo.git("init", "-q")
    audit_repo.add_manifest("acme-ltd")
    audit_repo.add_state("acme-ltd", tokens={"refresh_token": "rt-PLAINTEXT-0123456789abcdef"})
    audit_repo.commit("oops", when="2027-01-01T00:00:00Z")
    audit_repo.add_state("acme-ltd")
    audit_repo.commit("re-encrypt", when="2027-01-02T00:00:00Z")

    text = run_audit(audit_repo.repo, fmt="json", history=True).output
    oops = json.loads(text)["history"][-1]

    assert "WARNING: refresh_token committed unencrypted: treat as leaked (revoke and reconnect)" in summaries(oops)
    assert "rt-PLAINTEXT" not in text


def test_outside_a_git_repository_history_is_a_clear_error(audit_repo: AuditRepo) -> None:
    audit_repo.add_manifest("acme-ltd")

    with pytest.raises(GrantctlError, match="is not in a git repository, so there is no history to read"):
        run_audit(audit_repo.repo, history=True)
    assert run_audit(audit_repo.repo).exit_code == 0  # without --history git is not needed


def test_a_repository_without_commits_or_state_history_says_so(audit_repo: AuditRepo) -> None:
    audit_repo.git("init", "-q")
    audit_repo.add_manifest("acme-ltd")

    empty = run_audit(audit_repo.repo, fmt="table", history=True).output
    audit_repo.commit("manifests only", when="2027-01-01T00:00:00Z")
    no_state = run_audit(audit_repo.repo, fmt="markdown", history=True).output

    assert "No commit changes state/ yet" in empty
    assert "No commit changes state/ yet" in no_state


def test_a_shallow_clone_says_its_history_is_incomplete(
    audit_repo: AuditRepo, history_repo: dict[str, str], tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    audit_repo.git("clone", "-q", "--depth", "1", f"file://{audit_repo.root}", str(clone))

    outcome = run_audit(AuditRepo(clone).repo, fmt="json", history=True)
    document = json.loads(outcome.output)

    assert document["historyShallow"] is True
    assert {entry["commit"] for entry in document["history"]} == {history_repo["tenant-changed"]}
    assert any("git fetch --unshallow" in note for note in outcome.notes)


def test_a_repo_in_a_subdirectory_of_the_git_work_tree_reads_its_own_state_history(tmp_path: Path) -> None:
    outer = AuditRepo(tmp_path / "monorepo")
    outer.root.mkdir()
    outer.git("init", "-q")
    inner = AuditRepo(outer.root / "ops" / "connections-repo")
    (inner.root / "connections").mkdir(parents=True)
    (inner.root / "state").mkdir()
    (inner.root / "grantctl.yaml").write_text("apiVersion: grantctl/v1\nkind: Config\npublicUrl: https://c.example\n")
    inner.add_manifest("acme-ltd")
    inner.add_state("acme-ltd")
    (outer.root / "state").mkdir()
    (outer.root / "state" / "decoy.yaml").write_text("connection: decoy\n")  # another project's state/ dir
    outer.commit("both", when="2027-01-01T00:00:00Z")

    history = read_history(inner.repo)

    assert [entry.connection for entry in history.entries] == ["acme-ltd"]
    assert history.paths == ("ops/connections-repo/state/",)


def test_parse_log_keeps_only_state_documents() -> None:
    blob_a, blob_b, zero = "a" * 40, "b" * 40, "0" * 40
    text = (
        "\x1e" + "c" * 40 + "\x1f2027-01-01T10:00:00+02:00\x1fJane\x1fjane@x.example\x1fsubject: with | odd chars\n\n"
        f":000000 100644 {zero} {blob_a} A\tstate/acme-ltd.yaml\n"
        f":100644 100644 {blob_a} {blob_b} M\tstate/.locks/acme-ltd.yaml\n"
        f":100644 100644 {blob_a} {blob_b} M\tstate/sub/acme-ltd.yaml\n"
        f":100644 100644 {blob_a} {blob_b} M\tconnections/acme-ltd.yaml\n"
        f':100644 100644 {blob_a} {blob_b} M\t"state/\\303\\251.yaml"\n'
        "\x1e" + "d" * 40 + "\x1f2027-01-02T00:00:00Z\x1fJane\x1fjane@x.example\x1fmerge\n"
    )

    (commit,) = parse_log(text, "state")

    assert commit.subject == "subject: with | odd chars"
    assert commit.date.isoformat() == "2027-01-01T08:00:00+00:00"
    assert [(f.connection, f.old_blob, f.new_blob) for f in commit.files] == [("acme-ltd", zero, blob_a)]


def test_the_cli_runs_audit_with_history_as_a_subprocess(audit_repo: AuditRepo, history_repo: dict[str, str]) -> None:
    command = [sys.executable, "-m", "grantctl", "audit", "--repo", str(audit_repo.root)]

    ok = subprocess.run(
        [*command, "--format", "json", "--history", "acme-ltd"], capture_output=True, text=True, check=False
    )
    unknown = subprocess.run([*command, "nobody"], capture_output=True, text=True, check=False)

    assert ok.returncode == 0, ok.stderr
    document = json.loads(ok.stdout)
    assert [row["name"] for row in document["connections"]] == ["acme-ltd"]
    assert [entry["connection"] for entry in document["history"]] == ["acme-ltd"] * 4
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no manifest or state for nobody")


def test_history_is_refused_for_a_state_backend_that_is_not_in_git(audit_repo: AuditRepo) -> None:
    (audit_repo.root / "grantctl.yaml").write_text(
        "apiVersion: grantctl/v1\nkind: Config\npublicUrl: https://c.example\nstate: {backend: postgres}\n"
    )

    with pytest.raises(GrantctlError, match="the postgres state backend keeps no state in git"):
        read_history(audit_repo.repo)
