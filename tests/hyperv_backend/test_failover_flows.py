"""Failovers end to end against a primary and a replica simulated host: a regular failover of a
small plan through the Runner, and the protocol primitives of planned failover, test failover
and failback, driven directly."""

from __future__ import annotations

import pytest

from vmfailover import Runner, StartOrder
from vmfailover.engine.results import Outcome, RunResult
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.model import Consistency, IPConfig, PowerState, ReplicaState

from .conftest import World, add_vm, guid_of, replicate


def model_vm(world: World, vm_id: str):  # type: ignore[no-untyped-def]
    host = world.a if vm_id.startswith("hv-a/") else world.b
    assert host.model is not None
    return host.model.vm(guid_of(vm_id))


def three_tier(world: World) -> dict[str, str]:
    """dc01, db01, app01 replicating to hv-b, each with a recovery point."""
    ids = {name: add_vm(world, name, boot_seconds=30) for name in ("dc01", "db01", "app01")}
    for vm_id in ids.values():
        replica = replicate(world, vm_id)
        world.write(vm_id)
        world.backend.sync(replica.id)
    return ids


def test_regular_failover_of_a_plan_through_the_runner(world: World) -> None:
    ids = three_tier(world)
    # On Hyper-V a replica carries its source's name, so the plan names VMs by id.
    order = StartOrder()
    order.add(ids["dc01"])
    order.add(ids["db01"], after=[ids["dc01"]])
    order.add(ids["app01"], after=[ids["db01"]])
    world.a.stop()  # the primary site is lost

    with pytest.raises(ValidationError) as refused:  # nothing says its VMs are off
        Runner(world.backend).failover(order, kind="regular")
    assert len(refused.value.findings) == 3
    assert all("not known to be powered off" in f.message for f in refused.value.findings), [
        str(f) for f in refused.value.findings
    ]

    world.backend.declare_host_down("hv-a")  # the operator knows the site is down
    report = Runner(world.backend, poll_interval=5).failover(order, kind="regular")
    assert report.result is RunResult.SUCCEEDED, report
    by_name = {name: next(r for r in report.vms if r.vm == ids[name]) for name in ids}
    assert [by_name[n].outcome for n in ("dc01", "db01", "app01")] == [Outcome.READY] * 3
    dc, db, app = (by_name[n] for n in ("dc01", "db01", "app01"))
    assert dc.ready_at is not None and db.started_at is not None
    assert dc.ready_at <= db.started_at  # the start order held
    assert db.ready_at is not None and app.started_at is not None
    assert db.ready_at <= app.started_at
    inventory = world.backend.inventory()
    for name, source in ids.items():
        replica = inventory.replica_of(source)
        assert replica.state is ReplicaState.FAILED_OVER
        assert inventory.vm(replica.replica_vm).power_state is PowerState.ON
        assert model_vm(world, replica.replica_vm).data_version == 1, name


def test_planned_failover_primitives_lose_no_data(world: World) -> None:
    backend = world.backend
    source = add_vm(world, "db01")
    replica = replicate(world, source)
    backend.sync(replica.id)
    world.write(source)
    world.write(source)  # written after the last recovery point

    backend.shutdown_guest(source, timeout=300)  # Stop-VM
    point = backend.sync(replica.id)  # source off: Start-VMFailover -Prepare
    assert point.consistency is Consistency.CRASH
    assert backend.recovery_points(replica.id)[-1] == point
    backend.revert(replica.id, point.id)  # Start-VMFailover on the replica
    reverse = backend.reverse_replication(replica.id)  # Set-VMReplication -Reverse
    backend.power_on(replica.replica_vm)  # Start-VM

    assert model_vm(world, replica.replica_vm).data_version == 2  # nothing lost
    assert reverse.source_vm == replica.replica_vm
    assert reverse.replica_vm == source
    inventory = backend.inventory()
    assert inventory.replica(reverse.id).state is ReplicaState.READY  # in sync already
    assert inventory.vm(source).power_state is PowerState.OFF
    with pytest.raises(ConflictError):  # the old primary is a replica now
        backend.power_on(source)


