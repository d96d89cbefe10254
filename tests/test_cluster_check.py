"""check_cluster(): what makes a host failover unsafe, in the terms an administrator knows."""

from __future__ import annotations

import pytest

from vmfailover import (
    VM,
    Cluster,
    ClusterPolicy,
    Finding,
    MemoryBackend,
    Nic,
    PowerState,
    Severity,
    ValidationError,
    check_cluster,
)
from vmfailover.testing import lab


def scene(
    hosts: dict[str, dict[str, object]], vms: list[tuple[str, str, int, int, str | None, str]]
) -> MemoryBackend:
    """A one-site memory backend: hosts (name -> Host fields) and VMs (name, host, vCPU, GiB,
    datastore, network)."""
    backend = MemoryBackend()
    backend.add_site("site")
    for datastore in ("shared", "local-1", "other"):
        backend.add_datastore(datastore, "site")
    for network in ("prod", "dmz", "backup"):
        backend.add_network(network, "site")
    for name, fields in hosts.items():
        fields = {
            "cluster": "c",
            "cpu_cores": 8,
            "memory_mb": 16 * 1024,
            "datastores": ("shared",),
            "networks": ("prod",),
            **fields,
        }
        backend.add_host(name, "site", **fields)
    for number, (name, host, cpu, gib, datastore, network) in enumerate(vms, start=1):
        backend.add_vm(
            VM(
                f"id-{name}",
                name,
                host,
                PowerState.ON,
                nics=[Nic(f"00:50:56:00:01:{number:02x}", network)],
                cpu=cpu,
                memory_mb=gib * 1024,
                datastore=datastore,
            )
        )
    return backend


def check(backend: MemoryBackend, **policy: object) -> list[Finding]:
    inventory = backend.inventory()
    return check_cluster(inventory, Cluster.of(inventory, "c"), ClusterPolicy(**policy))  # type: ignore[arg-type]


def texts(findings: list[Finding]) -> list[str]:
    return [f"{f.severity.value}: {f}" for f in findings]


THREE = {"h1": {}, "h2": {}, "h3": {}}


def test_the_lab_production_cluster_is_ready() -> None:
    inventory = lab().inventory()
    assert check_cluster(inventory, Cluster.of(inventory, "prod-cluster")) == []


def test_a_datastore_some_hosts_cannot_reach_strands_its_vms() -> None:
    backend = scene(
        {
            "h1": {"datastores": ("shared", "other")},
            "h2": {},
            "h3": {"datastores": ("shared", "local-1")},
        },
        [("db01", "h1", 2, 4, "other", "prod"), ("dc01", "h2", 1, 2, "shared", "prod")],
    )
    assert texts(check(backend, reserve_hosts=0)) == [
        "warning: datastore 'local-1': reached by 1 of 3 hosts (not on 'h1', 'h2')",
        "error: datastore 'other': reached by 1 of 3 hosts (not on 'h2', 'h3'): its VMs cannot "
        "restart on any other host ('db01') (give every host of cluster 'c' access to it)",
    ]


def test_a_network_missing_on_some_hosts_is_named_with_the_vms_that_need_it() -> None:
    backend = scene(
        {"h1": {"networks": ("prod", "dmz")}, "h2": {"networks": ("prod", "dmz")}, "h3": {}},
        [("web01", "h1", 1, 2, "shared", "dmz"), ("web02", "h2", 1, 2, "shared", "dmz")],
    )
    (finding,) = check(backend, reserve_hosts=0)
    assert finding.item == "network 'dmz'"
    assert finding.blocking
    assert finding.message == (
        "present on 2 of 3 hosts (not on 'h3'): its VMs cannot restart on the hosts without it "
        "('web01', 'web02')"
    )
    assert finding.hint == "add the network to every host of cluster 'c'"


