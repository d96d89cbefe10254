"""Recovery drills: the pure decision (due, skip) as properties, the driver on the lab over
several scheduled periods in virtual time, and ``vmfailover drill`` as cron starts it."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_support import vmfailover
from vmfailover import (
    Approval,
    Drill,
    DrillDriver,
    DrillOutcome,
    FailoverPlan,
    NetworkMapping,
    Runner,
    Schedule,
    SQLiteJournal,
    StartOrder,
    run_drill,
)
from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.runner import RetryPolicy
from vmfailover.errors import ValidationError
from vmfailover.model import FailoverKind
from vmfailover.policy.drills import PRODUCTION_SETTLED, RunView, drill_due, skip_reason
from vmfailover.testing import LAB_NETWORK_MAP, LAB_TEST_NETWORK_MAP, lab

# --- the pure decision ------------------------------------------------------------------------

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(0, 90 * 86_400).map(lambda s: EPOCH + timedelta(seconds=s))
intervals = st.sampled_from(["15m", "1h", "6h", "1d", "1w"])


@given(every=intervals, last=st.none() | instants, now=instants)
def test_a_drill_is_due_exactly_when_a_slot_passed_since_it_last_started(
    every: str, last: datetime | None, now: datetime
) -> None:
    schedule = Schedule(every=every)
    expected = last is None or any(True for _ in schedule.slots(last, now))
    assert drill_due(schedule, last, now) is expected
    # Once it started at ``now``, it is not due again until the next slot (no double run).
    assert not drill_due(schedule, now, now)
    following = schedule.next_after(now)
    assert following is not None and drill_due(schedule, now, following)


STATES = [
    "pending", "validating", "running", "failed_over", "partial", "failed", "cancelled",
    "cleaned_up", "committing", "committed", "undoing", "undone", "failing_back", "failed_back",
]  # fmt: skip
VM_NAMES = ["dc01", "db01", "app01", "web01", "mon01"]
run_views = st.builds(
    RunView,
    run_id=st.text("abcdef0123", min_size=1, max_size=6),
    plan=st.sampled_from(["tier", "other", "more"]),
    kind=st.sampled_from(list(FailoverKind)),
    state=st.sampled_from(STATES),
    vms=st.lists(st.sampled_from(VM_NAMES), max_size=3, unique=True),
)


def _blocks(run: RunView, plan: str, vms: set[str]) -> bool:
    if run.plan != plan and not vms.intersection(run.vms):
        return False
    if run.kind is FailoverKind.TEST:
        return run.state != "cleaned_up"
    return run.state not in PRODUCTION_SETTLED


@given(
    runs=st.lists(run_views, max_size=6),
    vms=st.lists(st.sampled_from(VM_NAMES), min_size=1, max_size=3, unique=True),
)
def test_a_drill_is_skipped_exactly_when_a_run_of_its_plan_or_vms_is_unsettled(
    runs: list[RunView], vms: list[str]
) -> None:
    reason = skip_reason("tier", vms, runs)
    blocking = [run for run in runs if _blocks(run, "tier", set(vms))]
    assert (reason is None) is (not blocking)
    if reason is not None:
        assert any(run.run_id in reason for run in blocking)
        production = [run for run in blocking if run.kind is not FailoverKind.TEST]
        assert ("production" in reason) is bool(production)  # production is named first
    # Runs of other plans over other VMs never matter.
    strangers = [run for run in runs if run.plan != "tier" and not set(vms) & set(run.vms)]
    assert skip_reason("tier", vms, strangers) is None


@given(state=st.sampled_from(["pending", "validating", "running"]))
def test_drills_never_overlap_a_test_of_the_same_plan(state: str) -> None:
    running = RunView("r1", "tier", FailoverKind.TEST, state, ["dc01"])
    reason = skip_reason("tier", ["db01"], [running])
    assert reason is not None and "never overlap" in reason


def test_an_unproven_cleanup_waits_for_a_person() -> None:
    left = RunView("r2", "tier", "test", "failed_over", ["dc01"])
    reason = skip_reason("tier", ["dc01"], [left])
    assert reason is not None and "a person must look first" in reason
    assert "vmfailover cleanup r2" in reason


def test_bad_drills_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        Drill(
            "tier",  # type: ignore[arg-type]
            schedule={"every": "never"},
            max_duration=float("nan"),
            keep=0,
            expected={"dc01": float("inf")},
        )
    items = " ".join(finding.item for finding in refused.value.findings)
    for item in ("Drill plan", "schedule.every", "max_duration", "Drill keep", "Drill expected"):
        assert item in items
    with pytest.raises(ValidationError, match="RunView kind"):
        RunView("r", "p", "sideways", "running", [])
    with pytest.raises(ValidationError, match="RunView vms"):
        RunView("r", "p", "test", "running", "dc01")


# --- the driver on the lab --------------------------------------------------------------------


def plan(
    vms: tuple[str, ...] = ("dc01", "db01"), name: str = "tier", **extra: object
) -> FailoverPlan:
    order = StartOrder()
    order.add("dc01")
    for vm in vms:
        if vm != "dc01":
            order.add(vm, after=["dc01"] if "dc01" in vms else [])
    return FailoverPlan(
        name=name,
        vms=vms,
        order=order,
        network=NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
        **extra,  # type: ignore[arg-type]
    )


def runner(backend: MemoryBackend, **kwargs: object) -> Runner:
    kwargs.setdefault("retry", RetryPolicy(attempts=2, initial_wait=0.1, max_wait=0.2))
    return Runner(backend, poll_interval=5.0, **kwargs)  # type: ignore[arg-type]


def test_nightly_drills_over_several_nights_a_failure_does_not_stop_the_next() -> None:
    backend = lab()
    before = backend.inventory()
    driver = DrillDriver(runner(backend), [Drill(plan(), schedule={"daily": "03:00"}, keep=3)])
    start = backend.clock.now()
    night = (start + timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
    driver.run_forever(until=night + timedelta(hours=1))  # at once, then the first night
    backend.faults.fail("power_on", transient=False, message="the copy would not boot")
    driver.run_forever(until=night + timedelta(days=1, hours=1))
    driver.run_forever(until=night + timedelta(days=3, hours=1))
    history = driver.history("tier")
    assert len(history) == 3  # keep=3 of the five drills
    assert [r.result for r in history] == [
        DrillOutcome.FAILED,
        DrillOutcome.PASSED,
        DrillOutcome.PASSED,
    ]
    failed = history[0]
    assert failed.started_at == night + timedelta(days=1)
    assert "dc01" in failed.reason and "would not boot" in failed.reason
    assert failed.cleanup is not None and failed.cleanup.restored  # proven even when it failed
    assert {vm.vm: vm.outcome for vm in failed.vms}["dc01"] == "failed"
    passed = history[-1]
    assert passed.started_at == night + timedelta(days=3)
    assert passed.rto_seconds is not None and passed.rto_seconds > 0
    assert passed.predicted_rto_seconds == pytest.approx(passed.rto_seconds)  # learned times
    assert all(vm.outcome == "ready" and vm.seconds for vm in passed.vms)
    assert backend.inventory() == before
    # Rendering and JSON say the same.
    assert "FAILED" in str(failed) and "dc01" in failed._repr_html_()
    data = json.loads(passed.to_json())
    assert data["result"] == "passed" and data["cleanup"]["restored"] is True
    assert data["vms"][0]["vm"] == "dc01"


def test_a_drill_longer_than_max_duration_is_cancelled_cleaned_up_and_failed() -> None:
    backend = lab()
    before = backend.inventory()
    drill = Drill(plan(), max_duration="30s")  # dc01 alone takes longer to boot
    result = run_drill(runner(backend), drill)
    assert result.result is DrillOutcome.FAILED
    assert "max_duration 30s" in result.reason
    assert result.cleanup is not None and result.cleanup.restored
    assert backend.inventory() == before


def _held_production_run(the_runner: Runner) -> object:
    """A regular failover of dc01 waiting at an approval gate: production in progress."""
    the_runner.backend.fail_site("site-a")  # type: ignore[attr-defined]
    held = the_runner.start(
        plan(("dc01",), name="production", steps=[Approval("hold")]), kind="regular"
    )
    for _ in range(500):
        if held.waiting_approvals:
            return held
        threading.Event().wait(0.02)
    raise AssertionError("the production run never reached its gate")


def test_a_production_run_in_progress_or_uncommitted_skips_the_drill(tmp_path: Path) -> None:
    backend = lab()
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        the_runner = runner(backend, journal=journal)
        held = _held_production_run(the_runner)
        drill = Drill(plan(), schedule={"every": "1h"})
        driver = DrillDriver(the_runner, [drill])
        (result,) = driver.run_pending()
        assert result.result is DrillOutcome.SKIPPED
        assert f"production regular run {held.id}" in result.reason  # type: ignore[attr-defined]
        assert "in progress" in result.reason and "dc01" in result.reason
        held.approve("hold")  # type: ignore[attr-defined]
        held.wait(timeout=60)  # type: ignore[attr-defined]
        backend.clock.advance(3600)
        (result,) = driver.run_pending()
        assert result.result is DrillOutcome.SKIPPED
        assert "failed over: commit or undo it first" in result.reason
        assert len(driver.history("tier")) == 2
        the_runner.close()


def test_without_a_journal_the_claims_still_keep_a_drill_off_production() -> None:
    backend = lab()
    the_runner = runner(backend)
    held = _held_production_run(the_runner)
    result = run_drill(the_runner, Drill(plan()))
    assert result.result is DrillOutcome.SKIPPED
    assert f"run {held.id} holds" in result.reason  # type: ignore[attr-defined]
    held.approve("hold")  # type: ignore[attr-defined]
    held.wait(timeout=60)  # type: ignore[attr-defined]


def test_a_drill_whose_cleanup_was_not_proven_blocks_the_next_one() -> None:
    backend = lab()
    driver = DrillDriver(runner(backend), [Drill(plan(("dc01",)), schedule={"every": "6h"})])
    backend.faults.fail("remove_test_copy", transient=False)
    (first,) = driver.run_pending()
    assert first.result is DrillOutcome.FAILED
    assert first.cleanup is not None and not first.cleanup.restored
    backend.clock.advance(6 * 3600)
    (second,) = driver.run_pending()
    assert second.result is DrillOutcome.SKIPPED
    assert first.run_id is not None and f"test run {first.run_id}" in second.reason
    assert "a person must look first" in second.reason


# --- the command line -------------------------------------------------------------------------

PLAN_FILE = """\
format_version = 1
name = "directory"
vms = ["dc01"]
rto = "15m"

