"""pytest fixtures for a throwaway PostgreSQL server.

Use them with ``pytest_plugins = ["vmfailover.testing.postgres.fixtures"]`` in a top-level
conftest, or import the fixture into a conftest (``from vmfailover.testing.postgres import
postgres_server``).

* ``postgres_server``: one started :class:`PostgresServer` per test session (per xdist worker), on
  a Unix socket in a temporary folder; stopped and removed at the end of the session, also when
  tests fail.
* ``postgres_dsn``: a connection string for one test whose ``search_path`` is a fresh, empty
  schema on that server (a schema takes a millisecond to make, a database half a second), dropped
  afterwards. Tests that restart or stop the server should start their own
  :class:`PostgresServer` instead, so they do not disturb the others.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from vmfailover.testing.postgres.server import PostgresServer

__all__ = ["postgres_dsn", "postgres_server"]

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    schema = f"test_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield make_conninfo(postgres_server.dsn, options=f"-c search_path={schema}")
    finally:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
