"""The three kinds of failover from one plan, on the lab: each promise, checked block by block.

- test: production untouched; cleanup restores the inventory exactly.
- planned: sources shut down, a final sync, zero blocks lost, re-IP verified.
- regular: the reported loss equals the blocks written after the chosen point.
"""

from __future__ import annotations

import threading
from collections import Counter

import attrs
import pytest

from vmfailover import (
    Approval,
    FailoverPlan,
    NetworkMapping,
    Outcome,
    PowerState,
    ReIPRule,
    ReIPRules,
    Runner,
    RunResult,
    RunState,
    StartOrder,
    Step,
    simulate,
)
from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.events import (
    ApprovalWaiting,
    RunEvent,
    RunWarning,
    StepStarted,
    VMStep,
)
from vmfailover.engine.runner import RetryPolicy
from vmfailover.errors import ConflictError, NotFoundError, ValidationError
from vmfailover.testing import (
    LAB_DEPENDENCIES,
    LAB_NETWORK_MAP,
    LAB_TEST_NETWORK_MAP,
    LAB_VMS,
    lab,
)

MUTATING = {
    "create_replica", "sync", "delete_recovery_point", "revert", "connect_nic", "set_guest_ip",
    "power_on", "shutdown_guest", "power_off", "create_test_copy", "remove_test_copy",
    "reverse_replication",
}  # fmt: skip

RULES = ReIPRules(
    [
        ReIPRule("192.168.20.*", "10.20.0.*", gateway="10.20.0.1", dns=["10.20.0.11"]),
        ReIPRule("192.168.10.*", "10.10.0.*", gateway="10.10.0.1", dns=["10.20.0.11"]),
    ]
)
TEST_RULES = ReIPRules([ReIPRule("192.168.0.0/16", "172.16.0.0/16")])


def order() -> StartOrder:
    start = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        start.add(name, after=after)
    return start


def plan(**overrides: object) -> FailoverPlan:
    settings: dict[str, object] = {
        "name": "three-tier",
        "vms": tuple(LAB_DEPENDENCIES),
        "order": order(),
        "network": NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
        "reip": RULES,
        "test_reip": TEST_RULES,
    }
    settings.update(overrides)
    return FailoverPlan(**settings)  # type: ignore[arg-type]


def runner(backend: MemoryBackend, **kwargs: object) -> Runner:
    kwargs.setdefault("poll_interval", 5.0)
    kwargs.setdefault("retry", RetryPolicy(attempts=8, initial_wait=0.5, max_wait=4))
    return Runner(backend, **kwargs)  # type: ignore[arg-type]


def calls(backend: MemoryBackend) -> Counter[str]:
    return Counter({op: n for op, n in backend.faults.per_operation.items() if n})


# --- test failover ----------------------------------------------------------------------------


def test_a_test_failover_leaves_production_alone_and_cleanup_proves_it() -> None:
    backend = lab()
    before = backend.inventory()
    disks = {vm.id: dict(backend.disk(vm.id)) for vm in before.vms}
    backend.faults.per_operation.clear()
    run = runner(backend).start(plan(), kind="test")
    report = run.wait(timeout=60)
    assert report.result is RunResult.SUCCEEDED, report
    assert run.state is RunState.FAILED_OVER
    inventory = backend.inventory()
    # Production: every source and replica VM as it was (power, NICs, addresses).
    for vm in before.vms:
        assert inventory.vm(vm.id) == vm
        assert dict(backend.disk(vm.id)) == disks[vm.id]
    # The copies run on the isolated test networks with the test addresses, verified.
    for result in report.vms:
        copy = inventory.vm(result.runs_as or "")
        assert copy.power_state is PowerState.ON
        assert all(inventory.network("site-b", nic.network).isolated for nic in copy.nics)
        assert all(str(a).startswith("172.16.") for a in copy.nics[0].addresses)
        assert result.addresses_verified is True
        assert result.source == "untouched (test failover)"
    touched = {op for op in calls(backend) if op in MUTATING}
    assert touched == {"create_test_copy", "connect_nic", "set_guest_ip", "power_on"}
    cleaned = runner(backend).cleanup(run)
    assert cleaned.cleanup is not None and cleaned.cleanup.restored, cleaned.cleanup
    assert run.state is RunState.CLEANED_UP
    assert backend.inventory() == before
    assert "inventory restored" in str(cleaned)


