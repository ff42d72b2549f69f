"""Every manifest rule, with the exact file:line:column it reports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from grantctl.errors import ManifestError
from grantctl.manifest import check_connection, load_connection_fast

TODAY = date(2026, 11, 28)
GOOD = """\
# yaml-language-server: $schema=../schemas/connection.schema.json
apiVersion: grantctl/v1
kind: Connection
metadata:
  name: acme-ltd
  owner: jane@agency.example
spec:
  provider: xero
  organization:
    name: Acme Ltd
    tenantId: null
  contact:
    name: Sam Lee
    email: sam@acme.example
  app:
    credentials: acme-ltd.secrets.yaml
    createdOn: 2026-11-20
  scopes:
    - openid
    - email
    - offline_access
    - accounting.invoices
    - accounting.contacts
"""


def write(tmp_path: Path, text: str, name: str = "acme-ltd") -> Path:
    directory = tmp_path / "connections"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.secrets.yaml").write_text("placeholder: true\n")
    path = directory / f"{name}.yaml"
    path.write_text(text)
    return path


def findings(tmp_path: Path, text: str, name: str = "acme-ltd") -> list[str]:
    _, found = check_connection(write(tmp_path, text, name), today=TODAY)
    return [f"{d.location.line}:{d.location.column} {d.severity} {d.field} {d.message}" for d in found]


def test_good_manifest_has_no_findings(tmp_path: Path) -> None:
    connection, found = check_connection(write(tmp_path, GOOD), today=TODAY)
    assert found == []
    assert connection is not None
    assert connection.spec.app.created_on == date(2026, 11, 20)


CASES = [
    pytest.param(
        GOOD.replace("    - accounting.invoices", "    - acounting.invoices"),
        "22:7 error spec.scopes[3] unknown xero scope 'acounting.invoices'",
        "did you mean 'accounting.invoices'",
        id="misspelled-scope",
    ),
    pytest.param(
        GOOD.replace("  owner: jane", "  ownr: jane"),
        "6:3 error metadata.ownr unknown field 'ownr'",
        "allowed here",
        id="unknown-field",
    ),
    pytest.param(
        GOOD.replace("  contact:\n    name: Sam Lee\n    email: sam@acme.example\n", ""),
        "8:3 error spec missing required field 'contact'",
        "",
        id="missing-field",
    ),
    pytest.param(
        GOOD.replace("email: sam@acme.example", "email: sam-at-acme"),
        "14:12 error spec.contact.email 'sam-at-acme' does not match",
        "",
        id="bad-email",
    ),
    pytest.param(
        GOOD.replace("  name: acme-ltd", "  name: acme-limited"),
        "5:9 error metadata.name name 'acme-limited' must equal the file name 'acme-ltd'",
        "rename",
        id="name-mismatch",
    ),
    pytest.param(
        GOOD.replace("    - email\n", "    - email\n    - email\n"),
        "error",
        "listed twice",
        id="duplicate-scope",
    ),
    pytest.param(
        GOOD.replace("    - accounting.invoices", "    - accounting.transactions"),
        "22:7 error spec.scopes[3]",
        "accounting.invoices",
        id="broad-scope-on-new-app",
    ),
    pytest.param(
        GOOD.replace("    - offline_access\n", ""),
        "18:3 error spec.scopes",
        "offline_access",
        id="no-offline-access",
    ),
    pytest.param(
        GOOD.replace("    - accounting.contacts", "    - accounting.contacts\n    - accounting.contacts.read"),
        "24:7 warning spec.scopes[5]",
        "redundant",
        id="read-next-to-write",
    ),
    pytest.param(
        GOOD.replace("createdOn: 2026-11-20", "createdOn: last tuesday"),
        "17:16 error spec.app.createdOn",
        "",
        id="created-on-not-a-date",
    ),
    pytest.param(
        GOOD.replace("  scopes:\n", "  scopes:\n   - bad: [\n"),
        "20:5 error None invalid YAML",
        "expected the node content",
        id="broken-yaml",
    ),
    pytest.param(
        GOOD.replace("provider: xero", "provider: quickbooks"),
        "8:13 error spec.provider 'quickbooks' is not one of: xero, hubspot, pipedrive",
        "",
        id="unknown-provider",
    ),
]


@pytest.mark.parametrize(("text", "expected_start", "expected_part"), CASES)
def test_rule_reports_location_and_advice(tmp_path: Path, text: str, expected_start: str, expected_part: str) -> None:
    lines = findings(tmp_path, text)
    matching = [line for line in lines if line.startswith(expected_start) or expected_start in line]
    assert matching, lines
    assert any(expected_part in line for line in matching), lines


def test_broad_scope_on_old_app_is_a_warning_with_the_deadline(tmp_path: Path) -> None:
    text = GOOD.replace("2026-11-20", "2024-05-01").replace("accounting.invoices", "accounting.transactions")
    connection, found = check_connection(write(tmp_path, text), today=TODAY)
    assert connection is not None, found
    assert [d.severity for d in found] == ["warning"]
    assert "September 2027" in found[0].message
    assert (found[0].location.line, found[0].location.column) == (22, 7)


def test_missing_credentials_file_is_reported_at_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    (path.parent / "acme-ltd.secrets.yaml").unlink()
    _, found = check_connection(path, today=TODAY)
    assert [(d.location.line, d.field) for d in found] == [(16, "spec.app.credentials")]
    assert "grantctl new" in found[0].message


def test_fast_loader_falls_back_to_a_precise_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  owner: jane@agency.example", "  owner: jane@agency.example\n  team: x"))
    with pytest.raises(ManifestError) as caught:
        load_connection_fast(path)
    assert str(caught.value).startswith(f"{path}:7:3: metadata.team: unknown field 'team'")


def test_fast_loader_rejects_a_name_that_differs_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, name="other")
    with pytest.raises(ManifestError, match="must equal the file name 'other'"):
        load_connection_fast(path)
