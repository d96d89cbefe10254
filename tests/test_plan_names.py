"""A plan names VMs by id or by name; a name VMs at several sites share names the replication
source among them (a Hyper-V replica carries its source's name), and stays ambiguous otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vmfailover import FailoverPlan, NetworkMapping, Runner
from vmfailover.engine.results import RunResult
from vmfailover.errors import NotFoundError
from vmfailover.model import VM, Host, Inventory, Network, Nic, PowerState, Replica, Site
from vmfailover.plan.check import plan_vm
from vmfailover.testing import lab

TEST_NETWORKS = NetworkMapping(
    production={"Prod-Web": "DR-Web", "Prod-App": "DR-App"},
    test={"Prod-Web": "Test-Web", "Prod-App": "Test-App"},
)


def _namesake_at_site_b(backend, name: str = "web01") -> VM:  # type: ignore[no-untyped-def]
    """An unrelated, powered-off VM at the recovery site with the name of a protected VM."""
    return backend.add_vm(
        VM(
            id=f"dr-{name}",
            name=name,
            host="esx-b1",
            power_state=PowerState.OFF,
            nics=(Nic("00:50:56:0b:00:01", "DR-Web"),),
        )
    )


def test_a_shared_name_names_the_replication_source() -> None:
    backend = lab()
    _namesake_at_site_b(backend)
    inventory = backend.inventory()
    with pytest.raises(NotFoundError, match="ambiguous"):
        inventory.vm("web01")  # the inventory alone cannot tell
    source = plan_vm(inventory, "web01")
    assert source.host.startswith("esx-a")
    assert inventory.is_replicated(source.id)

    plan = FailoverPlan("web", ["web01"], network=TEST_NETWORKS)
    assert not plan.validate(backend, "test").blocking
    points = {r.id: backend.recovery_points(r.id) for r in inventory.replicas}
    compiled = plan.compile(inventory, "test", points=points, now=backend.clock.now())
    assert [vm.source.id for vm in compiled.vms] == [source.id]

    runner = Runner(backend, poll_interval=5)
    run = runner.start(plan, kind="test")
    report = run.wait()
    assert report.result is RunResult.SUCCEEDED, report
    assert [vm.vm for vm in report.vms] == ["web01"]
    assert runner.cleanup(run).cleanup.restored  # type: ignore[union-attr]


def test_a_name_two_sources_share_stays_ambiguous() -> None:
    backend = lab()
    namesake = _namesake_at_site_b(backend)
    backend.create_replica(namesake.id, "esx-a1", "ds-a1", network_map={"DR-Web": "Prod-Web"})
    findings = FailoverPlan("web", ["web01"], network=TEST_NETWORKS).validate(backend, "test")
    assert [f.item for f in findings.errors] == ["VM 'web01'"]
    message = findings.errors[0].message
    assert "ambiguous" in message and "2 of them are replication sources" in message
    assert "site-a, site-b" in message
    assert findings.errors[0].hint == "check the name, or use the VM's id"
    assert (
        not FailoverPlan("web", ["vm-008"], network=TEST_NETWORKS)
        .validate(backend, "test")
        .blocking
    )  # the id still names it


def _two_sites(*vms: VM, replicas: tuple[Replica, ...] = ()) -> Inventory:
    return Inventory(
        sites=(Site("a"), Site("b")),
        hosts=(Host("h-a", "a", networks=("n",)), Host("h-b", "b", networks=("n",))),
        networks=(Network("n", "a"), Network("n", "b")),
        vms=vms,
        replicas=replicas,
    )


def test_a_name_no_source_holds_is_ambiguous_and_ids_and_unique_names_resolve() -> None:
    inventory = _two_sites(
        VM(id="1", name="web01", host="h-a"),
        VM(id="2", name="web01", host="h-b"),
        VM(id="3", name="db01", host="h-a"),
    )
    with pytest.raises(NotFoundError, match=r"none of them is a replication source; use the id"):
        plan_vm(inventory, "web01")
    assert plan_vm(inventory, "2").host == "h-b"
    assert plan_vm(inventory, "db01").id == "3"
    with pytest.raises(NotFoundError, match="no VM with id or name 'app01'"):
        plan_vm(inventory, "app01")
    assert inventory.vms_named("web01") == (inventory.vm("1"), inventory.vm("2"))
    assert inventory.vms_named("db01") == (inventory.vm("3"),)
    assert inventory.vms_named("app01") == ()


def test_a_reversed_replica_no_longer_makes_its_source_the_one() -> None:
    """After failback's reverse replication the failed-over copy is the source: the name then
    names it (a plan to fail back names the VMs as before)."""
    made = datetime(2025, 1, 1, tzinfo=UTC)
    reversed_ = Replica("r1", "1", "2", "h-b", made, state="reversed")
    back = Replica("r2", "2", "1", "h-a", made)
    inventory = _two_sites(
        VM(id="1", name="web01", host="h-a"),
        VM(id="2", name="web01", host="h-b"),
        replicas=(reversed_, back),
    )
    assert plan_vm(inventory, "web01").id == "2"