def test_cleanup_names_what_it_could_not_restore_and_may_be_repeated() -> None:
    backend = lab()
    run = runner(backend).start(plan(vms=("dc01",), order=None), kind="test")
    run.wait(timeout=60)
    backend.write("vm-001")  # production moves on meanwhile; does not touch the inventory
    backend.set_boot("vm-001", seconds=10)
    backend.power_off("vm-002")  # but this does: the proof must name it
    report = runner(backend).cleanup(run)
    assert report.cleanup is not None and not report.cleanup.restored
    assert any("vm-002" in d and "power_state" in d for d in report.cleanup.differences)
    assert run.state is RunState.FAILED_OVER  # not cleaned up: it may be called again
    backend.power_on("vm-002")
    again = runner(backend).cleanup(run)
    assert again.cleanup is not None and again.cleanup.restored
    with pytest.raises(ConflictError, match="cleaned up"):
        runner(backend).cleanup(run)


def test_cleanup_after_a_delay_and_only_for_tests() -> None:
    backend = lab()
    before = backend.inventory()
    run = runner(backend).start(plan(vms=("web03",), order=None), kind="test", cleanup_after="2h")
    run.wait(timeout=60)
    for _ in range(200):
        if run.state is RunState.CLEANED_UP:
            break
        threading.Event().wait(0.05)
    assert run.state is RunState.CLEANED_UP
    assert backend.inventory() == before
    backend.fail_site("site-a")
    with pytest.raises(ValidationError, match="cleanup_after"):
        runner(backend).start(plan(), kind="regular", cleanup_after=60)
    production = runner(backend).start(plan(vms=("dc01",), order=None), kind="regular")
    production.wait(timeout=60)
    with pytest.raises(ConflictError, match=r"failed over.*cannot clean up"):
        runner(backend).cleanup(production)


# --- planned failover -------------------------------------------------------------------------


def test_a_planned_failover_loses_nothing_and_moves_everything() -> None:
    backend = lab()
    backend.clock.advance(600)  # ten more minutes of the workload's clock, nothing synced
    for name in ("db01", "db02", "file01"):
        backend.write(backend.inventory().vm(name).id, 50)
    report = runner(backend).failover(plan(), kind="planned")
    assert report.result is RunResult.SUCCEEDED, report
    inventory = backend.inventory()
    for result in report.vms:
        source = inventory.vm(result.source_vm_id)
        replica = inventory.vm(result.replica_vm_id or "")
        assert source.power_state is PowerState.OFF
        assert replica.power_state is PowerState.ON
        assert result.source == "shut down"
        # No data lost: the replica's disk equals its source's at shutdown, block for block.
        assert backend.blocks_differing(backend.disk(source.id), backend.disk(replica.id)) == 0
        assert result.data_loss_blocks == 0
        assert result.data_loss_seconds == 0
        assert {n.network for n in replica.nics} <= {"DR-App", "DR-Web"}
        assert result.addresses_verified is True
        assert all(str(a).startswith("10.") for a in replica.nics[0].addresses)
    steps = [r.step for r in report.vm("db01").steps]
    assert steps[:4] == ["check_source", "shutdown_source", "final_sync", "revert"]
    assert steps[-3:] == ["power_on", "wait_ready", "verify_addresses"]


def test_graceful_shutdown_that_times_out_fails_the_vm_or_is_forced() -> None:
    backend = lab()
    backend.set_boot("vm-001", boots=False)  # a hung guest never shuts down either
    graceful = plan(vms=("dc01", "db01"), order=None, shutdown_timeout=30)
    report = runner(backend).failover(graceful, kind="planned")
    assert report.vm("dc01").outcome is Outcome.FAILED
    assert "did not shut down" in (report.vm("dc01").reason or "")
    assert backend.inventory().vm("vm-001").power_state is PowerState.ON  # left running
    assert report.result is RunResult.PARTIAL
    other = lab()
    other.set_boot("vm-001", boots=False)
    forced = attrs.evolve(graceful, power_off_source="graceful_then_force")
    report = runner(other).failover(forced, kind="planned")
    assert report.vm("dc01").outcome is Outcome.READY
    assert "powered off after" in (report.vm("dc01").source or "")


# --- regular failover -------------------------------------------------------------------------


