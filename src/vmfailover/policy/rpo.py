"""The recovery point objective as a measured state: how old the newest point is, against a target.

Pure arithmetic: the engine measures (which points exist, when they were made) and this module
classifies. A VM is

``compliant``   while its newest usable point is younger than the target (age < 1x),
``exceeded``    up to twice the target (1x <= age <= 2x),
``severe``      up to four times (2x < age <= 4x),
``critical``    beyond that (age > 4x),
``unprotected`` when it has no usable point at all.

:func:`rpo_compliance` gives the fraction of a window during which the RPO was met, from the
instants at which points were made: each point covers the time from its creation until it is
``target`` old.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from vmfailover.errors import ValidationError
from vmfailover.model import aware_utc

__all__ = ["RPOState", "classify_rpo", "rpo_compliance"]

_UTC = UTC


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is _UTC else aware_utc(moment, "point time")


class RPOState(enum.StrEnum):
    """How a VM stands against its RPO, best first."""

    COMPLIANT = "compliant"
    EXCEEDED = "exceeded"
    SEVERE = "severe"
    CRITICAL = "critical"
    UNPROTECTED = "unprotected"

    @property
    def breached(self) -> bool:
        """Anything but compliant: the newest point is too old, or there is none."""
        return self is not RPOState.COMPLIANT


def classify_rpo(age: timedelta | None, target: timedelta) -> RPOState:
    """The state of a VM whose newest usable point is ``age`` old (``None``: no point)."""
    if not isinstance(target, timedelta) or (age is not None and not isinstance(age, timedelta)):
        raise ValidationError.of("classify_rpo", "age and target are timedeltas (age may be None)")
    if target <= timedelta(0):
        raise ValidationError.of("rpo", f"the target must be positive, got {target}")
    if age is None:
        return RPOState.UNPROTECTED
    # Whole microseconds, exact and unbounded: 2x or 4x the longest timedelta overflows it.
    elapsed, allowed = age // _MICROSECOND, target // _MICROSECOND
    if elapsed < allowed:
        return RPOState.COMPLIANT
    if elapsed <= 2 * allowed:
        return RPOState.EXCEEDED
    if elapsed <= 4 * allowed:
        return RPOState.SEVERE
    return RPOState.CRITICAL


_MICROSECOND = timedelta(microseconds=1)


def rpo_compliance(
    point_times: Iterable[datetime], target: timedelta, start: datetime, end: datetime
) -> float:
    """The fraction of ``[start, end]`` during which the newest point was younger than ``target``.

    At an instant ``t`` the RPO is met when some point was made in ``(t - target, t]``: the union
    of ``[p, p + target)`` over the points ``p``, measured inside the window. Points made after
    ``end`` do not count; before the first point the RPO is not met.
    """
    start = aware_utc(start, "start")
    end = aware_utc(end, "end")
    if end <= start:
        raise ValidationError.of("window", f"ends ({end}) at or before it starts ({start})")
    if not isinstance(target, timedelta) or target <= timedelta(0):
        raise ValidationError.of("rpo", f"the target must be a positive timedelta, got {target!r}")
    met = timedelta(0)
    covered_until = start
    # A point made at or before ``earliest`` is too old to cover any of the window (a target
    # longer than the calendar reaches back covers from any point).
    oldest = datetime.min.replace(tzinfo=UTC)
    earliest = oldest if target >= start - oldest else start - target
    inside = [_utc(moment) for moment in point_times]
    for point in sorted(moment for moment in inside if earliest < moment <= end):
        begin = max(point, covered_until)
        finish = end if target >= end - point else point + target
        if finish > begin:
            met += finish - begin
            covered_until = finish
    return met / (end - start)
