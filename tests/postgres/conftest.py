"""Fixtures for the PostgreSQL store tests; they live in postgres_helpers.py with the helpers they use."""

from __future__ import annotations

from postgres_helpers import age_key, database, fleet, repo, server_dsn, store

__all__ = ["age_key", "database", "fleet", "repo", "server_dsn", "store"]
