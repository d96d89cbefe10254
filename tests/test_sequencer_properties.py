"""Random start orders driven by random ready / failed / timed-out / cancel events.

Every invariant the sequencer promises is checked after every step: dependencies, barriers,
resource and slot limits, eagerness (nothing startable left waiting), failure policies (exactly the
transitive dependents are skipped), and that illegal events change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmfailover.errors import ConflictError
from vmfailover.policy.sequencer import FailurePolicy, GroupMode, Sequencer, StartOrder, VMState

RESOURCES = ("host:a", "host:b", "datastore:c")
FAILED_STATES = (VMState.FAILED, VMState.TIMED_OUT)


@dataclass
class Spec:
    """What the test generated, kept alongside the order to check against."""

    order: StartOrder
    after: dict[str, tuple[str, ...]]
    rank: dict[str, int]
    policy: dict[str, FailurePolicy]
    uses: dict[str, tuple[str, ...]]
    capacity: dict[str, int]
    max_parallel: int | None
    barrier: bool
    dependents: dict[str, list[str]] = field(default_factory=dict)


@st.composite
def orders(draw: st.DrawFn, max_vms: int = 18) -> Spec:
    count = draw(st.integers(1, max_vms))
    names = [f"vm{index}" for index in range(count)]
    barrier = draw(st.booleans())
    max_parallel = draw(st.one_of(st.none(), st.integers(1, 4)))
    capacity = {r: draw(st.integers(1, 3)) for r in RESOURCES}
    after: dict[str, tuple[str, ...]] = {}
    groups: dict[str, int | None] = {}
    policy: dict[str, FailurePolicy] = {}
    uses: dict[str, tuple[str, ...]] = {}

    def rank_of(group: int | None) -> int:
        return 99 if group is None else group

    for index, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:index]), max_size=3)) if index else []
        after[name] = tuple(dict.fromkeys(deps))
        group = draw(st.sampled_from([1, 2, 3, None]))
        if barrier and deps:
            latest = max((groups[dep] for dep in deps), key=rank_of)
            if rank_of(latest) > rank_of(group):
                group = latest
        groups[name] = group
        policy[name] = draw(
            st.sampled_from(
                [FailurePolicy.SKIP_DEPENDENTS] * 3
                + [FailurePolicy.CONTINUE] * 2
                + [FailurePolicy.ABORT]
            )
        )
        uses[name] = tuple(draw(st.lists(st.sampled_from(RESOURCES), max_size=2, unique=True)))
    order = StartOrder(max_parallel=max_parallel, groups="barrier" if barrier else "priority")
    for name in draw(st.permutations(names)):
        order.add(
            name,
            after=after[name],
            group=groups[name],
            on_failure=policy[name],
            resources=uses[name],
        )
    for resource, limit in capacity.items():
        order.limit(resource, limit)
    numbered = sorted({g for g in groups.values() if g is not None})
    dense = {g: position for position, g in enumerate(numbered)}
    rank = {n: len(numbered) if g is None else dense[g] for n, g in groups.items()}
    spec = Spec(order, after, rank, policy, uses, capacity, max_parallel, barrier)
    spec.dependents = {name: [] for name in names}
    for name, deps in after.items():
        for dep in deps:
            spec.dependents[dep].append(name)
    return spec


def dependency_settled(spec: Spec, seq: Sequencer, dep: str) -> bool:
    state = seq.state(dep)
    return state is VMState.READY or (
        state in FAILED_STATES and spec.policy[dep] is FailurePolicy.CONTINUE
    )


def check_started(spec: Spec, seq: Sequencer, started: list[str]) -> None:
    for name in started:
        assert seq.state(name) is VMState.STARTING
        for dep in spec.after[name]:
            assert dependency_settled(spec, seq, dep), f"{name} started before {dep} was ready"
        if spec.barrier:
            for other, rank in spec.rank.items():
                if rank < spec.rank[name]:
                    assert seq.state(other).final, f"{name} passed the barrier before {other}"


def check_limits(spec: Spec, seq: Sequencer) -> None:
    running = [name for name, state in seq.states.items() if state is VMState.STARTING]
    assert tuple(sorted(running, key=lambda n: int(n[2:]))) == tuple(
        sorted(seq.starting, key=lambda n: int(n[2:]))
    )
    if spec.max_parallel is not None:
        assert len(running) <= spec.max_parallel
    for resource, limit in spec.capacity.items():
        used = sum(resource in spec.uses[name] for name in running)
        assert used <= limit
        assert seq.in_use(resource) == used


def check_eager(spec: Spec, seq: Sequencer, stopped: bool) -> None:
    """After take_startable, no pending VM could have started."""
    states = seq.states
    pending = [name for name, state in states.items() if state is VMState.PENDING]
    if stopped:
        assert not pending
        return
    running = [name for name, state in states.items() if state is VMState.STARTING]
    if spec.max_parallel is not None and len(running) >= spec.max_parallel:
        return
    for name in pending:
        if not all(dependency_settled(spec, seq, dep) for dep in spec.after[name]):
            continue
        if spec.barrier and any(
            not states[other].final for other, r in spec.rank.items() if r < spec.rank[name]
        ):
            continue
        if all(seq.in_use(r) < spec.capacity[r] for r in spec.uses[name]):
            pytest.fail(f"{name} could start but was left waiting")
    if not running:
        assert not pending, "nothing runs, yet VMs are still pending"


def check_policies(spec: Spec, seq: Sequencer, cancelled_at_all: bool) -> None:
    states = seq.states
    for name, state in states.items():
        blockers = [
            dep
            for dep in spec.after[name]
            if states[dep] is VMState.SKIPPED
            or (states[dep] in FAILED_STATES and spec.policy[dep] is FailurePolicy.SKIP_DEPENDENTS)
        ]
        if state is VMState.SKIPPED:
            assert blockers, f"{name} was skipped though nothing it needs failed"
            assert (seq.reason(name) or "").startswith("skipped: depends on ")
        elif blockers:
            # Only a cancel (or an abort) that came first can have settled it otherwise.
            assert state is VMState.CANCELLED, f"{name} needs failed {blockers} but is {state}"
            assert cancelled_at_all


@settings(max_examples=150)
@given(spec=orders(), data=st.data())
def test_random_runs_keep_every_promise(spec: Spec, data: st.DataObject) -> None:
    seq = Sequencer(spec.order)
    stopped = False
    everything_started: list[str] = []
    for _ in range(200):
        started = seq.take_startable()
        if stopped:
            assert started == []
        everything_started.extend(started)
        check_started(spec, seq, started)
        check_limits(spec, seq)
        check_eager(spec, seq, stopped)
        check_policies(spec, seq, stopped)
        if seq.finished:
            break
        running = list(seq.starting)
        assert running
        action = data.draw(
            st.sampled_from(["ready"] * 6 + ["failed"] * 2 + ["timed_out", "cancel", "illegal"])
        )
        name = data.draw(st.sampled_from(running))
        if action == "ready":
            seq.mark_ready(name)
        elif action == "failed":
            seq.mark_failed(name, "test failure")
            if spec.policy[name] is FailurePolicy.ABORT:
                stopped = True
        elif action == "timed_out":
            seq.mark_timed_out(name)
            if spec.policy[name] is FailurePolicy.ABORT:
                stopped = True
        elif action == "cancel":
            seq.cancel()
            stopped = True
        else:
            victim = data.draw(st.sampled_from(list(spec.after)))
            before = seq.states
            if before[victim] is not VMState.STARTING:
                with pytest.raises(ConflictError, match=victim):
                    seq.mark_ready(victim)
                assert seq.states == before
    assert seq.finished
    assert all(state.final for state in seq.states.values())
    assert len(everything_started) == len(set(everything_started))
    for name, state in seq.states.items():
        if state in (VMState.SKIPPED, VMState.CANCELLED, VMState.FAILED, VMState.TIMED_OUT):
            assert seq.reason(name)
    # Every dependent that started despite a failed "continue" dependency was warned about.
    warned = {warning.item for warning in seq.warnings}
    for name in everything_started:
        if any(seq.state(dep) in FAILED_STATES for dep in spec.after[name]):
            assert f"VM {name!r}" in warned


@settings(max_examples=60)
@given(spec=orders(), data=st.data())
def test_skip_dependents_skips_exactly_the_transitive_dependents(
    spec: Spec, data: st.DataObject
) -> None:
    """One VM fails under skip_dependents, everything else becomes ready."""
    seq = Sequencer(spec.order)
    victim = data.draw(st.sampled_from(list(spec.after)))
    if spec.policy[victim] is not FailurePolicy.SKIP_DEPENDENTS:
        # Make the property about skip_dependents whatever the draw gave.
        order = StartOrder(max_parallel=spec.max_parallel, groups=spec.order.groups)
        for entry in spec.order:
            on_failure = FailurePolicy.SKIP_DEPENDENTS if entry.name == victim else entry.on_failure
            order.add(
                entry.name,
                after=entry.after,
                group=entry.group,
                on_failure=on_failure,
                resources=entry.resources,
            )
        for resource, limit in spec.capacity.items():
            order.limit(resource, limit)
        seq = Sequencer(order)
    while not seq.finished:
        for name in seq.take_startable():
            if name == victim:
                seq.mark_failed(name)
            else:
                seq.mark_ready(name)
    transitive: set[str] = set()
    frontier = [victim]
    while frontier:
        for waiter in spec.dependents[frontier.pop()]:
            if waiter not in transitive:
                transitive.add(waiter)
                frontier.append(waiter)
    skipped = {name for name, state in seq.states.items() if state is VMState.SKIPPED}
    assert skipped == transitive
    assert seq.state(victim) is VMState.FAILED
    others = set(spec.after) - transitive - {victim}
    assert all(seq.state(name) is VMState.READY for name in others)


def test_group_mode_default_is_priority() -> None:
    assert StartOrder().groups is GroupMode.PRIORITY


@settings(max_examples=100)
@given(spec=orders(), workers=st.one_of(st.none(), st.integers(1, 4)), data=st.data())
def test_positions_and_names_drive_the_same_machine(
    spec: Spec, workers: int | None, data: st.DataObject
) -> None:
    """A walk by position (the simulator's) and one by name (the runner's) decide alike, and the
    driver's workers are a limit like the order's max_parallel."""
    compiled = spec.order.compile(workers=workers)
    by_position = Sequencer(compiled)
    by_name = Sequencer(spec.order, workers=workers)
    names = compiled.names
    limits = [limit for limit in (spec.max_parallel, workers) if limit is not None]
    assert compiled.max_parallel == (min(limits) if limits else None)
    for _ in range(200):
        positions = by_position.take_startable_positions()
        assert [names[p] for p in positions] == by_name.take_startable()
        assert by_position.states == by_name.states
        assert [by_position.state_at(p) for p in range(len(names))] == list(by_name.states.values())
        if compiled.max_parallel is not None:
            assert len(by_name.starting) <= compiled.max_parallel
        if by_name.finished:
            break
        running = [names.index(name) for name in by_name.starting]
        position = data.draw(st.sampled_from(running))
        action = data.draw(st.sampled_from(["ready"] * 4 + ["failed", "timed_out", "illegal"]))
        if action == "ready":
            by_position.mark_ready_at(position)
            by_name.mark_ready(names[position])
        elif action == "failed":
            by_position.mark_failed_at(position, "test failure")
            by_name.mark_failed(names[position], "test failure")
        elif action == "timed_out":
            by_position.mark_timed_out_at(position)
            by_name.mark_timed_out(names[position])
        else:
            victim = data.draw(st.integers(0, len(names) - 1))
            before = by_position.states
            if before[names[victim]] is not VMState.STARTING:
                with pytest.raises(ConflictError, match=names[victim]):
                    by_position.mark_ready_at(victim)
                assert by_position.states == before
    assert by_position.finished and by_name.finished
    assert by_position.warnings == by_name.warnings
    for name in names:
        assert by_position.reason(name) == by_name.reason(name)
