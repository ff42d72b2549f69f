"""Loading and checking connection manifests and the repo config.

Checking happens in layers so each error is as precise as it can be:

1. YAML syntax, with the parser's line and column;
2. the JSON Schema generated from :mod:`grantctl.models`, on the raw document, so every shape error
   points at ``file:line:column`` and names the field;
3. the pydantic model, for what a schema cannot say;
4. rules that need context: the name matches the file, the credentials file exists, the scopes
   pass the provider's catalogue lints.

``plan`` needs none of that detail when the files are fine, so :func:`load_connection_fast` parses
with libyaml and validates with pydantic only, and falls back to the precise path on any error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from grantctl.diagnostics import Diagnostic, field_path, has_errors, sort_key
from grantctl.errors import Location, ManifestError
from grantctl.models import Config, Connection
from grantctl.yamlsource import LocatedDocument, PathKey, load_fast, load_located, read_text

MANIFEST_SUFFIX = ".yaml"
SECRETS_SUFFIX = ".secrets.yaml"


@functools.cache
def _validator(model: type[BaseModel]) -> Any:
    from jsonschema import Draft202012Validator  # deferred: jsonschema is slow to import and plan skips it

    return Draft202012Validator(model.model_json_schema(by_alias=True))


def schema_diagnostics(document: LocatedDocument, model: type[BaseModel]) -> list[Diagnostic]:
    """Every JSON Schema violation of ``document`` against ``model``'s schema, located."""
    found = []
    for error in _validator(model).iter_errors(document.data):
        key: PathKey = tuple(error.absolute_path)
        location = document.location(key)
        message = _schema_message(error)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(k for k in error.instance if k not in allowed):
                extra_key = (*key, extra)
                found.append(
                    Diagnostic(
                        document.key_location(extra_key),
                        "error",
                        f"unknown field {extra!r}; allowed here: {', '.join(sorted(allowed))}",
                        field_path(extra_key),
                    )
                )
            continue
        found.append(Diagnostic(location, "error", message, field_path(key) or None))
    return found


def _schema_message(error: Any) -> str:
    """jsonschema's messages echo whole instances; keep them short and say what to do."""
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return f"missing required field {missing[0]!r}" if missing else error.message
    if error.validator == "pattern":
        return f"{error.instance!r} does not match the expected form {error.validator_value}"
    if error.validator == "enum" or error.validator == "const":
        options = error.validator_value if error.validator == "enum" else [error.validator_value]
        return f"{error.instance!r} is not one of: {', '.join(map(str, options))}"
    if error.validator == "type":
        return f"expected {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}"
    if error.validator == "minItems":
        return f"needs at least {error.validator_value} item(s)"
    return str(error.message)


def model_diagnostics(document: LocatedDocument, model: type[BaseModel]) -> tuple[Any, list[Diagnostic]]:
    """Validate with pydantic; returns the model instance (or None) and located findings."""
    try:
        return model.model_validate(document.data), []
    except ValidationError as exc:
        found = []
        for error in exc.errors(include_url=False, include_input=False):
            key: PathKey = tuple(error["loc"])
            found.append(Diagnostic(document.location(key), "error", error["msg"], field_path(key) or None))
        return None, found


def check_connection(path: Path, *, today: date) -> tuple[Connection | None, list[Diagnostic]]:
    """All findings for one manifest, and the model when it has no errors."""
    try:
        document = load_located(path)
    except ManifestError as exc:
        return None, [Diagnostic(exc.location, "error", exc.detail)]
    if not isinstance(document.data, dict):
        return None, [
            Diagnostic(Location(path, 1, 1), "error", "expected a mapping with apiVersion, kind, metadata, spec")
        ]
    found = schema_diagnostics(document, Connection)
    if has_errors(found):
        return None, found
    connection, found = model_diagnostics(document, Connection)
    if connection is None:
        return None, found
    found += _context_diagnostics(document, connection, today=today)
    found.sort(key=sort_key)
    return (None if has_errors(found) else connection), found


