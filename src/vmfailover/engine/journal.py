"""The run journal: what a run did, durable before it acts, so that a later process can go on.

A :class:`Journal` is deliberately narrow: it stores one row per run (:class:`RunSummary` and the
run's record, the compiled plan as :mod:`~vmfailover.engine.journal_codec` writes it) and an
append-only list of :class:`JournalEntry` rows per run. The engine decides what the entries mean
(:class:`EntryKind`): state changes, each mutating backend call's *intent* before it acts and its
*outcome* after, each VM's start and end, plan steps and approvals, the run's end with its report.
A journal only keeps them in order and durable: :meth:`Journal.append` returns once the entries
are on disk. It also keeps the history of replication job runs (:meth:`Journal.record_replication`,
:meth:`Journal.replication_runs`: one :class:`~vmfailover.engine.replication_results.JobResult`
each), so RPO compliance and audits reach back past the life of a process.
:class:`~vmfailover.engine.sqlite_journal.SQLiteJournal` is the embedded default; another store
(PostgreSQL) implements the same eight methods.

The journal stores no secrets: records hold ids, names, addresses and times, never credentials.
"""

from __future__ import annotations

import abc
import enum
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Self

import attrs

from vmfailover._render import format_duration, text_table
from vmfailover.engine.replication_results import JobResult
from vmfailover.engine.results import RunReport, RunResult
from vmfailover.errors import TransientBackendError, ValidationError
from vmfailover.model import FailoverKind, as_enum, is_finite_number


def _typed(*kinds: type | None) -> Any:
    """An attrs validator: the field holds one of ``kinds`` (None allowed when listed), a finite
    number where a float is asked for; anything else is our ValidationError naming the field."""
    allowed = tuple(kind for kind in kinds if kind is not None)
    optional = None in kinds

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        good = isinstance(value, allowed) and not isinstance(value, bool)
        if good and float in allowed and isinstance(value, int | float):
            good = is_finite_number(value)
        if not good:
            names = " or ".join(kind.__name__ for kind in allowed)
            raise ValidationError.of(
                f"{type(instance).__name__} {attribute.name}",
                f"must be {names}{' or None' if optional else ''}, got {value!r}",
            )

    return check


def _kind(value: object) -> FailoverKind:
    return as_enum(FailoverKind, value, "run summary", field="kind")


def _result(value: object) -> RunResult | None:
    return None if value is None else as_enum(RunResult, value, "run summary", field="result")


__all__ = [
    "SCHEMA_VERSION",
    "EntryKind",
    "Journal",
    "JournalEntry",
    "JournalUnavailableError",
    "JournaledRun",
    "RunHistory",
    "RunSummary",
    "StateChange",
]

SCHEMA_VERSION = 2
"""The journal schema this version of vmfailover writes (and reads, with older ones migrated).

1: runs and their entries; 2: adds the replication job runs (``vmfailover_replication_runs``,
``vmfailover_replication_vms``)."""


class EntryKind(enum.StrEnum):
    """What a journal entry records."""

    STATE = "state"
    """The run changed state: ``{"from": ..., "to": ...}``."""
    VM_STARTED = "vm_started"
    """A VM's recovery started (the sequencer let it)."""
    VM_FINISHED = "vm_finished"
    """A VM's recovery ended: ``{"state": ..., "progress": ...}``; it is never redone."""
    INTENT = "intent"
    """A mutating backend call (``operation``) is about to act: its arguments. Durable first."""
    OUTCOME = "outcome"
    """What an intent's call did: ``{"intent": seq, "result": ...}`` or ``{"error": ...}``."""
    APPROVAL = "approval"
    """An approval gate was answered: ``{"name", "approved", "by"}``."""
    END = "end"
    """The recovery ended: ``{"result", "state", "rto_seconds", "report"}``."""
    CLEANUP = "cleanup"
    """A test run's cleanup: ``{"restored": ..., "report": ...}``."""
    RESUMED = "resumed"
    """Another process took the run over to resume it: ``{"owner": "host:pid"}``."""
    CHECKED = "checked"
    """A move back's end state proved against the inventory once its run ended:
    ``{"restored": ..., "differences": [...]}`` (each VM that is not home and running)."""
    AFTERCARE = "aftercare"
    """A commit, undo or failback of the run: ``{"action", "state", "report"}`` when it ended
    (the report holding its result), ``{"action": "failback", "failback_run": id}`` before a
    failback run is begun (its link, durable first)."""
    DEADLINE = "deadline"
    """The plan's commit policy for the run: ``{"action": "commit" | "undo", "at": ISO UTC}``
    when its recovery ended (durable: whichever process keeps it acts at ``at``), and
    ``{"action", "at", "fired_by": "host:pid"}`` written by the process that acts on it, right
    before it commits or undoes the run (its claim: a second process finds it, and stands
    back). The deadline is pending while the run's state still allows its action
    (:mod:`vmfailover.engine.deadlines`)."""