def test_a_regular_failover_reports_exactly_the_blocks_written_after_the_point() -> None:
    backend = lab()
    inventory = backend.inventory()
    written: dict[str, set[int]] = {}
    for vm in inventory.vms_at("site-a"):
        written[vm.name] = set(backend.write(vm.id, 7))
    backend.fail_site("site-a")
    report = runner(backend).failover(plan(), kind="regular")
    assert report.result is RunResult.SUCCEEDED
    for result in report.vms:
        source = result.source_vm_id
        point = result.recovery_point or ""
        lost = backend.blocks_differing(backend.disk(source), backend.point_disk(point))
        assert result.data_loss_blocks == lost
        assert lost >= len(written[result.vm])  # the lab's own workload wrote more since
        assert result.data_loss_seconds == pytest.approx(20 * 60, abs=1)
        assert result.source == "its host was down at pre-flight"


def test_regular_failover_powers_off_reachable_sources_when_the_plan_allows() -> None:
    backend = lab()
    graceful = plan(power_off_source="graceful")
    report = runner(backend).failover(graceful, kind="regular")
    assert report.result is RunResult.SUCCEEDED
    inventory = backend.inventory()
    assert all(vm.power_state is PowerState.OFF for vm in inventory.vms_at("site-a"))


def test_a_source_that_comes_back_between_check_and_start_is_caught() -> None:
    """The pre-flight saw the source off; it is switched on before its VM's turn: the VM fails."""
    backend = lab()
    for vm in backend.inventory().vms_at("site-a"):
        backend.power_off(vm.id)
    run_plan = plan(vms=("dc01", "db01"), order=None)
    seen: list[RunEvent] = []
    the_runner = runner(backend, max_parallel=1)

    def power_source_back(event: RunEvent) -> None:
        seen.append(event)

    the_runner.subscribe(power_source_back)
    backend.faults.per_operation.clear()
    original = backend.revert

    def revert_and_restart(replica_id: str, point_id: str) -> None:
        original(replica_id, point_id)
        if replica_id.endswith("vm-001"):
            backend.power_on("vm-003")  # db01's source comes back while dc01 recovers

    backend.revert = revert_and_restart  # type: ignore[method-assign]
    report = the_runner.failover(run_plan, kind="regular")
    assert report.vm("dc01").outcome is Outcome.READY
    assert report.vm("db01").outcome is Outcome.FAILED
    assert "split the brain" in (report.vm("db01").reason or "")
    inventory = backend.inventory()
    assert inventory.vm("vm-003-replica").power_state is PowerState.OFF


# --- faults, policies and partial runs --------------------------------------------------------


def test_runs_survive_one_in_five_calls_failing_transiently() -> None:
    backend = lab()
    backend.faults.fail_randomly(0.2, seed=7)
    report = runner(backend).failover(plan(), kind="planned")
    assert report.result is RunResult.SUCCEEDED, report
    assert any("retrying" in w for w in report.warnings)
    backend.faults.clear()
    test_backend = lab()
    test_backend.faults.fail_randomly(0.2, seed=11)
    run = runner(test_backend).start(plan(), kind="test")
    assert run.wait(timeout=60).result is RunResult.SUCCEEDED
    test_backend.faults.clear()
    assert runner(test_backend).cleanup(run).cleanup.restored  # type: ignore[union-attr]


def test_a_permanent_failure_skips_exactly_its_dependents_and_leaves_them_untouched() -> None:
    backend = lab()
    backend.fail_site("site-a")
    inventory = backend.inventory()
    db01 = inventory.vm("db01")
    backend.faults.fail("power_on", target=f"{db01.id}-replica", transient=False)
    report = runner(backend).failover(plan(), kind="regular")
    assert report.result is RunResult.PARTIAL
    assert report.vm("db01").outcome is Outcome.FAILED
    needs_db01 = {"app01", "app02", "app03", "web01", "web02", "web03"}
    for name in needs_db01:
        result = report.vm(name)
        assert result.outcome is Outcome.SKIPPED, name
        assert "db01" in (result.reason or "")
        replica = backend.inventory().replica_of(name)
        assert replica.state.value == "ready"  # never reverted
        assert result.steps == ()
    assert {r.vm for r in report.vms if r.outcome is Outcome.READY} == set(LAB_VMS) - needs_db01 - {
        "db01"
    }
    assert "partial" in report.summary()


# --- the clock: a lab run's RTO is what the simulator predicts ---------------------------------


@pytest.mark.parametrize("workers", [1, 3, 8])
def test_a_threaded_lab_run_takes_exactly_the_simulated_time(workers: int) -> None:
    backend = lab()
    backend.fail_site("site-a")
    boots = {name: 10.0 * (1 + index % 5) for index, name in enumerate(LAB_DEPENDENCIES)}
    for name, seconds in boots.items():
        backend.set_boot(backend.inventory().replica_of(name).replica_vm, seconds=seconds)
    report = runner(backend, max_parallel=workers, poll_interval=10.0).failover(
        plan(reip=None), kind="regular", force=False, weights=boots
    )
    predicted = simulate(order(), boots, workers=workers)
    assert report.rto_seconds == predicted.rto
    assert report.predicted_rto_seconds == predicted.rto
    assert report.ideal_rto_seconds == predicted.rto


