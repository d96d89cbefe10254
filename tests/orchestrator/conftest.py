"""Lease stores for the orchestrator tests: the lease tests' own, an SQLite file or a real
PostgreSQL server (``lease_factory`` makes one connection per orchestrator); and the stores the
orchestrator processes share (``shared_stores``: SQLite files, or a schema of the session's
PostgreSQL server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lease.conftest import lease_factory, postgres_dsn, postgres_server
from orchestrator.stores import STORES, SharedStores

__all__ = ["lease_factory", "postgres_dsn", "postgres_server", "shared_stores"]


@pytest.fixture(params=STORES)
def shared_stores(request: pytest.FixtureRequest, tmp_path: Path) -> SharedStores:
    if request.param == "sqlite":
        return SharedStores.files(tmp_path)
    return SharedStores.database(request.getfixturevalue("postgres_dsn"))
