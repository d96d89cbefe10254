"""After a production failover, on the lab: commit, undo (whole, partial, after a lost site),
the plan's deadline, and failback (only the delta moves, with its own commit and undo)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vmfailover import FailoverPlan, Runner
from vmfailover.backends.memory import BLOCK_SIZE, MemoryBackend
from vmfailover.cli.demo import lab_plan
from vmfailover.engine.aftercare_results import DeadlineAction
from vmfailover.engine.results import Outcome, RunResult
from vmfailover.engine.run_state import RunState
from vmfailover.errors import ConflictError, PermanentBackendError, ValidationError
from vmfailover.model import Inventory, PowerState, ReplicaState
from vmfailover.plan import Approval
from vmfailover.plan.reverse import reverse_plan
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.reip import ReIPRule, ReIPRules
from vmfailover.testing import LAB_DEPENDENCIES, lab


def runner_for(backend: MemoryBackend) -> Runner:
    return Runner(backend, poll_interval=2.0)


def synced_lab(**kwargs: object) -> MemoryBackend:
    backend = lab(**kwargs)  # type: ignore[arg-type]
    for replica in backend.inventory().replicas:
        backend.sync(replica.id)
    return backend


def disks(backend: MemoryBackend, inventory: Inventory) -> dict[str, dict[int, int]]:
    return {vm.id: dict(backend.disk(vm.id)) for vm in inventory.vms}


def points(backend: MemoryBackend, inventory: Inventory) -> dict[str, set[str]]:
    """Each replica's recovery points, by id."""
    return {r.id: {p.id for p in backend.recovery_points(r.id)} for r in inventory.replicas}


def powered(inventory: Inventory, *vm_ids: str) -> set[PowerState]:
    return {inventory.vm(vm_id).power_state for vm_id in vm_ids}


def eventually(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.01)


# --- undo -----------------------------------------------------------------------------------------


def test_undo_of_a_planned_failover_gives_everything_back_and_proves_it() -> None:
    backend = synced_lab()
    before = backend.inventory()
    replicated = disks(backend, before)
    kept = points(backend, before)
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="planned")
    assert run.wait().result is RunResult.SUCCEEDED
    during = backend.inventory()  # production at site B, site A off
    assert powered(during, *(r.replica_vm for r in before.replicas)) == {PowerState.ON}
    assert powered(during, *(r.source_vm for r in before.replicas)) == {PowerState.OFF}
    assert {during.vm(r.replica_vm).nics[0].network for r in before.replicas} <= {
        "DR-App",
        "DR-Web",
    }
    for result in run.report.vms if run.report else ():
        backend.write(result.replica_vm_id or "", 5)  # production ran at site B for a while
    report = runner.undo(run)
    assert run.state is RunState.UNDONE
    assert report.undo is not None and report.undo.restored, report.undo
    assert report.state == "undone"
    assert len(report.undo.undone) == len(report.undo.restarted) == 12
    after = backend.inventory()
    assert after == before  # power, hosts, NIC networks and addresses, replica states
    for replica in before.replicas:  # the replica VMs hold what replication had sent
        assert dict(backend.disk(replica.replica_vm)) == replicated[replica.replica_vm]
        assert after.replica(replica.id).state is ReplicaState.READY
        assert after.replica_of(replica.source_vm).id == replica.id  # the first direction
        # every point from before is still there (the planned run's final sync added one)
        assert kept[replica.id] <= {p.id for p in backend.recovery_points(replica.id)}
    assert powered(after, *(r.source_vm for r in before.replicas)) == {PowerState.ON}
    assert powered(after, *(r.replica_vm for r in before.replicas)) == {PowerState.OFF}
    assert backend.split_brains() == ()
    # sources started again in start order: a VM's dependencies were ready before it started
    restarted = list(report.undo.restarted)
    for name, after_names in LAB_DEPENDENCIES.items():
        for dependency in after_names:
            assert restarted.index(dependency) < restarted.index(name)
    assert "every VM the run touched is as it was" in report.summary()
    with pytest.raises(ConflictError, match="is undone: it cannot undo; nothing more"):
        runner.undo(run)
    # replication goes on, and the plan can run again
    assert runner.failover(lab_plan(), kind="planned").result is RunResult.SUCCEEDED


