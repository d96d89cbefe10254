"""Taking a journaled run up again: resume what was in flight, attach what ended, clean up a test.

A run's journal holds its record (the compiled plan, the inventory before it, its failback link)
and every entry it wrote. :func:`resume` continues a run whose recovery, commit, undo or failback
was cut off: the calls the journal holds are replayed from their records, and one whose intent
has no outcome is reconciled against the backend first. :func:`attach` makes a run that ended (in
this process or another one) a :class:`~vmfailover.engine.run.Run` of a runner again, so that it
can be committed, undone or failed back. :func:`cleanup_journaled` removes a journaled test run's
copies. Each makes its :class:`~vmfailover.engine.run.Run` the same way
(``_taken_up``): its journal goes on after the last entry it holds.

These are :class:`~vmfailover.engine.runner.Runner`'s ``resume``, ``attach`` and
``cleanup_journaled``, which check their arguments and call them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from vmfailover.engine import aftercare
from vmfailover.engine.claims import claims_for, touched_ids
from vmfailover.engine.deadlines import pending_deadline
from vmfailover.engine.execution import Execution
from vmfailover.engine.journal import (
    EntryKind,
    Journal,
    JournaledRun,
    JournalEntry,
    RunSummary,
)
from vmfailover.engine.journal_codec import loads
from vmfailover.engine.replay import Replay
from vmfailover.engine.results import RunReport
from vmfailover.engine.run import Run, executing_here, process_owner
from vmfailover.engine.run_journal import RunJournal
from vmfailover.engine.run_record import RunRecord, read_record
from vmfailover.engine.run_state import RunAction, RunState
from vmfailover.errors import ConflictError, NotFoundError, ValidationError
from vmfailover.model import FailoverKind
from vmfailover.plan import FailoverPlan

if TYPE_CHECKING:
    from vmfailover.engine.journal_writer import JournalWriter
    from vmfailover.engine.runner import Runner

__all__ = ["attach", "cleanup_journaled", "live_holder", "resume"]

#: The states of a run whose commit, undo or failback is under way.
_IN_AFTERCARE = (
    RunState.COMMITTING.value,
    RunState.UNDOING.value,
    RunState.FAILING_BACK.value,
)


def resume(
    runner: Runner,
    run_id: str,
    *,
    plan: FailoverPlan | None,
    background: bool,
    takeover: bool,
    probes: Mapping[str, object] | None = None,
) -> Run:
    """Continue what was in flight for run ``run_id``
    (:meth:`~vmfailover.engine.runner.Runner.resume`)."""
    loaded = _load(runner, run_id, "resume", takeover=takeover)
    summary = loaded.summary
    if summary.interrupted:
        return _resume_recovery(runner, loaded, plan, background, takeover=takeover, probes=probes)
    if summary.state in _IN_AFTERCARE:
        if not takeover:
            _check_owner(run_id, summary.owner)
        run = _attach_loaded(runner, loaded, plan)
        _resume_aftercare(runner, run, background)
        return run
    ended = f", ended {summary.ended_at:%Y-%m-%d %H:%M:%S}" if summary.ended_at else ""
    raise ConflictError(
        f"run {run_id} is {summary.state}{ended}: nothing of it is in flight (only a run "
        "whose recovery, commit, undo or failback was interrupted can be resumed); attach "
        "it to commit, undo or fail it back"
    )


def attach(runner: Runner, run_id: str, *, plan: FailoverPlan | None) -> Run:
    """The journaled run ``run_id`` as a Run of ``runner``
    (:meth:`~vmfailover.engine.runner.Runner.attach`)."""
    with runner._runs_lock:
        known = runner._runs.get(run_id) if isinstance(run_id, str) else None
        if known is not None:
            return known
        loaded = _load(runner, run_id, "attach")
        if loaded.summary.interrupted:
            raise ConflictError(
                f"run {run_id} was interrupted in its recovery ({loaded.summary.state}): "
                "resume it (runner.resume) to finish it first"
            )
        return _attach_loaded(runner, loaded, plan)


def cleanup_journaled(runner: Runner, run_id: str, *, plan: FailoverPlan | None) -> RunReport:
    """Clean up test run ``run_id`` of the journal
    (:meth:`~vmfailover.engine.runner.Runner.cleanup_journaled`)."""
    journal, _writer = _journal_of(runner)
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError.of("cleanup_journaled", f"needs a run id, got {run_id!r}")
    loaded = journal.load(run_id)
    summary = loaded.summary
    if summary.interrupted:
        raise ConflictError(
            f"run {run_id} is interrupted ({summary.state}): resume it before cleaning it up"
        )
    record = _record(runner, loaded, plan)
    run = _taken_up(runner, summary, record, Replay(summary.started_at, loaded.entries), None)
    run._report = journal.report(run_id).report
    return runner._clean_up(run, _journaled_copies(loaded.entries))


# --- loading --------------------------------------------------------------------------------------


def _journal_of(runner: Runner) -> tuple[Journal, JournalWriter]:
    """The runner's journal and its writer (ConflictError if the runner has no journal)."""
    if runner.journal is None or runner._writer is None:
        raise ConflictError(
            "this runner has no journal: give Runner(backend, journal=...) the journal "
            "the run was written to"
        )
    return runner.journal, runner._writer


