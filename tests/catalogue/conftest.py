from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from grantctl.catalogue import Catalogue, catalogue_for


@pytest.fixture
def xero() -> Catalogue:
    return catalogue_for("xero")


@pytest.fixture
def hubspot() -> Catalogue:
    return catalogue_for("hubspot")


@pytest.fixture
def pipedrive() -> Catalogue:
    return catalogue_for("pipedrive")


@pytest.fixture
def minimal_document() -> dict[str, Any]:
    """A small valid catalogue document that tests break in one place at a time."""
    return copy.deepcopy(
        {
            "provider": "demo",
            "display_name": "Demo",
            "source": "https://example.invalid/scopes",
            "scope_param": True,
            "refresh_requires": "offline",
            "granular_required_from": dt.date(2026, 3, 2),
            "broad_deadline": "2027-09",
            "required_scopes": {"offline": {"severity": "error", "why": "needed to refresh"}},
            "implicit_scopes": [],
            "scopes": {
                "offline": {"description": "Stay connected", "access": "identity"},
                "things": {
                    "description": "Change things",
                    "access": "write",
                    "implies": ["things.read"],
                    "broad": True,
                    "replaced_by": ["cats"],
                },
                "things.read": {
                    "description": "Read things",
                    "access": "read",
                    "broad": True,
                    "replaced_by": ["cats.read"],
                },
                "cats": {"description": "Change cats", "access": "write", "implies": ["cats.read"]},
                "cats.read": {"description": "Read cats", "access": "read"},
            },
        }
    )
