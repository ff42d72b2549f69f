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

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from grantctl.commands import Outcome
from grantctl.errors import EXIT_CHANGES, EXIT_OK, GrantctlError
from grantctl.fileio import atomic_write_text
from grantctl.manifest import MANIFEST_SUFFIX, load_connection_fast
from grantctl.plan import Plan, PlanSettings, build_plan
from grantctl.plan_render import RENDERERS, render_json, render_markdown, render_text
from grantctl.state import plaintext
from grantctl.state.model import Grant
from grantctl.yamlsource import cyclic_gc_paused

if TYPE_CHECKING:
    from grantctl.desired_diff import DesiredDiff
    from grantctl.models import Connection
    from grantctl.repo import Repo
    from grantctl.state.base import StateStore


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
    with cyclic_gc_paused():
        connections = load_connections(repo.manifest_paths())
        plan = build_plan(connections, _read_grants(repo, store), now=now or datetime.now(UTC), settings=settings)
    desired = _desired_diff(repo, base, connections) if base else None
    notes = []
    if out is not None:
        atomic_write_text(out, render_json(plan, desired=desired))
        notes.append(f"Saved the plan to {out}; run `grantctl apply --plan {out}` to carry it out.")
    exit_code = EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK
    return Outcome(_render(plan, fmt, desired, color), exit_code, notes)


def load_connections(paths: Iterable[Path]) -> list[Connection]:
    """Every manifest in ``paths``; the first invalid one raises a located ManifestError."""
    return [load_connection_fast(path) for path in paths]


def state_paths(directory: Path) -> list[Path]:
    """State files in ``directory``, sorted; hidden files (locks, temp files of atomic writes) are not."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(MANIFEST_SUFFIX) and not p.name.startswith("."))


def read_state_grants(directory: Path) -> dict[str, Grant]:
    """The plaintext grant of every state file in ``directory``, by connection name. Needs no key."""
    return plaintext.read_grants(state_paths(directory))


def _read_grants(repo: Repo, store: StateStore | None) -> dict[str, Grant]:
    if store is None and repo.config.state.backend == "files":
        # The same reader FilesStore uses, without importing the store: that keeps sops, pyrage
        # and cryptography out of the process, and plan runs on every PR.
        return plaintext.read_grants(state_paths(repo.state_dir), shown=repo.relative)
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