def _entry_kind(value: object) -> EntryKind:
    return as_enum(EntryKind, value, "journal entry", field="kind")


@attrs.frozen
class JournalEntry:
    """One row of a run's journal; ``seq`` orders a run's entries (unique per run)."""

    run_id: str = attrs.field(validator=_typed(str))
    seq: int = attrs.field(validator=_typed(int))
    kind: EntryKind = attrs.field(converter=_entry_kind)
    at: datetime = attrs.field(validator=_typed(datetime))
    vm: str | None = attrs.field(default=None, validator=_typed(str, None))
    operation: str | None = attrs.field(default=None, validator=_typed(str, None))
    data: str = attrs.field(default="{}", validator=_typed(str))

    def payload(self) -> Any:
        """``data`` parsed (the JSON text as stored)."""
        return json.loads(self.data)


@attrs.frozen
class RunSummary:
    """One run in the journal's history: what it was, when, how it ended, its RTO."""

    run_id: str = attrs.field(validator=_typed(str))
    kind: FailoverKind = attrs.field(converter=_kind)
    plan: str = attrs.field(validator=_typed(str))
    started_at: datetime = attrs.field(validator=_typed(datetime))
    state: str = attrs.field(validator=_typed(str))
    backend: str = attrs.field(default="", validator=_typed(str))
    ended_at: datetime | None = attrs.field(default=None, validator=_typed(datetime, None))
    result: RunResult | None = attrs.field(default=None, converter=_result)
    rto_seconds: float | None = attrs.field(default=None, validator=_typed(float, int, None))
    rto_target_seconds: float | None = attrs.field(default=None, validator=_typed(float, int, None))
    owner: str = attrs.field(default="", validator=_typed(str))

    @property
    def interrupted(self) -> bool:
        """The run was running and its recovery never recorded an end."""
        return self.ended_at is None and self.state in ("validating", "running")

    @property
    def rto_met(self) -> bool | None:
        if self.rto_target_seconds is None or self.rto_seconds is None:
            return None
        return self.result is RunResult.SUCCEEDED and self.rto_seconds <= self.rto_target_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind.value,
            "plan": self.plan,
            "backend": self.backend,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "result": None if self.result is None else self.result.value,
            "rto_seconds": self.rto_seconds,
            "rto_target_seconds": self.rto_target_seconds,
            "rto_met": self.rto_met,
            "interrupted": self.interrupted,
        }


@attrs.frozen
class StateChange:
    """One transition of a run, as journaled."""

    at: datetime
    old: str
    new: str


@attrs.frozen
class RunHistory:
    """A run as its journal tells it: the summary, every state change, the last report."""

    summary: RunSummary
    states: tuple[StateChange, ...]
    report: RunReport | None
    calls: int = 0
    """How many mutating backend calls the run journaled."""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary.as_dict(),
            "states": [
                {"at": change.at.isoformat(), "from": change.old, "to": change.new}
                for change in self.states
            ],
            "calls": self.calls,
            "report": None if self.report is None else self.report.as_dict(),
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.as_dict(), **kwargs)

    def __str__(self) -> str:
        summary = self.summary
        rto = "-" if summary.rto_seconds is None else format_duration(summary.rto_seconds)
        lines = [
            f"run {summary.run_id}: {summary.kind.value} failover of plan {summary.plan!r} "
            f"on {summary.backend or 'a backend'}",
            f"  state {summary.state}"
            + (", interrupted: resume it" if summary.interrupted else "")
            + (f", result {summary.result.value}" if summary.result else "")
            + f", RTO {rto}",
        ]
        lines.append(
            text_table(
                ("at", "from", "to"),
                [(f"{c.at:%Y-%m-%d %H:%M:%S}", c.old, c.new) for c in self.states],
                title="state changes",
            )
        )
        if self.report is not None:
            lines.append(str(self.report))
        return "\n".join(lines)


