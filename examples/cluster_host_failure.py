"""Lose a host of the lab's production cluster: check readiness, detect the failure, restart its
VMs on the other hosts through the runner, and move them back once the host returns.

Run it: ``python examples/cluster_host_failure.py``. It touches nothing outside this process.
"""

import attrs

from vmfailover import (
    Cluster,
    ClusterPolicy,
    HostFailoverResponse,
    HostMonitor,
    Inventory,
    PowerState,
    Runner,
    StartOrder,
    check_cluster,
    place,
)
from vmfailover.testing import LAB_DEPENDENCIES, lab


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

    # What each VM needs ready before it starts: the same start order as a site failover.
    order = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        order.add(name, after=after)
    runner = Runner(backend, poll_interval=2)
    respond = HostFailoverResponse(runner, cluster, policy, order)
    monitor = HostMonitor(
        backend,
        interval=5,
        grace=30,
        witness=power_controller,
        hosts=cluster,
        on_failure=respond,  # a host declared failed gets a host failover
    )
    monitor.run(10)  # the monitor learns which VMs run where
    original = {vm.name: vm.host for vm in cluster.vms(backend.inventory())}

    # Where esx-a1's VMs would restart, as the failover will decide it (a pure function).
    inventory = backend.inventory()
    victims = [vm for vm in cluster.vms(inventory) if vm.host == "esx-a1"]
    survivors = [inventory.host("esx-a3")]  # esx-a2 will be cut off the management network
    running = [vm for vm in cluster.vms(inventory) if vm.host == "esx-a3"]
    print("\nPlacement of esx-a1's VMs if esx-a2 cannot take any:")
    print(place(victims, survivors, policy, running=running))

    backend.isolate_host("esx-a2")  # a broken management link: its VMs keep running
    backend.fail_host("esx-a1")  # a power loss
    monitor.run(600)
    print("\nDecisions:")
    for decision in monitor.decisions:
        print(f"  {decision.host}: {decision.previous} -> {decision.state}: {decision.reason}")
    assert [r.failed_hosts for r in respond.reports] == [("esx-a1",)], "esx-a2 is partitioned"

    report = respond.reports[0]
    print(f"\n{report}")
    assert report.unplaced == ()
    assert all(r.restarted for r in report.vms)

    # esx-a1 is repaired and esx-a2's link comes back: the VMs move home (live here).
    backend.restore_host("esx-a1")
    backend.restore_host("esx-a2")
    back = runner.move_back(report)
    print(f"\n{back}")
    assert back.restored
    assert {vm.name: vm.host for vm in cluster.vms(backend.inventory())} == original


if __name__ == "__main__":
    main()
