"""``python -m grantctl``."""

from __future__ import annotations

from grantctl.cli import main

main()
