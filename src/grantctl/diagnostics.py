"""Findings about input files, with where they are and how bad they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grantctl.errors import Location

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One finding: ``connections/acme.yaml:12:5: error: spec.scopes[2]: unknown xero scope ...``."""

    location: Location
    severity: Severity
    message: str
    field: str | None = None

    def __str__(self) -> str:
        at_field = f"{self.field}: " if self.field else ""
        return f"{self.location}: {self.severity}: {at_field}{self.message}"


def field_path(key: tuple[str | int, ...]) -> str:
    """``("spec", "scopes", 2)`` -> ``spec.scopes[2]``."""
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    """Order by file, line, column: the order a reader scans a file in."""
    where = diagnostic.location
    return (str(where.path), where.line or 0, where.column or 0, diagnostic.message)


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)
