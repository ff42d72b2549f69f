"""Plain-data builders for planner tests, and a connections repo on disk for command tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from grantctl.models import Config, Connection
from grantctl.repo import Repo
from grantctl.state.model import Grant

NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
TENANT_ID = "8c5b3a1e-0000-4000-8000-000000000001"
OTHER_TENANT_ID = "8c5b3a1e-0000-4000-8000-0000000000ff"
DESIRED = ("openid", "email", "offline_access", "accounting.invoices", "accounting.settings.read")
# Secret-looking values planted in state files; no output or message may ever contain them.
REFRESH_TOKEN = "rt-PLAINTEXT-REFRESH-TOKEN-0123456789abcdefghij"
ACCESS_TOKEN = "at-PLAINTEXT-ACCESS-TOKEN-9876543210zyxwvutsrq"


def connection(
    name: str = "acme-ltd",
    *,
    scopes: Sequence[str] = DESIRED,
    organization: str = "Acme Ltd",
    tenant_id: str | None = TENANT_ID,
    provider: str = "xero",
) -> Connection:
    """A valid manifest model."""
    return Connection.model_validate(manifest_document(name, scopes=scopes, organization=organization,
                                                      tenant_id=tenant_id, provider=provider))  # fmt: skip


def manifest_document(
    name: str,
    *,
    scopes: Sequence[str] = DESIRED,
    organization: str = "Acme Ltd",
    tenant_id: str | None = TENANT_ID,
    provider: str = "xero",
    owner: str = "jane@agency.example",
    contact_email: str = "sam@acme.example",
) -> dict[str, Any]:
    return {
        "apiVersion": "grantctl/v1",
        "kind": "Connection",
        "metadata": {"name": name, "owner": owner},
        "spec": {
            "provider": provider,
            "organization": {"name": organization, "tenantId": tenant_id},
            "contact": {"name": "Sam Lee", "email": contact_email},
            "app": {"credentials": f"{name}.secrets.yaml", "createdOn": "2026-11-20"},
            "scopes": list(scopes),
        },
    }


def grant(
    name: str = "acme-ltd",
    *,
    scopes: Sequence[str] = DESIRED,
    tenant_id: str | None = TENANT_ID,
    tenant_name: str = "Acme Ltd",
    idle_days: int = 3,
    provider: str = "xero",
    **fields: Any,
) -> Grant:
    """A grant as the callback would have written it ``idle_days`` after its refresh token was issued."""
    issued = NOW - timedelta(days=idle_days)
    document: dict[str, Any] = {
        "connection": name,
        "provider": provider,
        "tenant": {"id": tenant_id, "name": tenant_name, "type": "ORGANISATION"} if tenant_id else None,
        "granted_scopes": list(scopes),
        "authorized_at": issued - timedelta(days=30),
        "refresh_token_issued_at": issued,
        "refreshed_at": issued,
        **fields,
    }
    return Grant.model_validate(document)


def state_file_text(g: Grant, *, tokens: dict[str, str] | None = None) -> str:
    """A state file the way the files store writes it: plaintext grant, encrypted tokens, sops block."""
    document: dict[str, Any] = g.to_document()
    document["tokens"] = tokens or {
        "access_token": "ENC[AES256_GCM,data:QUJD,iv:aXY=,tag:dGFn,type:str]",
        "refresh_token": "ENC[AES256_GCM,data:REVG,iv:aXY=,tag:dGFn,type:str]",
    }
    document["sops"] = {
        "age": [
            {
                "recipient": "age1example",
                "enc": "-----BEGIN AGE ENCRYPTED FILE-----\nYWJj\n-----END AGE ENCRYPTED FILE-----\n",
            }
        ],
        "lastmodified": "2027-01-01T00:00:00Z",
        "mac": "ENC[AES256_GCM,data:TUFD,iv:aXY=,tag:dGFn,type:str]",
        "encrypted_regex": "^(access_token|refresh_token|id_token)$",
        "version": "3.11.0",
    }
    return yaml.safe_dump(document, sort_keys=False)


@dataclass
class PlanRepo:
    """A connections repo in a temp directory; tests add manifests and state files to it."""

    root: Path

    @property
    def repo(self) -> Repo:
        config = Config.model_validate(
            {"apiVersion": "grantctl/v1", "kind": "Config", "publicUrl": "https://c.example"}
        )
        return Repo(root=self.root, config=config)

    def add_manifest(self, name: str, **options: Any) -> Path:
        path = self.root / "connections" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest_document(name, **options), sort_keys=False))
        (self.root / "connections" / f"{name}.secrets.yaml").write_text("client_id: ENC[AES256_GCM,data:x]\n")
        return path

    def add_state(self, g: Grant, *, tokens: dict[str, str] | None = None) -> Path:
        path = self.root / "state" / f"{g.connection}.yaml"
        path.write_text(state_file_text(g, tokens=tokens))
        return path

    def remove_manifest(self, name: str) -> None:
        (self.root / "connections" / f"{name}.yaml").unlink()


@pytest.fixture
def plan_repo(tmp_path: Path) -> PlanRepo:
    root = tmp_path / "repo"
    (root / "connections").mkdir(parents=True)
    (root / "state").mkdir()
    (root / "grantctl.yaml").write_text("apiVersion: grantctl/v1\nkind: Config\npublicUrl: https://c.example\n")
    return PlanRepo(root)


@pytest.fixture
def mixed_repo(plan_repo: PlanRepo) -> PlanRepo:
    """One connection per situation: new, matching, missing scope, excess scope, orphan."""
    plan_repo.add_manifest("new-client", organization="New Client Ltd")
    plan_repo.add_manifest("matching")
    plan_repo.add_state(grant("matching"))
    plan_repo.add_manifest("needs-more")
    plan_repo.add_state(grant("needs-more", scopes=[s for s in DESIRED if s != "accounting.invoices"]))
    plan_repo.add_manifest("has-too-much")
    plan_repo.add_state(grant("has-too-much", scopes=[*DESIRED, "payroll.employees"]))
    # The token values ride inside ENC[...] (as if a broken cipher leaked them) so tests can prove
    # plan never prints what sits under `tokens:`.
    plan_repo.add_state(
        grant("gone", tenant_name="Gone Ltd"),
        tokens={"refresh_token": _enc(REFRESH_TOKEN), "access_token": _enc(ACCESS_TOKEN)},
    )
    return plan_repo


def _enc(value: str) -> str:
    return f"ENC[AES256_GCM,data:{value},iv:aXY=,tag:dGFn,type:str]"


class Make:
    """The builders and constants above, handed to tests as the ``make`` fixture."""

    NOW = NOW
    TENANT_ID = TENANT_ID
    OTHER_TENANT_ID = OTHER_TENANT_ID
    DESIRED = DESIRED
    REFRESH_TOKEN = REFRESH_TOKEN
    ACCESS_TOKEN = ACCESS_TOKEN
    connection = staticmethod(connection)
    grant = staticmethod(grant)
    manifest_document = staticmethod(manifest_document)
    state_file_text = staticmethod(state_file_text)


@pytest.fixture(scope="session")
def make() -> Make:
    return Make()
