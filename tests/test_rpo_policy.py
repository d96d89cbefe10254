"""RPO classification and compliance over a window: pure arithmetic, checked by brute force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover import RPOState, ValidationError, classify_rpo, rpo_compliance

TARGET = timedelta(minutes=15)
START = datetime(2024, 6, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "state"),
    [
        (None, RPOState.UNPROTECTED),
        (timedelta(0), RPOState.COMPLIANT),
        (timedelta(minutes=14, seconds=59), RPOState.COMPLIANT),
        (timedelta(minutes=15), RPOState.EXCEEDED),
        (timedelta(minutes=30), RPOState.EXCEEDED),
        (timedelta(minutes=30, microseconds=1), RPOState.SEVERE),
        (timedelta(minutes=60), RPOState.SEVERE),
        (timedelta(minutes=60, microseconds=1), RPOState.CRITICAL),
        (timedelta(days=30), RPOState.CRITICAL),
    ],
)
def test_the_state_boundaries(age: timedelta | None, state: RPOState) -> None:
    assert classify_rpo(age, TARGET) is state
    assert state.breached is (state is not RPOState.COMPLIANT)


def test_the_longest_durations_classify_without_overflow() -> None:
    """2x and 4x the longest target are past what a timedelta holds: still the right state."""
    longest = timedelta.max
    assert classify_rpo(longest, longest) is RPOState.EXCEEDED
    assert classify_rpo(longest, longest / 3) is RPOState.SEVERE
    assert classify_rpo(longest, longest / 5) is RPOState.CRITICAL
    assert classify_rpo(longest - timedelta(microseconds=1), longest) is RPOState.COMPLIANT


def test_a_target_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        classify_rpo(timedelta(0), timedelta(0))


def test_compliance_of_a_simple_history() -> None:
    end = START + timedelta(hours=1)
    # Points at 0 and 15 minutes cover [0, 30); nothing after: met half the hour.
    points = [START, START + timedelta(minutes=15)]
    assert rpo_compliance(points, TARGET, START, end) == pytest.approx(0.5)
    # A point before the window still covers its start.
    assert rpo_compliance([START - timedelta(minutes=5)], TARGET, START, end) == pytest.approx(
        10 / 60
    )
    assert rpo_compliance([], TARGET, START, end) == 0.0
    assert rpo_compliance([end + timedelta(minutes=1)], TARGET, START, end) == 0.0
    with pytest.raises(ValidationError):
        rpo_compliance(points, TARGET, end, START)


@given(
    st.lists(st.integers(min_value=-30, max_value=130), max_size=12),
    st.integers(min_value=1, max_value=40),
)
def test_compliance_matches_sampling_every_minute(offsets: list[int], target_minutes: int) -> None:
    """At each minute t of the window the RPO is met iff some point lies in (t - target, t]."""
    target = timedelta(minutes=target_minutes)
    points = [START + timedelta(minutes=offset) for offset in offsets]
    end = START + timedelta(minutes=100)
    met = 0
    for minute in range(100):  # each sample stands for [t, t + 1 minute)
        t = START + timedelta(minutes=minute)
        if any(t - target < point <= t for point in points):
            met += 1
    assert rpo_compliance(points, target, START, end) == pytest.approx(met / 100)
