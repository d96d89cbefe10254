"""``SQLiteLease``: plan leases in an SQLite file, for one machine (one process or several).

The embedded default: the same promises as the PostgreSQL lease, with the standard library only.
Every change runs in a ``BEGIN IMMEDIATE`` transaction, which holds the file's write lock from
the first read, so of several processes racing to acquire exactly one commits a grant; the
others wait at most ``timeout`` seconds for the lock. Expiry is judged by the machine's wall
clock (the ``clock`` given, read after the lock is taken), which every process on the machine
shares; a holder's local deadline uses the monotonic clock, so a wall clock step never extends
what a holder believes it holds.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from vmfailover.clock import Clock, SystemClock, full_clock
from vmfailover.engine.lease import (
    FencingToken,
    LeaseGrant,
    LeaseLostError,
    LeaseState,
    LeaseUnavailableError,
    checked_grant,
    checked_name,
    checked_token,
    checked_ttl,
    make_grant,
    why_not_current,
)
from vmfailover.errors import ConflictError, ValidationError

__all__ = ["SQLiteLease"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vmfailover_lease_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vmfailover_lease (
    plan TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    released INTEGER NOT NULL DEFAULT 0
);
"""


class SQLiteLease:
    """Plan leases in the SQLite file at ``path`` (created when missing; WAL mode).

    ``timeout`` bounds every wait for the file's lock; past it a call raises
    :class:`~vmfailover.engine.lease.LeaseUnavailableError`. One connection per instance, shared
    by its threads under a lock; open one instance per process.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 5.0, clock: Clock | None = None
    ) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise ValidationError.of("SQLite lease path", f"must be a file path, got {path!r}")
        self.path = Path(path)
        self._timeout = checked_ttl(timeout, "SQLite lease timeout")
        self.clock: Clock = SystemClock() if clock is None else full_clock(clock)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(path), timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, ValueError) as error:  # ValueError: a NUL in the name
            raise ValidationError.of(
                f"SQLite lease database {str(path)[:200]!r}", f"cannot be opened: {error}"
            ) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._create_schema()
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise ValidationError.of(
                f"SQLite lease database {str(path)!r}", f"cannot be used: {error}"
            ) from error

    def __repr__(self) -> str:
        return f"SQLiteLease({str(self.path)!r})"

    # --- the Lease protocol ------------------------------------------------------------------

    def acquire(self, plan: str, holder: str, ttl: float) -> LeaseGrant | None:
        checked_name(plan, "lease plan")
        checked_name(holder, "lease holder")
        ttl = checked_ttl(ttl)
        sent_at = self.clock.monotonic()
        with self._transaction(plan, "acquire") as db:
            now = self._now()
            row = db.execute(
                "SELECT token, expires_at, released FROM vmfailover_lease WHERE plan = ?", (plan,)
            ).fetchone()
            if row is not None and not row[2] and row[1] > now:
                return None
            number = 1 if row is None else int(row[0]) + 1
            db.execute(
                "INSERT INTO vmfailover_lease (plan, holder, token, acquired_at, expires_at, "
                "released) VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (plan) DO UPDATE SET "
                "holder = excluded.holder, token = excluded.token, "
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at, "
                "released = 0",
                (plan, holder, number, now, now + ttl),
            )
        expires_at = datetime.fromtimestamp(now + ttl, UTC)
        return make_grant(FencingToken(plan, number), holder, ttl, expires_at, sent_at)

    def renew(self, grant: LeaseGrant) -> LeaseGrant:
        grant = checked_grant(grant)
        sent_at = self.clock.monotonic()
        with self._transaction(grant.plan, "renew") as db:
            now = self._now()
            self._require_current(db, grant.token, now)
            db.execute(
                "UPDATE vmfailover_lease SET expires_at = ? WHERE plan = ?",
                (now + grant.ttl, grant.plan),
            )
        expires_at = datetime.fromtimestamp(now + grant.ttl, UTC)
        return make_grant(grant.token, grant.holder, grant.ttl, expires_at, sent_at)

    def release(self, grant: LeaseGrant) -> None:
        grant = checked_grant(grant)
        with self._transaction(grant.plan, "release") as db:
            db.execute(
                "UPDATE vmfailover_lease SET released = 1, expires_at = min(expires_at, ?) "
                "WHERE plan = ? AND token = ? AND released = 0",
                (self._now(), grant.plan, grant.token.number),
            )

    def check(self, token: FencingToken) -> None:
        token = checked_token(token)
        with self._reading(token.plan, "check") as db:
            self._require_current(db, token, None)

    def check_within(self, connection: sqlite3.Connection, token: FencingToken) -> None:
        """:meth:`check` on the caller's connection, inside the caller's write transaction.

        For a journal in the same file: a check made after ``BEGIN IMMEDIATE`` cannot be
        overtaken by a new holder before the journal's write commits, because an acquire needs
        the same write lock.
        """
        self._require_current(connection, checked_token(token), None)

    def state(self, plan: str) -> LeaseState | None:
        checked_name(plan, "lease plan")
        with self._reading(plan, "read") as db:
            row = db.execute(
                "SELECT holder, token, expires_at, released FROM vmfailover_lease WHERE plan = ?",
                (plan,),
            ).fetchone()
            now = self._now()
        if row is None:
            return None
        holder, number, expires_at, released = row
        return LeaseState(
            plan=plan,
            holder=holder,
            token=FencingToken(plan, int(number)),
            expires_at=datetime.fromtimestamp(expires_at, UTC),
            released=bool(released),
            expired=expires_at <= now,
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- internals -----------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _require_current(
        self, db: sqlite3.Connection, token: FencingToken, now: float | None
    ) -> None:
        row = db.execute(
            "SELECT holder, token, expires_at, released FROM vmfailover_lease WHERE plan = ?",
            (token.plan,),
        ).fetchone()
        now = self._now() if now is None else now
        if row is None:
            raise LeaseLostError(token, "the plan has no lease in this database")
        holder, number, expires_at, released = row
        reason = why_not_current(token, holder, int(number), bool(released), expires_at <= now)
        if reason is not None:
            raise LeaseLostError(token, reason)

    def _create_schema(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            versions = [
                row[0] for row in self._db.execute("SELECT version FROM vmfailover_lease_schema")
            ]
            if not versions:
                self._db.execute(
                    "INSERT INTO vmfailover_lease_schema (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            self._db.execute("COMMIT")
        if versions and max(versions) > SCHEMA_VERSION:
            raise ConflictError(
                f"lease database {str(self.path)!r} has schema version {max(versions)}, newer "
                f"than this vmfailover's {SCHEMA_VERSION}: upgrade vmfailover to use it"
            )

    def _transaction(self, plan: str, what: str) -> _Transaction:
        return _Transaction(self, plan, what, immediate=True)

    def _reading(self, plan: str, what: str) -> _Transaction:
        return _Transaction(self, plan, what, immediate=False)


class _Transaction:
    """The instance's lock, a transaction, commit or rollback, and SQLite errors made ours."""

    def __init__(self, lease: SQLiteLease, plan: str, what: str, *, immediate: bool) -> None:
        self._lease = lease
        self._plan = plan
        self._what = what
        self._immediate = immediate

    def __enter__(self) -> sqlite3.Connection:
        self._lease._lock.acquire()
        try:
            if self._immediate:
                self._lease._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            self._lease._lock.release()
            raise LeaseUnavailableError(self._plan, self._what, error) from error
        return self._lease._db

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        db = self._lease._db
        try:
            if self._immediate:
                if exc is None:
                    db.execute("COMMIT")
                else:
                    db.execute("ROLLBACK")
        except sqlite3.Error as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise LeaseUnavailableError(self._plan, self._what, error) from error
        finally:
            self._lease._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise LeaseUnavailableError(self._plan, self._what, exc) from exc
