"""Which recovery points survive: grandfather-father-son retention with restic's semantics.

A replica keeps many recovery points and must drop most of them. Users arrive from restic, borg,
Veeam or NAKIVO and need to predict exactly what is kept, so :class:`RetentionPolicy` follows
restic's ``forget`` rules to the letter (count rules per calendar unit that overlap, the oldest
rule, ``within`` windows with Go's calendar arithmetic) and adds what a hypervisor needs: pinned
points, and a check against the snapshot limit of the backend (:meth:`RetentionPolicy.check`).

The module is pure: :meth:`RetentionPolicy.apply` reads no clock and does no I/O, so the same
points and the same ``now`` always give the same :class:`RetentionDecision`. docs/retention.md
states the rules with worked examples.

Reasons a point is kept (``decision.reasons[point]``), in this order:

``pinned``
    its ``pinned_until`` is after ``now``.
``tag:a,b``
    it carries every tag of the tag list ``["a", "b"]``.
``within``
    it is newer than the ``within`` window's start.
``last``, ``hourly``, ``daily``, ``weekly``, ``monthly``, ``yearly``
    it is the newest point of one of the rule's N newest buckets.
``oldest-hourly`` (and so on for every count rule)
    it is the oldest point of the set, kept because the rule still had count left although the
    point shares its bucket with the last point the rule kept.
``within-hourly``, ``within-daily``, ``within-weekly``, ``within-monthly``, ``within-yearly``
    it is the newest point of its bucket inside that rule's window.
``oldest-within-daily`` (and so on)
    it is the oldest point of the set, inside the window, sharing its bucket with a newer point.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from itertools import compress, islice, pairwise, repeat
from operator import add, attrgetter, floordiv, mul, ne, neg, not_, sub
from types import MemberDescriptorType
from typing import Any, Generic, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from vmfailover._render import html_table, text_table
from vmfailover.errors import Finding, ValidationError
from vmfailover.model import RecoveryPoint, aware_utc
from vmfailover.policy._durations import CalendarDuration, offset_at
from vmfailover.policy._zoneoffsets import ZoneOffsets

__all__ = [
    "CalendarDuration",
    "KeepReasons",
    "RetentionDecision",
    "RetentionEntry",
    "RetentionPolicy",
]

P = TypeVar("P", bound=RecoveryPoint | datetime)

COUNT_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
"""The count rules, finest first; each is also the reason it gives."""
WITHIN_RULES = (
    "within_hourly",
    "within_daily",
    "within_weekly",
    "within_monthly",
    "within_yearly",
)
"""The windowed bucket rules; the reason is the name with ``-`` for ``_``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TZINFO = attrgetter("tzinfo")
_PIN_AND_TAGS = attrgetter("pinned_until", "tags")
_TIMESTAMP = datetime.timestamp
_MICROSECOND = timedelta(microseconds=1)


# --- validation and conversion of the policy's fields -------------------------------------------


def _count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ValidationError.of(
            attribute.name,
            f"must be a count: -1 (unlimited), 0 (off) or a positive number, got {value!r}",
            f"for example {attribute.name}=7",
        )


def _duration(value: str | CalendarDuration | None, item: str) -> CalendarDuration | None:
    if value is None:
        return None
    return CalendarDuration.parse(value, item)


def _within(value: str | CalendarDuration | None) -> CalendarDuration | None:
    return _duration(value, "within")


def _within_hourly(value: str | CalendarDuration | None) -> CalendarDuration | None:
    return _duration(value, "within_hourly")


def _within_daily(value: str | CalendarDuration | None) -> CalendarDuration | None:
    return _duration(value, "within_daily")


def _within_weekly(value: str | CalendarDuration | None) -> CalendarDuration | None:
    return _duration(value, "within_weekly")


def _within_monthly(value: str | CalendarDuration | None) -> CalendarDuration | None:
    return _duration(value, "within_monthly")


def _within_yearly(value: str | CalendarDuration | None) -> CalendarDuration | None:
    return _duration(value, "within_yearly")


