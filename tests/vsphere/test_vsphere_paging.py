"""The backend follows continuation tokens: the simulator pages when ``maxObjects`` is set.

vCenter returns a large ``RetrievePropertiesEx`` result in pages, each but the last with a token
for ``ContinueRetrievePropertiesEx``. The simulator (patched, see ``patches/0004-*``) does the same
when the client sets ``maxObjects``, so these tests ask for small pages and check that nothing is
lost or read twice.
"""

from __future__ import annotations

import pytest

from vmfailover.backends.vsphere import VSphereBackend, properties
from vmfailover.backends.vsphere.properties import retrieve_objects, retrieve_view
from vmfailover.testing.vcsim import VCSim


@pytest.fixture
def backend(vcsim_session: VCSim) -> VSphereBackend:
    return VSphereBackend(
        [
            vcsim_session.vcenter("site-a", datacenter="DC0"),
            vcsim_session.vcenter("site-b", datacenter="DC1"),
        ]
    )


def test_a_view_read_follows_every_page(vcsim_session: VCSim, backend: VSphereBackend) -> None:
    conn = backend.connection("site-a")
    paths = {"VirtualMachine": ("name",), "HostSystem": ("name",), "Datastore": ("name",)}
    whole = retrieve_view(conn, conn.content.rootFolder, paths, what="reading")
    assert len(whole) > 6
    vcsim_session.reset_soap_requests()
    paged = retrieve_view(conn, conn.content.rootFolder, paths, what="reading", page_size=2)
    round_trips = vcsim_session.soap_requests()
    assert sorted(o.moref for o in paged) == sorted(o.moref for o in whole)
    assert len({o.moref for o in paged}) == len(paged)  # nothing read twice
    assert {o.get("name") for o in paged} == {o.get("name") for o in whole}
    pages = -(-len(whole) // 2)
    assert round_trips == 2 + pages  # the view made and destroyed, and one call per page


def test_inventory_and_object_reads_are_the_same_in_small_pages(
    backend: VSphereBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = backend.inventory()
    monkeypatch.setattr(properties, "PAGE_SIZE", 3)
    paged = backend.inventory()
    assert paged == whole
    monkeypatch.setattr(properties, "PAGE_SIZE", 1)
    conn = backend.connection("site-a")  # both sites are datacenters of this one vCenter
    refs = [conn.managed("VirtualMachine", vm.id.partition(":")[2]) for vm in whole.vms]
    assert len(refs) > 1
    found = retrieve_objects(conn, refs, {"VirtualMachine": ("name",)}, what="reading VMs")
    assert sorted(str(o.get("name")) for o in found) == sorted(vm.name for vm in whole.vms)
