"""Lease stores for the orchestrator tests: an SQLite file, or a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vmfailover.engine.lease import Lease
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.engine.lease_sqlite import SQLiteLease
from vmfailover.testing.postgres import postgres_dsn, postgres_server

__all__ = ["lease_store", "postgres_dsn", "postgres_server"]


@pytest.fixture(params=["sqlite", "postgres"])
def lease_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Lease]]:
    """Makes connections to one lease store, one per orchestrator."""
    made: list[Lease] = []
    if request.param == "sqlite":

        def make() -> Lease:
            made.append(SQLiteLease(tmp_path / "lease.db"))
            return made[-1]
    else:
        dsn = request.getfixturevalue("postgres_dsn")

        def make() -> Lease:
            made.append(PostgresLease(dsn))
            return made[-1]

    yield make
    for lease in made:
        lease.close()