def _tag_lists(value: Iterable[Iterable[str] | str] | str | None) -> tuple[tuple[str, ...], ...]:
    """``[["a", "b"], ["c"]]``: points with both a and b, or with c. A bare string is a list."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    hint = "give a list of tag lists, e.g. tags=[['tested'], ['app-consistent', 'weekly']]"
    lists: list[tuple[str, ...]] = []
    try:
        for index, entry in enumerate(value):
            tags = (entry,) if isinstance(entry, str) else tuple(entry)
            if not tags:
                raise ValidationError.of(
                    f"tags[{index}]", "is empty, so it would keep every point", hint
                )
            for tag in tags:
                if not isinstance(tag, str) or not tag.strip():
                    raise ValidationError.of(
                        f"tags[{index}]", f"{tag!r} is not a tag (a non-empty string)", hint
                    )
            lists.append(tuple(dict.fromkeys(tags)))
    except TypeError:
        raise ValidationError.of("tags", f"{value!r} is not a list of tag lists", hint) from None
    return tuple(lists)


def _tz_key(value: str | ZoneInfo) -> str:
    if isinstance(value, ZoneInfo):
        value = value.key
    hint = "use an IANA time zone name such as 'UTC' or 'Europe/Berlin'"
    if not isinstance(value, str):
        raise ValidationError.of("tz", f"expected a time zone name, got {value!r}", hint)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError.of("tz", f"unknown time zone {value!r}", hint) from None
    return value


# --- the policy ---------------------------------------------------------------------------------


@attrs.frozen
class RetentionPolicy:
    """Which recovery points a replica keeps: restic's ``forget`` rules, plus pins and limits.

    Counts are ``-1`` (unlimited), ``0`` (off) or a positive number. Windows are calendar
    durations such as ``"2d"`` or ``"1y6m"`` (or ``None``, off). ``tags`` is a list of tag lists;
    a point is kept if it carries every tag of one list. ``tz`` is the calendar the buckets and
    windows use. A policy that keeps nothing is refused.
    """

    last: int = attrs.field(default=0, validator=_count, kw_only=True)
    hourly: int = attrs.field(default=0, validator=_count, kw_only=True)
    daily: int = attrs.field(default=0, validator=_count, kw_only=True)
    weekly: int = attrs.field(default=0, validator=_count, kw_only=True)
    monthly: int = attrs.field(default=0, validator=_count, kw_only=True)
    yearly: int = attrs.field(default=0, validator=_count, kw_only=True)
    within: CalendarDuration | None = attrs.field(default=None, converter=_within, kw_only=True)
    within_hourly: CalendarDuration | None = attrs.field(
        default=None, converter=_within_hourly, kw_only=True
    )
    within_daily: CalendarDuration | None = attrs.field(
        default=None, converter=_within_daily, kw_only=True
    )
    within_weekly: CalendarDuration | None = attrs.field(
        default=None, converter=_within_weekly, kw_only=True
    )
    within_monthly: CalendarDuration | None = attrs.field(
        default=None, converter=_within_monthly, kw_only=True
    )
    within_yearly: CalendarDuration | None = attrs.field(
        default=None, converter=_within_yearly, kw_only=True
    )
    tags: tuple[tuple[str, ...], ...] = attrs.field(default=(), converter=_tag_lists, kw_only=True)
    tz: str = attrs.field(default="UTC", converter=_tz_key, kw_only=True)
    _zone: ZoneInfo = attrs.field(init=False, repr=False, eq=False, hash=False)
    _plan: _Plan = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.tz))
        object.__setattr__(self, "_plan", _Plan(self))
        if self.empty:
            raise ValidationError.of(
                "RetentionPolicy",
                "keeps nothing: every count is 0, no window and no tag list is set",
                "set at least one rule, e.g. RetentionPolicy(last=1); "
                "to delete every point, do so explicitly",
            )

    @property
    def empty(self) -> bool:
        return (
            all(getattr(self, name) == 0 for name in COUNT_RULES)
            and self.within is None
            and all(getattr(self, name) is None for name in WITHIN_RULES)
            and not self.tags
        )

    def __str__(self) -> str:
        parts = []
        for name in COUNT_RULES:
            count = getattr(self, name)
            if count:
                parts.append(f"all {name}" if count == -1 else f"{count} {name}")
        for name in WITHIN_RULES:
            window = getattr(self, name)
            if window is not None:
                parts.append(f"{name.removeprefix('within_')} within {window}")
        if self.within is not None:
            parts.append(f"all within {self.within} of the newest")
        parts.extend(f"all tagged {','.join(tags)}" for tags in self.tags)
        return f"keep {', '.join(parts)} (calendar {self.tz})"

    # --- applying -------------------------------------------------------------------------------

    def apply(self, points: Iterable[P], now: datetime) -> RetentionDecision[P]:
        """Decide which of ``points`` to keep at ``now``; see the module docstring for reasons.

        ``points`` are :class:`~vmfailover.model.RecoveryPoint` objects or aware datetimes (a
        datetime has no tags and no pin). They are ordered newest first by instant; points with
        the same instant keep their input order. ``now`` only decides pins and which point is
        the newest for the windows (points after ``now`` are never that point, but are always
        inside every window, as in restic).
        """
        now_utc = now if type(now) is datetime and now.tzinfo is UTC else aware_utc(now, "now")
        items = points if type(points) is list else _as_list(points)
        if 0 < len(items) <= _SMALL:
            decision = _apply_small(self, self._plan, items, now_utc)
            if decision is not None:
                return decision
        return self._apply_general(items, now_utc)

    def _apply_general(self, items: list[P], now_utc: datetime) -> RetentionDecision[P]:
        """Any number of points, any datetimes: the reference the small-set path must match."""
        timeline = _Timeline(items, now_utc, want_tags=bool(self.tags))
        verdicts = _Verdicts(timeline.n)
        if timeline.n:
            verdicts.give(timeline.positions(timeline.pinned), "pinned")
            for tags in self.tags:
                wanted = frozenset(tags)
                matching = [index for index, carried in timeline.tags if wanted <= carried]
                verdicts.give(timeline.positions(matching), f"tag:{','.join(tags)}")
            windows = _Windows(timeline, now_utc, self._zone)
            if self.within is not None:
                verdicts.give(range(windows.size(self.within)), "within")
            starts = _BucketStarts(timeline.n, lambda: _local_hours(timeline, self._zone))
            for name in COUNT_RULES:
                count: int = getattr(self, name)
                if count:
                    verdicts.give_bucket_starts(starts.of(name), count, name)
            for name in WITHIN_RULES:
                window: CalendarDuration | None = getattr(self, name)
                if window is not None:
                    runs = starts.of(name.removeprefix("within_"))
                    inside = windows.size(window)
                    verdicts.give_window_starts(runs, inside, name.replace("_", "-"))
        return RetentionDecision(
            policy=self,
            now=now_utc,
            ordered=list(map(items.__getitem__, timeline.order)),
            kept=verdicts.kept(),
            reasons=verdicts.reasons(),
        )

    # --- snapshot limits ------------------------------------------------------------------------

    def rule_bounds(self) -> dict[str, int | None]:
        """For each rule that is on, the most points it can keep (``None``: no bound).

        Points created at or after ``now`` and pinned points are not counted: windows always keep
        the former and pins the latter, whatever the policy says.
        """
        bounds: dict[str, int | None] = {}
        for name in COUNT_RULES:
            count = getattr(self, name)
            if count:
                bounds[name] = None if count < 0 else count
        if self.within is not None:
            bounds["within"] = None
        for name in WITHIN_RULES:
            window: CalendarDuration | None = getattr(self, name)
            if window is not None:
                unit = _UNIT_LENGTH[name.removeprefix("within_")]
                # Buckets the window can touch, plus the oldest point sharing its bucket.
                bounds[name] = window.longest() // unit + 3
        for tags in self.tags:
            bounds[f"tags {list(tags)}"] = None
        return bounds

    def max_kept(self) -> int | None:
        """The most points this policy can keep, or ``None`` when it has no bound.

        An upper bound that holds for every set of points: the sum of what each rule can keep,
        less the newest point, which every count rule keeps. Pinned points and points created
        at or after ``now`` come on top (see :meth:`rule_bounds`).
        """
        bounds = self.rule_bounds()
        if any(bound is None for bound in bounds.values()):
            return None
        total = sum(bound for bound in bounds.values() if bound is not None)
        count_rules = sum(1 for name in COUNT_RULES if name in bounds)
        return total - max(count_rules - 1, 0)

    def check(self, limit: int) -> None:
        """Refuse a policy that can keep more than ``limit`` points (a backend's snapshot cap).

        vSphere allows 32 snapshots per chain and Hyper-V 24 recovery points; a policy that can
        exceed the cap fails at the worst moment, so replication jobs call this when configured.
        The :class:`ValidationError` names every rule to lower.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError.of("limit", f"must be a whole number >= 1, got {limit!r}")
        bounds = self.rule_bounds()
        unbounded = [name for name, bound in bounds.items() if bound is None]
        if unbounded:
            raise ValidationError(
                Finding(
                    name,
                    f"keeps any number of points, so the policy can exceed the limit of {limit}",
                    hint=_UNBOUNDED_HINTS.get(name.split(" ")[0], "give it a count"),
                )
                for name in unbounded
            )
        most = self.max_kept()
        assert most is not None
        if most <= limit:
            return
        raise ValidationError(
            Finding(
                name,
                f"keeps up to {bound} points; the policy can keep up to {most}, "
                f"over the limit of {limit}",
                hint=f"lower the rules by {most - limit} points in total",
            )
            for name, bound in sorted(bounds.items(), key=lambda item: -(item[1] or 0))
        )


_UNIT_LENGTH = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=28),
    "yearly": timedelta(days=365),
}
_UNBOUNDED_HINTS = {
    "within": "a window keeps every point inside it; use within_hourly or within_daily instead",
    "tags": "tag rules keep every tagged point; pin the few points that must stay instead",
}


