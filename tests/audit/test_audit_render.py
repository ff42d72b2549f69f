"""Rendering audit rows: table fits, markdown escapes, CSV quotes and guards, JSON is complete."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from audit_helpers import DESIRED, grant_document, manifest_document

from grantctl.audit import CSV_COLUMNS, AuditRow, build_rows, csv_safe, md, render
from grantctl.models import Connection
from grantctl.state.model import Grant

LONG_NAME = "a-very-long-connection-name-for-a-client-with-many-subsidiaries"


def rows_of(manifests: list[dict[str, Any]], grants: list[dict[str, Any]]) -> list[AuditRow]:
    connections = [Connection.model_validate(document) for document in manifests]
    return build_rows(connections, {g["connection"]: Grant.model_validate(g) for g in grants})


@pytest.fixture
def rows() -> list[AuditRow]:
    return rows_of(
        [
            manifest_document("acme-ltd"),
            manifest_document(LONG_NAME, organization="Long Name Holdings International Ltd", tenant_id=None),
            manifest_document("new-client", organization="New Client Ltd"),
        ],
        [
            grant_document("acme-ltd", scopes=[*DESIRED[:-1], "payroll.employees"]),
            grant_document(LONG_NAME, tenant_id="t-2", tenant_name="Long Name Holdings International Ltd"),
            grant_document("gone", tenant_name="Gone Ltd"),
        ],
    )


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_every_table_line_fits_the_width_and_the_notes_keep_the_full_scope_names(
    rows: list[AuditRow], width: int
) -> None:
    text = render(rows, fmt="table", width=width)

    assert max(len(line) for line in text.splitlines()) <= width
    flowing = " ".join(text.split())  # notes and summary wrap at the width; their words are all there
    assert "acme-ltd: missing (desired, not granted): accounting.settings.read" in flowing
    assert "acme-ltd: excess (granted, not needed): payroll.employees" in flowing
    assert flowing.endswith(
        "4 connections: 2 connected, 1 not connected, 1 orphan; 1 with missing scopes, 2 with excess scopes."
    )


def test_a_wide_table_shows_every_column_untruncated(rows: list[AuditRow]) -> None:
    text = render(rows, fmt="table", width=400)
    header = text.splitlines()[0].split()

    assert header[:3] == ["NAME", "PROVIDER", "ORGANISATION"]
    assert "LINKS" in header
    assert LONG_NAME in text
    assert "…" not in text
    assert "hidden" not in text


def test_a_narrow_table_cuts_cells_with_an_ellipsis_and_says_which_columns_are_hidden(rows: list[AuditRow]) -> None:
    text = render(rows, fmt="table", width=80)

    assert "…" in text
    assert "(hidden to fit 80 columns:" in text
    assert "contact" in text.split("(hidden to fit", 1)[1]
    names = [line.split()[0] for line in text.splitlines()[1:4]]
    assert names[0].startswith("a-very-long-connection-name-for-a-client")  # names give way last
    assert names[0].endswith("…")
    assert names[1:] == ["acme-ltd", "gone"]


def test_the_table_marks_orphans_mismatches_and_scope_counts() -> None:
    rows = rows_of(
        [manifest_document("acme-ltd"), manifest_document("wrong-org")],
        [
            grant_document("acme-ltd", scopes=[*DESIRED[1:], "payroll.employees"]),
            grant_document("wrong-org", tenant_id="other", tenant_name="Other Ltd"),
            grant_document("gone"),
        ],
    )
    lines = render(rows, fmt="table", width=400).splitlines()

    assert "5 granted, 1 missing, 1 excess" in lines[1]
    assert "gone (orphan)" in lines[2]
    assert "Other Ltd ≠ Acme Ltd" in lines[3]


def test_control_characters_from_a_tenant_name_never_reach_the_terminal() -> None:
    rows = rows_of(
        [manifest_document("acme-ltd")], [grant_document("acme-ltd", tenant_name="Evil\x1b[2J\x1b]0;pwned\x07Ltd")]
    )

    for fmt in ("table", "markdown"):
        text = render(rows, fmt=fmt, width=400)
        assert "\x1b" not in text
        assert "\x07" not in text


def test_markdown_escapes_pipes_so_a_name_cannot_add_table_cells() -> None:
    rows = rows_of(
        [manifest_document("acme-ltd", organization="Acme | Sons", contact_name="Sam | Lee")],
        [grant_document("acme-ltd", tenant_name="Acme | Sons", tenant_id="t|1")],
    )
    text = render(rows, fmt="markdown")
    header, _, row = [line for line in text.splitlines() if line.startswith("|")][:3]

    def cells(line: str) -> int:
        return len(re.split(r"(?<!\\)\|", line)) - 2

    assert cells(row) == cells(header) == 13
    assert "Acme \\| Sons" in row
    assert "t\\|1" in row


def test_markdown_neutralises_html_links_emphasis_and_mentions() -> None:
    assert md("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert (
        md("[click](https://evil.example) *bold* `code`") == "\\[click\\](https://evil.example) \\*bold\\* \\`code\\`"
    )
    assert md("@org/team ping") == "@\u2060org/team ping"
    assert md("sam@acme.example") == "sam@acme.example"  # an email address mentions no one
    assert md("line\nbreak") == "line break"


def test_markdown_marks_missing_desired_and_excess_granted_scopes(rows: list[AuditRow]) -> None:
    text = render(rows, fmt="markdown")
    acme = next(line for line in text.splitlines() if line.startswith("| acme-ltd"))

    assert "`accounting.settings.read` **(missing)**" in acme
    assert "`payroll.employees` **(excess)**" in acme
    assert "### Findings" in text


def test_csv_has_one_row_per_connection_with_every_field_and_marks(rows: list[AuditRow]) -> None:
    records = parse_csv(render(rows, fmt="csv"))

    assert list(records[0]) == list(CSV_COLUMNS)
    assert [r["name"] for r in records] == sorted([LONG_NAME, "acme-ltd", "gone", "new-client"])
    acme = records[1]
    assert acme["missing_scopes"] == "accounting.settings.read"
    assert acme["excess_scopes"] == "payroll.employees"
    assert acme["tenant_id"] == "8c5b3a1e-0000-4000-8000-000000000001"
    assert acme["authorized_by_email"] == "sam@acme.example"
    assert acme["authorized_at"] == "2026-12-01T10:00:00Z"
    assert records[2]["status"] == "orphan"
    assert records[3]["status"] == "not-connected"


def test_csv_quotes_commas_quotes_and_newlines_so_values_round_trip() -> None:
    tricky = 'Smith, "Jones"\nand Partners'
    rows = rows_of(
        [manifest_document("acme-ltd", organization="Acme")], [grant_document("acme-ltd", tenant_name=tricky)]
    )

    (record,) = parse_csv(render(rows, fmt="csv"))

    assert record["tenant_name"] == tricky


@pytest.mark.parametrize("payload", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_cells_that_a_spreadsheet_would_run_start_with_a_quote(payload: str) -> None:
    rows = rows_of(
        [manifest_document("acme-ltd", organization=payload.strip() or "x", contact_name="=cmd|' /C calc'!A0")],
        [grant_document("acme-ltd", tenant_name=payload)],
    )

    (record,) = parse_csv(render(rows, fmt="csv"))

    assert record["tenant_name"] == "'" + payload
    assert record["contact_name"] == "'=cmd|' /C calc'!A0"
    assert all(not value.startswith(("=", "+", "-", "@")) for value in record.values())


def test_csv_safe_leaves_ordinary_text_alone() -> None:
    assert csv_safe("Acme Ltd") == "Acme Ltd"
    assert csv_safe("a-b=c") == "a-b=c"
    assert csv_safe("") == ""


def test_json_is_versioned_complete_and_deterministic(rows: list[AuditRow]) -> None:
    text = render(rows, fmt="json")
    document = json.loads(text)

    assert text == render(list(rows), fmt="json")
    assert document["formatVersion"] == 1
    assert document["kind"] == "audit"
    assert [c["name"] for c in document["connections"]] == sorted([LONG_NAME, "acme-ltd", "gone", "new-client"])
    acme = document["connections"][1]
    assert acme["missingScopes"] == ["accounting.settings.read"]
    assert acme["excessScopes"] == ["payroll.employees"]
    assert acme["tenant"] == {"name": "Acme Ltd", "id": "8c5b3a1e-0000-4000-8000-000000000001"}
    assert acme["authorizedBy"] == {"name": "Sam Lee", "email": "sam@acme.example", "userId": "u-1"}
    assert acme["links"] == {"issued": 0, "lastIssuedAt": None}
    assert "history" not in document


def test_an_unknown_format_is_refused(rows: list[AuditRow]) -> None:
    with pytest.raises(ValueError, match="unknown audit format 'yaml'"):
        render(rows, fmt="yaml")
