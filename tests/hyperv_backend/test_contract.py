"""The backend contract suite, against two simulated Hyper-V hosts over real HTTP.

Basic on http here; NTLM with message encryption and HTTPS with a pinned certificate run the
failover primitives of the suite in ``test_transports.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from vmfailover.model import IPConfig
from vmfailover.testing.contract import BackendContract, ContractScene
from vmfailover.testing.hyperv import HyperVHost

from .conftest import World, add_vm, build_world


def scene_for(world: World) -> ContractScene:
    source = add_vm(world, "app", boot_seconds=20)
    return ContractScene(
        backend=world.backend,
        source_vm=source,
        target_host="hv-b",
        target_datastore="hv-b-storage",
        network_map={"Prod": "DR-Prod"},
        spare_network="DR-Spare",
        guest_ip=IPConfig("10.0.0.5/24", gateway="10.0.0.1"),
        wait=world.wait,
        write=world.write,
        boot_timeout=120,
    )


class TestHyperVBackendContract(BackendContract):
    @pytest.fixture
    def scene(self, hyperv_host_factory: Callable[..., HyperVHost]) -> Iterator[ContractScene]:
        world = build_world(hyperv_host_factory)
        yield scene_for(world)
        world.backend.close()
