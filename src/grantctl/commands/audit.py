"""``grantctl audit [NAME...] [--format table|markdown|json|csv] [--history]``.

What each client granted, by whom and when, from the repo alone: manifests and the plaintext part of
the state files, so it needs no key and no network. ``--history`` adds, per connection, every commit
that changed its state file, read from git with exactly three processes however long the history is:
``git rev-parse`` (where the repository is, whether it is shallow), one ``git log --raw`` (which
commits changed which state file, and the blob ids before and after) and one ``git cat-file --batch``
(the contents of all those blobs).

Example::

    >>> outcome = run_audit(repo, fmt="csv", history=False, names=[])
    >>> outcome.output.splitlines()[0]
    'name,provider,status,organization,...'
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from grantctl.audit import FORMATS, UNREADABLE, Document, History, HistoryEntry, build_rows, grant_changes, render
from grantctl.commands import Outcome
from grantctl.errors import GrantctlError
from grantctl.manifest import MANIFEST_SUFFIX, load_connection_fast
from grantctl.models import NAME_PATTERN
from grantctl.yamlsource import load_fast

if TYPE_CHECKING:
    from grantctl.repo import Repo
    from grantctl.state.base import StateStore
    from grantctl.state.model import Grant

_NAME = re.compile(NAME_PATTERN)
_NULL_BLOB = "0" * 40
GIT_TIMEOUT = 120.0  # seconds; a local git over even a very long history is far quicker than this


def run_audit(
    repo: Repo,
    *,
    fmt: str = "table",
    history: bool = False,
    names: Sequence[str] = (),
    store: StateStore | None = None,
    width: int | None = None,
) -> Outcome:
    """Audit ``names`` (default: every connection with a manifest or a state) and render it as ``fmt``.

    ``history`` adds each commit that changed each state file (needs git and a clone of the repo).
    ``store`` replaces where grants are read from (default: the repo's state backend); ``width`` fixes
    the table width (default: the terminal's, or 120 when there is none).
    """
    if fmt not in FORMATS:
        raise GrantctlError(f"unknown audit format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    _check_names(names)
    grants = _read_grants(store or _open_store(repo), names)
    found = read_history(repo, names) if history else None
    selected = _select(repo, names, grants, found)
    connections = [load_connection_fast(repo.manifest_path(name)) for name in selected if _has_manifest(repo, name)]
    rows = build_rows(connections, {name: grants[name] for name in selected if name in grants})
    output = render(rows, fmt=fmt, history=found, width=width or _terminal_width())
    return Outcome(output, notes=_notes(fmt, found))


def _open_store(repo: Repo) -> StateStore:
    from grantctl.state.registry import open_store

    return open_store(repo)


def _read_grants(store: StateStore, names: Sequence[str]) -> dict[str, Grant]:
    """Every grant, or only those of ``names``, so a broken state file elsewhere does not block a named audit."""
    if not names:
        return store.read_grants()
    found = {name: store.read_grant(name) for name in sorted(set(names))}
    return {name: grant for name, grant in found.items() if grant is not None}


def _check_names(names: Iterable[str]) -> None:
    bad = sorted({name for name in names if not _NAME.fullmatch(name)})
    if bad:
        raise GrantctlError(
            f"{', '.join(map(repr, bad))}: not a connection name (lowercase letters, digits and dashes)"
        )


def _has_manifest(repo: Repo, name: str) -> bool:
    return repo.manifest_path(name).is_file()


def _select(repo: Repo, names: Sequence[str], grants: dict[str, Grant], found: History | None) -> list[str]:
    """The connections to report on, sorted; a name that exists nowhere is an error."""
    with_manifest = {path.name.removesuffix(MANIFEST_SUFFIX) for path in repo.manifest_paths()}
    if not names:
        return sorted(with_manifest | set(grants))
    in_history = {entry.connection for entry in found.entries} if found is not None else set()
    unknown = sorted(set(names) - with_manifest - set(grants) - in_history)
    if unknown:
        raise GrantctlError(
            f"no manifest or state for {', '.join(unknown)}: check the name(s) against "
            f"`ls {repo.relative(repo.connections_dir)} {repo.relative(repo.state_dir)}`"
            + ("" if found is not None else " (a connection that was removed shows up with --history)")
        )
    return sorted(set(names) & (with_manifest | set(grants)))


def _terminal_width() -> int:
    return shutil.get_terminal_size(fallback=(120, 24)).columns


def _notes(fmt: str, found: History | None) -> list[str]:
    notes = []
    if found is not None and found.shallow:
        notes.append("note: the clone is shallow, so older history is missing; run `git fetch --unshallow`")
    if found is not None and fmt == "csv":
        notes.append("note: with --history the CSV lists the history (one row per change), not the connections")
    return notes


# --- git history -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileChange:
    """One state file changed by one commit, as ``git log --raw`` reports it."""

    connection: str
    old_blob: str  # _NULL_BLOB when the commit created the file
    new_blob: str  # _NULL_BLOB when the commit deleted it


@dataclass(frozen=True)
class _Commit:
    sha: str
    date: datetime
    author_name: str
    author_email: str
    subject: str
    files: tuple[_FileChange, ...]


# %x1e starts a commit, %x1f separates its fields; neither can appear in a commit header.
_LOG_FORMAT = "%x1e%H%x1f%aI%x1f%an%x1f%ae%x1f%s"
_RAW_LINE = re.compile(r"^:\d+ \d+ ([0-9a-f]{40,64}) ([0-9a-f]{40,64}) [A-Z]\d*\t(.+)$")


def read_history(repo: Repo, names: Sequence[str] = ()) -> History:
    """Every commit that changed a state file of ``names`` (default: all), newest first per connection.

    Raises :class:`GrantctlError` when git is missing or the repo is not inside a git work tree.
    """
    if repo.config.state.backend != "files":
        raise GrantctlError(
            f"--history reads the git history of the state files, and the {repo.config.state.backend} "
            "state backend keeps no state in git: leave out --history"
        )
    top, shallow = _git_toplevel(repo.root)
    state_dir = _relative_to(repo.state_dir, top)
    paths = [f"{state_dir}/{name}{MANIFEST_SUFFIX}" for name in sorted(set(names))] or [f"{state_dir}/"]
    commits = _log(top, paths, state_dir)
    blobs = _documents(top, {blob for c in commits for f in c.files for blob in (f.old_blob, f.new_blob)})
    entries = [_entry(commit, change, blobs) for commit in commits for change in commit.files]
    ordered = sorted(entries, key=lambda entry: entry.connection)  # stable: git's newest-first order stays
    return History(entries=tuple(ordered), shallow=shallow, paths=tuple(paths))


def _entry(commit: _Commit, change: _FileChange, blobs: dict[str, Document]) -> HistoryEntry:
    before = blobs.get(change.old_blob) if change.old_blob != _NULL_BLOB else None
    after = blobs.get(change.new_blob) if change.new_blob != _NULL_BLOB else None
    return HistoryEntry(
        connection=change.connection,
        commit=commit.sha,
        date=commit.date,
        author_name=commit.author_name,
        author_email=commit.author_email,
        subject=commit.subject,
        changes=grant_changes(before, after),
    )


def _git(top: Path, args: Sequence[str], *, stdin: bytes | None = None) -> bytes:
    """Run one git command in ``top`` and return its stdout; any failure is a GrantctlError."""
    command = ["git", "--literal-pathspecs", "-c", "core.quotepath=off", *args]
    try:
        result = subprocess.run(  # fixed argv, no shell
            command, cwd=top, input=stdin, capture_output=True, timeout=GIT_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise GrantctlError("--history needs git, which is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise GrantctlError(f"`git {args[0]}` took longer than {GIT_TIMEOUT:.0f}s; try again") from None
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GrantctlError(f"`git {args[0]}` failed in {top}: {reason[-1] if reason else 'no message'}")
    return result.stdout


def _git_toplevel(root: Path) -> tuple[Path, bool]:
    """The work tree containing ``root``, and whether the clone is shallow."""
    try:
        out = _git(root, ["rev-parse", "--show-toplevel", "--is-shallow-repository"])
    except GrantctlError as exc:
        if "not a git repository" in str(exc):
            raise GrantctlError(
                f"{root} is not in a git repository, so there is no history to read: run `grantctl audit "
                "--history` in a clone of the connections repo (or leave out --history)"
            ) from None
        raise
    top, shallow = out.decode("utf-8", "replace").splitlines()[:2]
    return Path(top), shallow.strip() == "true"


def _relative_to(path: Path, top: Path) -> str:
    try:
        return PurePosixPath(path.resolve().relative_to(top.resolve())).as_posix()
    except ValueError:
        raise GrantctlError(
            f"the state directory {path} is outside the git work tree {top}: its history cannot be read"
        ) from None


def _log(top: Path, paths: Sequence[str], state_dir: str) -> list[_Commit]:
    args = ["log", "--raw", "--no-abbrev", "--no-renames", "--no-color", "--no-show-signature"]
    try:
        out = _git(top, [*args, f"--format={_LOG_FORMAT}", "--", *paths])
    except GrantctlError as exc:
        if "does not have any commits yet" in str(exc):
            return []
        raise
    return parse_log(out.decode("utf-8", "replace"), state_dir)


def parse_log(text: str, state_dir: str) -> list[_Commit]:
    """Commits from ``git log --raw --format=<_LOG_FORMAT>``, keeping only ``<state_dir>/<name>.yaml`` files."""
    commits = []
    for chunk in text.split("\x1e")[1:]:
        header, _, body = chunk.partition("\n")
        sha, date, name, email, subject = (header.split("\x1f") + [""] * 5)[:5]
        files = tuple(change for line in body.splitlines() if (change := _file_change(line, state_dir)))
        if files:
            when = datetime.fromisoformat(date).astimezone(UTC)
            commits.append(_Commit(sha, when, name, email, subject, files))
    return commits


def _file_change(line: str, state_dir: str) -> _FileChange | None:
    match = _RAW_LINE.match(line)
    if match is None:
        return None
    old_blob, new_blob, path = match.groups()
    folder, _, file_name = path.rpartition("/")
    name = file_name.removesuffix(MANIFEST_SUFFIX)
    if folder != state_dir or not file_name.endswith(MANIFEST_SUFFIX) or not _NAME.fullmatch(name):
        return None  # locks, temp files, sub-directories: not a state document
    return _FileChange(name, _normal_blob(old_blob), _normal_blob(new_blob))


def _normal_blob(blob: str) -> str:
    return _NULL_BLOB if set(blob) == {"0"} else blob


def _documents(top: Path, blobs: Iterable[str]) -> dict[str, Document]:
    """Each blob parsed (tokens stay, the sops block is cut), read with one ``git cat-file --batch``."""
    wanted = sorted(blob for blob in set(blobs) if blob != _NULL_BLOB)
    if not wanted:
        return {}
    out = _git(top, ["cat-file", "--batch"], stdin="".join(f"{blob}\n" for blob in wanted).encode())
    return {blob: _parse_state(content) for blob, content in _batch_contents(out)}


def _batch_contents(out: bytes) -> Iterable[tuple[str, bytes]]:
    """(blob id, content) pairs from ``git cat-file --batch`` output; missing objects are skipped."""
    position = 0
    while position < len(out):
        end = out.index(b"\n", position)
        header = out[position:end].decode("ascii", "replace").split()
        position = end + 1
        if len(header) != 3:  # "<id> missing": a shallow clone can lack a parent's blob
            continue
        size = int(header[2])
        yield header[0], out[position : position + size]
        position += size + 1  # the content is followed by a newline


# The sops block is most of a state file and the audit never needs it: cut it before parsing (a block
# mapping's keys sit in column 0, so the cut ends at the next unindented line).
_SOPS_BLOCK = re.compile(rb"^sops:.*\n(?:(?:[ \t].*|#.*)?\n)*", re.MULTILINE)


def _parse_state(content: bytes) -> Document:
    text = content if content.endswith(b"\n") else content + b"\n"
    for candidate in (_SOPS_BLOCK.sub(b"", text), text):
        try:
            document: Any = load_fast(candidate)
        except yaml.YAMLError:
            continue
        return document if isinstance(document, dict) else UNREADABLE
    return UNREADABLE


__all__ = ["parse_log", "read_history", "run_audit"]
