"""The shipped catalogue files load, are internally consistent, and the loader rejects bad data."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import pytest

import grantctl.catalogue as catalogue_pkg
from grantctl.catalogue import (
    PROVIDERS,
    Catalogue,
    CatalogueDataError,
    UnknownProviderError,
    catalogue_for,
    parse_catalogue,
)
from grantctl.errors import GrantctlError


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_loads_with_its_own_name(provider: str) -> None:
    catalogue = catalogue_for(provider)
    assert catalogue.provider == provider
    assert len(catalogue.scopes) >= 10
    assert catalogue.source.startswith("https://")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_catalogue_is_loaded_once(provider: str) -> None:
    assert catalogue_for(provider) is catalogue_for(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_reference_names_a_defined_scope(provider: str) -> None:
    catalogue = catalogue_for(provider)
    for info in catalogue.scopes.values():
        assert info.implies <= catalogue.scopes.keys(), info.name
        assert set(info.replaced_by) <= catalogue.scopes.keys(), info.name
    assert set(catalogue.required_scopes) <= catalogue.scopes.keys()
    assert catalogue.implicit_scopes <= catalogue.scopes.keys()
    if catalogue.refresh_scope is not None:
        assert catalogue.refresh_scope in catalogue.scopes


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_scope_has_a_plain_description_and_valid_access(provider: str) -> None:
    for name, info in catalogue_for(provider).scopes.items():
        assert info.name == name
        assert info.access in {"read", "write", "identity"}
        assert info.description[0].isupper(), name
        assert "\n" not in info.description
        assert not info.description.endswith(".")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_read_scopes_never_imply_anything(provider: str) -> None:
    # A read scope including something else would make "write covers read" the wrong way round.
    for info in catalogue_for(provider).scopes.values():
        if info.access == "read":
            assert not info.implies, info.name


def test_every_xero_dot_read_pair_is_linked() -> None:
    xero = catalogue_for("xero")
    pairs = [(name[: -len(".read")], name) for name in xero.scopes if name.endswith(".read")]
    linked = [(write, read) for write, read in pairs if write in xero.scopes]
    assert len(linked) >= 15
    for write, read in linked:
        assert read in xero.scopes[write].implies, write
        assert xero.scopes[write].access == "write"


def test_every_xero_write_scope_has_a_read_variant_except_bankfeeds() -> None:
    xero = catalogue_for("xero")
    writes = {name for name, info in xero.scopes.items() if info.access == "write"}
    without_read = {name for name in writes if f"{name}.read" not in xero.scopes}
    assert without_read == {"bankfeeds"}


def test_every_pipedrive_full_scope_implies_its_read_scope() -> None:
    pipedrive = catalogue_for("pipedrive")
    fulls = [name for name in pipedrive.scopes if name.endswith(":full")]
    assert len(fulls) >= 8
    for full in fulls:
        assert pipedrive.scopes[full].implies == {full.replace(":full", ":read")}


def test_hubspot_write_scopes_do_not_imply_read() -> None:
    hubspot = catalogue_for("hubspot")
    writes = [name for name in hubspot.scopes if name.endswith(".write")]
    assert len(writes) >= 8
    for write in writes:
        assert write.replace(".write", ".read") in hubspot.scopes
        assert hubspot.scopes[write].implies == frozenset()


def test_xero_broad_scopes_and_their_replacements() -> None:
    xero = catalogue_for("xero")
    broad = {name: info.replaced_by for name, info in xero.scopes.items() if info.broad}
    assert broad["accounting.transactions"] == (
        "accounting.invoices",
        "accounting.payments",
        "accounting.banktransactions",
        "accounting.manualjournals",
        "accounting.classicexpenses",
    )
    assert broad["accounting.transactions.read"] == tuple(f"{s}.read" for s in broad["accounting.transactions"])
    assert set(broad) == {"accounting.transactions", "accounting.transactions.read", "accounting.reports.read"}
    # Broad scopes imply only their own read variant, never a granular scope.
    assert xero.scopes["accounting.transactions"].implies == {"accounting.transactions.read"}


def test_xero_report_scopes_confirmation_matches_the_facts() -> None:
    xero = catalogue_for("xero")
    unconfirmed = {name for name, info in xero.scopes.items() if not info.confirmed}
    assert unconfirmed == {
        "accounting.reports.banksummary.read",
        "accounting.reports.budgetsummary.read",
        "accounting.reports.executivesummary.read",
        "accounting.reports.taxreports.read",
    }
    for confirmed in ("aged", "balancesheet", "profitandloss", "trialbalance"):
        assert xero.scopes[f"accounting.reports.{confirmed}.read"].confirmed


def test_xero_rules() -> None:
    xero = catalogue_for("xero")
    assert xero.granular_required_from == dt.date(2026, 3, 2)
    assert xero.broad_deadline == "2027-09"
    assert xero.deadline_text() == "September 2027"
    assert xero.refresh_scope == "offline_access"
    assert xero.scope_param is True
    assert {"openid", "profile", "email", "offline_access"} <= xero.scopes.keys()
    assert xero.required_scopes["offline_access"].severity == "error"


def test_granular_scopes_include_their_read_variants() -> None:
    xero = catalogue_for("xero")
    assert xero.is_granular("accounting.invoices")
    assert xero.is_granular("accounting.invoices.read")
    assert xero.is_granular("accounting.reports.aged.read")
    assert not xero.is_granular("accounting.contacts")
    assert not xero.is_granular("accounting.transactions")


@pytest.mark.parametrize(
    ("today", "passed"),
    [
        (dt.date(2027, 9, 1), False),
        (dt.date(2027, 9, 30), False),
        (dt.date(2027, 10, 1), True),
        (dt.date(2028, 1, 1), True),
    ],
)
def test_deadline_passes_only_after_the_whole_month(today: dt.date, passed: bool) -> None:
    assert catalogue_for("xero").deadline_passed(today) is passed


def test_other_providers_rules() -> None:
    hubspot, pipedrive = catalogue_for("hubspot"), catalogue_for("pipedrive")
    assert hubspot.required_scopes["oauth"].severity == "error"
    assert hubspot.refresh_scope is None
    assert hubspot.granular_required_from is None
    assert pipedrive.scope_param is False
    assert pipedrive.implicit_scopes == {"base"}
    assert not pipedrive.deadline_passed(dt.date(2100, 1, 1))
    assert pipedrive.deadline_text() == ""


def test_unknown_provider_lists_known_ones() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        catalogue_for("xeroo")
    assert isinstance(caught.value, GrantctlError)
    assert isinstance(caught.value, LookupError)
    assert str(caught.value) == "unknown provider 'xeroo'; grantctl knows: hubspot, pipedrive, xero"


def test_catalogue_repr_is_short() -> None:
    assert repr(catalogue_for("xero")) == "Catalogue(provider='xero', scopes=54)"


def test_minimal_document_parses(minimal_document: dict[str, Any]) -> None:
    catalogue = parse_catalogue("demo", minimal_document)
    assert isinstance(catalogue, Catalogue)
    assert catalogue.closure("things") == {"things", "things.read"}
    assert catalogue.is_granular("cats.read")


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("/")
    for key in parents:
        document = document[key]
    if value is _DELETE:
        del document[last]
    else:
        document[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("provider", "other", "'provider' is 'other'"),
        ("colour", "blue", "unknown key(s) 'colour'"),
        ("scopes/cats/colour", "blue", "scope 'cats': unknown key(s) 'colour'"),
        ("scopes/cats/description", _DELETE, "scope 'cats': missing key(s) 'description'"),
        ("scopes/cats/description", "", "description must be a non-empty string"),
        ("scopes/cats/access", "admin", "access must be one of"),
        ("scopes/cats/implies", ["dogs.read"], "scope 'cats' refers to undefined 'dogs.read'"),
        ("scopes/cats/implies", "cats.read", "implies must be a list of strings"),
        ("scopes/things/replaced_by", ["dogs"], "scope 'things' refers to undefined 'dogs'"),
        ("scopes/things/replaced_by", [], "a broad scope needs replaced_by"),
        ("scopes/cats/broad", "yes", "broad must be true or false"),
        ("scopes/cats/confirmed", 1, "confirmed must be true or false"),
        ("required_scopes/dogs", {"severity": "error", "why": "x"}, "refers to undefined scope 'dogs'"),
        ("required_scopes/offline/severity", "fatal", "severity must be error or warning"),
        ("implicit_scopes", ["dogs"], "refers to undefined scope 'dogs'"),
        ("refresh_requires", "dogs", "refers to undefined scope 'dogs'"),
        ("granular_required_from", "2026-03-02", "granular_required_from must be a date"),
        ("granular_required_from", None, "broad scopes need granular_required_from and broad_deadline"),
        ("broad_deadline", "September 2027", "broad_deadline must be a quoted 'YYYY-MM'"),
        ("broad_deadline", "2027-13", "broad_deadline must be a quoted 'YYYY-MM'"),
        ("broad_deadline", 202709, "broad_deadline must be a quoted 'YYYY-MM'"),
        ("scope_param", "true", "scope_param must be true or false"),
        ("scopes", ["cats"], "scopes must be a mapping"),
    ],
)
def test_malformed_documents_are_rejected(
    minimal_document: dict[str, Any], path: str, value: Any, expected: str
) -> None:
    _set(minimal_document, path, value)
    with pytest.raises(CatalogueDataError) as caught:
        parse_catalogue("demo", minimal_document)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("scope catalogue for 'demo'")


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(catalogue_pkg) if not name.startswith("_")} - {"annotations"}
    assert set(catalogue_pkg.__all__) == public
    assert len(catalogue_pkg.__all__) == len(set(catalogue_pkg.__all__))


def test_importing_the_package_is_cheap() -> None:
    code = (
        "import sys, grantctl.catalogue; "
        "print(sorted(m for m in ('yaml', 'pydantic', 'jsonschema', 'difflib', 'httpx') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
