"""Clocks: the only place the engine reads the time or waits.

Passing a clock in, instead of calling ``time`` and ``datetime.now`` directly, lets the same runner
work in real time against vSphere and in virtual time against the memory backend, where a two-week
replication schedule or a 60-second boot takes milliseconds.

Threaded runs on virtual time need one more thing, which trio's autojump clock gave us the idea
for: time may only jump ahead when everybody who takes part in the run is waiting on the clock.
Work that takes part is *enlisted* (:meth:`Clock.enlist` returns a :class:`Ticket`, counted from
the moment work is handed out, so work queued for a thread already holds time back); a waiter
wakes by a deadline or by a :class:`Signal`. A :class:`VirtualClock` that does not flow
(``rate=0``) then jumps to the earliest deadline the moment every enlisted ticket waits, and a run's
timeline no longer depends on how fast the machine is.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol

from vmfailover.errors import ValidationError
from vmfailover.model import as_instance, aware_utc, is_finite_number

__all__ = ["Clock", "Signal", "SystemClock", "Ticket", "VirtualClock", "full_clock"]

#: The longest a virtual clock may run (a century): beyond it, ``now()`` would overflow.
MAX_SECONDS = 100 * 366 * 86_400.0


def _seconds(value: object, item: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if not is_finite_number(value) or value < 0:
        raise ValidationError.of(item, f"must be a finite number of seconds >= 0, got {value!r}")
    if value > MAX_SECONDS:
        raise ValidationError.of(item, f"{value!r} seconds is longer than a century")
    return float(value)


_LATEST_START = datetime(9800, 1, 1, tzinfo=UTC)  # a century after it is still a date


def _start(value: object) -> datetime:
    if value is None:
        return datetime.now(UTC)
    start = aware_utc(value, "VirtualClock start")  # type: ignore[arg-type]
    if start > _LATEST_START:
        raise ValidationError.of(
            "VirtualClock start", f"must be before {_LATEST_START:%Y}, got {start.isoformat()}"
        )
    return start


class Signal:
    """A one-shot flag that a thread can wait for through its clock (:meth:`Clock.wait`)."""

    def __init__(self, clock: _Notify | None = None) -> None:
        self._event = threading.Event()
        self._clock = clock

    def set(self) -> None:
        """Raise the flag and wake whoever waits for it."""
        if self._clock is not None:
            self._clock._signalled(self)
        else:
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


class Ticket:
    """One piece of enlisted work. Counted from :meth:`Clock.enlist` until :meth:`release`.

    ``with ticket:`` runs the work in the current thread under this ticket (its waits count as
    the ticket waiting) and releases it at the end.
    """

    def __init__(self, clock: _Notify | None = None) -> None:
        self._clock = clock
        self._released = False
        self._previous: Ticket | None = None

    def __enter__(self) -> Ticket:
        if self._clock is not None:
            self._previous = self._clock._bind(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._clock is not None:
            self._clock._unbind(self._previous)
        self.release()

    def release(self) -> None:
        """The work is done (or will not run): stop holding time back. Idempotent."""
        if self._released:
            return
        self._released = True
        if self._clock is not None:
            self._clock._released(self)


class _Notify(Protocol):
    def _signalled(self, signal: Signal) -> None: ...
    def _bind(self, ticket: Ticket) -> Ticket | None: ...
    def _unbind(self, previous: Ticket | None) -> None: ...
    def _released(self, ticket: Ticket) -> None: ...


class Clock(Protocol):
    """What the engine needs of time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations and timeouts."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this many seconds of this clock's time."""
        ...

    def signal(self) -> Signal:
        """A new flag to wait for with :meth:`wait`."""
        ...

    def wait(self, signal: Signal, timeout: float) -> bool:
        """Wait until ``signal`` is set or ``timeout`` seconds of this clock pass; True if set."""
        ...

    def enlist(self) -> Ticket:
        """Count a piece of work as taking part in a threaded run (see the module docstring)."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        checked = _seconds(seconds, "sleep")
        if checked:
            time.sleep(checked)

    def signal(self) -> Signal:
        return Signal()

    def wait(self, signal: Signal, timeout: float) -> bool:
        checked = _seconds(timeout, "wait timeout")
        as_instance(signal, Signal, "wait")
        return signal._event.wait(checked)

    def enlist(self) -> Ticket:
        return Ticket()

    def __repr__(self) -> str:
        return "SystemClock()"


class _Waiter:
    __slots__ = ("deadline", "signal", "weight", "woken")

    def __init__(self, deadline: float | None, signal: Signal | None, weight: int) -> None:
        self.deadline = deadline
        self.signal = signal
        self.weight = weight  # the enlisted tickets this waiter's thread holds
        self.woken = False


class VirtualClock:
    """Time that starts at ``start`` and moves as the caller says.

    With ``rate=0`` (the default) time stands still until something moves it, and is
    deterministic: :meth:`advance` moves it; :meth:`sleep` from a thread that is not enlisted, while
    nothing is enlisted, advances it at once; and while work is enlisted (a threaded run), every
    sleep and wait blocks until each enlisted ticket waits, and then time jumps to the earliest
    deadline. With ``rate > 0`` time also flows at ``rate`` times real time and waits really wait
    (``seconds / rate``): durations overlap as they would in real time, only faster.
    """

    def __init__(self, start: datetime | None = None, *, rate: float = 0.0) -> None:
        self._rate = self._checked_rate(rate)
        self._start = _start(start)
        self._offset = 0.0
        self._real_start = time.monotonic()
        self._cond = threading.Condition(threading.Lock())
        self._local = threading.local()
        self._enlisted = 0
        self._blocked = 0
        self._waiters: list[tuple[float, int, _Waiter]] = []
        self._by_signal: dict[int, list[_Waiter]] = {}
        self._order = itertools.count()

    @staticmethod
    def _checked_rate(rate: object) -> float:
        checked = _seconds(rate, "VirtualClock rate")
        assert checked is not None
        if checked > 1e9 or 0 < checked < 1e-3:
            raise ValidationError.of(
                "VirtualClock rate",
                f"must be 0 (time moves when advanced) or from 0.001 to 1e9, got {rate!r}",
            )
        return checked

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def start(self) -> datetime:
        """The instant the clock started at: :meth:`now` is this plus :meth:`monotonic`."""
        return self._start

    # --- reading ---------------------------------------------------------------------------------

    def monotonic(self) -> float:
        with self._cond:
            return self._elapsed()

    def _elapsed(self) -> float:
        flowing = (time.monotonic() - self._real_start) * self._rate if self._rate else 0.0
        # Flowing time stops a century after the start, as advance() does: now() stays a date.
        return min(self._offset + flowing, MAX_SECONDS)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    # --- moving ----------------------------------------------------------------------------------

    def set_rate(self, rate: float) -> None:
        """Change how fast time flows from now on; the current instant is kept."""
        checked = self._checked_rate(rate)
        with self._cond:
            self._offset = self._elapsed()
            self._real_start = time.monotonic()
            self._rate = checked
            self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` at once (waking whoever's deadline passes)."""
        checked = _seconds(seconds, "VirtualClock.advance")
        assert checked is not None
        with self._cond:
            if self._offset + checked > MAX_SECONDS:
                raise ValidationError.of(
                    "VirtualClock.advance", "the clock would run past a century from its start"
                )
            self._offset += checked
            self._wake_due()

    def advance_to(self, instant: datetime) -> None:
        """Move time forward to ``instant`` (no-op if it is not in the future)."""
        delta = (aware_utc(instant, "advance_to") - self.now()).total_seconds()
        if delta > 0:
            self.advance(delta)

    # --- waiting ---------------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        checked = _seconds(seconds, "sleep")
        assert checked is not None
        if checked <= 0:
            return
        if self._rate:
            time.sleep(checked / self._rate)
            return
        with self._cond:
            held = self._held()
            if not held and self._enlisted == 0:
                self._offset += checked  # nobody else takes part: time simply moves
                self._wake_due()
                return
            self._block(_Waiter(self._offset + checked, None, held))

    def signal(self) -> Signal:
        return Signal(self)

    def wait(self, signal: Signal, timeout: float) -> bool:
        checked = _seconds(timeout, "wait timeout")
        as_instance(signal, Signal, "wait")
        assert checked is not None
        if self._rate:
            return signal._event.wait(checked / self._rate)
        with self._cond:
            if signal._event.is_set():
                return True
            held = self._held()
            if not held and self._enlisted == 0:
                self._offset += checked
                self._wake_due()
                return signal._event.is_set()
            waiter = _Waiter(self._offset + checked, signal, held)
            self._by_signal.setdefault(id(signal), []).append(waiter)
            try:
                self._block(waiter)
            finally:
                waiting = self._by_signal.get(id(signal), [])
                if waiter in waiting:
                    waiting.remove(waiter)
                if not waiting:
                    self._by_signal.pop(id(signal), None)
            return signal._event.is_set()

    def enlist(self) -> Ticket:
        with self._cond:
            self._enlisted += 1
        return Ticket(self)

    # --- the machinery (called with the lock held unless named otherwise) -------------------------

    def _ticket(self) -> Ticket | None:
        ticket: Ticket | None = getattr(self._local, "ticket", None)
        return ticket

    def _held(self) -> int:
        """How many unreleased tickets this thread holds: work that enlists more work in the same
        thread (a run started from enlisted work) waits for all of them at once."""
        seen: set[int] = set()
        held = 0
        ticket = self._ticket()
        while ticket is not None and id(ticket) not in seen:
            seen.add(id(ticket))
            held += not ticket._released
            ticket = ticket._previous
        return held

    def _block(self, waiter: _Waiter) -> None:
        if waiter.deadline is not None:
            heapq.heappush(self._waiters, (waiter.deadline, next(self._order), waiter))
        self._blocked += waiter.weight
        self._wake_due()
        self._jump_if_idle()
        try:
            while not waiter.woken:
                self._cond.wait()
        except BaseException:  # an interrupt (Ctrl-C) ends the wait: stop counting it as waiting
            self._wake(waiter)
            raise

    def _wake(self, waiter: _Waiter) -> None:
        if not waiter.woken:
            waiter.woken = True
            self._blocked -= waiter.weight

    def _wake_due(self) -> None:
        woke = False
        while self._waiters and self._waiters[0][0] <= self._offset:
            _, _, waiter = heapq.heappop(self._waiters)
            woke = woke or not waiter.woken
            self._wake(waiter)
        if woke:
            self._cond.notify_all()

    def _jump_if_idle(self) -> None:
        """Every enlisted ticket waits: jump to the earliest deadline (repeat while only
        waiters that are not enlisted wake, since they hold nothing back)."""
        while self._blocked >= self._enlisted:
            while self._waiters and self._waiters[0][2].woken:
                heapq.heappop(self._waiters)
            if not self._waiters:
                return
            deadline = self._waiters[0][0]
            self._offset = max(self._offset, deadline)
            before = self._blocked
            self._wake_due()
            if self._blocked < before or self._enlisted == 0:
                return

    def _signalled(self, signal: Signal) -> None:
        with self._cond:
            signal._event.set()
            for waiter in self._by_signal.get(id(signal), []):
                self._wake(waiter)
            self._cond.notify_all()

    def _bind(self, ticket: Ticket) -> Ticket | None:
        previous = self._ticket()
        self._local.ticket = ticket
        return previous

    def _unbind(self, previous: Ticket | None) -> None:
        self._local.ticket = previous

    def _released(self, ticket: Ticket) -> None:
        with self._cond:
            self._enlisted -= 1
            self._jump_if_idle()

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now().isoformat()}, rate={self._rate})"


