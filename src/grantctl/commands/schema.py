"""``grantctl schema``: write or check the generated JSON Schemas."""

from __future__ import annotations

from pathlib import Path

from grantctl.commands import Outcome
from grantctl.errors import EXIT_ERROR, EXIT_OK
from grantctl.fileio import atomic_write_text
from grantctl.schema import GENERATORS, render

SCHEMAS_DIR = "schemas"


def run_schema(root: Path, *, check: bool) -> Outcome:
    directory = root / SCHEMAS_DIR
    stale = [name for name in sorted(GENERATORS) if _current(directory / name) != render(name)]
    if check:
        if stale:
            listed = ", ".join(f"{SCHEMAS_DIR}/{name}" for name in stale)
            return Outcome(f"stale: {listed}\nrun `grantctl schema` and commit the result", EXIT_ERROR)
        return Outcome(f"{len(GENERATORS)} schemas up to date", EXIT_OK)
    directory.mkdir(parents=True, exist_ok=True)
    for name in stale:
        atomic_write_text(directory / name, render(name))
    written = ", ".join(stale) if stale else "nothing (all up to date)"
    return Outcome(f"wrote {written}")


def _current(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
