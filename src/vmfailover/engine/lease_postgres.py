"""``PostgresLease``: plan leases in PostgreSQL, shared by orchestrators at several sites.

Needs ``vmfailover[postgres]`` (psycopg 3). Each operation is one statement in autocommit mode,
so nothing holds a lock between calls: an acquire is an ``INSERT ... ON CONFLICT DO UPDATE ...
WHERE`` whose condition (released or expired) PostgreSQL re-checks on the newest row version under
the row's lock, so of racing acquirers exactly one gets a row back. Expiry is judged by the
server's ``clock_timestamp()``; no orchestrator's clock decides who holds a lease.

Every wait is bounded by ``timeout``: the connect, each statement (``statement_timeout``,
``lock_timeout``) and, over TCP, unacknowledged data (``tcp_user_timeout``). A connection that
fails is dropped and made anew on the next call, so a restarted or failed-over server is picked up
without help. Failures to reach the server raise
:class:`~vmfailover.engine.lease.LeaseUnavailableError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from vmfailover.clock import Clock, SystemClock
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
from vmfailover.engine.postgres_connection import (
    bounded_connection,
    describe_dsn,
    first_line,
    import_psycopg,
)
from vmfailover.errors import ConflictError

if TYPE_CHECKING:
    import psycopg

__all__ = ["FENCE_CONDITION", "PostgresLease"]

SCHEMA_VERSION = 1
_T = TypeVar("_T")
_SCHEMA_LOCK = 0x766D666C  # pg_advisory_xact_lock key while the schema is created ("vmfl")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS vmfailover_lease_schema (version integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS vmfailover_lease ("
    " plan text PRIMARY KEY,"
    " holder text NOT NULL,"
    " token bigint NOT NULL CHECK (token >= 1),"
    " acquired_at timestamptz NOT NULL,"
    " expires_at timestamptz NOT NULL,"
    " released boolean NOT NULL DEFAULT false)",
)

_ACQUIRE = """
INSERT INTO vmfailover_lease AS lease (plan, holder, token, acquired_at, expires_at, released)
VALUES (%(plan)s, %(holder)s, 1, clock_timestamp(),
        clock_timestamp() + make_interval(secs => %(ttl)s), false)
ON CONFLICT (plan) DO UPDATE SET
    holder = excluded.holder, token = lease.token + 1, acquired_at = excluded.acquired_at,
    expires_at = excluded.expires_at, released = false
