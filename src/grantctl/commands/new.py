"""``grantctl new NAME ...``: write a connection manifest and its encrypted credentials.

Everything is checked before the client secret is asked for, and the secret goes from the prompt
straight into ``sops`` through a pipe: it is never an argument, never in the environment, never on
disk in plaintext.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from grantctl.commands import Outcome
from grantctl.diagnostics import field_path
from grantctl.errors import GrantctlError
from grantctl.fileio import atomic_write_text
from grantctl.models import Connection
from grantctl.repo import Repo

SECRET_KEY = "client_secret"  # noqa: S105 - the name of the field, not a value
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/connection.schema.json\n"


@dataclass(frozen=True)
class NewConnection:
    name: str
    provider: str
    organization: str
    owner: str
    contact_email: str
    contact_name: str | None
    scopes: list[str]
    created_on: str | None


def run_new(repo: Repo, request: NewConnection, *, read_credentials: Callable[[], tuple[str, str]]) -> Outcome:
    from grantctl.sops.binary import encrypt_to_file

    manifest_path = repo.manifest_path(request.name)
    secrets_name = f"{request.name}.secrets.yaml"
    secrets_path = repo.connections_dir / secrets_name
    for path in (manifest_path, secrets_path):
        if path.exists():
            raise GrantctlError(f"{repo.relative(path)} already exists: `grantctl new` never overwrites a connection")
    document = manifest_document(request, secrets_name)
    connection = _validated(document)
    _check_secret_would_be_encrypted(repo, secrets_path)
    client_id, client_secret = read_credentials()
    if not client_id or not client_secret:
        raise GrantctlError("the client id and the client secret must both be non-empty")

    repo.connections_dir.mkdir(parents=True, exist_ok=True)
    encrypt_to_file({"client_id": client_id, "client_secret": client_secret}, secrets_path, config=repo.sops_config)
    try:
        atomic_write_text(manifest_path, manifest_text(document))
    except BaseException:
        secrets_path.unlink(missing_ok=True)
        raise
    return Outcome(
        "\n".join(
            [
                f"created {repo.relative(manifest_path)}",
                f"created {repo.relative(secrets_path)} (encrypted with sops)",
                "",
                "Next:",
                "  grantctl validate",
                f"  git add {repo.relative(manifest_path)} {repo.relative(secrets_path)} && open a pull request",
                f"  grantctl guide {connection.name}   # setup steps to send {request.contact_email}",
            ]
        )
    )


def _check_secret_would_be_encrypted(repo: Repo, secrets_path: Path) -> None:
    """Refuse a creation rule that would give the file sops metadata but leave ``client_secret`` readable.

    A catch-all rule with the state files' ``encrypted_regex`` (tokens only) does exactly that, and the
    result would look encrypted to anyone glancing at it.
    """
    from grantctl.sops import CreationRules

    rules = CreationRules.load(repo.sops_config)
    rule = rules.rule_for(secrets_path.absolute())
    if not rule.selectors.should_encrypt((SECRET_KEY,)):
        raise GrantctlError(
            f"{repo.relative(rules.path)}: creation rule {rule.number} would leave {SECRET_KEY} in plaintext in "
            f"{repo.relative(secrets_path)}; put a rule without encrypted_regex/encrypted_suffix for "
            "`connections/*.secrets.yaml` above it. Nothing was written"
        )


def manifest_document(request: NewConnection, secrets_name: str) -> dict[str, Any]:
    created_on = _created_on(request)
    app: dict[str, Any] = {"credentials": secrets_name}
    if created_on:
        app["createdOn"] = created_on
    return {
        "apiVersion": "grantctl/v1",
        "kind": "Connection",
        "metadata": {"name": request.name, "owner": request.owner},
        "spec": {
            "provider": request.provider,
            "organization": {"name": request.organization, "tenantId": None},
            "contact": {
                "name": request.contact_name or request.contact_email.split("@")[0],
                "email": request.contact_email,
            },
            "app": app,
            "scopes": list(request.scopes),
        },
    }


class _ManifestDumper(yaml.SafeDumper):
    """Indents list items under their key, as people write manifests by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _created_on(request: NewConnection) -> date | str | None:
    """The app's creation day: as given, or today for Xero (where it decides broad vs granular scopes).

    A valid date stays a date so it is written unquoted; anything else is left for validation to reject.
    """
    if request.created_on is None:
        return date.today() if request.provider == "xero" else None
    try:
        return date.fromisoformat(request.created_on)
    except ValueError:
        return request.created_on


def manifest_text(document: dict[str, Any]) -> str:
    body = yaml.dump(document, Dumper=_ManifestDumper, sort_keys=False, allow_unicode=True)
    return SCHEMA_LINE + body


# The argument or option each manifest field comes from, so an error names what to type differently.
_OPTIONS = {
    "metadata.name": "NAME",
    "metadata.owner": "--owner",
    "spec.provider": "--provider",
    "spec.organization.name": "--org",
    "spec.contact.email": "--contact",
    "spec.contact.name": "--contact-name",
    "spec.app.createdOn": "--created-on",
    "spec.scopes": "--scope",
}
_PATTERN_HINTS = {
    "metadata.name": "use lowercase letters, digits and dashes, starting and ending with a letter or digit "
    "(e.g. acme-ltd)",
    "metadata.owner": "give an email address (e.g. jane@agency.example)",
    "spec.contact.email": "give an email address (e.g. sam@client.example)",
}


def _option_for(field: str) -> str:
    """``spec.scopes[2]`` -> ``--scope``; a field no option sets is named as it is."""
    return _OPTIONS.get(field.split("[", 1)[0], field)


def _validated(document: dict[str, Any]) -> Connection:
    """The model for ``document``, or a GrantctlError naming the option at fault; scope lint errors too."""
    from grantctl.catalogue import lint_scopes

    try:
        connection = Connection.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = field_path(tuple(first["loc"]))
        message = _PATTERN_HINTS.get(field) if first["type"] == "string_pattern_mismatch" else None
        raise GrantctlError(f"{_option_for(field)}: {message or first['msg']}") from None
    spec = connection.spec
    errors = [
        finding.message
        for finding in lint_scopes(spec.provider, spec.scopes, created_on=spec.app.created_on, today=date.today())
        if finding.severity == "error"
    ]
    if errors:
        raise GrantctlError("--scope: " + "; ".join(errors))
    return connection


__all__ = ["NewConnection", "manifest_document", "manifest_text", "run_new"]
