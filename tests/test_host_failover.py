"""Host failover through the runner on the lab: restart a failed host's VMs, move them back."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from vmfailover import (
    Cluster,
    ClusterPolicy,
    ConflictError,
    HostFailoverReport,
    MoveBack,
    NotFoundError,
    Outcome,
    PowerState,
    Runner,
    RunResult,
    StartOrder,
    UnplacedReason,
    ValidationError,
    check_cluster,
)
from vmfailover.backends.memory import MemoryBackend
from vmfailover.clock import VirtualClock
from vmfailover.model import VM, Inventory, Nic
from vmfailover.testing import LAB_DEPENDENCIES, LAB_VMS, lab

APART = [{"dc01", "dc02"}, {"db01", "db02"}, {"web01", "web02"}]


def lab_order() -> StartOrder:
    order = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        order.add(name, after=after)
    return order


def placement_of(inventory: Inventory) -> dict[str, tuple[str, PowerState]]:
    return {vm.name: (vm.host, vm.power_state) for vm in inventory.vms if vm.name in LAB_VMS}


def assert_apart(inventory: Inventory) -> None:
    hosts = {vm.name: vm.host for vm in inventory.vms if vm.power_state is PowerState.ON}
    for members in APART:
        running = [hosts[name] for name in members if name in hosts]
        assert len(running) == len(set(running)), f"{members} share a host: {running}"


@pytest.fixture
def backend() -> MemoryBackend:
    return lab()


@pytest.fixture
def runner(backend: MemoryBackend) -> Runner:
    return Runner(backend, poll_interval=2.0)


def test_a_host_failure_restarts_its_vms_in_dependency_order_apart_with_downtime(
    backend: MemoryBackend, runner: Runner
) -> None:
    policy = ClusterPolicy(anti_affinity=APART)
    failed_at = backend.clock.now()
    backend.fail_host("esx-a1")
    report = runner.host_failover(
        "prod-cluster", ["esx-a1"], policy, lab_order(), failed_at=failed_at
    )

    assert isinstance(report, HostFailoverReport)
    assert report.result is RunResult.SUCCEEDED
    assert {r.name for r in report.vms} == {"dc01", "db01", "app01", "web01"}
    assert report.unplaced == ()
    inventory = backend.inventory()
    for restart in report.vms:
        vm = inventory.vm(restart.vm)
        assert restart.outcome is Outcome.READY
        assert (vm.host, vm.power_state) == (restart.to_host, PowerState.ON)
        assert restart.from_host == "esx-a1" and restart.to_host != "esx-a1"
        assert restart.ready_at is not None
        assert restart.downtime_seconds == (restart.ready_at - failed_at).total_seconds()
    assert_apart(inventory)
    # dependencies among the restarted VMs: dc01 -> db01 -> app01 -> web01, each started only
    # once the one before was ready (the others it needs still ran on esx-a2 and esx-a3)
    chain = [report.vm(name) for name in ("dc01", "db01", "app01", "web01")]
    for before, after in itertools.pairwise(chain):
        assert before.ready_at is not None and after.started_at is not None
        assert after.started_at >= before.ready_at
    # boots take 45, 60, 35 and 20 s; readiness is polled every 2 s
    assert report.downtime["dc01"] == pytest.approx(46, abs=2)
    assert report.max_downtime_seconds == report.downtime["web01"]
    assert report.max_downtime_seconds == pytest.approx(45 + 60 + 35 + 20, abs=10)
    assert report.downtime_from == "host failure"
    assert "esx-a1" in str(report) and "downtime" in str(report)
    assert "<svg" in report._repr_html_()
    assert report.as_dict()["vms"][0]["name"] == "dc01"


def test_a_second_concurrent_failure_reports_exactly_what_could_not_be_placed_and_why(
    backend: MemoryBackend, runner: Runner
) -> None:
    policy = ClusterPolicy(reserve_hosts=1, anti_affinity=APART)
    inventory = backend.inventory()
    assert check_cluster(inventory, Cluster.of(inventory, "prod-cluster"), policy) == []

    backend.fail_host("esx-a1")
    first = runner.host_failover("prod-cluster", "esx-a1", policy, lab_order())
    assert first.result is RunResult.SUCCEEDED
    backend.fail_host("esx-a2")  # a second failure while esx-a1 is still down: beyond reserve 1
    second = runner.host_failover("prod-cluster", "esx-a2", policy, lab_order())

    unplaced = {entry.name: entry for entry in second.unplaced}
    assert set(unplaced) == {"dc02", "db02", "web02"}
    assert {entry.reason for entry in unplaced.values()} == {UnplacedReason.ANTI_AFFINITY}
    assert "esx-a3 (dc01)" in unplaced["dc02"].detail
    assert "esx-a3 (db01)" in unplaced["db02"].detail
    assert "esx-a3 (web01)" in unplaced["web02"].detail
    for name in ("dc02", "db02", "web02"):
        restart = second.vm(name)
        assert restart.to_host is None and restart.unplaced is unplaced[name]
        assert restart.outcome is not Outcome.READY
    # what needed them follows its failure policy (skip dependents), and says why
    moved_there_before = first.vm("app01").to_host
    victims = {r.name for r in second.vms}
    assert ("app01" in victims) == (moved_there_before == "esx-a2")
    assert second.vm("app02").outcome is Outcome.SKIPPED
    assert "db02" in (second.vm("app02").reason or "")
    assert second.result is not RunResult.SUCCEEDED
    assert "3 not placed" in second.summary()
    inventory = backend.inventory()
    assert_apart(inventory)
    for name in ("dc02", "db02", "web02", "app02"):
        assert inventory.vm(second.vm(name).vm).power_state is PowerState.OFF


def test_move_back_restores_the_original_placement(backend: MemoryBackend, runner: Runner) -> None:
    policy = ClusterPolicy(anti_affinity=APART)
    original = placement_of(backend.inventory())
    backend.fail_host("esx-a1")
    first = runner.host_failover("prod-cluster", "esx-a1", policy, lab_order())
    backend.fail_host("esx-a2")
    second = runner.host_failover("prod-cluster", "esx-a2", policy, lab_order())
    with pytest.raises(ConflictError, match="'esx-a2' is not back"):
        runner.move_back(second)
    assert placement_of(backend.inventory())["dc02"] == ("esx-a2", PowerState.OFF)

    backend.restore_host("esx-a2")
    back = runner.move_back(second)
    assert back.restored, back.differences
    assert back.vm("dc02").how is MoveBack.STARTED  # not placed: started once its host is back
    backend.restore_host("esx-a1")
    home = runner.move_back(first)
    assert home.restored, home.differences
    assert {m.how for m in home.vms} == {MoveBack.LIVE}
    assert all(m.downtime_seconds == 0 for m in home.vms)
    assert placement_of(backend.inventory()) == original
    again = runner.move_back(first)
    assert {m.how for m in again.vms} == {MoveBack.HOME}
    assert "original placement restored" in str(again)


def cpu_cluster() -> MemoryBackend:
    """Three hosts, the third of another CPU family: VMs cannot move live onto or off it."""
    backend = MemoryBackend(clock=VirtualClock())
    backend.add_site("a")
    backend.add_datastore("shared", "a")
    backend.add_network("lan", "a")
    for name, family in (("h1", "intel"), ("h2", "intel"), ("h3", "amd")):
        backend.add_host(
            name,
            "a",
            cluster="c",
            datastores=["shared"],
            networks=["lan"],
            cpu_family=family,
            cpu_cores=8,
            memory_mb=16384,
        )
    for number, host in ((1, "h1"), (2, "h1"), (3, "h2")):
        backend.add_vm(
            VM(
                id=f"vm-{number}",
                name=f"app{number}",
                host=host,
                power_state=PowerState.ON,
                nics=(Nic(f"00:50:56:00:00:0{number}", "lan"),),
                cpu=2,
                memory_mb=4096,
                datastore="shared",
            ),
            boot_seconds=20,
        )
    return backend


def test_move_back_shuts_down_and_restarts_what_cannot_move_live() -> None:
    backend = cpu_cluster()
    runner = Runner(backend, poll_interval=1.0)
    backend.fail_host("h1")
    policy = ClusterPolicy(anti_affinity=[{"app1", "app3"}])
    report = runner.host_failover("c", "h1", policy)
    assert report.vm("app1").to_host == "h3"  # app3 runs on h2
    backend.restore_host("h1")
    back = runner.move_back(report)
    assert back.restored
    cold = back.vm("app1")
    assert cold.how is MoveBack.COLD
    assert cold.downtime_seconds is not None and cold.downtime_seconds >= 20
    assert [(s.step, s.error is None) for s in cold.steps][:4] == [
        ("migrate_vm", False),  # live: refused across CPU families
        ("shutdown_guest", True),
        ("migrate_vm", True),
        ("power_on", True),
    ]
    assert any("cannot move live" in w for w in back.warnings)
    moved = back.vm("app2")
    assert moved.how is (MoveBack.LIVE if report.vm("app2").to_host == "h2" else MoveBack.COLD)


def test_without_an_order_restart_priority_goes_first(backend: MemoryBackend) -> None:
    runner = Runner(backend, poll_interval=2.0)
    policy = ClusterPolicy(restart_priority={"web01": "highest", "dc01": "low"})
    backend.fail_host("esx-a1")
    report = runner.host_failover("prod-cluster", "esx-a1", policy)
    assert next(r.name for r in report.vms) == "web01"
    web, dc = report.vm("web01"), report.vm("dc01")
    assert web.ready_at is not None and dc.started_at is not None
    assert dc.started_at >= web.ready_at, "a priority starts once the higher ones settled"
    assert report.downtime_from == "decision"


def test_a_restart_disabled_vm_is_reported_and_stays_off(
    backend: MemoryBackend, runner: Runner
) -> None:
    policy = ClusterPolicy(restart_priority={"web01": "disabled"})
    backend.fail_host("esx-a1")
    report = runner.host_failover("prod-cluster", "esx-a1", policy, lab_order())
    web = report.vm("web01")
    assert web.unplaced is not None and web.unplaced.reason is UnplacedReason.RESTART_DISABLED
    assert web.outcome is Outcome.FAILED
    backend.restore_host("esx-a1")
    back = runner.move_back(report)
    assert "web01" not in {m.name for m in back.vms}
    assert backend.inventory().vm(web.vm).power_state is PowerState.OFF


def test_a_cut_off_host_keeps_its_vms_nothing_starts_twice(
    backend: MemoryBackend, runner: Runner
) -> None:
    backend.isolate_host("esx-a1")  # told it failed, but it still runs its VMs
    report = runner.host_failover("prod-cluster", "esx-a1", ClusterPolicy(), lab_order())
    assert report.result is RunResult.FAILED
    assert "holds the lock on its disks" in (report.vm("dc01").reason or "")
    inventory = backend.inventory()
    assert {inventory.vm(r.vm).host for r in report.vms} == {"esx-a1"}


def test_replica_vms_of_a_failed_host_stay_off(backend: MemoryBackend, runner: Runner) -> None:
    backend.fail_host("esx-b1")
    report = runner.host_failover("dr-cluster", "esx-b1")
    assert report.vms == ()
    assert report.result is RunResult.SUCCEEDED  # nothing to restart
    assert any("is the replica of" in warning for warning in report.warnings)


def test_bad_requests_are_refused_before_anything_is_touched(
    backend: MemoryBackend, runner: Runner
) -> None:
    before = backend.inventory()
    with pytest.raises(ConflictError, match="'esx-a1' answers"):
        runner.host_failover("prod-cluster", "esx-a1")
    with pytest.raises(ValidationError, match="esx-b1"):
        runner.host_failover("prod-cluster", ["esx-b1"])
    with pytest.raises(NotFoundError, match="no cluster"):
        runner.host_failover("no-cluster", ["esx-a1"])
    with pytest.raises(ValidationError, match="ClusterPolicy"):
        runner.host_failover("prod-cluster", ["esx-a1"], {"reserve_hosts": 1})  # type: ignore[arg-type]
    backend.fail_host("esx-a1")
    with pytest.raises(ValidationError, match="'nope'"):
        runner.host_failover("prod-cluster", ["esx-a1"], vms=["dc01", "nope"])
    cycle = StartOrder()
    cycle.add("dc01", after="db01")
    cycle.add("db01", after="dc01")
    with pytest.raises(ValidationError, match="cycle"):
        runner.host_failover("prod-cluster", ["esx-a1"], order=cycle)
    with pytest.raises(ValidationError, match="HostFailoverReport"):
        runner.move_back("run-1")  # type: ignore[arg-type]
    after = backend.inventory()
    assert [vm for vm in after.vms if vm.host != "esx-a1"] == [
        vm for vm in before.vms if vm.host != "esx-a1"
    ]


def test_only_the_vms_asked_for_restart(backend: MemoryBackend, runner: Runner) -> None:
    backend.fail_host("esx-a1")
    at = backend.clock.now() - timedelta(seconds=30)
    report = runner.host_failover("prod-cluster", "esx-a1", vms=["dc01", "vm-003"], failed_at=at)
    assert {r.name for r in report.vms} == {"dc01", "db01"}
    assert all((r.downtime_seconds or 0) >= 30 for r in report.vms)
    app01 = backend.inventory().vm("vm-005")  # not asked for: left on its dead host
    assert (app01.name, app01.host, app01.power_state) == ("app01", "esx-a1", PowerState.OFF)
