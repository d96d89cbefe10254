"""The first end-to-end failover: regular failover of the lab after losing site A."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from vmfailover import FailoverKind, NotFoundError, PowerState, ValidationError
from vmfailover.backends.memory import MemoryBackend
from vmfailover.cli.demo import lab_start_order
from vmfailover.engine.events import (
    RunEvent,
    RunFinished,
    RunStarted,
    RunStateChanged,
    StepStarted,
    VMFailed,
    VMReady,
)
from vmfailover.engine.events import (
    VMStep as Step,
)
from vmfailover.engine.results import Outcome, RunResult
from vmfailover.engine.runner import RetryPolicy, Runner
from vmfailover.engine.simulate import simulate
from vmfailover.model import Consistency, RecoveryPoint
from vmfailover.policy.points import choose_point
from vmfailover.policy.sequencer import StartOrder
from vmfailover.testing import LAB_DEPENDENCIES, LAB_VMS, SimulatedCrash, lab

MUTATING = {
    "revert",
    "power_on",
    "power_off",
    "shutdown_guest",
    "connect_nic",
    "set_guest_ip",
    "sync",
    "create_replica",
    "create_test_copy",
    "remove_test_copy",
    "reverse_replication",
    "delete_recovery_point",
}


@pytest.fixture
def backend() -> MemoryBackend:
    subject = lab()
    subject.clock.set_rate(2000)  # type: ignore[attr-defined]
    subject.faults.per_operation.clear()  # count only what the runner does
    return subject


def runner_for(backend: MemoryBackend, **kwargs: object) -> Runner:
    kwargs.setdefault("poll_interval", 2.0)
    kwargs.setdefault("retry", RetryPolicy(attempts=4, initial_wait=0.5, max_wait=2))
    return Runner(backend, **kwargs)  # type: ignore[arg-type]


def mutations(backend: MemoryBackend) -> set[str]:
    return {op for op, count in backend.faults.per_operation.items() if count and op in MUTATING}


def test_regular_failover_of_the_lab_starts_every_vm_in_dependency_order(
    backend: MemoryBackend,
) -> None:
    backend.fail_site("site-a")
    report = runner_for(backend).failover(lab_start_order())
    assert report.result is RunResult.SUCCEEDED, str(report)
    assert report.kind is FailoverKind.REGULAR
    assert {r.vm for r in report.vms} == set(LAB_VMS)
    for result in report.vms:
        assert result.outcome is Outcome.READY
        assert result.started_at is not None and result.ready_at is not None
        for dependency in LAB_DEPENDENCIES[result.vm]:
            ready = report.vm(dependency).ready_at
            assert ready is not None and ready <= result.started_at, (result.vm, dependency)
    inventory = backend.inventory()
    for result in report.vms:
        assert inventory.vm(result.replica_vm_id or "").power_state is PowerState.ON
    slowest_chain = sum(LAB_VMS[name][3] for name in ("dc01", "db01", "app01", "web01"))
    assert report.rto_seconds >= slowest_chain


def test_each_vm_is_reverted_to_its_latest_point_and_loses_what_came_after(
    backend: MemoryBackend,
) -> None:
    inventory = backend.inventory()
    latest = {
        inventory.vm(r.source_vm).name: backend.recovery_points(r.id)[-1]
        for r in inventory.replicas
    }
    backend.fail_site("site-a")
    report = runner_for(backend).failover(lab_start_order())
    for result in report.vms:
        point = latest[result.vm]
        assert result.recovery_point == point.id
        assert result.data_loss_seconds == pytest.approx(
            (report.started_at - point.created_at).total_seconds()
        )
        replica_disk = backend.disk(result.replica_vm_id or "")
        assert replica_disk == backend.point_disk(point.id)
        lost = backend.blocks_differing(backend.disk(result.source_vm_id), replica_disk)
        assert (lost > 0) == (LAB_VMS[result.vm][5] > 0)


def test_a_running_source_blocks_the_failover_before_anything_is_touched(
    backend: MemoryBackend,
) -> None:
    with pytest.raises(ValidationError) as caught:
        runner_for(backend).failover(["db01", "web01"])
    items = {finding.item for finding in caught.value.findings}
    assert items == {"VM 'db01'", "VM 'web01'"}
    assert "running" in str(caught.value)
    assert mutations(backend) == set()


def test_an_isolated_source_counts_as_maybe_running(backend: MemoryBackend) -> None:
    backend.isolate_site("site-a")
    with pytest.raises(ValidationError, match="not known to be powered off"):
        runner_for(backend).failover(["db01"])
    assert mutations(backend) == set()


def test_force_overrides_the_split_brain_guard_and_says_so(backend: MemoryBackend) -> None:
    backend.isolate_site("site-a")
    report = runner_for(backend).failover(["dc01"], force=True)
    assert report.result is RunResult.SUCCEEDED
    assert any("force=True" in decision for decision in report.decisions)
    assert "force=True" in str(report)


def test_every_problem_is_reported_at_once(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    with pytest.raises(ValidationError) as caught:
        runner_for(backend).failover(["nosuch", "db01", "also-missing"])
    assert [f.item for f in caught.value.findings] == ["VM 'nosuch'", "VM 'also-missing'"]
    assert mutations(backend) == set()


def test_bad_orders_and_kinds_are_refused(backend: MemoryBackend) -> None:
    order = lab_start_order()
    order.add("loop-a", after=("loop-b",))
    order.add("loop-b", after=("loop-a",))
    with pytest.raises(ValidationError, match="loop-a"):
        runner_for(backend).failover(order)
    with pytest.raises(ValidationError, match="sideways"):
        runner_for(backend).failover(["db01"], kind="sideways")
    # A test failover needs isolated networks: without a mapping its copy would meet production.
    with pytest.raises(ValidationError, match="not isolated"):
        runner_for(backend).failover(["db01"], kind=FailoverKind.TEST)
    with pytest.raises(ValidationError, match="no VMs"):
        runner_for(backend).failover([])
    assert mutations(backend) == set()


def test_transient_errors_are_retried(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    backend.faults.fail("power_on", nth=1, times=2)
    backend.faults.fail("revert", nth=3, times=1)
    report = runner_for(backend).failover(lab_start_order())
    assert report.result is RunResult.SUCCEEDED
    assert sum("retrying" in warning for warning in report.warnings) == 3


def test_a_permanent_failure_skips_exactly_the_dependents(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    replica_vm = backend.inventory().replica_of("db01").replica_vm
    backend.faults.fail("power_on", transient=False, target=replica_vm)
    report = runner_for(backend).failover(lab_start_order())
    assert report.result is RunResult.PARTIAL
    assert report.vm("db01").outcome is Outcome.FAILED
    assert "injected permanent failure" in (report.vm("db01").reason or "")
    dependents = {"app01", "app02", "app03", "web01", "web02", "web03"}
    for result in report.vms:
        expected = Outcome.SKIPPED if result.vm in dependents else Outcome.READY
        if result.vm != "db01":
            assert result.outcome is expected, result.vm
    assert "db01" in (report.vm("web03").reason or "")


def test_a_vm_that_never_gets_ready_times_out(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    backend.set_boot(backend.inventory().replica_of("web03").replica_vm, boots=False)
    order = lab_start_order()
    report = runner_for(backend, readiness_timeout=300).failover(order)
    assert report.result is RunResult.PARTIAL
    web03 = report.vm("web03")
    assert web03.outcome is Outcome.TIMED_OUT
    assert "within 300 s" in (web03.reason or "")


def test_events_tell_the_story_in_order(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    runner = runner_for(backend)
    events: list[RunEvent] = []
    unsubscribe = runner.subscribe(events.append)
    report = runner.failover(["dc01", "dc02"])
    unsubscribe()
    runner.failover(["db01"])
    changes = [(e.old, e.new) for e in events if isinstance(e, RunStateChanged)]
    assert changes == [
        ("pending", "validating"),
        ("validating", "running"),
        ("running", "failed_over"),
    ]
    events = [e for e in events if not isinstance(e, RunStateChanged)]
    assert isinstance(events[0], RunStarted)
    assert isinstance(events[-1], RunFinished)
    assert events[-1].result is RunResult.SUCCEEDED
    assert {e.vm for e in events if isinstance(e, VMReady)} == {"dc01", "dc02"}
    steps = [(e.vm, e.step) for e in events if isinstance(e, StepStarted) and e.vm == "dc01"]
    assert steps == [("dc01", Step.REVERT), ("dc01", Step.POWER_ON), ("dc01", Step.WAIT_READY)]
    assert steps[0][1] == "revert"  # string enums: plain strings still compare equal
    assert all(e.run_id == report.run_id for e in events)


def test_cancel_stops_new_starts_and_leaves_a_consistent_state(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    backend.clock.set_rate(50)  # type: ignore[attr-defined]
    runner = runner_for(backend)
    seen: list[RunEvent] = []
    run = runner.start(lab_start_order())
    runner.subscribe(seen.append)
    run.cancel()
    report = run.wait(timeout=60)
    assert report.result is RunResult.CANCELLED
    outcomes = {r.outcome for r in report.vms}
    assert Outcome.CANCELLED in outcomes
    assert outcomes <= {Outcome.READY, Outcome.CANCELLED}
    inventory = backend.inventory()
    for result in report.vms:
        state = inventory.vm(result.replica_vm_id or "").power_state
        assert (state is PowerState.ON) == (result.outcome is Outcome.READY)
    assert any(isinstance(e, VMFailed) and e.state is Outcome.CANCELLED for e in seen)


def test_a_simulated_crash_ends_the_run_and_its_workers(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    crash_at = backend.faults.calls + 40
    backend.faults.crash_at(crash_at)
    runner = runner_for(backend, max_parallel=4)
    with pytest.raises(SimulatedCrash):
        runner.failover(lab_start_order())
    # Each worker (revert and boot threads) makes at most the call it was already in; nothing
    # runs on after the crash.
    calls_after = backend.faults.calls - crash_at
    assert calls_after <= 2 * runner.max_parallel
    backend.clock.sleep(600)
    assert backend.faults.calls - crash_at == calls_after


def test_report_renders_as_text_html_and_json(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    report = runner_for(backend).failover(["dc01", "db01"], rto=60)
    text = str(report)
    assert "dc01" in text and "succeeded" in text and "MISSED" in text
    assert report.rto_met is False
    html = report._repr_html_()
    assert "<table" in html and "<svg" in html and "RTO target 1m00s" in html
    with pytest.raises(NotFoundError, match="no VM 'web01'"):
        report.vm("web01")
    data = json.loads(report.to_json())
    assert data["result"] == "succeeded"
    assert [vm["vm"] for vm in data["vms"]] == ["dc01", "db01"]
    assert data["vms"][0]["outcome"] == "ready"


def test_choose_point() -> None:
    from datetime import UTC, datetime

    base = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        RecoveryPoint(
            id=f"p{i}",
            replica="r",
            created_at=base + timedelta(hours=i),
            consistency=Consistency.APPLICATION if i % 2 else Consistency.CRASH,
        )
        for i in range(5)
    ]
    assert choose_point(points, "latest") == points[4]
    assert choose_point(points, "latest-application-consistent") == points[3]
    assert choose_point(points, base + timedelta(hours=2, minutes=30)) == points[2]
    assert choose_point(points, base - timedelta(hours=1)) is None
    assert choose_point([], "latest") is None
    with pytest.raises(ValidationError, match="naive"):
        choose_point(points, datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="not a recovery point choice"):
        choose_point(points, "newest")  # type: ignore[arg-type]


def power_on_order(runner: Runner, order: StartOrder, **options: object) -> list[str]:
    events: list[RunEvent] = []
    runner.subscribe(events.append)
    report = runner.failover(order, **options)  # type: ignore[arg-type]
    assert report.result is RunResult.SUCCEEDED, str(report)
    return [e.vm for e in events if isinstance(e, StepStarted) and e.step is Step.POWER_ON]


def short_vms_and_a_chain() -> StartOrder:
    order = StartOrder()  # no max_parallel: the runner's workers are the only limit
    order.add("mon01")
    order.add("file01")
    order.add("dc01")
    order.add("db01", after="dc01")
    order.add("app03", after="db01")
    return order


def test_the_runners_workers_are_a_limit_the_sequencer_fills_critical_path_first(
    backend: MemoryBackend,
) -> None:
    backend.fail_site("site-a")
    order = short_vms_and_a_chain()
    started = power_on_order(runner_for(backend, max_parallel=1), order)
    # First come on the thread pool would have booted mon01 and file01 before db01.
    assert started == ["dc01", "db01", "mon01", "file01", "app03"]
    predicted = simulate(order, dict.fromkeys(order.vms, 60.0), workers=1)
    assert sorted(predicted.starts, key=predicted.starts.__getitem__) == started
    assert predicted.max_parallel == 1


def test_weights_tell_the_runner_which_path_is_longest(backend: MemoryBackend) -> None:
    backend.fail_site("site-a")
    order = short_vms_and_a_chain()
    boots = {name: LAB_VMS[name][3] for name in order.vms}
    started = power_on_order(runner_for(backend, max_parallel=1), order, weights=boots)
    # app03 (35 s) outweighs file01 (30 s) and mon01 (25 s) once db01 is up.
    assert started == ["dc01", "db01", "app03", "file01", "mon01"]
    predicted = simulate(order, boots, workers=1)
    assert sorted(predicted.starts, key=predicted.starts.__getitem__) == started


def test_bad_weights_and_workers_are_refused_before_anything_is_touched(
    backend: MemoryBackend,
) -> None:
    backend.fail_site("site-a")
    with pytest.raises(ValidationError, match="weight for 'nope'"):
        runner_for(backend).failover(["dc01"], weights={"nope": 3})
    assert mutations(backend) == set()
    for bad in (0, 1.5, True):
        with pytest.raises(ValidationError, match="max_parallel"):
            runner_for(backend, max_parallel=bad)