def test_undo_of_a_partial_run_reverts_only_what_it_touched() -> None:
    backend = synced_lab()
    inventory = backend.inventory()
    db01 = inventory.replica_of("db01").replica_vm
    backend.set_boot(db01, boots=False)  # db01's replica never becomes ready: its dependents skip
    before = backend.inventory()
    runner = Runner(backend, poll_interval=2.0, readiness_timeout=60)
    run = runner.start(lab_plan(), kind="planned")
    report = run.wait()
    assert report.result is RunResult.PARTIAL
    skipped = {r.vm for r in report.vms if r.outcome is Outcome.SKIPPED}
    assert skipped and "db01" not in skipped
    report = runner.undo(run)
    assert report.undo is not None and report.undo.restored, report.undo
    touched = {r.vm for r in report.vms if r.started_at is not None}
    assert set(report.undo.undone) == touched
    assert not skipped & set(report.undo.restarted)
    assert backend.inventory() == before
    assert backend.split_brains() == ()


def test_undo_after_a_run_that_failed_partway_restarts_the_source_it_had_stopped() -> None:
    backend = synced_lab()
    before = backend.inventory()
    app01 = before.replica_of("app01")
    # app01's replica cannot be reverted: its source is already shut down and synced by then
    backend.faults.fail("revert", target=app01.id, transient=False, times=100)
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="planned")
    report = run.wait()
    assert report.result is RunResult.PARTIAL
    outcomes = {r.vm: r.outcome for r in report.vms}
    assert outcomes["app01"] is Outcome.FAILED
    assert outcomes["dc01"] is Outcome.READY
    during = backend.inventory()
    assert during.vm(app01.source_vm).power_state is PowerState.OFF
    assert during.replica(app01.id).state is ReplicaState.READY
    report = runner.undo(run)
    assert report.undo is not None and report.undo.restored, report.undo
    assert "app01" in report.undo.restarted and "app01" not in report.undo.undone
    assert backend.inventory() == before
    assert backend.split_brains() == ()


def test_undo_of_a_cancelled_run() -> None:
    backend = synced_lab()
    before = backend.inventory()
    runner = runner_for(backend)
    run = runner.start(lab_plan(steps=[Approval("go", vm="web01")]), kind="planned")
    eventually(lambda: run.waiting_approvals == ("go",))
    run.approve("go", approved=False)  # refused: the run is cancelled, web01 never starts
    report = run.wait()
    assert run.state is RunState.CANCELLED
    with pytest.raises(ConflictError, match="is cancelled: it cannot commit; allowed: 'undo'"):
        runner.commit(run)
    assert {r.vm for r in report.vms if r.outcome is Outcome.READY} < set(LAB_DEPENDENCIES)
    touched = {r.vm for r in report.vms if r.started_at is not None}
    report = runner.undo(run)
    assert report.undo is not None and report.undo.restored, report.undo
    assert set(report.undo.undone) <= touched
    assert backend.inventory() == before
    assert backend.split_brains() == ()


def test_undo_after_the_source_site_was_lost_leaves_the_lost_sources_alone() -> None:
    backend = lab()
    backend.fail_site("site-a")
    before = backend.inventory()
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="regular")
    assert run.wait().result is RunResult.SUCCEEDED
    report = runner.undo(run)
    assert report.undo is not None and report.undo.restored, report.undo
    assert report.undo.restarted == ()
    assert backend.inventory() == before
    assert powered(before, *(r.source_vm for r in before.replicas)) == {PowerState.OFF}
    assert backend.split_brains() == ()


