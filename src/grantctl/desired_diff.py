"""``plan --base REF``: how the desired state (the manifests) changed between a git ref and the work tree.

A reviewer of a PR wants to see, above the actions, what the PR itself asks for: which connections
it adds or removes, which scopes it adds or removes, and whether it moves a connection to another
organisation, owner or contact. This module answers that with three git processes whatever the
number of manifests (``rev-parse``, ``ls-tree``, one ``cat-file --batch`` for every blob) and
compares the documents with deepdiff after normalising both sides through the manifest model, so
comments, key order and quoting never show up as changes.

Example::

    >>> diff = desired_diff(repo.root, repo.connections_dir, "origin/main", connections)
    >>> [(c.connection, c.change, c.scopes_added) for c in diff.changes]
    [('acme-ltd', 'changed', ('accounting.payments',))]
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grantctl.errors import GrantctlError
from grantctl.manifest import MANIFEST_SUFFIX, SECRETS_SUFFIX
from grantctl.models import Connection

ChangeKind = Literal["added", "removed", "changed"]

# Fields a reviewer cares about first, shown for added and removed connections too.
HEADLINE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("spec", "provider"),
    ("spec", "organization", "name"),
    ("metadata", "owner"),
    ("spec", "contact", "email"),
)
_SHORT_NAMES = {("spec", "organization", "name"): "organization"}
_GIT_TIMEOUT = 60.0
UNREADABLE: Mapping[str, Any] = {}
"""Stands for a base manifest that is not even YAML (compared by identity)."""


@dataclass(frozen=True)
class FieldChange:
    """One changed value, e.g. ``owner: jane@a.example -> joe@a.example``; None means absent."""

    field: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        return f"{self.field}: {_show(self.old)} -> {_show(self.new)}"


@dataclass(frozen=True)
class DesiredChange:
    """How one connection's manifest differs between the base ref and the work tree."""

    connection: str
    change: ChangeKind
    scopes_added: tuple[str, ...] = ()
    scopes_removed: tuple[str, ...] = ()
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class DesiredDiff:
    """All desired-state changes against ``base`` (as the user wrote it; ``commit`` is what it resolved to)."""

    base: str
    commit: str
    changes: tuple[DesiredChange, ...]


def desired_diff(repo_root: Path, connections_dir: Path, ref: str, current: Mapping[str, Connection]) -> DesiredDiff:
    """Compare the manifests at git ``ref`` with ``current`` (the work tree's, by name).

    Raises :class:`GrantctlError` when git is missing, the directory is not in a git repository or
    ``ref`` names no commit.
    """
    commit = _resolve(repo_root, ref)
    base_docs = _base_documents(repo_root, _relative(connections_dir, repo_root), commit)
    current_docs: dict[str, Mapping[str, Any]] = {name: _normalised(c) for name, c in current.items()}
    changes = [
        change
        for name in sorted(set(base_docs) | set(current_docs))
        if (change := compare(name, base_docs.get(name), current_docs.get(name))) is not None
    ]
    return DesiredDiff(base=ref, commit=commit, changes=tuple(changes))


