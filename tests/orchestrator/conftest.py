"""Lease stores for the orchestrator tests: the lease tests' own, an SQLite file or a real
PostgreSQL server (``lease_factory`` makes one connection per orchestrator)."""

from __future__ import annotations

from lease.conftest import lease_factory, postgres_dsn, postgres_server

__all__ = ["lease_factory", "postgres_dsn", "postgres_server"]
