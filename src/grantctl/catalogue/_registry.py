"""Which providers have a catalogue, and loading each one (once) from the package's data files."""

from __future__ import annotations

import functools

from grantctl.catalogue._model import Catalogue, parse_catalogue
from grantctl.errors import GrantctlError

PROVIDERS: tuple[str, ...] = ("hubspot", "pipedrive", "xero")


class UnknownProviderError(GrantctlError, LookupError):
    """No scope catalogue exists for the provider a manifest or command named."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        super().__init__(f"unknown provider {provider!r}; grantctl knows: {', '.join(PROVIDERS)}")


def catalogue_for(provider: str) -> Catalogue:
    """The scope catalogue of ``provider`` (one of :data:`PROVIDERS`), loaded once and cached.

    Raises :class:`UnknownProviderError` (a :class:`GrantctlError` and a ``LookupError``) listing the
    known providers when there is none.

    Example::

        >>> catalogue_for("xero").refresh_scope
        'offline_access'
    """
    if provider not in PROVIDERS:
        raise UnknownProviderError(provider)
    return _load(provider)


@functools.cache
def _load(provider: str) -> Catalogue:
    # Imported lazily so that importing grantctl.catalogue stays cheap for commands that never
    # look at scopes.
    from importlib import resources

    import yaml

    # CSafeLoader is the libyaml parser; fall back to the pure-Python one on builds without libyaml.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = resources.files("grantctl.catalogue").joinpath("data").joinpath(f"{provider}.yaml").read_text("utf-8")
    return parse_catalogue(provider, yaml.load(text, Loader=loader))  # noqa: S506 - a safe loader
