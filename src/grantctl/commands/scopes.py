"""``grantctl scopes [PROVIDER]``: the scope catalogue, so engineers pick names that exist."""

from __future__ import annotations

import json

from grantctl.catalogue import PROVIDERS, Catalogue, catalogue_for
from grantctl.commands import Outcome


def run_scopes(provider: str | None, *, fmt: str) -> Outcome:
    catalogues = [catalogue_for(provider)] if provider else [catalogue_for(name) for name in PROVIDERS]
    if fmt == "json":
        return Outcome(json.dumps({c.provider: _entries(c) for c in catalogues}, indent=2))
    return Outcome("\n\n".join(_text(c) for c in catalogues))


def _entries(catalogue: Catalogue) -> list[dict[str, object]]:
    return [
        {
            "name": info.name,
            "description": info.description,
            "access": info.access,
            "implies": sorted(info.implies),
            "broad": info.broad,
            "replacedBy": list(info.replaced_by),
            "confirmed": info.confirmed,
        }
        for info in sorted(catalogue.scopes.values(), key=lambda i: i.name)
    ]


def _text(catalogue: Catalogue) -> str:
    lines = [f"{catalogue.provider}: {len(catalogue.scopes)} scopes"]
    if catalogue.granular_required_from:
        lines.append(
            f"  apps created on or after {catalogue.granular_required_from} must use granular scopes; "
            f"older apps must migrate by {catalogue.deadline_text()}"
        )
    width = max(len(name) for name in catalogue.scopes)
    for info in sorted(catalogue.scopes.values(), key=lambda i: i.name):
        marks = ("  [broad]" if info.broad else "") + ("" if info.confirmed else "  [unconfirmed]")
        lines.append(f"  {info.name:<{width}}  {info.description}{marks}")
    return "\n".join(lines)
