"""The backend contract suite against govmomi's simulated vCenter (two datacenters, two sites)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from vmfailover.backends.vsphere import VSphereBackend
from vmfailover.clock import VirtualClock
from vmfailover.model import IPConfig
from vmfailover.testing.contract import BackendContract, ContractScene
from vmfailover.testing.vcsim import VCSim
from vmfailover.testing.vcsim.fixtures import TEMPLATE_VM
from vmfailover.testing.vcsim.scene import SceneBuilder

_names = itertools.count(1)


@pytest.fixture(scope="module")
def vsphere(vcsim_session: VCSim) -> Iterator[VSphereBackend]:
    backend = VSphereBackend(
        [
            vcsim_session.vcenter("site-a", datacenter="DC0"),
            vcsim_session.vcenter("site-b", datacenter="DC1"),
        ],
        clock=VirtualClock(rate=1.0),  # flows in real time; the scene's waits jump ahead
    )
    yield backend
    backend.close()


class TestVSphereBackendContract(BackendContract):
    @pytest.fixture
    def scene(self, vcsim_session: VCSim, vsphere: VSphereBackend) -> ContractScene:
        with SceneBuilder(vcsim_session) as builder:
            moref = builder.clone_vm(TEMPLATE_VM, f"contract-{next(_names)}", host="DC0_C0_H0")
        return ContractScene(
            backend=vsphere,
            source_vm=f"site-a:{moref}",
            target_host="DC1_C0_H0",
            target_datastore="site-b/LocalDS_0",
            network_map={"DC0_DVPG0": "DR-Net"},
            spare_network="DC1_DVPG0",
            guest_ip=IPConfig("10.0.0.5/24", gateway="10.0.0.1", dns=["10.0.0.2"]),
            wait=vsphere.clock.advance,  # type: ignore[attr-defined]
            boot_timeout=10,
            cluster_host="DC0_C0_H1",  # DC0_C0's hosts share LocalDS_0 and DC0_DVPG0
            fail_host=vcsim_session.fail_host,
            restore_host=vcsim_session.restore_host,
        )
