"""The small-set path of RetentionPolicy.apply decides exactly what the general path decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmfailover import RecoveryPoint, RetentionPolicy
from vmfailover.policy.retention import _apply_small

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
ANCHOR = datetime(2024, 3, 31, 1, 30, tzinfo=UTC)  # Berlin's spring-forward night
spans = st.sampled_from([600, 3600, 86_400, 40 * 86_400, 400 * 86_400])
durations = st.one_of(
    st.none(), st.sampled_from(["1h", "1d", "2d", "7d", "1m", "3m", "1y", "1m2d3h", "10y"])
)
counts = st.sampled_from([-1, 0, 0, 1, 2, 4, 7])


@st.composite
def policies(draw: st.DrawFn) -> RetentionPolicy:
    fields: dict[str, object] = {
        name: draw(counts) for name in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    }
    fields["within"] = draw(durations)
    for unit in ("hourly", "daily", "weekly", "monthly", "yearly"):
        fields[f"within_{unit}"] = draw(durations)
    fields["tags"] = draw(st.sampled_from([[], [["a"]], [["a", "b"], ["c"]]]))
    if all(not value for value in fields.values()):
        fields["last"] = 1
    return RetentionPolicy(**fields, tz=draw(st.sampled_from(ZONES)))  # type: ignore[arg-type]


@st.composite
def point_sets(draw: st.DrawFn) -> tuple[list[RecoveryPoint], datetime]:
    span = draw(spans)
    seconds = draw(st.lists(st.integers(-span, span), min_size=1, max_size=64))
    seconds += draw(st.lists(st.sampled_from(seconds), max_size=3))  # equal instants
    micro = draw(st.booleans())
    points = [
        RecoveryPoint(
            id=f"rp{number}",
            replica="r",
            created_at=ANCHOR + timedelta(seconds=second, microseconds=number if micro else 0),
            tags=draw(st.frozensets(st.sampled_from("abc"), max_size=2)),
            pinned_until=draw(st.sampled_from([None, ANCHOR + timedelta(days=1)])),
        )
        for number, second in enumerate(seconds)
    ]
    now = ANCHOR + timedelta(seconds=draw(st.integers(-span, 2 * span)))
    return points, now


def _verdict(decision: object) -> list[tuple[str, bool, tuple[str, ...]]]:
    return [(entry.point.id, entry.kept, entry.reasons) for entry in decision.entries]  # type: ignore[attr-defined]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(point_sets(), policies())
def test_the_small_set_path_agrees_with_the_general_path(
    case: tuple[list[RecoveryPoint], datetime], policy: RetentionPolicy
) -> None:
    points, now = case
    general = policy._apply_general(list(points), now)
    small = _apply_small(policy, policy._plan, list(points), now)
    if small is not None:  # None: the small path hands over (non-whole-hour zones, say)
        assert _verdict(small) == _verdict(general)
    assert _verdict(policy.apply(points, now)) == _verdict(general)


@given(st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=40))
def test_plain_utc_datetimes_take_the_small_path_and_agree(seconds: list[int]) -> None:
    policy = RetentionPolicy(last=2, hourly=3, daily=2, within_daily="2d")
    moments = [ANCHOR + timedelta(seconds=second) for second in seconds]
    small = _apply_small(policy, policy._plan, list(moments), ANCHOR)
    assert small is not None
    general = policy._apply_general(list(moments), ANCHOR)
    assert list(small.keep) == list(general.keep)
    assert [small.reasons[p] for p in small.keep] == [general.reasons[p] for p in general.keep]


def test_recovery_points_across_a_dst_change_take_the_small_path() -> None:
    policy = RetentionPolicy(last=3, hourly=6, daily=3, within_hourly="1d", tz="Europe/Berlin")
    points = [
        RecoveryPoint(id=f"rp{k}", replica="r", created_at=ANCHOR + timedelta(minutes=25 * k))
        for k in range(-20, 20)
    ]
    small = _apply_small(policy, policy._plan, points, ANCHOR + timedelta(hours=9))
    assert small is not None
    assert _verdict(small) == _verdict(policy._apply_general(points, ANCHOR + timedelta(hours=9)))


# One policy applied to many sets in a row, as a replication tick does: what the small path
# remembers per policy and per zone (the reasons of each mask, window starts per day, the last
# stretch of one offset) must never carry one set's answer into another's.
QUIET = datetime(2026, 11, 1, 22, 40, tzinfo=UTC)  # Berlin: Sunday 23:40, a week about to turn
NEW_YEAR = datetime(2025, 12, 31, 22, 50, tzinfo=UTC)  # Berlin: a year about to turn
SHARED = [
    RetentionPolicy(last=4, hourly=12, daily=7, weekly=4, tz="Europe/Berlin"),
    RetentionPolicy(
        last=3,
        hourly=24,
        daily=7,
        weekly=4,
        monthly=12,
        yearly=-1,
        within="2d",
        within_hourly="1d",
        within_daily="7d",
        within_weekly="1m",
        within_monthly="1y",
        within_yearly="10y",
        tags=[["a"], ["a", "b"]],
        tz="Europe/Berlin",
    ),
    RetentionPolicy(hourly=-1, daily=-1, within_hourly="6h", tz="America/New_York"),
]


@st.composite
def replica_sets(draw: st.DrawFn) -> tuple[list[RecoveryPoint], datetime]:
    anchor = draw(st.sampled_from([ANCHOR, QUIET, NEW_YEAR]))
    step = draw(st.sampled_from([60, 900, 3600, 4 * 3600, 86_400]))
    count = draw(st.integers(1, 48))
    jitter = draw(st.lists(st.integers(0, 59), min_size=count, max_size=count))
    marks = draw(st.lists(st.integers(0, 8), min_size=count, max_size=count))  # mostly none
    offset = draw(st.integers(-step * count, step))
    points = [
        RecoveryPoint(
            id=f"rp{number}",
            replica="r",
            created_at=anchor + timedelta(seconds=offset + step * number - jitter[number]),
            tags=[(), ("a",), ("a", "b")][marks[number] % 3 if marks[number] < 3 else 0],
            pinned_until=anchor + timedelta(days=marks[number] - 7) if marks[number] > 6 else None,
        )
        for number in range(count)
    ]
    order = draw(st.sampled_from(["oldest first", "newest first", "shuffled"]))
    if order == "newest first":
        points.reverse()
    elif order == "shuffled":
        points = draw(st.permutations(points))
    now = anchor + timedelta(seconds=draw(st.integers(-step, 2 * step)))
    return points, now


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(replica_sets(), min_size=2, max_size=4))
def test_one_policy_over_many_sets_in_a_row_agrees_with_the_general_path(
    cases: list[tuple[list[RecoveryPoint], datetime]],
) -> None:
    for policy in SHARED:
        for points, now in cases:
            assert _verdict(policy.apply(points, now)) == _verdict(
                policy._apply_general(list(points), now)
            )


def test_the_everyday_shape_takes_the_small_path_on_both_sides_of_midnight_and_a_week() -> None:
    # 32 points every 15 minutes across Berlin's midnight into a new week: two days, two weeks.
    points = [
        RecoveryPoint(id=f"rp{k}", replica="r", created_at=QUIET - timedelta(minutes=15 * k))
        for k in range(-8, 24)
    ]
    for policy in SHARED[:2]:
        small = _apply_small(policy, policy._plan, points, QUIET + timedelta(hours=3))
        assert small is not None
        general = policy._apply_general(points, QUIET + timedelta(hours=3))
        assert _verdict(small) == _verdict(general)
    reasons = SHARED[0].apply(points, QUIET + timedelta(hours=3)).reasons
    midnight = points[8 - 1]  # the newest point of Sunday, 23:45 Berlin
    assert reasons[midnight] == ("hourly", "daily", "weekly")
