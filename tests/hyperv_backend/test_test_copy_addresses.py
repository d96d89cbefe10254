"""A test VM takes its failover addresses from its replica when Start-VMFailover -AsTest makes it:
create_test_copy(guest_ips=...) lends them to the replica for that moment and gives the replica's
own back, whatever happens; set_guest_ip on the copy confirms them and refuses others."""

from __future__ import annotations

import pytest

from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    PermanentBackendError,
    ValidationError,
)
from vmfailover.model import IPConfig
from vmfailover.testing.hyperv import CmdletError

from .conftest import World, add_vm, guid_of, replicate


def replica_adapter(world: World, replica_vm: str):  # type: ignore[no-untyped-def]
    assert world.b.model is not None
    return world.b.model.vm(guid_of(replica_vm)).adapters[0]


@pytest.fixture
def protected(world: World) -> tuple[World, str, str, str]:
    """web01 replicated to hv-b with a recovery point; its replica's own failover address set."""
    source = add_vm(world, "web01", ip_addresses=["192.168.1.20/24"], gateway="192.168.1.1")
    replica = replicate(world, source)
    world.backend.sync(replica.id)
    mac = world.backend.inventory().vm(replica.replica_vm).nics[0].mac
    own = [IPConfig("10.20.1.20/24", gateway="10.20.1.1", dns=["10.20.1.2", "10.20.1.3"])]
    world.backend.set_guest_ip(replica.replica_vm, mac, own)
    return world, replica.id, mac, world.backend.recovery_points(replica.id)[-1].id


def test_the_copy_boots_with_its_addresses_and_the_replica_keeps_its_own(
    protected: tuple[World, str, str, str],
) -> None:
    world, replica, mac, point = protected
    backend = world.backend
    own = replica_adapter(world, replica).failover
    test = [IPConfig("172.16.1.20/24")]

    copy = backend.create_test_copy(replica, point, "drill", guest_ips={mac.upper(): test})
    assert replica_adapter(world, replica).failover == own  # given back at once
    assert backend.create_test_copy(replica, point, "drill", guest_ips={mac: test}) == copy

    before = backend.pipelines_sent
    backend.set_guest_ip(copy, mac, test)  # what it was made with: confirmed, nothing sent
    assert backend.pipelines_sent == before
    with pytest.raises(ConflictError, match=r"create_test_copy\(guest_ips=...\)"):
        backend.set_guest_ip(copy, mac, [IPConfig("172.16.9.9/24")])
    backend.connect_nic(copy, mac, "DR-Test")
    backend.power_on(copy)
    world.wait(5)
    assert [str(a) for a in backend.readiness(copy).ip_addresses] == ["172.16.1.20"]
    # The copy's gateway and DNS servers are not the replica's: the families were cleared first.
    assert world.b.model is not None
    assert world.b.model.vm(guid_of(copy)).adapters[0].applied_ip.ipv4_default_gateway is None

    backend.remove_test_copy(copy)
    assert replica_adapter(world, replica).failover == own


def test_a_test_failover_that_fails_still_gives_the_addresses_back(
    protected: tuple[World, str, str, str],
) -> None:
    world, replica, mac, point = protected
    own = replica_adapter(world, replica).failover
    world.b.faults.fail_next(
        "Start-VMFailover",
        CmdletError(
            "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StartVMFailover",
            "Hyper-V could not create the test virtual machine.",
            category="InvalidOperation",
            terminating=True,
        ),
    )
    with pytest.raises((ConflictError, PermanentBackendError), match="test virtual machine"):
        world.backend.create_test_copy(
            replica, point, "drill", guest_ips={mac: [IPConfig("172.16.1.20/24")]}
        )
    assert replica_adapter(world, replica).failover == own
    assert world.backend.inventory().replica(replica).state.value == "ready"


def test_addresses_are_checked_before_anything_is_sent(
    protected: tuple[World, str, str, str],
) -> None:
    world, replica, mac, point = protected
    backend = world.backend
    before = backend.pipelines_sent
    with pytest.raises(ValidationError) as caught:
        backend.create_test_copy(
            replica,
            point,
            "drill",
            guest_ips={
                "not-a-mac": [IPConfig("172.16.1.20/24")],
                mac: [IPConfig("172.16.1.20/24", dns_suffixes=["corp.example"])],
            },
        )
    messages = " | ".join(str(f) for f in caught.value.findings)
    assert "'not-a-mac' is not a MAC" in messages and "DNS suffixes" in messages
    with pytest.raises(ValidationError, match="must map MACs"):
        backend.create_test_copy(replica, point, "drill", guest_ips=["172.16.1.20"])  # type: ignore[arg-type]
    assert backend.pipelines_sent == before
    with pytest.raises(NotFoundError, match="no NIC with MAC '00:15:5d:99:99:99'"):
        backend.create_test_copy(
            replica, point, "drill", guest_ips={"00:15:5d:99:99:99": [IPConfig("1.2.3.4/24")]}
        )
    assert backend.inventory().replica(replica).state.value == "ready"  # no test VM made
