"""run_audit on a connections repo on disk: every format, name selection, errors, and no secret in any output."""

from __future__ import annotations

import csv
import io
import json

import pytest
from audit_helpers import SECRET_MARKERS, AuditRepo

from grantctl.commands.audit import run_audit
from grantctl.errors import GrantctlError, StateError


def test_json_has_one_row_per_manifest_and_orphan_with_coverage_and_mismatch(mixed_repo: AuditRepo) -> None:
    outcome = run_audit(mixed_repo.repo, fmt="json")
    rows = {row["name"]: row for row in json.loads(outcome.output)["connections"]}

    assert outcome.exit_code == 0
    assert list(rows) == ["gone", "has-too-much", "matching", "needs-more", "new-client", "wrong-org"]
    assert rows["gone"]["status"] == "orphan"
    assert rows["new-client"]["status"] == "not-connected"
    assert rows["matching"]["missingScopes"] == rows["matching"]["excessScopes"] == []
    assert rows["needs-more"]["missingScopes"] == ["accounting.invoices"]
    assert rows["has-too-much"]["excessScopes"] == ["payroll.employees"]
    assert rows["wrong-org"]["tenantMismatch"] == "Acme Ltd (8c5b3a1e-0000-4000-8000-000000000001)"


def test_every_format_renders_the_same_connections(mixed_repo: AuditRepo) -> None:
    table = run_audit(mixed_repo.repo, fmt="table", width=200).output
    markdown = run_audit(mixed_repo.repo, fmt="markdown").output
    records = list(csv.DictReader(io.StringIO(run_audit(mixed_repo.repo, fmt="csv").output)))

    assert [line.split()[0] for line in table.splitlines()[1:7]] == [r["name"] for r in records]
    assert [r["name"] for r in records] == ["gone", "has-too-much", "matching", "needs-more", "new-client", "wrong-org"]
    assert all(f"| {r['name']}" in markdown for r in records)
    assert "6 connections: 4 connected, 1 not connected, 1 orphan" in table


def test_the_output_is_deterministic(mixed_repo: AuditRepo) -> None:
    for fmt in ("table", "markdown", "json", "csv"):
        assert (
            run_audit(mixed_repo.repo, fmt=fmt, width=100).output
            == run_audit(mixed_repo.repo, fmt=fmt, width=100).output
        )


def test_names_select_connections_including_orphans(mixed_repo: AuditRepo) -> None:
    outcome = run_audit(mixed_repo.repo, fmt="json", names=["new-client", "gone"])

    assert [row["name"] for row in json.loads(outcome.output)["connections"]] == ["gone", "new-client"]


def test_a_named_connection_is_audited_even_when_another_manifest_is_broken(mixed_repo: AuditRepo) -> None:
    (mixed_repo.root / "connections" / "broken.yaml").write_text("apiVersion: [unclosed\n")

    outcome = run_audit(mixed_repo.repo, fmt="json", names=["matching"])

    assert [row["name"] for row in json.loads(outcome.output)["connections"]] == ["matching"]
    with pytest.raises(GrantctlError, match=r"broken\.yaml"):
        run_audit(mixed_repo.repo, fmt="json")


def test_a_named_connection_is_audited_even_when_another_state_file_is_broken(mixed_repo: AuditRepo) -> None:
    (mixed_repo.root / "state" / "matching.yaml").write_text("connection: [unclosed\n")

    outcome = run_audit(mixed_repo.repo, fmt="json", names=["gone", "needs-more"])

    assert [row["name"] for row in json.loads(outcome.output)["connections"]] == ["gone", "needs-more"]
    with pytest.raises(StateError, match=r"matching\.yaml"):
        run_audit(mixed_repo.repo, fmt="json")


def test_an_unknown_name_is_an_error_that_says_where_to_look(mixed_repo: AuditRepo) -> None:
    with pytest.raises(GrantctlError, match=r"no manifest or state for nobody: .*ls connections state"):
        run_audit(mixed_repo.repo, names=["matching", "nobody"])


def test_a_name_that_is_not_a_connection_name_is_refused_before_touching_any_path(mixed_repo: AuditRepo) -> None:
    with pytest.raises(GrantctlError, match="not a connection name"):
        run_audit(mixed_repo.repo, names=["../../etc/passwd"])


def test_an_unknown_format_is_an_error(mixed_repo: AuditRepo) -> None:
    with pytest.raises(GrantctlError, match="unknown audit format 'xml'; choose one of: table, markdown, json, csv"):
        run_audit(mixed_repo.repo, fmt="xml")


def test_an_empty_repo_audits_to_zero_connections(audit_repo: AuditRepo) -> None:
    assert run_audit(audit_repo.repo, fmt="table").output == "0 connections.\n"
    assert json.loads(run_audit(audit_repo.repo, fmt="json").output)["connections"] == []


def test_no_format_ever_shows_ciphertext_or_sops_metadata(mixed_repo: AuditRepo) -> None:
    for fmt in ("table", "markdown", "json", "csv"):
        outcome = run_audit(mixed_repo.repo, fmt=fmt, width=400)
        shown = outcome.output + "\n".join(outcome.notes)
        assert [marker for marker in SECRET_MARKERS if marker in shown] == [], fmt


def test_a_state_file_with_plaintext_tokens_stops_the_audit_without_echoing_them(audit_repo: AuditRepo) -> None:
    audit_repo.add_manifest("acme-ltd")
    audit_repo.add_state("acme-ltd", tokens={"refresh_token": "rt-PLAINTEXT-0123456789abcdef"})

    with pytest.raises(StateError, match="not encrypted") as caught:
        run_audit(audit_repo.repo, fmt="json")

    assert "rt-PLAINTEXT" not in str(caught.value)
