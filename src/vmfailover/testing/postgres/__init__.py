"""A real PostgreSQL server for tests: :class:`PostgresServer` and the ``postgres_server`` fixture.

What the lease (and the PostgreSQL journal) are tested against, shipped so that products embedding
vmfailover can test against the same peer. It needs PostgreSQL's server binaries (Debian's
``postgresql`` package; the test command's nox session installs it when missing) and, for the
fixtures' clients, ``vmfailover[postgres]``.
"""

from vmfailover.testing.postgres.fixtures import postgres_dsn, postgres_server
from vmfailover.testing.postgres.server import (
    PostgresServer,
    PostgresServerError,
    find_postgres_binaries,
)

__all__ = [
    "PostgresServer",
    "PostgresServerError",
    "find_postgres_binaries",
    "postgres_dsn",
    "postgres_server",
]