# --- steps and approvals ----------------------------------------------------------------------


def test_steps_run_around_the_plan_groups_and_vms_in_order() -> None:
    backend = lab()
    backend.fail_site("site-a")
    log: list[str] = []

    def note(label: str) -> object:
        return lambda context: log.append(f"{label}:{context.vm or context.group or 'plan'}")

    grouped = StartOrder()
    grouped.add("dc01", group=1)
    grouped.add("db01", after=["dc01"], group=2)
    steps = [
        Step("announce", note("before"), when="before"),
        Step("warm", note("group-before"), group=2),
        Step("smoke", note("vm-after"), vm="db01", when="after"),
        Step("done", note("after"), when="after"),
        Step("only-tests", note("never"), kinds="test"),
    ]
    report = runner(backend).failover(
        plan(vms=("dc01", "db01"), order=grouped, steps=steps), kind="regular"
    )
    assert report.result is RunResult.SUCCEEDED
    assert log == ["before:plan", "group-before:2", "vm-after:db01", "after:plan"]


def test_a_failing_step_follows_its_policy() -> None:
    backend = lab()
    backend.fail_site("site-a")

    def broken(context: object) -> None:
        raise RuntimeError("DNS server unreachable")

    keep_going = plan(
        vms=("dc01", "db01"),
        order=None,
        steps=[Step("dns", broken, vm="db01", on_failure="continue")],
    )
    report = runner(backend).failover(keep_going, kind="regular")
    assert report.result is RunResult.SUCCEEDED
    assert any(
        "step 'dns' failed: raised RuntimeError: DNS server unreachable" in w
        for w in report.warnings
    )
    other = lab()
    other.fail_site("site-a")
    fail_vm = plan(steps=[Step("dns", broken, vm="db01", on_failure="fail_vm")])
    report = runner(other).failover(fail_vm, kind="regular")
    assert report.vm("db01").outcome is Outcome.FAILED
    assert report.vm("app03").outcome is Outcome.SKIPPED
    third = lab()
    third.fail_site("site-a")
    abort = plan(steps=[Step("check", ["false"], when="before")])
    report = runner(third).failover(abort, kind="regular")
    assert report.result is RunResult.CANCELLED
    assert all(r.outcome is Outcome.CANCELLED for r in report.vms)
    assert all(r.steps == () for r in report.vms)  # nothing was touched


def test_an_argv_step_gets_the_runs_facts_and_a_timeout() -> None:
    backend = lab()
    backend.fail_site("site-a")
    slow = plan(
        vms=("dc01",),
        order=None,
        steps=[
            Step(
                "facts",
                ["sh", "-c", 'test "$VMFAILOVER_VM" = dc01 && test -n "$VMFAILOVER_RUN_ID"'],
                vm="dc01",
                on_failure="fail_vm",
            ),
            Step("slow", ["sleep", "5"], timeout=0.2, on_failure="continue", when="after"),
        ],
    )
    report = runner(backend).failover(slow, kind="regular")
    assert report.vm("dc01").outcome is Outcome.READY
    assert any("step 'slow' failed: did not finish within 0.2 s" in w for w in report.warnings)


def test_approval_gates_wait_for_an_answer() -> None:
    backend = lab()
    backend.fail_site("site-a")
    the_runner = runner(backend)
    waiting = threading.Event()
    the_runner.subscribe(lambda e: waiting.set() if isinstance(e, ApprovalWaiting) else None)
    gated = plan(vms=("dc01", "db01"), order=None, steps=[Approval("go", vm="db01")])
    run = the_runner.start(gated, kind="regular")
    assert waiting.wait(10)
    assert run.waiting_approvals == ("go",)
    with pytest.raises(NotFoundError, match="approval 'stop' is not waiting"):
        run.approve("stop")
    with pytest.raises(ValidationError, match="approved"):
        run.approve("go", approved="yes")  # type: ignore[arg-type]
    run.approve("go")
    assert run.wait(timeout=60).result is RunResult.SUCCEEDED
    refused = lab()
    refused.fail_site("site-a")
    no = plan(vms=("dc01",), order=None, steps=[Approval("go", approver=lambda request: False)])
    report = runner(refused).failover(no, kind="regular")
    assert report.result is RunResult.CANCELLED


