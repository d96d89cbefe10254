"""ClusterPolicy and Cluster: checked where values enter, frozen, derived from inventories."""

from __future__ import annotations

import math

import attrs
import pytest

from vmfailover import (
    VM,
    AdmissionControl,
    Cluster,
    ClusterPolicy,
    Host,
    Inventory,
    IsolationResponse,
    NotFoundError,
    RestartPriority,
    Site,
    ValidationError,
)
from vmfailover.testing import lab


def test_defaults_are_n_plus_one_capacity_admission_and_no_rules() -> None:
    policy = ClusterPolicy()
    assert policy.admission is AdmissionControl.CAPACITY
    assert policy.reserve_hosts == 1
    assert policy.anti_affinity == ()
    assert policy.affinity == ()
    assert policy.default_priority is RestartPriority.MEDIUM
    assert policy.isolation_response is IsolationResponse.LEAVE_POWERED_ON
    assert policy.vcpus_per_core == 1.0


def test_values_arrive_as_strings_and_sets() -> None:
    policy = ClusterPolicy(
        admission="Slots",
        reserve_hosts=2,
        anti_affinity=[{"dc01", "dc02"}, ["web01", "web02", "web03"]],
        affinity=[("app01", "cache01")],
        restart_priority={"dc01": "highest", "mon01": RestartPriority.DISABLED},
        isolation_response="power_off",
        vcpus_per_core=4,
    )
    assert policy.admission is AdmissionControl.SLOTS
    assert policy.anti_affinity == (
        frozenset({"dc01", "dc02"}),
        frozenset({"web01", "web02", "web03"}),
    )
    assert policy.affinity == (frozenset({"app01", "cache01"}),)
    assert policy.isolation_response is IsolationResponse.POWER_OFF
    assert policy.vcpus_per_core == 4.0
    vm = VM("vm-1", "dc01", "esx")
    assert policy.priority_of(vm) is RestartPriority.HIGHEST
    assert policy.priority_of(VM("mon01", "monitor", "esx")) is RestartPriority.DISABLED
    assert policy.priority_of(VM("vm-9", "other", "esx")) is RestartPriority.MEDIUM


