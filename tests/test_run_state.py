"""The run's life, exhaustively from its table: every action in every state of every kind."""

from __future__ import annotations

import pytest

from vmfailover.engine.run_state import (
    FAILBACK_TRANSITIONS,
    TRANSITIONS,
    RunAction,
    RunState,
    RunStateMachine,
    table_for,
)
from vmfailover.errors import ConflictError
from vmfailover.model import FailoverKind

#: Every life a run can have: each kind, and a failback (a planned failover of its own kind).
LIVES = [(kind, False) for kind in FailoverKind] + [(FailoverKind.PLANNED, True)]


def machine_in(kind: FailoverKind, state: RunState, *, failback: bool = False) -> RunStateMachine:
    machine = RunStateMachine("run-1", kind, failback=failback)
    machine._state = state  # placing it in the state under test
    return machine


@pytest.mark.parametrize(("kind", "failback"), LIVES)
@pytest.mark.parametrize("state", list(RunState))
@pytest.mark.parametrize("action", list(RunAction))
def test_every_action_in_every_state(
    kind: FailoverKind, failback: bool, state: RunState, action: RunAction
) -> None:
    machine = machine_in(kind, state, failback=failback)
    expected = table_for(kind, failback=failback)[state].get(action)
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
    for allowed in table_for(kind, failback=failback)[state]:
        assert allowed.value.replace("_", " ") in message
    if not table_for(kind, failback=failback)[state]:
        assert "nothing more can happen to it" in message
    assert machine.state is state


def test_only_test_runs_are_cleaned_up() -> None:
    for kind in FailoverKind:
        for state in (RunState.FAILED_OVER, RunState.PARTIAL, RunState.FAILED):
            can = machine_in(kind, state).can(RunAction.CLEAN_UP)
            assert can is (kind is FailoverKind.TEST)


_AFTERCARE = {
    RunState.COMMITTING,
    RunState.COMMITTED,
    RunState.UNDOING,
    RunState.UNDONE,
}
_FAILBACK = {RunState.FAILING_BACK, RunState.FAILED_BACK}


@pytest.mark.parametrize(("kind", "failback"), LIVES)
def test_what_each_life_can_reach_from_pending(kind: FailoverKind, failback: bool) -> None:
    table = table_for(kind, failback=failback)
    seen, todo = {RunState.PENDING}, [RunState.PENDING]
    while todo:
        for target in table[todo.pop()].values():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    if kind is FailoverKind.TEST:
        expected = set(RunState) - _AFTERCARE - _FAILBACK
    elif failback:
        expected = set(RunState) - {RunState.CLEANED_UP} - _FAILBACK
    else:
        expected = set(RunState) - {RunState.CLEANED_UP}
    assert seen == expected


def test_the_illegal_transitions_the_issue_names_are_refused_with_what_is_allowed() -> None:
    """Undo after commit, failback before failover, cleanup of a planned run, commit of a test."""
    cases = [
        (FailoverKind.PLANNED, RunState.COMMITTED, RunAction.UNDO, "committed", "fail back"),
        (FailoverKind.REGULAR, RunState.RUNNING, RunAction.FAIL_BACK, "running", "cancel"),
        (FailoverKind.PLANNED, RunState.PENDING, RunAction.FAIL_BACK, "pending", "validate"),
        (FailoverKind.PLANNED, RunState.FAILED_OVER, RunAction.CLEAN_UP, "failed over", "commit"),
        (FailoverKind.TEST, RunState.FAILED_OVER, RunAction.COMMIT, "failed over", "clean up"),
    ]
    for kind, state, action, state_words, allowed in cases:
        with pytest.raises(ConflictError) as refused:
            machine_in(kind, state).fire(action)
        message = str(refused.value)
        assert f"is {state_words}: it cannot {action.value.replace('_', ' ')}" in message
        assert allowed in message.split("allowed:", 1)[1]


def test_a_failback_is_committed_or_undone_but_not_failed_back_in_turn() -> None:
    for state in RunState:
        assert RunAction.FAIL_BACK not in FAILBACK_TRANSITIONS[state]
    with pytest.raises(ConflictError, match=r"\(failback \(planned failover\)\) is committed"):
        machine_in(FailoverKind.PLANNED, RunState.COMMITTED, failback=True).fire(
            RunAction.FAIL_BACK
        )


def test_commit_and_undo_may_be_repeated_while_under_way_and_not_after() -> None:
    for kind in (FailoverKind.PLANNED, FailoverKind.REGULAR):
        assert TRANSITIONS[kind][RunState.COMMITTING][RunAction.COMMIT] is RunState.COMMITTING
        assert TRANSITIONS[kind][RunState.UNDOING][RunAction.UNDO] is RunState.UNDOING
        assert RunAction.COMMIT not in TRANSITIONS[kind][RunState.COMMITTED]
        assert RunAction.UNDO not in TRANSITIONS[kind][RunState.UNDONE]
        assert not TRANSITIONS[kind][RunState.UNDONE]
        assert not TRANSITIONS[kind][RunState.FAILED_BACK]
