"""Clocks: the only place the engine reads the time or waits.

Passing a clock in, instead of calling ``time`` and ``datetime.now`` directly, lets the same runner
work in real time against vSphere and in virtual time against the memory backend, where a two-week
replication schedule or a 60-second boot takes milliseconds.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from vmfailover.errors import ValidationError
from vmfailover.model import aware_utc

__all__ = ["Clock", "SystemClock", "VirtualClock"]


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


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """Time that starts at ``start`` and moves as the caller says.

    With ``rate=0`` (the default) time stands still until :meth:`advance` moves it, and
    :meth:`sleep` advances it instantly: deterministic, for single-threaded simulations and tests.
    With ``rate > 0`` time also flows at ``rate`` times real time and :meth:`sleep` really waits
    ``seconds / rate``: several threads can then wait at once and durations overlap as they would
    in real time, only faster (a lab with 60-second boots runs in a second at ``rate=60``).
    """

    def __init__(self, start: datetime | None = None, *, rate: float = 0.0) -> None:
        if rate < 0:
            raise ValidationError.of("VirtualClock rate", f"must be >= 0, got {rate}")
        self._start = aware_utc(start, "VirtualClock start") if start else datetime.now(UTC)
        self._rate = rate
        self._offset = 0.0
        self._real_start = time.monotonic()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed()

    def _elapsed(self) -> float:
        flowing = (time.monotonic() - self._real_start) * self._rate if self._rate else 0.0
        return self._offset + flowing

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    def set_rate(self, rate: float) -> None:
        """Change how fast time flows from now on; the current instant is kept."""
        if rate < 0:
            raise ValidationError.of("VirtualClock rate", f"must be >= 0, got {rate}")
        with self._lock:
            self._offset = self._elapsed()
            self._real_start = time.monotonic()
            self._rate = rate

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` at once."""
        if seconds < 0:
            raise ValidationError.of("VirtualClock.advance", f"cannot go back ({seconds} s)")
        with self._lock:
            self._offset += seconds

    def advance_to(self, instant: datetime) -> None:
        """Move time forward to ``instant`` (no-op if it is not in the future)."""
        delta = (aware_utc(instant, "advance_to") - self.now()).total_seconds()
        if delta > 0:
            self.advance(delta)

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._rate:
            time.sleep(seconds / self._rate)
        else:
            self.advance(seconds)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now().isoformat()}, rate={self._rate})"
