"""The clean-point search strategy, pure: the newest good point exactly, within its bounds.

Bisection is checked exhaustively for every damage position up to 64 points and several
parallelisms, and by property for up to 5000 points: the answer is exact, the rounds never exceed
``ceil(log_(m+1)(n+1))``, one point at a time never more than ``ceil(log2(n+1))`` boots, no point is
tested twice and each round hands out at most ``parallel`` points. The scan is checked against any
verdicts at all (the damage may come and go).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover.errors import ConflictError, ValidationError
from vmfailover.model import RecoveryPoint
from vmfailover.policy.clean_point import (
    TRANSITIONS,
    PointSearch,
    SearchEvent,
    SearchState,
    Verdict,
    ceil_log,
    recovery_moments,
)


def run(search: PointSearch, good: Callable[[int], bool]) -> list[tuple[int, ...]]:
    """Drive ``search`` to its end with the oracle ``good``; the rounds it handed out."""
    rounds: list[tuple[int, ...]] = []
    while search.state is SearchState.DECIDING:
        batch = search.propose()
        assert batch, "a deciding search must hand out at least one point"
        rounds.append(batch)
        for index in batch:
            search.record(index, good(index))
    assert search.state is SearchState.FINISHED
    return rounds


def check_bisection(count: int, parallel: int, good_prefix: int) -> None:
    search = PointSearch(count, parallel=parallel)
    rounds = run(search, lambda index: index < good_prefix)
    assert search.answer == (good_prefix - 1 if good_prefix else None)
    tested = [index for batch in rounds for index in batch]
    assert len(tested) == len(set(tested)), "a point was tested twice"
    assert all(0 <= index < count for index in tested)
    assert all(len(batch) <= parallel for batch in rounds)
    assert all(list(batch) == sorted(batch, reverse=True) for batch in rounds)
    assert len(rounds) <= search.max_rounds == ceil_log(parallel + 1, count + 1)
    assert len(tested) <= search.max_tests
    if parallel == 1:
        assert len(tested) <= math.ceil(math.log2(count + 1))
    assert search.rounds == len(rounds)
    assert search.tested == tuple(tested)
    assert not search.warnings


@pytest.mark.parametrize("parallel", [1, 2, 3, 4, 7, 8])
def test_bisection_finds_every_boundary_exactly_within_its_bounds(parallel: int) -> None:
    for count in range(65):
        for good_prefix in range(count + 1):
            check_bisection(count, parallel, good_prefix)


@given(
    count=st.integers(0, 5000),
    parallel=st.integers(1, 64),
    where=st.floats(0, 1),
)
def test_bisection_bounds_hold_for_large_searches(count: int, parallel: int, where: float) -> None:
    check_bisection(count, parallel, round(where * count))


@given(verdicts=st.lists(st.booleans(), max_size=60), parallel=st.integers(1, 9))
def test_a_scan_returns_the_newest_good_point_of_any_verdicts(
    verdicts: list[bool], parallel: int
) -> None:
    search = PointSearch(len(verdicts), parallel=parallel, monotone=False)
    rounds = run(search, lambda index: verdicts[index])
    newest_good = max((i for i, ok in enumerate(verdicts) if ok), default=None)
    assert search.answer == newest_good
    tested = [index for batch in rounds for index in batch]
    # newest first, nothing skipped, nothing older than needed beyond the last round
    assert tested == list(range(len(verdicts) - 1, len(verdicts) - 1 - len(tested), -1))
    assert all(len(batch) <= parallel for batch in rounds)
    assert len(rounds) <= search.max_rounds == -(-len(verdicts) // parallel)
    first_good_round = (
        None if newest_good is None else (len(verdicts) - 1 - newest_good) // parallel
    )
    expected_rounds = search.max_rounds if first_good_round is None else first_good_round + 1
    assert len(rounds) == expected_rounds


@given(verdicts=st.lists(st.booleans(), max_size=80), parallel=st.integers(1, 9))
def test_bisection_on_broken_promises_still_answers_a_point_that_passed(
    verdicts: list[bool], parallel: int
) -> None:
    search = PointSearch(len(verdicts), parallel=parallel)
    run(search, lambda index: verdicts[index])
    answer = search.answer
    if answer is not None:
        assert search.verdicts[answer] is Verdict.GOOD
        newer = [i for i, v in search.verdicts.items() if i > answer]
        assert all(search.verdicts[i] is Verdict.BAD for i in newer)
        assert answer + 1 == len(verdicts) or search.verdicts.get(answer + 1) is Verdict.BAD
    else:
        assert 0 not in search.verdicts or search.verdicts[0] is Verdict.BAD
        assert all(v is Verdict.BAD for v in search.verdicts.values())
    contradicted = any(
        search.verdicts[bad] is Verdict.BAD and search.verdicts[good] is Verdict.GOOD
        for bad in search.verdicts
        for good in search.verdicts
        if bad < good
    )
    assert bool(search.warnings) == contradicted
    if contradicted:
        assert "not monotone" in search.warnings[0]


def test_the_state_table_refuses_events_out_of_turn_naming_event_and_state() -> None:
    search = PointSearch(10)
    assert search.state is SearchState.DECIDING
    with pytest.raises(ConflictError, match=r"'verdict' is not allowed when deciding"):
        search.record(3, True)
    batch = search.propose()
    assert search.state is SearchState.TESTING
    with pytest.raises(ConflictError, match=r"'propose' is not allowed when testing"):
        search.propose()
    with pytest.raises(ConflictError, match=r"point 99 is not waiting"):
        search.record(99, True)
    with pytest.raises(ConflictError, match="no answer yet"):
        _ = search.answer
    search.record(batch[0], "bad")
    search.cancel()
    assert search.state is SearchState.CANCELLED
    with pytest.raises(ConflictError, match=r"'cancel' is not allowed when cancelled"):
        search.cancel()
    assert set(TRANSITIONS) == set(SearchState)
    assert all(set(row) <= set(SearchEvent) for row in TRANSITIONS.values())


def test_no_points_means_nothing_is_good_without_a_test() -> None:
    search = PointSearch(0)
    assert search.finished and search.answer is None and search.max_rounds == 0
    with pytest.raises(ConflictError, match="finished"):
        search.propose()


@pytest.mark.parametrize(
    ("kwargs", "item"),
    [
        ({"count": -1}, "PointSearch count"),
        ({"count": 3.5}, "PointSearch count"),
        ({"count": 5, "parallel": 0}, "PointSearch parallel"),
        ({"count": 5, "parallel": True}, "PointSearch parallel"),
        ({"count": 5, "parallel": 65}, "PointSearch parallel"),
        ({"count": 5, "monotone": "yes"}, "PointSearch monotone"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(kwargs: dict[str, object], item: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PointSearch(**kwargs)  # type: ignore[arg-type]
    assert caught.value.findings[0].item == item


def test_a_verdict_must_be_good_or_bad() -> None:
    search = PointSearch(4)
    index = search.propose()[0]
    with pytest.raises(ValidationError, match="'good', 'bad'"):
        search.record(index, "maybe")
    with pytest.raises(ValidationError):
        search.record(index, 1)  # type: ignore[arg-type]


def test_ceil_log_is_exact() -> None:
    for base in range(2, 12):
        for value in range(3000):
            expected = 0 if value <= 1 else math.ceil(math.log(value, base) - 1e-12)
            assert base ** ceil_log(base, value) >= value
            assert ceil_log(base, value) == 0 or base ** (ceil_log(base, value) - 1) < value
            assert ceil_log(base, value) == expected
    with pytest.raises(ValidationError):
        ceil_log(1, 5)


# --- candidates -----------------------------------------------------------------------------------

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def point(replica: str, minutes: float, number: int) -> RecoveryPoint:
    return RecoveryPoint(f"{replica}-rp{number}", replica, T0 + timedelta(minutes=minutes))


def test_one_vm_has_one_candidate_per_point_and_since_drops_older_ones() -> None:
    points = [point("r-a", 10 * i, i) for i in range(6)]
    found = recovery_moments({"db01": reversed(points)})
    assert [c.points["db01"] for c in found] == points
    assert [c.at for c in found] == [p.created_at for p in points]
    later = recovery_moments({"db01": points}, since=T0 + timedelta(minutes=25))
    assert [c.points["db01"].id for c in later] == ["r-a-rp3", "r-a-rp4", "r-a-rp5"]


def test_a_group_recovers_to_consistent_moments() -> None:
    db = [point("r-db", 0, 0), point("r-db", 10, 1), point("r-db", 20, 2)]
    app = [point("r-app", 2, 0), point("r-app", 12, 1), point("r-app", 13, 2)]
    found = recovery_moments({"db01": db, "app01": app})
    assert [(c.points["db01"].id, c.points["app01"].id) for c in found] == [
        ("r-db-rp0", "r-app-rp0"),  # at 2: the first moment both have a point
        ("r-db-rp1", "r-app-rp0"),  # at 10
        ("r-db-rp1", "r-app-rp1"),  # at 12
        ("r-db-rp1", "r-app-rp2"),  # at 13
        ("r-db-rp2", "r-app-rp2"),  # at 20
    ]
    assert [c.at for c in found] == [T0 + timedelta(minutes=m) for m in (2, 10, 12, 13, 20)]
    assert found[1].oldest == T0 + timedelta(minutes=2)


def test_candidates_refuse_what_is_not_points() -> None:
    with pytest.raises(ValidationError, match="at least one VM"):
        recovery_moments({})
    with pytest.raises(ValidationError, match="is not a RecoveryPoint"):
        recovery_moments({"db01": ["rp-1"]})
    with pytest.raises(ValidationError, match="must be a list"):
        recovery_moments({"db01": "rp-1"})
    with pytest.raises(ValidationError, match="naive"):
        recovery_moments({"db01": []}, since=datetime(2024, 1, 1))
