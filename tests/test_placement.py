"""place(): which host each VM of a failed host restarts on, and why some cannot."""

from __future__ import annotations

import pytest

from vmfailover import (
    VM,
    ClusterPolicy,
    ConnectionState,
    Host,
    Nic,
    NotFoundError,
    PowerState,
    RestartPriority,
    UnplacedReason,
    ValidationError,
    place,
)
from vmfailover.testing import lab


def host(name: str, cores: int = 8, memory_gib: int = 16, **kwargs: object) -> Host:
    kwargs.setdefault("datastores", ("shared",))
    kwargs.setdefault("networks", ("prod",))
    return Host(name, "site", cpu_cores=cores, memory_mb=memory_gib * 1024, **kwargs)  # type: ignore[arg-type]


def vm(name: str, cpu: int = 2, memory_gib: int = 4, *, on: str = "failed", **kwargs: object) -> VM:
    kwargs.setdefault("datastore", "shared")
    power = PowerState.ON if on != "failed" else PowerState.OFF
    return VM(f"id-{name}", name, on, power, cpu=cpu, memory_mb=memory_gib * 1024, **kwargs)  # type: ignore[arg-type]


def nic(network: str, number: int = 1) -> Nic:
    return Nic(f"00:50:56:00:00:{number:02x}", network)


def test_the_lab_loses_a_host_and_its_vms_restart_on_the_others_apart() -> None:
    inventory = lab().inventory()
    survivors = [inventory.host("esx-a2"), inventory.host("esx-a3")]
    victims = [v for v in inventory.vms if v.host == "esx-a1"]
    running = [v for v in inventory.vms if v.host in ("esx-a2", "esx-a3")]
    policy = ClusterPolicy(anti_affinity=[{"dc01", "dc02"}, {"db01", "db02"}])
    placement = place(victims, survivors, policy, running=running)
    assert placement.complete and placement.proven
    assert {entry.name for entry in placement.placed} == {"dc01", "db01", "app01", "web01"}
    # dc02 and db02 run on esx-a2: their partners must go elsewhere.
    assert placement.host_of("dc01") == "esx-a3"
    assert placement.host_of("db01") == "esx-a3"
    a3 = next(load for load in placement.hosts if load.host == "esx-a3")
    assert a3.memory_used_mb == sum(
        v.memory_mb for v in inventory.vms if v.host in ("esx-a1", "esx-a3")
    ) - sum(v.memory_mb for v in victims if placement.host_of(v.name) == "esx-a2")


def test_load_already_running_counts() -> None:
    placement = place(
        [vm("new", cpu=4, memory_gib=8)],
        [host("busy"), host("idle")],
        running=[vm("resident", cpu=6, memory_gib=12, on="busy")],
    )
    assert placement.host_of("new") == "idle"
    busy = placement.hosts[0]
    assert (busy.cpu_used, busy.memory_used_mb, busy.placed) == (6, 12 * 1024, ())


def test_powered_off_vms_and_vms_on_other_hosts_do_not_count() -> None:
    resident = VM("r", "resident", "busy", PowerState.OFF, cpu=8, memory_mb=16 * 1024)
    elsewhere = vm("far", cpu=8, memory_gib=16, on="other-host")
    placement = place(
        [vm("new", cpu=8, memory_gib=16)], [host("busy")], running=[resident, elsewhere]
    )
    assert placement.host_of("new") == "busy"


def test_no_capacity_says_what_is_needed_and_what_is_free() -> None:
    placement = place([vm("huge", cpu=4, memory_gib=32)], [host("a"), host("b", memory_gib=24)])
    (missing,) = placement.unplaced
    assert missing.reason is UnplacedReason.NO_CAPACITY
    assert missing.detail == (
        "needs 4 vCPU and 32768 MB; the most free on an eligible host is 8 vCPU and 24576 MB (b)"
    )
    assert str(missing).startswith("VM 'huge': needs 4 vCPU")
    with pytest.raises(NotFoundError, match="'huge' was not placed: needs 4 vCPU"):
        placement.host_of("huge")
    with pytest.raises(NotFoundError, match="'ghost' was not part of this placement"):
        placement.host_of("ghost")


def test_vms_only_go_where_their_datastore_is_reached() -> None:
    hosts = [host("a", datastores=("ds1",)), host("b", datastores=("ds2",))]
    placement = place([vm("x", datastore="ds2"), vm("y", datastore="ds3")], hosts)
    assert placement.host_of("x") == "b"
    (missing,) = placement.unplaced
    assert missing.reason is UnplacedReason.NO_DATASTORE
    assert missing.detail == "no surviving host reaches datastore 'ds3'"


