"""The failure decision, sans IO: its transition table, and what it never does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover import ConflictError, ConnectionState, PowerState, ValidationError
from vmfailover.policy.host_health import (
    TRANSITIONS,
    HealthEvent,
    HostHealth,
    HostObservation,
    HostState,
    WitnessVerdict,
    transition,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def seen(
    at: float, *, answered: bool = True, witness: WitnessVerdict = WitnessVerdict.NONE
) -> HostObservation:
    return HostObservation(
        host="esx1",
        at=T0 + timedelta(seconds=at),
        monotonic=at,
        connection=ConnectionState.CONNECTED if answered else ConnectionState.NOT_RESPONDING,
        power=PowerState.ON,
        witness=witness,
    )


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TRANSITIONS) == set(HostState)
    for moves in TRANSITIONS.values():
        assert HealthEvent.ANSWERED in moves and HealthEvent.REMOVED in moves
    # After the grace period a host is never merely silent again: the table refuses it.
    for state in (HostState.FAILED, HostState.PARTITIONED):
        with pytest.raises(
            ConflictError, match=f"host 'esx1' cannot be silent while it is {state}"
        ):
            transition("esx1", state, HealthEvent.SILENT)


def transitions_markdown() -> str:
    lines = ["| state | event | next state |", "|---|---|---|"]
    for state, moves in TRANSITIONS.items():
        for event, target in moves.items():
            lines.append(f"| `{state.value}` | `{event.value}` | `{target.value}` |")
    return "\n".join(lines)


def test_docs_show_the_transition_table_generated_from_the_code() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "cluster.md"
    assert transitions_markdown() in docs.read_text(encoding="utf-8")


def test_the_grace_period_runs_from_the_first_silent_look() -> None:
    health = HostHealth(grace=30)
    assert health.observe(seen(0)) is None  # healthy and answering: no news
    suspect = health.observe(seen(10, answered=False))
    assert suspect is not None and suspect.state is HostState.SUSPECT
    assert health.observe(seen(20, answered=False)) is None  # nothing new
    assert not health.needs_witness("esx1", 39.9)
    assert health.needs_witness("esx1", 40)
    failed = health.observe(seen(40, answered=False))
    assert failed is not None and failed.declared_failed and failed.silent_for == 30
    assert health.observe(seen(45, answered=False)) is None
    back = health.observe(seen(50))
    assert back is not None and back.state is HostState.HEALTHY
    assert health.silent_for("esx1", 60) == 0


def test_a_grace_of_zero_decides_at_the_first_silent_look() -> None:
    health = HostHealth(grace=0)
    assert health.needs_witness("never-seen", 0)
    decision = health.observe(seen(0, answered=False, witness=WitnessVerdict.DOWN))
    assert decision is not None and decision.state is HostState.FAILED


@pytest.mark.parametrize("grace", [-1, float("nan"), float("inf"), "30", True])
def test_bad_grace_periods_are_refused(grace: object) -> None:
    with pytest.raises(ValidationError, match="grace"):
        HostHealth(grace)  # type: ignore[arg-type]


looks = st.lists(
    st.tuples(
        st.floats(min_value=0.5, max_value=20),  # seconds since the previous look
        st.booleans(),  # answered
        st.sampled_from(list(WitnessVerdict)),
    ),
    max_size=40,
)


@given(looks, st.floats(min_value=0, max_value=60))
def test_a_host_is_declared_failed_only_when_the_grace_period_and_the_witness_agree(
    steps: list[tuple[float, bool, WitnessVerdict]], grace: float
) -> None:
    health = HostHealth(grace)
    now = 0.0
    silent_since: float | None = None
    for gap, answered, verdict in steps:
        now += gap
        silent_since = None if answered else (now if silent_since is None else silent_since)
        decision = health.observe(seen(now, answered=answered, witness=verdict))
        state = health.state("esx1")
        if answered:
            assert state is HostState.HEALTHY
            continue
        assert silent_since is not None
        past_grace = now - silent_since >= grace
        if decision is not None and decision.declared_failed:
            assert past_grace
            assert verdict in (WitnessVerdict.NONE, WitnessVerdict.DOWN)
        if past_grace and verdict in (WitnessVerdict.NONE, WitnessVerdict.DOWN):
            assert state is HostState.FAILED
        if state is HostState.PARTITIONED:
            assert verdict is not WitnessVerdict.DOWN


@given(st.lists(st.floats(min_value=0.5, max_value=20), max_size=30), st.floats(0, 60))
def test_a_partition_the_witness_sees_through_is_never_a_failure(
    gaps: list[float], grace: float
) -> None:
    health = HostHealth(grace)
    now = 0.0
    for gap in gaps:
        now += gap
        health.observe(seen(now, answered=False, witness=WitnessVerdict.ALIVE))
        assert health.state("esx1") in (HostState.SUSPECT, HostState.PARTITIONED)
