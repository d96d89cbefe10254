"""``vmfailover commit``, ``undo`` and ``failback``: what follows a planned or regular failover,
from the command line, in a later process than the one that ran it.

A production run that has ended is *uncommitted*. ``commit RUN`` makes it permanent (its
replicas' failover cannot be undone any more); ``undo RUN`` reverts it (replicas replicating
again, sources the run stopped started again in start order, proved against the inventory the
journal recorded before the run); ``failback RUN`` brings a committed run home (replication
reversed, only the changed blocks move, a planned failover back that is a run of its own with
its own commit and undo). Each attaches the journaled run (:meth:`Runner.attach`) on the
backend it ran on and acts through it, so every backend call is journaled and ``report RUN``
shows the result afterwards.

What cannot be done is refused before the backend is touched, naming the run and saying what
can be done instead (our ConflictError, exit 3): a test run (cleaned up, not committed), a run
still running in another process or interrupted (resume it), an undo after the commit, a
failback before it. Exit 0 when the action finished; 4 when a commit or undo could not finish
(it says what; run it again); a failback exits as its run does (0, 4, 5, 6).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from vmfailover.cli.backends import LAB_BACKEND, opened_backend
from vmfailover.cli.commands import load_plan
from vmfailover.cli.journal import journal_spec, open_journal
from vmfailover.cli.output import Output
from vmfailover.cli.show import show_report
from vmfailover.engine.journal import Journal, RunSummary
from vmfailover.engine.results import RunResult
from vmfailover.engine.resumption import live_holder
from vmfailover.engine.run_state import RunState
from vmfailover.engine.runner import Run, Runner
from vmfailover.errors import ConflictError
from vmfailover.model import FailoverKind
from vmfailover.plan import FailoverPlan

__all__ = ["EXIT_UNFINISHED", "commit_command", "failback_command", "undo_command"]

EXIT_UNFINISHED = 4
"""A commit or undo could not finish (it says what): run the same command again."""

_DONE = {"commit": "committed", "undo": "undone", "failback": "failed back"}

_S = RunState

#: Per action, the states it is refused in with words of ours (``{run}``: the run's id,
#: ``{back}``: its failback run's); any other refusal is the run's state table's own.
_REFUSALS: Mapping[str, Mapping[RunState, str]] = {
    "commit": {
        _S.COMMITTED: "run {run} is committed already; to bring its VMs home: "
        "vmfailover failback {run}",
        _S.UNDOING: "run {run} is being undone, not committed: finish the undo with "
        "vmfailover undo {run}",
        _S.UNDONE: "run {run} was undone: no failover of it is left to commit",
        _S.FAILING_BACK: "run {run} is failing back: commit its failback run instead "
        "(vmfailover commit {back})",
        _S.FAILED_BACK: "run {run} has failed back already: nothing of it is left to commit",
    },
    "undo": {
        _S.COMMITTED: "run {run} is committed: a committed failover can no longer be undone; to "
        "bring its VMs home: vmfailover failback {run}",
        _S.COMMITTING: "run {run} is being committed (a commit that was cut off): it can no "
        "longer be undone; finish the commit with vmfailover commit {run}",
        _S.UNDONE: "run {run} is undone already: nothing of it is left to undo",
        _S.FAILING_BACK: "run {run} is failing back, and its failover is committed: to give "
        "production back to the recovery site, undo its failback run (vmfailover undo {back})",
        _S.FAILED_BACK: "run {run} has failed back already: nothing of it is left to undo",
    },
    "failback": {
        _S.FAILED_OVER: "run {run} is not committed yet (failed_over): commit it first "
        "(vmfailover commit {run}); a failback needs the failover made permanent",
        _S.PARTIAL: "run {run} is not committed yet (partial: not every VM failed over): "
        "undo it (vmfailover undo {run}), or commit it and fail over the rest first",
        _S.FAILED: "run {run} failed: no VM of it runs at the recovery site; undo it "
        "(vmfailover undo {run})",
        _S.CANCELLED: "run {run} was cancelled: undo it (vmfailover undo {run})",
        _S.COMMITTING: "run {run} is being committed (a commit that was cut off): finish it "
        "with vmfailover commit {run}, then fail back",
        _S.UNDOING: "run {run} is being undone: finish the undo with vmfailover undo {run}",
        _S.UNDONE: "run {run} was undone: its VMs run at their original site already",
        _S.FAILED_BACK: "run {run} has failed back already (see vmfailover report {run})",
    },
}


def commit_command(
    output: Output,
    run_id: str,
    *,
    backend: str = LAB_BACKEND,
    lab_file: Path | None = None,
    journal: str | os.PathLike[str] | None = None,
    plan_path: Path | None = None,
    as_json: bool = False,
) -> int:
    """Make journaled run ``run_id``'s failover permanent. Exit 0 when every replica it failed
    over is committed (a failback run's replication resumed in its first direction too); 4 when
    something is left (shown: run it again)."""
    plan = load_plan(plan_path) if plan_path is not None else None
    with _attached_run(run_id, "commit", backend, lab_file, journal, plan) as (_, run):
        report = run.commit()
    commit = report.commit
    assert commit is not None
    done = commit.done and run.state is RunState.COMMITTED
    if as_json:
        output.say(report.to_json(indent=2))
        return 0 if done else EXIT_UNFINISHED
    output.say(f"run {run_id}: {commit.summary()}", style="bold green" if done else "bold red")
    if done and run.failback_of is not None:
        output.say(
            f"run {run.failback_of.id} has failed back: its VMs run at their original site and "
            "replicate to the recovery site again"
        )
    elif done:
        output.say(
            f"the VMs run at the recovery site for good; to bring them home later: "
            f"vmfailover failback {run_id}"
        )
    return 0 if done else EXIT_UNFINISHED


def undo_command(
    output: Output,
    run_id: str,
    *,
    backend: str = LAB_BACKEND,
    lab_file: Path | None = None,
    journal: str | os.PathLike[str] | None = None,
    plan_path: Path | None = None,
    as_json: bool = False,
) -> int:
    """Revert journaled run ``run_id`` (not committed). Exit 0 when every VM and replica it
    touched is as the journal recorded them before the run; 4 when not (shown: run it again)."""
    plan = load_plan(plan_path) if plan_path is not None else None
    with _attached_run(run_id, "undo", backend, lab_file, journal, plan) as (_, run):
        report = run.undo()
    undo = report.undo
    assert undo is not None
    done = undo.restored and run.state is RunState.UNDONE
    if as_json:
        output.say(report.to_json(indent=2))
        return 0 if done else EXIT_UNFINISHED
    output.say(f"run {run_id}: {undo.summary()}", style="bold green" if done else "bold red")
    if done and run.failback_of is not None:
        original = run.failback_of.id
        output.say(
            f"production stays at the recovery site (run {original} is committed again); to "
            f"fail back later: vmfailover failback {original}"
        )
    return 0 if done else EXIT_UNFINISHED


def failback_command(
    output: Output,
    run_id: str,
    *,
    backend: str = LAB_BACKEND,
    lab_file: Path | None = None,
    journal: str | os.PathLike[str] | None = None,
    plan_path: Path | None = None,
    max_parallel: int = 8,
    as_json: bool = False,
) -> RunResult:
    """Bring committed run ``run_id``'s VMs home: replication reversed, only the changed blocks
    moved, then a planned failover back (the run's plan turned around, or the plan in
    ``plan_path``) under a run id of its own, shown with its report."""
    plan = load_plan(plan_path) if plan_path is not None else None
    with _attached_run(
        run_id, "failback", backend, lab_file, journal, max_parallel=max_parallel, poll_interval=2.0
    ) as (runner, run):
        if not as_json:
            runner.subscribe(output.run_progress())
        back = run.failback(plan=plan, background=False)
        report = back.wait()
    if as_json:
        output.say(report.to_json(indent=2))
        return report.result
    show_report(output, report)
    output.say()
    output.say(f"failback run id: {back.id}", style="bold")
    if report.result is RunResult.SUCCEEDED:
        output.say(
            f"the VMs run at their original site; to make it final (replication resumes in its "
            f"first direction): vmfailover commit {back.id}; to give production back to the "
            f"recovery site: vmfailover undo {back.id}"
        )
    else:
        output.say(f"to give production back to the recovery site: vmfailover undo {back.id}")
    return report.result


@contextlib.contextmanager
def _attached_run(
    run_id: str,
    action: str,
    backend: str,
    lab_file: Path | None,
    journal: str | os.PathLike[str] | None,
    plan: FailoverPlan | None = None,
    **runner_options: Any,
) -> Iterator[tuple[Runner, Run]]:
    """The journaled run ``run_id`` attached to a runner on the backend, once the journal and
    the run's state allow ``action`` (refused before the backend is opened where the journal
    alone rules it out); the runner is closed when the block ends."""
    with open_journal(journal_spec(journal)) as journaled:
        _refuse_journaled(journaled, run_id, action, backend)
        with opened_backend(backend, lab_file) as opened:
            # a person decides here: the run's deadline is left to whoever keeps it
            runner = Runner(opened, journal=journaled, keep_deadlines=False, **runner_options)
            try:
                yield runner, _attached(runner, run_id, action, plan)
            finally:
                runner.close()


def _refuse_journaled(journal: Journal, run_id: str, action: str, backend: str) -> None:
    """Refuse, before the backend is opened, what the journal's summary already rules out: an
    unknown run (NotFoundError), a test run, a run whose recovery has not ended."""
    summary = journal.load(run_id, ()).summary
    _refuse_summary(summary, action, backend)


def _refuse_summary(summary: RunSummary, action: str, backend: str) -> None:
    run_id = summary.run_id
    if summary.kind is FailoverKind.TEST:
        raise ConflictError(
            f"run {run_id} is a test failover ({summary.state}): its copies are cleaned up, "
            f"never {_DONE[action]} (vmfailover cleanup {run_id})"
        )
    if summary.interrupted:
        holder = live_holder(summary.owner)
        if holder is not None:
            raise ConflictError(
                f"run {run_id} is still {summary.state} in process {holder} on this host: "
                f"{action} it once its recovery has ended"
            )
        raise ConflictError(
            f"run {run_id} was interrupted in its recovery ({summary.state}): finish it first "
            f"with vmfailover resume {run_id} --backend {backend}"
        )


def _attached(runner: Runner, run_id: str, action: str, plan: FailoverPlan | None = None) -> Run:
    """The journaled run, attached to ``runner``, once its state allows ``action`` (``plan``:
    the run's plan again, when it had Python callables)."""
    run = runner.attach(run_id, plan=plan)
    if action == "failback" and run.failback_of is not None:
        raise ConflictError(
            f"run {run_id} is the failback of run {run.failback_of.id}: a failback is committed "
            f"or undone (vmfailover commit {run_id}, vmfailover undo {run_id}), never failed back"
        )
    refusal = _REFUSALS[action].get(run.state)
    if refusal is not None:
        back = run.failback_run.id if run.failback_run is not None else run._failback_link
        raise ConflictError(refusal.format(run=run_id, back=back or "RUN"))
    return run
