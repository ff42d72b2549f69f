"""One module per CLI verb. Each exposes a function that takes plain values and returns an :class:`Outcome`.

Nothing in here imports click: the CLI (``grantctl.cli``) parses options, calls the function and prints
the outcome, so the same functions serve tests, the server and other tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grantctl.errors import EXIT_OK


@dataclass(frozen=True)
class Outcome:
    """What a command produced: text for stdout, notes for stderr, and the exit code."""

    output: str = ""
    exit_code: int = EXIT_OK
    notes: list[str] = field(default_factory=list)
