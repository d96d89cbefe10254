"""Crash at every point of an undo and of a failback, then resume: the end state is the
uninterrupted one's, no VM is powered on twice and no split brain happens.

On the plan of :mod:`journal_support` (4 lab VMs, a chain with a branch) a planned failover first
runs uninterrupted. Then the action under test runs: an **undo**, or a **failback** (reversing
replication, the failback run, and that run's commit). Uninterrupted first, to count the backend
calls it makes; then, on a fresh lab each time, for every n from 1 to that count, the
orchestrator crashes at the n-th backend call of the action (``backend.faults.crash_at``: the
call never acts), its journal writer stops as a dead process would, and a new runner over a new
connection to the same journal file takes over: :meth:`Runner.resume` continues whatever was in
flight (the journal's newest run, if it is committing, undoing, failing back or interrupted),
and what the crash left undone is then done on runs :meth:`Runner.attach` gives (a crash before
anything of the action was durable leaves the run as it was). Each test says how many crash
points it covered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from journal_support import (
    EndState,
    Observed,
    differences,
    end_state,
    journal_folder,
    scene,
    small_plan,
)
from vmfailover import Runner
from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.run_state import RunState
from vmfailover.engine.runner import Run
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.testing import SimulatedCrash

POLL = 15.0
IN_FLIGHT = ("committing", "undoing", "failing_back")


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with journal_folder() as path:
        yield path


def _failed_over(path: Path) -> tuple[MemoryBackend, Observed, SQLiteJournal, Runner, Run]:
    backend = scene("planned")
    plan = small_plan()
    observed = Observed(backend, plan)
    journal = SQLiteJournal(path)
    runner = Runner(observed, journal=journal, poll_interval=POLL)
    run = runner.start(plan, kind="planned", background=False)
    run.wait()
    assert run.state is RunState.FAILED_OVER, run.report
    return backend, observed, journal, runner, run


def _act(action: str, run: Run) -> None:
    if action == "undo":
        run.undo()
    else:
        back = run.failback(background=False)
        back.commit()


def _finish(action: str, runner: Runner, run_id: str) -> Run:
    """What the crash left undone, on the journal's runs: the run as the action leaves it."""
    run = runner.attach(run_id)
    if action == "undo":
        if run.state is RunState.FAILED_OVER:  # nothing of the undo was durable
            run.undo()
        return run
    if run.state is RunState.FAILED_OVER:
        run.failback(background=False)
    back = run.failback_run
    assert back is not None, f"run {run_id} is {run.state.value} without a failback run"
    if back.state is RunState.FAILED_OVER:
        back.commit()
    return run


def _problems(backend: MemoryBackend, observed: Observed) -> list[str]:
    problems = list(observed.violations)
    problems += [
        f"{vm_id}: powered on {count} times"
        for vm_id, count in observed.power_ons.items()
        if count > 1 or observed.transitions[vm_id] > 1
    ]
    problems += [f"split brain: {brain}" for brain in backend.split_brains()]
    return problems


def _expected_states(action: str) -> tuple[RunState, RunState | None]:
    if action == "undo":
        return RunState.UNDONE, None
    return RunState.FAILED_BACK, RunState.COMMITTED


def _check_journal(action: str, journal: SQLiteJournal, run_id: str) -> list[str]:
    """The journal's own report shows the action's result (as `vmfailover report` prints it)."""
    history = journal.report(run_id)
    report = history.report
    problems = []
    if report is None:
        return [f"the journal holds no report of {run_id}"]
    if action == "undo":
        if report.undo is None or not report.undo.restored:
            problems.append(f"the journal's report shows no finished undo: {report.undo}")
    else:
        backs = [s for s in journal.runs() if s.run_id != run_id]
        if len(backs) != 1:
            problems.append(f"expected one failback run in the journal, found {backs}")
        else:
            back = journal.report(backs[0].run_id).report
            if back is None or back.commit is None or not back.commit.done:
                problems.append("the journal's report of the failback run shows no commit")
            elif back.failback is None or back.failback.of_run != run_id:
                problems.append("the failback run's report does not name the run it fails back")
    expected, _ = _expected_states(action)
    if history.summary.state != expected.value:
        problems.append(f"the journal says {run_id} is {history.summary.state}")
    return problems


def _uninterrupted(action: str, folder: Path) -> tuple[EndState, int]:
    backend, observed, journal, runner, run = _failed_over(folder / f"{action}-clean.db")
    before = backend.faults.calls
    _act(action, run)
    calls = backend.faults.calls - before
    runner.close()
    assert _problems(backend, observed) == []
    assert _check_journal(action, journal, run.id) == []
    journal.close()
    return end_state(backend, lambda: [run.id]), calls


def _crash_and_resume(action: str, folder: Path, n: int) -> tuple[str, list[str], EndState]:
    path = folder / f"{action}-{n}.db"
    backend, observed, journal, crashed, run = _failed_over(path)
    run_id = run.id
    backend.faults.crash_at(backend.faults.calls + n)
    with pytest.raises(SimulatedCrash):
        _act(action, run)
    assert crashed._writer is not None
    crashed._writer.abandon()  # the process is gone: what it had not committed is lost
    journal.close()
    backend.faults.crash_at(None)
    del run, crashed
    with SQLiteJournal(path) as reopened:
        runner = Runner(observed, journal=reopened, poll_interval=POLL)
        newest = reopened.runs()[-1]
        how = "attached"
        if newest.interrupted or newest.state in IN_FLIGHT:
            how = "resumed"
            resumed = runner.resume(newest.run_id, background=False)
            if resumed.state in (RunState.VALIDATING, RunState.RUNNING):
                resumed.wait()
        run = _finish(action, runner, run_id)
        problems = _problems(backend, observed)
        wanted, back_wanted = _expected_states(action)
        if run.state is not wanted:
            problems.append(f"the run ended {run.state.value}: {run.report}")
        if back_wanted is not None and (
            run.failback_run is None or run.failback_run.state is not back_wanted
        ):
            problems.append(f"the failback run is {run.failback_run!r}")
        runner.close()
        problems += _check_journal(action, reopened, run_id)
    return how, problems, end_state(backend, lambda: [run_id])


@pytest.mark.parametrize("action", ["undo", "failback"])
def test_crash_at_every_point_of_aftercare_then_resume(
    action: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected, calls = _uninterrupted(action, folder)
    assert calls > 10
    counted = {"resumed": 0, "attached": 0}
    failures: list[str] = []
    for n in range(1, calls + 1):
        how, problems, state = _crash_and_resume(action, folder, n)
        counted[how] += 1
        problems += differences(expected, state)
        failures += [f"crash before call {n}: {problem}" for problem in problems]
    assert failures == [], "\n".join(failures[:20])
    assert counted["resumed"] > counted["attached"]
    with capsys.disabled():
        print(
            f"\n{action}: {calls} crash points covered (before each backend call of the "
            f"{action}); {counted['resumed']} resumed from the journal, {counted['attached']} "
            "crashed before anything of it was durable and were simply done again"
        )
