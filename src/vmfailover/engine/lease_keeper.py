"""``LeaseKeeper``: hold a plan's lease for as long as work goes on, and know when it is gone.

A keeper acquires the lease (waiting a bounded time for another holder's lease to end), renews it
from a thread of its own every third of its length, and is the **fence** that guarded work asks
before it acts (:meth:`LeaseKeeper.check`). Renewals that fail because the database does not
answer are retried until the holder's local deadline; a renewal the database refuses, or a
deadline that passes, marks the lease lost for good: every later :meth:`check` raises
:class:`~vmfailover.engine.lease.LeaseLostError` and the keeper never acquires again by itself
(a holder that lost its lease must start over: resume from the journal with a new token).
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType
from typing import Protocol

from vmfailover.engine.lease import (
    FencingToken,
    Lease,
    LeaseGrant,
    LeaseLostError,
    LeaseUnavailableError,
    checked_name,
    checked_ttl,
    default_holder,
)
from vmfailover.errors import ConflictError, ValidationError

__all__ = ["Fence", "LeaseKeeper"]

#: How long a failed renewal waits before the next try (at most; never past the deadline).
_RETRY_SECONDS = 0.25


class Fence(Protocol):
    """What guarded work asks before it acts: returns, or raises
    :class:`~vmfailover.engine.lease.LeaseLostError` (stop for good) or
    :class:`~vmfailover.engine.lease.LeaseUnavailableError` (cannot tell now; try again)."""

    def check(self) -> None: ...


class LeaseKeeper:
    """Acquire a plan's lease, keep it renewed, and fence work with its token.

    ``with LeaseKeeper(lease, "plan-a", ttl=15) as keeper:`` acquires (waiting up to
    ``acquire_timeout`` seconds) and releases at the end. ``renew_every`` defaults to a third of
    ``ttl``, so two renewals may fail before the lease runs out. The keeper waits in real time
    and reads deadlines from the lease's clock: give it a lease on the system clock.
    """

    def __init__(
        self,
        lease: Lease,
        plan: str,
        *,
        ttl: float = 15.0,
        holder: str | None = None,
        renew_every: float | None = None,
        acquire_timeout: float = 60.0,
    ) -> None:
        if not isinstance(lease, Lease):
            raise ValidationError.of("lease keeper", f"needs a Lease, got {lease!r}")
        self.lease = lease
        self.plan = checked_name(plan, "lease plan")
        self.ttl = checked_ttl(ttl)
        self.holder: str = (
            checked_name(holder, "lease holder") if holder is not None else default_holder()
        )
        every = self.ttl / 3 if renew_every is None else renew_every
        self.renew_every = checked_ttl(every, "lease renew_every")
        if self.renew_every >= self.ttl:
            raise ValidationError.of(
                "lease renew_every",
                f"{self.renew_every:g} s is not shorter than the lease ({self.ttl:g} s)",
            )
        self.acquire_timeout = checked_ttl(acquire_timeout, "lease acquire_timeout")
        self._clock = lease.clock
        self._guard = threading.Lock()
        self._grant: LeaseGrant | None = None
        self._lost: LeaseLostError | None = None
        self._fenced_off = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        token = self._grant.token if self._grant is not None else None
        state = "lost" if self._lost is not None else ("held" if token else "not held")
        return f"LeaseKeeper({self.plan!r}, {state}, token={token})"

    # --- life ----------------------------------------------------------------------------------

    def __enter__(self) -> LeaseKeeper:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> LeaseGrant:
        """Take the lease, polling while another holds it; start renewing.

        Raises :class:`~vmfailover.errors.ConflictError` naming the holder when the lease is
        still held after ``acquire_timeout`` seconds.
        """
        if self._grant is not None:
            raise ConflictError(f"lease keeper for plan {self.plan!r} already acquired its lease")
        deadline = self._clock.monotonic() + self.acquire_timeout
        poll = min(self.ttl / 4, 1.0)
        while True:
            try:
                grant = self.lease.acquire(self.plan, self.holder, self.ttl)
            except LeaseUnavailableError:
                grant = None
            if grant is not None:
                break
            left = deadline - self._clock.monotonic()
            if left <= 0:
                state = self.lease.state(self.plan)
                who = f" by {state.holder!r} (token {state.token.number})" if state else ""
                raise ConflictError(
                    f"the lease on plan {self.plan!r} is still held{who} after "
                    f"{self.acquire_timeout:g} s"
                )
            self._stop.wait(min(poll, left))
        with self._guard:
            self._grant = grant
        self._thread = threading.Thread(
            target=self._renew_until_stopped, name=f"lease-keeper-{self.plan}", daemon=True
        )
        self._thread.start()
        return grant

    def release(self) -> None:
        """Stop renewing and give the lease up (if it is still ours). Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.ttl + 5)
        with self._guard:
            grant, lost = self._grant, self._lost
            if grant is not None and lost is None:
                self._lost = LeaseLostError(grant.token, "it was released by its holder")
            fenced_off = self._fenced_off
            self._fenced_off = False
        if grant is not None and (lost is None or fenced_off):
            # A store that does not answer now: the lease expires by itself. (The store releases
            # only a lease that is still this token's: one lost meanwhile is left to its holder.)
            with contextlib.suppress(LeaseUnavailableError):
                self.lease.release(grant)

    # --- the fence -----------------------------------------------------------------------------

    @property
    def token(self) -> FencingToken:
        grant = self._grant
        if grant is None:
            raise ConflictError(f"lease keeper for plan {self.plan!r} holds no lease yet")
        return grant.token

    @property
    def grant(self) -> LeaseGrant | None:
        return self._grant

    @property
    def lost(self) -> LeaseLostError | None:
        """Why the lease was lost, or None while it is held."""
        return self._lost

    def check(self) -> None:
        """Raise unless the lease is ours now: the local deadline, then the store, then the
        deadline again (a pause while the store answered counts)."""
        grant = self._local_check()
        try:
            self.lease.check(grant.token)
        except LeaseLostError as error:
            self._mark_lost(error)
            raise
        self._local_check()

    def check_local(self) -> None:
        """Raise unless the lease is ours by this holder's own reckoning: not lost, and its local
        deadline not passed. No read of the store, so cheap enough to guard every backend read
        (a holder that woke after losing its lease then stops reading too)."""
        self._local_check()

    def fence_off(self, reason: str) -> None:
        """Stop acting under this lease now: every later :meth:`check` raises
        :class:`~vmfailover.engine.lease.LeaseLostError` with ``reason``. Renewals stop; the
        lease row stays this holder's until :meth:`release` or its expiry, so a successor cannot
        act while work that was under way winds down."""
        with self._guard:
            grant = self._grant
        if grant is None:
            raise ConflictError(f"lease keeper for plan {self.plan!r} holds no lease yet")
        with self._guard:
            if self._lost is None:
                self._fenced_off = True
        self._mark_lost(LeaseLostError(grant.token, reason))

    # --- internals -----------------------------------------------------------------------------

    def _local_check(self) -> LeaseGrant:
        with self._guard:
            grant, lost = self._grant, self._lost
        if grant is None:
            raise ConflictError(f"lease keeper for plan {self.plan!r} holds no lease yet")
        if lost is not None:
            raise lost
        if self._clock.monotonic() >= grant.deadline:
            error = LeaseLostError(grant.token, "its holder's deadline passed without a renewal")
            self._mark_lost(error)
            raise error
        return grant

    def _mark_lost(self, error: LeaseLostError) -> None:
        with self._guard:
            if self._lost is None:
                self._lost = error
        self._stop.set()

    def _renew_until_stopped(self) -> None:
        next_renewal = self._clock.monotonic() + self.renew_every
        while not self._stop.wait(max(0.0, next_renewal - self._clock.monotonic())):
            with self._guard:
                grant, lost = self._grant, self._lost
            if grant is None or lost is not None:
                return
            if self._clock.monotonic() >= grant.deadline:
                self._mark_lost(LeaseLostError(grant.token, "no renewal got through in time"))
                return
            try:
                renewed = self.lease.renew(grant)
            except LeaseLostError as error:
                self._mark_lost(error)
                return
            except LeaseUnavailableError:
                left = grant.deadline - self._clock.monotonic()
                next_renewal = self._clock.monotonic() + max(0.0, min(_RETRY_SECONDS, left))
                continue
            with self._guard:
                if self._lost is None:
                    self._grant = renewed
            next_renewal = self._clock.monotonic() + self.renew_every
