"""Schedules: intervals, daily times and cron lines, their slots, and when a job is due."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover import Schedule, ValidationError
from vmfailover.policy.schedule import format_elapsed, parse_elapsed

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2024, 6, 3, 10, 7, 30, tzinfo=UTC)

instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


# --- elapsed durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("1h30m", 5400), ("90s", 90), ("1d", 86400), ("2w", 1_209_600), ("30m1h", 5400)],
)
def test_elapsed_durations_parse(text: str, seconds: int) -> None:
    assert parse_elapsed(text, "every") == timedelta(seconds=seconds)
    assert parse_elapsed(format_elapsed(timedelta(seconds=seconds)), "x").total_seconds() == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0m", "not a positive duration"),
        ("", "is empty"),
        ("15", "a number without a unit"),
        ("15y", "unknown unit 'y'"),
        ("1m1m", "appears twice"),
        ("-5m", "expected a number"),
        (float("nan"), "not a duration"),
        (float("inf"), "not a duration"),
        (-3, "not a positive duration"),
        (True, "expected a duration"),
        ([15], "expected a duration"),
        ("6000w", "longer than a century"),
    ],
)
def test_bad_durations_are_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        parse_elapsed(value, "schedule.every")
    assert caught.value.findings[0].item == "schedule.every"


# --- intervals -----------------------------------------------------------------------------------


def test_interval_slots_are_whole_multiples_since_the_epoch() -> None:
    schedule = Schedule(every="15m")
    assert schedule.next_after(T0) == datetime(2024, 6, 3, 10, 15, tzinfo=UTC)
    assert schedule.next_after(datetime(2024, 6, 3, 10, 15, tzinfo=UTC)) == datetime(
        2024, 6, 3, 10, 30, tzinfo=UTC
    )
    assert str(schedule) == "every 15m"


@given(instants, st.integers(min_value=1, max_value=10**6))
def test_the_next_interval_slot_is_the_first_multiple_after(
    instant: datetime, seconds: int
) -> None:
    schedule = Schedule(every=timedelta(seconds=seconds))
    slot = schedule.next_after(instant)
    assert slot is not None
    assert instant < slot <= instant + timedelta(seconds=seconds)
    assert (slot - datetime(1970, 1, 1, tzinfo=UTC)) % timedelta(seconds=seconds) == timedelta(0)


def test_slots_lists_every_slot_in_a_span() -> None:
    start = datetime(2024, 6, 3, tzinfo=UTC)
    slots = list(Schedule(every="15m").slots(start, start + timedelta(hours=1)))
    assert slots == [start + timedelta(minutes=15 * k) for k in (1, 2, 3, 4)]


# --- daily times ---------------------------------------------------------------------------------


def test_daily_times_in_a_zone() -> None:
    schedule = Schedule(daily=["14:30", "02:00"], tz="Europe/Berlin")
    assert schedule.daily == (time(2, 0), time(14, 30))
    # 10:07 UTC is 12:07 in Berlin (CEST): next is 14:30 CEST = 12:30 UTC.
    assert schedule.next_after(T0) == datetime(2024, 6, 3, 12, 30, tzinfo=UTC)
    assert schedule.next_after(datetime(2024, 6, 3, 12, 30, tzinfo=UTC)) == datetime(
        2024, 6, 4, 0, 0, tzinfo=UTC
    )
    assert str(schedule) == "daily at 02:00, 14:30 (Europe/Berlin)"


def test_a_daily_time_the_clocks_skip_runs_as_much_later_and_a_repeated_time_runs_once() -> None:
    schedule = Schedule(daily="02:30", tz="Europe/Berlin")
    # 2024-03-31: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist: run at 03:30 CEST.
    spring = schedule.next_after(datetime(2024, 3, 30, 12, tzinfo=UTC))
    assert spring == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    # 2024-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice: run the first time.
    autumn = schedule.next_after(datetime(2024, 10, 26, 12, tzinfo=UTC))
    assert autumn == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    assert schedule.next_after(autumn) == datetime(2024, 10, 28, 1, 30, tzinfo=UTC)


@given(instants, st.lists(st.times(), min_size=1, max_size=4))
def test_daily_slots_are_the_next_wall_clock_time(instant: datetime, times: list[time]) -> None:
    schedule = Schedule(daily=times, tz="Europe/Berlin")
    slot = schedule.next_after(instant)
    assert slot is not None
    assert instant < slot <= instant + timedelta(days=1, hours=1)
    wall = slot.astimezone(BERLIN).time().replace(microsecond=0)
    # Either the time itself, or (after a spring-forward gap) one hour later than a listed time.
    listed = {moment.replace(microsecond=0) for moment in schedule.daily}
    shifted = {
        (datetime.combine(slot.date(), moment) + timedelta(hours=1)).time() for moment in listed
    }
    assert wall in listed | shifted


@pytest.mark.parametrize("value", ["25:00", "12:60", "7", "noon", "12:00:61", 1200, []])
def test_bad_daily_times_are_refused(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Schedule(daily=value)  # type: ignore[arg-type]
    assert caught.value.findings[0].item == "schedule.daily"


# --- cron ----------------------------------------------------------------------------------------


def test_cron_lines_follow_their_zone() -> None:
    schedule = Schedule(cron="0 2 * * 1-5", tz="Europe/Berlin")
    # Monday 2024-06-03 10:07 UTC: next is Tuesday 02:00 CEST = Monday 24:00 UTC.
    assert schedule.next_after(T0) == datetime(2024, 6, 4, 0, 0, tzinfo=UTC)
    assert str(schedule) == "cron '0 2 * * 1-5' (Europe/Berlin)"


def test_cron_macros() -> None:
    assert Schedule(cron="@hourly").next_after(T0) == datetime(2024, 6, 3, 11, tzinfo=UTC)
    assert Schedule(cron="@daily").cron == "0 0 * * *"


@given(instants)
def test_every_15_minutes_in_cron_equals_the_interval(instant: datetime) -> None:
    assert Schedule(cron="*/15 * * * *").next_after(instant) == Schedule(every="15m").next_after(
        instant
    )


@pytest.mark.parametrize(
    "line", ["61 * * * *", "* * *", "0 0 31 2 *", "@reboot", "", "* * * * * * *"]
)
def test_invalid_cron_lines_are_refused(line: str) -> None:
    with pytest.raises(ValidationError, match="cron") as caught:
        Schedule(cron=line)
    assert caught.value.findings[0].item == "schedule.cron"


# --- choosing and due ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{}, {"every": "15m", "cron": "* * * * *"}, {"every": "1h", "daily": "02:00"}]
)
def test_exactly_one_kind_of_schedule(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of every, daily or cron"):
        Schedule(**kwargs)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Schedule(every="1h", tz="Mars/Olympus")
    assert caught.value.findings[0].item == "schedule.tz"


def test_a_mapping_names_its_owner_in_errors() -> None:
    assert Schedule.of({"every": "15m"}, "job 'x'") == Schedule(every="15m")
    with pytest.raises(ValidationError) as caught:
        Schedule.of({"every": "0m"}, "job 'x'")
    assert caught.value.findings[0].item == "job 'x': schedule.every"
    with pytest.raises(ValidationError, match="unknown key"):
        Schedule.of({"evry": "15m"}, "job 'x'")


def test_due_once_a_slot_has_passed_however_many() -> None:
    schedule = Schedule(every="15m")
    last = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
    assert schedule.due(None, last)
    assert not schedule.due(last, last + timedelta(minutes=14, seconds=59))
    assert schedule.due(last, last + timedelta(minutes=15))
    assert schedule.due(last, last + timedelta(hours=9))
