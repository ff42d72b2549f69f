"""Does a grant cover what a manifest wants? (Semantics: see the grantctl.catalogue docstring.)"""

from __future__ import annotations

from collections.abc import Collection

from grantctl.catalogue._model import Catalogue
from grantctl.catalogue._registry import catalogue_for


def _resolve(provider: str | Catalogue) -> Catalogue:
    return provider if isinstance(provider, Catalogue) else catalogue_for(provider)


def covers(catalogue: Catalogue, granted: Collection[str], desired: str) -> bool:
    """True when a grant of ``granted`` gives the access of ``desired``.

    A granted scope covers itself and everything it implies; a broad scope does not cover its
    granular replacements. Costs one set lookup per granted scope.

        >>> xero = catalogue_for("xero")
        >>> covers(xero, ["accounting.invoices"], "accounting.invoices.read")
        True
        >>> covers(xero, ["accounting.transactions"], "accounting.invoices")
        False
    """
    if desired in catalogue.implicit_scopes:
        return True
    return any(desired in catalogue.closure(scope) for scope in granted)


def why_not_covered(catalogue: Catalogue, granted: Collection[str], desired: str) -> str | None:
    """None when ``granted`` covers ``desired``; otherwise one sentence saying why not and what to do.

    >>> why_not_covered(catalogue_for("xero"), ["accounting.transactions"], "accounting.invoices")
    "granted broad 'accounting.transactions' does not satisfy granular 'accounting.invoices': the client must consent again"
    """  # noqa: E501 - a doctest line cannot wrap
    if covers(catalogue, granted, desired):
        return None
    ordered = sorted(granted)
    for scope in ordered:
        info = catalogue.get(scope)
        if info is not None and info.broad and desired in catalogue.expand(info.replaced_by):
            return f"granted broad {scope!r} does not satisfy granular {desired!r}: the client must consent again"
    narrower = [scope for scope in ordered if scope != desired and scope in catalogue.closure(desired)]
    if narrower:
        return (
            f"granted {narrower[0]!r} gives less access than {desired!r}: the client must consent again to {desired!r}"
        )
    return f"{desired!r} was not granted: the client must consent to it"


def missing_scopes(provider: str | Catalogue, granted: Collection[str], desired: Collection[str]) -> list[str]:
    """The desired scopes the grant does not cover, sorted.

    >>> missing_scopes("xero", ["accounting.transactions"], ["accounting.invoices", "accounting.transactions.read"])
    ['accounting.invoices']
    """
    catalogue = _resolve(provider)
    have = catalogue.expand(granted)
    return sorted({scope for scope in desired if scope not in have})


def excess_scopes(provider: str | Catalogue, granted: Collection[str], desired: Collection[str]) -> list[str]:
    """The granted scopes that give access beyond what ``desired`` asks for, sorted.

    A granted scope is not excess when it is desired or implied by a desired scope (a granted
    ``x.read`` next to a desired ``x`` is harmless), nor when the provider grants it to every app.

        >>> excess_scopes("xero", ["accounting.transactions", "accounting.invoices"], ["accounting.invoices"])
        ['accounting.transactions']
    """
    catalogue = _resolve(provider)
    wanted = catalogue.expand(desired)
    return sorted({scope for scope in granted if scope not in wanted})


def describe(provider: str | Catalogue, scope: str) -> str:
    """The plain-words description of ``scope`` for a bookkeeper; the bare name when it is unknown.

    >>> describe("xero", "accounting.invoices.read")
    'Read invoices and bills'
    """
    info = _resolve(provider).get(scope)
    return info.description if info is not None else scope