def _context_diagnostics(document: LocatedDocument, connection: Connection, *, today: date) -> list[Diagnostic]:
    from grantctl.catalogue import lint_scopes

    path = document.path
    found = []
    expected_name = path.name.removesuffix(MANIFEST_SUFFIX)
    if connection.name != expected_name:
        found.append(
            Diagnostic(
                document.location(("metadata", "name")),
                "error",
                f"name {connection.name!r} must equal the file name {expected_name!r}: rename one of them",
                "metadata.name",
            )
        )
    credentials = path.parent / connection.spec.app.credentials
    if not credentials.is_file():
        found.append(
            Diagnostic(
                document.location(("spec", "app", "credentials")),
                "error",
                f"credentials file {credentials.name} not found next to the manifest: "
                f"create it with `grantctl new` or `sops encrypt`",
                "spec.app.credentials",
            )
        )
    spec = connection.spec
    for finding in lint_scopes(spec.provider, spec.scopes, created_on=spec.app.created_on, today=today):
        if finding.index is None:  # about the list as a whole: point at the `scopes:` key
            key: PathKey = ("spec", "scopes")
            location = document.key_location(key)
        else:
            key = ("spec", "scopes", finding.index)
            location = document.location(key)
        found.append(Diagnostic(location, finding.severity, finding.message, field_path(key)))
    return found


def load_connection_fast(path: Path) -> Connection:
    """Parse a manifest for ``plan``: libyaml + pydantic; any problem re-checks precisely and raises.

    Catalogue lints are left to ``validate``: a plan is still useful while a scope is being fixed.
    """
    try:
        connection = Connection.model_validate(load_fast(path.read_bytes()))
    except (yaml.YAMLError, ValidationError, OSError):
        connection = None
    if connection is not None and connection.name == path.name.removesuffix(MANIFEST_SUFFIX):
        return connection
    _, found = check_connection(path, today=date.today())
    raise first_error(found, path)


def first_error(found: Iterable[Diagnostic], path: Path) -> ManifestError:
    """The first error among ``found`` as a ManifestError (a generic one if there is none), to raise."""
    for diagnostic in sorted(found, key=sort_key):
        if diagnostic.severity == "error":
            return ManifestError(diagnostic.location, diagnostic.message, field=diagnostic.field)
    return ManifestError(Location(path), "cannot be read: run `grantctl validate` for details")


def check_config(path: Path) -> tuple[Config | None, list[Diagnostic]]:
    """Findings for ``grantctl.yaml``."""
    try:
        document = load_located(path)
    except ManifestError as exc:
        return None, [Diagnostic(exc.location, "error", exc.detail)]
    found = schema_diagnostics(document, Config)
    if has_errors(found):
        return None, found
    return model_diagnostics(document, Config)


def load_config(path: Path) -> Config:
    """The repo config, or a ManifestError at the first problem.

    Every command loads it, so the fine file takes the fast path (libyaml + pydantic); only a file
    that fails is checked again with the JSON Schema for a precise ``file:line:column``.
    """
    if not path.is_file():
        raise ManifestError(Location(path), "not found: run `grantctl init` to create a connections repo")
    try:
        return Config.model_validate(load_fast(path.read_bytes()))
    except (yaml.YAMLError, ValidationError, OSError):
        pass
    config, found = check_config(path)
    if config is None:
        raise first_error(found, path)
    return config  # pragma: no cover - the fast path accepts whatever the precise one does


def manifest_paths(directory: Path) -> list[Path]:
    """Connection manifests in ``directory``, sorted; secrets files are not manifests."""
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.name.endswith(MANIFEST_SUFFIX) and not p.name.endswith(SECRETS_SUFFIX)
    )


__all__ = [
    "check_config",
    "check_connection",
    "load_config",
    "load_connection_fast",
    "manifest_paths",
    "read_text",
]
