"""HostMonitor wired to host failover on the lab: a management partition restarts nothing, a real
failure restarts the host's VMs on the others after the grace period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vmfailover import (
    Cluster,
    ClusterPolicy,
    HostFailoverResponse,
    HostMonitor,
    HostState,
    MemoryBackend,
    PowerState,
    Runner,
    RunResult,
    StartOrder,
    ValidationError,
)
from vmfailover.testing import LAB_DEPENDENCIES, lab

INTERVAL, GRACE = 5.0, 30.0


def lab_order() -> StartOrder:
    order = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        order.add(name, after=after)
    return order


def watching(backend: MemoryBackend) -> tuple[HostMonitor, HostFailoverResponse]:
    runner = Runner(backend, poll_interval=2.0)
    cluster = Cluster.of(backend.inventory(), "prod-cluster")
    policy = ClusterPolicy(anti_affinity=[{"dc01", "dc02"}, {"db01", "db02"}])
    response = HostFailoverResponse(runner, cluster, policy, lab_order())

    def power_controller(host: str) -> bool | None:  # an out-of-band view of each host's power
        return backend.inventory().host(host).power is PowerState.ON

    watch = HostMonitor(
        backend, INTERVAL, GRACE, power_controller, hosts=cluster, on_failure=response
    )
    return watch, response


def test_a_partition_restarts_nothing_a_real_failure_restarts_after_the_grace_period() -> None:
    backend = lab()
    watch, response = watching(backend)
    watch.run(20)  # the monitor sees every host answer, and which VMs run where

    backend.isolate_host("esx-a2")  # a broken management link: its VMs keep running
    watch.run(120)
    assert watch.state("esx-a2") is HostState.PARTITIONED
    assert response.reports == [] and response.errors == []
    inventory = backend.inventory()
    assert {vm.name for vm in inventory.vms if vm.host == "esx-a2"} == {
        "dc02",
        "db02",
        "app02",
        "web02",
    }
    assert watch.callback_errors == ()

    lost_at = backend.clock.now()
    backend.fail_host("esx-a1")  # a power loss
    watch.run(INTERVAL * 2)
    assert response.reports == [], "nothing restarts within the grace period"
    watch.run(GRACE + 300)
    assert watch.state("esx-a1") is HostState.FAILED
    assert len(response.reports) == 1, response.errors
    report = response.reports[0]
    assert report.result is RunResult.SUCCEEDED
    assert report.failed_hosts == ("esx-a1",)
    assert {r.name for r in report.vms} == {"dc01", "db01", "app01", "web01"}
    declared = next(d for d in watch.decisions if d.host == "esx-a1" and d.declared_failed)
    assert report.failed_at == declared.at - timedelta(seconds=declared.silent_for)
    assert lost_at <= report.failed_at <= lost_at + timedelta(seconds=INTERVAL)
    for restart in report.vms:
        assert restart.to_host == "esx-a3", "the partitioned host is no candidate"
        assert restart.started_at is not None
        assert restart.started_at >= report.failed_at + timedelta(seconds=GRACE)
        assert restart.downtime_seconds is not None and restart.downtime_seconds > GRACE
    inventory = backend.inventory()
    assert {vm.name for vm in inventory.vms if vm.host == "esx-a3"} >= {"dc01", "db01", "web01"}
    # the monitor also sees the VMs of the lost host run again, on another host
    assert {o.name for o in watch.restarts if o.from_host == "esx-a1" and o.restarted} == {
        "dc01",
        "db01",
        "app01",
        "web01",
    }


def test_the_response_restarts_only_what_ran_on_the_host() -> None:
    backend = lab()
    backend.power_off("vm-007")  # app03 on esx-a3, off before anything happens
    watch, response = watching(backend)
    watch.run(20)
    backend.fail_host("esx-a3")
    watch.run(GRACE + 300)
    (report,) = response.reports
    assert {r.name for r in report.vms} == {"web03", "mon01", "file01"}
    assert backend.inventory().vm("vm-007").host == "esx-a3"


def test_the_response_refuses_what_is_not_a_runner_or_a_decision() -> None:
    backend = lab()
    with pytest.raises(ValidationError, match="Runner"):
        HostFailoverResponse(backend, "prod-cluster")  # type: ignore[arg-type]
    response = HostFailoverResponse(Runner(backend), "prod-cluster")
    with pytest.raises(ValidationError, match="HostDecision"):
        response("esx-a1")  # type: ignore[arg-type]
    assert "prod-cluster" in repr(response)