def _load(runner: Runner, run_id: object, what: str, *, takeover: bool = False) -> JournaledRun:
    """The journaled run ``run_id``, checked as one ``runner`` may take over."""
    journal, _writer = _journal_of(runner)
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError.of(what, f"needs a run id, got {run_id!r}")
    if executing_here(run_id) and not takeover:
        raise ConflictError(f"run {run_id} is running in this process: it is not interrupted")
    return journal.load(run_id)


def _record(
    runner: Runner,
    loaded: JournaledRun,
    plan: FailoverPlan | None,
    probes: Mapping[str, object] | None = None,
) -> RunRecord:
    """The run's record, checked as one of ``runner``'s kind of backend."""
    record = read_record(loaded.record, plan, probes=probes)
    if record.backend != runner.backend.name:
        raise ConflictError(
            f"run {loaded.summary.run_id} ran on a {record.backend} backend, not on this "
            f"{runner.backend.name} one"
        )
    return record


def _failback_of(runner: Runner, record: RunRecord) -> Run | None:
    """The run a failback run's record names, attached (NotFoundError if the journal lost
    it)."""
    if record.failback_of is None:
        return None
    return attach(runner, record.failback_of, plan=None)


def _taken_up(
    runner: Runner,
    summary: RunSummary,
    record: RunRecord,
    replay: Replay,
    original: Run | None,
) -> Run:
    """A Run of ``runner`` for the journaled run, in the state the journal left it in, whose
    journal goes on after the entries ``replay`` holds."""
    _journal, writer = _journal_of(runner)
    run = Run(
        runner,
        summary.run_id,
        record.compiled.plan,
        record.compiled.kind,
        RunState(summary.state),
        failback_of=original,
    )
    run.inventory_before = record.inventory_before
    run.failback_result = record.failback
    run.host_run = record.host_run
    run._journal = RunJournal(
        writer, summary.run_id, runner.clock.now, first_seq=replay.last_seq + 1
    )
    return run


def _execution(runner: Runner, run: Run, record: RunRecord, replay: Replay | None) -> Execution:
    """The execution of a journaled run's recovery (replaying ``replay``'s calls, if given):
    a plan's recovery, or a host failover's restarts or a move back's moves."""
    if record.host_run is None:
        return Execution(
            runner,
            run.id,
            record.compiled,
            weights=record.weights,
            reachable_sources=record.reachable_sources,
            journal=run._journal,
            replay=replay,
        )
    from vmfailover.engine.host_run import recover_vm_of  # it imports the host failover

    return Execution(
        runner,
        run.id,
        record.compiled,
        weights=record.weights,
        reachable_sources=record.reachable_sources,
        recover_vm=recover_vm_of(record.host_run),
        journal=run._journal,
        replay=replay,
    )


# --- resuming and attaching -----------------------------------------------------------------------


def _resume_recovery(
    runner: Runner,
    loaded: JournaledRun,
    plan: FailoverPlan | None,
    background: bool,
    *,
    takeover: bool = False,
    probes: Mapping[str, object] | None = None,
) -> Run:
    """Go on with an interrupted recovery."""
    summary = loaded.summary
    run_id = summary.run_id
    if not takeover:
        _check_owner(run_id, summary.owner)
    record = _record(runner, loaded, plan, probes)
    original = _failback_of(runner, record)
    replay = Replay(summary.started_at, loaded.entries)
    claims_for(runner.backend).claim(run_id, touched_ids(record.compiled))
    run = _taken_up(runner, summary, record, replay, original)
    if original is not None:
        original.failback_run = run
    assert run._journal is not None
    run._journal.resumed(process_owner())
    if run.state is RunState.VALIDATING:
        run._fire(RunAction.START)
    run._execution = _execution(runner, run, record, replay)
    if record.compiled.kind is not FailoverKind.TEST and record.host_run is None:
        run._execution.after_end = lambda: runner._after_production(run)
    elif record.host_run is not None and record.host_run["operation"] == "move_back":
        from vmfailover.engine.host_run import prove_resumed_move_back

        run._execution.after_end = lambda: prove_resumed_move_back(runner, run, record)
    run._go_live()
    runner._runs[run_id] = run
    if background:
        run._start_background()
    return run


