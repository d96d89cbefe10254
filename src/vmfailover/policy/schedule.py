"""When a replication job runs: every N minutes, at times of day, or on a cron line.

A schedule is a set of instants (its *slots*). A job is due when a slot has passed since it last
ran; it then runs once, however many slots it missed, so a scheduler that was down for a night
catches up with one run, not with forty. Pure: nothing here reads a clock; ``now`` and the last
run are arguments.

- ``Schedule(every="15m")``: slots at whole multiples of the interval since 1970-01-01 00:00 UTC,
  so a 15-minute job runs at :00, :15, :30 and :45 of every hour, wherever it was started.
- ``Schedule(daily=["02:00", "14:30"], tz="Europe/Berlin")``: wall-clock times in ``tz``. A time
  that does not exist that day (the clocks jump over it) runs as much later as they jumped; a time
  that occurs twice (the clocks go back) runs once, the first time.
- ``Schedule(cron="0 */4 * * 1-5", tz="Europe/Berlin")``: a cron line, evaluated by cronsim, which
  follows Debian's cron, daylight-saving quirks included. ``@hourly``, ``@daily``, ``@weekly``,
  ``@monthly`` and ``@yearly`` are accepted.

Intervals and RPO targets are elapsed time, written ``"90s"``, ``"15m"``, ``"1h30m"``, ``"1d"`` or
``"2w"``: here ``m`` is minutes (in retention windows, which are calendar spans, ``m`` is months).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from cronsim import CronSim, CronSimError

from vmfailover.errors import Finding, ValidationError
from vmfailover.model import aware_utc, is_finite_number

__all__ = ["Schedule", "parse_elapsed"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ELAPSED_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_ELAPSED_PART = re.compile(r"(\d+)\s*([a-zA-Z]*)\s*")
_ELAPSED_HINT = "write whole numbers with w, d, h, m (minutes) or s, e.g. '15m' or '1h30m'"
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_LONGEST = timedelta(days=366 * 100)


def parse_elapsed(value: object, item: str) -> timedelta:
    """A positive span of elapsed time: ``"15m"``, ``"1h30m"``, a timedelta, or seconds.

    Each unit may appear once, in any order. Zero, negative, NaN and infinite spans are refused
    with a :class:`ValidationError` naming ``item``.
    """
    if isinstance(value, timedelta):
        span = value
    elif isinstance(value, bool):
        raise ValidationError.of(item, f"expected a duration such as '15m', got {value!r}")
    elif isinstance(value, int | float):
        if not is_finite_number(value):
            raise ValidationError.of(item, f"{value!r} is not a duration", _ELAPSED_HINT)
        if value <= 0:
            raise ValidationError.of(item, f"{value!r} is not a positive duration", _ELAPSED_HINT)
        if value > _LONGEST.total_seconds():
            raise ValidationError.of(item, f"{value!r} is longer than a century", _ELAPSED_HINT)
        span = timedelta(seconds=value)
    elif isinstance(value, str):
        span = _parse_elapsed_text(value, item)
    else:
        raise ValidationError.of(
            item, f"expected a duration such as '15m', got {value!r}", _ELAPSED_HINT
        )
    if span <= timedelta(0):
        raise ValidationError.of(item, f"{value!r} is not a positive duration", _ELAPSED_HINT)
    if span > _LONGEST:
        raise ValidationError.of(item, f"{value!r} is longer than a century", _ELAPSED_HINT)
    return span


def _parse_elapsed_text(text: str, item: str) -> timedelta:
    source = text.strip()
    seconds = 0
    seen: set[str] = set()
    position = 0
    if not source:
        raise ValidationError.of(item, "is empty", _ELAPSED_HINT)
    while position < len(source):
        match = _ELAPSED_PART.match(source, position)
        if match is None:
            raise ValidationError.of(
                item, f"{text!r} is not a duration: expected a number at {source[position:]!r}"
            )
        number, unit = match.groups()
        if unit not in _ELAPSED_UNITS:
            what = f"unknown unit {unit!r}" if unit else "a number without a unit"
            raise ValidationError.of(
                item, f"{text!r} is not a duration: {what} after {number}", _ELAPSED_HINT
            )
        if unit in seen:
            raise ValidationError.of(
                item, f"{text!r} is not a duration: unit {unit!r} appears twice", _ELAPSED_HINT
            )
        seen.add(unit)
        if len(number.lstrip("0")) > 12:  # before int(): no century has 10**12 seconds
            raise ValidationError.of(item, f"{text!r} is longer than a century", _ELAPSED_HINT)
        seconds += int(number) * _ELAPSED_UNITS[unit]
        position = match.end()
    if seconds > _LONGEST.total_seconds():
        raise ValidationError.of(item, f"{text!r} is longer than a century", _ELAPSED_HINT)
    return timedelta(seconds=seconds)


def format_elapsed(span: timedelta) -> str:
    """``timedelta(minutes=90)`` -> ``"1h30m"``; the inverse of :func:`parse_elapsed`."""
    seconds = span.total_seconds()
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g}s"
    parts = []
    for unit, size in _ELAPSED_UNITS.items():
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _zone(value: object, item: str) -> tzinfo:
    hint = "use an IANA time zone name such as 'UTC' or 'Europe/Berlin'"
    if isinstance(value, ZoneInfo):
        value = value.key
    if not isinstance(value, str):
        raise ValidationError.of(item, f"expected a time zone name, got {value!r}", hint)
    if value in ("UTC", "Etc/UTC"):
        return UTC  # cronsim applies no daylight-saving handling to datetime.timezone.utc
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError.of(item, f"unknown time zone {value!r}", hint) from None


def _time_of_day(value: object, item: str) -> time:
    hint = "write a time of day as HH:MM or HH:MM:SS, from 00:00 to 23:59:59"
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValidationError.of(
                item, f"{value} carries a time zone", "give the zone once, as the schedule's tz"
            )
        return value
    if not isinstance(value, str):
        raise ValidationError.of(item, f"{value!r} is not a time of day", hint)
    match = _TIME_OF_DAY.fullmatch(value.strip())
    if match is None:
        raise ValidationError.of(item, f"{value!r} is not a time of day", hint)
    hour, minute, second = (int(part) if part else 0 for part in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise ValidationError.of(item, f"{value!r} is not a time of day", hint)
    return time(hour, minute, second)


def _cron_line(value: object, item: str, zone: tzinfo) -> str:
    hint = "five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * 1-5'"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of(item, f"{value!r} is not a cron line", hint)
    line = " ".join(value.split())
    line = _CRON_MACROS.get(line.lower(), line)
    reference = datetime(2000, 1, 1, tzinfo=zone)
    try:
        next(CronSim(line, reference))
    except CronSimError as error:
        raise ValidationError.of(item, f"{value!r} is not a cron line: {error}", hint) from None
    except StopIteration:
        raise ValidationError.of(item, f"{value!r} never fires", hint) from None
    return line


@attrs.frozen(init=False)
class Schedule:
    """When a job runs: exactly one of ``every``, ``daily`` or ``cron``, read in ``tz``.

    ``every`` is an interval (``"15m"``, a timedelta); ``daily`` one or more times of day
    (``"02:00"`` or a list); ``cron`` a cron line. See the module docstring for the rules.
    """

    every: timedelta | None
    daily: tuple[time, ...]
    cron: str | None
    tz: str
    _zone: tzinfo = attrs.field(repr=False, eq=False, hash=False)

    def __init__(
        self,
        *,
        every: str | timedelta | float | None = None,
        daily: str | time | Iterable[str | time] | None = None,
        cron: str | None = None,
        tz: str | ZoneInfo = "UTC",
    ) -> None:
        options = (("every", every), ("daily", daily), ("cron", cron))
        given = [name for name, value in options if value is not None]
        if len(given) != 1:
            raise ValidationError.of(
                "schedule",
                "give exactly one of every, daily or cron"
                + (f" (got {', '.join(given)})" if given else ""),
                "for example Schedule(every='15m') or Schedule(daily='02:00')",
            )
        zone = _zone(tz, "schedule.tz")
        interval = None if every is None else parse_elapsed(every, "schedule.every")
        times: tuple[time, ...] = ()
        if daily is not None:
            entries = [daily] if isinstance(daily, str | time) else daily
            if not isinstance(entries, Iterable):
                raise ValidationError.of("schedule.daily", f"{daily!r} is not a list of times")
            parsed = {_time_of_day(entry, "schedule.daily") for entry in entries}
            if not parsed:
                raise ValidationError.of("schedule.daily", "is empty", "give at least one time")
            times = tuple(sorted(parsed))
        line = None if cron is None else _cron_line(cron, "schedule.cron", zone)
        key = tz.key if isinstance(tz, ZoneInfo) else str(tz)
        self.__attrs_init__(interval, times, line, key, zone)

    @classmethod
    def of(cls, value: Schedule | Mapping[str, Any], owner: str) -> Schedule:
        """``value`` as a schedule; a mapping holds the keywords (as in a plan file).

        Errors name ``owner`` (``"job 'tier1'"``) before the field.
        """
        if isinstance(value, Schedule):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError.of(
                f"{owner}: schedule",
                f"expected a Schedule or a mapping such as {{'every': '15m'}}, got {value!r}",
            )
        unknown = sorted(set(value) - {"every", "daily", "cron", "tz"}, key=repr)
        if unknown:
            raise ValidationError.of(
                f"{owner}: schedule",
                f"unknown key(s) {', '.join(map(repr, unknown))}",
                "use every, daily or cron, and optionally tz",
            )
        try:
            return cls(**value)
        except ValidationError as error:
            raise ValidationError(
                Finding(f"{owner}: {finding.item}", finding.message, finding.severity, finding.hint)
                for finding in error.findings
            ) from None

    def __str__(self) -> str:
        zone = "" if self.tz == "UTC" else f" ({self.tz})"
        if self.every is not None:
            return f"every {format_elapsed(self.every)}"
        if self.cron is not None:
            return f"cron '{self.cron}'{zone}"
        shown = ", ".join(
            moment.isoformat("minutes" if not moment.second else "seconds") for moment in self.daily
        )
        return f"daily at {shown}{zone}"

    # --- slots ----------------------------------------------------------------------------------

    def next_after(self, instant: datetime) -> datetime | None:
        """The first slot strictly after ``instant`` (UTC), or ``None`` if there is none."""
        instant = aware_utc(instant, "instant")
        if self.every is not None:
            step = self.every // _MICROSECOND
            elapsed = (instant - _EPOCH) // _MICROSECOND
            return _EPOCH + (elapsed // step + 1) * step * _MICROSECOND
        if self.cron is not None:
            try:
                found = next(CronSim(self.cron, instant.astimezone(self._zone)))
            except StopIteration:
                return None
            return found.astimezone(UTC)
        return self._next_daily(instant)

    def _next_daily(self, instant: datetime) -> datetime:
        local_day = instant.astimezone(self._zone).date()
        for offset in range(-1, 3):
            day = local_day + timedelta(days=offset)
            for moment in self.daily:
                slot = _wall_instant(day, moment, self._zone)
                if slot > instant:
                    return slot
        raise AssertionError("a daily schedule has a slot within two days")  # pragma: no cover

    def slots(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every slot in ``(start, end]``, in order."""
        end = aware_utc(end, "end")
        current: datetime | None = aware_utc(start, "start")
        while current is not None:
            current = self.next_after(current)
            if current is None or current > end:
                return
            yield current

    def due(self, last_run: datetime | None, now: datetime) -> bool:
        """Whether a slot has passed since ``last_run`` (a job that never ran is due at once)."""
        if last_run is None:
            return True
        following = self.next_after(last_run)
        return following is not None and following <= aware_utc(now, "now")


def _wall_instant(day: date, moment: time, zone: tzinfo) -> datetime:
    """The instant of a wall-clock time: the first of two in a fold, shifted past a gap.

    ``fold=0`` (the default) reads a time in a fold as its first occurrence, and a time in a gap
    with the offset in force before the gap: as much later as the clocks jumped.
    """
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)