def test_vms_only_go_where_their_networks_are() -> None:
    hosts = [host("a", networks=("prod",)), host("b", networks=("prod", "dmz"))]
    vms = [
        vm("web", nics=[nic("prod", 1), nic("dmz", 2)]),
        vm("odd", nics=[nic("backup")], datastore=None),
    ]
    placement = place(vms, hosts)
    assert placement.host_of("web") == "b"
    (missing,) = placement.unplaced
    assert missing.reason is UnplacedReason.NO_NETWORK
    assert missing.detail == "no surviving host has network 'backup'"


def test_a_network_missing_where_the_datastore_is_reached_is_named_with_it() -> None:
    hosts = [host("a", datastores=("ds1",), networks=("prod",)), host("b", networks=("dmz",))]
    placement = place([vm("x", datastore="ds1", nics=[nic("dmz")])], hosts)
    (missing,) = placement.unplaced
    assert missing.detail == "no surviving host that reaches 'ds1' has network 'dmz'"


def test_anti_affinity_holds_against_running_members_and_is_named() -> None:
    policy = ClusterPolicy(anti_affinity=[{"dc01", "dc02", "dc03"}])
    placement = place(
        [vm("dc03")],
        [host("a"), host("b")],
        policy,
        running=[vm("dc01", on="a"), vm("dc02", on="b")],
    )
    (missing,) = placement.unplaced
    assert missing.reason is UnplacedReason.ANTI_AFFINITY
    assert missing.detail == (
        "every host with room for it runs a member of its anti-affinity set: a (dc01), b (dc02)"
    )


def test_anti_affinity_members_are_spread() -> None:
    policy = ClusterPolicy(anti_affinity=[{"n1", "n2", "n3"}])
    placement = place([vm("n1"), vm("n2"), vm("n3")], [host("a"), host("b"), host("c")], policy)
    assert sorted(placement.assignments.values()) == ["a", "b", "c"]


def test_affinity_keeps_a_set_on_one_host_and_follows_a_running_partner() -> None:
    policy = ClusterPolicy(affinity=[{"app", "cache"}, {"db", "db-witness"}])
    placement = place(
        [vm("app"), vm("cache"), vm("db")],
        [host("a"), host("b")],
        policy,
        running=[vm("db-witness", on="b"), vm("filler", cpu=4, on="a")],
    )
    assert placement.host_of("app") == placement.host_of("cache")
    assert placement.host_of("db") == "b"


def test_an_affinity_set_too_large_for_any_host_is_reported_as_affinity() -> None:
    policy = ClusterPolicy(affinity=[{"a1", "a2"}])
    placement = place([vm("a1", cpu=6), vm("a2", cpu=6)], [host("x"), host("y")], policy)
    assert {(m.name, m.reason) for m in placement.unplaced} == {
        ("a1", UnplacedReason.AFFINITY),
        ("a2", UnplacedReason.AFFINITY),
    }
    assert placement.unplaced[0].detail == (
        "with its affinity partners 'a1', 'a2' needs 12 vCPU and 8192 MB on one host; "
        "no eligible host has that much free"
    )


def test_affinity_partners_running_on_two_hosts_block_the_vm() -> None:
    policy = ClusterPolicy(affinity=[{"x", "p1", "p2"}])
    placement = place(
        [vm("x")], [host("a"), host("b")], policy, running=[vm("p1", on="a"), vm("p2", on="b")]
    )
    (missing,) = placement.unplaced
    assert missing.reason is UnplacedReason.AFFINITY
    assert missing.detail == "its affinity partners 'p1', 'p2' run on different hosts ('a', 'b')"


def test_an_affinity_partner_on_a_host_without_the_vms_network_blocks_it() -> None:
    policy = ClusterPolicy(affinity=[{"x", "p"}])
    placement = place(
        [vm("x", nics=[nic("dmz")])],
        [host("a"), host("b", networks=("prod", "dmz"))],
        policy,
        running=[vm("p", on="a")],
    )
    (missing,) = placement.unplaced
    assert missing.reason is UnplacedReason.AFFINITY
    assert missing.detail == "must run with 'p' on 'a', which lacks 'dmz'"


