"""Builders and constants for the audit tests (imported by the tests and by conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grantctl.repo import Repo

TENANT_ID = "8c5b3a1e-0000-4000-8000-000000000001"
OTHER_TENANT_ID = "8c5b3a1e-0000-4000-8000-0000000000ff"
DESIRED = ("openid", "email", "offline_access", "accounting.invoices", "accounting.settings.read")
# Ciphertext-looking token values: no audit output may ever contain them (or any part of them).
ENC_ACCESS = "ENC[AES256_GCM,data:QUNDRVNTLXNlY3JldA==,iv:aXYx,tag:dGFnMQ==,type:str]"
ENC_REFRESH = "ENC[AES256_GCM,data:UkVGUkVTSC1zZWNyZXQ=,iv:aXYy,tag:dGFnMg==,type:str]"
SOPS_MAC = "ENC[AES256_GCM,data:TUFDLXNlY3JldA==,iv:aXYz,tag:dGFnMw==,type:str]"
AGE_BLOCK = "-----BEGIN AGE ENCRYPTED FILE-----\nQUdFLXByaXZhdGUtYmxvYg==\n-----END AGE ENCRYPTED FILE-----\n"
SECRET_MARKERS = ("ENC[", "QUNDRVNTLXNlY3JldA", "UkVGUkVTSC1zZWNyZXQ", "TUFDLXNlY3JldA", "QUdFLXByaXZhdGUtYmxvYg")


def manifest_document(
    name: str,
    *,
    scopes: Sequence[str] = DESIRED,
    organization: str = "Acme Ltd",
    tenant_id: str | None = TENANT_ID,
    provider: str = "xero",
    owner: str = "jane@agency.example",
    contact_name: str = "Sam Lee",
    contact_email: str = "sam@acme.example",
) -> dict[str, Any]:
    return {
        "apiVersion": "grantctl/v1",
        "kind": "Connection",
        "metadata": {"name": name, "owner": owner},
        "spec": {
            "provider": provider,
            "organization": {"name": organization, "tenantId": tenant_id},
            "contact": {"name": contact_name, "email": contact_email},
            "app": {"credentials": f"{name}.secrets.yaml", "createdOn": "2026-11-20"},
            "scopes": list(scopes),
        },
    }


def grant_document(
    name: str,
    *,
    scopes: Sequence[str] = DESIRED,
    tenant_id: str | None = TENANT_ID,
    tenant_name: str = "Acme Ltd",
    provider: str = "xero",
    **fields: Any,
) -> dict[str, Any]:
    """The plaintext grant fields as grantctl writes them (what a state file holds outside tokens/sops)."""
    document: dict[str, Any] = {
        "apiVersion": "grantctl/v1",
        "kind": "State",
        "connection": name,
        "provider": provider,
    }
    if tenant_id is not None:
        document["tenant"] = {"id": tenant_id, "name": tenant_name, "type": "ORGANISATION"}
    document |= {
        "granted_scopes": list(scopes),
        "authorized_by": {"user_id": "u-1", "email": "sam@acme.example", "name": "Sam Lee"},
        "authorized_at": "2026-12-01T10:00:00Z",
        "auth_event_id": "ev-1",
        "refreshed_at": "2027-01-10T06:00:00Z",
        "access_token_expires_at": "2027-01-10T06:30:00Z",
        "refresh_token_issued_at": "2027-01-10T06:00:00Z",
        "consecutive_failures": 0,
        "links": [],
    }
    return document | fields


def state_file_text(grant: dict[str, Any], *, tokens: dict[str, str] | None = None, mac: str = SOPS_MAC) -> str:
    """A keyless-readable state file: plaintext grant, fake ENC[...] tokens, a fake sops block."""
    document = dict(grant)
    document["tokens"] = tokens if tokens is not None else {"access_token": ENC_ACCESS, "refresh_token": ENC_REFRESH}
    document["sops"] = {
        "age": [{"recipient": "age1examplerecipient", "enc": AGE_BLOCK}],
        "lastmodified": "2027-01-10T06:00:01Z",
        "mac": mac,
        "encrypted_regex": "^(access_token|refresh_token|id_token)$",
        "version": "3.11.0",
    }
    return yaml.safe_dump(document, sort_keys=False)


@dataclass
class AuditRepo:
    """A connections repo in a temp directory; tests add manifests, state files and commits."""

    root: Path

    @property
    def repo(self) -> Repo:
        return Repo.load(self.root)

    def add_manifest(self, name: str, **options: Any) -> Path:
        path = self.root / "connections" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest_document(name, **options), sort_keys=False))
        (self.root / "connections" / f"{name}.secrets.yaml").write_text("client_id: ENC[AES256_GCM,data:x]\n")
        return path

    def add_state(self, name: str, *, tokens: dict[str, str] | None = None, mac: str = SOPS_MAC, **fields: Any) -> Path:
        path = self.root / "state" / f"{name}.yaml"
        path.write_text(state_file_text(grant_document(name, **fields), tokens=tokens, mac=mac))
        return path

    def git(self, *args: str, when: str = "2027-01-01T00:00:00Z", author: str = "Jane Doe") -> str:
        """Run git in the repo with a fixed identity and date, isolated from any user or system config."""
        email = author.lower().replace(" ", ".") + "@agency.example"
        env = {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": author,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_NAME": author,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_COMMITTER_DATE": when,
        }
        command = ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args]
        result = subprocess.run(command, cwd=self.root, env=env, capture_output=True, text=True, check=True)
        return result.stdout

    def commit(self, message: str, *, when: str, author: str = "Jane Doe") -> str:
        """Commit everything; returns the commit id."""
        self.git("add", "-A", when=when, author=author)
        self.git("commit", "-q", "-m", message, when=when, author=author)
        return self.git("rev-parse", "HEAD").strip()
