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
from vmfailover.model import as_flag, as_items, is_finite_number

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


_MAX_LATENCY = 86_400.0


def _latency(value: object) -> float:
    if not is_finite_number(value) or not 0 <= value <= _MAX_LATENCY:
        raise ValidationError.of(
            "add_latency",
            f"seconds must be a finite number from 0 to {_MAX_LATENCY:g} (or a pair of them), "
            f"got {value!r}",
        )
    return float(value)


def _count(value: object, item: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise ValidationError.of(item, f"must be a whole number >= 1, got {value!r}")


def _name(value: object, item: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError.of(item, f"must be a non-empty string, got {value!r}")


def _operations(value: Iterable[str] | None, item: str) -> frozenset[str] | None:
    if value is None:
        return None
    names = as_items(value, str, f"{item} operations", "an operation name")
    for name in names:
        _name(name, f"{item} operations")
    return frozenset(names)


def _seed(value: object, item: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError.of(f"{item} seed", f"must be a whole number, got {value!r}")


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

    @property
    def armed(self) -> bool:
        """Whether any failure, random failure, latency or crash is set up."""
        with self._lock:
            return bool(
                self._failures or self._random or self._latency or self._crash_at is not None
            )

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
        _name(operation, "fail operation")
        item = f"fault on {operation!r}"
        _count(nth, f"{item} nth")
        _count(times, f"{item} times")
        as_flag(transient, f"{item} transient")
        if target is not None:
            _name(target, f"{item} target")
        if message is not None and not isinstance(message, str):
            raise ValidationError.of(f"{item} message", f"must be text, got {message!r}")
        kind = "transient" if transient else "permanent"
        text = message or f"injected {kind} failure of {operation}"
        with self._lock:
            self._failures.append(_Failure(operation, nth, times, transient, target, text))

    def fail_randomly(
        self, probability: float, *, operations: Iterable[str] | None = None, seed: int = 0
    ) -> None:
        """Fail each call (of ``operations``, or every operation) transiently with a probability."""
        if not is_finite_number(probability) or not 0.0 <= probability <= 1.0:
            raise ValidationError.of(
                "fail_randomly", f"probability must be a number from 0 to 1, got {probability!r}"
            )
        ops = _operations(operations, "fail_randomly")
        _seed(seed, "fail_randomly")
        with self._lock:
            self._random.append(_RandomFailure(probability, ops, random.Random(seed)))

    def add_latency(
        self,
        seconds: float | tuple[float, float],
        *,
        operations: Iterable[str] | None = None,
        seed: int = 0,
    ) -> None:
        """Delay calls by a fixed time or by a uniform draw from ``(low, high)``, seeded.

        Seconds are finite, from 0 to a day: a latency is a delay, never a hang.
        """
        if isinstance(seconds, tuple) and len(seconds) == 2:
            low, high = (_latency(bound) for bound in seconds)
            if low > high:
                raise ValidationError.of("add_latency", f"need low <= high, got {seconds!r}")

            def draw(rng: random.Random) -> float:
                return rng.uniform(low, high)
        else:
            fixed = _latency(seconds)

            def draw(rng: random.Random) -> float:
                return fixed

        ops = _operations(operations, "add_latency")
        _seed(seed, "add_latency")
        with self._lock:
            self._latency.append(_Latency(draw, ops, random.Random(seed)))

    def crash_at(self, call_number: int | None) -> None:
        """Raise :class:`SimulatedCrash` at the ``call_number``-th backend call (1-based)."""
        if call_number is not None:
            _count(call_number, "crash_at call_number")
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
        _name(operation, "backend call")
        if target is not None:
            _name(target, f"{operation} target")
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
