"""A time zone's UTC offsets as numbers: learned once per stretch of time, then looked up.

Retention reads thousands of small point sets against the same zone. Asking ``zoneinfo`` for the
offset of every instant costs a datetime round trip each time; this table asks once per ~388-day
stretch (2**25 seconds), finds every change of offset in it to the second, and answers later
questions with a bisection. Offsets are integer microseconds.

Finding the changes probes the offset every two days and bisects where it differs, which relies
on no zone changing its offset twice within two days: the closest two transitions in the tz
database are four days apart.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from datetime import UTC, datetime, timedelta, tzinfo
from typing import ClassVar

__all__ = ["ZoneOffsets"]

_PERIOD = 1 << 25
"""Seconds in one stretch the table learns at a time (about 388 days)."""
_PROBE = 2 * 86_400
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOWEST = -(1 << 32)
_HIGHEST = 1 << 32
"""The span served (1833 to 2106, the retention engine's float range); beyond it, ask zoneinfo."""


class ZoneOffsets:
    """The offsets of one zone. :meth:`of` gives the table for a zone, shared process-wide."""

    _tables: ClassVar[dict[object, ZoneOffsets]] = {}
    _tables_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, zone: tzinfo) -> ZoneOffsets:
        table = cls._tables.get(zone)
        if table is None:
            with cls._tables_lock:
                table = cls._tables.setdefault(zone, ZoneOffsets(zone))
        return table

    def __init__(self, zone: tzinfo) -> None:
        self._zone = zone
        # period -> (instants in whole seconds where the offset changes, offset from each on),
        # the first entry being the period's start.
        self._periods: dict[int, tuple[list[int], list[int]]] = {}
        # The stretch of one offset last asked about: (first second, end second, offset).
        self._stretch: tuple[int, int, int] = (0, 0, 0)

    def _probe(self, second: int) -> int:
        moment = _EPOCH + timedelta(seconds=second)
        offset = moment.astimezone(self._zone).utcoffset()
        return 0 if offset is None else offset // _MICROSECOND

    def _period(self, index: int) -> tuple[list[int], list[int]]:
        found = self._periods.get(index)
        if found is not None:
            return found
        start = index * _PERIOD
        end = start + _PERIOD
        instants = [start]
        offsets = [self._probe(start)]
        before, current = start, offsets[0]
        probe = start
        while probe < end:
            probe = min(probe + _PROBE, end)
            offset = self._probe(probe)
            if offset != current:
                low, high = before, probe  # offset(low) == current, offset(high) == offset
                while high - low > 1:
                    middle = (low + high) // 2
                    if self._probe(middle) == current:
                        low = middle
                    else:
                        high = middle
                instants.append(high)
                offsets.append(offset)
                current = offset
            before = probe
        table = (instants, offsets)
        self._periods[index] = table
        return table

    def offset(self, seconds: float) -> int | None:
        """The offset (microseconds) at ``seconds`` since 1970 UTC; ``None`` outside the span."""
        if not _LOWEST <= seconds < _HIGHEST:
            return None
        instants, offsets = self._period(int(seconds // _PERIOD))
        return offsets[bisect_right(instants, seconds) - 1]

    def steady(self, low: int, high: int) -> int | None:
        """The offset in force from ``low`` through ``high`` (whole seconds since 1970), or
        ``None`` if it changes in ``(low, high]`` or the range leaves the span.

        Consecutive questions about one stretch of time, the everyday case, are answered from
        the stretch last found without a bisection.
        """
        first, end, offset = self._stretch
        if first <= low and high < end:
            return offset
        if not (low >= _LOWEST and high < _HIGHEST):
            return None
        index = low // _PERIOD
        instants, offsets = self._period(index)
        at = bisect_right(instants, low) - 1
        end = instants[at + 1] if at + 1 < len(instants) else (index + 1) * _PERIOD
        self._stretch = (instants[at], end, offsets[at])  # one tuple: safe across threads
        return offsets[at] if high < end else None

    def changes(self, low: float, high: float) -> list[tuple[int, int]] | None:
        """``(instant, offset from then on)`` for each change in ``(low, high]``, oldest first;
        ``None`` if the range leaves the span."""
        current = self.offset(low)
        if current is None or not high < _HIGHEST:
            return None
        found: list[tuple[int, int]] = []
        for index in range(int(low // _PERIOD), int(high // _PERIOD) + 1):
            instants, offsets = self._period(index)
            for instant, offset in zip(instants, offsets, strict=True):
                if instant <= low:
                    continue
                if instant > high:
                    break
                if offset != current:
                    found.append((instant, offset))
                    current = offset
        return found