def test_an_undo_that_could_not_finish_is_finished_by_undoing_again() -> None:
    backend = synced_lab()
    before = backend.inventory()
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="planned")
    run.wait()
    backend.isolate_host(before.host(before.vm("web01").host).name)  # site A partly unreachable
    first = runner.undo(run)
    assert first.undo is not None and not first.undo.restored
    assert run.state is RunState.UNDOING
    assert "undo again to finish" in first.summary()
    with pytest.raises(ConflictError, match="is undoing: it cannot commit; allowed: 'undo'"):
        runner.commit(run)
    backend.restore_host(before.host(before.vm("web01").host).name)
    second = runner.undo(run)
    assert second.undo is not None and second.undo.restored, second.undo
    assert run.state is RunState.UNDONE
    assert backend.inventory() == before
    assert backend.split_brains() == ()


# --- commit ---------------------------------------------------------------------------------------


def test_commit_is_final() -> None:
    backend = synced_lab()
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="planned")
    run.wait()
    report = run.commit()
    assert report.commit is not None and report.commit.by == "runner.commit"
    assert run.state is RunState.COMMITTED
    assert report.commit is not None and len(report.commit.committed) == 12
    inventory = backend.inventory()
    for result in report.vms:
        replica = next(r for r in inventory.replicas if r.replica_vm == result.replica_vm_id)
        assert replica.state is ReplicaState.COMMITTED
        assert [p.id for p in backend.recovery_points(replica.id)] == [result.recovery_point]
    with pytest.raises(ConflictError, match=r"is committed: it cannot undo; allowed: 'fail back'"):
        runner.undo(run)
    with pytest.raises(ConflictError, match="cannot commit"):
        runner.commit(run)
    assert backend.inventory() == inventory  # the refused undo touched nothing
    for replica in inventory.replicas:  # production runs at site B, site A stays off
        assert inventory.vm(replica.replica_vm).power_state is PowerState.ON
        assert inventory.vm(replica.source_vm).power_state is PowerState.OFF
    assert backend.split_brains() == ()
    assert json.loads(report.to_json())["commit"]["committed"][0] == "dc01"


def test_a_test_is_cleaned_up_never_committed_undone_or_failed_back() -> None:
    backend = lab()
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="test")
    run.wait()
    for action in (runner.commit, runner.undo, runner.failback):
        with pytest.raises(ConflictError, match=r"\(test failover\) is failed over: .*clean up"):
            action(run)  # type: ignore[operator]
    runner.cleanup(run)


def test_a_planned_run_is_not_cleaned_up_and_a_running_one_not_failed_back() -> None:
    backend = synced_lab()
    runner = runner_for(backend)
    gate = Approval("go", vm="web01")
    run = runner.start(lab_plan(steps=[gate]), kind="planned")
    eventually(lambda: run.waiting_approvals == ("go",))
    with pytest.raises(ConflictError, match=r"is running: it cannot fail back; allowed: .*cancel"):
        runner.failback(run)
    run.approve("go")
    run.wait()
    with pytest.raises(
        ConflictError, match="is failed over: it cannot clean up; allowed: 'commit'"
    ):
        runner.cleanup(run)


# --- deadlines ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "action", "end"),
    [
        ("auto_commit", DeadlineAction.COMMIT, "committed"),
        ("auto_undo", DeadlineAction.UNDO, "undone"),
    ],
)
def test_the_plan_s_deadline_commits_or_undoes_when_nobody_decided(
    setting: str, action: DeadlineAction, end: str
) -> None:
    backend = synced_lab()
    before = backend.inventory()
    runner = runner_for(backend)
    # Virtual time only jumps while every enlisted piece of work waits on the clock: holding a
    # ticket in this thread (which runs the failover, background=False) keeps the deadline from
    # coming while the test looks.
    with backend.clock.enlist():
        run = runner.start(lab_plan(**{setting: "4h"}), kind="planned", background=False)
        report = run.wait()
        assert run.state is RunState.FAILED_OVER
        assert report.deadline is not None and report.deadline.action is action
        assert (report.deadline.at - report.finished_at).total_seconds() == 4 * 3600
        assert f"uncommitted: automatic {action.value} at" in report.summary()
        assert run.deadline == report.deadline
        assert json.loads(report.to_json())["deadline"]["action"] == action.value
    eventually(lambda: run.state.value == end)
    assert run.deadline is None
    assert backend.clock.now() >= report.deadline.at
    final = run.report
    assert final is not None and final.deadline == report.deadline  # the record stays
    decided = final.commit if action is DeadlineAction.COMMIT else final.undo
    assert decided is not None and decided.by == "deadline"
    assert "automatically at the plan's deadline" in final.summary()
    assert "uncommitted" not in final.summary()
    inventory = backend.inventory()
    if action is DeadlineAction.UNDO:
        assert inventory == before
    else:
        assert {r.state for r in inventory.replicas} == {ReplicaState.COMMITTED}


