"""``FabricClock``: a :class:`~vmfailover.clock.Clock` that is the replication fabric's own time.

A test that drives the Hyper-V backend against simulated hosts gives the backend (and the runner)
this clock, so that waiting is what makes Hyper-V's time pass: a backend that sleeps while it
waits for the next recovery point moves the fabric's clock, and with scheduled replication the
cycle that falls due in that time runs. Deterministic and instant, like the memory lab's
:class:`~vmfailover.clock.VirtualClock`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from vmfailover.errors import ValidationError

from .model import ReplicationFabric

__all__ = ["FabricClock"]


class FabricClock:
    """Now is the fabric's time; sleeping advances it (running the cycles that fall due)."""

    def __init__(self, fabric: ReplicationFabric) -> None:
        self.fabric = fabric
        self._start = fabric.current()

    def now(self) -> datetime:
        return self.fabric.current()

    def monotonic(self) -> float:
        return (self.fabric.current() - self._start).total_seconds()

    def sleep(self, seconds: float) -> None:
        if not seconds >= 0:  # NaN included
            raise ValidationError.of("FabricClock.sleep", f"{seconds!r} is not seconds >= 0")
        if seconds:
            self.fabric.advance(timedelta(seconds=seconds))

    def __repr__(self) -> str:
        return f"FabricClock(now={self.now().isoformat()})"
