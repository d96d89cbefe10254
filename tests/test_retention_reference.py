"""The retention engine against a slow reference written straight from the rules' wording.

The reference walks the sorted points once per rule, computes every bucket with
``astimezone(...)`` and ``isocalendar()``, steps months back one at a time for the windows, and
keeps each rule's own counter and remembered bucket, exactly as docs/retention.md states the
rules. The engine computes the same thing with bucket runs and per-run UTC offsets; the two must
agree on every point, kept or removed, and on every reason.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vmfailover.model import RecoveryPoint
from vmfailover.policy.retention import RetentionPolicy

# --- the reference ------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COUNTS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
_WITHINS = ("hourly", "daily", "weekly", "monthly", "yearly")


def _instant(point: RecoveryPoint | datetime) -> datetime:
    return point.created_at if isinstance(point, RecoveryPoint) else point.astimezone(UTC)


def _micros(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


def _bucket(unit: str, instant: datetime, rank: int, zone: ZoneInfo) -> object:
    wall = instant.astimezone(zone)
    if unit == "last":
        return rank
    if unit == "hourly":
        return (wall.year, wall.month, wall.day, wall.hour)
    if unit == "daily":
        return (wall.year, wall.month, wall.day)
    if unit == "weekly":
        iso = wall.isocalendar()
        return (iso.year, iso.week)
    if unit == "monthly":
        return (wall.year, wall.month)
    assert unit == "yearly"
    return wall.year


def _months_back(year: int, month: int, months: int) -> tuple[int, int]:
    for _ in range(months):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return year, month


def _go_wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Go's time.Date: the unique instant with that wall time; in a gap or fold, Go's choice."""
    candidates = []
    for hours in range(-30, 31):
        guess = wall.replace(tzinfo=UTC) - timedelta(minutes=30 * hours)
        if guess.astimezone(zone).replace(tzinfo=None) == wall:
            candidates.append(guess)
    unique = sorted(set(candidates))
    if len(unique) == 1:
        return unique[0]
    # Gap or fold: Go takes the offset in force at "wall read as UTC", keeps it if the result
    # has that same offset, else takes the offset in force at the result.
    as_utc = wall.replace(tzinfo=UTC)
    first = as_utc.astimezone(zone).utcoffset()
    assert first is not None
    result = as_utc - first
    second = result.astimezone(zone).utcoffset()
    assert second is not None
    return result if second == first else as_utc - second


def _window_start(latest: datetime, window: object, zone: ZoneInfo) -> datetime | None:
    years, months, days, hours = (
        getattr(window, part) for part in ("years", "months", "days", "hours")
    )
    wall = latest.astimezone(zone)
    year, month = _months_back(wall.year - years, wall.month, months)
    try:
        day = date(year, month, 1) + timedelta(days=wall.day - 1 - days)
        naive = datetime.combine(day, wall.time().replace(tzinfo=None, fold=0))
        return _go_wall_to_instant(naive, zone) - timedelta(hours=hours)
    except (OverflowError, ValueError):
        return None


def reference(
    policy: RetentionPolicy, points: list[RecoveryPoint | datetime], now: datetime
) -> list[tuple[int, bool, tuple[str, ...]]]:
    """(input index, kept, reasons) for every point, newest first."""
    zone = ZoneInfo(policy.tz)
    instants = [_instant(point) for point in points]
    order = sorted(range(len(points)), key=lambda index: (-_micros(instants[index]), index))
    reasons: dict[int, list[str]] = {index: [] for index in order}
    last_rank = len(order) - 1

    for index in order:
        point = points[index]
        pin = point.pinned_until if isinstance(point, RecoveryPoint) else None
        if pin is not None and pin > now:
            reasons[index].append("pinned")
    for tags in policy.tags:
        for index in order:
            point = points[index]
            if isinstance(point, RecoveryPoint) and set(tags) <= point.tags:
                reasons[index].append("tag:" + ",".join(tags))

    before_now = [instant for instant in instants if instant < now]
    latest = max(before_now) if before_now else None

    starts: dict[object, datetime | None] = {}

    def inside(window: object, index: int) -> bool:
        if window not in starts:
            starts[window] = None if latest is None else _window_start(latest, window, zone)
        start = starts[window]
        return start is None or instants[index] > start

    if policy.within is not None:
        for index in order:
            if inside(policy.within, index):
                reasons[index].append("within")

    for rule in _COUNTS:
        counter = getattr(policy, rule)
        remembered: object = object()
        for rank, index in enumerate(order):
            if counter == 0:
                break
            bucket = _bucket(rule, instants[index], rank, zone)
            if bucket != remembered:
                reasons[index].append(rule)
            elif rank == last_rank:
                reasons[index].append(f"oldest-{rule}")
            else:
                continue
            remembered = bucket
            if counter > 0:
                counter -= 1

    for unit in _WITHINS:
        window = getattr(policy, f"within_{unit}")
        if window is None:
            continue
        remembered = object()
        for rank, index in enumerate(order):
            if not inside(window, index):
                continue
            bucket = _bucket(unit, instants[index], rank, zone)
            if bucket != remembered:
                reasons[index].append(f"within-{unit}")
            elif rank == last_rank:
                reasons[index].append(f"oldest-within-{unit}")
            else:
                continue
            remembered = bucket

    return [(index, bool(reasons[index]), tuple(reasons[index])) for index in order]


