"""A plan's commit policy kept through the journal: when it falls due, and who acts on it.

A production run's plan may say what happens to its uncommitted failover after a while
(``auto_commit`` / ``auto_undo``). When the run's recovery ends, the due time (absolute UTC, by
the runner's clock) and the action are journaled (an :attr:`~EntryKind.DEADLINE` entry, durable)
so that they outlive the process that ran the run:

- the process that ran it keeps it in a thread while it lives (a runner's ``keep_deadlines``);
- :meth:`Runner.attach <vmfailover.engine.runner.Runner.attach>` and ``resume`` in another process
  arm it again (at once when it is past);
- the active :class:`~vmfailover.engine.orchestrator.Orchestrator` (``vmfailover serve``) acts
  on every due deadline of its journal on each pass, under the plan's lease;
- ``vmfailover deadlines`` acts on every due one once (for cron).

A deadline is *pending* while its run is still as its recovery left it (failed over, partial,
failed, cancelled) and nothing was decided since it was journaled: a commit, undo or failback
of the run (in any process) cancels it. Before acting, a process reads the run's state from the
journal (not only its memory) and writes a *claim* (a second deadline entry naming it, at the
next entry number); the journal stores one entry per number, so of two processes acting at
once one claim is refused and that process stands back with a warning. The action then goes
through the run's journaled commit or undo, as a person's would, with ``by="deadline"``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from vmfailover._jsonable import jsonable_fields
from vmfailover.engine.aftercare_results import BY_DEADLINE, Deadline, DeadlineAction
from vmfailover.engine.journal import EntryKind, Journal, JournalEntry, RunSummary
from vmfailover.engine.run import process_owner
from vmfailover.engine.run_state import RunAction, table_for
from vmfailover.errors import ConflictError, NotFoundError, ValidationError, VMFailoverError
from vmfailover.model import FailoverKind

if TYPE_CHECKING:
    from vmfailover.engine.run import Run
    from vmfailover.engine.runner import Runner

__all__ = [
    "DEADLINE_KINDS",
    "DEADLINE_STATES",
    "DeadlineOutcome",
    "act_on",
    "act_on_due",
    "due_deadlines",
    "fire",
    "pending_deadline",
    "pending_deadlines",
]

log = logging.getLogger("vmfailover.deadlines")


def _starts_from(action: RunAction) -> frozenset[str]:
    """The states a production run's ``action`` starts from (not those where it goes on with
    an interrupted one), read from the run's transition table."""
    table = table_for(FailoverKind.REGULAR)
    return frozenset(
        state.value for state, moves in table.items() if moves.get(action) not in (None, state)
    )


#: The states a run's recovery ends in, from which each deadline action is allowed. A run in
#: any other state was decided (committing, undone, failing back ...): its deadline is over.
_WAITING: dict[DeadlineAction, frozenset[str]] = {
    DeadlineAction.COMMIT: _starts_from(RunAction.COMMIT),
    DeadlineAction.UNDO: _starts_from(RunAction.UNDO),
}

#: The states in which a run may have a pending deadline.
DEADLINE_STATES = _WAITING[DeadlineAction.UNDO]

#: The journal entries that say whether a run's deadline is pending.
DEADLINE_KINDS = (EntryKind.DEADLINE, EntryKind.AFTERCARE)


@attrs.frozen
class DeadlineOutcome:
    """What acting on one run's deadline did: ``acted`` True when this process committed or
    undid the run (``finished`` says whether that commit or undo finished); False when it stood
    back (``message`` says why: decided meanwhile, another process acts on it)."""

    run_id: str
    action: DeadlineAction
    due: datetime
    acted: bool
    finished: bool
    message: str

    def summary(self) -> str:
        return (
            f"run {self.run_id}: automatic {self.action.value} due {self.due:%Y-%m-%d %H:%M:%S}"
            f" UTC: {self.message}"
        )

    def as_dict(self) -> dict[str, Any]:
        return jsonable_fields(self)


# --- reading the journal --------------------------------------------------------------------------


def pending_deadline(summary: RunSummary, entries: Iterable[JournalEntry]) -> Deadline | None:
    """The run's pending deadline, from its summary and its journal entries (those of
    :data:`DEADLINE_KINDS` suffice), or None: none journaled, or decided since."""
    pending: Deadline | None = None
    for entry in entries:
        if entry.kind is EntryKind.AFTERCARE:
            pending = None  # a commit, undo or failback was decided (or a claim acted)
        elif entry.kind is EntryKind.DEADLINE:
            payload = entry.payload()
            if "fired_by" in payload:
                pending = None
                continue
            try:
                pending = Deadline(
                    DeadlineAction(payload["action"]), datetime.fromisoformat(payload["at"])
                )
            except (KeyError, TypeError, ValueError):
                log.warning("run %s: unreadable deadline entry %s", summary.run_id, entry.data)
                pending = None
    if pending is None or summary.state not in _WAITING[pending.action]:
        return None
    return pending


def pending_deadlines(journal: Journal) -> dict[str, Deadline]:
    """Every pending deadline of the journal, by run id (oldest run first)."""
    if not isinstance(journal, Journal):
        raise ValidationError.of("pending_deadlines", f"needs a Journal, got {journal!r}")
    found: dict[str, Deadline] = {}
    for summary in journal.runs():
        if summary.state not in DEADLINE_STATES or summary.interrupted:
            continue  # decided, or never ended: no deadline can be pending
        try:
            loaded = journal.load(summary.run_id, DEADLINE_KINDS)
        except NotFoundError:
            continue
        deadline = pending_deadline(loaded.summary, loaded.entries)
        if deadline is not None:
            found[summary.run_id] = deadline
    return found