def test_test_failover_primitives_leave_production_running(world: World) -> None:
    backend = world.backend
    source = add_vm(world, "web01")
    replica = replicate(world, source)
    point = backend.sync(replica.id)

    copy = backend.create_test_copy(replica.id, point.id, key="drill-1")
    assert backend.create_test_copy(replica.id, point.id, key="drill-1") == copy
    with pytest.raises(ConflictError, match="one test failover per VM"):
        backend.create_test_copy(replica.id, point.id, key="drill-2")
    mac = backend.inventory().vm(copy).nics[0].mac
    backend.connect_nic(copy, mac, "DR-Test")
    with pytest.raises(ConflictError, match="Replication is not enabled"):
        backend.set_guest_ip(copy, mac, [IPConfig("10.9.0.5/24")])  # set it on the replica
    backend.power_on(copy)
    assert backend.readiness(copy).ready

    during = backend.inventory()
    assert during.network("site-b", "DR-Test").isolated
    assert during.vm(copy).nics[0].network == "DR-Test"
    assert during.replica(replica.id).state is ReplicaState.TEST_FAILOVER
    assert during.vm(source).power_state is PowerState.ON
    assert during.vm(replica.replica_vm).power_state is PowerState.OFF
    world.wait(600)  # replication goes on during the test
    assert len(backend.recovery_points(replica.id)) > 1

    backend.remove_test_copy(copy)
    backend.remove_test_copy(copy)
    after = backend.inventory()
    assert copy not in {vm.id for vm in after.vms}
    assert after.replica(replica.id).state is ReplicaState.READY
    assert backend.create_test_copy(replica.id, point.id, key="drill-2") != copy


def test_failback_after_an_unplanned_failover(world: World) -> None:
    backend = world.backend
    source = add_vm(world, "app01")
    replica = replicate(world, source)
    backend.sync(replica.id)
    assert world.a.model is not None
    world.a.model.set_state(guid_of(source), "Off")  # the primary crashed

    point = backend.recovery_points(replica.id)[-1]
    backend.revert(replica.id, point.id)
    backend.power_on(replica.replica_vm)
    backend.commit_failover(replica.id)
    backend.commit_failover(replica.id)
    assert backend.inventory().replica(replica.id).state is ReplicaState.COMMITTED
    world.write(replica.replica_vm)  # production now runs at site B

    # protect the way back: reverse replication needs an initial copy after an unplanned failover
    reverse = backend.reverse_replication(replica.id)
    assert backend.reverse_replication(replica.id) == reverse
    back_point = backend.sync(reverse.id)
    assert back_point.replica == reverse.id

    # fail back, planned: no data lost on the way home
    world.write(replica.replica_vm)
    backend.shutdown_guest(replica.replica_vm, timeout=300)
    home = backend.sync(reverse.id)
    backend.revert(reverse.id, home.id)
    again = backend.reverse_replication(reverse.id)
    backend.power_on(source)
    assert again.source_vm == source
    assert again.replica_vm == replica.replica_vm
    assert model_vm(world, source).data_version == model_vm(world, replica.replica_vm).data_version
    inventory = backend.inventory()
    assert inventory.vm(source).power_state is PowerState.ON
    assert inventory.replica_of(source).id == again.id


def test_inventory_takes_one_pipeline_per_host_whatever_the_number_of_vms(world: World) -> None:
    backend = world.backend
    add_vm(world, "first")
    before = backend.pipelines_sent
    backend.inventory()
    assert backend.pipelines_sent - before == 2  # hv-a and hv-b
    for index in range(30):
        add_vm(world, f"vm{index:02d}", adapters=2)
    before = backend.pipelines_sent
    assert len(backend.inventory().vms) == 31
    assert backend.pipelines_sent - before == 2


def test_a_sync_of_a_stopped_source_never_leaves_it_unable_to_start(world: World) -> None:
    backend = world.backend
    source = add_vm(world, "maint01")
    replica = replicate(world, source)
    backend.shutdown_guest(source, timeout=60)  # maintenance, not a failover
    backend.sync(replica.id)  # -Prepare: the source is locked against power-on
    backend.power_on(source)  # the preparation is cancelled, the source starts
    assert backend.inventory().vm(source).power_state is PowerState.ON
    assert backend.inventory().replica(replica.id).state is ReplicaState.READY

    backend.shutdown_guest(source, timeout=60)
    point = backend.sync(replica.id)
    backend.revert(replica.id, point.id)  # now the replica has failed over
    with pytest.raises(ConflictError, match="split the brain"):
        backend.power_on(source)
