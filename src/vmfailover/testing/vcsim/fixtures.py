"""pytest fixtures for the simulated vCenter.

``vcsim_session``: one simulator per test session (per xdist worker), two datacenters ``DC0``
(the protected site) and ``DC1`` (the recovery site), with extra port groups on DC1: standard
``DR-Net`` and ``DR-Spare``, distributed ``DR-Isolated``. Source VMs run in ``DC0``; their
template ``DC0_C0_RP0_VM0`` has a Linux guest id so guest customization applies.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vmfailover.testing.vcsim.launcher import VCSim, VCSimInventory
from vmfailover.testing.vcsim.scene import SceneBuilder

__all__ = ["TEMPLATE_VM", "vcsim_session"]

TEMPLATE_VM = "DC0_C0_RP0_VM0"


@pytest.fixture(scope="session")
def vcsim_session() -> Iterator[VCSim]:
    with VCSim(VCSimInventory(datacenters=2, clusters=1, cluster_hosts=2, vms=2)) as sim:
        with SceneBuilder(sim) as scene:
            scene.add_standard_portgroup("DC1", "DR-Net")
            scene.add_standard_portgroup("DC1", "DR-Spare")
            scene.add_distributed_portgroup("DC1", "DR-Isolated")
            scene.set_guest_id(TEMPLATE_VM, "otherLinux64Guest")
        yield sim