[network]
production = {{ {production} }}
test = {{ {test} }}
"""


def _mapping(mapping: object) -> str:
    return ", ".join(f'"{k}" = "{v}"' for k, v in dict(mapping).items())  # type: ignore[call-overload]


def test_the_drill_command_passes_then_refuses_while_a_test_is_left(tmp_path: Path) -> None:
    plan_file = tmp_path / "directory.toml"
    plan_file.write_text(
        PLAN_FILE.format(production=_mapping(LAB_NETWORK_MAP), test=_mapping(LAB_TEST_NETWORK_MAP))
    )
    passed = vmfailover(tmp_path, "drill", str(plan_file))
    assert passed.returncode == 0, passed.stderr + passed.stdout
    assert "passed" in passed.stdout and "inventory restored" in passed.stdout
    left = vmfailover(tmp_path, "run", str(plan_file), "--kind", "test", "--json")
    run_id = json.loads(left.stdout)["run_id"]
    skipped = vmfailover(tmp_path, "drill", str(plan_file), "--json")
    assert skipped.returncode == 3, skipped.stderr
    result = json.loads(skipped.stdout)
    assert result["result"] == "skipped" and f"vmfailover cleanup {run_id}" in result["reason"]
    assert vmfailover(tmp_path, "cleanup", run_id).returncode == 0
    failed = vmfailover(tmp_path, "drill", str(plan_file), "--max-duration", "5s")
    assert failed.returncode == 1, failed.stderr
    assert "FAILED" in failed.stdout and "max_duration 5s" in failed.stdout
    history = vmfailover(tmp_path, "report", "--json")
    assert history.returncode == 0
    assert history.stdout.count('"test"') >= 3  # every drill's run is journaled as a test run
