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
from vmfailover.engine.host_failover_results import HostFailoverReport
from vmfailover.engine.journal_codec import decode, loads
from vmfailover.engine.move_back import _move_home_with
from vmfailover.engine.results import RunReport
from vmfailover.engine.run_record import read_record
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.policy.placement import PlacedVM, Placement, UnplacedVM

if TYPE_CHECKING:
    from vmfailover.engine.execution import Execution
    from vmfailover.engine.runner import Runner
    from vmfailover.plan import VMRecovery
    from vmfailover.policy.sequencer import VMState

__all__ = ["describe", "host_failover_report", "recover_vm_of"]


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
    homes = {str(vm): str(host) for vm, host in dict(host_run["homes"]).items()}
    where = {str(vm): str(host) for vm, host in dict(host_run["where"]).items()}
    return _move_home_with(homes, where, {})  # how each moved is not in the journal: not reported


def describe(host_run: Mapping[str, Any]) -> str:
    """What the run is, in words (for errors that refuse a plan run's actions on it)."""
    if host_run["operation"] == "host_failover":
        return f"a host failover of {', '.join(host_run['failed_hosts'])}"
    return f"the move back after {host_run['failover_run']}"


def host_failover_report(runner: Runner, run_id: str) -> HostFailoverReport:
    """The report of journaled host failover ``run_id`` (see
    :meth:`~vmfailover.engine.runner.Runner.host_failover_report`)."""
    journal = runner.journal
    if journal is None:
        raise ConflictError(
            "this runner has no journal: give Runner(backend, journal=...) the journal the "
            "host failover was written to"
        )
    if not isinstance(run_id, str) or not run_id:
        raise ValidationError.of("host_failover_report", f"needs a run id, got {run_id!r}")
    loaded = journal.load(run_id, ())
    record = read_record(loaded.record)
    host_run = record.host_run
    if host_run is None or host_run["operation"] != "host_failover":
        what = "a plan's run" if host_run is None else describe(host_run)
        raise ConflictError(f"run {run_id} is {what}, not a host failover")
    if loaded.summary.interrupted:
        raise ConflictError(
            f"host failover {run_id} was interrupted ({loaded.summary.state}): finish it with "
            "runner.resume(run_id) first"
        )
    stored = journal.stored_report(run_id)
    report = None if stored is None else loads(stored)
    if not isinstance(report, RunReport):
        raise ConflictError(f"host failover {run_id} has no report in the journal")
    return failover_report(
        report,
        cluster=str(host_run["cluster"]),
        failed_hosts=tuple(str(host) for host in host_run["failed_hosts"]),
        failed_at=decode(host_run["failed_at"]),
        downtime_from=str(host_run["downtime_from"]),
        victims=[work.source for work in record.compiled.vms],
        placement=_placement(host_run),
        warnings=[str(warning) for warning in host_run.get("warnings", ())],
        order=record.compiled.order,
    )
