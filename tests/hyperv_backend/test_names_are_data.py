"""VM names are data: hostile or wildcard names pass through every backend call and reach the
host as literal values (the host's call log shows what it received)."""

from __future__ import annotations

import uuid

import pytest

from vmfailover.backends.hyperv.pipeline import literal_name
from vmfailover.model import IPConfig, PowerState

from .conftest import World, add_vm

NAMES = ["x'; Remove-VM * -Force; '", "$(Stop-Computer)", "web*"]


@pytest.mark.parametrize("name", NAMES)
def test_every_backend_call_reaches_the_host_with_literal_values(world: World, name: str) -> None:
    bystander = add_vm(world, "web01")  # what `web*` would match as a pattern
    source = add_vm(world, name, adapters=2)
    assert world.a.model is not None
    nics = world.a.model.vm(uuid.UUID(source.rsplit("/", 1)[1])).adapters
    nics[0].name, nics[1].name = name, "Network Adapter"  # NIC names are data too
    backend = world.backend
    inventory = backend.inventory()
    assert inventory.vm(source).name == name
    replica = backend.create_replica(
        source, "hv-b", "hv-b-storage", network_map={"Prod": "DR-Prod"}
    )
    assert backend.inventory().vm(replica.replica_vm).name == name
    first = backend.sync(replica.id)
    world.write(source)
    second = backend.sync(replica.id)
    assert [p.id for p in backend.recovery_points(replica.id)][-2:] == [first.id, second.id]
    copy = backend.create_test_copy(replica.id, first.id, key="drill")
    assert backend.inventory().vm(copy).name == f"{name} - Test"
    backend.power_on(copy)
    backend.remove_test_copy(copy)
    backend.delete_recovery_point(first.id)
    backend.shutdown_guest(source, timeout=60)
    point = backend.sync(replica.id)  # the source is off: -Prepare, a planned failover
    backend.revert(replica.id, point.id)
    nic = next(n for n in backend.inventory().vm(replica.replica_vm).nics if n.label == name)
    backend.connect_nic(replica.replica_vm, nic.mac, "DR-Spare")
    connected = {n.label: n.network for n in backend.inventory().vm(replica.replica_vm).nics}
    assert connected == {name: "DR-Spare", "Network Adapter": "DR-Prod"}
    backend.set_guest_ip(replica.replica_vm, nic.mac, [IPConfig("10.0.0.9/24")])
    backend.power_on(replica.replica_vm)
    assert backend.readiness(replica.replica_vm).ready
    backend.commit_failover(replica.id)
    reverse = backend.reverse_replication(replica.id)
    backend.power_off(reverse.source_vm)
    after = backend.inventory()
    assert after.vm(bystander).power_state is PowerState.ON  # `web*` never matched web01
    assert after.vm(bystander).name == "web01"
    assert {vm.name for vm in after.vms} == {"web01", name}

    received = [*world.a.calls, *world.b.calls]
    strings = [value for call in received for _, value in call.arguments if isinstance(value, str)]
    # the NIC's name is sent as the pattern that matches it alone (escaped), and only so
    assert literal_name(name) in strings
    assert {s for s in strings if name in s or literal_name(name) in s} == {literal_name(name)}
    for call in received:
        for parameter, value in call.arguments:
            assert parameter is not None, f"{call.command}: positional argument {value!r}"
            assert parameter.casefold() not in {"name", "vmname"} or call.command in {
                "Get-VMNetworkAdapter"
            }, f"{call.command} -{parameter} {value!r}"
    guids = {
        value for call in received for _, value in call.arguments if isinstance(value, uuid.UUID)
    }
    assert uuid.UUID(source.rsplit("/", 1)[1]) in guids  # addressed by Id
