"""HostMonitor against the memory lab on a virtual clock: a power loss is declared after the grace
period, a management partition the witness sees through is not."""

from __future__ import annotations

import threading
import time

import attrs
import pytest

from vmfailover import (
    BackendWitness,
    Cluster,
    HostDecision,
    HostMonitor,
    HostState,
    Inventory,
    MemoryBackend,
    PowerState,
    RestartObservation,
    ValidationError,
    WitnessVerdict,
)
from vmfailover.clock import VirtualClock
from vmfailover.policy.host_health import HealthEvent
from vmfailover.testing import lab

INTERVAL, GRACE = 5.0, 30.0


@pytest.fixture
def backend() -> MemoryBackend:
    return lab()


def out_of_band(backend: MemoryBackend) -> BackendWitness | object:
    """A witness that sees host power the way an out-of-band controller (iLO, iDRAC) does: the
    memory backend keeps a partitioned host's power on and a failed host's power off."""

    def power_controller(host: str) -> bool | None:
        return backend.inventory().host(host).power is PowerState.ON

    return power_controller


def monitor(backend: MemoryBackend, **kwargs: object) -> HostMonitor:
    kwargs.setdefault("witness", out_of_band(backend))
    kwargs.setdefault("hosts", Cluster.of(backend.inventory(), "prod-cluster"))
    return HostMonitor(backend, INTERVAL, GRACE, **kwargs)  # type: ignore[arg-type]


def test_a_management_partition_restarts_nothing(backend: MemoryBackend) -> None:
    failures: list[HostDecision] = []
    watch = monitor(backend, on_failure=failures.append)
    watch.run(20)
    assert watch.decisions == ()  # healthy hosts that answer are no news
    backend.isolate_host("esx-a1")
    watch.run(120)
    assert failures == []
    assert watch.state("esx-a1") is HostState.PARTITIONED
    suspect, partitioned = watch.decisions
    assert (suspect.event, suspect.state) == (HealthEvent.SILENT, HostState.SUSPECT)
    assert (partitioned.event, partitioned.state) == (HealthEvent.SEEN_ALIVE, HostState.PARTITIONED)
    assert partitioned.silent_for >= GRACE
    assert partitioned.evidence.witness is WitnessVerdict.ALIVE
    assert partitioned.reason == (
        "silent for 30 s (grace 30 s), but witness 'power_controller' sees it running: a "
        "management partition, its VMs still run; nothing is restarted"
    )
    assert "dc01" in partitioned.evidence.running_vms
    assert all(
        vm.power_state is PowerState.ON for vm in backend.inventory().vms if vm.host == "esx-a1"
    )
    assert watch.state("esx-a2") is HostState.HEALTHY


def test_a_power_loss_is_declared_after_the_grace_period(backend: MemoryBackend) -> None:
    failures: list[HostDecision] = []
    watch = monitor(backend, on_failure=failures.append)
    watch.run(10)
    backend.fail_host("esx-a2")
    lost_at = backend.clock.now()
    watch.run(25)
    assert failures == [], "not before the grace period"
    assert watch.state("esx-a2") is HostState.SUSPECT
    watch.run(60)
    (declared,) = failures
    assert declared.host == "esx-a2"
    assert declared.declared_failed
    assert declared.event is HealthEvent.CONFIRMED_DOWN
    assert declared.evidence.witness is WitnessVerdict.DOWN
    assert GRACE <= declared.silent_for < GRACE + INTERVAL
    assert GRACE <= (declared.at - lost_at).total_seconds() <= GRACE + 2 * INTERVAL
    assert declared.reason == (
        "silent for 30 s (grace 30 s), and witness 'power_controller' sees it down too: "
        "declared failed"
    )
    assert [d.state for d in watch.decisions] == [HostState.SUSPECT, HostState.FAILED]


def test_without_a_witness_the_grace_period_alone_decides(backend: MemoryBackend) -> None:
    watch = monitor(backend, witness=None)
    backend.isolate_host("esx-a3")
    watch.run(60)
    assert watch.state("esx-a3") is HostState.FAILED
    assert watch.decisions[-1].reason == (
        "silent for 30 s (grace 30 s), no witness configured: declared failed"
    )