# --- the decision -------------------------------------------------------------------------------


@attrs.frozen
class RetentionEntry(Generic[P]):
    """One point of a decision: the point, whether it is kept, and why."""

    point: P
    kept: bool
    reasons: tuple[str, ...]


class KeepReasons(Mapping[P, tuple[str, ...]]):
    """The reasons each kept point is kept, keyed by the points themselves, newest first.

    Lookups go by identity first, so two equal points passed in (the same datetime twice) are
    two keys: each answers for itself. A value that is equal to a kept point but is not one of
    the objects passed in answers for the newest kept point equal to it. Removed points are not
    keys (``KeyError``).
    """

    __slots__ = ("_by_id", "_by_value", "_kept", "_reasons", "_removed", "_removed_ids")

    def __init__(
        self, kept: tuple[P, ...], reasons: tuple[tuple[str, ...], ...], removed: tuple[P, ...]
    ) -> None:
        parts = (kept, reasons, removed)
        if not all(isinstance(part, tuple) for part in parts) or len(kept) != len(reasons):
            raise ValidationError.of(
                "KeepReasons",
                "needs tuples of the kept points, their reasons and the removed points",
                "RetentionPolicy.apply() makes these; read decision.reasons",
            )
        self._kept = kept
        self._reasons = reasons
        self._removed = removed
        self._by_id: dict[int, int] | None = None
        self._by_value: dict[object, int] | None = None
        self._removed_ids: frozenset[int] | None = None

    def __getitem__(self, point: P) -> tuple[str, ...]:
        if self._by_id is None:
            self._by_id = {}
            for position, kept in enumerate(self._kept):
                self._by_id.setdefault(id(kept), position)
        index = self._by_id.get(id(point))
        if index is not None and self._kept[index] is point:
            return self._reasons[index]
        if self._by_value is None:
            self._by_value = {}
            for position, kept in enumerate(self._kept):
                self._by_value.setdefault(kept, position)
        try:
            index = self._by_value.get(point)
        except TypeError:
            index = None
        if index is None:
            raise KeyError(point)
        if self._removed_ids is None:
            self._removed_ids = frozenset(map(id, self._removed))
        if id(point) in self._removed_ids:
            raise KeyError(point)
        return self._reasons[index]

    def __iter__(self) -> Iterator[P]:
        return iter(self._kept)

    def __len__(self) -> int:
        return len(self._kept)

    def __repr__(self) -> str:
        return f"KeepReasons({len(self)} kept)"


@attrs.frozen(init=False)
class RetentionDecision(Generic[P]):
    """What :meth:`RetentionPolicy.apply` decided: ``keep`` and ``remove``, newest first.

    Both hold the very objects passed in. ``reasons[point]`` says why a kept point is kept;
    ``entries`` lists every point with its verdict in order, which ``str()`` and
    ``_repr_html_`` render as a table.
    """

    policy: RetentionPolicy
    now: datetime
    keep: tuple[P, ...]
    remove: tuple[P, ...]
    reasons: KeepReasons[P] = attrs.field(eq=False)
    _ordered: Sequence[P] = attrs.field(repr=False, eq=False)
    _kept: Sequence[int] = attrs.field(repr=False, eq=False)

    def __init__(
        self,
        *,
        policy: RetentionPolicy,
        now: datetime,
        ordered: Sequence[P],
        kept: Sequence[int],
        reasons: tuple[tuple[str, ...], ...],
    ) -> None:
        """Only :meth:`RetentionPolicy.apply` makes decisions.

        ``ordered`` holds the points newest first; ``kept`` flags each of those positions (any
        true value keeps it); ``reasons`` has one entry per kept position, in order.
        """
        if not isinstance(policy, RetentionPolicy):
            raise ValidationError.of(
                "RetentionDecision", "is made by RetentionPolicy.apply(), not by hand"
            )
        try:
            keep = tuple(compress(ordered, kept))
            remove = tuple(compress(ordered, map(not_, kept)))
        except TypeError:
            raise ValidationError.of(
                "RetentionDecision", "is made by RetentionPolicy.apply(), not by hand"
            ) from None
        self.__attrs_init__(
            policy, now, keep, remove, KeepReasons(keep, reasons, remove), ordered, kept
        )

    @property
    def entries(self) -> tuple[RetentionEntry[P], ...]:
        """Every point, newest first, with whether it is kept and why."""
        reasons = iter(self.reasons._reasons)
        return tuple(
            RetentionEntry(point, bool(flag), next(reasons) if flag else ())
            for point, flag in zip(self._ordered, self._kept, strict=True)
        )

    def _rows(self) -> list[tuple[str, str, str, str]]:
        zone = ZoneInfo(self.policy.tz)
        rows = []
        for entry in self.entries:
            point = entry.point
            instant = point.created_at if isinstance(point, RecoveryPoint) else point
            label = point.id if isinstance(point, RecoveryPoint) else instant.isoformat()
            wall = instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
            action = "keep" if entry.kept else "remove"
            rows.append((label, wall, action, ", ".join(entry.reasons)))
        return rows

    def _title(self) -> str:
        return (
            f"retention at {self.now.isoformat()}: keep {len(self.keep)}, "
            f"remove {len(self.remove)} ({self.policy})"
        )

    _HEADERS = ("point", "time", "action", "reasons")

    def __str__(self) -> str:
        return text_table(self._HEADERS, self._rows(), title=self._title())

    def _repr_html_(self) -> str:
        return html_table(self._HEADERS, self._rows(), title=self._title())