def test_a_policy_is_frozen_and_hashable() -> None:
    policy = ClusterPolicy(anti_affinity=[{"a", "b"}], restart_priority={"a": "high"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.reserve_hosts = 2  # type: ignore[misc]
    assert hash(policy) == hash(
        ClusterPolicy(anti_affinity=[{"b", "a"}], restart_priority={"a": "high"})
    )
    assert attrs.evolve(policy, reserve_hosts=2).reserve_hosts == 2


@pytest.mark.parametrize(
    ("kwargs", "item", "words"),
    [
        ({"admission": "percentage"}, "ClusterPolicy admission", "'capacity'"),
        ({"admission": 1}, "ClusterPolicy admission", "is not one of"),
        ({"reserve_hosts": -1}, "ClusterPolicy reserve_hosts", ">= 0"),
        ({"reserve_hosts": 1.0}, "ClusterPolicy reserve_hosts", "whole number"),
        ({"reserve_hosts": True}, "ClusterPolicy reserve_hosts", "whole number"),
        ({"reserve_hosts": math.nan}, "ClusterPolicy reserve_hosts", "whole number"),
        ({"vcpus_per_core": math.nan}, "ClusterPolicy vcpus_per_core", "finite"),
        ({"vcpus_per_core": math.inf}, "ClusterPolicy vcpus_per_core", "finite"),
        ({"vcpus_per_core": 0}, "ClusterPolicy vcpus_per_core", "> 0"),
        ({"vcpus_per_core": "4"}, "ClusterPolicy vcpus_per_core", "finite number"),
        ({"anti_affinity": "dc01"}, "ClusterPolicy anti_affinity", "list of VM sets"),
        ({"anti_affinity": ["dc01"]}, "ClusterPolicy anti_affinity set 1", "set of VM names"),
        ({"anti_affinity": [{"dc01"}]}, "ClusterPolicy anti_affinity set 1", "needs two"),
        ({"affinity": [{"a", "b"}, {"c", 3}]}, "ClusterPolicy affinity set 2", "got 3"),
        ({"affinity": [{"a", " "}]}, "ClusterPolicy affinity set 1", "non-empty"),
        ({"restart_priority": ["db01"]}, "ClusterPolicy restart_priority", "map VM names"),
        (
            {"restart_priority": {"db01": "urgent"}},
            "ClusterPolicy restart_priority of VM 'db01'",
            "'urgent' is not one of",
        ),
        ({"restart_priority": {"": "high"}}, "ClusterPolicy restart_priority", "keys"),
        ({"default_priority": "soon"}, "ClusterPolicy default_priority", "is not one of"),
        ({"isolation_response": "reboot"}, "ClusterPolicy isolation_response", "is not one of"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    kwargs: dict[str, object], item: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ClusterPolicy(**kwargs)  # type: ignore[arg-type]
    (finding,) = caught.value.findings
    assert finding.item == item
    assert words in finding.message


def test_every_bad_set_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        ClusterPolicy(anti_affinity=[{"a"}, {"b", "c"}, "d", {"e", None}])
    assert [f.item for f in caught.value.findings] == [
        "ClusterPolicy anti_affinity set 1",
        "ClusterPolicy anti_affinity set 3",
        "ClusterPolicy anti_affinity set 4",
    ]
    assert caught.value.findings[1].hint == 'write {"d", "..."}'


def test_together_and_apart_at_once_is_a_contradiction_naming_both_rules() -> None:
    with pytest.raises(ValidationError) as caught:
        ClusterPolicy(affinity=[{"app01", "db01", "x"}], anti_affinity=[{"db01", "app01"}])
    (finding,) = caught.value.findings
    assert finding.item == "ClusterPolicy affinity set 1"
    assert "'app01', 'db01'" in finding.message
    assert "anti_affinity set 1" in finding.message


def test_cpu_capacity_follows_the_overcommit_ratio() -> None:
    host = Host("esx", "site", cpu_cores=16)
    assert ClusterPolicy().cpu_capacity(host) == 16
    assert ClusterPolicy(vcpus_per_core=2.5).cpu_capacity(host) == 40


def test_priority_ranks_order_the_levels() -> None:
    ranks = [priority.rank for priority in RestartPriority]
    assert ranks == sorted(ranks, reverse=True)
    assert RestartPriority.DISABLED.rank == 0


# --- Cluster ------------------------------------------------------------------------------------


def test_a_cluster_is_derived_from_the_inventory() -> None:
    inventory = lab().inventory()
    cluster = Cluster.of(inventory, "prod-cluster")
    assert cluster == Cluster("prod-cluster", ("esx-a1", "esx-a2", "esx-a3"))
    assert [c.name for c in Cluster.all_of(inventory)] == ["dr-cluster", "prod-cluster"]
    assert {vm.name for vm in cluster.vms(inventory)} >= {"dc01", "db01", "web03"}
    assert [host.name for host in cluster.members(inventory)] == list(cluster.hosts)


def test_an_unknown_cluster_names_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match=r"no cluster 'gone'.*'dr-cluster', 'prod-cluster'"):
        Cluster.of(lab().inventory(), "gone")


def test_a_cluster_naming_hosts_the_inventory_lacks_is_refused() -> None:
    inventory = Inventory(sites=[Site("s")], hosts=[Host("h1", "s")])
    with pytest.raises(ValidationError) as caught:
        Cluster("c", ["h1", "h2", "h3"]).members(inventory)
    assert [str(f) for f in caught.value.findings] == [
        "cluster 'c': host 'h2' is not in the inventory",
        "cluster 'c': host 'h3' is not in the inventory",
    ]


@pytest.mark.parametrize(
    ("name", "hosts", "words"),
    [
        ("", ["h1"], "Cluster name"),
        ("c", "h1", "list of host names"),
        ("c", ["h1", ""], "non-empty"),
        ("c", ["h1", "h1"], "twice"),
    ],
)
def test_bad_clusters_are_refused(name: str, hosts: object, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Cluster(name, hosts)  # type: ignore[arg-type]


def test_host_gains_cluster_readiness_fields_with_unknown_defaults() -> None:
    host = Host("esx", "site")
    assert (host.cpu_family, host.cpu_feature_level) == (None, None)
    assert (host.management_paths, host.storage_paths) == (None, None)
    full = Host(
        "esx",
        "site",
        cluster="c",
        cpu_family="intel",
        cpu_feature_level="intel-cascadelake",
        management_paths=2,
        storage_paths=4,
    )
    assert full.storage_paths == 4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_family", ""),
        ("cpu_feature_level", 5),
        ("management_paths", 0),
        ("storage_paths", 1.5),
        ("storage_paths", math.nan),
        ("cluster", " "),
    ],
)
def test_bad_host_readiness_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Host("esx", "site", **{field: value})  # type: ignore[arg-type]
    assert caught.value.findings[0].item == "Host 'esx'"
    assert field in caught.value.findings[0].message
