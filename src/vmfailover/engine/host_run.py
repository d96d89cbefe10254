"""A host failover or move back in the journal: resuming it, and its report read back.

:func:`~vmfailover.engine.host_failover.host_failover` and
:func:`~vmfailover.engine.move_back.move_back` journal their runs like a plan's run; the run's
record also holds ``host_run``, what the run is: a host failover's cluster, failed hosts, failure
time and placement, or a move back's failover run and each VM's home and host when it began.
From that, :func:`recover_vm_of` gives a resumed run the per-VM work the interrupted process was
doing (restart where the placement put it, or move home), and :func:`host_failover_report`
rebuilds a :class:`~vmfailover.engine.host_failover_results.HostFailoverReport` of a journaled
host failover, in any process, so that :meth:`Runner.move_back` can bring its VMs home.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from vmfailover.engine.host_failover import _restart_with, failover_report
from vmfailover.engine.host_failover_results import HostFailoverReport, MoveBackReport
from vmfailover.engine.journal import EntryKind, JournaledRun
from vmfailover.engine.journal_codec import decode, loads
from vmfailover.engine.move_back import _move_home_with, moved_back_report, prove_home
from vmfailover.engine.replay import Replay
from vmfailover.engine.results import RunReport
from vmfailover.engine.run_journal import RunJournal
from vmfailover.engine.run_record import RunRecord, read_host_run, read_record
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.model import VM
from vmfailover.policy.placement import PlacedVM, Placement, UnplacedVM
from vmfailover.policy.sequencer import StartOrder

if TYPE_CHECKING:
    from vmfailover.engine.execution import Execution
    from vmfailover.engine.run import Run
    from vmfailover.engine.runner import Runner
    from vmfailover.plan import VMRecovery
    from vmfailover.policy.sequencer import VMState

__all__ = [
    "describe",
    "host_failover_report",
    "move_back_report",
    "prove_resumed_move_back",
    "recover_vm_of",
]


def _placement(host_run: Mapping[str, Any]) -> Placement:
    placement = decode(host_run.get("placement"))
    if not isinstance(placement, Placement):
        raise ValidationError.of("run record", "its host failover holds no placement")
    return placement


def recover_vm_of(host_run: Mapping[str, Any]) -> Callable[[Execution, VMRecovery], VMState]:
    """The per-VM work of the journaled host failover or move back ``host_run`` describes."""
    if host_run["operation"] == "host_failover":
        placement = _placement(host_run)
        targets: dict[str, PlacedVM | UnplacedVM] = {
            **{entry.name: entry for entry in placement.unplaced},
            **{entry.name: entry for entry in placement.placed},
        }
        return _restart_with(targets)
    return _move_home_with(_hosts(host_run, "homes"), _hosts(host_run, "where"))


def _hosts(host_run: Mapping[str, Any], key: str) -> dict[str, str]:
    """A move back's VM id -> host table (``homes`` or ``where``) as stored."""
    return {str(vm): str(host) for vm, host in dict(host_run[key]).items()}


def prove_resumed_move_back(runner: Runner, run: Run, record: RunRecord) -> None:
    """A resumed move back's end, proved against the inventory and journaled as an
    uninterrupted one's is (the ``after_end`` of its resumed run)."""
    assert record.host_run is not None
    names = {work.name: work.source.id for work in record.compiled.vms}
    prove_home(runner, run._journal, names, _hosts(record.host_run, "homes"))


def describe(host_run: Mapping[str, Any]) -> str:
    """What the run is, in words (for errors that refuse a plan run's actions on it)."""
    if host_run["operation"] == "host_failover":
        return f"a host failover of {', '.join(host_run['failed_hosts'])}"
    return f"the move back after {host_run['failover_run']}"


def _ended_host_run(
    runner: Runner, run_id: object, operation: str, what: str
) -> tuple[JournaledRun, Mapping[str, Any], RunReport]:
    """The journaled host run ``run_id`` (``operation``), ended, with its stored report."""
    journal = runner.journal
    if journal is None:
        raise ConflictError(
            f"this runner has no journal: give Runner(backend, journal=...) the journal the "
            f"{what} was written to"
        )
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError.of(f"{operation}_report", f"needs a run id, got {run_id!r}")
    loaded = journal.load(run_id, None if operation == "move_back" else ())
    host_run = read_host_run(loaded.record)
    if host_run is None or host_run["operation"] != operation:
        described = "a plan's run" if host_run is None else describe(host_run)
        raise ConflictError(f"run {run_id} is {described}, not {_A[operation]}")
    if loaded.summary.interrupted:
        raise ConflictError(
            f"{what} {run_id} was interrupted ({loaded.summary.state}): finish it with "
            "runner.resume(run_id) first"
        )
    stored = journal.stored_report(run_id)
    report = None if stored is None else loads(stored)
    if not isinstance(report, RunReport):
        raise ConflictError(f"{what} {run_id} has no report in the journal")
    return loaded, host_run, report


_A = {"host_failover": "a host failover", "move_back": "a move back"}


def host_failover_report(runner: Runner, run_id: str) -> HostFailoverReport:
    """The report of journaled host failover ``run_id`` (see
    :meth:`~vmfailover.engine.runner.Runner.host_failover_report`)."""
    loaded, host_run, report = _ended_host_run(runner, run_id, "host_failover", "host failover")
    if host_run.get("empty"):
        victims: list[VM] = []
        order = StartOrder()
    else:  # callable probes stay stand-ins: a report does not call them
        record = read_record(loaded.record, stand_ins=True)
        victims = [work.source for work in record.compiled.vms]
        order = record.compiled.order
    return failover_report(
        report,
        cluster=str(host_run["cluster"]),
        failed_hosts=tuple(str(host) for host in host_run["failed_hosts"]),
        failed_at=decode(host_run["failed_at"]),
        downtime_from=str(host_run["downtime_from"]),
        victims=victims,
        placement=_placement(host_run),
        warnings=[str(warning) for warning in host_run.get("warnings", ())],
        order=order,
    )


def move_back_report(runner: Runner, run_id: str) -> MoveBackReport:
    """The report of journaled move back ``run_id`` (see
    :meth:`~vmfailover.engine.runner.Runner.move_back_report`)."""
    loaded, host_run, report = _ended_host_run(runner, run_id, "move_back", "move back")
    record = read_record(loaded.record, stand_ins=True)
    names = {work.name: work.source.id for work in record.compiled.vms}
    homes = _hosts(host_run, "homes")
    replay = Replay(loaded.summary.started_at, loaded.entries)
    checked = [e.payload() for e in loaded.entries if e.kind is EntryKind.CHECKED]
    if checked:
        differences = tuple(str(d) for d in checked[-1]["differences"])
    else:  # it ended but was not proved yet (its process died first): prove it now, once
        writer = runner._writer
        assert writer is not None
        journal = RunJournal(writer, run_id, runner.clock.now, first_seq=replay.last_seq + 1)
        differences = prove_home(runner, journal, names, homes)
    return moved_back_report(
        report,
        failover_run=str(host_run["failover_run"]),
        names=names,
        homes=homes,
        where=_hosts(host_run, "where"),
        progress={name: progress for name, (_state, progress) in replay.finished.items()},
        differences=differences,
    )
