"""Crash at every point, then resume: the end state is the uninterrupted run's, with no VM powered
on twice, none started before what it depends on was ready, and no split brain.

For each kind (test, planned, regular) the plan of :mod:`journal_support` (4 lab VMs, a chain with
a branch, every VM re-addressed) first runs uninterrupted. Then, on a fresh lab each time, the
orchestrator crashes (:class:`SimulatedCrash`, which nothing in the engine catches):

* **before** the n-th backend call, for every n from 1 to the number of calls the uninterrupted
  run made (``backend.faults.crash_at``: the call never acts, reads included), and
* **after** the m-th changing call acted, for every m (the call acted, its outcome may be lost),

its journal writer stops as a dead process would (what it had not committed is lost), and a new
runner over a new connection to the same journal file resumes the run. A crash before the run was
journaled (during its pre-flight) has touched nothing: the plan simply starts again. Each test
says how many crash points it covered.
"""

from __future__ import annotations

from collections.abc import Iterator

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
from vmfailover.engine.results import RunReport, RunResult
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.testing import SimulatedCrash

#: Readiness is polled every this many lab seconds: fewer reads, the same promises.
POLL = 15.0


@pytest.fixture(scope="module")
def folder() -> Iterator[object]:
    with journal_folder() as path:
        yield path


def ready_times(report: RunReport) -> dict[str, object]:
    return {result.vm: result.ready_at for result in report.vms}


def _uninterrupted(kind: str, folder: object) -> tuple[RunReport, EndState, int, int]:
    backend = scene(kind)
    plan = small_plan()
    observed = Observed(backend, plan)
    before = backend.faults.calls
    with SQLiteJournal(folder / f"{kind}-clean.db") as journal:  # type: ignore[operator]
        runner = Runner(observed, journal=journal, poll_interval=POLL)
        report = runner.failover(plan, kind=kind)
        runner.close()
    assert report.result is RunResult.SUCCEEDED, report
    assert observed.check(ready_times(report)) == []
    calls = backend.faults.calls - before
    return report, end_state(backend, lambda: [report.run_id]), calls, observed.changing_calls


def _crash_and_resume(
    kind: str, folder: object, label: str, *, before_call: int | None, after_change: int | None
) -> tuple[str, list[str], EndState]:
    """One crash point: how the run went on ('resumed' or 'restarted'), the problems seen and
    the end state (before a test run's cleanup, which is checked here)."""
    backend = scene(kind)
    plan = small_plan()
    observed = Observed(backend, plan)
    path = folder / f"{kind}-{label}.db"  # type: ignore[operator]
    if before_call is not None:
        backend.faults.crash_at(backend.faults.calls + before_call)
    observed.crash_after = after_change
    journal = SQLiteJournal(path)
    crashed = Runner(observed, journal=journal, poll_interval=POLL)
    with pytest.raises(SimulatedCrash):
        crashed.failover(plan, kind=kind)
    assert crashed._writer is not None
    crashed._writer.abandon()  # the process is gone: what it had not committed is lost
    backend.faults.crash_at(None)
    observed.crash_after = None
    with SQLiteJournal(path) as reopened:
        runner = Runner(observed, journal=reopened, poll_interval=POLL)
        runs = reopened.runs()
        if runs:
            assert len(runs) == 1 and runs[0].interrupted, runs
            how = "resumed"
            run = runner.resume(runs[0].run_id, background=False)
        else:  # crashed in its pre-flight, before anything was touched
            how = "restarted"
            run = runner.start(plan, kind=kind, background=False)
        report = run.wait()
        problems = []
        if report.result is not RunResult.SUCCEEDED:
            problems.append(f"the run ended {report.result.value}: {report}")
        history = reopened.report(report.run_id)
        if history.summary.interrupted or history.summary.result is not RunResult.SUCCEEDED:
            problems.append(f"the journal says {history.summary}")
        problems += observed.check(ready_times(report))
        state = end_state(backend, lambda: [report.run_id])
        if kind == "test":
            cleaned = runner.cleanup(run)
            assert cleaned.cleanup is not None
            if not cleaned.cleanup.restored:
                problems.append(f"cleanup did not restore: {cleaned.cleanup.summary()}")
        runner.close()
    return how, problems, state


@pytest.mark.parametrize("kind", ["test", "planned", "regular"])
def test_crash_at_every_point_then_resume(kind: str, folder: object, capsys: object) -> None:
    report, expected, calls, changes = _uninterrupted(kind, folder)
    assert calls > 20 and changes >= 4 * len(report.vms) - 4
    counted = {"resumed": 0, "restarted": 0}
    failures: list[str] = []
    points = [(f"before-{n}", n, None) for n in range(1, calls + 1)]
    points += [(f"after-{m}", None, m) for m in range(1, changes + 1)]
    for label, before_call, after_change in points:
        how, problems, state = _crash_and_resume(
            kind, folder, label, before_call=before_call, after_change=after_change
        )
        counted[how] += 1
        problems += differences(expected, state)
        failures += [f"crash {label}: {problem}" for problem in problems]
    assert failures == [], "\n".join(failures[:20])
    assert counted["resumed"] + counted["restarted"] == calls + changes
    with capsys.disabled():  # type: ignore[attr-defined]
        print(
            f"\n{kind}: {calls + changes} crash points covered ({calls} before a backend call, "
            f"{changes} after a changing call); {counted['resumed']} resumed from the journal, "
            f"{counted['restarted']} crashed in the pre-flight and started again"
        )
