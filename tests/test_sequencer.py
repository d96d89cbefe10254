"""The start order and the sequencer: examples of each rule, each failure policy, each bad input."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from vmfailover.errors import ConflictError, NotFoundError, Severity, ValidationError
from vmfailover.policy.probes import (
    CallableProbe,
    HTTPStatus,
    IPAssigned,
    PoweredOn,
    TCPPort,
    ToolsHeartbeat,
)
from vmfailover.policy.sequencer import (
    TRANSITIONS,
    CompiledOrder,
    Event,
    FailurePolicy,
    GroupMode,
    Sequencer,
    StartOrder,
    VMState,
)


def three_tier(**order_options: object) -> StartOrder:
    order = StartOrder(**order_options)  # type: ignore[arg-type]
    order.add("dc01")
    order.add("db01", after=("dc01",))
    order.add("app01", after=("db01",))
    order.add("web01", after=("app01",))
    return order


# -- the happy path ---------------------------------------------------------------------------


def test_chain_starts_one_after_another() -> None:
    seq = Sequencer(three_tier())
    assert seq.take_startable() == ["dc01"]
    assert seq.take_startable() == []
    assert seq.state("dc01") is VMState.STARTING
    assert seq.state("db01") is VMState.PENDING
    for current, following in [("dc01", "db01"), ("db01", "app01"), ("app01", "web01")]:
        seq.mark_ready(current)
        assert seq.take_startable() == [following]
    assert not seq.finished
    seq.mark_ready("web01")
    assert seq.finished
    assert set(seq.states.values()) == {VMState.READY}
    assert seq.reason("web01") is None


def test_independent_vms_start_at_once_without_limits() -> None:
    order = StartOrder()
    for name in ["a", "b", "c"]:
        order.add(name)
    seq = Sequencer(order)
    assert sorted(seq.take_startable()) == ["a", "b", "c"]
    assert seq.starting == ("a", "b", "c")


def test_a_vm_starts_the_moment_its_own_dependencies_are_ready() -> None:
    order = StartOrder()
    order.add("slow")
    order.add("fast")
    order.add("needs_fast", after="fast")
    seq = Sequencer(order)
    assert sorted(seq.take_startable()) == ["fast", "slow"]
    seq.mark_ready("fast")
    assert seq.take_startable() == ["needs_fast"]


def test_longest_remaining_path_starts_first() -> None:
    order = StartOrder(max_parallel=1)
    order.add("leaf")
    order.add("root")
    order.add("middle", after="root")
    order.add("end", after="middle")
    seq = Sequencer(order)
    assert seq.take_startable() == ["root"]
    assert seq.priority("root") == 3
    assert seq.priority("leaf") == 1


def test_weights_change_the_critical_path() -> None:
    order = StartOrder(max_parallel=1)
    order.add("short_chain")
    order.add("short_tail", after="short_chain")
    order.add("long_single")
    seq = Sequencer(order, weights={"long_single": 100.0, "short_chain": 1, "short_tail": 1})
    assert seq.take_startable() == ["long_single"]
    assert Sequencer(order).take_startable() == ["short_chain"]


def test_max_parallel_caps_starting_vms() -> None:
    order = StartOrder(max_parallel=2)
    for name in "abcde":
        order.add(name)
    seq = Sequencer(order)
    assert seq.take_startable() == ["a", "b"]
    assert seq.take_startable() == []
    seq.mark_failed("a", "boom")
    assert seq.take_startable() == ["c"]


def test_priority_groups_order_the_queue_but_do_not_wait() -> None:
    order = StartOrder(max_parallel=1)
    order.add("late", group=3)
    order.add("early", group=1)
    order.add("ungrouped")
    order.add("middle", group=2)
    seq = Sequencer(order)
    started = []
    while not seq.finished:
        batch = seq.take_startable()
        started.extend(batch)
        for name in batch:
            seq.mark_ready(name)
    assert started == ["early", "middle", "late", "ungrouped"]


def test_priority_groups_without_limit_start_everything_at_once() -> None:
    order = StartOrder(groups="priority")
    order.add("late", group=3)
    order.add("early", group=1)
    assert sorted(Sequencer(order).take_startable()) == ["early", "late"]


def test_barrier_groups_wait_for_the_whole_earlier_group() -> None:
    order = StartOrder(groups="barrier")
    order.add("g1a", group=1)
    order.add("g1b", group=1)
    order.add("g2", group=2)
    order.add("g2_after", group=2, after="g2")
    order.add("loose")
    seq = Sequencer(order)
    assert sorted(seq.take_startable()) == ["g1a", "g1b"]
    seq.mark_ready("g1a")
    assert seq.take_startable() == []
    seq.mark_failed("g1b")
    assert seq.take_startable() == ["g2"]
    seq.mark_ready("g2")
    assert seq.take_startable() == ["g2_after"]
    seq.mark_ready("g2_after")
    assert seq.take_startable() == ["loose"]


def test_barrier_opens_when_the_rest_of_a_group_is_skipped() -> None:
    order = StartOrder(groups="barrier")
    order.add("a", group=1)
    order.add("b", group=1, after="a")
    order.add("c", group=2)
    seq = Sequencer(order)
    assert seq.take_startable() == ["a"]
    seq.mark_failed("a")
    assert seq.state("b") is VMState.SKIPPED
    assert seq.take_startable() == ["c"]


def test_resource_limits_hold_and_free_up() -> None:
    order = StartOrder()
    for name in ["a", "b", "c"]:
        order.add(name, resources=("host:esx-07",))
    order.add("free")
    order.limit("host:esx-07", 2)
    seq = Sequencer(order)
    assert sorted(seq.take_startable()) == ["a", "b", "free"]
    assert seq.in_use("host:esx-07") == 2
    assert seq.take_startable() == []
    seq.mark_ready("a")
    assert seq.in_use("host:esx-07") == 1
    assert seq.take_startable() == ["c"]


def test_a_vm_blocked_on_one_resource_does_not_block_others() -> None:
    order = StartOrder()
    order.add("holder", resources=("r1",))
    order.add("best", resources=("r1", "r2"), after=())
    order.add("other", resources=("r2",))
    order.add("tail", after="best")
    order.limit("r1", 1)
    order.limit("r2", 1)
    seq = Sequencer(order)
    # best has the longest path and takes r1 and r2; holder and other must wait.
    assert seq.take_startable() == ["best"]
    seq.mark_ready("best")
    assert sorted(seq.take_startable()) == ["holder", "other", "tail"]


def test_a_woken_vm_that_is_blocked_elsewhere_passes_the_unit_on() -> None:
    order = StartOrder()
    order.add("hold_r1", resources="r1")
    order.add("hold_r2", resources="r2")
    order.add("needs_both", resources=("r1", "r2"), after=())
    order.add("needs_r1", resources="r1")
    order.limit("r1", 1)
    order.limit("r2", 1)
    seq = Sequencer(order)
    assert sorted(seq.take_startable()) == ["hold_r1", "hold_r2"]
    seq.mark_ready("hold_r1")
    # needs_both is woken for r1 but r2 is still held: needs_r1 gets r1 instead.
    assert seq.take_startable() == ["needs_r1"]
    seq.mark_ready("hold_r2")
    seq.mark_ready("needs_r1")
    assert seq.take_startable() == ["needs_both"]


# -- failure policies -------------------------------------------------------------------------


def test_skip_dependents_skips_exactly_the_transitive_dependents() -> None:
    order = StartOrder()
    order.add("dc01")
    order.add("db01", after="dc01")
    order.add("app01", after="db01")
    order.add("web01", after="app01")
    order.add("other", after="dc01")
    seq = Sequencer(order)
    seq.take_startable()
    seq.mark_ready("dc01")
    assert sorted(seq.take_startable()) == ["db01", "other"]
    seq.mark_failed("db01", "no boot disk")
    assert seq.state("db01") is VMState.FAILED
    assert seq.reason("db01") == "no boot disk"
    assert seq.state("app01") is VMState.SKIPPED
    assert seq.reason("app01") == "skipped: depends on db01, which failed"
    assert seq.state("web01") is VMState.SKIPPED
    assert "db01" in (seq.reason("web01") or "")
    assert seq.state("other") is VMState.STARTING
    assert not seq.finished
    seq.mark_ready("other")
    assert seq.finished


def test_timeout_is_a_failure_with_the_timeout_as_reason() -> None:
    order = StartOrder()
    order.add("db01", timeout=300)
    order.add("app01", after="db01")
    seq = Sequencer(order)
    seq.take_startable()
    seq.mark_timed_out("db01")
    assert seq.state("db01") is VMState.TIMED_OUT
    assert seq.reason("db01") == "timed out after 300 s"
    assert seq.reason("app01") == "skipped: depends on db01, which timed out"


def test_continue_starts_dependents_with_a_warning() -> None:
    order = StartOrder()
    order.add("monitoring", on_failure="continue")
    order.add("app01", after="monitoring")
    seq = Sequencer(order)
    seq.take_startable()
    seq.mark_failed("monitoring", "agent crashed")
    assert seq.take_startable() == ["app01"]
    [warning] = seq.warnings
    assert warning.severity is Severity.WARNING
    assert "app01" in warning.item
    assert "monitoring" in warning.message


def test_abort_starts_nothing_new_and_cancels_the_rest() -> None:
    order = StartOrder()
    order.add("critical", on_failure="abort")
    order.add("busy")
    order.add("later", after="busy")
    order.add("dependent", after="critical")
    seq = Sequencer(order)
    assert sorted(seq.take_startable()) == ["busy", "critical"]
    seq.mark_failed("critical")
    assert seq.state("dependent") is VMState.CANCELLED
    assert seq.state("later") is VMState.CANCELLED
    assert "critical" in (seq.reason("later") or "")
    assert not seq.finished
    seq.mark_ready("busy")
    assert seq.take_startable() == []
    assert seq.finished


def test_cancel_lets_running_vms_report_and_cancels_pending() -> None:
    seq = Sequencer(three_tier())
    seq.take_startable()
    seq.cancel()
    assert seq.state("db01") is VMState.CANCELLED
    assert seq.reason("db01") == "cancelled: the run was cancelled"
    assert not seq.finished
    seq.mark_ready("dc01")
    assert seq.take_startable() == []
    assert seq.finished
    seq.cancel()  # cancelling twice is harmless
    assert seq.finished


# -- illegal events ---------------------------------------------------------------------------


def test_mark_ready_on_a_pending_vm_names_event_vm_and_state() -> None:
    seq = Sequencer(three_tier())
    with pytest.raises(ConflictError, match=r"cannot mark_ready VM 'db01': it is pending"):
        seq.mark_ready("db01")


def test_marking_twice_is_a_conflict() -> None:
    seq = Sequencer(three_tier())
    seq.take_startable()
    seq.mark_ready("dc01")
    with pytest.raises(ConflictError, match="mark_failed VM 'dc01': it is ready"):
        seq.mark_failed("dc01")
    with pytest.raises(ConflictError, match="mark_timed_out VM 'dc01': it is ready"):
        seq.mark_timed_out("dc01")
    assert seq.state("dc01") is VMState.READY


def test_unknown_vm_events_and_queries() -> None:
    seq = Sequencer(three_tier())
    with pytest.raises(ConflictError, match="'nope': it is not in the start order"):
        seq.mark_ready("nope")
    with pytest.raises(NotFoundError):
        seq.state("nope")
    with pytest.raises(NotFoundError):
        seq.reason("nope")
    with pytest.raises(NotFoundError):
        seq.in_use("host:none")


def test_the_transition_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(VMState)
    for state, moves in TRANSITIONS.items():
        assert bool(moves) == (not state.final)
        assert all(isinstance(event, Event) for event in moves)


def transitions_markdown() -> str:
    lines = ["| state | event | next state |", "|---|---|---|"]
    for state, moves in TRANSITIONS.items():
        for event, target in moves.items():
            lines.append(f"| `{state.value}` | `{event.value}` | `{target.value}` |")
    return "\n".join(lines)


def test_docs_show_the_transition_table_generated_from_the_code() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs" / "sequencing.md"
    assert transitions_markdown() in docs.read_text(encoding="utf-8")


# -- the order as data ------------------------------------------------------------------------


def test_entries_are_frozen_and_normalised() -> None:
    order = StartOrder(max_parallel=4, groups=GroupMode.BARRIER)
    probe = TCPPort(1433, timeout=120)
    entry = order.add(
        "db01",
        after="dc01",
        group=2,
        probe=probe,
        timeout=600,
        on_failure="abort",
        resources=["host:esx-07", "host:esx-07"],
    )
    assert order.entry("db01") is entry
    assert entry.after == ("dc01",)
    assert entry.resources == ("host:esx-07",)
    assert entry.on_failure is FailurePolicy.ABORT
    assert entry.probe == probe
    assert entry.timeout == 600.0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.group = 3  # type: ignore[misc]
    assert order.vms == ("db01",)
    assert "db01" in order
    assert len(order) == 1
    assert order.max_parallel == 4
    assert order.groups is GroupMode.BARRIER
    with pytest.raises(NotFoundError):
        order.entry("web01")


def test_the_sequencer_takes_a_snapshot_of_the_order() -> None:
    order = three_tier()
    seq = Sequencer(order)
    order.add("late")
    assert "late" not in seq.states


def test_probes_are_plain_data_with_checked_fields() -> None:
    assert PoweredOn().timeout > 0
    assert ToolsHeartbeat(timeout=30).describe() == "guest tools heartbeat"
    assert IPAssigned().describe() == "IP address assigned"
    assert TCPPort(443).describe() == "TCP <guest address>:443 open"
    assert HTTPStatus("https://app/health").status == 200
    assert CallableProbe(len).describe() == "callable len"
    for bad in [
        lambda: PoweredOn(timeout=0),
        lambda: ToolsHeartbeat(timeout=-1),
        lambda: IPAssigned(timeout=float("nan")),
        lambda: TCPPort(0),
        lambda: TCPPort(70000),
        lambda: TCPPort(80, address=""),
        lambda: HTTPStatus("ftp://x"),
        lambda: HTTPStatus("http://x", status=42),
        lambda: CallableProbe("not callable"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(ValidationError):
            bad()


# -- bad input --------------------------------------------------------------------------------


def test_a_vm_added_twice_is_refused() -> None:
    order = three_tier()
    with pytest.raises(ValidationError, match=r"VM 'db01'.*already in the start order"):
        order.add("db01")


@pytest.mark.parametrize("timeout", [0, -5, float("nan"), float("inf"), "60", True])
def test_bad_timeouts_are_refused(timeout: object) -> None:
    with pytest.raises(ValidationError, match="VM 'db01': timeout"):
        StartOrder().add("db01", timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("capacity", [0, -1, 1.5, None, True])
def test_bad_capacities_are_refused(capacity: object) -> None:
    with pytest.raises(ValidationError, match="resource 'host:esx-07': capacity"):
        StartOrder().limit("host:esx-07", capacity)  # type: ignore[arg-type]


def test_every_bad_argument_of_add_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        StartOrder().add(
            "db01",
            after=("", 3),  # type: ignore[arg-type]
            group=0,
            probe="ping",  # type: ignore[arg-type]
            timeout=-1,
            on_failure="retry",
            resources=(None,),  # type: ignore[arg-type]
        )
    findings = caught.value.findings
    assert len(findings) == 7
    assert all(finding.item == "VM 'db01'" for finding in findings)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_parallel": 0}, "max_parallel"),
        ({"max_parallel": -3}, "max_parallel"),
        ({"groups": "waves"}, "groups"),
    ],
)
def test_bad_order_options_are_refused(options: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        StartOrder(**options)  # type: ignore[arg-type]


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValidationError):
        StartOrder().add("")
    with pytest.raises(ValidationError):
        StartOrder().limit(" ", 2)


def test_a_cycle_names_every_vm_in_order() -> None:
    order = StartOrder()
    order.add("ok")
    order.add("web01", after=("app01", "ok"))
    order.add("app01", after="db01")
    order.add("db01", after="web01")
    [finding] = order.validate()
    assert finding.blocking
    assert finding.item == "VMs 'web01' -> 'app01' -> 'db01' -> 'web01'"
    with pytest.raises(ValidationError) as caught:
        Sequencer(order)
    assert caught.value.findings == (finding,)


def test_each_separate_cycle_is_reported() -> None:
    order = StartOrder()
    order.add("a", after="b")
    order.add("b", after="a")
    order.add("c", after="d")
    order.add("d", after="c")
    order.add("e", after="e")
    order.add("behind_a_cycle", after="a")
    items = [finding.item for finding in order.validate()]
    assert items == ["VMs 'a' -> 'b' -> 'a'", "VMs 'c' -> 'd' -> 'c'", "VM 'e'"]


def test_unknown_dependencies_are_named() -> None:
    order = StartOrder()
    order.add("app01", after=("db01", "dc01"))
    findings = order.validate()
    assert [(f.item, re.findall(r"'(\w+)'", f.message)) for f in findings] == [
        ("VM 'app01'", ["db01"]),
        ("VM 'app01'", ["dc01"]),
    ]
    with pytest.raises(ValidationError, match="db01"):
        Sequencer(order)


def test_barrier_groups_that_contradict_dependencies() -> None:
    order = StartOrder(groups="barrier")
    order.add("db01", group=3)
    order.add("app01", group=2, after="db01")
    order.add("ungrouped_db")
    order.add("app02", group=1, after="ungrouped_db")
    findings = order.validate()
    assert [f.item for f in findings] == ["VM 'app01'", "VM 'app02'"]
    assert all(f.blocking for f in findings)
    assert "group 3" in findings[0].message
    assert "no group" in findings[1].message


def test_priority_groups_that_contradict_dependencies_only_warn() -> None:
    order = StartOrder(groups="priority")
    order.add("db01", group=3)
    order.add("app01", group=2, after="db01")
    [finding] = order.validate()
    assert finding.severity is Severity.WARNING
    seq = Sequencer(order)
    assert seq.warnings == [finding]
    assert seq.take_startable() == ["db01"]


def test_resources_without_capacity_are_reported() -> None:
    order = StartOrder()
    order.add("a", resources="datastore:ds1")
    order.add("b", resources="datastore:ds1")
    [finding] = order.validate()
    assert finding.item == "resource 'datastore:ds1'"
    assert "'a', 'b'" in finding.message
    assert "order.limit('datastore:ds1', n)" in (finding.hint or "")


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ValidationError, match="weight for 'nope'"):
        Sequencer(three_tier(), weights={"nope": 1.0})
    with pytest.raises(ValidationError, match="weight for 'db01'"):
        Sequencer(three_tier(), weights={"db01": -1.0})


# -- the compiled order and stepping by position ------------------------------------------------


def test_compile_checks_once_and_sequencers_walk_it_fresh() -> None:
    compiled = three_tier().compile()
    assert isinstance(compiled, CompiledOrder)
    assert compiled.names == ("dc01", "db01", "app01", "web01")
    assert compiled.index["app01"] == 2
    assert compiled.deps[1] == (0,)
    assert compiled.dependents[0] == (1,)
    assert compiled.priority == (4.0, 3.0, 2.0, 1.0)
    assert compiled.best_first == compiled.names
    assert len(compiled) == 4
    assert "4 VMs" in repr(compiled)
    for _ in range(2):  # each sequencer starts from the beginning
        seq = Sequencer(compiled)
        assert seq.compiled is compiled
        assert seq.take_startable() == ["dc01"]
        seq.mark_ready("dc01")
        assert seq.take_startable() == ["db01"]


def test_compile_refuses_what_the_sequencer_refuses() -> None:
    order = StartOrder()
    order.add("a", after="b")
    order.add("b", after="a")
    with pytest.raises(ValidationError, match="'a' -> 'b' -> 'a'"):
        order.compile()


def test_weights_change_the_best_first_order() -> None:
    order = StartOrder(max_parallel=1)
    order.add("quick")
    order.add("slow")
    assert order.compile().best_first == ("quick", "slow")
    heavier = order.compile(weights={"slow": 300})
    assert heavier.best_first == ("slow", "quick")
    assert heavier.priority == (1.0, 300.0)
    assert Sequencer(heavier).take_startable() == ["slow"]
    with pytest.raises(ValidationError, match="weight for 'nope'"):
        order.compile(weights={"nope": 1})
    with pytest.raises(ValidationError, match="weights"):
        order.compile(weights=[1, 2])  # type: ignore[arg-type]


def test_a_compiled_order_carries_its_weights_and_workers() -> None:
    compiled = three_tier().compile()
    with pytest.raises(ValidationError, match="compiled order already has them"):
        Sequencer(compiled, workers=2)
    with pytest.raises(ValidationError, match="compiled order already has them"):
        Sequencer(compiled, weights={"dc01": 1})
    with pytest.raises(ValidationError, match="StartOrder or a CompiledOrder"):
        Sequencer(["dc01"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("max_parallel", "workers", "limit"),
    [(None, None, None), (None, 2, 2), (3, None, 3), (3, 2, 2), (2, 3, 2)],
)
def test_workers_are_a_limit_the_sequencer_enforces(
    max_parallel: int | None, workers: int | None, limit: int | None
) -> None:
    order = StartOrder(max_parallel=max_parallel)
    for name in ["a", "b", "c", "d"]:
        order.add(name)
    compiled = order.compile(workers=workers)
    assert compiled.max_parallel == limit
    assert compiled.workers == workers
    started = Sequencer(order, workers=workers).take_startable()
    assert len(started) == (4 if limit is None else limit)


def test_with_few_workers_the_critical_path_goes_first() -> None:
    order = StartOrder()  # no max_parallel: only the driver's workers limit
    order.add("short1")
    order.add("short2")
    order.add("chain1")
    order.add("chain2", after="chain1")
    order.add("chain3", after="chain2")
    seq = Sequencer(order, workers=1)
    started = []
    while not seq.finished:
        (name,) = seq.take_startable()
        started.append(name)
        seq.mark_ready(name)
    # chain1 (3 to go) and chain2 (2) beat the shorts (1); chain3 ties with them and was added
    # later. First come (the old thread pool) was chain1, short1, short2, chain2, chain3.
    assert started == ["chain1", "chain2", "short1", "short2", "chain3"]


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "4"])
def test_bad_workers_are_refused(workers: object) -> None:
    with pytest.raises(ValidationError, match="workers"):
        three_tier().compile(workers=workers)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="workers"):
        Sequencer(three_tier(), workers=workers)  # type: ignore[arg-type]


def test_stepping_by_position() -> None:
    seq = Sequencer(three_tier(), weights={"dc01": 10})
    assert seq.take_startable_positions() == [0]
    assert seq.state_at(0) is VMState.STARTING
    seq.mark_ready_at(0)
    assert seq.take_startable_positions() == [1]
    seq.mark_failed_at(1, "disk on fire")
    assert seq.reason("db01") == "disk on fire"
    assert seq.state_at(2) is VMState.SKIPPED
    assert seq.finished
    assert seq.take_startable_positions() == []


def test_a_timeout_by_position_names_the_limit() -> None:
    order = StartOrder()
    order.add("db01", timeout=90)
    seq = Sequencer(order)
    assert seq.take_startable_positions() == [0]
    seq.mark_timed_out_at(0)
    assert seq.state("db01") is VMState.TIMED_OUT
    assert seq.reason("db01") == "timed out after 90 s"


def test_bad_positions_are_conflicts_naming_the_position() -> None:
    seq = Sequencer(three_tier())
    with pytest.raises(ConflictError, match="cannot mark_ready VM 'db01': it is pending"):
        seq.mark_ready_at(1)
    for bad in (4, -1, 1.0, True, "0"):
        with pytest.raises(ConflictError, match="the start order has 4 VMs"):
            seq.mark_ready_at(bad)  # type: ignore[arg-type]
        with pytest.raises(NotFoundError, match="not in the start order of 4 VMs"):
            seq.state_at(bad)  # type: ignore[arg-type]
    seq.take_startable_positions()
    seq.mark_timed_out_at(0)
    with pytest.raises(ConflictError, match="cannot mark_failed VM 'dc01': it is timed out"):
        seq.mark_failed_at(0)
