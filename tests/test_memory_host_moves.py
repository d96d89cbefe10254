"""The memory backend's failover cluster: restarting a failed host's VMs, moving VMs, refusals."""

from __future__ import annotations

import pytest

from vmfailover.backends.memory import MemoryBackend
from vmfailover.clock import VirtualClock
from vmfailover.errors import ConflictError, NotFoundError, TransientBackendError
from vmfailover.model import VM, Nic, PowerState


def cluster() -> MemoryBackend:
    backend = MemoryBackend(clock=VirtualClock())
    backend.add_site("a")
    backend.add_site("b")
    backend.add_datastore("shared", "a")
    backend.add_datastore("local", "a")
    backend.add_network("lan", "a")
    backend.add_network("dmz", "a")
    backend.add_network("lan", "b")
    backend.add_network("dmz", "b")
    common = {"cluster": "c", "networks": ["lan", "dmz"], "cpu_family": "intel"}
    backend.add_host("h1", "a", datastores=["shared"], **common)
    backend.add_host("h2", "a", datastores=["shared"], **common)
    backend.add_host("h3", "a", datastores=["local"], **common)
    backend.add_host("h4", "a", datastores=["shared"], networks=["lan"], cluster="c")
    backend.add_host("amd", "a", datastores=["shared"], networks=["lan", "dmz"], cpu_family="amd")
    backend.add_host("far", "b", datastores=["shared"], networks=["lan", "dmz"])
    backend.add_vm(
        VM(
            id="vm-1",
            name="app",
            host="h1",
            power_state=PowerState.ON,
            nics=(Nic("00:50:56:00:00:01", "dmz"),),
            datastore="shared",
            disk_bytes=8 << 20,
        ),
        boot_seconds=30,
    )
    return backend


def test_a_failed_hosts_vm_restarts_on_a_survivor_and_keeps_its_id_and_disk() -> None:
    backend = cluster()
    disk = dict(backend.disk("vm-1"))
    backend.fail_host("h1")
    assert backend.inventory().vm("vm-1").power_state is PowerState.OFF
    with pytest.raises(TransientBackendError):
        backend.power_on("vm-1")  # its own host is dead: nothing reaches it there
    backend.restart_on_host("vm-1", "h2")
    vm = backend.inventory().vm("vm-1")
    assert (vm.host, vm.power_state) == ("h2", PowerState.ON)
    assert dict(backend.disk("vm-1")) == disk, "the same files on the shared datastore"
    backend.clock.advance(30)  # type: ignore[attr-defined]
    assert backend.readiness("vm-1").ready
    assert [r.vm.id for r in backend._store.vms_on("h2")] == ["vm-1"]
    assert backend._store.vms_on("h1") == ()


def test_a_vm_still_running_on_a_cut_off_host_holds_its_disks() -> None:
    backend = cluster()
    backend.isolate_host("h1")
    with pytest.raises(ConflictError, match="holds the lock on its disks"):
        backend.restart_on_host("vm-1", "h2")
    assert backend.inventory().vm("vm-1").host == "h1"


@pytest.mark.parametrize(
    ("host", "error", "words"),
    [
        ("h3", ConflictError, "lacks datastore 'shared'"),
        ("h4", ConflictError, "lacks network 'dmz'"),
        ("far", ConflictError, "of site 'b'"),
        ("nowhere", NotFoundError, "nowhere"),
    ],
)
def test_a_restart_needs_a_host_that_reaches_the_vms_files_and_networks(
    host: str, error: type[Exception], words: str
) -> None:
    backend = cluster()
    backend.fail_host("h1")
    with pytest.raises(error, match=words):
        backend.restart_on_host("vm-1", host)
    assert backend.inventory().vm("vm-1").host == "h1"


def test_a_restart_needs_an_available_host() -> None:
    backend = cluster()
    backend.fail_host("h1")
    backend.fail_host("h2")
    with pytest.raises(TransientBackendError, match="'h2'"):
        backend.restart_on_host("vm-1", "h2")


def test_a_live_move_keeps_the_vm_running_and_booted() -> None:
    backend = cluster()
    backend.migrate_vm("vm-1", "h2")
    vm = backend.inventory().vm("vm-1")
    assert (vm.host, vm.power_state) == ("h2", PowerState.ON)
    assert backend.readiness("vm-1").ready, "a live move does not reboot the guest"


def test_no_live_move_across_cpu_families_but_a_cold_one() -> None:
    backend = cluster()
    with pytest.raises(ConflictError, match="CPU family"):
        backend.migrate_vm("vm-1", "amd")
    backend.power_off("vm-1")
    backend.migrate_vm("vm-1", "amd")
    assert backend.inventory().vm("vm-1").host == "amd"


def test_a_move_needs_the_vms_own_host_to_answer() -> None:
    backend = cluster()
    backend.fail_host("h1")
    with pytest.raises(TransientBackendError):
        backend.migrate_vm("vm-1", "h2")


def test_the_fault_injector_sees_the_new_calls() -> None:
    backend = cluster()
    backend.faults.fail("migrate_vm", target="vm-1")
    with pytest.raises(TransientBackendError):
        backend.migrate_vm("vm-1", "h2")
    backend.migrate_vm("vm-1", "h2")
    assert backend.faults.per_operation["migrate_vm"] == 2
