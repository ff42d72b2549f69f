"""Per-provider scope catalogues, and the scope checks the rest of grantctl relies on.

The catalogues are data (``data/{xero,hubspot,pipedrive}.yaml``, each citing its sources), loaded on
first use and cached. This package does no I/O beyond reading those files, and importing it is
cheap: YAML is imported on first load, and neither pydantic nor jsonschema is used.

Lint (:func:`lint_scopes`): unknown scope (error, with "did you mean"); duplicate (error); broad
Xero scope on an app created on or after 2026-03-02 (error naming the granular replacements); broad
scope on an older app or one whose ``createdOn`` is unknown (warning with the September 2027
deadline, an error once that month has passed); a scope included in another listed scope (warning,
redundant); a scope no primary source confirms (warning); a required scope missing, such as Xero's
``offline_access`` (error) or HubSpot's ``oauth`` (error).

Coverage semantics (used by ``plan``, ``audit`` and ``health``):

- A granted scope covers itself and everything it ``implies``, transitively: a Xero or Pipedrive
  write scope (``accounting.invoices``, ``deals:full``) covers its read variant. In HubSpot a
  ``.write`` scope does not cover the ``.read`` one.
- A broad Xero scope in the grant does NOT cover a granular scope in the manifest: granted
  ``accounting.transactions`` leaves ``accounting.invoices`` missing, because the client must consent
  again to the granular scope (:func:`why_not_covered` says so). Nor does a granular grant cover a
  broad desired scope.
- Identity scopes (``openid``, ``profile``, ``email``) and ``offline_access`` are compared like any
  other scope.
- Scopes a provider grants to every app (Pipedrive's ``base``) are always covered and never excess.
- :func:`missing_scopes`: desired scopes the grant does not cover. :func:`excess_scopes`: granted
  scopes neither desired nor implied by a desired scope (a granted ``x.read`` next to a desired ``x``
  is not excess). Both are sorted.
- Scopes unknown to the catalogue (a provider may grant scopes we have not listed) cover only
  themselves.

Closures (a scope plus everything it implies) are computed once per catalogue when it loads; each
coverage call then costs a set lookup per scope, so ``plan`` over 10,000 connections stays linear.

Example::

    >>> from grantctl.catalogue import catalogue_for, missing_scopes
    >>> missing_scopes("xero", granted=["accounting.transactions", "offline_access"],
    ...                desired=["accounting.invoices", "offline_access"])
    ['accounting.invoices']
"""

from __future__ import annotations

from grantctl.catalogue._coverage import covers, describe, excess_scopes, missing_scopes, why_not_covered
from grantctl.catalogue._lint import ScopeFinding, lint_scopes
from grantctl.catalogue._model import Catalogue, CatalogueDataError, Requirement, ScopeInfo, parse_catalogue
from grantctl.catalogue._registry import PROVIDERS, UnknownProviderError, catalogue_for

__all__ = [
    "PROVIDERS",
    "Catalogue",
    "CatalogueDataError",
    "Requirement",
    "ScopeFinding",
    "ScopeInfo",
    "UnknownProviderError",
    "catalogue_for",
    "covers",
    "describe",
    "excess_scopes",
    "lint_scopes",
    "missing_scopes",
    "parse_catalogue",
    "why_not_covered",
]