def due_deadlines(journal: Journal, now: datetime) -> dict[str, Deadline]:
    """The pending deadlines that are due at ``now``, by run id."""
    _moment(now, "due_deadlines now")
    return {run_id: d for run_id, d in pending_deadlines(journal).items() if d.at <= now}


# --- acting ---------------------------------------------------------------------------------------


def fire(runner: Runner, run: Run, deadline: Deadline) -> DeadlineOutcome:
    """Commit or undo ``run`` as its ``deadline`` says, if it is still pending: its state in
    the journal (when journaled) and in this process still allows the action, and no other
    process claimed it. Never raises for a decision taken elsewhere: the outcome says so."""
    from vmfailover.engine import aftercare  # it imports this module

    action = deadline.action
    wanted = RunAction.COMMIT if action is DeadlineAction.COMMIT else RunAction.UNDO

    def outcome(acted: bool, finished: bool, message: str) -> DeadlineOutcome:
        result = DeadlineOutcome(run.id, action, deadline.at, acted, finished, message)
        if not acted or not finished:
            log.warning("%s", result.summary())
            if run._execution is not None and acted:
                run._execution.warn(f"automatic {action.value}: {message}")
        else:
            log.info("%s", result.summary())
        return result

    with run._lock:
        if run.deadline != deadline or not run._machine.can(wanted):
            run.deadline = None
            return outcome(False, False, f"decided meanwhile (the run is {run.state.value})")
        try:
            _claim(runner, run, deadline)
        except _StandBack as why:
            run.deadline = None
            return outcome(False, False, str(why))
        act = aftercare.commit if action is DeadlineAction.COMMIT else aftercare.undo
        try:
            report = act(runner, run, by=BY_DEADLINE)
        except ConflictError as error:  # decided here meanwhile, or another process wrote first
            return outcome(False, False, f"decided meanwhile, here or elsewhere: {error}")
        except VMFailoverError as error:
            return outcome(True, False, f"failed: {error}")
        run.deadline = None
    if action is DeadlineAction.COMMIT:
        done = report.commit is not None and report.commit.done
    else:
        done = report.undo is not None and report.undo.restored
    again = "" if done else f" (not finished: vmfailover {action.value} {run.id} finishes it)"
    return outcome(
        True, done, f"{'committed' if action is DeadlineAction.COMMIT else 'undone'}{again}"
    )


def _moment(value: object, item: str) -> datetime:
    """``value`` as a moment a deadline compares with: a datetime with its time zone."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError.of(item, f"must be a datetime with a time zone, got {value!r}")
    return value


class _StandBack(Exception):
    """The deadline is not this process's to act on (decided meanwhile, or claimed)."""


def _claim(runner: Runner, run: Run, deadline: Deadline) -> None:
    """Check the run's journal and claim its deadline there (durable); _StandBack if the
    journal says it was decided or another process claimed it first."""
    journal = runner.journal
    if run._journal is None or journal is None:
        return  # an unjournaled run lives in this process only
    try:
        run._journal.writer.flush()
        loaded = journal.load(run.id, DEADLINE_KINDS)
    except VMFailoverError as error:
        raise _StandBack(f"the journal cannot be read now: {error}") from None
    current = pending_deadline(loaded.summary, loaded.entries)
    if current is None:
        raise _StandBack(f"decided meanwhile (the journal says the run is {loaded.summary.state})")
    try:
        run._journal.deadline_claim(deadline.action.value, deadline.at, process_owner())
    except VMFailoverError as error:
        raise _StandBack(f"another process acts on it (its claim was refused: {error})") from None


def act_on_due(runner: Runner, now: datetime | None = None) -> tuple[DeadlineOutcome, ...]:
    """Act on every deadline of ``runner``'s journal that is due at ``now`` (the runner's clock
    by default), one run after another: each run is attached (:meth:`Runner.attach`) and
    committed or undone (:func:`fire`). A run that cannot be attached is reported, not raised."""
    from vmfailover.engine.runner import Runner  # it imports this module

    if not isinstance(runner, Runner):
        raise ValidationError.of("act_on_due", f"needs a Runner, got {runner!r}")
    journal = runner.journal
    if journal is None:
        raise ConflictError("acting on deadlines needs a runner with a journal")
    moment = runner.clock.now() if now is None else _moment(now, "act_on_due now")
    outcomes = []
    for run_id, deadline in due_deadlines(journal, moment).items():
        outcomes.append(act_on(runner, run_id, deadline))
    return tuple(outcomes)


def act_on(runner: Runner, run_id: str, deadline: Deadline) -> DeadlineOutcome:
    """Attach journaled run ``run_id`` and act on its ``deadline`` (:func:`fire`)."""
    try:
        run = runner.attach(run_id)
    except VMFailoverError as error:
        result = DeadlineOutcome(
            run_id, deadline.action, deadline.at, False, False, f"cannot be attached: {error}"
        )
        log.warning("%s", result.summary())
        return result
    if run.deadline is None:  # attached earlier, before its deadline was journaled: take it
        run.deadline = deadline
    return fire(runner, run, deadline)
