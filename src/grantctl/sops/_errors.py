"""The one exception the sops package adds to :mod:`grantctl.errors`."""

from __future__ import annotations

from grantctl.errors import SopsError


class SopsUnsupported(SopsError):
    """The native implementation does not handle this document or rule; the ``sops`` binary does.

    Raised before anything is computed or written, never after a partial result, so callers can
    fall back to :mod:`grantctl.sops.binary` (or tell the user) safely.
    """