def test_cpu_families_and_feature_levels_that_differ_are_warnings() -> None:
    backend = scene(
        {
            "h1": {"cpu_family": "intel", "cpu_feature_level": "intel-cascadelake"},
            "h2": {"cpu_family": "intel", "cpu_feature_level": "intel-icelake"},
            "h3": {"cpu_family": "amd", "cpu_feature_level": "amd-zen3"},
        },
        [],
    )
    found = check(backend, reserve_hosts=0)
    assert [f.severity for f in found] == [Severity.WARNING, Severity.WARNING]
    assert found[0].message.startswith(
        "has hosts of different CPU families (amd: 'h3'; intel: 'h1', 'h2'): VMs restart"
    )
    assert found[1].message.startswith(
        "has hosts of different CPU feature levels (intel) (intel-cascadelake: 'h1'; "
        "intel-icelake: 'h2'): VMs started on a newer host cannot move live"
    )
    assert "EVC" in (found[1].hint or "")


def test_a_cpu_family_known_for_some_hosts_only_is_a_warning() -> None:
    backend = scene({"h1": {"cpu_family": "intel"}, "h2": {}}, [])
    (finding,) = check(backend, reserve_hosts=0)
    assert finding.message.startswith("does not know the CPU family of 'h2'")


def test_capacity_admission_that_cannot_survive_a_host_failure_says_by_how_much() -> None:
    # Three hosts of 8 cores and 16 GiB; the VMs use 20 vCPU, more than the 16 two hosts have.
    vms = [(f"vm{n}", f"h{n % 3 + 1}", 4, 2, "shared", "prod") for n in range(5)]
    found = check(scene(THREE, vms))
    assert found[0] == Finding(
        "cluster 'c'",
        "admission control (capacity) cannot survive 1 host failure: the running VMs need 20 "
        "vCPU and 10240 MB; after losing the 1 largest host, 16 vCPU and 32768 MB remain",
        hint="add capacity, power off VMs, allow more vCPUs per core or lower reserve_hosts",
    )
    # The placements say which VMs would stay down, host by host.
    assert [f.item for f in found[1:]] == ["host 'h1'", "host 'h2'", "host 'h3'"]
    assert found[1].message.startswith("if it fails, 1 of 2 running VMs cannot restart")
    assert "needs 4 vCPU and 2048 MB" in found[1].message
    # With 2 vCPUs per core the same load is fine.
    assert check(scene(THREE, vms), vcpus_per_core=2) == []


def test_slot_admission_counts_slots_of_the_largest_vm() -> None:
    # One 8-vCPU VM makes every slot 8 vCPU: each host holds one, two remain for three VMs.
    vms = [
        ("big", "h1", 8, 2, "shared", "prod"),
        ("small1", "h2", 1, 1, "shared", "prod"),
        ("small2", "h3", 1, 1, "shared", "prod"),
    ]
    found = check(scene(THREE, vms), admission="slots")
    assert found[0].message == (
        "admission control (slots) cannot survive 1 host failure: a slot is 8 vCPU and 2048 MB "
        "(the largest running VM), 3 running VMs need as many slots, and after losing the 1 host "
        "with the most slots, 2 remain"
    )
    # Capacity admission adds up 10 vCPU against 16 and is content; the placement of h1's
    # failure is not: no single survivor has 8 vCPU free for 'big'.
    (fragmented,) = check(scene(THREE, vms))
    assert fragmented.item == "host 'h1'"
    assert "'big' (needs 8 vCPU and 2048 MB" in fragmented.message


def test_admission_off_and_impossible_reserves() -> None:
    assert texts(check(scene(THREE, []), admission="none")) == [
        "warning: cluster 'c': has admission control off: nothing keeps room for a host failure "
        "(use admission='capacity' or 'slots')"
    ]
    assert texts(check(scene(THREE, []), reserve_hosts=3)) == [
        "error: cluster 'c': cannot tolerate 3 host failures with 3 available hosts "
        "(add hosts or lower reserve_hosts)"
    ]