# --- strategies ---------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kathmandu",  # +05:45
    "America/Sao_Paulo",
    "Pacific/Chatham",  # +12:45 / +13:45
]
ANCHORS = [
    datetime(2024, 3, 31, 1, 0, tzinfo=UTC),  # DST starts in Europe
    datetime(2024, 10, 27, 1, 0, tzinfo=UTC),  # DST ends in Europe
    datetime(2024, 11, 3, 6, 0, tzinfo=UTC),  # DST ends in New York
    datetime(2024, 4, 6, 15, 0, tzinfo=UTC),  # DST ends on Lord Howe
    datetime(2024, 12, 30, 0, 0, tzinfo=UTC),  # ISO week 2025-W01 starts in 2024
    datetime(2020, 12, 31, 12, 0, tzinfo=UTC),  # ISO week 2020-W53
    datetime(2024, 2, 29, 12, 0, tzinfo=UTC),  # leap day
    datetime(2023, 3, 31, 23, 0, tzinfo=UTC),  # month end before a short month
    datetime(2150, 10, 25, 1, 0, tzinfo=UTC),  # beyond 2106: integer keys, DST from tz rules
    datetime(1890, 1, 1, 0, 0, tzinfo=UTC),  # before 1833 once shifted back: local mean time
]
TAGS = ("a", "b", "c")

offsets = st.one_of(
    st.integers(-6 * 60, 6 * 60).map(lambda minutes: timedelta(minutes=minutes)),
    st.integers(-72, 72).map(lambda hours: timedelta(hours=hours)),
    st.integers(-120, 120).map(lambda days: timedelta(days=days, hours=7)),
    st.integers(-3 * 365, 3 * 365).map(lambda days: timedelta(days=days)),
)


@st.composite
def point_sets(draw: st.DrawFn) -> tuple[list[RecoveryPoint | datetime], datetime]:
    anchor = draw(st.sampled_from(ANCHORS))
    instants = draw(st.lists(offsets.map(lambda delta: anchor + delta), min_size=1, max_size=40))
    # Equal timestamps: repeat some of them.
    repeats = draw(st.lists(st.sampled_from(instants), max_size=4))
    instants = instants + repeats
    instants = draw(st.permutations(instants))
    now = anchor + draw(offsets)
    as_points = draw(st.booleans())
    points: list[RecoveryPoint | datetime] = []
    for number, instant in enumerate(instants):
        if as_points:
            pin = draw(st.sampled_from([None, now - timedelta(hours=1), now + timedelta(hours=1)]))
            points.append(
                RecoveryPoint(
                    id=f"rp{number}",
                    replica="r",
                    created_at=instant,
                    tags=draw(st.frozensets(st.sampled_from(TAGS), max_size=2)),
                    pinned_until=pin,
                )
            )
        else:
            # Same instant, any fixed offset: the engine compares instants, never wall clocks.
            shift = timedelta(hours=draw(st.integers(-12, 12)))
            points.append((instant + timedelta(0)).astimezone(timezone(shift)))
    return points, now


durations = st.one_of(
    st.none(),
    st.sampled_from(["1h", "5h", "1d", "2d", "7d", "1m", "1y", "1m2d3h", "2y", "1d12h", "3m"]),
)
counts = st.sampled_from([-1, 0, 0, 0, 1, 2, 3, 5])