# --- the engine's parts -------------------------------------------------------------------------


def _as_list(points: Iterable[P]) -> list[P]:
    if isinstance(points, (str, bytes, datetime, RecoveryPoint)):
        raise ValidationError.of(
            "points", f"expected a collection of points, got {points!r}", "pass a list"
        )
    try:
        return list(points)
    except TypeError:
        raise ValidationError.of(
            "points", f"expected a collection of points, got {points!r}", "pass a list"
        ) from None


class _Timeline:
    """The points sorted newest first, as descending sort keys.

    Keys are float seconds since 1970 when every point lies between 1833 and 2106: there a
    double resolves a microsecond exactly and in order, and Python sorts floats fast. Outside
    that range keys are integer microseconds. ``order[position]`` is the input index of the
    point at that position; the sort is stable, so equal instants keep their input order.
    """

    _FLOAT_RANGE = float(2**32)

    def __init__(self, items: Sequence[object], now: datetime, *, want_tags: bool) -> None:
        n = len(items)
        self.n = n
        self.pinned: list[int] = []
        self.tags: list[tuple[int, frozenset[str]]] = []
        stamps = self._read_fast(items, now, want_tags=want_tags)
        if stamps is None:
            instants = self._read_one_by_one(items, now, want_tags=want_tags)
            self.instant_of: Callable[[int], datetime] = instants.__getitem__
            stamps = list(map(_TIMESTAMP, instants))
        self.floats = not stamps or (
            min(stamps) > -self._FLOAT_RANGE and max(stamps) < self._FLOAT_RANGE
        )
        self.scale = 1 if self.floats else 1_000_000
        keys: list[float] | list[int] = stamps
        if not self.floats:
            keys = [(self.instant_of(index) - _EPOCH) // _MICROSECOND for index in range(n)]
        self._stamps = keys
        self.order = sorted(range(n), key=keys.__getitem__, reverse=True)
        self.keys: list[float] | list[int] = list(map(keys.__getitem__, self.order))

    def _read_fast(
        self, items: Sequence[object], now: datetime, *, want_tags: bool
    ) -> list[float] | None:
        """Timestamps, pins and tags in C-level passes, or ``None`` to read one by one.

        The slot descriptors of RecoveryPoint refuse any other type, so reading a field also
        checks the type; a datetime's ``timestamp`` refuses anything but a datetime.
        """
        n = len(items)
        if n == 0:
            self.instant_of = _no_instant
            return []
        try:
            if _SLOTS is not None and isinstance(items[0], RecoveryPoint):
                created, pinned, tags = _SLOTS
                stamps = list(map(_TIMESTAMP, map(created, items)))
                # One more pass finds the few points with a pin (or tags, if wanted).
                special = map(any, map(_PIN_AND_TAGS, items)) if want_tags else map(pinned, items)
                for index in compress(range(n), special):
                    pin = pinned(items[index])
                    if pin is not None and pin > now:
                        self.pinned.append(index)
                    carried = tags(items[index])
                    if want_tags and carried:
                        self.tags.append((index, carried))
                self.instant_of = lambda index: created(items[index])
                return stamps
            if isinstance(items[0], datetime):
                # Fixed offsets and IANA zones always give an offset, so every one is aware.
                zones = set(map(_TZINFO, items))
                if all(isinstance(zone, timezone | ZoneInfo) for zone in zones):
                    moments = cast("Sequence[datetime]", items)
                    stamps = list(map(_TIMESTAMP, moments))
                    if zones == {UTC}:
                        self.instant_of = moments.__getitem__
                    else:
                        self.instant_of = lambda index: moments[index].astimezone(UTC)
                    return stamps
        except (TypeError, AttributeError):
            self.pinned.clear()
            self.tags.clear()
        return None

    def _read_one_by_one(
        self, items: Sequence[object], now: datetime, *, want_tags: bool
    ) -> list[datetime]:
        instants: list[datetime] = []
        for index, item in enumerate(items):
            if isinstance(item, RecoveryPoint):
                instants.append(item.created_at)
                if item.pinned_at(now):
                    self.pinned.append(index)
                if want_tags and item.tags:
                    self.tags.append((index, item.tags))
            elif isinstance(item, datetime):
                instants.append(aware_utc(item, f"points[{index}]"))
            else:
                raise ValidationError.of(
                    f"points[{index}]",
                    f"expected a RecoveryPoint or an aware datetime, got {item!r}",
                )
        return instants

    def key(self, instant: datetime) -> float | int:
        """The sort key of ``instant``; outside the float range, one beyond every point's."""
        if not self.floats:
            return (instant - _EPOCH) // _MICROSECOND
        stamp = instant.timestamp()
        if stamp <= -self._FLOAT_RANGE:
            return -math.inf
        if stamp >= self._FLOAT_RANGE:
            return math.inf
        return stamp

    def newer_than(self, instant: datetime) -> int:
        """How many points are strictly newer than ``instant`` (they come first)."""
        return bisect_left(self.keys, -self.key(instant), key=neg)

    def at_or_newer_than(self, instant: datetime) -> int:
        """How many points are at ``instant`` or newer."""
        return bisect_right(self.keys, -self.key(instant), key=neg)

    def instant_at(self, position: int) -> datetime:
        return self.instant_of(self.order[position])

    def positions(self, indices: Sequence[int]) -> list[int]:
        """The sorted positions of the points with these input indices, ascending."""
        if len(indices) * 64 > self.n:
            mask = bytearray(self.n)
            for index in indices:
                mask[index] = 1
            return list(compress(range(self.n), map(mask.__getitem__, self.order)))
        found = []
        for index in indices:
            position = bisect_left(self.keys, -self._stamps[index], key=neg)
            while self.order[position] != index:
                position += 1
            found.append(position)
        return sorted(found)


def _no_instant(index: int) -> datetime:
    raise IndexError(index)


def _slot_readers() -> tuple[Callable[[object], Any], ...] | None:
    """The type-checking readers of RecoveryPoint's slots, if it has slots."""
    readers = []
    for name in ("created_at", "pinned_until", "tags"):
        descriptor = RecoveryPoint.__dict__.get(name)
        if not isinstance(descriptor, MemberDescriptorType):
            return None
        readers.append(descriptor.__get__)
    return tuple(readers)


_SLOTS = _slot_readers()
_FIXED_ZONES = frozenset(
    ["UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"]
    + ["GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "Etc/Greenwich", "Greenwich"]
    + [f"Etc/GMT+{hours}" for hours in range(1, 13)]
    + [f"Etc/GMT-{hours}" for hours in range(1, 15)]
)
"""Zones whose offset never changes: no need to look for transitions."""


class _Verdicts:
    """The reasons collected for each sorted position, rule after rule."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._reasons: dict[int, list[str]] = {}

    def give(self, positions: Iterable[int], reason: str) -> None:
        reasons = self._reasons
        for position in positions:
            found = reasons.get(position)
            if found is None:
                reasons[position] = [reason]
            else:
                found.append(reason)

    def give_bucket_starts(self, runs: Sequence[int], count: int, name: str) -> None:
        """A count rule: the first ``count`` bucket starts (all for -1), then the oldest rule."""
        kept = runs if count < 0 else runs[:count]
        self.give(kept, name)
        oldest = self._n - 1
        if kept[-1] != oldest:
            # The rule reaches the oldest point with count left if fewer buckets started before.
            started_before = len(runs) - (runs[-1] == oldest)
            if count < 0 or started_before < count:
                self.give((oldest,), f"oldest-{name}")

    def give_window_starts(self, runs: Sequence[int], inside: int, name: str) -> None:
        """A window rule: the bucket starts among the ``inside`` newest points, then the oldest."""
        kept = runs[: bisect_left(runs, inside)]
        self.give(kept, name)
        oldest = self._n - 1
        if inside == self._n and kept and kept[-1] != oldest:
            self.give((oldest,), f"oldest-{name}")

    def kept(self) -> bytes:
        mask = bytearray(self._n)
        for position in self._reasons:
            mask[position] = 1
        return bytes(mask)

    def reasons(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(self._reasons[position]) for position in sorted(self._reasons))


class _Windows:
    """How many of the newest points lie inside each window (a prefix of the sorted points)."""

    def __init__(self, timeline: _Timeline, now: datetime, zone: ZoneInfo) -> None:
        self._timeline = timeline
        self._zone = zone
        # restic's "latest": the newest point strictly before now.
        position = timeline.at_or_newer_than(now)
        self._latest = timeline.instant_at(position) if position < timeline.n else None
        self._sizes: dict[CalendarDuration, int] = {}

    def size(self, window: CalendarDuration) -> int:
        """The number of points strictly newer than ``latest - window``."""
        size = self._sizes.get(window)
        if size is None:
            start = None if self._latest is None else window.before(self._latest, self._zone)
            # No point before now, or a window reaching past year 1: no lower bound.
            size = self._timeline.n if start is None else self._timeline.newer_than(start)
            self._sizes[window] = size
        return size


class _BucketStarts:
    """For each calendar unit, the positions where a new bucket starts in the sorted points.

    A count rule keeps the first point of each bucket run (restic remembers the bucket of the
    last point the rule kept, and while the rule has count left that is the previous point's
    bucket). Coarser units are functions of finer ones (hour -> day -> week, month -> year), so
    only the hour is computed for every point; the rest only where the finer unit changes.
    """

    def __init__(
        self, n: int, hours: Callable[[], Sequence[float]], *, months: bool = True
    ) -> None:
        self._hours = hours
        self._months = months  # False: no rule asks for months or years
        self._runs: dict[str, Sequence[int]] = {"last": range(n)}

    def of(self, unit: str) -> Sequence[int]:
        if unit not in self._runs:
            self._compute()
        return self._runs[unit]

    def _compute(self) -> None:
        hours = self._hours()
        hour_runs = _run_starts(hours)
        days = [int(hour // 24) for hour in map(hours.__getitem__, hour_runs)]
        day_starts = _run_starts(days)
        day_runs = [hour_runs[index] for index in day_starts]
        day_values = [days[index] for index in day_starts]
        weeks = [(day + 3) // 7 for day in day_values]  # 1970-01-01 was a Thursday
        self._runs["hourly"] = hour_runs
        self._runs["daily"] = day_runs
        self._runs["weekly"] = [day_runs[index] for index in _run_starts(weeks)]
        if not self._months:
            return
        months = list(map(_month_of_day, day_values))
        month_starts = _run_starts(months)
        month_runs = [day_runs[index] for index in month_starts]
        years = [months[index] // 12 for index in month_starts]
        self._runs["monthly"] = month_runs
        self._runs["yearly"] = [month_runs[index] for index in _run_starts(years)]


def _run_starts(values: Sequence[float]) -> list[int]:
    """Indices where ``values`` differs from the value before (0 always)."""
    if not values:
        return []
    changes = map(ne, islice(values, 1, None), values)
    return [0, *compress(range(1, len(values)), changes)]


def _local_hours(timeline: _Timeline, zone: ZoneInfo) -> list[float] | list[int]:
    """Each sorted point's wall-clock hour in ``zone``, counted from 1970-01-01 00:00 wall time."""
    hours: list[Any] = []
    scale = timeline.scale
    hour = 3600 * scale if not timeline.floats else 3600.0
    keys = timeline.keys
    runs = _offset_runs(timeline, zone)
    bounds: list[tuple[int, timedelta | None]] = [*runs, (timeline.n, None)]
    for (start, offset), (end, _) in pairwise(bounds):
        assert offset is not None
        shift = offset.total_seconds() if timeline.floats else offset // _MICROSECOND
        hours.extend(map(floordiv, map(add, keys[start:end], repeat(shift)), repeat(hour)))
    return hours


def _offset_runs(timeline: _Timeline, zone: ZoneInfo) -> list[tuple[int, timedelta]]:
    """Where the zone's UTC offset changes along the sorted points: (first position, offset).

    Probes the offset at a few points only, splitting ranges in half until each range spans at
    most a day and has the same offset at both ends. That relies on no zone changing its offset
    twice within one day, which holds for every zone in the tz database (the closest two
    transitions are four days apart).
    """
    probed: dict[int, timedelta] = {}
    keys = timeline.keys
    day = 86400 * timeline.scale

    def offset(position: int) -> timedelta:
        found = probed.get(position)
        if found is None:
            found = probed[position] = offset_at(timeline.instant_at(position), zone)
        return found

    runs: list[tuple[int, timedelta]] = []

    def mark(position: int) -> None:
        if not runs or runs[-1][1] != offset(position):
            runs.append((position, offset(position)))

    if zone.key in _FIXED_ZONES:
        return [(0, offset(0))]
    stack = [(0, timeline.n - 1)]
    while stack:
        low, high = stack.pop()
        if offset(low) == offset(high) and keys[low] - keys[high] <= day:
            mark(low)
        elif high - low <= 1:
            mark(low)
            mark(high)
        else:
            middle = (low + high) // 2
            stack.append((middle, high))
            stack.append((low, middle))
    return runs


def _month_of_day(day: int) -> int:
    """``year * 12 + month - 1`` of the proleptic Gregorian day ``day`` (0 is 1970-01-01)."""
    month = _MONTHS.get(day)
    if month is None:
        month = _civil_month(day)
        if len(_MONTHS) < 200_000:
            _MONTHS[day] = month
    return month


_MONTHS: dict[int, int] = {}
"""Months of days already asked for: a few dozen thousand days cover every point in use."""


def _civil_month(day: int) -> int:
    # Civil-from-days (H. Hinnant): works for any day, also before year 1 and after 9999.
    shifted = day + 719468
    era = shifted // 146097
    day_of_era = shifted - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    month = month_index + 3 if month_index < 10 else month_index - 9
    year = year_of_era + era * 400 + (month <= 2)
    return year * 12 + month - 1


# --- the small-set path --------------------------------------------------------------------------
#
# The everyday shape is many replicas with a few dozen points each, where per-call setup, not the
# sort, dominates. For up to _SMALL points of one kind (RecoveryPoint objects, or datetimes in
# UTC) within the float range, apply takes this path: everything that does not depend on the
# points is worked out once per policy (_Plan: the rules, the reasons as bits, the zone's offsets
# as a shared table), each rule marks the positions it keeps with one bit in an integer per
# position, and a mask of bits becomes its tuple of reasons through a per-policy table, so a call
# builds no per-rule structures and no per-point lists of reasons. It decides exactly what the
# general path decides; tests/test_retention_fast.py compares the two.

_SMALL = 256
_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000


class _ReasonTable(dict[int, tuple[str, ...]]):
    """A mask of reason bits -> the reasons, in the order the general path gives them."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        self._names = tuple(names)

    def __missing__(self, mask: int) -> tuple[str, ...]:
        reasons = tuple(name for bit, name in enumerate(self._names) if mask >> bit & 1)
        if len(self) < 4096:
            self[mask] = reasons
        return reasons


class _Plan:
    """What :meth:`RetentionPolicy.apply` needs of a policy, worked out once per policy.

    Each reason a rule can give is one bit, numbered in the order the general path gives the
    reasons (pinned, each tag list, within, each count rule and its oldest-point reason, each
    window rule and its oldest-point reason), so a position's mask lists its reasons in order.
    """

    def __init__(self, policy: RetentionPolicy) -> None:
        names: list[str] = ["pinned"]

        def bit(name: str) -> int:
            names.append(name)
            return 1 << (len(names) - 1)

        self.tags = [(frozenset(tags), bit(f"tag:{','.join(tags)}")) for tags in policy.tags]
        # Every window, ``within`` first; the rules below refer to them by index.
        self.window_list: list[CalendarDuration] = []
        self.within_bit = 0
        if policy.within is not None:
            self.window_list.append(policy.within)
            self.within_bit = bit("within")
        self.counts: list[tuple[str, int, int, int]] = [
            (name, count, bit(name), bit(f"oldest-{name}"))
            for name in COUNT_RULES
            if (count := getattr(policy, name))
        ]
        self.windows: list[tuple[str, int, int, int]] = []
        for name in WITHIN_RULES:
            window = getattr(policy, name)
            if window is not None:
                reason = name.replace("_", "-")
                self.windows.append(
                    (
                        name.removeprefix("within_"),
                        len(self.window_list),
                        bit(reason),
                        bit(f"oldest-{reason}"),
                    )
                )
                self.window_list.append(window)
        self.reasons = _ReasonTable(names)
        units = {name for name, *_ in self.counts} | {unit for unit, *_ in self.windows}
        units.discard("last")
        self.needs_hours = bool(units)
        self.needs_days = bool(units - {"hourly"})
        self.needs_weeks = "weekly" in units
        self.needs_months = bool(units & {"monthly", "yearly"})
        zone = ZoneInfo(policy.tz)
        self.zone = zone
        self.fixed_offset: int | None = None
        if zone.key in _FIXED_ZONES:
            offset = offset_at(_EPOCH, zone)
            self.fixed_offset = offset // _MICROSECOND
        self.offsets = ZoneOffsets.of(zone)
        self._spans: dict[tuple[int, int], int] = {}
        self._bases: dict[tuple[int, int], int | None] = {}

    def offset(self, seconds: float) -> int | None:
        """The zone's offset in microseconds at ``seconds`` since 1970 (``None``: ask zoneinfo)."""
        if self.fixed_offset is not None:
            return self.fixed_offset
        return self.offsets.offset(seconds)

    def steady_offset(self, low: int, high: int) -> int | None:
        """The offset (microseconds) in force from ``low`` through ``high`` (whole seconds since
        1970), or ``None`` if it changes in between or the span is not served."""
        if self.fixed_offset is not None:
            return self.fixed_offset
        return self.offsets.steady(low, high)

    def span_days(self, window: CalendarDuration, month: int) -> int:
        """Days a window's years, months and days go back from any day of ``month``.

        Go's AddDate keeps the day of the month and lets it overflow forward, so going back
        ``years`` and ``months`` from day ``d`` of a month lands ``d - 1`` days after the first
        of the target month: the span depends on the month alone.
        """
        key = (id(window), month)  # the plan holds its windows, so ids stay theirs
        span = self._spans.get(key)
        if span is None:
            target = month - 12 * window.years - window.months
            span = _first_day(month) - _first_day(target) + window.days
            if len(self._spans) < 100_000:
                self._spans[key] = span
        return span

    def window_base(self, index: int, day: int) -> int | None:
        """A window's start less the latest point's local time of day, when the latest point
        lies on local ``day`` (days since 1970) and the zone's offset is steady for two days
        around the start; ``None``: work the start out for each call (:func:`_window_start`).
        """
        key = (index, day)
        base = self._bases.get(key, _UNKNOWN)
        if base == _UNKNOWN:
            base = None
            window = self.window_list[index]
            month = _month_of_day(day)
            if month - 12 * window.years - window.months >= 1900 * 12:
                wall = (day - self.span_days(window, month)) * _DAY_US  # the start's local day
                second = wall // 1_000_000
                offset = self.steady_offset(second - 2 * 86_400, second + 3 * 86_400)
                if offset is not None:
                    base = wall - offset - window.hours * _HOUR_US
            if len(self._bases) < 100_000:
                self._bases[key] = base
        return base


_UNKNOWN = -(2**80)
"""Not asked yet: no window start is this far from 1970."""


def _first_day(month: int) -> int:
    """Days from 1970-01-01 to the first day of ``month`` (``year * 12 + month - 1``)."""
    year, number = divmod(month, 12)
    number += 1
    # Days-from-civil (H. Hinnant), for the first of the month.
    year -= number <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * ((number + 9) % 12) + 2) // 5
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


_CREATED_AT = attrgetter("created_at")
_PINNED_UNTIL = attrgetter("pinned_until")
_TAGS = attrgetter("tags")


def _apply_small(
    policy: RetentionPolicy, plan: _Plan, items: list[P], now: datetime
) -> RetentionDecision[P] | None:
    """The decision for a small set of points, or ``None`` to take the general path.

    Works on the datetimes themselves (they compare as instants) and on whole UTC hours (read
    from the ordinal and the hour, in C), not on float timestamps, which cost more than the
    sort. Zones whose offsets or changes are not whole hours take the general path.
    """
    n = len(items)
    first = items[0]
    try:
        if type(first) is RecoveryPoint and _SLOTS is not None:
            # The slot's reader refuses any other type, so this also checks every item.
            ordered: list[Any] = sorted(items, key=_SLOTS[0], reverse=True)
            newest_first: list[datetime] = list(map(_CREATED_AT, ordered))
        elif type(first) is datetime:
            if set(map(_TZINFO, items)) != {UTC}:
                return None
            ordered = newest_first = sorted(cast("list[datetime]", items), reverse=True)
        else:
            return None
    except (TypeError, AttributeError):
        return None
    if not (newest_first[-1] > _FLOAT_OLDEST and newest_first[0] < _FLOAT_NEWEST):
        return None
    masks = [0] * n
    if ordered is not newest_first:
        if any(map(_PINNED_UNTIL, ordered)):
            for position in compress(range(n), map(_PINNED_UNTIL, ordered)):
                if ordered[position].pinned_until > now:
                    masks[position] = 1
        if plan.tags and any(map(_TAGS, ordered)):
            for position in compress(range(n), map(_TAGS, ordered)):
                carried = ordered[position].tags
                for wanted, bit in plan.tags:
                    if wanted <= carried:
                        masks[position] |= bit
    sizes: list[int] = []
    if plan.window_list:
        found = _window_sizes(plan, newest_first, now)
        if found is None:
            return None
        sizes = found
        if plan.within_bit:
            bit = plan.within_bit
            for position in range(sizes[0]):
                masks[position] |= bit
    runs = _small_runs(plan, newest_first) if plan.needs_hours else {}
    if runs is None:
        return None
    oldest = n - 1
    for unit, count, bit, oldest_bit in plan.counts:
        starts = range(n) if unit == "last" else runs[unit]
        kept = starts if count < 0 else starts[:count]
        for position in kept:
            masks[position] |= bit
        # As _Verdicts.give_bucket_starts: the oldest point, if the rule had count left.
        if kept[-1] != oldest and (count < 0 or len(starts) - (starts[-1] == oldest) < count):
            masks[oldest] |= oldest_bit
    for unit, index, bit, oldest_bit in plan.windows:
        inside = sizes[index]
        starts = runs[unit]
        kept = starts[: bisect_left(starts, inside)]
        for position in kept:
            masks[position] |= bit
        # As _Verdicts.give_window_starts.
        if inside == n and kept and kept[-1] != oldest:
            masks[oldest] |= oldest_bit
    return RetentionDecision(
        policy=policy,
        now=now,
        ordered=ordered,
        kept=masks,
        reasons=tuple(map(plan.reasons.__getitem__, filter(None, masks))),
    )


_EPOCH_ORDINAL = _EPOCH.toordinal()
_ORDINAL = datetime.toordinal
_HOUR = attrgetter("hour")
_FLOAT_OLDEST = _EPOCH - timedelta(seconds=2**32)
_FLOAT_NEWEST = _EPOCH + timedelta(seconds=2**32)


def _small_runs(plan: _Plan, newest_first: list[datetime]) -> dict[str, list[int]] | None:
    """For each calendar unit the plan uses, the positions where a new bucket starts (as
    _BucketStarts finds them); ``None`` where an offset or a change of it is not a whole hour.

    Only the hour is read for every point; coarser units are computed where the finer one
    changes. Most sets lie within one stretch of a constant offset: then the hour buckets change
    where the UTC hour does, and the offset is added only at those changes.
    """
    n = len(newest_first)
    hours = list(map(_HOUR, newest_first))
    newest = (newest_first[0].toordinal() - _EPOCH_ORDINAL) * 24 + hours[0]
    oldest = (newest_first[-1].toordinal() - _EPOCH_ORDINAL) * 24 + hours[-1]
    offset = plan.steady_offset(oldest * 3600, newest * 3600 + 3599)
    if offset is not None:
        shift, part = divmod(offset, _HOUR_US)
        if part:
            return None
        if newest - oldest < 24:
            # Less than a day apart: the hour of the day alone tells the hours apart.
            hour_runs = [0, *compress(range(1, n), map(ne, islice(hours, 1, None), hours))]
            top, first = newest + shift, hours[0]
            values = [top - (first - hours[position]) % 24 for position in hour_runs]
        else:
            days = map(sub, map(_ORDINAL, newest_first), repeat(_EPOCH_ORDINAL))
            utc = list(map(add, map(mul, days, repeat(24)), hours))
            hour_runs = _run_starts(utc)
            values = [utc[position] + shift for position in hour_runs]
    else:
        local = _small_hours(plan, newest_first)
        if local is None:
            return None
        hour_runs = _run_starts(local)
        values = list(map(local.__getitem__, hour_runs))
    runs = {"hourly": hour_runs}
    if not plan.needs_days:
        return runs
    day_runs, day_values = _coarser(hour_runs, values, 0, 24)
    runs["daily"] = day_runs
    if plan.needs_weeks:
        runs["weekly"] = _coarser(day_runs, day_values, 3, 7)[0]  # 1970-01-01 was a Thursday
    if plan.needs_months:
        if _month_of_day(day_values[0]) == _month_of_day(day_values[-1]):
            month_runs, month_values = day_runs[:1], [_month_of_day(day_values[0])]
        else:
            months = list(map(_month_of_day, day_values))
            month_starts = _run_starts(months)
            month_runs = list(map(day_runs.__getitem__, month_starts))
            month_values = list(map(months.__getitem__, month_starts))
        runs["monthly"] = month_runs
        runs["yearly"] = _coarser(month_runs, month_values, 0, 12)[0]
    return runs


def _coarser(
    runs: list[int], values: list[int], add: int, divisor: int
) -> tuple[list[int], list[int]]:
    """The runs and values of the unit ``(value + add) // divisor`` from those of a finer unit
    whose ``values`` never grow (newest first). Sets of a few dozen points span one or two
    buckets of a coarser unit: those are found from the first and last values alone."""
    first = (values[0] + add) // divisor
    last = (values[-1] + add) // divisor
    if last == first:
        return runs[:1], [first]
    if last == first - 1:  # two: the second starts at the first value below the first's start
        split = bisect_right(values, add - first * divisor, key=neg)
        return [runs[0], runs[split]], [first, last]
    coarse = [(value + add) // divisor for value in values]
    starts = _run_starts(coarse)
    return list(map(runs.__getitem__, starts)), list(map(coarse.__getitem__, starts))


def _small_hours(plan: _Plan, newest_first: list[datetime]) -> list[int] | None:
    """Each sorted point's wall-clock hour since 1970, as the general path's _local_hours counts
    it; ``None`` where an offset or a change of it is not a whole hour."""
    days = map(sub, map(_ORDINAL, newest_first), repeat(_EPOCH_ORDINAL))
    utc = list(map(add, map(mul, days, repeat(24)), map(_HOUR, newest_first)))
    if plan.fixed_offset is not None:
        shift, part = divmod(plan.fixed_offset, _HOUR_US)
        return None if part else [hour + shift for hour in utc]
    low, high = utc[-1] * 3600, utc[0] * 3600 + 3599
    changes = plan.offsets.changes(low, high)
    offset = plan.offsets.offset(low)
    if changes is None or offset is None:
        return None
    shifts = []
    for value in (offset, *(after for _, after in changes)):
        shift, part = divmod(value, _HOUR_US)
        if part:
            return None
        shifts.append(shift)
    if not changes:
        return [hour + shifts[0] for hour in utc]
    if any(instant % 3600 for instant, _ in changes):
        return None
    # Newest first: a point in an hour before a change has the offset in force before it.
    bounds = [instant // 3600 for instant, _ in changes]
    change = len(bounds) - 1
    shift = shifts[-1]
    local = []
    for hour in utc:
        while change >= 0 and hour < bounds[change]:
            shift = shifts[change]
            change -= 1
        local.append(hour + shift)
    return local


def _window_sizes(plan: _Plan, newest_first: list[datetime], now: datetime) -> list[int] | None:
    """How many of the newest points lie strictly after each window's start, for the plan's
    windows in order (``None``: take the general path). As :class:`_Windows`: a window reaches
    back from the newest point strictly before ``now``; without one, every point is inside."""
    n = len(newest_first)
    oldest_first = newest_first[::-1]
    position = n - bisect_left(oldest_first, now)
    if position == n:
        return [n] * len(plan.window_list)
    instant = (newest_first[position] - _EPOCH) // _MICROSECOND
    offset = plan.offset(instant / 1_000_000)
    if offset is None:
        return None
    day, time_of_day = divmod(instant + offset, _DAY_US)
    oldest = (oldest_first[0] - _EPOCH) // _MICROSECOND
    sizes = []
    for index, window in enumerate(plan.window_list):
        base = plan.window_base(index, day)
        if base is None:
            start = _window_start(plan, window, day, time_of_day)
            if start is None:
                return None
        else:
            start = base + time_of_day
        if start < oldest:
            sizes.append(n)
        else:
            sizes.append(n - bisect_right(oldest_first, _EPOCH + timedelta(microseconds=start)))
    return sizes


def _window_start(plan: _Plan, window: CalendarDuration, day: int, time_of_day: int) -> int | None:
    """The instant (microseconds since 1970) a window starts at, reaching back from local
    ``day`` and ``time_of_day``, as ``window.before`` finds it; ``None``: take the general path."""
    month = _month_of_day(day)
    if month - 12 * window.years - window.months < 1900 * 12:
        return None  # near the calendar's ends: the general path knows them
    wall = (day - plan.span_days(window, month)) * _DAY_US + time_of_day
    # Go's time.Date for a wall-clock time (see _durations.wall_to_instant).
    guess = plan.offset(wall / 1_000_000)
    if guess is None:
        return None
    candidate = wall - guess
    found = plan.offset(candidate / 1_000_000)
    if found is None:
        return None
    return (candidate if found == guess else wall - found) - window.hours * _HOUR_US
