"""The isolation response end to end on the lab, on a virtual clock: an isolated host that powers
its VMs off has them restarted on the survivors, never two copies at once; a guest that hangs on
shutdown is restarted only once its host has powered it off; leave_powered_on restarts nothing."""

from __future__ import annotations

import pytest

from vmfailover import (
    BackendWitness,
    Cluster,
    ClusterPolicy,
    HostDecision,
    HostFailoverResponse,
    HostMonitor,
    HostState,
    IsolationResponse,
    MemoryBackend,
    PowerState,
    Runner,
    RunResult,
    ValidationError,
    VMPowerWitness,
)
from vmfailover.policy.host_health import HealthEvent
from vmfailover.testing import lab

INTERVAL, GRACE = 5.0, 30.0
ISOLATED = ("dc02", "db02", "app02", "web02")  # the lab's VMs on esx-a2


class DatastoreHeartbeat:
    """The lab's second vantage point: host power as an out-of-band controller sees it, VM power
    as datastore heartbeating shows it (the memory world keeps both true while management is
    lost)."""

    __name__ = "datastore_heartbeat"

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend

    def __call__(self, host: str) -> bool | None:
        return self.backend.inventory().host(host).power is PowerState.ON

    def vm_power_states(self, host: str) -> dict[str, PowerState]:
        return {vm.id: vm.power_state for vm in self.backend.inventory().vms if vm.host == host}


def watching(
    backend: MemoryBackend, response: str
) -> tuple[HostMonitor, HostFailoverResponse, list[str]]:
    runner = Runner(backend, poll_interval=2.0)
    cluster = Cluster.of(backend.inventory(), "prod-cluster")
    policy = ClusterPolicy(anti_affinity=[{"dc01", "dc02"}], isolation_response=response)
    failover = HostFailoverResponse(runner, cluster, policy)
    twice: list[str] = []

    def no_vm_runs_twice(decision: HostDecision) -> None:  # checked at every decision
        inventory = backend.inventory()
        ids = [vm.id for vm in inventory.vms]
        if len(ids) != len(set(ids)) or backend.split_brains():
            twice.append(str(decision))

    witness = DatastoreHeartbeat(backend)
    assert isinstance(witness, VMPowerWitness)
    watch = HostMonitor(
        backend,
        INTERVAL,
        GRACE,
        witness,
        hosts=cluster,
        on_failure=failover,
        on_decision=no_vm_runs_twice,
    )
    return watch, failover, twice


def ids_of(backend: MemoryBackend, names: tuple[str, ...]) -> dict[str, str]:
    return {vm.name: vm.id for vm in backend.inventory().vms if vm.name in names}


def test_power_off_restarts_the_isolated_hosts_vms_on_the_survivors() -> None:
    backend = lab()
    watch, failover, twice = watching(backend, "power_off")
    assert watch.health.isolation_response == "power_off", "taken from the response's policy"
    watch.run(20)
    isolated_at = backend.clock.now()
    backend.isolate_host("esx-a2", "power_off")
    assert all(
        vm.power_state is PowerState.OFF for vm in backend.inventory().vms if vm.host == "esx-a2"
    )
    watch.run(GRACE + 300)
    assert watch.state("esx-a2") is HostState.PARTITIONED, "alive, so never declared failed"
    stopped = [d for d in watch.decisions if d.event is HealthEvent.VMS_STOPPED]
    assert len(stopped) == 1
    assert set(stopped[0].restart_vms or ()) == set(ids_of(backend, ISOLATED).values())
    (report,) = failover.reports
    assert failover.errors == [] and watch.callback_errors == ()
    assert report.result is RunResult.SUCCEEDED
    assert {r.name for r in report.vms} == set(ISOLATED)
    inventory = backend.inventory()
    for name in ISOLATED:
        vm = inventory.vm(ids_of(backend, (name,))[name])
        assert vm.host in {"esx-a1", "esx-a3"} and vm.power_state is PowerState.ON
    assert inventory.vm(ids_of(backend, ("dc02",))["dc02"]).host == "esx-a3"  # anti-affinity
    for restart in report.vms:
        assert restart.started_at is not None and restart.started_at >= isolated_at
    assert twice == [] and backend.split_brains() == ()
    assert {o.name for o in watch.restarts if o.restarted} == set(ISOLATED)