def _attach_loaded(runner: Runner, loaded: JournaledRun, plan: FailoverPlan | None) -> Run:
    """A Run for a journaled run whose recovery ended (see :func:`attach`)."""
    journal, _writer = _journal_of(runner)
    summary = loaded.summary
    run_id = summary.run_id
    with runner._runs_lock:
        record = _record(runner, loaded, plan)
        original = _failback_of(runner, record)
        known = runner._runs.get(run_id)  # attaching the original attached this one
        if known is not None:
            return known
        replay = Replay(summary.started_at, loaded.entries)
        run = _taken_up(runner, summary, record, replay, original)
        run._execution = _execution(runner, run, record, None)
        for name, (_state, progress) in replay.finished.items():
            if name in run._execution.progress:
                run._execution.progress[name] = progress
        stored = journal.stored_report(run_id)
        if stored is not None:
            report = loads(stored)
            if isinstance(report, RunReport):
                run._report = report
                run.failback_result = report.failback or run.failback_result
        run._aftercare_replay = _aftercare_replay(run.state, summary.started_at, loaded.entries)
        deadline = pending_deadline(summary, loaded.entries)
        if deadline is not None:  # the plan's commit policy, kept again in this process
            run.deadline = deadline
            if run._report is not None:
                run._report = attrs.evolve(run._report, deadline=deadline)
            aftercare.arm_deadline(runner, run, deadline)
        run._done.set()
        runner._runs[run_id] = run
        run._failback_link = _failback_link(loaded.entries)
        link = run._failback_link
        if link is not None and run.state in (RunState.FAILING_BACK, RunState.FAILED_BACK):
            try:
                back = journal.load(link, ()).summary
            except NotFoundError:
                back = None  # the failback was about to begin: resuming begins it
            if back is not None and back.ended_at is not None:  # it ran (not refused)
                run.failback_run = attach(runner, link, plan=None)
        return run


def _resume_aftercare(runner: Runner, run: Run, background: bool) -> None:
    """Finish the commit, undo or failback of ``run`` that was in flight."""
    by = "runner.resume"
    if run.state is RunState.COMMITTING:
        aftercare.commit(runner, run, by=by)
    elif run.state is RunState.UNDOING:
        aftercare.undo(runner, run, by=by)
    elif run.failback_run is not None:
        back = run.failback_run
        if back.state in (RunState.COMMITTING, RunState.UNDOING):
            _resume_aftercare(runner, back, background)
            return
        raise ConflictError(
            f"run {run.id} is failing back: its failback run {back.id} is "
            f"{back.state.value}, nothing is in flight (commit or undo it)"
        )
    else:
        link = run._failback_link
        journal, _writer = _journal_of(runner)
        if link is not None:
            try:
                back_summary = journal.load(link, ()).summary
            except NotFoundError:
                back_summary = None
            if back_summary is not None and back_summary.interrupted:
                back = _resume_recovery(runner, journal.load(link), None, background)
                if not background:
                    back.wait()
                return
        aftercare.failback(runner, run, background=background)


# --- reading the journal --------------------------------------------------------------------------


def _check_owner(run_id: str, owner: str) -> None:
    """Refuse to resume a run another live process on this host still holds."""
    pid = live_holder(owner)
    if pid is not None:
        raise ConflictError(
            f"run {run_id} is held by process {pid} on this host, which is still alive: "
            "resume it once that process has ended"
        )


def live_holder(owner: str) -> int | None:
    """The id of the process ``owner`` (a run's ``host:pid``) names, when that is another
    process on this host that is still alive; None otherwise (another host, this process, an
    ended process, or a platform where it cannot be told)."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or os.name != "posix":
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return None  # this process: the live-run table decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, and someone else's
    return pid


def _aftercare_replay(
    state: RunState, started_at: datetime, entries: Iterable[JournalEntry]
) -> Replay | None:
    """The journal of the last commit, undo or failback attempt that ``state`` says is in
    flight: the entries since the run last entered that state, or since the last attempt that
    ended (it journaled its report, for instance on a backend error), whichever is later. An
    attempt that ended is not replayed: its failed calls are tried again, not raised again."""
    if state.value not in _IN_AFTERCARE:
        return None
    listed = list(entries)
    begin = 0
    for index, entry in enumerate(listed):
        entered = entry.kind is EntryKind.STATE and entry.payload().get("to") == state.value
        ended = begin and entry.kind is EntryKind.AFTERCARE and "report" in entry.payload()
        if entered or ended:
            begin = index + 1
    if begin == 0:
        return None
    return Replay(started_at, listed[begin:])


def _failback_link(entries: Iterable[JournalEntry]) -> str | None:
    """The failback run the journal last linked to this run, if any."""
    link = None
    for entry in entries:
        if entry.kind is EntryKind.AFTERCARE:
            payload = entry.payload()
            if "failback_run" in payload:
                link = str(payload["failback_run"])
    return link


def _journaled_copies(entries: Iterable[JournalEntry]) -> list[str]:
    """The test copies a run's journal says it created, in the order it created them."""
    copies: dict[str, None] = {}
    for entry in entries:
        if entry.kind is EntryKind.OUTCOME and entry.operation == "create_test_copy":
            result = entry.payload().get("result")
            if isinstance(result, str):
                copies[result] = None
    return list(copies)
