"""Lease tests run against both stores: SQLite in a temporary file and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vmfailover.engine.lease import Lease
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.engine.lease_sqlite import SQLiteLease
from vmfailover.testing.postgres import postgres_dsn, postgres_server

__all__ = ["lease_factory", "postgres_dsn", "postgres_server"]

LeaseFactory = Callable[[], Lease]


@pytest.fixture(params=["sqlite", "postgres"])
def lease_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LeaseFactory]:
    """Makes leases on one store: each call a new connection, as another orchestrator would."""
    made: list[Lease] = []
    if request.param == "sqlite":
        path = tmp_path / "lease.sqlite"

        def make() -> Lease:
            made.append(SQLiteLease(path))
            return made[-1]
    else:
        dsn = request.getfixturevalue("postgres_dsn")

        def make() -> Lease:
            made.append(PostgresLease(dsn))
            return made[-1]

    yield make
    for lease in made:
        lease.close()
