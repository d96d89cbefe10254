"""The Hyper-V backend: the :class:`~vmfailover.backends.base.Backend` protocol on Hyper-V Replica.

Hyper-V Replica moves the data; this backend drives it over PowerShell Remoting (pypsrp), one
reused runspace pool per host, with cmdlets and typed parameters only. How the protocol maps:

=========================  =========================================================================
protocol                   Hyper-V
=========================  =========================================================================
inventory                  one pipeline per host: Get-VM; Get-VMNetworkAdapter -All; Get-VMSwitch;
                           Get-VMReplication (whatever the number of VMs)
create_replica             Enable-VMReplication (RecoveryHistory 24) + Start-VMInitialReplication on
                           the source host; Connect-VMNetworkAdapter on the replica per network map
sync                       source running: wait for Hyper-V's next recovery point (it replicates on
                           its own schedule); source off: Start-VMFailover -Prepare (planned
                           failover: the last changes, as a SyncedReplica point)
recovery_points            Get-VMSnapshot of the replica VM (Replica, AppConsistentReplica,
                           SyncedReplica checkpoints)
delete_recovery_point      Remove-VMSnapshot
revert                     Start-VMFailover -VMRecoverySnapshot (Stop-VMFailover first to change the
                           point of an uncommitted failover)
commit_failover            Complete-VMFailover (the point used stays, the others are deleted)
undo_failover              Stop-VMFailover on the replica (turns it off, reverts the failover)
connect_nic                Connect-VMNetworkAdapter
set_guest_ip               Set-VMNetworkAdapterFailoverConfiguration (injected as the guest boots)
power_on / power_off       Start-VM / Stop-VM -TurnOff
shutdown_guest             Stop-VM (the guest's shutdown service)
readiness                  Get-VM (State, Heartbeat); Get-VMNetworkAdapter (IPAddresses)
create_test_copy           Start-VMFailover -AsTest (the test VM)
remove_test_copy           Stop-VMFailover on its replica (deletes the test VM)
reverse_replication        Set-VMReplication -Reverse (+ Start-VMInitialReplication when needed)
restart_on_host            refused (PermanentBackendError): needs Hyper-V failover clustering, which
migrate_vm                 this backend does not model (see ``_NO_CLUSTERING``)
=========================  =========================================================================

VMs are addressed by Id (``Get-VM -Id``, piped): on Hyper-V every name parameter is a wildcard
pattern, and a VM called ``web*`` must not match ``web01``. Error records map to our errors by
their fully qualified id (:mod:`.errors`); a non-terminating record fails the call.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self, cast

from vmfailover.backends.base import Readiness, Throttle
from vmfailover.clock import Clock, SystemClock
from vmfailover.errors import (
    ConflictError,
    Finding,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
    ValidationError,
)
from vmfailover.model import (
    Consistency,
    Inventory,
    IPConfig,
    RecoveryPoint,
    Replica,
    ReplicaState,
    is_finite_number,
)

from .config import HostConnection
from .errors import ErrorRecord, classify, to_error
from .ids import PointRef, VMRef
from .pipeline import SWITCH, Command, Pipeline, cmd, literal_name, pipeline
from .reading import (
    FAILOVER_SETTING,
    GUEST_NETWORK,
    KVP_EXCHANGE,
    NETWORK_ADAPTER,
    REPLICATION,
    SNAPSHOT,
    VIRTUAL_MACHINE,
    HostView,
    addresses,
    build_inventory,
    guid_of_test_vm,
    mac_of,
    recovery_points,
    replica_from,
    replica_state,
)
from .reading import SWITCH as SWITCH_TYPE
from .session import HostSession
from .values import PSObject, as_uuid, enum_name

__all__ = ["RECOVERY_POINT_LIMIT", "HyperVBackend"]

_NO_CLUSTERING = (
    "cannot {what} on host {host!r}: host failover on Hyper-V needs failover clustering (the VM "
    "as a clustered role on a Cluster Shared Volume, restarted by the cluster service or moved "
    "with Move-ClusterVirtualMachineRole through the FailoverClusters module), which this "
    "backend does not drive: it manages standalone hosts and Hyper-V Replica. Let the cluster "
    "restart VMs itself and watch it with HostMonitor(mode='observe')"
)
_log = logging.getLogger(__name__)

#: Hyper-V's WMI namespace, where the guests' own reports are read.
CIM_NAMESPACE = "root/virtualization/v2"

#: Hyper-V Replica keeps at most 24 additional recovery points per VM.
RECOVERY_POINT_LIMIT = 24

_HEARTBEAT_OK = frozenset(
    {"OkApplicationsHealthy", "OkApplicationsUnknown", "OkApplicationsCritical"}
)
_NO = {"Confirm": False}

_INVENTORY = pipeline(
    "read the inventory",
    cmd("Get-VM"),
    cmd("Get-VMNetworkAdapter", All=SWITCH),
    cmd("Get-VMSwitch"),
    cmd("Get-VMReplication", ReplicationRelationshipType="Simple"),
)
#: The inventory with what running guests report: their NICs' TCP/IP settings (the addresses
#: re-IP rules translate) and their OS (Hyper-V injects failover addresses through the guest's
#: integration services). Read through WMI, Hyper-V's cmdlets have neither.
_INVENTORY_WITH_GUESTS = Pipeline(
    "read the inventory and the guests",
    (
        *_INVENTORY.statements,
        (cmd("Get-CimInstance", Namespace=CIM_NAMESPACE, ClassName=GUEST_NETWORK),),
        (cmd("Get-CimInstance", Namespace=CIM_NAMESPACE, ClassName=KVP_EXCHANGE),),
    ),
)


def _vm(guid: uuid.UUID) -> Command:
    return cmd("Get-VM", Id=guid)


def _of_type(output: Iterable[Any], type_name: str) -> list[PSObject]:
    return [o for o in output if isinstance(o, PSObject) and o.type_name == type_name]


class HyperVBackend:
    """Hyper-V hosts (one or more per site) replicating to each other with Hyper-V Replica.

    ``hosts`` says how to reach each host (:class:`HostConnection`). ``clock`` is where the
    backend waits (for Hyper-V's next recovery point); the real clock by default.
    ``replication_frequency`` (30, 300 or 900 s) and ``recovery_history`` (1..24) are what new
    replicas are enabled with. ``sync_poll_interval`` is how often a sync looks for the new point,
    ``sync_timeout`` how long it waits (default: two replication cycles, or two
    application-consistent periods). ``attempts`` bounds the tries of a pipeline on a fresh
    connection after a transport failure.
    """

    name = "hyperv"
    #: A test VM takes its failover addresses from its replica when it is made (backends.base).
    guest_ips_at_test_copy = True
    #: Hyper-V Replica moves the data: a sync's throttle is not called, and the points do not
    #: say how many bytes moved, so a limited job is told its limit is not enforced.
    hypervisor_moves_data = True

    def __init__(
        self,
        hosts: Iterable[HostConnection],
        *,
        clock: Clock | None = None,
        replication_frequency: int = 300,
        recovery_history: int = RECOVERY_POINT_LIMIT,
        sync_poll_interval: float = 15.0,
        sync_timeout: float | None = None,
        attempts: int = 3,
        retry_wait: float = 0.2,
    ) -> None:
        given: tuple[object, ...] = tuple(hosts)
        findings: list[Finding] = []
        if not given:
            findings.append(Finding("HyperVBackend hosts", "no host given"))
        seen: set[str] = set()
        connections: list[HostConnection] = []
        for connection in given:
            if not isinstance(connection, HostConnection):
                findings.append(
                    Finding("HyperVBackend hosts", f"{connection!r} is not a HostConnection")
                )
            elif connection.name.casefold() in seen:
                findings.append(Finding(f"Hyper-V host {connection.name!r}", "is given twice"))
            else:
                seen.add(connection.name.casefold())
                connections.append(connection)
        if replication_frequency not in (30, 300, 900):
            findings.append(
                Finding("replication_frequency", f"{replication_frequency!r} is not 30, 300 or 900")
            )
        if (
            isinstance(recovery_history, bool)
            or not isinstance(recovery_history, int)
            or not 1 <= recovery_history <= RECOVERY_POINT_LIMIT
        ):
            findings.append(Finding("recovery_history", f"{recovery_history!r} is not 1..24"))
        for label, value in (
            ("sync_poll_interval", sync_poll_interval),
            ("sync_timeout", sync_timeout),
            ("retry_wait", retry_wait),
        ):
            if value is not None and (not is_finite_number(value) or value <= 0):
                findings.append(Finding(label, f"{value!r} is not a finite number of seconds > 0"))
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            findings.append(Finding("attempts", f"{attempts!r} is not a whole number >= 1"))
        if findings:
            raise ValidationError(findings)
        self.connections = tuple(connections)
        self.clock: Clock = clock or SystemClock()
        self.replication_frequency = replication_frequency
        self.recovery_history = recovery_history
        self.sync_poll_interval = sync_poll_interval
        self.sync_timeout = sync_timeout
        self._sessions = {
            c.name: HostSession(c, attempts=attempts, retry_wait=retry_wait) for c in connections
        }
        self._down: set[str] = set()
        self._guests_unreadable: set[str] = set()
        self._test_keys: dict[str, str] = {}
        #: test copy id -> MAC -> the failover settings it was made with
        self._test_ips: dict[str, dict[str, tuple[tuple[str, Any], ...]]] = {}
        #: replica id -> the pipeline that gives it back the settings it lent a test VM
        self._giving_back: dict[str, Pipeline] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        hosts = ", ".join(f"{c.name}@{c.site}" for c in self.connections)
        return f"HyperVBackend({hosts})"

    # --- lifecycle and operator statements ------------------------------------------------------

    def close(self) -> None:
        """Close every host's runspace pool and connection."""
        for session in self._sessions.values():
            session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def declare_host_down(self, host: str) -> None:
        """Say, as the operator, that ``host`` is powered off or fenced (a lost site).

        The inventory then shows it and its VMs powered off without asking it, which is what lets
        a regular failover start replicas whose source nothing can reach. Only declare what you
        know: a host that is merely unreachable may still run its VMs.
        """
        self._connection(host)
        with self._lock:
            self._down.add(self._connection(host).name)

    def clear_host_down(self, host: str) -> None:
        """Take back :meth:`declare_host_down`: the host is asked again."""
        with self._lock:
            self._down.discard(self._connection(host).name)

    @property
    def pipelines_sent(self) -> int:
        """Pipelines sent to all hosts so far (retries included)."""
        return sum(session.pipelines_sent for session in self._sessions.values())

    def session(self, host: str) -> HostSession:
        """The connection to ``host`` (for diagnostics and benchmarks)."""
        return self._sessions[self._connection(host).name]

    # --- the Backend protocol -------------------------------------------------------------------

    def inventory(self) -> Inventory:
        with self._lock:
            down = set(self._down)
        asked = [c for c in self.connections if c.name not in down]

        def read(connection: HostConnection) -> HostView | None:
            try:
                return self._read_host(connection)
            except TransientBackendError:
                return None  # does not answer: the inventory says so

        views: dict[str, HostView | None] = dict.fromkeys(down)
        if len(asked) == 1:
            views[asked[0].name] = read(asked[0])
        elif asked:
            with ThreadPoolExecutor(len(asked), thread_name_prefix="vmfailover-hv-inv") as pool:
                for connection, view in zip(asked, pool.map(read, asked), strict=True):
                    views[connection.name] = view
        return build_inventory(self.connections, views, down)

    def _read_host(self, connection: HostConnection) -> HostView:
        """One host's inventory in one pipeline. Where the guests' WMI classes cannot be read
        (Get-CimInstance not exposed by a constrained endpoint, no access to the namespace), the
        host is read without them from then on: its guests' OS and addresses stay unknown."""
        session = self._sessions[connection.name]
        if connection.name in self._guests_unreadable:
            return HostView.from_output(session.run_checked(_INVENTORY))
        result = session.run(_INVENTORY_WITH_GUESTS)
        problems = [e for e in result.errors if not _about_guests(e)]
        if problems:
            raise to_error(problems[0], session.name, _INVENTORY_WITH_GUESTS.description)
        if not result.errors:
            return HostView.from_output(result.output)
        _log.warning(
            "%s: the guests' OS and addresses cannot be read (%s); re-IP rules need them",
            connection.name,
            result.errors[0],
        )
        with self._lock:
            self._guests_unreadable.add(connection.name)
        return HostView.from_output(session.run_checked(_INVENTORY))

    def create_replica(
        self,
        vm_id: str,
        target_host: str,
        target_datastore: str,
        *,
        network_map: Mapping[str, str] | None = None,
    ) -> Replica:
        ref = VMRef.parse(vm_id)
        source = self._session_for(ref)
        target = self._connection(target_host)
        if target_datastore != target.datastore:
            raise NotFoundError(
                f"no datastore {target_datastore!r} on Hyper-V host {target.name!r} "
                f"(its replica storage is {target.datastore!r})"
            )
        if target.name == ref.host:
            raise ValidationError.of(
                f"VM {vm_id!r}", f"cannot replicate to its own host {target.name!r}"
            )
        read = source.run_checked(
            pipeline(
                "read the VM and its NICs",
                _vm(ref.guid),
                (_vm(ref.guid), cmd("Get-VMNetworkAdapter")),
            )
        )
        vm = _one(read, VIRTUAL_MACHINE, f"VM {vm_id!r}")
        adapters = _of_type(read, NETWORK_ADAPTER)
        switches = self._sessions[target.name].run_checked(
            pipeline("list the virtual switches", cmd("Get-VMSwitch"))
        )
        wanted = self._mapped_switches(
            vm, adapters, _of_type(switches, SWITCH_TYPE), network_map, target
        )
        mode = enum_name(vm.get("ReplicationMode"))
        if mode == "None":
            result = source.run(self._enable(ref.guid, target))
            if result.errors:
                self._reconcile_enabled(ref, target, result.errors[0], "enable replication")
        elif mode == "Primary":
            self._reconcile_enabled(ref, target, None, "enable replication")
        else:
            raise ConflictError(
                f"VM {vm.get('Name')!r} ({vm_id}) is a Hyper-V {mode} VM: only a VM without "
                "replication can get a replica"
            )
        replica = VMRef(target.name, ref.guid)
        self._connect_replica_nics(replica, wanted)
        return self._replica(replica)

    def sync(
        self,
        replica_id: str,
        *,
        consistency: Consistency = Consistency.CRASH,
        tags: Sequence[str] = (),
        throttle: Throttle | None = None,
    ) -> RecoveryPoint:
        """Hyper-V Replica moves the data itself: ``throttle`` is accepted and not called (a
        replication job's result says that its limit was not enforced by us)."""
        if tags:
            raise ValidationError.of(
                f"sync of replica {replica_id!r}",
                f"tags {sorted(tags)!r}: Hyper-V recovery points are checkpoints Hyper-V names "
                "itself and cannot carry tags",
                "keep tags beside the point ids (a journal or the retention policy's pins)",
            )
        consistency = Consistency(consistency)
        ref = VMRef.parse(replica_id, "replica")
        _, replication, points = self._read_replica(ref)
        if consistency is Consistency.APPLICATION and not replication.get(
            "VSSSnapshotFrequencyHour"
        ):
            raise ConflictError(
                f"replica {replica_id!r} gets no application-consistent recovery points: enable "
                "them on Hyper-V (Set-VMReplication -VSSSnapshotFrequencyHour, with "
                "RecoveryHistory > 0)"
            )
        primary = self._server(replication.get("PrimaryServerName"), replica_id)
        seen = {p.id for p in points}
        state = enum_name(replication.get("ReplicationState"))
        if state == "WaitingForInitialReplication":
            self._start_initial_replication(VMRef(primary.name, ref.guid))
        elif consistency is Consistency.CRASH:
            prepared = self._prepare_planned_failover(VMRef(primary.name, ref.guid))
            if prepared:
                synced = [p for p in self._points(ref) if p.id not in seen or prepared == "already"]
                if synced:
                    return synced[-1]
        return self._wait_for_point(ref, seen, consistency, replication)

    def recovery_points(self, replica_id: str) -> tuple[RecoveryPoint, ...]:
        ref = VMRef.parse(replica_id, "replica")
        return self._points(ref)

    def delete_recovery_point(self, point_id: str) -> None:
        point = PointRef.parse(point_id)
        session = self._session_for(point.replica)
        found = session.run(
            pipeline("read the recovery point", cmd("Get-VMSnapshot", Id=point.snapshot))
        )
        if found.errors:
            if classify(found.errors[0]) is NotFoundError:
                return  # gone already
            raise to_error(found.errors[0], session.name, "read the recovery point")
        snapshot = _one(found.output, SNAPSHOT, f"recovery point {point_id!r}")
        kind = enum_name(snapshot.get("SnapshotType"))
        if as_uuid(snapshot.get("VMId")) != point.vm or kind not in {
            "Replica",
            "AppConsistentReplica",
            "SyncedReplica",
        }:
            raise ConflictError(
                f"checkpoint {point.snapshot} on {point.host!r} is not a recovery point of VM "
                f"{point.vm} (it is a {kind} checkpoint of {snapshot.get('VMName')!r}): not deleted"
            )
        result = session.run(
            pipeline(
                "delete the recovery point",
                (cmd("Get-VMSnapshot", Id=point.snapshot), cmd("Remove-VMSnapshot")),
            )
        )
        if result.errors and classify(result.errors[0]) is not NotFoundError:
            raise to_error(result.errors[0], session.name, "delete the recovery point")

    def recovery_point_limit(self) -> int | None:
        return RECOVERY_POINT_LIMIT

    def revert(self, replica_id: str, point_id: str) -> None:
        ref, point = _replica_and_point(replica_id, point_id)
        session = self._session_for(ref)
        fail_over = (cmd("Get-VMSnapshot", Id=point.snapshot), cmd("Start-VMFailover", **_NO))
        result = session.run(pipeline("fail over to the recovery point", fail_over))
        if not result.errors:
            return
        problem = classify(result.errors[0])
        if problem is NotFoundError:
            self._read_replica(ref)  # the replica itself missing says so
            raise to_error(result.errors[0], session.name, f"fail over to {point_id}")
        if problem is not ConflictError:
            raise to_error(result.errors[0], session.name, f"fail over to {point_id}")
        vm, replication, _ = self._read_replica(ref)
        state = enum_name(replication.get("ReplicationState"))
        if state == "FailedOverWaitingCompletion":
            if enum_name(vm.get("State")) != "Off":
                raise ConflictError(
                    f"replica VM {vm.get('Name')!r} ({replica_id}) is running: power it off "
                    "before reverting it"
                )
            session.run_checked(
                pipeline(
                    "fail over again, to the recovery point",
                    (_vm(ref.guid), cmd("Stop-VMFailover")),
                    fail_over,
                )
            )
            return
        if state == "FailedOver":
            raise ConflictError(
                f"the failover of replica {replica_id!r} was committed (Complete-VMFailover): its "
                "other recovery points are gone and it cannot revert"
            )
        raise to_error(result.errors[0], session.name, f"fail over to {point_id}")

    def commit_failover(self, replica_id: str) -> None:
        """Complete-VMFailover: the point used is kept, the replica's other recovery points are
        deleted, and the failover can no longer be undone. Idempotent."""
        ref = VMRef.parse(replica_id, "replica")
        session = self._session_for(ref)
        result = session.run(
            pipeline("commit the failover", (_vm(ref.guid), cmd("Complete-VMFailover", **_NO)))
        )
        if not result.errors:
            return
        _, replication, _ = self._read_replica(ref)
        state = enum_name(replication.get("ReplicationState"))
        if state == "FailedOver":
            return  # committed already
        if state not in ("FailedOverWaitingCompletion", "RecoveryInProgress"):
            raise ConflictError(
                f"replica {replica_id!r} is {state}: only a failed-over replica can be committed"
            )
        raise to_error(result.errors[0], session.name, "commit the failover")

    def undo_failover(self, replica_id: str) -> None:
        """Stop-VMFailover on the replica: Hyper-V turns the VM off and reverts the failover, and
        replication resumes. Idempotent: a replicating replica is left alone. The failover IP
        settings the run gave the replica's NICs stay (Hyper-V applies them only at a failover,
        which sets its own; the inventory does not show them)."""
        ref = VMRef.parse(replica_id, "replica")
        _, replication, _ = self._read_replica(ref)
        state = enum_name(replication.get("ReplicationState"))
        if replica_state(state) is ReplicaState.READY:
            return  # not failed over (any more)
        if state == "FailedOver":
            raise ConflictError(
                f"the failover of replica {replica_id!r} was committed (Complete-VMFailover): it "
                "cannot be undone"
            )
        if state not in ("FailedOverWaitingCompletion", "RecoveryInProgress"):
            raise ConflictError(f"replica {replica_id!r} is {state}: there is no failover to undo")
        if guid_of_test_vm(replication) is not None:
            raise ConflictError(
                f"replica {replica_id!r} has a test VM: Stop-VMFailover would remove it instead; "
                "remove the test copy first"
            )
        session = self._session_for(ref)
        result = session.run(pipeline("undo the failover", (_vm(ref.guid), cmd("Stop-VMFailover"))))
        if result.errors:
            _, replication, _ = self._read_replica(ref)
            now = enum_name(replication.get("ReplicationState"))
            if replica_state(now) is not ReplicaState.READY:
                raise to_error(result.errors[0], session.name, "undo the failover")

    def connect_nic(self, vm_id: str, mac: str, network: str) -> None:
        ref = VMRef.parse(vm_id)
        adapters, adapter = self._adapter(ref, mac)
        if adapter.get("SwitchName") == network:
            return
        name = self._adapter_name(
            ref, adapters, adapter, lambda other: other.get("SwitchName") == network
        )
        self._session_for(ref).run_checked(
            pipeline(
                f"connect NIC {mac_of(adapter.get('MacAddress'))} to {network!r}",
                (
                    _vm(ref.guid),
                    cmd("Get-VMNetworkAdapter", Name=literal_name(name)),
                    cmd("Connect-VMNetworkAdapter", SwitchName=network),
                ),
            )
        )

    def set_guest_ip(self, vm_id: str, mac: str, configs: Sequence[IPConfig] | None) -> None:
        """Set-VMNetworkAdapterFailoverConfiguration: Hyper-V injects the settings into the guest
        as it boots failed over. A test copy got its settings when it was made
        (:meth:`create_test_copy` ``guest_ips``): setting the same again is confirmed, anything
        else is refused, as Hyper-V refuses it on a test VM."""
        ref = VMRef.parse(vm_id)
        settings = _failover_settings(vm_id, mac, configs)
        with self._lock:
            made_with = self._test_ips.get(str(ref))
        if made_with is not None:
            if made_with.get(mac_of(mac)) == settings:
                return
            raise ConflictError(
                f"VM {vm_id!r} is a Hyper-V test VM: it took its failover TCP/IP settings from "
                "its replica when the test started, and Hyper-V refuses them on the test VM; "
                "pass the addresses to create_test_copy(guest_ips=...)"
            )
        adapters, adapter = self._adapter(ref, mac)
        name = self._adapter_name(ref, adapters, adapter, lambda other: False)
        session = self._session_for(ref)
        description = f"set the failover IP of NIC {mac_of(adapter.get('MacAddress'))}"
        result = session.run(Pipeline(description, _setting_statements(ref, name, settings)))
        if not result.errors:
            return
        problem = to_error(result.errors[0], session.name, description)
        if isinstance(problem, ConflictError):
            vm = _one(
                session.run_checked(pipeline("read the VM", _vm(ref.guid))),
                VIRTUAL_MACHINE,
                f"VM {vm_id!r}",
            )
            if enum_name(vm.get("ReplicationMode")) == "TestReplica":
                raise ConflictError(
                    f"{problem} (VM {vm_id!r} is a Hyper-V test VM: its failover TCP/IP settings "
                    "come from its replica when the test starts; pass them to "
                    "create_test_copy(guest_ips=...))"
                ) from None
        raise problem

    def power_on(self, vm_id: str) -> None:
        """Start-VM. A source whose planned failover was prepared (a sync while it was off) and
        whose replica has not failed over gets the preparation cancelled first
        (Stop-VMFailover), so that a sync never leaves a VM unable to start."""
        ref = VMRef.parse(vm_id)
        session = self._session_for(ref)
        start = (_vm(ref.guid), cmd("Start-VM"))
        result = session.run(pipeline("power on", start))
        if not result.errors:
            return
        if classify(result.errors[0]) is not ConflictError:
            raise to_error(result.errors[0], session.name, "power on")
        _, replication = self._read_relationship(ref)
        if enum_name(replication.get("ReplicationState")) != "PreparedForFailover":
            raise to_error(result.errors[0], session.name, "power on")
        target = self._server(replication.get("ReplicaServerName"), vm_id)
        _, far = self._read_relationship(VMRef(target.name, ref.guid))
        far_state = enum_name(far.get("ReplicationState"))
        if far_state in ("FailedOverWaitingCompletion", "FailedOver"):
            raise ConflictError(
                f"VM {vm_id!r}: its replica on {target.name!r} is {far_state}; starting the "
                "source as well would split the brain"
            )
        session.run_checked(
            pipeline(
                "cancel the planned failover, then power on",
                (_vm(ref.guid), cmd("Stop-VMFailover")),
                start,
            )
        )

    def shutdown_guest(self, vm_id: str, timeout: float) -> None:
        if not is_finite_number(timeout) or not timeout > 0:
            raise ValidationError.of(
                f"shutdown of VM {vm_id!r}", f"timeout {timeout!r} is not a finite number > 0"
            )
        ref = VMRef.parse(vm_id)
        self._session_for(ref).run_checked(
            pipeline("shut the guest down", (_vm(ref.guid), cmd("Stop-VM"))),
            timeout=float(timeout),
        )

    def power_off(self, vm_id: str) -> None:
        ref = VMRef.parse(vm_id)
        self._session_for(ref).run_checked(
            pipeline("power off", (_vm(ref.guid), cmd("Stop-VM", TurnOff=SWITCH)))
        )

    def readiness(self, vm_id: str) -> Readiness:
        ref = VMRef.parse(vm_id)
        output = self._session_for(ref).run_checked(
            pipeline(
                "read readiness",
                _vm(ref.guid),
                (_vm(ref.guid), cmd("Get-VMNetworkAdapter")),
            )
        )
        vm = _one(output, VIRTUAL_MACHINE, f"VM {vm_id!r}")
        powered_on = enum_name(vm.get("State")) == "Running"
        heartbeat = enum_name(vm.get("Heartbeat")) in _HEARTBEAT_OK
        found = addresses(_of_type(output, NETWORK_ADAPTER)) if powered_on else ()
        return Readiness(
            powered_on=powered_on, heartbeat=powered_on and heartbeat, ip_addresses=found
        )

    def create_test_copy(
        self,
        replica_id: str,
        point_id: str,
        key: str,
        *,
        guest_ips: Mapping[str, Sequence[IPConfig] | None] | None = None,
    ) -> str:
        """Start-VMFailover -AsTest: the test VM, off, its NICs where the replica's test-failover
        settings put them (connect them with :meth:`connect_nic`).

        ``guest_ips`` maps MACs to the addresses the copy's guest gets as it first boots (None:
        it keeps its own). Hyper-V copies the replica's failover TCP/IP settings into the test VM
        when it makes it, and refuses them on the test VM afterwards; so the replica's settings
        of those NICs are set just before Start-VMFailover -AsTest and given back just after, in
        the same pipeline (and again at the next call, if that pipeline was cut short). The
        replica's own settings are what they were.
        """
        if not isinstance(key, str) or not key.strip():
            raise ValidationError.of(f"test copy of replica {replica_id!r}", "key is empty")
        ref, point = _replica_and_point(replica_id, point_id)
        wanted = self._test_settings(replica_id, guest_ips)
        self._give_back(replica_id)
        _, replication, adapters = self._read_replica_nics(ref, bool(wanted))
        existing = guid_of_test_vm(replication)
        if existing is None:
            session = self._session_for(ref)
            as_test = (
                cmd("Get-VMSnapshot", Id=point.snapshot),
                cmd("Start-VMFailover", AsTest=SWITCH, **_NO),
            )
            if wanted:
                lend, give_back = self._lent_settings(ref, adapters, wanted)
                with self._lock:
                    self._giving_back[replica_id] = give_back
                result = session.run(
                    Pipeline(
                        "start a test failover with the test addresses",
                        (*lend, as_test, *give_back.statements),
                    )
                )
                self._give_back(replica_id)
            else:
                result = session.run(pipeline("start a test failover", as_test))
            if result.errors:
                if classify(result.errors[0]) is not ConflictError:
                    raise to_error(result.errors[0], session.name, "start a test failover")
                _, replication, _ = self._read_replica(ref)  # a retry may have started it
                existing = guid_of_test_vm(replication)
                if existing is None:
                    raise to_error(result.errors[0], session.name, "start a test failover")
            else:
                existing = as_uuid(_one(result.output, VIRTUAL_MACHINE, "the test VM").get("Id"))
        copy = str(VMRef(ref.host, existing or uuid.UUID(int=0)))
        with self._lock:
            owner = self._test_keys.setdefault(replica_id, key)
            if owner == key and wanted:
                self._test_ips.setdefault(copy, wanted)
        if owner != key:
            raise ConflictError(
                f"replica {replica_id!r} is in a test failover for {owner!r} already: Hyper-V "
                "runs one test failover per VM at a time"
            )
        return copy

    def _test_settings(
        self, replica_id: str, guest_ips: Mapping[str, Sequence[IPConfig] | None] | None
    ) -> dict[str, tuple[tuple[str, Any], ...]]:
        """MAC -> failover settings for ``guest_ips`` (checked before anything is sent)."""
        if guest_ips is None:
            return {}
        if not isinstance(guest_ips, Mapping):
            raise ValidationError.of(
                f"test copy of replica {replica_id!r}",
                f"guest_ips must map MACs to addresses, got {guest_ips!r}",
            )
        wanted: dict[str, tuple[tuple[str, Any], ...]] = {}
        findings: list[Finding] = []
        for mac, configs in guest_ips.items():
            normal = mac_of(mac) if isinstance(mac, str) else ""
            if not normal:
                findings.append(
                    Finding(f"test copy of replica {replica_id!r}", f"{mac!r} is not a MAC")
                )
                continue
            try:
                wanted[normal] = _failover_settings(replica_id, normal, configs)
            except ValidationError as error:
                findings.extend(error.findings)
        if findings:
            raise ValidationError(findings)
        return wanted

    def _lent_settings(
        self,
        ref: VMRef,
        adapters: Sequence[PSObject],
        wanted: Mapping[str, tuple[tuple[str, Any], ...]],
    ) -> tuple[tuple[tuple[Command, ...], ...], Pipeline]:
        """The statements that lend the replica's NICs the test settings, and the pipeline that
        gives their own back (read now: both families, as Hyper-V stores them)."""
        names: dict[str, str] = {}
        for mac in wanted:
            adapter = next((a for a in adapters if mac_of(a.get("MacAddress")) == mac), None)
            if adapter is None:
                raise NotFoundError(f"replica {str(ref)!r} has no NIC with MAC {mac!r}")
            names[mac] = self._adapter_name(ref, adapters, adapter, lambda other: False)
        reads: list[tuple[Command, ...]] = []
        for name in names.values():
            nic = (_vm(ref.guid), cmd("Get-VMNetworkAdapter", Name=literal_name(name)))
            reads += [nic, (*nic, cmd("Get-VMNetworkAdapterFailoverConfiguration"))]
        output = self._session_for(ref).run_checked(
            Pipeline("read the replica's failover addresses", tuple(reads))
        )
        stored: dict[str, PSObject | None] = {}
        current: str | None = None
        for item in output:
            if not isinstance(item, PSObject):
                continue
            if item.type_name == NETWORK_ADAPTER:
                current = mac_of(item.get("MacAddress"))
                stored[current] = None
            elif item.type_name == FAILOVER_SETTING and current is not None:
                stored[current] = item
        lend: list[tuple[Command, ...]] = []
        give_back: list[tuple[Command, ...]] = []
        for mac, name in names.items():
            lend += _setting_statements(ref, name, wanted[mac])
            give_back += _setting_statements(ref, name, _stored_settings(stored.get(mac)))
        return tuple(lend), Pipeline(
            "give the replica its own failover addresses back", tuple(give_back)
        )

    def _give_back(self, replica_id: str) -> None:
        """Restore a replica's failover settings lent to a test VM, if not done yet."""
        with self._lock:
            pending = self._giving_back.get(replica_id)
        if pending is None:
            return
        ref = VMRef.parse(replica_id, "replica")
        self._session_for(ref).run_checked(pending)
        with self._lock:
            if self._giving_back.get(replica_id) is pending:
                del self._giving_back[replica_id]

    def remove_test_copy(self, vm_id: str) -> None:
        ref = VMRef.parse(vm_id)
        session = self._session_for(ref)
        replications = session.run_checked(
            pipeline(
                "find the test VM's replica",
                cmd("Get-VMReplication", ReplicationRelationshipType="Simple"),
            )
        )
        for replication in _of_type(replications, REPLICATION):
            if guid_of_test_vm(replication) == ref.guid:
                owner = as_uuid(replication.get("VMId"))
                assert owner is not None
                session.run_checked(
                    pipeline("stop the test failover", (_vm(owner), cmd("Stop-VMFailover")))
                )
                with self._lock:
                    self._test_keys.pop(str(VMRef(ref.host, owner)), None)
                    self._test_ips.pop(str(ref), None)
                self._give_back(str(VMRef(ref.host, owner)))
                return
        found = session.run(pipeline("read the VM", _vm(ref.guid)))
        if found.errors and classify(found.errors[0]) is NotFoundError:
            return  # gone already
        if found.errors:
            raise to_error(found.errors[0], session.name, "read the VM")
        raise ConflictError(f"VM {vm_id!r} is not a test copy: not removed")

    def reverse_replication(self, replica_id: str) -> Replica:
        ref = VMRef.parse(replica_id, "replica")
        session = self._session_for(ref)
        _, replication = self._read_relationship(ref)
        mode = enum_name(replication.get("ReplicationMode"))
        if mode == "Replica":
            state = enum_name(replication.get("ReplicationState"))
            if state not in ("FailedOverWaitingCompletion", "FailedOver"):
                raise ConflictError(
                    f"replica {replica_id!r} is {state}: only a failed-over replica can "
                    "replicate back"
                )
            original = self._server(replication.get("PrimaryServerName"), replica_id)
            result = session.run(
                pipeline(
                    "reverse the replication",
                    (_vm(ref.guid), Command("Set-VMReplication", self._reverse_to(original))),
                )
            )
            if result.errors:
                _, replication = self._read_relationship(ref)
                if enum_name(replication.get("ReplicationMode")) != "Primary":
                    raise to_error(result.errors[0], session.name, "reverse the replication")
            else:
                _, replication = self._read_relationship(ref)
        elif mode != "Primary":
            raise NotFoundError(f"no replica {replica_id!r}")
        target = self._server(replication.get("ReplicaServerName"), replica_id)
        # A primary: reversed already (Hyper-V does not tell a reversed primary from an
        # original one), so the replica it replicates to is the answer.
        if enum_name(replication.get("ReplicationState")) == "ReadyForInitialReplication":
            self._start_initial_replication(ref)
        return self._replica(VMRef(target.name, ref.guid))

    # --- host failover: not modelled -------------------------------------------------------------

    def restart_on_host(self, vm_id: str, host: str) -> None:
        """Refused: restarting a VM of a failed host needs Hyper-V failover clustering."""
        VMRef.parse(vm_id)
        raise PermanentBackendError(_NO_CLUSTERING.format(what=f"restart VM {vm_id!r}", host=host))

    def migrate_vm(self, vm_id: str, host: str) -> None:
        """Refused: moving a VM between hosts needs Hyper-V failover clustering."""
        VMRef.parse(vm_id)
        raise PermanentBackendError(_NO_CLUSTERING.format(what=f"move VM {vm_id!r}", host=host))

    # --- internals: hosts and reads ---------------------------------------------------------------

    def _connection(self, host: str) -> HostConnection:
        for connection in self.connections:
            if connection.name == host:
                return connection
        for connection in self.connections:
            if isinstance(host, str) and connection.answers_to(host):
                return connection
        known = ", ".join(c.name for c in self.connections)
        raise NotFoundError(f"no Hyper-V host {host!r} (this backend has {known})")

    def _session_for(self, ref: VMRef) -> HostSession:
        return self._sessions[self._connection(ref.host).name]

    def _server(self, server_name: Any, about: str) -> HostConnection:
        """Our host for a server name Hyper-V reports (PrimaryServerName, ReplicaServerName)."""
        for connection in self.connections:
            if server_name and connection.answers_to(str(server_name)):
                return connection
        raise PermanentBackendError(
            f"{about}: Hyper-V names {server_name!r} as the other end of the replication, which "
            "is not a host of this backend; add it to the backend's hosts"
        )

    def _read_relationship(self, ref: VMRef) -> tuple[PSObject, PSObject]:
        session = self._session_for(ref)
        result = session.run(
            pipeline(
                "read the replication",
                _vm(ref.guid),
                (_vm(ref.guid), cmd("Get-VMReplication", ReplicationRelationshipType="Simple")),
            )
        )
        if result.errors:
            if classify(result.errors[0]) is NotFoundError:
                raise NotFoundError(f"no replica {str(ref)!r} ({result.errors[0]})")
            raise to_error(result.errors[0], session.name, "read the replication")
        vm = _one(result.output, VIRTUAL_MACHINE, f"VM {str(ref)!r}")
        return vm, _one(result.output, REPLICATION, f"replication of {str(ref)!r}")

    def _read_replica(self, ref: VMRef) -> tuple[PSObject, PSObject, tuple[RecoveryPoint, ...]]:
        """The replica VM, its relationship and its points (NotFound unless a Replica)."""
        vm, replication, points, _ = self._read_replica_output(ref, ())
        return vm, replication, points

    def _read_replica_output(
        self, ref: VMRef, extra: tuple[tuple[Command, ...], ...]
    ) -> tuple[PSObject, PSObject, tuple[RecoveryPoint, ...], tuple[Any, ...]]:
        session = self._session_for(ref)
        result = session.run(
            Pipeline(
                "read the replica",
                (
                    (_vm(ref.guid),),
                    (_vm(ref.guid), cmd("Get-VMReplication", ReplicationRelationshipType="Simple")),
                    (_vm(ref.guid), cmd("Get-VMSnapshot")),
                    *extra,
                ),
            )
        )
        if result.errors:
            if classify(result.errors[0]) is NotFoundError:
                raise NotFoundError(f"no replica {str(ref)!r} ({result.errors[0]})")
            raise to_error(result.errors[0], session.name, "read the replica")
        vm = _one(result.output, VIRTUAL_MACHINE, f"VM {str(ref)!r}")
        replication = _one(result.output, REPLICATION, f"replication of {str(ref)!r}")
        if enum_name(replication.get("ReplicationMode")) != "Replica":
            raise NotFoundError(
                f"no replica {str(ref)!r}: that VM is a Hyper-V "
                f"{enum_name(replication.get('ReplicationMode'))}"
            )
        points = recovery_points(ref, _of_type(result.output, SNAPSHOT))
        return vm, replication, points, result.output

    def _read_replica_nics(
        self, ref: VMRef, with_nics: bool
    ) -> tuple[PSObject, PSObject, list[PSObject]]:
        """The replica VM and its relationship (NotFound unless a Replica), with its NICs."""
        if not with_nics:
            vm, replication, _ = self._read_replica(ref)
            return vm, replication, []
        vm, replication, _, output = self._read_replica_output(
            ref, ((_vm(ref.guid), cmd("Get-VMNetworkAdapter")),)
        )
        return vm, replication, _of_type(output, NETWORK_ADAPTER)

    def _points(self, ref: VMRef) -> tuple[RecoveryPoint, ...]:
        return self._read_replica(ref)[2]

    def _replica(self, ref: VMRef) -> Replica:
        """The Replica kept as VM ``ref``, as the inventory shows it."""
        vm, replication, _ = self._read_replica(ref)
        primary = self._server(replication.get("PrimaryServerName"), str(ref))
        return replica_from(self._connection(ref.host), vm, replication, primary)

    def _adapter(self, ref: VMRef, mac: str) -> tuple[list[PSObject], PSObject]:
        output = self._session_for(ref).run_checked(
            pipeline("list the NICs", (_vm(ref.guid), cmd("Get-VMNetworkAdapter")))
        )
        adapters = _of_type(output, NETWORK_ADAPTER)
        wanted = mac_of(mac)
        for adapter in adapters:
            if wanted and mac_of(adapter.get("MacAddress")) == wanted:
                return adapters, adapter
        raise NotFoundError(f"VM {str(ref)!r} has no NIC with MAC {mac!r}")

    @staticmethod
    def _adapter_name(
        ref: VMRef, adapters: Sequence[PSObject], adapter: PSObject, fine: Any
    ) -> str:
        """The adapter's name, if it addresses that adapter alone (Hyper-V has no NIC id
        parameter); NICs that share it must already be as wanted (``fine``)."""
        name = str(adapter.get("Name") or "")
        clash = [
            a
            for a in adapters
            if a is not adapter and str(a.get("Name") or "") == name and not fine(a)
        ]
        if clash:
            macs = ", ".join(mac_of(a.get("MacAddress")) for a in clash)
            raise ConflictError(
                f"VM {str(ref)!r}: NIC {mac_of(adapter.get('MacAddress'))} shares its name "
                f"{name!r} with {macs}; Hyper-V addresses NICs by name, so give them distinct "
                "names (Rename-VMNetworkAdapter)"
            )
        return name

    # --- internals: replication ------------------------------------------------------------------

    def _enable(self, guid: uuid.UUID, target: HostConnection) -> Pipeline:
        settings: dict[str, Any] = {
            "ReplicaServerName": target.name,
            "ReplicaServerPort": target.replica_port,
            "AuthenticationType": target.replica_authentication,
        }
        if target.certificate_thumbprint:
            settings["CertificateThumbprint"] = target.certificate_thumbprint
        settings["RecoveryHistory"] = self.recovery_history
        settings["ReplicationFrequencySec"] = self.replication_frequency
        return pipeline(
            f"enable replication to {target.name}",
            (_vm(guid), Command("Enable-VMReplication", tuple(settings.items()))),
            (_vm(guid), cmd("Start-VMInitialReplication")),
        )

    def _reverse_to(self, original: HostConnection) -> tuple[tuple[str, Any], ...]:
        settings: list[tuple[str, Any]] = [
            ("Reverse", SWITCH),
            ("ReplicaServerName", original.name),
            ("ReplicaServerPort", original.replica_port),
            ("AuthenticationType", original.replica_authentication),
        ]
        if original.certificate_thumbprint:
            settings.append(("CertificateThumbprint", original.certificate_thumbprint))
        return tuple(settings)

    def _reconcile_enabled(
        self, ref: VMRef, target: HostConnection, problem: ErrorRecord | None, doing: str
    ) -> None:
        """After enabling (or finding it enabled): it must replicate to ``target`` and have its
        initial replication started; anything else is our error for ``problem``."""
        session = self._session_for(ref)
        try:
            _, replication = self._read_relationship(ref)
        except NotFoundError:
            if problem is not None:
                raise to_error(problem, session.name, doing) from None
            raise
        server = str(replication.get("ReplicaServerName") or "")
        if enum_name(replication.get("ReplicationMode")) != "Primary" or not target.answers_to(
            server
        ):
            if problem is not None:
                raise to_error(problem, session.name, doing)
            raise ConflictError(
                f"VM {str(ref)!r} replicates to {server!r} already, not to {target.name!r}"
            )
        if enum_name(replication.get("ReplicationState")) == "ReadyForInitialReplication":
            self._start_initial_replication(ref)

    def _start_initial_replication(self, primary: VMRef) -> None:
        session = self._session_for(primary)
        result = session.run(
            pipeline(
                "start the initial replication",
                (_vm(primary.guid), cmd("Start-VMInitialReplication")),
            )
        )
        if result.errors:
            _, replication = self._read_relationship(primary)
            if enum_name(replication.get("ReplicationState")) == "ReadyForInitialReplication":
                raise to_error(result.errors[0], session.name, "start the initial replication")

    def _prepare_planned_failover(self, primary: VMRef) -> str | None:
        """-Prepare the primary when it is off ("prepared"), or say it was ("already")."""
        with self._lock:
            if primary.host in self._down:
                return None
        try:
            vm, replication = self._read_relationship(primary)
        except TransientBackendError:
            return None  # the primary does not answer: wait for what Hyper-V has
        state = enum_name(replication.get("ReplicationState"))
        if state == "PreparedForFailover":
            return "already"
        if enum_name(vm.get("State")) != "Off" or state != "Replicating":
            return None
        self._session_for(primary).run_checked(
            pipeline(
                "prepare the planned failover",
                (_vm(primary.guid), cmd("Start-VMFailover", Prepare=SWITCH, **_NO)),
            )
        )
        return "prepared"

    def _wait_for_point(
        self,
        ref: VMRef,
        seen: set[str],
        consistency: Consistency,
        replication: PSObject,
    ) -> RecoveryPoint:
        frequency = replication.get("ReplicationFrequencySec") or self.replication_frequency
        period = float(frequency)
        if consistency is Consistency.APPLICATION:
            period = float(replication.get("VSSSnapshotFrequencyHour") or 1) * 3600
        timeout = self.sync_timeout or 2 * period + self.sync_poll_interval
        deadline = self.clock.monotonic() + timeout
        while True:
            self.clock.sleep(min(self.sync_poll_interval, max(timeout / 4, 0.001)))
            fresh = [
                p
                for p in self._points(ref)
                if p.id not in seen
                and (consistency is Consistency.CRASH or p.consistency is Consistency.APPLICATION)
            ]
            if fresh:
                return fresh[-1]
            if self.clock.monotonic() >= deadline:
                raise TransientBackendError(
                    f"replica {str(ref)!r}: no new {consistency.value}-consistent recovery point "
                    f"within {timeout:g} s (Hyper-V replicates every {frequency} s; is replication "
                    "running on the primary?)"
                )

    # --- internals: networks ---------------------------------------------------------------------

    @staticmethod
    def _mapped_switches(
        vm: PSObject,
        adapters: Sequence[PSObject],
        switches: Sequence[PSObject],
        network_map: Mapping[str, str] | None,
        target: HostConnection,
    ) -> dict[str, str]:
        """MAC -> switch each replica NIC joins; every one must exist on the target host."""
        names = {str(s.get("Name")) for s in switches}
        wanted: dict[str, str] = {}
        findings: list[Finding] = []
        for adapter in adapters:
            source = adapter.get("SwitchName")
            mac = mac_of(adapter.get("MacAddress"))
            if not source or not mac:
                continue  # not connected stays not connected
            switch = (network_map or {}).get(str(source), str(source))
            if switch not in names:
                findings.append(
                    Finding(
                        f"VM {vm.get('Name')!r} NIC {mac}",
                        f"network {switch!r} does not exist on Hyper-V host {target.name!r}",
                        hint="map it to one of: " + ", ".join(sorted(names)),
                    )
                )
            wanted[mac] = switch
        if findings:
            raise ValidationError(findings)
        return wanted

    def _connect_replica_nics(self, replica: VMRef, wanted: Mapping[str, str]) -> None:
        session = self._session_for(replica)
        output = session.run_checked(
            pipeline("list the replica's NICs", (_vm(replica.guid), cmd("Get-VMNetworkAdapter")))
        )
        adapters = _of_type(output, NETWORK_ADAPTER)
        statements: list[tuple[Command, ...]] = []
        for adapter in adapters:
            switch = wanted.get(mac_of(adapter.get("MacAddress")))
            if switch is None or adapter.get("SwitchName") == switch:
                continue
            name = self._adapter_name(
                replica,
                adapters,
                adapter,
                lambda other, s=switch: wanted.get(mac_of(other.get("MacAddress"))) == s,
            )
            statements.append(
                (
                    _vm(replica.guid),
                    cmd("Get-VMNetworkAdapter", Name=literal_name(name)),
                    cmd("Connect-VMNetworkAdapter", SwitchName=switch),
                )
            )
        if statements:
            session.run_checked(Pipeline("connect the replica's NICs", tuple(statements)))


def _about_guests(record: ErrorRecord) -> bool:
    """An error of the guests' WMI reads (not of Hyper-V's cmdlets): the command missing from
    the endpoint, or the class or namespace not readable."""
    return record.command_class.startswith("Microsoft.Management.Infrastructure.CimCmdlets") or (
        record.error_id == "CommandNotFoundException" and "Get-CimInstance" in str(record)
    )


def _replica_and_point(replica_id: str, point_id: str) -> tuple[VMRef, PointRef]:
    """Both ids read back; a point of another replica is refused without asking a host."""
    ref = VMRef.parse(replica_id, "replica")
    point = PointRef.parse(point_id)
    if point.replica != ref:
        raise ConflictError(
            f"recovery point {point_id!r} belongs to replica {str(point.replica)!r}, "
            f"not {replica_id!r}"
        )
    return ref, point


def _one(output: Iterable[Any], type_name: str, what: str) -> PSObject:
    found = _of_type(output, type_name)
    if not found:
        raise NotFoundError(f"no {what}")
    return found[0]


_CLEAR_BOTH: tuple[tuple[str, Any], ...] = (
    ("ClearFailoverIPv4Settings", SWITCH),
    ("ClearFailoverIPv6Settings", SWITCH),
)

#: The properties of a VMNetworkAdapterFailoverSetting, by the Set- parameter that sets each.
_FAILOVER_FIELDS = (
    "IPv4Address",
    "IPv4SubnetMask",
    "IPv4DefaultGateway",
    "IPv4PreferredDNSServer",
    "IPv4AlternateDNSServer",
    "IPv6Address",
    "IPv6SubnetPrefixLength",
    "IPv6DefaultGateway",
    "IPv6PreferredDNSServer",
    "IPv6AlternateDNSServer",
)


def _setting_statements(
    ref: VMRef, name: str, values: tuple[tuple[str, Any], ...]
) -> tuple[tuple[Command, ...], ...]:
    """Statements that make a NIC's failover TCP/IP settings exactly ``values``: both families
    cleared (so no gateway or DNS server of before survives), then the values set."""
    adapter = (_vm(ref.guid), cmd("Get-VMNetworkAdapter", Name=literal_name(name)))
    statements = [(*adapter, Command("Set-VMNetworkAdapterFailoverConfiguration", _CLEAR_BOTH))]
    if values:
        statements.append((*adapter, Command("Set-VMNetworkAdapterFailoverConfiguration", values)))
    return tuple(statements)


def _stored_settings(setting: PSObject | None) -> tuple[tuple[str, Any], ...]:
    """The Set- parameters that give back a NIC's failover settings as Hyper-V reported them."""
    if setting is None:
        return ()
    values: list[tuple[str, Any]] = []
    for field in _FAILOVER_FIELDS:
        value = setting.get(field)
        if value is None or value == "":
            continue
        if field == "IPv6SubnetPrefixLength":
            try:
                value = int(str(value))
            except ValueError:
                continue
        values.append((field, value if isinstance(value, int) else str(value)))
    return tuple(values)


def _failover_settings(
    vm_id: str, mac: str, configs: Sequence[IPConfig] | None
) -> tuple[tuple[str, Any], ...]:
    """Set-VMNetworkAdapterFailoverConfiguration's value parameters for ``configs`` (one address
    per family, two DNS servers); empty for None: no settings, the guest keeps its own."""
    item = f"VM {vm_id!r} NIC {mac}"
    if configs is None:
        return ()
    findings: list[Finding] = []
    by_family: dict[int, IPConfig] = {}
    for given in cast(Sequence[object], configs):
        if not isinstance(given, IPConfig):
            findings.append(Finding(item, f"{given!r} is not an IPConfig"))
            continue
        config = given
        version = config.address.version
        if version in by_family:
            findings.append(
                Finding(item, f"two IPv{version} addresses: Hyper-V injects one per family")
            )
        if len(config.dns) > 2:
            findings.append(
                Finding(item, f"{len(config.dns)} DNS servers: Hyper-V injects two per family")
            )
        if config.dns_suffixes:
            findings.append(Finding(item, "Hyper-V's failover settings carry no DNS suffixes"))
        by_family[version] = config
    if not by_family and not findings:
        findings.append(Finding(item, "no address given", hint="pass None to clear the settings"))
    if findings:
        raise ValidationError(findings)
    settings: list[tuple[str, Any]] = []
    for version, prefix in ((4, "IPv4"), (6, "IPv6")):
        chosen = by_family.get(version)
        if chosen is None:
            continue
        settings.append((f"{prefix}Address", str(chosen.address.ip)))
        if version == 4:
            settings.append(("IPv4SubnetMask", str(chosen.address.netmask)))
        else:
            settings.append(("IPv6SubnetPrefixLength", chosen.address.network.prefixlen))
        if chosen.gateway is not None:
            settings.append((f"{prefix}DefaultGateway", str(chosen.gateway)))
        for label, server in zip(
            ("PreferredDNSServer", "AlternateDNSServer"), chosen.dns, strict=False
        ):
            settings.append((f"{prefix}{label}", str(server)))
    return tuple(settings)