def compare(name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> DesiredChange | None:
    """The change from ``old`` to ``new`` (normalised manifest documents; None = absent), or None."""
    if old is None and new is None:
        return None
    if old is None:
        assert new is not None
        return DesiredChange(name, "added", scopes_added=_scopes(new), fields=_headline(None, new))
    if new is None:
        return DesiredChange(name, "removed", scopes_removed=_scopes(old), fields=_headline(old, None))
    if not (_is_manifest(old) and _is_manifest(new)):
        return _coarse(name, old, new)
    from deepdiff import DeepDiff  # deferred: only `plan --base` pays for importing deepdiff

    diff = DeepDiff(dict(old), dict(new), ignore_order=True, view="tree")
    if not diff:
        return None
    added: set[str] = set()
    removed: set[str] = set()
    fields: dict[str, FieldChange] = {}
    for levels in diff.values():
        for level in levels:
            _record(level, added, removed, fields)
    return DesiredChange(
        name,
        "changed",
        scopes_added=tuple(sorted(added - removed)),
        scopes_removed=tuple(sorted(removed - added)),
        fields=tuple(fields[key] for key in sorted(fields, key=_field_order)),
    )


def _is_manifest(document: Mapping[str, Any]) -> bool:
    return isinstance(document.get("metadata"), Mapping) and isinstance(document.get("spec"), Mapping)


def _coarse(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> DesiredChange:
    """A change from or to something that is not a manifest: field by field would be noise."""
    old_scopes, new_scopes = set(_scopes(old)), set(_scopes(new))
    manifest = FieldChange("manifest", _what(old), _what(new))
    return DesiredChange(
        name,
        "changed",
        scopes_added=tuple(sorted(new_scopes - old_scopes)),
        scopes_removed=tuple(sorted(old_scopes - new_scopes)),
        fields=(manifest, *_headline(old, new)),
    )


def _what(document: Mapping[str, Any]) -> str:
    if document is UNREADABLE:
        return "unreadable YAML"
    return "valid" if _is_manifest(document) else "not a manifest"


def _record(level: Any, added: set[str], removed: set[str], fields: dict[str, FieldChange]) -> None:
    """File one deepdiff finding under scopes added/removed or a field change."""
    path = tuple(level.path(output_format="list"))
    old, new = _present(level.t1), _present(level.t2)
    if path[:2] == ("spec", "scopes") and len(path) == 3:
        # With ignore_order a changed list item is an addition plus a removal; a swapped item
        # may still come back as values_changed, which means the same.
        if old is not None:
            removed.add(old)
        if new is not None:
            added.add(new)
        return
    name = _field_name(path)
    fields[name] = FieldChange(name, old, new)


def _present(value: Any) -> str | None:
    """deepdiff marks an absent side with a sentinel; show values as plain text, None when absent."""
    if value is None or type(value).__name__ == "NotPresent":
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _field_name(path: tuple[Any, ...]) -> str:
    if path in _SHORT_NAMES:
        return _SHORT_NAMES[path]
    parts = path[1:] if path and path[0] in ("spec", "metadata") else path
    return ".".join(str(part) for part in parts) or "manifest"


def _field_order(name: str) -> tuple[int, str]:
    headline = [_field_name(path) for path in HEADLINE_FIELDS]
    return (headline.index(name), name) if name in headline else (len(headline), name)


def _headline(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> tuple[FieldChange, ...]:
    changes = []
    for path in HEADLINE_FIELDS:
        before, after = _lookup(old, path), _lookup(new, path)
        if before != after:
            changes.append(FieldChange(_field_name(path), before, after))
    return tuple(changes)


def _lookup(document: Mapping[str, Any] | None, path: tuple[str, ...]) -> str | None:
    value: Any = document
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return _present(value)


def _scopes(document: Mapping[str, Any]) -> tuple[str, ...]:
    spec = document.get("spec")
    scopes = spec.get("scopes") if isinstance(spec, Mapping) else None
    return tuple(sorted({str(s) for s in scopes})) if isinstance(scopes, list) else ()


def _normalised(connection: Connection) -> dict[str, Any]:
    return connection.model_dump(mode="json", by_alias=True)


def _show(value: str | None) -> str:
    return "(none)" if value is None else value


# --- git -----------------------------------------------------------------------------------------


def _resolve(root: Path, ref: str) -> str:
    if not ref or ref.startswith("-"):
        # A ref starting with "-" would be read by git as an option.
        raise GrantctlError(f"--base {ref!r} is not a git ref: name a branch, tag or commit")
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", what=ref).strip()
    return commit.decode("ascii")


def _base_documents(root: Path, connections: str, commit: str) -> dict[str, Mapping[str, Any]]:
    """Every manifest under ``connections`` at ``commit``, normalised, by connection name."""
    listing = _git(root, "ls-tree", "-z", commit, "--", f"{connections}/", what=commit)
    blobs = dict(_manifest_blobs(listing))
    if not blobs:
        return {}
    batch = "".join(f"{oid}\n" for oid in blobs.values()).encode("ascii")
    contents = _split_batch(_git(root, "cat-file", "--batch", what=commit, stdin=batch))
    return {name: _parse_base(contents[oid]) for name, oid in blobs.items()}


def _manifest_blobs(listing: bytes) -> Iterable[tuple[str, str]]:
    """(connection name, blob id) for each manifest in ``git ls-tree -z`` output."""
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, oid = meta.decode("ascii").split(" ")
        file_name = raw_path.decode("utf-8", "replace").rsplit("/", 1)[-1]
        if kind != "blob" or mode == "120000":  # skip symlinks and submodules
            continue
        if file_name.endswith(MANIFEST_SUFFIX) and not file_name.endswith(SECRETS_SUFFIX):
            yield file_name.removesuffix(MANIFEST_SUFFIX), oid


def _split_batch(output: bytes) -> dict[str, bytes]:
    """Blob contents by id from ``git cat-file --batch`` output (``<oid> <type> <size>\\n<data>\\n``)."""
    contents: dict[str, bytes] = {}
    position = 0
    while position < len(output):
        header_end = output.index(b"\n", position)
        oid, _, size = output[position:header_end].decode("ascii").split(" ")
        start = header_end + 1
        contents[oid] = output[start : start + int(size)]
        position = start + int(size) + 1
    return contents


def _parse_base(blob: bytes) -> Mapping[str, Any]:
    """Normalise a base manifest like the work tree's; an invalid one is compared as written."""
    import yaml
    from pydantic import ValidationError

    from grantctl.yamlsource import load_fast

    try:
        raw = load_fast(blob)
    except yaml.YAMLError:
        return UNREADABLE
    try:
        return _normalised(Connection.model_validate(raw))
    except ValidationError:
        return raw if isinstance(raw, dict) else {"manifest": raw}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise GrantctlError(f"{path} is outside the repo {root}; --base needs it inside") from None


def _git(root: Path, *args: str, what: str, stdin: bytes | None = None) -> bytes:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, input=stdin, capture_output=True, env=env, timeout=_GIT_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise GrantctlError("--base needs git, which is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise GrantctlError(f"git {args[0]} took longer than {_GIT_TIMEOUT:.0f}s; try again") from None
    if done.returncode == 0:
        return done.stdout
    message = done.stderr.decode("utf-8", "replace").strip().splitlines()
    if args[0] == "rev-parse" and not message:
        raise GrantctlError(
            f"--base {what!r}: no such commit in {root}; fetch it first (e.g. `git fetch origin main`) "
            "or check the name"
        )
    first = message[0] if message else f"exit status {done.returncode}"
    raise GrantctlError(f"--base {what!r}: git {args[0]} failed in {root}: {first}")


__all__ = ["DesiredChange", "DesiredDiff", "FieldChange", "compare", "desired_diff"]