def test_a_witness_that_cannot_tell_holds_the_decision(backend: MemoryBackend) -> None:
    failures: list[HostDecision] = []
    watch = monitor(backend, witness=lambda host: None, on_failure=failures.append)
    backend.fail_host("esx-a1")
    watch.run(120)
    assert failures == []
    assert watch.state("esx-a1") is HostState.SUSPECT
    last = watch.decisions[-1]
    assert last.event is HealthEvent.UNCONFIRMED
    assert last.reason == (
        "silent for 30 s (grace 30 s), but the witness cannot tell: not declared failed on the "
        "management network's word alone"
    )
    assert len(watch.decisions) == 2  # silent, then unconfirmed once: no repeats


def test_a_witness_that_fails_or_hangs_counts_as_cannot_tell(backend: MemoryBackend) -> None:
    def broken(host: str) -> bool:
        raise OSError("no route to the heartbeat datastore")

    watch = monitor(backend, witness=broken)
    backend.fail_host("esx-a1")
    watch.run(40)
    assert watch.state("esx-a1") is HostState.SUSPECT
    assert watch.decisions[-1].evidence.witness_detail == (
        "witness 'broken' failed: OSError: no route to the heartbeat datastore"
    )

    release = threading.Event()
    calls = []

    def hanging(host: str) -> bool:
        calls.append(host)
        release.wait(10)
        return False

    stuck = monitor(lab(), witness=hanging, call_timeout=0.2)
    stuck.backend.fail_host("esx-a1")  # type: ignore[attr-defined]
    stuck.run(45)
    try:
        assert stuck.state("esx-a1") is HostState.SUSPECT
        details = [d.evidence.witness_detail for d in stuck.decisions]
        assert details[-1] == (
            "witness 'hanging' did not answer: the witness call did not return within 0.2 s"
        )
        assert len(calls) == 1, "no second call while the first one hangs"
    finally:
        release.set()


def test_no_inventory_means_no_judgement(backend: MemoryBackend) -> None:
    watch = monitor(backend)
    backend.fail_host("esx-a1")
    backend.faults.fail("inventory", times=12)
    watch.run(55)  # 12 polls, none of which reads an inventory
    assert watch.decisions == ()
    assert len(watch.notes) == 12
    assert watch.notes[0].message.startswith("no inventory, nothing judged:")
    watch.run(60)  # the grace period runs from the first poll that saw the host silent
    suspect, failed = watch.decisions
    assert (failed.at - suspect.at).total_seconds() == GRACE


def test_a_host_that_comes_back_is_healthy_again(backend: MemoryBackend) -> None:
    watch = monitor(backend)
    backend.fail_host("esx-a1")
    watch.run(60)
    backend.restore_host("esx-a1")
    watch.run(10)
    back = watch.decisions[-1]
    assert (back.previous, back.state) == (HostState.FAILED, HostState.HEALTHY)
    assert back.reason == "answers again: it is back; VMs restarted elsewhere stay where they are"


def test_observe_mode_measures_how_long_the_hypervisors_ha_took(backend: MemoryBackend) -> None:
    failures: list[HostDecision] = []
    seen: list[RestartObservation] = []
    watch = monitor(backend, mode="observe", on_failure=failures.append, on_restart=seen.append)
    victims = sorted(vm.name for vm in backend.inventory().vms if vm.host == "esx-a3")
    watch.run(10)
    backend.fail_host("esx-a3")
    watch.run(50)
    assert watch.state("esx-a3") is HostState.FAILED
    assert failures == [], "observe mode never responds"
    # The hypervisor's HA brings the host back and starts its VMs again, 90 s after the loss.
    backend.clock.advance(40)
    backend.restore_host("esx-a3")
    for vm in backend.inventory().vms:
        if vm.host == "esx-a3":
            backend.power_on(vm.id)
    watch.run(10)
    assert sorted(r.name for r in watch.restarts) == victims
    assert seen == list(watch.restarts)
    for restart in watch.restarts:
        assert restart.restarted and restart.to_host == "esx-a3"
        assert 90 <= (restart.downtime or 0) <= 90 + 2 * INTERVAL
        assert str(restart).startswith(f"VM {restart.name!r} of 'esx-a3' runs again on the same")