@attrs.frozen
class JournaledRun:
    """What resuming a run needs: its summary, its record and its entries in order."""

    summary: RunSummary
    record: str
    entries: tuple[JournalEntry, ...]


class JournalUnavailableError(TransientBackendError):
    """The journal's database did not answer (it restarted, failed over, or the network broke).

    Transient: the same call may succeed once the database is back. Nothing was written, unless
    the message says the commit went unanswered. ``where`` names the database, never its
    credentials.
    """

    def __init__(self, where: str, what: str, cause: BaseException | str) -> None:
        self.where = where
        super().__init__(f"cannot {what} journal {where!r}: {cause}")


class Journal(abc.ABC):
    """Where runs are journaled. Implementations keep entries durable and in order; the engine
    gives them meaning. Thread-safe: the runner appends from one writer thread, readers may
    call :meth:`runs` and :meth:`report` from any thread."""

    @abc.abstractmethod
    def begin(self, summary: RunSummary, record: str) -> None:
        """Store a new run (durable on return). ConflictError if the run id exists."""

    @abc.abstractmethod
    def append(self, entries: Sequence[JournalEntry]) -> None:
        """Store ``entries`` (of any runs) in one transaction, durable on return.

        ``state`` entries set their run's state; an ``end`` entry sets its end, result, RTO and
        report (and a ``cleanup`` entry the report and state).
        """

    @abc.abstractmethod
    def runs(self) -> tuple[RunSummary, ...]:
        """Every run, oldest first: the history for reports and RTO trends."""

    @abc.abstractmethod
    def load(self, run_id: str, kinds: Iterable[EntryKind] | None = None) -> JournaledRun:
        """The run's record and its entries (only ``kinds``, if given), in order.

        NotFoundError naming the run if the journal does not hold it.
        """

    @abc.abstractmethod
    def stored_report(self, run_id: str) -> str | None:
        """The run's last report as stored (journal codec text), or None."""

    @abc.abstractmethod
    def record_replication(self, result: JobResult) -> None:
        """Store one replication job run (durable on return): the job, its start and end, and
        each VM's outcome, point, bytes moved, points removed and error.

        ConflictError if the journal holds a run of that ``run_id`` already; ValidationError if
        the result has no ``run_id``.
        """

    @abc.abstractmethod
    def replication_runs(
        self, job: str | None = None, *, since: datetime | None = None
    ) -> tuple[JobResult, ...]:
        """The replication job runs stored (of ``job`` only, if given; finished at or after
        ``since`` only, if given), oldest first, each as it was recorded."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store; the journal cannot be used afterwards."""

    def report(self, run_id: str) -> RunHistory:
        """The run's history: summary, state changes and last report (NotFoundError if none)."""
        from vmfailover.engine.deadlines import DEADLINE_KINDS, pending_deadline
        from vmfailover.engine.journal_codec import loads

        run = self.load(run_id, (EntryKind.STATE, EntryKind.INTENT, *DEADLINE_KINDS))
        states = []
        calls = 0
        for entry in run.entries:
            if entry.kind is EntryKind.STATE:
                payload = entry.payload()
                states.append(StateChange(entry.at, payload["from"], payload["to"]))
            elif entry.kind is EntryKind.INTENT:
                calls += 1
        text = self.stored_report(run_id)
        report = None
        if text is not None:
            report = loads(text)
            if not isinstance(report, RunReport):
                raise ValidationError.of(f"run {run_id}", "its stored report is not a report")
            # the plan's deadline as the journal holds it now: pending, or none any more
            deadline = pending_deadline(run.summary, run.entries)
            report = attrs.evolve(report, deadline=deadline)
        return RunHistory(run.summary, tuple(states), report, calls)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
