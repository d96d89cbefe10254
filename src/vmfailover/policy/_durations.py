"""Calendar durations such as ``"1y2m3d4h"`` and the date arithmetic retention windows use.

Retention windows are written the way restic writes them: a number of years, months, days and
hours. Going back by such a duration is calendar arithmetic on the wall clock of a time zone, with
Go's ``time.AddDate`` normalisation (March 31 minus one month is "February 31", which rolls over
into March), so that a policy copied from restic keeps exactly what restic keeps. Hours are then
subtracted as absolute time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import aware_utc

__all__ = ["CalendarDuration"]

_UNITS = {"y": "years", "m": "months", "d": "days", "h": "hours"}
_PART = re.compile(r"(\d+)([a-zA-Z]?)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Each part at most ten thousand years' worth: beyond any calendar (years 1 to 9999), and small
# enough that no arithmetic on it overflows.
_LIMITS = {"years": 10_000, "months": 120_000, "days": 3_660_000, "hours": 87_840_000}


def _part(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    limit = _LIMITS[attribute.name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValidationError.of(
            f"CalendarDuration {attribute.name}",
            f"must be a whole number from 0 to {limit:,}, got {value!r}",
        )


@attrs.frozen
class CalendarDuration:
    """A span of years, months, days and hours, parsed from strings like ``"1y2m3d4h"``.

    Units may come in any order and each at most once; ``w`` (weeks) is not a unit, as in restic:
    write ``7d``. A duration of zero is refused, because a retention window of zero is a rule that
    is off, which is written ``None``.
    """

    years: int = attrs.field(default=0, validator=_part)
    months: int = attrs.field(default=0, validator=_part)
    days: int = attrs.field(default=0, validator=_part)
    hours: int = attrs.field(default=0, validator=_part)

    @classmethod
    def parse(cls, text: str | CalendarDuration, item: str = "duration") -> CalendarDuration:
        """Parse ``text``; a malformed duration raises :class:`ValidationError` naming ``item``."""
        if isinstance(text, CalendarDuration):
            return cls._checked(text.years, text.months, text.days, text.hours, item, str(text))
        if not isinstance(text, str):
            raise ValidationError.of(
                item,
                f"expected a duration such as '7d' or '1y6m', got {text!r}",
                "write years, months, days and hours as 'y', 'm', 'd' and 'h'",
            )
        source = text.strip()
        values: dict[str, int] = {}
        position = 0
        hint = (
            "write a number followed by y (years), m (months), d (days) or h (hours), e.g. '1y2m'"
        )
        while position < len(source):
            match = _PART.match(source, position)
            if match is None:
                raise ValidationError.of(
                    item,
                    f"{text!r} is not a duration: expected a number at {source[position:]!r}",
                    hint,
                )
            number, unit = match.groups()
            if unit not in _UNITS:
                what = f"unknown unit {unit!r}" if unit else "a number without a unit"
                extra = " (there is no week unit: write 7d)" if unit in ("w", "W") else ""
                raise ValidationError.of(
                    item, f"{text!r} is not a duration: {what} after {number}{extra}", hint
                )
            if _UNITS[unit] in values:
                raise ValidationError.of(
                    item, f"{text!r} is not a duration: unit {unit!r} appears twice", hint
                )
            if len(number.lstrip("0")) > len(str(max(_LIMITS.values()))):
                # Before int(): Python refuses to convert more than 4300 digits.
                raise ValidationError.of(item, f"{text!r} is longer than any calendar")
            values[_UNITS[unit]] = int(number.lstrip("0") or "0")
            position = match.end()
        if not values:
            raise ValidationError.of(item, f"{text!r} is not a duration: it is empty", hint)
        return cls._checked(
            values.get("years", 0),
            values.get("months", 0),
            values.get("days", 0),
            values.get("hours", 0),
            item,
            text,
        )

    @classmethod
    def _checked(
        cls, years: int, months: int, days: int, hours: int, item: str, text: str
    ) -> CalendarDuration:
        for value in (years, months, days, hours):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError.of(item, f"{text!r}: every part must be a whole number >= 0")
        parts = {"years": years, "months": months, "days": days, "hours": hours}
        for unit, value in parts.items():
            if value > _LIMITS[unit]:
                raise ValidationError.of(
                    item,
                    f"{text!r} is longer than any calendar",
                    f"at most {_LIMITS[unit]:,} {unit}",
                )
        if years == months == days == hours == 0:
            raise ValidationError.of(
                item, f"{text!r} is a window of zero", "to turn the rule off, pass None"
            )
        duration = cls(years, months, days, hours)
        try:
            duration.longest()
        except OverflowError:
            raise ValidationError.of(item, f"{text!r} is longer than any calendar") from None
        return duration

    def __str__(self) -> str:
        parts = [
            f"{value}{unit}"
            for value, unit in (
                (self.years, "y"),
                (self.months, "m"),
                (self.days, "d"),
                (self.hours, "h"),
            )
            if value
        ]
        return "".join(parts)

    def longest(self) -> timedelta:
        """A bound on the wall-clock span of a window of this duration, in any time zone.

        Leap years and 31-day months, plus four hours: up to two for the DST changes between the
        window's ends in absolute time, and two more reading that span back on a wall clock.
        """
        days = 366 * self.years + 31 * self.months + self.days
        return timedelta(days=days, hours=self.hours + 4)

    def before(self, instant: datetime, tz: tzinfo) -> datetime | None:
        """``instant`` minus this duration, on the wall clock of ``tz``; ``None`` if before year 1.

        Years, months and days go back on the wall clock with Go's ``AddDate`` normalisation (day
        overflow rolls into the next month), the wall-clock time is mapped back to an instant as
        Go's ``time.Date`` does, and the hours are then subtracted as absolute time.
        """
        if not isinstance(tz, tzinfo):
            raise ValidationError.of("before", f"needs a time zone (a tzinfo), got {tz!r}")
        wall = aware_utc(instant, "before instant").astimezone(tz)
        try:
            day = go_add_date(
                wall.year, wall.month, wall.day, -self.years, -self.months, -self.days
            )
            naive = datetime.combine(day, wall.time().replace(tzinfo=None, fold=0))
            return wall_to_instant(naive, tz) - timedelta(hours=self.hours)
        except (OverflowError, ValueError):
            return None


def go_add_date(year: int, month: int, day: int, years: int, months: int, days: int) -> datetime:
    """The date Go's ``AddDate(years, months, days)`` lands on, as a naive midnight datetime.

    Go adds the parts to year, month and day independently, then normalises: months outside
    1..12 carry into the year, and a day outside the month counts on from the month's first day
    (so 2023-03-31 minus one month is "2023-02-31", which is 2023-03-03). Raises ``ValueError`` or
    ``OverflowError`` outside years 1..9999.
    """
    month_index = (month - 1) + months
    new_year = year + years + month_index // 12
    new_month = month_index % 12 + 1
    first = datetime(new_year, new_month, 1)
    return first + timedelta(days=day - 1 + days)


def offset_at(instant: datetime, tz: tzinfo) -> timedelta:
    """The UTC offset ``tz`` has at ``instant``."""
    offset = instant.astimezone(tz).utcoffset()
    return offset if offset is not None else timedelta(0)


def wall_to_instant(wall: datetime, tz: tzinfo) -> datetime:
    """The instant Go's ``time.Date`` gives for the naive wall-clock time ``wall`` in ``tz``.

    An existing, unambiguous wall-clock time has one instant. For a time that occurs twice (DST
    ends) or never (DST starts), Go reads the wall-clock time as if it were UTC, takes the zone's
    offset at that instant, and keeps it if the result is still in the same zone period;
    otherwise it uses the offset in force at the result. We do the same, so windows agree with
    restic even on those nights.
    """
    as_utc = wall.replace(tzinfo=UTC)
    guess = offset_at(as_utc, tz)
    candidate = as_utc - guess
    if offset_at(candidate, tz) == guess:
        return candidate
    return as_utc - offset_at(candidate, tz)
