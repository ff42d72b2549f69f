"""Shared by the tests of the state store (imported as a plain module: pytest puts this folder on sys.path)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grantctl.state.model import Grant, Tokens

GrantFactory = Callable[..., Grant]
TokensFactory = Callable[..., Tokens]


@dataclass(frozen=True)
class AgeKey:
    """An age key pair generated for one test; ``path`` is its keys file."""

    identity: str
    recipient: str
    path: Path