# --- isolation: claims and observers ----------------------------------------------------------


def test_two_runs_on_the_same_vms_cannot_overlap() -> None:
    backend = lab()
    backend.fail_site("site-a")
    gated = plan(vms=("dc01", "db01"), order=None, steps=[Approval("hold")])
    first = runner(backend).start(gated, kind="regular")
    for _ in range(200):
        if first.waiting_approvals:
            break
        threading.Event().wait(0.02)
    with pytest.raises(ConflictError, match=f"run {first.id} holds"):
        runner(backend).failover(plan(vms=("db01",), order=None), kind="regular")
    first.approve("hold")
    first.wait(timeout=60)
    # Once the first run ended, its claims are gone (the replica is failed over, though).
    findings = runner(backend).validate(plan(vms=("db01",), order=None), "regular")
    assert any("already running" in str(f) for f in findings)


def test_observers_cannot_change_a_run() -> None:
    backend = lab()
    backend.fail_site("site-a")
    the_runner = runner(backend)
    unsubscribed: list[object] = []

    def explode(event: RunEvent) -> None:
        if isinstance(event, StepStarted) and event.step is VMStep.POWER_ON:
            raise RuntimeError("observer bug")

    def leave(event: RunEvent) -> None:
        unsubscribed.append(event)
        stop()

    stop = the_runner.subscribe(leave)
    the_runner.subscribe(explode)
    report = the_runner.failover(plan(), kind="regular")
    assert report.result is RunResult.SUCCEEDED
    assert len(unsubscribed) == 1  # it unsubscribed itself from its own callback
    assert any("a subscriber raised RuntimeError" in w for w in report.warnings)
    assert all(not isinstance(w, RunWarning) for w in unsubscribed[1:])


# --- objectives -------------------------------------------------------------------------------


def test_rto_is_met_only_when_every_vm_is_ready_in_time() -> None:
    backend = lab()
    backend.fail_site("site-a")
    backend.set_boot(backend.inventory().replica_of("dc01").replica_vm, boots=False)
    report = runner(backend, readiness_timeout=60).failover(
        plan(vms=("dc01",), order=None, rto="15m"), kind="regular"
    )
    assert report.result is RunResult.FAILED
    assert report.rto_met is False
    assert "MISSED" in report.summary()
    assert "MISSED" in str(report)
    fast = lab()
    fast.fail_site("site-a")
    report = runner(fast).failover(plan(rto="1h", rpo="10m"), kind="regular")
    assert report.rto_met is True
    assert report.rpo_met is False  # the lab's points are 20 minutes old
    assert "RPO target 10m00s: MISSED" in report.summary()
    assert '"rpo_met": false' in report.to_json()


# --- bad input --------------------------------------------------------------------------------


def test_bad_requests_get_our_errors() -> None:
    backend = lab()
    the_runner = runner(backend)
    with pytest.raises(ValidationError, match="kind"):
        the_runner.start(plan(), kind="drill")
    with pytest.raises(ValidationError, match="force"):
        the_runner.start(plan(), kind="test", force="no")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="recovery_point"):
        the_runner.start(plan(), kind="test", recovery_point="latest")
    with pytest.raises(ValidationError, match="cleanup"):
        the_runner.cleanup("run-1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Runner backend"):
        Runner("memory")  # type: ignore[arg-type]
    for bad in (float("nan"), float("inf"), 0, -1):
        with pytest.raises(ValidationError, match="readiness_timeout"):
            Runner(backend, readiness_timeout=bad)
    with pytest.raises(ValidationError, match="RetryPolicy attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValidationError, match="RetryPolicy initial_wait"):
        RetryPolicy(initial_wait=float("inf"))
    with pytest.raises(ValidationError, match="subscribe"):
        the_runner.subscribe("print")  # type: ignore[arg-type]


def test_the_docs_show_the_run_state_tables_generated_from_the_code() -> None:
    from pathlib import Path

    from vmfailover.engine.run_state import mermaid

    docs = (Path(__file__).resolve().parents[1] / "docs" / "failover.md").read_text()
    for kind in ("test", "planned"):
        assert mermaid(kind) in docs
    assert mermaid("regular") == mermaid("planned")  # one diagram serves both in the docs


def test_the_docs_first_example_runs() -> None:
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "failover.md").read_text()
    first = re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)[0]
    exec(compile(first, "docs/failover.md", "exec"), {})