def test_chained_affinity_against_anti_affinity_is_reported() -> None:
    policy = ClusterPolicy(affinity=[{"a", "b"}, {"b", "c"}], anti_affinity=[{"a", "c"}])
    placement = place([vm("a"), vm("b"), vm("c")], [host("h1"), host("h2")], policy)
    assert {m.reason for m in placement.unplaced} == {UnplacedReason.AFFINITY}
    assert "anti-affinity set 1 keeps them apart" in placement.unplaced[0].detail


def test_restart_priority_decides_who_gets_the_last_capacity() -> None:
    policy = ClusterPolicy(restart_priority={"db": "high", "batch": "low"})
    placement = place(
        [vm("batch", cpu=8), vm("web", cpu=4), vm("db", cpu=4)], [host("only")], policy
    )
    assert [entry.name for entry in placement.placed] == ["db", "web"]
    assert [entry.priority for entry in placement.placed] == [
        RestartPriority.HIGH,
        RestartPriority.MEDIUM,
    ]
    (missing,) = placement.unplaced
    assert missing.name == "batch"
    assert missing.detail.endswith("VMs of higher restart priority were placed first")


def test_each_vm_counts_at_its_own_priority_also_inside_an_affinity_set() -> None:
    # Room for two VMs: the pair (one medium, one low) or the two medium VMs. The pair goes
    # first (largest), but two medium VMs beat one medium and one low.
    policy = ClusterPolicy(affinity=[{"app", "log"}], restart_priority={"log": "low"})
    placement = place(
        [vm("app", cpu=1), vm("log", cpu=1), vm("a", cpu=1), vm("b", cpu=1)],
        [host("only", cores=2)],
        policy,
    )
    assert sorted(placement.assignments) == ["id-a", "id-b"]
    assert placement.proven


def test_restart_disabled_vms_are_reported_not_placed() -> None:
    policy = ClusterPolicy(restart_priority={"scratch": "disabled"})
    placement = place([vm("scratch"), vm("keep")], [host("a")], policy)
    assert placement.host_of("keep") == "a"
    (missing,) = placement.unplaced
    assert (missing.name, missing.reason) == ("scratch", UnplacedReason.RESTART_DISABLED)


def test_unavailable_hosts_are_never_chosen() -> None:
    hosts = [host("down", connection=ConnectionState.NOT_RESPONDING), host("off", power="off")]
    placement = place([vm("x")], hosts)
    (missing,) = placement.unplaced
    assert missing.reason is UnplacedReason.NO_HOST
    assert missing.detail == "no candidate host is available"
    assert place([vm("x")], []).unplaced[0].detail == "no candidate host"


def test_a_search_rescues_what_greedy_packing_misses() -> None:
    # Greedy placement of the largest first puts 'b' where only 'c' and 'd' fit together;
    # the search finds the placement of all four.
    vms = [vm("a", cpu=5), vm("b", cpu=4), vm("c", cpu=3), vm("d", cpu=3)]
    placement = place(vms, [host("h1", cores=8), host("h2", cores=7)])
    assert placement.complete and placement.proven
    for load in placement.hosts:
        assert load.cpu_used <= load.cpu_capacity


def test_totals_and_rendering() -> None:
    placement = place([vm("x", cpu=2, memory_gib=4), vm("y", cpu=99)], [host("a")])
    assert placement.cpu_used == 2 and placement.cpu_capacity == 8
    assert placement.memory_used_mb == 4096 and placement.memory_capacity_mb == 16384
    assert placement.assignments == {"id-x": "a"}
    assert str(placement).splitlines() == [
        "1 placed, 1 not placed",
        "  x -> a",
        "  VM 'y': needs 99 vCPU and 4096 MB; the most free on an eligible host is 6 vCPU and "
        "12288 MB (a) [no_capacity]",
    ]


def test_bad_input_is_refused_naming_the_item() -> None:
    with pytest.raises(ValidationError) as caught:
        place([vm("x"), "y"], [host("a"), host("a"), 3], "policy")  # type: ignore[list-item,arg-type]
    assert [str(f) for f in caught.value.findings] == [
        "place policy: must be a ClusterPolicy, got 'policy'",
        "place vms[1]: must be a VM, got 'y'",
        "place hosts[2]: must be a Host, got 3",
        "host 'a': appears twice in hosts",
    ]
    with pytest.raises(ValidationError, match="id 'id-x' appears twice"):
        place([vm("x")], [host("a")], running=[vm("x", on="a")])
    with pytest.raises(ValidationError, match="place vms: must be a list"):
        place("x", [host("a")])  # type: ignore[arg-type]