def test_a_decision_before_the_deadline_wins() -> None:
    backend = synced_lab()
    runner = runner_for(backend)
    with backend.clock.enlist():
        run = runner.start(lab_plan(auto_commit="1h"), kind="planned", background=False)
        run.wait()
        report = runner.undo(run)
        assert report.undo is not None and report.undo.restored and report.undo.by == "runner.undo"
        assert run.deadline is None
    # time is free to reach the deadline now: it wakes, finds the run undone, and does nothing
    for thread in threading.enumerate():
        if thread.name == f"vmfailover-commit-{run.id}":
            thread.join(30)
            assert not thread.is_alive()
    assert run.state is RunState.UNDONE
    assert run.report is not None and run.report.commit is None
    assert all(r.state is ReplicaState.READY for r in backend.inventory().replicas)


# --- failback -------------------------------------------------------------------------------------


def test_failback_after_a_short_failover_moves_only_the_blocks_written_since() -> None:
    backend = synced_lab()
    before = backend.inventory()
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="planned")
    report = run.wait()
    written: set[tuple[str, int]] = set()
    for result in report.vms:
        vm = result.replica_vm_id or ""
        written |= {(vm, block) for block in backend.write(vm, 8)}
    back = runner.failback(run)
    assert run.state is RunState.FAILING_BACK
    back_report = back.wait()
    assert back_report.result is RunResult.SUCCEEDED, back_report
    result = back_report.failback
    assert result is not None and result.of_run == run.id
    assert result.blocks_moved == len(written)  # the delta, not whole disks
    assert result.moved_bytes == len(written) * BLOCK_SIZE
    assert result.moved_bytes < result.disk_bytes / 100
    assert f"moved {len(written)} blocks" in back_report.summary()
    inventory = backend.inventory()
    for replica in before.replicas:  # replication runs the other way until the failback commits
        reverse = inventory.replica_of(replica.replica_vm)
        assert (reverse.source_vm, reverse.replica_vm) == (replica.source_vm, replica.replica_vm)[
            ::-1
        ]
        assert inventory.replica(replica.id).state is ReplicaState.REVERSED
        assert reverse.state is ReplicaState.FAILED_OVER
    for vm in before.vms_at("site-a"):  # the originals run again, on their networks and addresses
        now = inventory.vm(vm.id)
        assert now.power_state is PowerState.ON
        assert now.nics == vm.nics
        replica_vm = before.replica_of(vm.id).replica_vm
        assert inventory.vm(replica_vm).power_state is PowerState.OFF
        assert dict(backend.disk(vm.id)) == dict(backend.disk(replica_vm))
    # the failback's commit hands the original replicas back: the plan is protected again
    committed = runner.commit(back)
    assert committed.commit is not None and len(committed.commit.resumed) == 12
    assert run.state is RunState.FAILED_BACK and back.state is RunState.COMMITTED
    inventory = backend.inventory()
    for replica in before.replicas:
        assert inventory.replica(replica.id).state is ReplicaState.READY
        assert inventory.replica_of(replica.source_vm).id == replica.id
    for replica in before.replicas:
        backend.sync(replica.id)
    again = runner.start(lab_plan(), kind="test")
    assert again.wait().result is RunResult.SUCCEEDED
    runner.cleanup(again)
    assert backend.split_brains() == ()  # at no moment did a VM and its twin both run


