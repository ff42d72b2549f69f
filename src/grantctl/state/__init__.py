"""Observed state: grants and tokens, and the stores that keep them."""

from __future__ import annotations

from grantctl.state.base import MemoryStore, StateStore
from grantctl.state.model import Grant, Tokens

__all__ = ["Grant", "MemoryStore", "StateStore", "Tokens"]
