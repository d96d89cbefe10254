"""Lose a host of the lab's production cluster: check readiness, detect the failure, place its VMs.

Run it: ``python examples/cluster_host_failure.py``. It touches nothing outside this process.
Restarting the placed VMs through the runner (``host_failover``) is coming with the runner's plan
API; this example stops at the placement.
"""

import attrs

from vmfailover import (
    Cluster,
    ClusterPolicy,
    HostDecision,
    HostMonitor,
    Inventory,
    PowerState,
    check_cluster,
    place,
)
from vmfailover.testing import lab


def readiness(inventory: Inventory, cluster: Cluster, policy: ClusterPolicy) -> None:
    print(f"Readiness of {cluster.name} ({', '.join(cluster.hosts)}):")
    findings = check_cluster(inventory, cluster, policy)
    for finding in findings:
        print(f"  {finding.severity.value}: {finding}")
    if not findings:
        print("  ready: every running VM can restart elsewhere if one host fails")


def main() -> None:
    backend = lab()
    inventory = backend.inventory()
    cluster = Cluster.of(inventory, "prod-cluster")
    policy = ClusterPolicy(
        reserve_hosts=1,
        anti_affinity=[{"dc01", "dc02"}, {"db01", "db02"}, {"web01", "web02", "web03"}],
        restart_priority={"dc01": "highest", "dc02": "highest", "db01": "high", "db02": "high"},
    )
    readiness(inventory, cluster, policy)

    # Three web servers kept apart need three hosts; after a host failure there are two. Keep
    # apart the two behind the load balancer (web03 serves another application).
    policy = attrs.evolve(
        policy, anti_affinity=[{"dc01", "dc02"}, {"db01", "db02"}, {"web01", "web02"}]
    )
    readiness(inventory, cluster, policy)
    assert check_cluster(inventory, cluster, policy) == []

    # An out-of-band controller (iLO, iDRAC) that sees each host's power: the witness that tells a
    # dead host from one cut off the management network.
    def power_controller(host: str) -> bool | None:
        return backend.inventory().host(host).power is PowerState.ON

    failed: list[HostDecision] = []
    monitor = HostMonitor(
        backend,
        interval=5,
        grace=30,
        witness=power_controller,
        hosts=cluster,
        on_failure=failed.append,
    )
    backend.isolate_host("esx-a2")  # a broken management link: its VMs keep running
    backend.fail_host("esx-a1")  # a power loss
    monitor.run(60)
    print("\nDecisions:")
    for decision in monitor.decisions:
        print(f"  {decision.host}: {decision.previous} -> {decision.state}: {decision.reason}")
    assert [d.host for d in failed] == ["esx-a1"], "the partitioned host is not declared failed"

    # Where esx-a1's VMs restart: on the hosts that answer (not the partitioned esx-a2), next to
    # the VMs already running there.
    inventory = backend.inventory()
    lost = {decision.host for decision in failed}
    survivors = [inventory.host(name) for name in cluster.hosts if name not in lost]
    victims = [vm for vm in cluster.vms(inventory) if vm.host in lost]
    running = [vm for vm in cluster.vms(inventory) if vm.host not in lost]
    placement = place(victims, survivors, policy, running=running)
    quality = "proven best" if placement.proven else "best found"
    print(f"\nPlacement of the VMs of {', '.join(sorted(lost))} ({quality}):")
    print(placement)
    assert placement.complete


if __name__ == "__main__":
    main()