def test_undoing_a_failback_gives_production_back_to_the_recovery_site() -> None:
    backend = synced_lab()
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="planned")
    run.wait()
    run.commit()
    back = run.failback(background=False)
    assert back.report is not None and back.report.result is RunResult.SUCCEEDED
    at_recovery = {r.replica_vm_id for r in run.report.vms} if run.report else set()
    undone = back.undo()
    assert undone.undo is not None and undone.undo.restored, undone.undo
    assert run.state is RunState.COMMITTED  # failback may be tried again
    inventory = backend.inventory()
    assert all(inventory.vm(vm).power_state is PowerState.ON for vm in at_recovery)
    written = sum(len(backend.write(vm, [900 + n])) for n, vm in enumerate(sorted(at_recovery)))
    second = runner.failback(run, background=False)
    assert second.report is not None and second.report.failback is not None
    assert second.report.failback.blocks_moved == written
    assert backend.split_brains() == ()
    with pytest.raises(ConflictError, match=r"failback \(planned failover\)\) is failed over"):
        runner.failback(second)


def test_failback_after_a_regular_failover_brings_back_the_lost_site() -> None:
    backend = lab()
    backend.fail_site("site-a")
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="regular")
    assert run.wait().result is RunResult.SUCCEEDED
    for host in backend.inventory().hosts:
        if not host.available:
            backend.restore_host(host.name)
    inventory = backend.inventory()
    differ = sum(
        backend.blocks_differing(backend.disk(r.source_vm), backend.disk(r.replica_vm))
        for r in inventory.replicas
        if r.state is ReplicaState.FAILED_OVER
    )
    back = runner.failback(run, background=False)
    assert back.report is not None and back.report.result is RunResult.SUCCEEDED
    assert back.report.failback is not None
    assert back.report.failback.blocks_moved == differ  # lost writes are overwritten too
    assert any("committed by the failback" in d for d in back.report.failback.decisions)
    inventory = backend.inventory()
    for vm in inventory.vms_at("site-a"):
        assert vm.power_state is PowerState.ON
    assert backend.split_brains() == ()


def test_a_partial_run_is_not_failed_back() -> None:
    backend = synced_lab()
    inventory = backend.inventory()
    backend.set_boot(inventory.replica_of("web03").replica_vm, boots=False)
    runner = Runner(backend, poll_interval=2.0, readiness_timeout=60)
    run = runner.start(lab_plan(), kind="planned")
    assert run.wait().result is RunResult.PARTIAL
    with pytest.raises(ConflictError, match="is partial: it cannot fail back"):
        runner.failback(run)
    run.commit()
    with pytest.raises(ConflictError, match="'web03' did not fail over"):
        runner.failback(run)


# --- the reverse plan -----------------------------------------------------------------------------


def test_the_reverse_plan_inverts_networks_and_gives_back_the_addresses() -> None:
    backend = synced_lab()
    runner = runner_for(backend)
    plan = lab_plan(auto_undo="2h", rto="20m")
    run = runner.start(plan, kind="planned")
    run.wait()
    assert run._execution is not None
    compiled = run._execution.compiled
    reverse = reverse_plan(plan, compiled)
    inventory = backend.inventory()
    assert reverse.vms == tuple(vm.replica_vm.id for vm in compiled.vms)
    assert reverse.network is not None
    assert dict(reverse.network.production) == {"DR-App": "Prod-App", "DR-Web": "Prod-Web"}
    first = compiled.vm("web01")
    override = next(o for o in reverse.reip_overrides if o.vm == first.replica_vm.id)
    assert override.ip_configs == inventory.vm(first.source.id).nics[0].ip_configs
    dc01 = reverse.order.entry(compiled.vm("dc01").replica_vm.id) if reverse.order else None
    db01 = reverse.order.entry(compiled.vm("db01").replica_vm.id) if reverse.order else None
    assert dc01 is not None and db01 is not None and dc01.name in db01.after
    assert (reverse.auto_undo, reverse.rto) == (plan.auto_undo, plan.rto)


