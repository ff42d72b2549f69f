"""grantctl: declarative, reviewable OAuth connections to clients' systems.

The public surface is small on purpose; the CLI (``grantctl``) is the main entry point.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