def test_vms_that_do_not_come_back_are_reported(backend: MemoryBackend) -> None:
    watch = monitor(backend, mode="observe", restart_timeout=120)
    watch.poll()  # the monitor saw them running
    backend.fail_host("esx-a2")
    watch.run(150)
    assert {r.name for r in watch.restarts} == {
        vm.name for vm in backend.inventory().vms if vm.host == "esx-a2"
    }
    assert not any(r.restarted for r in watch.restarts)
    assert watch.restarts[0].downtime is None
    assert str(watch.restarts[0]).endswith("of 'esx-a2' did not run again")


def test_a_partition_that_heals_is_no_restart(backend: MemoryBackend) -> None:
    watch = monitor(backend, mode="observe")
    backend.isolate_host("esx-a1")
    watch.run(60)
    backend.restore_host("esx-a1")
    watch.run(10)
    assert watch.state("esx-a1") is HostState.HEALTHY
    assert watch.restarts == ()


class ScriptedInventories:
    """The inventory a hypervisor's HA shows, step by step (a seam of our own: only
    ``inventory()`` is needed by the monitor)."""

    name = "scripted"

    def __init__(self, first: Inventory, clock: VirtualClock) -> None:
        self.current = first
        self.clock = clock

    def inventory(self) -> Inventory:
        return self.current


def test_observe_mode_sees_vms_restarted_on_another_host(backend: MemoryBackend) -> None:
    start = backend.inventory()
    scripted = ScriptedInventories(start, VirtualClock(backend.clock.now()))
    watch = HostMonitor(scripted, INTERVAL, GRACE, mode="observe")  # type: ignore[arg-type]
    watch.run(10)
    lost = [vm for vm in start.vms if vm.host == "esx-a1"]
    down = attrs.evolve(start.host("esx-a1"), power="off", connection="not_responding")
    scripted.current = attrs.evolve(
        start,
        hosts=[down if h.name == "esx-a1" else h for h in start.hosts],
        vms=[attrs.evolve(vm, power_state="off") if vm in lost else vm for vm in start.vms],
    )
    watch.run(20)
    # vSphere HA restarts them on esx-a2, before the monitor's grace period is over.
    scripted.current = attrs.evolve(
        scripted.current,
        vms=[
            attrs.evolve(vm, host="esx-a2", power_state="on") if vm.host == "esx-a1" else vm
            for vm in scripted.current.vms
        ],
    )
    watch.run(10)
    assert {(r.name, r.to_host) for r in watch.restarts} == {(vm.name, "esx-a2") for vm in lost}
    assert all(15 <= (r.downtime or 0) <= 30 for r in watch.restarts)
    # The host stays silent and is declared failed later; its VMs already run elsewhere.
    watch.run(30)
    assert watch.state("esx-a1") is HostState.FAILED


def test_hosts_leaving_the_inventory_are_no_failure(backend: MemoryBackend) -> None:
    start = backend.inventory()
    scripted = ScriptedInventories(start, VirtualClock(backend.clock.now()))
    watch = HostMonitor(scripted, INTERVAL, GRACE)  # type: ignore[arg-type]
    watch.run(10)
    scripted.current = attrs.evolve(
        start,
        hosts=[h for h in start.hosts if h.name != "esx-b3"],
        vms=[vm for vm in start.vms if vm.host != "esx-b3"],
        replicas=[r for r in start.replicas if r.target_host != "esx-b3"],
    )
    watch.run(60)
    (removed,) = watch.decisions
    assert (removed.host, removed.state) == ("esx-b3", HostState.REMOVED)
    assert removed.reason == "left the inventory: no longer watched"
    scripted.current = start
    watch.run(5)
    assert watch.decisions[-1].reason == "is back in the inventory and answers"


