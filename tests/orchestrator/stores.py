"""The stores orchestrator processes share, as ``vmfailover serve`` is given them: SQLite files
(``--journal FILE --lease FILE``), or one PostgreSQL database (``--journal postgresql://...``,
its leases in the same database) whose tables live in a schema of their own."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

import attrs

from vmfailover.engine.journal import Journal
from vmfailover.engine.lease import Lease
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.engine.lease_sqlite import SQLiteLease
from vmfailover.engine.postgres_journal import PostgresJournal
from vmfailover.engine.sqlite_journal import SQLiteJournal

STORES = ("sqlite", "postgres")


def database_uri(dsn: str) -> str:
    """A libpq ``key=value`` connection string as the ``postgresql://`` URI the command line
    takes (every setting, the socket folder or the password included, as a query parameter)."""
    from psycopg.conninfo import conninfo_to_dict

    settings = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    return "postgresql://?" + urlencode(settings, quote_via=quote)


@attrs.frozen
class SharedStores:
    """Where the orchestrators keep their journal and leases, and how the test reads them."""

    kind: str
    journal_spec: str
    lease_spec: str | None

    @classmethod
    def files(cls, folder: Path) -> SharedStores:
        return cls("sqlite", str(folder / "journal.db"), str(folder / "lease.db"))

    @classmethod
    def database(cls, dsn: str) -> SharedStores:
        return cls("postgres", database_uri(dsn), None)

    def serve_arguments(self) -> list[str]:
        """``--journal`` (and ``--lease`` for SQLite) as ``vmfailover serve`` takes them."""
        lease = ["--lease", self.lease_spec] if self.lease_spec is not None else []
        return ["--journal", self.journal_spec, *lease]

    def journal(self) -> Journal:
        if self.kind == "postgres":
            return PostgresJournal(self.journal_spec)
        return SQLiteJournal(self.journal_spec)

    def lease(self) -> Lease:
        if self.kind == "postgres":
            return PostgresLease(self.journal_spec)
        assert self.lease_spec is not None
        return SQLiteLease(self.lease_spec)

    def prepare(self) -> None:
        """Make the tables before two processes race to make them."""
        self.journal().close()
        self.lease().close()
