"""One active orchestrator per plan: a lease with a fencing token, and what a holder is given.

Two orchestrators (one per site) may both want to run a plan; exactly one may act. The one that
acts holds the plan's **lease**, a row in a shared database with an expiry that the holder keeps
renewing. Each new holder gets a **fencing token**: a number that grows with every new holder of
the plan and never goes back, not even when a lease is released. A holder that was paused (a
stopped process, a long garbage collection, a frozen VM) may wake up believing it still holds a
lease that expired and passed to another; so before every journal write and every mutating backend
call it asks :meth:`Lease.check` whether its token is still the plan's newest and unexpired, and
stops with :class:`LeaseLostError` when it is not (:class:`~vmfailover.engine.fenced.FencedBackend`
does this for a backend, :class:`~vmfailover.engine.lease_keeper.LeaseKeeper` keeps a lease
renewed).

Two implementations keep the same promises and pass the same tests:
:class:`~vmfailover.engine.lease_sqlite.SQLiteLease` (one machine, one or several processes; the
embedded default) and :class:`~vmfailover.engine.lease_postgres.PostgresLease` (orchestrators at
several sites sharing a PostgreSQL primary, with a standby at the other site).

Expiry is judged by the database's clock (PostgreSQL's ``clock_timestamp()``; for SQLite the
machine's wall clock), so holders on machines whose clocks disagree still agree on who holds the
lease. A holder also keeps a local, monotonic :attr:`LeaseGrant.deadline` taken *before* its
request was sent, so it gives up its lease no later than the database does, even when it cannot
reach the database.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs

from vmfailover.clock import Clock
from vmfailover.errors import ConflictError, TransientBackendError, ValidationError
from vmfailover.model import is_finite_number

__all__ = [
    "MAX_LEASE_SECONDS",
    "FencingToken",
    "Lease",
    "LeaseGrant",
    "LeaseLostError",
    "LeaseState",
    "LeaseUnavailableError",
    "default_holder",
]

#: The longest lease: a day. A holder renews long before; a longer lease only delays takeover.
MAX_LEASE_SECONDS = 86_400.0
#: The shortest lease (a tenth of a second): shorter than a database round trip is no lease.
MIN_LEASE_SECONDS = 0.1
#: How much faster than the database's clock a holder's clock may run (NTP keeps drift under
#: 500 ppm); the local deadline is shortened by this share of the lease's length.
CLOCK_DRIFT = 0.001
_MAX_NAME = 200


def checked_name(value: object, item: str) -> str:
    """A plan or holder name: non-empty printable text of at most 200 characters."""
    if not isinstance(value, str) or not value or len(value) > _MAX_NAME:
        raise ValidationError.of(
            item, f"must be non-empty text of at most {_MAX_NAME} characters, got {value!r}"
        )
    if not value.isprintable():
        raise ValidationError.of(item, f"{value!r} has control characters")
    return value


def checked_ttl(value: object, item: str = "lease ttl") -> float:
    """A lease length in seconds: finite, between a tenth of a second and a day."""
    if not is_finite_number(value) or not MIN_LEASE_SECONDS <= value <= MAX_LEASE_SECONDS:
        raise ValidationError.of(
            item,
            f"must be a finite number of seconds in [{MIN_LEASE_SECONDS}, {MAX_LEASE_SECONDS:g}]"
            f", got {value!r}",
        )
    return float(value)


def default_holder() -> str:
    """A holder name unique to this process: ``host:pid:random``.

    Unique on purpose: two orchestrators configured with the same name would otherwise be one
    holder to the database.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _token_number(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError.of("fencing token", f"must be a whole number >= 1, got {value!r}")


def _plan_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    checked_name(value, f"lease {attribute.name}")


@attrs.frozen(order=False)
class FencingToken:
    """A holder's proof of tenure: the plan and a number that grows with every new holder.

    Tokens of one plan compare by number; a journal stores the number with each write.
    """

    plan: str = attrs.field(validator=_plan_name)
    number: int = attrs.field(validator=_token_number)

    def newer_than(self, other: FencingToken) -> bool:
        if other.plan != self.plan:
            raise ValidationError.of(
                "fencing token", f"tokens of plans {self.plan!r} and {other.plan!r} do not compare"
            )
        return self.number > other.number

    def __str__(self) -> str:
        return f"{self.plan}#{self.number}"


@attrs.frozen
class LeaseGrant:
    """What :meth:`Lease.acquire` and :meth:`Lease.renew` hand the holder.

    ``expires_at`` is the database's expiry; ``deadline`` is the holder's own monotonic reading
    (its lease's clock) by which it must have renewed, taken before the request was sent, so it
    is never later than the database's expiry.
    """

    token: FencingToken
    holder: str
    ttl: float
    expires_at: datetime
    deadline: float

    @property
    def plan(self) -> str:
        return self.token.plan


@attrs.frozen
class LeaseState:
    """Who holds a plan's lease, as the database says (a read, for status pages and tests)."""

    plan: str
    holder: str
    token: FencingToken
    expires_at: datetime
    released: bool
    expired: bool

    @property
    def held(self) -> bool:
        return not self.released and not self.expired


def checked_grant(grant: object) -> LeaseGrant:
    if not isinstance(grant, LeaseGrant):
        raise ValidationError.of("lease grant", f"must be a LeaseGrant, got {grant!r}")
    return grant


def checked_token(token: object) -> FencingToken:
    if not isinstance(token, FencingToken):
        raise ValidationError.of("fencing token", f"must be a FencingToken, got {token!r}")
    return token


def make_grant(
    token: FencingToken, holder: str, ttl: float, expires_at: datetime, sent_at: float
) -> LeaseGrant:
    """A grant whose local deadline is ``ttl`` (less the allowed drift) after ``sent_at``."""
    return LeaseGrant(
        token=token,
        holder=holder,
        ttl=ttl,
        expires_at=expires_at,
        deadline=sent_at + ttl * (1 - CLOCK_DRIFT),
    )


def why_not_current(
    token: FencingToken, holder: str, newest: int, released: bool, expired: bool
) -> str | None:
    """Why ``token`` is no longer the plan's running tenure, or None when it is.

    ``holder``, ``newest``, ``released`` and ``expired`` describe the plan's lease row as the
    store has it now.
    """
    if newest > token.number:
        return f"taken over by token {newest} (holder {holder!r})"
    if newest < token.number:
        return f"the store's newest token is {newest}, older than this one (a store restored?)"
    if released:
        return "it was released"
    if expired:
        return "it expired"
    return None


class LeaseLostError(ConflictError):
    """The holder's token is no longer the plan's newest and unexpired: it must stop acting.

    Raised by :meth:`Lease.check` and :meth:`Lease.renew`, and by a fenced backend before a
    mutating call. ``reason`` says why (expired, released, or taken over by a newer token).
    """

    def __init__(self, token: FencingToken, reason: str) -> None:
        if not isinstance(token, FencingToken):
            raise ValidationError.of("lease lost", f"needs a FencingToken, got {token!r}")
        if not isinstance(reason, str):
            raise ValidationError.of("lease lost", f"the reason must be text, got {reason!r}")
        self.token = token
        self.reason = reason
        super().__init__(
            f"lease on plan {token.plan!r} lost (token {token.number}): {reason}; "
            "this holder must not act for the plan any more"
        )


class LeaseUnavailableError(TransientBackendError):
    """The lease's database did not answer, so the lease can be neither confirmed nor denied.

    Nothing may act on an unconfirmed lease; the same call may succeed once the database is
    back (hence transient). Once the holder's local deadline passes, its calls raise
    :class:`LeaseLostError` instead.
    """

    def __init__(self, plan: str, what: str, cause: BaseException | str) -> None:
        self.plan = plan
        super().__init__(f"cannot {what} the lease on plan {plan!r}: {cause}")


@runtime_checkable
class Lease(Protocol):
    """Leases on plans in one shared store. Every method is safe to call from several threads.

    Errors: a store that does not answer raises :class:`LeaseUnavailableError` (transient, with a
    bounded wait); a lost lease :class:`LeaseLostError`; bad arguments
    :class:`~vmfailover.errors.ValidationError`.
    """

    #: The clock the holder's local deadlines are read from.
    clock: Clock

    def acquire(self, plan: str, holder: str, ttl: float) -> LeaseGrant | None:
        """Take the plan's lease for ``ttl`` seconds, with a token newer than any before.

        Succeeds only when nobody holds it (never held, released, or expired); returns None
        while another holder's lease runs. Exactly one of several racing callers succeeds. A
        holder that wants to keep its lease calls :meth:`renew`, not this.
        """
        ...

    def renew(self, grant: LeaseGrant) -> LeaseGrant:
        """Extend the lease by its ``ttl`` from now; the token stays the same.

        Raises :class:`LeaseLostError` when the lease expired, was released, or has a newer
        holder: an expired lease is lost even if nobody took it (acquire it again for a new token).
        """
        ...

    def release(self, grant: LeaseGrant) -> None:
        """Give the lease up now, so another holder need not wait for it to expire.

        Idempotent, and does nothing when the lease was already lost.
        """
        ...

    def check(self, token: FencingToken) -> None:
        """Return if ``token`` is the plan's newest and its lease runs; else raise
        :class:`LeaseLostError`. One read of the store."""
        ...

    def state(self, plan: str) -> LeaseState | None:
        """Who holds the plan's lease, or None for a plan never leased."""
        ...

    def close(self) -> None:
        """Close the connection to the store (a lease held stays held until it expires)."""
        ...