def test_a_reverse_plan_that_cannot_tell_networks_apart_is_refused() -> None:
    backend = synced_lab()
    runner = runner_for(backend)
    plan = lab_plan(
        network=NetworkMapping(production={"Prod-App": "DR-App", "Prod-Web": "DR-App"}),
        reip=ReIPRules([ReIPRule("192.168.0.0/16", "10.0.0.0/16")]),
    )
    run = runner.start(plan, kind="planned")
    run.wait()
    with pytest.raises(ValidationError, match=r"network 'DR-App'.*cannot tell them apart"):
        runner.failback(run)
    assert run.state is RunState.FAILED_OVER  # nothing was touched
    own = lab_plan(name="home")
    with pytest.raises(ValidationError, match="failback plan"):
        runner.failback(run, plan="home")  # type: ignore[arg-type]
    assert isinstance(own, FailoverPlan)


def test_the_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "failover.md").read_text()
    (example,) = [
        code
        for code in re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)
        if "runner.failback" in code
    ]
    exec(compile(example, "docs/failover.md", "exec"), {})
    out = capsys.readouterr().out
    assert "every VM the run touched is as it was" in out
    assert "failback of run" in out
    assert "moved 0 blocks (0 B) for 12 VMs" in out  # nothing was written since
    assert "replication resumed for 12 in its first direction" in out


def test_a_failback_cut_off_by_a_backend_error_is_finished_by_failing_back_again() -> None:
    backend = synced_lab()
    before = backend.inventory()
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="planned")
    run.wait()
    db01 = before.replica_of("db01")
    backend.faults.fail("reverse_replication", target=db01.id, transient=False)
    with pytest.raises(PermanentBackendError, match="reverse_replication"):
        runner.failback(run)
    assert run.state is RunState.FAILING_BACK and run.failback_run is None
    back = runner.failback(run, background=False)  # the same calls again: each is idempotent
    assert back.report is not None and back.report.result is RunResult.SUCCEEDED
    runner.commit(back)
    assert run.state is RunState.FAILED_BACK
    inventory = backend.inventory()
    assert all(inventory.replica(r.id).state is ReplicaState.READY for r in before.replicas)
    assert backend.split_brains() == ()


def test_bad_input_gets_our_errors() -> None:
    backend = synced_lab()
    runner = runner_for(backend)
    for action in (runner.commit, runner.undo, runner.failback):
        with pytest.raises(ValidationError, match="needs a Run, got 'run-1'"):
            action("run-1")  # type: ignore[arg-type]
    run = runner.start(lab_plan(), kind="planned")
    run.wait()
    other = runner_for(synced_lab())
    with pytest.raises(ConflictError, match="ran on another backend"):
        other.undo(run)
    with pytest.raises(ValidationError, match="background"):
        runner.failback(run, background="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="auto_commit, auto_undo"):
        lab_plan(auto_commit="1h", auto_undo="2h")
    for bad in (float("nan"), float("inf"), -5, "soon"):
        with pytest.raises(ValidationError, match="auto_undo"):
            lab_plan(auto_undo=bad)
    assert run.state is RunState.FAILED_OVER  # nothing above touched it


def test_a_foreground_failback_runs_once_however_often_it_is_waited_for() -> None:
    """runner.failback(background=False) has run the failback when it returns; waiting on it
    again returns the same report and acts no more (a second wait once ran it a second time)."""
    backend = synced_lab()
    runner = runner_for(backend)
    run = runner.start(lab_plan(), kind="planned", background=False)
    assert run.wait().result is RunResult.SUCCEEDED
    back = runner.failback(run, background=False)
    first = back.wait()
    calls = backend.faults.calls
    assert back.wait() is first
    assert backend.faults.calls == calls, "the second wait made no backend call"
    assert first.result is RunResult.SUCCEEDED