def test_anti_affinity_decides_who_cannot_restart_after_a_failure() -> None:
    vms = [(f"dc0{n}", f"h{n}", 1, 1, "shared", "prod") for n in (1, 2, 3)]
    found = check(scene(THREE, vms), anti_affinity=[{"dc01", "dc02", "dc03"}])
    assert [f.item for f in found] == [
        "host 'h1'",
        "host 'h2'",
        "host 'h3'",
        "ClusterPolicy anti_affinity set 1",
    ]
    assert found[0].message == (
        "if it fails, 1 of 1 running VMs cannot restart on the others: 'dc01' (every host with "
        "room for it runs a member of its anti-affinity set: h2 (dc02), h3 (dc03))"
    )
    assert found[3].message == "keeps 3 VMs apart, but after losing 1 of 3 hosts only 2 remain"


def test_larger_reserves_place_every_combination_of_failures() -> None:
    hosts = {f"h{n}": {} for n in range(1, 5)}
    vms = [(f"vm{n}", f"h{n}", 6, 2, "shared", "prod") for n in range(1, 5)]
    found = check(scene(hosts, vms), reserve_hosts=2, vcpus_per_core=1)
    failures = [f for f in found if f.item.startswith("hosts ")]
    assert len(failures) == 6  # every pair of the four hosts
    assert failures[0].item == "hosts 'h1', 'h2'"
    assert failures[0].message.startswith("if they fail, 2 of 2 running VMs cannot restart")


def test_single_management_and_storage_paths_are_warnings() -> None:
    backend = scene(
        {"h1": {"management_paths": 1, "storage_paths": 2}, "h2": {"storage_paths": 1}}, []
    )
    assert [(f.item, f.message.split(":")[0]) for f in check(backend, reserve_hosts=0)] == [
        ("host 'h1'", "has a single management network path"),
        ("host 'h2'", "has a single storage path"),
    ]


def test_rules_naming_strangers_or_broken_now_are_reported() -> None:
    vms = [
        ("dc01", "h1", 1, 1, "shared", "prod"),
        ("dc02", "h1", 1, 1, "shared", "prod"),
        ("app", "h2", 1, 1, "shared", "prod"),
        ("cache", "h3", 1, 1, "shared", "prod"),
    ]
    found = check(
        scene(THREE, vms),
        reserve_hosts=0,
        anti_affinity=[{"dc01", "dc02", "dc99"}],
        affinity=[{"app", "cache"}],
        restart_priority={"ghost": "high", "cache": "disabled"},
    )
    assert texts(found) == [
        "warning: ClusterPolicy anti_affinity set 1: names 'dc99', not a VM of cluster 'c' "
        "(check the spelling, or drop VMs that left the cluster)",
        "warning: ClusterPolicy anti_affinity set 1: is broken now: 'dc01', 'dc02' run together "
        "on 'h1' (move one of them to another host)",
        "warning: ClusterPolicy affinity set 1: is broken now: its VMs run on different hosts "
        "(h2: 'app'; h3: 'cache') (move them onto one host)",
        "warning: ClusterPolicy restart_priority: names 'ghost', not a VM of cluster 'c'",
        "warning: cluster 'c': will not restart 'cache' after a host failure (restart priority "
        "'disabled')",
    ]


def test_hosts_down_now_and_clusters_of_one() -> None:
    backend = scene({"h1": {}, "h2": {}}, [])
    backend.fail_host("h2")
    assert texts(check(backend, reserve_hosts=0)) == [
        "warning: host 'h2': is not_responding (power off): the cluster runs on 1 of 2 hosts now "
        "(bring it back or remove it from the cluster)"
    ]
    lonely = scene({"h1": {}}, [])
    assert check(lonely, reserve_hosts=0)[0].message == (
        "has 1 host: there is no other host to restart its VMs on"
    )


def test_bad_input_is_refused() -> None:
    inventory = lab().inventory()
    with pytest.raises(ValidationError) as caught:
        check_cluster("inventory", "cluster", {"reserve_hosts": 1})  # type: ignore[arg-type]
    assert [f.item for f in caught.value.findings] == [
        "check_cluster inventory",
        "check_cluster cluster",
        "check_cluster policy",
    ]
    with pytest.raises(ValidationError, match="host 'esx-z9' is not in the inventory"):
        check_cluster(inventory, Cluster("c", ["esx-a1", "esx-z9"]))
