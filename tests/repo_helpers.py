"""Values and helpers shared by tests across folders (fixtures are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grantctl.repo import Repo

CLIENT_SECRET = "s3cr3t-Client-Secret-0123456789abcdefXYZ"
CLIENT_ID = "CLIENTID0123456789ABCDEF01234567"


@dataclass
class TeamRepo:
    repo: Repo
    key_file: Path

    @property
    def root(self) -> Path:
        return self.repo.root


AddConnection = Callable[..., Path]


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content, to prove a command changed nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
