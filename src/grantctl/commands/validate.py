"""``grantctl validate``: manifests, the repo config, and whether every secret is really a secret.

Needs no key: it reads SOPS metadata (is the file encrypted, to whom), never the values, so it runs
on fork pull requests.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import yaml

from grantctl.commands import Outcome
from grantctl.diagnostics import Diagnostic, has_errors, sort_key
from grantctl.errors import EXIT_ERROR, EXIT_OK, Location
from grantctl.manifest import check_config, check_connection
from grantctl.models import Connection
from grantctl.repo import CONFIG_FILE, DEMO_RECIPIENT, Repo, is_example
from grantctl.state.model import TOKEN_FIELDS

# Values that must be sops ciphertext whatever the file's own selectors say.
CREDENTIAL_SECRETS: tuple[tuple[str, ...], ...] = (("client_secret",),)
STATE_SECRETS: tuple[tuple[str, ...], ...] = tuple(("tokens", name) for name in TOKEN_FIELDS)


def run_validate(repo: Repo, paths: list[Path], *, fmt: str, today: date | None = None) -> Outcome:
    today = today or date.today()
    manifests = [p.resolve() for p in paths] if paths else repo.manifest_paths()
    found = check_config(repo.root / CONFIG_FILE)[1]
    connections: list[Connection] = []
    for path in manifests:
        connection, problems = check_connection(path, today=today)
        found += problems
        if connection is not None:
            connections.append(connection)
            found += secrets_findings(repo, connection, path)
    if not paths:
        found += state_findings(repo)
    found = sorted((_relative(repo, d) for d in found), key=sort_key)
    exit_code = EXIT_ERROR if has_errors(found) else EXIT_OK
    renderer = {"json": _json, "github": _github}.get(fmt, _text)
    return Outcome(renderer(found, len(manifests)), exit_code)


def secrets_findings(repo: Repo, connection: Connection, manifest: Path) -> list[Diagnostic]:
    """Is the credentials file encrypted, and not to the demo key unless it is an example?"""
    path = manifest.parent / connection.spec.app.credentials
    if not path.is_file():
        return []  # already reported against the manifest
    return _encryption_findings(path, connection.name, what="credentials", secret_fields=CREDENTIAL_SECRETS)


def state_findings(repo: Repo) -> list[Diagnostic]:
    """State files must hold their tokens encrypted, and not to the demo key unless they are examples."""
    if not repo.state_dir.is_dir():
        return []
    found = []
    for path in sorted(repo.state_dir.glob("*.yaml")):
        found += _encryption_findings(path, path.name.removesuffix(".yaml"), what="state", secret_fields=STATE_SECRETS)
    return found


def _encryption_findings(
    path: Path, name: str, *, what: str, secret_fields: tuple[tuple[str, ...], ...]
) -> list[Diagnostic]:
    from grantctl.sops.binary import is_encrypted, recipients

    where = Location(path, 1, 1)
    if not is_encrypted(path):
        return [
            Diagnostic(
                where,
                "error",
                f"{what} file is not SOPS-encrypted: encrypt it now (`sops encrypt -i {path.name}`) "
                "and rotate the secret if it was ever committed in plaintext",
            )
        ]
    readable = _plaintext_secrets(path, secret_fields)
    if readable:
        # sops metadata and a MAC, yet the secret is readable: the file's rule encrypts too little.
        return [
            Diagnostic(
                where,
                "error",
                f"{what} file holds {', '.join(readable)} in plaintext although it is a sops file (its "
                "creation rule's encrypted_regex or encrypted_suffix leaves it out): fix the rule in "
                ".sops.yaml, re-encrypt the file and rotate the secret if it was ever committed",
            )
        ]
    if DEMO_RECIPIENT in recipients(path) and not is_example(name):
        return [
            Diagnostic(
                where,
                "error",
                f"{what} file is encrypted to the public DEMO key: re-encrypt it to your team's key "
                "(`sops updatekeys`) and rotate the secret; the demo key is for example-* connections only",
            )
        ]
    return []


def _plaintext_secrets(path: Path, fields: tuple[tuple[str, ...], ...]) -> list[str]:
    """The dotted names of ``fields`` that hold a non-empty value that is not sops ciphertext."""
    from grantctl.sops import is_enc

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []  # is_encrypted already judged the file unreadable or not
    readable = []
    for field in fields:
        value: object = document
        for key in field:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, "") and not is_enc(value):
            readable.append(".".join(field))
    return readable


def _relative(repo: Repo, diagnostic: Diagnostic) -> Diagnostic:
    location = diagnostic.location
    return replace(diagnostic, location=replace(location, path=str(repo.relative(Path(location.path)))))


def _text(found: list[Diagnostic], checked: int) -> str:
    errors = sum(d.severity == "error" for d in found)
    warnings = len(found) - errors
    lines = [str(d) for d in found]
    verdict = "invalid" if errors else "valid"
    lines.append(f"{checked} connection(s) checked: {verdict} ({errors} error(s), {warnings} warning(s))")
    return "\n".join(lines)


def _json(found: list[Diagnostic], checked: int) -> str:
    document = {
        "formatVersion": 1,
        "valid": not has_errors(found),
        "checked": checked,
        "diagnostics": [
            {
                "file": str(d.location.path),
                "line": d.location.line,
                "column": d.location.column,
                "severity": d.severity,
                "field": d.field,
                "message": d.message,
            }
            for d in found
        ],
    }
    return json.dumps(document, indent=2)


def _github(found: list[Diagnostic], checked: int) -> str:
    """GitHub workflow commands: one annotation per finding, shown inline on the PR diff."""
    lines = []
    for d in found:
        props = [f"file={_escape_property(str(d.location.path))}"]
        if d.location.line:
            props.append(f"line={d.location.line}")
        if d.location.column:
            props.append(f"col={d.location.column}")
        props.append("title=grantctl validate")
        message = f"{d.field}: {d.message}" if d.field else d.message
        lines.append(f"::{d.severity} {','.join(props)}::{_escape_data(message)}")
    lines.append(_text(found, checked).splitlines()[-1])
    return "\n".join(lines)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


__all__ = ["run_validate", "secrets_findings", "state_findings"]