class _BasicClock(Protocol):
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class _Adapted:
    """A clock that only reads and sleeps, given waits that do not move its time.

    A wait watches its signal in short real-time slices and ends when the signal is set, when
    ``timeout`` of the clock's own time has passed, or after ``timeout`` real seconds at most.
    """

    def __init__(self, clock: _BasicClock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now()

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def signal(self) -> Signal:
        return Signal()

    def wait(self, signal: Signal, timeout: float) -> bool:
        checked = _seconds(timeout, "wait timeout")
        as_instance(signal, Signal, "wait")
        assert checked is not None
        start, real_start = self._clock.monotonic(), time.monotonic()
        while not signal._event.wait(0.05):
            if (
                self._clock.monotonic() - start >= checked
                or time.monotonic() - real_start >= checked
            ):
                return signal.is_set()
        return True

    def enlist(self) -> Ticket:
        return Ticket()

    def __repr__(self) -> str:
        return repr(self._clock)


def full_clock(clock: object) -> Clock:
    """``clock`` if it is a whole :class:`Clock`; a clock that can only read the time and sleep
    gains waits and enlisting (without virtual-time jumps); anything else is refused."""
    basics = ("now", "monotonic", "sleep")
    if not all(callable(getattr(clock, name, None)) for name in basics):
        raise ValidationError.of(
            "clock", f"{clock!r} is not a clock: it needs now(), monotonic() and sleep()"
        )
    if all(callable(getattr(clock, name, None)) for name in ("signal", "wait", "enlist")):
        return clock  # type: ignore[return-value]
    return _Adapted(clock)  # type: ignore[arg-type]
