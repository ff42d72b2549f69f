"""Fixtures for the audit tests: a connections repo on disk (builders live in audit_helpers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_helpers import DESIRED, OTHER_TENANT_ID, AuditRepo


@pytest.fixture
def audit_repo(tmp_path: Path) -> AuditRepo:
    root = tmp_path / "repo"
    (root / "connections").mkdir(parents=True)
    (root / "state").mkdir()
    (root / "grantctl.yaml").write_text("apiVersion: grantctl/v1\nkind: Config\npublicUrl: https://c.example\n")
    return AuditRepo(root)


@pytest.fixture
def mixed_repo(audit_repo: AuditRepo) -> AuditRepo:
    """One connection per situation: not connected, as desired, missing, excess, wrong tenant, orphan."""
    audit_repo.add_manifest("new-client", organization="New Client Ltd")
    audit_repo.add_manifest("matching")
    audit_repo.add_state("matching")
    audit_repo.add_manifest("needs-more")
    audit_repo.add_state("needs-more", scopes=[s for s in DESIRED if s != "accounting.invoices"])
    audit_repo.add_manifest("has-too-much")
    audit_repo.add_state("has-too-much", scopes=[*DESIRED, "payroll.employees"])
    audit_repo.add_manifest("wrong-org")
    audit_repo.add_state("wrong-org", tenant_id=OTHER_TENANT_ID, tenant_name="Other Ltd")
    audit_repo.add_state("gone", tenant_name="Gone Ltd", scopes=["openid", "accounting.contacts"])
    return audit_repo