WHERE lease.released OR lease.expires_at <= clock_timestamp()
RETURNING token, expires_at
"""

_RENEW = """
UPDATE vmfailover_lease SET expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE plan = %(plan)s AND token = %(token)s AND NOT released AND expires_at > clock_timestamp()
RETURNING expires_at
"""

_RELEASE = """
UPDATE vmfailover_lease SET released = true, expires_at = least(expires_at, clock_timestamp())
WHERE plan = %(plan)s AND token = %(token)s AND NOT released
"""

_READ = """
SELECT holder, token, released, expires_at <= clock_timestamp()
FROM vmfailover_lease WHERE plan = %(plan)s
"""

_STATE = """
SELECT holder, token, released, expires_at <= clock_timestamp(), expires_at
FROM vmfailover_lease WHERE plan = %(plan)s
"""

#: A condition for the ``WHERE`` of a journal's write (``INSERT ... SELECT ... WHERE`` it, or
#: ``UPDATE ... WHERE ... AND`` it): true while the token is the plan's newest and its lease runs,
#: and it locks the lease row (``FOR SHARE``) until the write's transaction ends, so no new holder
#: can commit its acquire in between. Its parameters come from
#: :meth:`PostgresLease.fence_parameters`. A write that touched no row was refused:
#: :meth:`PostgresLease.check` then raises the reason.
FENCE_CONDITION = (
    "EXISTS (SELECT 1 FROM vmfailover_lease WHERE plan = %(fence_plan)s "
    "AND token = %(fence_token)s AND NOT released AND expires_at > clock_timestamp() FOR SHARE)"
)


class PostgresLease:
    """Plan leases in the PostgreSQL database named by ``dsn`` (a libpq connection string).

    The tables are created on first use. ``timeout`` (seconds) bounds every wait on the server.
    One connection per instance, shared by its threads under a lock. The connection string may
    hold a password: it is kept, never shown (``repr`` names host and database only).
    """

    def __init__(self, dsn: str, *, timeout: float = 5.0, clock: Clock | None = None) -> None:
        self._psycopg = import_psycopg("the PostgreSQL lease")
        self._where, self._options = describe_dsn(self._psycopg, dsn, "PostgreSQL lease dsn")
        self._dsn = dsn
        self._timeout = checked_ttl(timeout, "PostgreSQL lease timeout")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        with self._session("*", "set up") as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                connection.execute(statement)
            versions = [
                row[0] for row in connection.execute("SELECT version FROM vmfailover_lease_schema")
            ]
            if not versions:
                connection.execute(
                    "INSERT INTO vmfailover_lease_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
                )
        if versions and max(versions) > SCHEMA_VERSION:
            raise ConflictError(
                f"lease database {self._where!r} has schema version {max(versions)}, newer than "
                f"this vmfailover's {SCHEMA_VERSION}: upgrade vmfailover to use it"
            )

    def __repr__(self) -> str:
        return f"PostgresLease({self._where!r})"

    # --- the Lease protocol ------------------------------------------------------------------

    def acquire(self, plan: str, holder: str, ttl: float) -> LeaseGrant | None:
        checked_name(plan, "lease plan")
        checked_name(holder, "lease holder")
        ttl = checked_ttl(ttl)
        sent_at = self.clock.monotonic()
        parameters = {"plan": plan, "holder": holder, "ttl": ttl}
        # Not repeated on a broken connection: the first try may have committed a grant whose
        # answer was lost, and a second would then find the plan held (by that lost grant).
        row = self._run(
            plan,
            "acquire",
            lambda connection: connection.execute(_ACQUIRE, parameters).fetchone(),
            repeatable=False,
        )
        if row is None:
            return None
        number, expires_at = row
        return make_grant(FencingToken(plan, int(number)), holder, ttl, expires_at, sent_at)

    def renew(self, grant: LeaseGrant) -> LeaseGrant:
        grant = checked_grant(grant)
        sent_at = self.clock.monotonic()
        parameters = {"plan": grant.plan, "token": grant.token.number, "ttl": grant.ttl}

        def renew(connection: psycopg.Connection[Any]) -> Any:
            row = connection.execute(_RENEW, parameters).fetchone()
            if row is None:
                self._require_current(connection, grant.token)
                raise LeaseLostError(grant.token, "it expired")
            return row[0]

        expires_at = self._run(grant.plan, "renew", renew)
        return make_grant(grant.token, grant.holder, grant.ttl, expires_at, sent_at)

    def release(self, grant: LeaseGrant) -> None:
        grant = checked_grant(grant)
        parameters = {"plan": grant.plan, "token": grant.token.number}
        self._run(grant.plan, "release", lambda db: db.execute(_RELEASE, parameters))

    def check(self, token: FencingToken) -> None:
        token = checked_token(token)
        self._run(token.plan, "check", lambda connection: self._require_current(connection, token))

    def check_within(self, connection: psycopg.Connection[Any], token: FencingToken) -> None:
        """:meth:`check` inside the caller's transaction on the same database, locking the lease
        row (``FOR SHARE``) until that transaction ends.

        For a journal in the same database: a new holder's acquire waits for the lock, so it
        cannot commit between this check and the journal's write.
        """
        token = checked_token(token)
        row = connection.execute(_READ + " FOR SHARE", {"plan": token.plan}).fetchone()
        _judge(token, row)

    @staticmethod
    def fence_parameters(token: FencingToken) -> dict[str, object]:
        """The parameters of :data:`FENCE_CONDITION` for ``token``."""
        token = checked_token(token)
        return {"fence_plan": token.plan, "fence_token": token.number}

    def state(self, plan: str) -> LeaseState | None:
        checked_name(plan, "lease plan")
        row = self._run(
            plan, "read", lambda connection: connection.execute(_STATE, {"plan": plan}).fetchone()
        )
        if row is None:
            return None
        holder, number, released, expired, expires_at = row
        return LeaseState(
            plan=plan,
            holder=holder,
            token=FencingToken(plan, int(number)),
            expires_at=expires_at,
            released=bool(released),
            expired=bool(expired),
        )

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- internals -----------------------------------------------------------------------------

    def _require_current(self, connection: psycopg.Connection[Any], token: FencingToken) -> None:
        _judge(token, connection.execute(_READ, {"plan": token.plan}).fetchone())

    def _run(
        self,
        plan: str,
        what: str,
        work: Callable[[psycopg.Connection[Any]], _T],
        *,
        repeatable: bool = True,
    ) -> _T:
        """``work`` on the connection, under the lock; driver errors made ours.

        A connection that was made before and fails at once (the server restarted or failed over
        since) is replaced and ``work`` tried once more when it may be repeated; a statement that
        timed out is not tried again, so every call stays within about two ``timeout``.
        """
        psycopg = self._psycopg
        with self._lock:
            for attempt in (1, 2):
                reused = self._connection is not None and not self._connection.closed
                try:
                    return work(self._connected())
                except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                    self._drop()
                    timed_out = isinstance(
                        error, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable
                    )
                    if attempt == 1 and reused and repeatable and not timed_out:
                        continue
                    raise LeaseUnavailableError(plan, what, first_line(error)) from error
                except psycopg.Error as error:
                    self._drop()
                    raise self._refused(plan, what, error) from error
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _refused(self, plan: str, what: str, error: BaseException) -> ConflictError:
        return ConflictError(
            f"the lease database {self._where!r} refused to {what} the lease on plan "
            f"{plan!r}: {first_line(error)}"
        )

    @contextmanager
    def _session(self, plan: str, what: str) -> Iterator[psycopg.Connection[Any]]:
        """The connection (made anew if needed), under the lock; driver errors made ours."""
        psycopg = self._psycopg
        with self._lock:
            try:
                yield self._connected()
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                self._drop()
                raise LeaseUnavailableError(plan, what, first_line(error)) from error
            except psycopg.Error as error:
                self._drop()
                raise self._refused(plan, what, error) from error

    def _connected(self) -> psycopg.Connection[Any]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        connection: psycopg.Connection[Any] = bounded_connection(
            self._psycopg,
            self._dsn,
            self._timeout,
            application_name="vmfailover-lease",
            options=self._options,
        )
        self._connection = connection
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


def _judge(token: FencingToken, row: tuple[Any, ...] | None) -> None:
    if row is None:
        raise LeaseLostError(token, "the plan has no lease in this database")
    holder, number, released, expired = row
    reason = why_not_current(token, holder, int(number), bool(released), bool(expired))
    if reason is not None:
        raise LeaseLostError(token, reason)
