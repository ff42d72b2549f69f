"""``grantctl plan``: compare manifests with grants and print (or save) what apply would do.

Needs no key and no network: manifests are plaintext and so is the grant part of every state file.
It runs on every PR over every connection, so the read path is lean: libyaml for parsing, pydantic
for checking, no jsonschema, no httpx, and deepdiff only with ``--base``. A file that fails the fast
path is re-checked precisely and reported with its name (and line, for manifests).

Example::

    >>> outcome = run_plan(repo, fmt="markdown", out=Path("plan.json"), base="origin/main",
    ...                    detailed_exitcode=True, color=False)
    >>> outcome.exit_code   # 2: there are changes
    2
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import TypeAdapter, ValidationError

from grantctl.commands import Outcome
from grantctl.errors import EXIT_CHANGES, EXIT_OK, GrantctlError, StateError
from grantctl.fileio import atomic_write_text
from grantctl.manifest import MANIFEST_SUFFIX, load_connection_fast
from grantctl.plan import Plan, PlanSettings, build_plan
from grantctl.plan_render import RENDERERS, render_json, render_markdown, render_text
from grantctl.state.model import Grant
from grantctl.yamlsource import load_fast

if TYPE_CHECKING:
    from grantctl.desired_diff import DesiredDiff
    from grantctl.models import Connection
    from grantctl.repo import Repo
    from grantctl.state.base import StateStore

# Top-level keys of a state file that are not part of the grant: sops' metadata and the
# encrypted tokens. Dropping them is what lets plan run without any key.
NOT_GRANT_KEYS = ("sops", "tokens")

_GRANTS = TypeAdapter(list[Grant])

# The tokens and the sops block are most of a state file's bytes (and of its parse time) and plan
# needs neither, so they are cut out before parsing: a top-level `sops:` or `tokens:` line and every
# indented, blank or comment line after it. Only top-level keys sit at column 0 in a block mapping,
# so the cut cannot reach into another value; anything else still works because the keys are also
# dropped after parsing, and a parse error is reported against the whole, uncut file.
_NOT_GRANT_BLOCK = re.compile(rb"^(?:sops|tokens):.*\n(?:(?:[ \t].*|#.*)?\n)*", re.MULTILINE)


def run_plan(
    repo: Repo,
    *,
    fmt: str = "text",
    out: Path | None = None,
    base: str | None = None,
    detailed_exitcode: bool = False,
    color: bool = False,
    now: datetime | None = None,
    store: StateStore | None = None,
) -> Outcome:
    """Plan every connection of ``repo`` and render it as ``fmt`` (text, json or markdown).

    ``out`` also saves the JSON document for ``apply`` (atomically). ``base`` adds the desired-state
    changes since that git ref. With ``detailed_exitcode`` the exit code is 2 when there are
    actions (0 otherwise); errors raise :class:`GrantctlError` (exit 1). ``store`` overrides where
    grants are read from (default: the repo's state files, or its configured store).
    """
    if fmt not in RENDERERS:
        raise GrantctlError(f"unknown plan format {fmt!r}; choose one of: {', '.join(RENDERERS)}")
    settings = PlanSettings.from_config(repo.config)
    with _cyclic_gc_paused():
        connections = load_connections(repo.manifest_paths())
        plan = build_plan(connections, _read_grants(repo, store), now=now or datetime.now(UTC), settings=settings)
    desired = _desired_diff(repo, base, connections) if base else None
    notes = []
    if out is not None:
        atomic_write_text(out, render_json(plan, desired=desired))
        notes.append(f"Saved the plan to {out}; run `grantctl apply --plan {out}` to carry it out.")
    exit_code = EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK
    return Outcome(_render(plan, fmt, desired, color), exit_code, notes)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while thousands of documents and models pile up.

    They hold no reference cycles, so the collector finds nothing, yet with 10,000 connections its
    repeated full passes over the growing heap made loading superlinear (6.5 s instead of 4.2 s).
    Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_connections(paths: Iterable[Path]) -> list[Connection]:
    """Every manifest in ``paths``; the first invalid one raises a located ManifestError."""
    return [load_connection_fast(path) for path in paths]


def state_paths(directory: Path) -> list[Path]:
    """State files in ``directory``, sorted; hidden files (locks, temp files of atomic writes) are not."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(MANIFEST_SUFFIX) and not p.name.startswith("."))


def read_state_grants(directory: Path) -> dict[str, Grant]:
    """The plaintext grant of every state file in ``directory``, by connection name. Needs no key.

    All files are validated in one pydantic call; when that fails, each file is checked on its own
    so the error names the file and field that is wrong.
    """
    paths = state_paths(directory)
    documents = [_grant_document(path) for path in paths]
    try:
        grants = _GRANTS.validate_python(documents)
    except ValidationError:
        grants = [_validate_one(path, document) for path, document in zip(paths, documents, strict=True)]
    found = {}
    for path, grant in zip(paths, grants, strict=True):
        name = path.name.removesuffix(MANIFEST_SUFFIX)
        if grant.connection != name:
            raise StateError(f"{path}: says it is the state of {grant.connection!r}; the file name says {name!r}")
        found[name] = grant
    return found


def _grant_document(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: cannot read the state file: {exc.strerror}") from None
    try:
        document = load_fast(_NOT_GRANT_BLOCK.sub(b"", data if data.endswith(b"\n") else data + b"\n"))
    except yaml.YAMLError:
        document = _load_whole(path, data)
    if not isinstance(document, dict):
        raise StateError(f"{path}: not a state document (expected a mapping); restore it from git history")
    for key in NOT_GRANT_KEYS:
        document.pop(key, None)
    return document


def _load_whole(path: Path, data: bytes) -> Any:
    """Parse the uncut file, so a syntax error points at the line the user sees in the file."""
    try:
        return load_fast(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise StateError(f"{path}{where}: invalid YAML; restore it from git history") from None


def _validate_one(path: Path, document: dict[str, Any]) -> Grant:
    try:
        return Grant.model_validate(document)
    except ValidationError as exc:
        # include_input=False: a value in a state file is never echoed into a message.
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        raise StateError(f"{path}: {field}: {first['msg']}; grantctl writes these files, restore it from git") from None


def _read_grants(repo: Repo, store: StateStore | None) -> dict[str, Grant]:
    if store is None and repo.config.state.backend == "files":
        # Faster than FilesStore.read_grants (bulk validation, tokens cut before parsing) and it
        # keeps sops, pyrage and cryptography out of the process: plan runs on every PR.
        return read_state_grants(repo.state_dir)
    if store is None:
        from grantctl.state.registry import open_store

        store = open_store(repo)
    return store.read_grants()


def _desired_diff(repo: Repo, base: str, connections: list[Connection]) -> DesiredDiff:
    from grantctl.desired_diff import desired_diff  # deferred: deepdiff is only needed with --base

    current = {connection.name: connection for connection in connections}
    return desired_diff(repo.root, repo.connections_dir, base, current)


def _render(plan: Plan, fmt: str, desired: DesiredDiff | None, color: bool) -> str:
    if fmt == "json":
        return render_json(plan, desired=desired)
    if fmt == "markdown":
        return render_markdown(plan, desired=desired)
    return render_text(plan, desired=desired, color=color)


__all__ = ["load_connections", "read_state_grants", "run_plan", "state_paths"]
