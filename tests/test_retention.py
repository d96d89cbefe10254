"""Retention rules on worked examples, bad input, snapshot limits and the explain table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from vmfailover.errors import ValidationError
from vmfailover.model import RecoveryPoint
from vmfailover.policy.retention import CalendarDuration, RetentionPolicy

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def point(name: str, created: datetime, **fields: object) -> RecoveryPoint:
    return RecoveryPoint(id=name, replica="r1", created_at=created, **fields)  # type: ignore[arg-type]


# restic's documentation example: a backup every weekday, two on Fridays, Wednesday missed.
RESTIC_DOC = [
    utc(2025, 4, 21, 11),
    utc(2025, 4, 22, 11),
    utc(2025, 4, 23, 11),
    utc(2025, 4, 24, 11),
    utc(2025, 4, 25, 11),
    utc(2025, 4, 25, 23),
    utc(2025, 4, 28, 11),
    utc(2025, 4, 29, 11),
    utc(2025, 5, 1, 11),
    utc(2025, 5, 2, 11),
    utc(2025, 5, 2, 23),
]
AFTER_DOC = utc(2025, 5, 3, 8)


# --- the rules on worked examples ---------------------------------------------------------------


def test_daily_counts_days_that_have_points() -> None:
    decision = RetentionPolicy(daily=5).apply(RESTIC_DOC, now=AFTER_DOC)
    assert decision.keep == (
        utc(2025, 5, 2, 23),
        utc(2025, 5, 1, 11),
        utc(2025, 4, 29, 11),
        utc(2025, 4, 28, 11),
        utc(2025, 4, 25, 23),
    )
    assert len(decision.remove) == 6
    assert all(decision.reasons[kept] == ("daily",) for kept in decision.keep)


def test_within_daily_counts_calendar_days_back_from_the_latest_point() -> None:
    decision = RetentionPolicy(within_daily="7d").apply(RESTIC_DOC, now=AFTER_DOC)
    # The window starts at 2025-04-25 23:00 exclusive, so the Friday evening point is out.
    assert decision.keep == (
        utc(2025, 5, 2, 23),
        utc(2025, 5, 1, 11),
        utc(2025, 4, 29, 11),
        utc(2025, 4, 28, 11),
    )
    assert decision.reasons[utc(2025, 5, 2, 23)] == ("within-daily",)


def test_count_rules_overlap_daily_seven_weekly_four_keeps_ten() -> None:
    days = [utc(2024, 6, 30, 12) - timedelta(days=back) for back in range(60)]  # ends on a Sunday
    decision = RetentionPolicy(daily=7, weekly=4).apply(days, now=utc(2024, 7, 1))
    assert len(decision.keep) == 10
    weekly_only = [kept for kept in decision.keep if decision.reasons[kept] == ("weekly",)]
    assert weekly_only == [utc(2024, 6, 23, 12), utc(2024, 6, 16, 12), utc(2024, 6, 9, 12)]
    assert decision.reasons[utc(2024, 6, 24, 12)] == ("daily",)
    assert decision.reasons[utc(2024, 6, 30, 12)] == ("daily", "weekly")


def test_restic_hundred_years_of_dailies() -> None:
    start = utc(1925, 1, 1, 12)
    days = [start + timedelta(days=number) for number in range(36525)]
    policy = RetentionPolicy(daily=7, weekly=5, monthly=12, yearly=75)
    decision = policy.apply(days, now=days[-1] + timedelta(hours=1))
    reasons = [reason for kept in decision.keep for reason in decision.reasons[kept]]
    assert reasons.count("daily") == 7
    assert reasons.count("weekly") == 5
    assert reasons.count("monthly") == 12
    assert reasons.count("yearly") == 75
    # The newest point (Tuesday 2024-12-31) is daily, weekly, monthly and yearly at once, and
    # the dailies reach back to Sunday 2024-12-29, the newest of the week before.
    assert len(decision.keep) == 7 + (5 - 2) + (12 - 1) + (75 - 1)


def test_oldest_rule_keeps_the_oldest_point_while_the_rule_has_count_left() -> None:
    points = [utc(2024, 1, 1) + timedelta(days=day) for day in range(100)]
    decision = RetentionPolicy(yearly=3).apply(points, now=utc(2025, 1, 1))
    assert decision.keep == (points[-1], points[0])
    assert decision.reasons[points[-1]] == ("yearly",)
    assert decision.reasons[points[0]] == ("oldest-yearly",)


def test_oldest_rule_stops_once_the_count_is_used_up() -> None:
    points = [utc(2023, 6, 1), utc(2023, 7, 1), utc(2024, 3, 1)]
    decision = RetentionPolicy(yearly=2).apply(points, now=utc(2025, 1, 1))
    assert decision.keep == (utc(2024, 3, 1), utc(2023, 7, 1))
    unlimited = RetentionPolicy(yearly=-1).apply(points, now=utc(2025, 1, 1))
    assert unlimited.keep == (utc(2024, 3, 1), utc(2023, 7, 1), utc(2023, 6, 1))
    assert unlimited.reasons[utc(2023, 6, 1)] == ("oldest-yearly",)


def test_within_rules_keep_the_oldest_point_inside_the_window() -> None:
    points = [utc(2024, 5, 1, hour) for hour in (1, 2, 3)]
    decision = RetentionPolicy(within_daily="2d").apply(points, now=utc(2024, 5, 2))
    assert decision.keep == (points[2], points[0])
    assert decision.reasons[points[0]] == ("oldest-within-daily",)


def test_iso_weeks_and_calendar_years_at_the_turn_of_2025() -> None:
    points = [
        utc(2024, 12, 29, 12),
        utc(2024, 12, 30, 12),
        utc(2025, 1, 5, 12),
        utc(2025, 1, 6, 12),
    ]
    now = utc(2025, 2, 1)
    weekly = RetentionPolicy(weekly=-1).apply(points, now=now)
    # 2024-12-30 and 2025-01-05 are both in ISO week 2025-W01.
    assert weekly.keep == (utc(2025, 1, 6, 12), utc(2025, 1, 5, 12), utc(2024, 12, 29, 12))
    yearly = RetentionPolicy(yearly=-1).apply(points, now=now)
    # Years are calendar years, not ISO years.
    assert yearly.keep == (utc(2025, 1, 6, 12), utc(2024, 12, 30, 12), utc(2024, 12, 29, 12))
    assert yearly.reasons[utc(2024, 12, 29, 12)] == ("oldest-yearly",)


def test_buckets_use_the_wall_clock_of_the_policy_time_zone() -> None:
    # 2024-10-27: Berlin goes from 03:00 CEST back to 02:00 CET at 01:00 UTC.
    points = [utc(2024, 10, 27, 0, 10), utc(2024, 10, 27, 0, 40), utc(2024, 10, 27, 1, 10)]
    points.append(utc(2024, 10, 27, 1, 40))
    berlin = RetentionPolicy(hourly=-1, tz="Europe/Berlin").apply(points, now=utc(2024, 11, 1))
    # All four are 02:xx on Berlin's wall clock: one hour bucket.
    assert berlin.keep == (points[3], points[0])
    assert berlin.reasons[points[0]] == ("oldest-hourly",)
    in_utc = RetentionPolicy(hourly=-1).apply(points, now=utc(2024, 11, 1))
    assert in_utc.keep == (points[3], points[1], points[0])


def test_daily_buckets_in_a_zone_east_of_utc() -> None:
    # 23:30 UTC is already the next day in Kathmandu (+05:45).
    points = [utc(2024, 5, 1, 12), utc(2024, 5, 1, 23, 30)]
    kathmandu = RetentionPolicy(daily=-1, tz="Asia/Kathmandu").apply(points, now=utc(2024, 6, 1))
    assert len(kathmandu.keep) == 2
    assert kathmandu.reasons[points[0]] == ("daily",)
    in_utc = RetentionPolicy(daily=-1).apply(points, now=utc(2024, 6, 1))
    assert in_utc.reasons[points[0]] == ("oldest-daily",)


def test_points_are_ordered_as_instants_even_across_a_dst_fold() -> None:
    first = datetime(2024, 10, 27, 2, 40, fold=0, tzinfo=BERLIN)  # 00:40 UTC
    second = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=BERLIN)  # 01:30 UTC, later
    decision = RetentionPolicy(last=1).apply([first, second], now=utc(2024, 11, 1))
    assert decision.keep == (second,)
    assert decision.keep[0] is second


def test_equal_timestamps_keep_input_order_and_answer_for_themselves() -> None:
    a, b, c = (utc(2024, 1, 1) + timedelta(0) for _ in range(3))
    assert a == b == c
    assert a is not b
    decision = RetentionPolicy(last=2).apply([a, b, c], now=utc(2024, 2, 1))
    assert decision.keep[0] is a
    assert decision.keep[1] is b
    assert decision.remove[0] is c
    assert decision.reasons[a] == ("last",)
    assert c not in decision.reasons
    # A value that was not passed in answers for the newest kept point equal to it.
    assert decision.reasons[utc(2024, 1, 1)] == ("last",)
    with pytest.raises(KeyError):
        decision.reasons[utc(2000, 1, 1)]


def test_the_same_object_twice_is_two_points() -> None:
    moment = utc(2024, 1, 1)
    decision = RetentionPolicy(last=1).apply([moment, moment], now=utc(2024, 2, 1))
    assert len(decision.keep) == 1
    assert len(decision.remove) == 1
    assert decision.reasons[moment] == ("last",)


def test_within_counts_back_from_the_newest_point_before_now() -> None:
    now = utc(2024, 6, 10)
    points = [now - timedelta(days=3), now - timedelta(days=2), now - timedelta(days=1)]
    points += [now, now + timedelta(hours=1)]
    decision = RetentionPolicy(within="1d").apply(points, now=now)
    # latest = now - 1d (now itself is not before now); the window starts at now - 2d, exclusive.
    assert decision.keep == (now + timedelta(hours=1), now, now - timedelta(days=1))
    assert all(decision.reasons[kept] == ("within",) for kept in decision.keep)


def test_within_keeps_everything_when_no_point_is_before_now() -> None:
    now = utc(2024, 6, 10)
    points = [now + timedelta(days=day) for day in range(5)]
    decision = RetentionPolicy(within="1d", within_monthly="1m").apply(points, now=now)
    assert len(decision.keep) == 5
    assert decision.reasons[points[0]] == ("within", "oldest-within-monthly")


def test_pins_and_tags_keep_points_without_using_counters() -> None:
    now = utc(2024, 6, 1)
    pinned = point("pinned", utc(2024, 1, 1), pinned_until=now + timedelta(days=1))
    expired = point("expired", utc(2024, 1, 2), pinned_until=now - timedelta(days=1))
    tested = point("tested", utc(2024, 1, 3), tags={"tested", "app-consistent"})
    weekly_tag = point("weekly-tag", utc(2024, 1, 4), tags={"weekly"})
    newest = point("newest", utc(2024, 5, 1))
    policy = RetentionPolicy(last=1, tags=[["tested"], ["app-consistent", "weekly"]])
    decision = policy.apply([pinned, expired, tested, weekly_tag, newest], now=now)
    assert decision.keep == (newest, tested, pinned)
    assert decision.reasons[pinned] == ("pinned",)
    assert decision.reasons[tested] == ("tag:tested",)
    assert decision.reasons[newest] == ("last",)
    assert set(decision.remove) == {expired, weekly_tag}


def test_reasons_come_in_a_fixed_order() -> None:
    now = utc(2024, 6, 1)
    only = point("only", utc(2024, 5, 1), tags={"x"}, pinned_until=now + timedelta(days=1))
    policy = RetentionPolicy(last=1, yearly=2, within="1d", within_hourly="1h", tags=[["x"]])
    decision = policy.apply([only], now=now)
    assert decision.reasons[only] == (
        "pinned",
        "tag:x",
        "within",
        "last",
        "yearly",
        "within-hourly",
    )


def test_mixed_points_and_datetimes_in_other_zones() -> None:
    rp = point("rp", utc(2024, 1, 1, 12))
    dt = datetime(2024, 1, 1, 14, tzinfo=timezone(timedelta(hours=5)))  # 09:00 UTC
    decision = RetentionPolicy(last=1).apply([dt, rp], now=utc(2024, 2, 1))
    assert decision.keep == (rp,)
    assert decision.remove[0] is dt


def test_no_points_is_an_empty_decision() -> None:
    decision = RetentionPolicy(last=1).apply(iter([]), now=utc(2024, 1, 1))
    assert decision.keep == ()
    assert decision.remove == ()
    assert len(decision.reasons) == 0


# --- calendar durations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("1y2m3d4h", (1, 2, 3, 4)),
        ("4h3d", (0, 0, 3, 4)),
        ("36h", (0, 0, 0, 36)),
        (" 7d ", (0, 0, 7, 0)),
    ],
)
def test_durations_parse_in_any_order(text: str, parts: tuple[int, int, int, int]) -> None:
    duration = CalendarDuration.parse(text)
    assert (duration.years, duration.months, duration.days, duration.hours) == parts


@pytest.mark.parametrize(
    ("latest", "window", "start"),
    [
        # Go's AddDate: "February 31" rolls over into March.
        (utc(2023, 3, 31, 12), "1m", utc(2023, 3, 3, 12)),
        (utc(2024, 3, 31, 12), "1m", utc(2024, 3, 2, 12)),
        (utc(2024, 2, 29, 12), "1y", utc(2023, 3, 1, 12)),
        (utc(2024, 1, 31, 12), "1y1m", utc(2022, 12, 31, 12)),
        (utc(2024, 5, 31, 12), "1y3m", utc(2023, 3, 3, 12)),
        (utc(2024, 5, 10, 12), "2d5h", utc(2024, 5, 8, 7)),
    ],
)
def test_window_start_follows_go_adddate(latest: datetime, window: str, start: datetime) -> None:
    assert CalendarDuration.parse(window).before(latest, UTC) == start


@pytest.mark.parametrize(
    ("latest", "zone", "window", "start"),
    [
        # Days are wall-clock days: across the spring change one day back is 23 hours.
        (utc(2024, 3, 31, 10), BERLIN, "1d", utc(2024, 3, 30, 11)),
        (utc(2024, 3, 31, 10), BERLIN, "24h", utc(2024, 3, 30, 10)),
        # 02:30 does not exist on 2024-03-31 in Berlin: Go lands on 03:30 CEST.
        (utc(2024, 4, 1, 0, 30), BERLIN, "1d", utc(2024, 3, 31, 1, 30)),
        # 02:30 happens twice on 2024-10-27 in Berlin: Go picks the second (CET).
        (utc(2024, 10, 28, 1, 30), BERLIN, "1d", utc(2024, 10, 27, 1, 30)),
        # 01:30 happens twice on 2024-11-03 in New York: Go picks the first (EDT).
        (utc(2024, 11, 4, 6, 30), NEW_YORK, "1d", utc(2024, 11, 3, 5, 30)),
    ],
)
def test_window_start_across_dst_changes(
    latest: datetime, zone: ZoneInfo, window: str, start: datetime
) -> None:
    assert CalendarDuration.parse(window).before(latest, zone) == start


def test_window_reaching_before_year_one_has_no_start() -> None:
    assert CalendarDuration.parse("5y").before(utc(3, 1, 1), UTC) is None


def test_duration_renders_canonically() -> None:
    assert str(CalendarDuration.parse("4h1y")) == "1y4h"
    assert RetentionPolicy(within="48h").within == CalendarDuration(hours=48)


# --- bad input ----------------------------------------------------------------------------------


def _item(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return error.value.findings[0].item


@pytest.mark.parametrize("field", ["last", "hourly", "daily", "weekly", "monthly", "yearly"])
@pytest.mark.parametrize("value", [-2, True, 1.5, "7"])
def test_bad_counts_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(**{field: value})  # type: ignore[arg-type]
    assert _item(error) == field


@pytest.mark.parametrize("field", ["within", "within_hourly", "within_daily", "within_yearly"])
@pytest.mark.parametrize("value", ["3w", "1x", "", "d", "1d1d", "0d", "-1d", "1.5d", "7", 7])
def test_bad_durations_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(last=1, **{field: value})  # type: ignore[arg-type]
    assert _item(error) == field


def test_week_unit_gets_a_hint() -> None:
    with pytest.raises(ValidationError, match="write 7d"):
        RetentionPolicy(within="1w")


def test_huge_durations_are_refused() -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(within_daily="99999999y")
    assert _item(error) == "within_daily"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "utc", "", "../etc", 5])
def test_unknown_time_zones_name_tz(zone: object) -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(last=1, tz=zone)  # type: ignore[arg-type]
    assert _item(error) == "tz"


def test_time_zone_objects_are_accepted() -> None:
    assert RetentionPolicy(last=1, tz=BERLIN).tz == "Europe/Berlin"  # type: ignore[arg-type]


@pytest.mark.parametrize("tags", [[[]], [[""]], [["ok", 5]], 5])
def test_bad_tag_lists(tags: object) -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(tags=tags)  # type: ignore[arg-type]
    assert _item(error).startswith("tags")


def test_tag_shorthands() -> None:
    assert RetentionPolicy(tags="tested").tags == (("tested",),)
    assert RetentionPolicy(tags=["a", ["b", "c", "b"]]).tags == (("a",), ("b", "c"))


def test_an_empty_policy_is_refused() -> None:
    with pytest.raises(ValidationError, match="keeps nothing"):
        RetentionPolicy()
    with pytest.raises(ValidationError, match="keeps nothing"):
        RetentionPolicy(last=0, daily=0, tags=[])


def test_naive_datetimes_are_refused() -> None:
    policy = RetentionPolicy(last=1)
    with pytest.raises(ValidationError) as error:
        policy.apply([utc(2024, 1, 1), datetime(2024, 1, 2)], now=utc(2024, 2, 1))
    assert _item(error) == "points[1]"
    with pytest.raises(ValidationError) as error:
        policy.apply([utc(2024, 1, 1)], now=datetime(2024, 2, 1))
    assert _item(error) == "now"


@pytest.mark.parametrize("points", [["2024-01-01"], [None], "2024", 5, utc(2024, 1, 1)])
def test_things_that_are_not_points_are_refused(points: object) -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(last=1).apply(points, now=utc(2024, 2, 1))  # type: ignore[arg-type]
    assert _item(error).startswith("points")


# --- snapshot limits ----------------------------------------------------------------------------


def test_max_kept_sums_the_rules_less_the_shared_newest_point() -> None:
    assert RetentionPolicy(last=3, daily=7, weekly=4).max_kept() == 3 + 7 + 4 - 2
    assert RetentionPolicy(daily=7).max_kept() == 7
    assert RetentionPolicy(yearly=-1).max_kept() is None
    assert RetentionPolicy(within="1d").max_kept() is None
    assert RetentionPolicy(tags=[["x"]]).max_kept() is None
    # 2 days touch at most 3 day buckets, plus slack for DST, plus the oldest point.
    within_daily = RetentionPolicy(within_daily="2d").max_kept()
    assert within_daily is not None
    assert 3 <= within_daily <= 6


def test_check_passes_a_policy_within_the_limit() -> None:
    RetentionPolicy(last=3, daily=7, weekly=4, monthly=12).check(32)


def test_check_names_every_rule_to_lower() -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(last=3, hourly=24, daily=7).check(24)
    items = [finding.item for finding in error.value.findings]
    assert items == ["hourly", "daily", "last"]
    assert "over the limit of 24" in str(error.value)
    assert "by 8" in str(error.value)


def test_check_names_unbounded_rules() -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(daily=7, yearly=-1, within="2d", tags=[["x"]]).check(32)
    items = [finding.item for finding in error.value.findings]
    assert items == ["yearly", "within", "tags ['x']"]


@pytest.mark.parametrize("limit", [0, -1, True, "32"])
def test_check_refuses_a_bad_limit(limit: object) -> None:
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(daily=7).check(limit)  # type: ignore[arg-type]
    assert _item(error) == "limit"


# --- explain ------------------------------------------------------------------------------------


def test_decision_renders_every_point_with_its_reasons() -> None:
    now = utc(2024, 6, 1)
    points = [point("rp-<1>", utc(2024, 5, 1, 10)), point("rp-2", utc(2024, 5, 1, 9))]
    decision = RetentionPolicy(daily=1, tz="Europe/Berlin").apply(points, now=now)
    text = str(decision)
    assert "keep 1, remove 1" in text
    assert "rp-<1>" in text
    assert "2024-05-01 12:00:00 CEST" in text
    lines = text.splitlines()
    assert any("rp-2" in line and "remove" in line for line in lines)
    assert any("rp-<1>" in line and "keep" in line and "daily" in line for line in lines)
    html = decision._repr_html_()
    assert "rp-&lt;1&gt;" in html
    assert "<table" in html


def test_entries_list_every_point_in_order() -> None:
    decision = RetentionPolicy(last=1).apply(RESTIC_DOC, now=AFTER_DOC)
    entries = decision.entries
    assert [entry.point for entry in entries] == sorted(RESTIC_DOC, reverse=True)
    assert [entry.kept for entry in entries] == [True] + [False] * 10
    assert entries[0].reasons == ("last",)


def test_policy_describes_itself() -> None:
    policy = RetentionPolicy(last=3, yearly=-1, within_daily="7d", tags=[["a", "b"]], tz="UTC")
    assert str(policy) == (
        "keep 3 last, all yearly, daily within 7d, all tagged a,b (calendar UTC)"
    )


def test_a_point_then_a_datetime_then_garbage() -> None:
    rp = point("rp", utc(2024, 1, 1, 12), pinned_until=utc(2030, 1, 1))
    later = utc(2024, 1, 2)
    decision = RetentionPolicy(last=1).apply([rp, later], now=utc(2024, 2, 1))
    assert decision.keep == (later, rp)
    assert decision.reasons[rp] == ("pinned",)
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(last=1).apply([rp, later, 3], now=utc(2024, 2, 1))
    assert _item(error) == "points[2]"
    with pytest.raises(ValidationError) as error:
        RetentionPolicy(last=1).apply([later, datetime(2024, 1, 1).time()], now=utc(2024, 2, 1))
    assert _item(error) == "points[1]"


def test_docs_example_oldest_weekly() -> None:
    days = [utc(2024, 6, 30, 12) - timedelta(days=back) for back in range(21)]
    decision = RetentionPolicy(daily=7, weekly=4).apply(days, now=utc(2024, 7, 1))
    assert len(decision.keep) == 10
    assert decision.keep[-3:] == (utc(2024, 6, 23, 12), utc(2024, 6, 16, 12), utc(2024, 6, 10, 12))
    assert decision.reasons[utc(2024, 6, 10, 12)] == ("oldest-weekly",)


@pytest.mark.parametrize("year", [1834, 1970, 2024, 2105, 2107, 9000])
def test_microseconds_apart_at_an_hour_boundary(year: int) -> None:
    boundary = datetime(year, 7, 1, 12, tzinfo=BERLIN).astimezone(UTC)
    before = boundary - timedelta(microseconds=1)
    after = boundary + timedelta(microseconds=1)
    points = [before, after, boundary]
    decision = RetentionPolicy(hourly=-1, tz="Europe/Berlin").apply(points, now=utc(9999, 1, 1))
    assert decision.keep == (after, before)
    assert decision.remove == (boundary,)
    assert decision.reasons[before] == ("hourly",)
    at_start = after - _HOUR
    window = RetentionPolicy(within="1h").apply(
        [*points, at_start, at_start + timedelta(microseconds=1)], now=utc(9999, 1, 1)
    )
    # latest is `after`; the window starts at after - 1h, exclusive.
    assert at_start in window.remove
    assert len(window.keep) == 4


_HOUR = timedelta(hours=1)


def test_few_pins_among_many_points_with_equal_timestamps() -> None:
    now = utc(2024, 6, 1)
    stamps = [utc(2024, 1, 1) + timedelta(hours=number // 10) for number in range(1000)]
    pinned = {17, 500, 999}
    points = [
        point(f"rp{number}", stamp, pinned_until=now + _HOUR if number in pinned else None)
        for number, stamp in enumerate(stamps)
    ]
    decision = RetentionPolicy(last=1).apply(points, now=now)
    assert decision.keep == (points[990], points[999], points[500], points[17])
    assert [decision.reasons[kept] for kept in decision.keep] == [("last",)] + [("pinned",)] * 3
