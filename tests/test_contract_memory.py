"""The backend contract suite, run against the memory backend."""

from __future__ import annotations

import pytest

from vmfailover.backends.memory import MemoryBackend
from vmfailover.clock import VirtualClock
from vmfailover.model import VM, IPConfig, Nic, PowerState
from vmfailover.testing.contract import BackendContract, ContractScene


def build_scene() -> ContractScene:
    clock = VirtualClock()
    backend = MemoryBackend(clock=clock)
    backend.add_site("a")
    backend.add_site("b")
    backend.add_host("h-a", "a", cluster="c", datastores=["ds-a"], networks=["lan"])
    backend.add_host("h-a2", "a", cluster="c", datastores=["ds-a"], networks=["lan"])
    backend.add_host("h-b", "b")
    backend.add_datastore("ds-a", "a")
    backend.add_datastore("ds-b", "b")
    backend.add_network("lan", "a")
    backend.add_network("dr-lan", "b")
    backend.add_network("dr-spare", "b")
    backend.add_vm(
        VM(
            id="vm-1",
            name="app",
            host="h-a",
            power_state=PowerState.ON,
            nics=(Nic("00:50:56:00:00:01", "lan", (IPConfig("192.168.1.5/24"),)),),
            datastore="ds-a",
            disk_bytes=64 << 20,
        ),
        boot_seconds=20,
    )

    def write(vm_id: str) -> None:
        backend.write(vm_id, 4)

    return ContractScene(
        backend=backend,
        source_vm="vm-1",
        target_host="h-b",
        target_datastore="ds-b",
        network_map={"lan": "dr-lan"},
        spare_network="dr-spare",
        guest_ip=IPConfig("10.0.0.5/24", gateway="10.0.0.1"),
        wait=clock.advance,
        write=write,
        boot_timeout=120,
        cluster_host="h-a2",
        fail_host=backend.fail_host,
        restore_host=backend.restore_host,
    )


class TestMemoryBackendContract(BackendContract):
    @pytest.fixture
    def scene(self) -> ContractScene:
        return build_scene()