@st.composite
def policies(draw: st.DrawFn) -> RetentionPolicy:
    fields = {name: draw(counts) for name in _COUNTS}
    fields["within"] = draw(st.one_of(st.none(), st.none(), durations))
    for unit in _WITHINS:
        fields[f"within_{unit}"] = draw(durations)
    tag_lists = draw(st.lists(st.lists(st.sampled_from(TAGS), min_size=1, max_size=2), max_size=2))
    empty = all(fields[name] == 0 for name in _COUNTS) and all(
        fields[name] is None for name in fields if name.startswith("within")
    )
    assume(not (empty and not tag_lists))
    return RetentionPolicy(**fields, tags=tag_lists, tz=draw(st.sampled_from(ZONES)))


def _engine(
    policy: RetentionPolicy, points: list[RecoveryPoint | datetime], now: datetime
) -> list[tuple[int, bool, tuple[str, ...]]]:
    decision = policy.apply(points, now=now)
    position = {id(point): index for index, point in enumerate(points)}
    assert len(position) == len(points)
    return [(position[id(entry.point)], entry.kept, entry.reasons) for entry in decision.entries]


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(point_sets(), policies())
def test_engine_agrees_with_reference(
    case: tuple[list[RecoveryPoint | datetime], datetime], policy: RetentionPolicy
) -> None:
    points, now = case
    assert _engine(policy, points, now) == reference(policy, points, now)


@settings(max_examples=150)
@given(point_sets(), policies())
def test_keep_and_remove_partition_the_points_newest_first(
    case: tuple[list[RecoveryPoint | datetime], datetime], policy: RetentionPolicy
) -> None:
    points, now = case
    decision = policy.apply(points, now=now)
    assert sorted(map(id, decision.keep + decision.remove)) == sorted(map(id, points))
    for group in (decision.keep, decision.remove):
        instants = [_instant(point) for point in group]
        assert instants == sorted(instants, reverse=True)
    assert list(decision.reasons) == list(decision.keep)
    for point in decision.keep:
        assert decision.reasons[point]
    for point in decision.remove:
        assert point not in decision.reasons


@settings(max_examples=150)
@given(point_sets(), st.sampled_from(_COUNTS), st.integers(1, 6))
def test_count_rule_keeps_newest_of_its_n_newest_buckets_in_utc(
    case: tuple[list[RecoveryPoint | datetime], datetime], rule: str, count: int
) -> None:
    """The grouped reading of a count rule (buckets are contiguous in UTC)."""
    points, now = case
    policy = RetentionPolicy(**{rule: count})
    instants = [_instant(point) for point in points]
    order = sorted(range(len(points)), key=lambda index: (-_micros(instants[index]), index))
    groups: dict[object, list[int]] = {}
    for rank, index in enumerate(order):
        groups.setdefault(_bucket(rule, instants[index], rank, ZoneInfo("UTC")), []).append(index)
    newest_buckets = list(groups.values())[:count]
    expected = {members[0] for members in newest_buckets}
    oldest = order[-1]
    used_before_oldest = len(groups) - (1 if groups_of_one(groups, oldest) else 0)
    if used_before_oldest < count:
        expected.add(oldest)
    entries = policy.apply(points, now=now).entries
    kept = [entry.point for entry in entries if set(entry.reasons) - {"pinned"}]
    assert {id(points[index]) for index in expected} == set(map(id, kept))


def groups_of_one(groups: dict[object, list[int]], index: int) -> bool:
    return any(members == [index] for members in groups.values())


@st.composite
def bounded_policies(draw: st.DrawFn) -> RetentionPolicy:
    fields = {name: draw(st.sampled_from([0, 1, 2, 3, 5])) for name in _COUNTS}
    for unit in _WITHINS:
        fields[f"within_{unit}"] = draw(st.sampled_from([None, None, "1h", "5h", "2d", "1m"]))
    assume(any(fields.values()))
    return RetentionPolicy(**fields, tz=draw(st.sampled_from(ZONES)))


@settings(max_examples=100)
@given(point_sets(), bounded_policies())
def test_max_kept_bounds_what_is_kept(
    case: tuple[list[RecoveryPoint | datetime], datetime], policy: RetentionPolicy
) -> None:
    points, now = case
    bound = policy.max_kept()
    assert bound is not None
    decision = policy.apply(points, now=now)
    counted = [
        point
        for point in decision.keep
        if _instant(point) < now and decision.reasons[point] != ("pinned",)
    ]
    assert len(counted) <= bound
