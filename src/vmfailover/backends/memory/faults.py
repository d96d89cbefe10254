"""Fault injection for the memory backend: failed calls, latency and crashes, all seeded.

Lives beside the memory backend because that is where faults are injected; tests reach it as
``backend.faults`` and import :class:`SimulatedCrash` from :mod:`vmfailover.testing`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable

import attrs

from vmfailover.errors import PermanentBackendError, TransientBackendError, ValidationError

__all__ = ["FaultInjector", "SimulatedCrash"]


class SimulatedCrash(BaseException):
    """The orchestrating process 'dies' here.

    A ``BaseException`` so that no ``except Exception`` in the engine can swallow it, just as
    nothing in a process survives a kill.
    """


@attrs.define
class _Failure:
    operation: str
    nth: int
    times: int
    transient: bool
    target: str | None
    message: str
    seen: int = 0


@attrs.define
class _RandomFailure:
    probability: float
    operations: frozenset[str] | None
    rng: random.Random


@attrs.define
class _Latency:
    draw: Callable[[random.Random], float]
    operations: frozenset[str] | None
    rng: random.Random


class FaultInjector:
    """What goes wrong, and when. Every backend call passes through :meth:`before_call`.

    Counting is per operation (``"power_on"``) and, when a target is given, per operation and
    target id, so "fail the second power_on of db01" is expressible.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._random: list[_RandomFailure] = []
        self._latency: list[_Latency] = []
        self._crash_at: int | None = None
        self.calls = 0
        self.per_operation: Counter[str] = Counter()

    # --- configuration ---------------------------------------------------------------------------

    def fail(
        self,
        operation: str,
        *,
        nth: int = 1,
        times: int = 1,
        transient: bool = True,
        target: str | None = None,
        message: str | None = None,
    ) -> None:
        """Fail the ``nth`` call of ``operation`` (on ``target``) and the ``times - 1`` after it."""
        if nth < 1 or times < 1:
            raise ValidationError.of(
                f"fault on {operation!r}", f"nth and times must be >= 1 (got {nth}, {times})"
            )
        kind = "transient" if transient else "permanent"
        text = message or f"injected {kind} failure of {operation}"
        with self._lock:
            self._failures.append(_Failure(operation, nth, times, transient, target, text))

    def fail_randomly(
        self, probability: float, *, operations: Iterable[str] | None = None, seed: int = 0
    ) -> None:
        """Fail each call (of ``operations``, or every operation) transiently with a probability."""
        if not 0.0 <= probability <= 1.0:
            raise ValidationError.of("fail_randomly", f"probability {probability} not in [0, 1]")
        ops = frozenset(operations) if operations is not None else None
        with self._lock:
            self._random.append(_RandomFailure(probability, ops, random.Random(seed)))

    def add_latency(
        self,
        seconds: float | tuple[float, float],
        *,
        operations: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        """Delay calls by a fixed time or by a uniform draw from ``(low, high)``, seeded."""
        if isinstance(seconds, tuple):
            low, high = seconds
            if not 0 <= low <= high:
                raise ValidationError.of("add_latency", f"need 0 <= low <= high, got {seconds}")

            def draw(rng: random.Random) -> float:
                return rng.uniform(low, high)
        else:
            if seconds < 0:
                raise ValidationError.of("add_latency", f"latency must be >= 0, got {seconds}")
            fixed = float(seconds)

            def draw(rng: random.Random) -> float:
                return fixed

        ops = frozenset(operations) if operations is not None else None
        with self._lock:
            self._latency.append(_Latency(draw, ops, random.Random(seed)))

    def crash_at(self, call_number: int | None) -> None:
        """Raise :class:`SimulatedCrash` at the ``call_number``-th backend call (1-based)."""
        with self._lock:
            self._crash_at = call_number

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._random.clear()
            self._latency.clear()
            self._crash_at = None

    # --- the hook --------------------------------------------------------------------------------

    def before_call(self, operation: str, target: str | None) -> float:
        """Count the call; raise the injected failure or crash; return the latency to wait."""
        with self._lock:
            self.calls += 1
            self.per_operation[operation] += 1
            if self._crash_at is not None and self.calls == self._crash_at:
                raise SimulatedCrash(f"simulated crash at backend call {self.calls} ({operation})")
            delay = sum(
                lat.draw(lat.rng)
                for lat in self._latency
                if lat.operations is None or operation in lat.operations
            )
            for failure in self._failures:
                if failure.operation != operation:
                    continue
                if failure.target is not None and failure.target != target:
                    continue
                failure.seen += 1
                if failure.nth <= failure.seen < failure.nth + failure.times:
                    error = TransientBackendError if failure.transient else PermanentBackendError
                    raise error(f"{failure.message} (target {target!r})")
            for chance in self._random:
                if chance.operations is not None and operation not in chance.operations:
                    continue
                if chance.rng.random() < chance.probability:
                    raise TransientBackendError(
                        f"injected random transient failure of {operation} (target {target!r})"
                    )
            return delay
