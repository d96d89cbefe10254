"""A token bucket on a clock: the bandwidth limit a replication job hands to the data path.

The bucket holds up to ``burst_bytes`` tokens and gains ``bytes_per_second`` of them every second
of its clock. :meth:`TokenBucket.consume` takes tokens for the bytes about to move, and when there
are not enough it waits, on the clock, until the shortfall has refilled. A data path that calls it
before each chunk (no chunk larger than the burst) therefore moves, over any stretch of time ``w``,
at most ``bytes_per_second * w + burst_bytes``. On a :class:`~vmfailover.clock.VirtualClock` the
waits are virtual: a two-hour transfer at 50 MB/s takes two virtual hours and no real time.
"""

from __future__ import annotations

import threading

from vmfailover.clock import Clock
from vmfailover.errors import PermanentBackendError, TransientBackendError, ValidationError
from vmfailover.policy.bandwidth import Bandwidth

__all__ = ["TokenBucket"]


class TokenBucket:
    """A :class:`~vmfailover.backends.base.Throttle` limiting bytes to ``bandwidth``.

    ``max_wait`` bounds one wait, in the clock's seconds, instead of stalling the job. Two causes
    are told apart, because only one of them passes: a chunk that waits behind the bytes already
    granted to other transfers on a shared bucket raises :class:`TransientBackendError` (the queue
    drains; trying again later is right), while a chunk that alone takes longer than ``max_wait``
    at the limit raises :class:`PermanentBackendError`: once the burst is spent every chunk of
    that size waits that long, so no retry can help (the limit or the chunk size must change).
    Safe to share between threads: waiters are served in the order they asked.
    """

    def __init__(self, bandwidth: Bandwidth, clock: Clock, *, max_wait: float = 3600.0) -> None:
        if not isinstance(bandwidth, Bandwidth):
            raise ValidationError.of(
                "TokenBucket bandwidth", f"expected a Bandwidth: {bandwidth!r}"
            )
        if not max_wait > 0:
            raise ValidationError.of("TokenBucket max_wait", f"must be > 0 s, got {max_wait!r}")
        self.bandwidth = bandwidth
        self.clock = clock
        self.max_wait = float(max_wait)
        self._rate = bandwidth.bytes_per_second
        self._capacity = float(bandwidth.burst_bytes)
        self._tokens = self._capacity
        self._updated = clock.monotonic()
        self._lock = threading.Lock()
        self.consumed = 0
        """Bytes granted so far."""
        self.waited = 0.0
        """Seconds of the clock spent waiting so far."""

    def consume(self, nbytes: int) -> None:
        """Take ``nbytes`` tokens, waiting on the clock until the shortfall has refilled."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
            raise ValidationError.of("consume", f"nbytes must be a whole number >= 0: {nbytes!r}")
        if nbytes == 0:
            return
        with self._lock:
            now = self.clock.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            shortfall = nbytes - self._tokens
            wait = shortfall / self._rate if shortfall > 0 else 0.0
            if wait > self.max_wait:
                raise self._too_long(nbytes, wait)
            # The tokens are taken now (the balance may go negative): later callers queue behind.
            self._tokens -= nbytes
            self.consumed += nbytes
            self.waited += wait
        if wait > 0:
            self.clock.sleep(wait)

    def _too_long(self, nbytes: int, wait: float) -> TransientBackendError | PermanentBackendError:
        """Why a chunk may not wait ``wait`` seconds: the limit is too low for the chunk itself
        (once the burst is spent, every chunk of this size waits that long), or it queues behind
        transfers granted before it (which drain)."""
        steady = nbytes / self._rate
        if steady > self.max_wait:
            return PermanentBackendError(
                f"bandwidth limit {self.bandwidth}: a chunk of {nbytes} bytes takes {steady:.0f} s "
                f"at this limit, longer than {self.max_wait:.0f} s: raise the limit or move "
                "smaller chunks"
            )
        return TransientBackendError(
            f"bandwidth limit {self.bandwidth}: {nbytes} bytes would wait {wait:.0f} s behind "
            f"transfers granted before them, longer than {self.max_wait:.0f} s"
        )

    def __repr__(self) -> str:
        return f"TokenBucket({self.bandwidth}, burst {self.bandwidth.burst_bytes} bytes)"