def test_a_callback_that_raises_changes_nothing(backend: MemoryBackend) -> None:
    def explode(decision: HostDecision) -> None:
        raise RuntimeError(f"pager down for {decision.host}")

    watch = monitor(backend, on_failure=explode, on_decision=explode)
    backend.fail_host("esx-a1")
    watch.run(60)
    assert watch.state("esx-a1") is HostState.FAILED
    assert watch.callback_errors == (
        "on_decision raised RuntimeError: pager down for esx-a1",
        "on_decision raised RuntimeError: pager down for esx-a1",
        "on_failure raised RuntimeError: pager down for esx-a1",
    )


def test_a_second_vantage_point_is_a_witness(backend: MemoryBackend) -> None:
    other_path = lab()  # a second connection; this one still reaches esx-a1
    watch = monitor(backend, witness=BackendWitness(other_path))
    backend.isolate_host("esx-a1")
    watch.run(60)
    assert watch.state("esx-a1") is HostState.PARTITIONED
    other_path.isolate_host("esx-a2")
    backend.isolate_host("esx-a2")
    watch.run(60)
    assert watch.state("esx-a2") is HostState.FAILED
    assert BackendWitness(other_path)("no-such-host") is None
    other_path.faults.fail("inventory")
    assert BackendWitness(other_path)("esx-a1") is None


def test_polling_in_the_background_stops_within_its_timeout() -> None:
    backend = lab()
    backend.clock.set_rate(600)  # 5 s polls every ~8 ms of real time
    declared = threading.Event()
    watch = monitor(backend, on_failure=lambda decision: declared.set())
    with watch:
        backend.fail_host("esx-a1")
        assert declared.wait(10)
    assert watch.stop(timeout=2)
    polls = len(watch.decisions)
    time.sleep(0.05)
    assert len(watch.decisions) == polls


@pytest.mark.parametrize(
    ("kwargs", "item"),
    [
        ({"interval": 0}, "HostMonitor interval"),
        ({"interval": float("nan")}, "HostMonitor interval"),
        ({"grace": -1}, "HostMonitor grace"),
        ({"grace": float("inf")}, "HostMonitor grace"),
        ({"witness": "ping"}, "HostMonitor witness"),
        ({"on_failure": 3}, "HostMonitor on_failure"),
        ({"mode": "compete"}, "HostMonitor mode"),
        ({"hosts": "esx-a1"}, "HostMonitor hosts"),
        ({"hosts": []}, "HostMonitor hosts"),
        ({"call_timeout": 0}, "HostMonitor call_timeout"),
        ({"restart_timeout": True}, "HostMonitor restart_timeout"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], item: str) -> None:
    settings: dict[str, object] = {"interval": INTERVAL, "grace": GRACE, **kwargs}
    with pytest.raises(ValidationError) as caught:
        HostMonitor(MemoryBackend(), **settings)  # type: ignore[arg-type]
    assert caught.value.findings[0].item == item


def test_a_monitor_needs_an_inventory_and_a_bounded_run() -> None:
    with pytest.raises(ValidationError, match="HostMonitor backend"):
        HostMonitor(object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="HostMonitor run duration"):
        HostMonitor(MemoryBackend()).run(-1)
    with pytest.raises(ValidationError, match="BackendWitness backend"):
        BackendWitness(object())  # type: ignore[arg-type]


def test_a_blip_long_after_a_failure_is_no_restart(backend: MemoryBackend) -> None:
    watch = monitor(backend, mode="observe")
    watch.poll()
    backend.fail_host("esx-a1")
    watch.run(60)
    backend.restore_host("esx-a1")
    for vm in backend.inventory().vms:
        if vm.host == "esx-a1":
            backend.power_on(vm.id)
    watch.run(10)
    restarted = len(watch.restarts)
    assert restarted == 4
    backend.isolate_host("esx-a1")  # later, a short management blip: the VMs keep running
    watch.run(10)
    backend.restore_host("esx-a1")
    watch.run(10)
    assert len(watch.restarts) == restarted


def test_run_polls_again_after_a_background_watch_stopped() -> None:
    backend = lab()
    watch = monitor(backend)
    watch.start()
    assert watch.stop(timeout=5)
    backend.fail_host("esx-a1")
    watch.run(60)
    assert watch.state("esx-a1") is HostState.FAILED