def test_shutdown_restarts_a_hung_guest_only_once_its_host_powered_it_off() -> None:
    backend = lab()
    hung = ids_of(backend, ("db02",))["db02"]
    backend.set_boot(hung, boots=False)  # its guest never finishes shutting down
    watch, failover, twice = watching(backend, "shutdown")
    watch.run(20)
    backend.isolate_host("esx-a2", "shutdown", shutdown_timeout=120)
    watch.run(GRACE + 30)
    first = next(d for d in watch.decisions if d.event is HealthEvent.VMS_STOPPED)
    assert first.isolation is not None and first.isolation.running == (hung,)
    assert hung not in (first.restart_vms or ())
    assert "still running, never restarted" in str(first.isolation)
    assert f"never restarted: {hung}" in first.reason
    assert backend.inventory().vm(hung).host == "esx-a2"
    assert backend.inventory().vm(hung).power_state is PowerState.ON, "still runs, not touched"
    assert [{r.name for r in report.vms} for report in failover.reports] == [
        {"dc02", "app02", "web02"}
    ]
    watch.run(200)  # the host agent powers the hung guest off after 120 s
    assert [{r.name for r in report.vms} for report in failover.reports][1:] == [{"db02"}]
    assert backend.inventory().vm(hung).host in {"esx-a1", "esx-a3"}
    assert twice == [] and failover.errors == [] and watch.callback_errors == ()


def test_leave_powered_on_restarts_nothing() -> None:
    backend = lab()
    watch, failover, twice = watching(backend, "leave_powered_on")
    watch.run(20)
    backend.isolate_host("esx-a2")
    watch.run(GRACE + 300)
    assert watch.state("esx-a2") is HostState.PARTITIONED
    assert failover.reports == [] and twice == []
    assert not any(d.event is HealthEvent.VMS_STOPPED for d in watch.decisions)
    inventory = backend.inventory()
    assert all(inventory.vm(i).host == "esx-a2" for i in ids_of(backend, ISOLATED).values())


def test_a_witness_without_vm_power_restarts_nothing() -> None:
    backend = lab()
    runner = Runner(backend, poll_interval=2.0)
    policy = ClusterPolicy(isolation_response="power_off")
    failover = HostFailoverResponse(runner, "prod-cluster", policy)

    def power_controller(host: str) -> bool | None:  # sees hosts, not VMs
        return backend.inventory().host(host).power is PowerState.ON

    watch = HostMonitor(backend, INTERVAL, GRACE, power_controller, on_failure=failover)
    watch.run(20)
    backend.isolate_host("esx-a2", "power_off")
    watch.run(GRACE + 120)
    assert watch.state("esx-a2") is HostState.PARTITIONED and failover.reports == []


def test_a_backend_witness_shows_vm_power_only_where_it_reaches() -> None:
    other_path = lab()
    witness = BackendWitness(other_path)
    assert isinstance(witness, VMPowerWitness)
    shown = witness.vm_power_states("esx-a2")
    assert shown is not None and set(shown) == set(ids_of(other_path, ISOLATED).values())
    other_path.isolate_host("esx-a2")
    assert witness.vm_power_states("esx-a2") is None
    assert witness.vm_power_states("no-such-host") is None
    other_path.faults.fail("inventory")
    assert witness.vm_power_states("esx-a1") is None


def test_the_world_plays_shutdown_over_time_and_refuses_an_unknown_response() -> None:
    backend = lab()
    ids = ids_of(backend, ISOLATED)
    backend.set_boot(ids["web02"], boots=False)
    with pytest.raises(ValidationError, match="isolate_host response"):
        backend.isolate_host("esx-a2", "reboot")
    backend.isolate_host("esx-a2", IsolationResponse.SHUTDOWN, shutdown_timeout=60)

    def power() -> dict[str, PowerState]:
        inventory = backend.inventory()
        return {name: inventory.vm(vm_id).power_state for name, vm_id in ids.items()}

    assert set(power().values()) == {PowerState.ON}, "a guest shutdown takes time"
    backend.clock.advance(5)  # the lab's guests shut down in 5 s
    assert power() == {
        "dc02": PowerState.OFF,
        "db02": PowerState.OFF,
        "app02": PowerState.OFF,
        "web02": PowerState.ON,
    }
    backend.clock.advance(55)
    assert power()["web02"] is PowerState.OFF, "powered off at the timeout"

    backend = lab()
    backend.isolate_host("esx-a2", "shutdown")
    backend.restore_host("esx-a2")  # back before the guests were down: the shutdown is dropped
    backend.clock.advance(600)
    inventory = backend.inventory()
    assert all(inventory.vm(vm_id).power_state is PowerState.ON for vm_id in ids.values())
