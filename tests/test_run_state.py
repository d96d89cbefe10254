"""The run's life, exhaustively from its table: every action in every state of every kind."""

from __future__ import annotations

import pytest

from vmfailover.engine.run_state import (
    TRANSITIONS,
    RunAction,
    RunState,
    RunStateMachine,
)
from vmfailover.errors import ConflictError
from vmfailover.model import FailoverKind


def machine_in(kind: FailoverKind, state: RunState) -> RunStateMachine:
    machine = RunStateMachine("run-1", kind)
    machine._state = state  # placing it in the state under test
    return machine


@pytest.mark.parametrize("kind", list(FailoverKind))
@pytest.mark.parametrize("state", list(RunState))
@pytest.mark.parametrize("action", list(RunAction))
def test_every_action_in_every_state(
    kind: FailoverKind, state: RunState, action: RunAction
) -> None:
    machine = machine_in(kind, state)
    expected = TRANSITIONS[kind][state].get(action)
    if expected is not None:
        assert machine.fire(action) == (state, expected)
        assert machine.state is expected
        return
    with pytest.raises(ConflictError) as refused:
        machine.fire(action)
    message = str(refused.value)
    assert "run-1" in message
    assert state.value.replace("_", " ") in message
    assert action.value.replace("_", " ") in message
    for allowed in TRANSITIONS[kind][state]:
        assert allowed.value.replace("_", " ") in message
    assert machine.state is state


def test_only_test_runs_are_cleaned_up() -> None:
    for kind in FailoverKind:
        for state in (RunState.FAILED_OVER, RunState.PARTIAL, RunState.FAILED):
            can = machine_in(kind, state).can(RunAction.CLEAN_UP)
            assert can is (kind is FailoverKind.TEST)


def test_every_state_is_reachable_from_pending() -> None:
    for kind in FailoverKind:
        seen, todo = {RunState.PENDING}, [RunState.PENDING]
        while todo:
            for target in TRANSITIONS[kind][todo.pop()].values():
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        expected = set(RunState) - (
            {RunState.CLEANED_UP} if kind is not FailoverKind.TEST else set()
        )
        assert seen == expected
