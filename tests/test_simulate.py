"""simulate(): virtual time over the real sequencer, bounds, Monte Carlo, rendering, bad input."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmfailover.engine.simulate import Fixed, LogNormal, SimulationResult, Uniform, simulate
from vmfailover.errors import ValidationError
from vmfailover.policy.sequencer import StartOrder, VMState

RESOURCES = ("host:a", "host:b")


@st.composite
def scenarios(
    draw: st.DrawFn, limits: bool = True, barrier: bool = False
) -> tuple[StartOrder, dict[str, float]]:
    count = draw(st.integers(1, 25))
    names = [f"vm{index}" for index in range(count)]
    max_parallel = draw(st.one_of(st.none(), st.integers(1, 5))) if limits else None
    order = StartOrder(max_parallel=max_parallel, groups="barrier" if barrier else "priority")
    group = 1
    for index, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:index]), max_size=3)) if index else []
        if barrier and draw(st.booleans()):
            group += 1
        resources = (
            tuple(draw(st.lists(st.sampled_from(RESOURCES), max_size=2, unique=True)))
            if limits
            else ()
        )
        order.add(name, after=deps, group=group if barrier else None, resources=resources)
    for resource in RESOURCES:
        order.limit(resource, draw(st.integers(1, 3)))
    durations = {
        name: draw(st.floats(0, 1000, allow_nan=False, allow_infinity=False)) for name in names
    }
    return order, durations


@settings(max_examples=100)
@given(scenarios(limits=False))
def test_without_limits_the_rto_is_exactly_the_critical_path_bound(
    scenario: tuple[StartOrder, dict[str, float]],
) -> None:
    order, durations = scenario
    result = simulate(order, durations)
    assert result.rto == result.critical_path_bound
    assert result.work_bound == 0.0
    # The critical path is a real dependency chain whose durations add up to the bound.
    path = result.critical_path
    for earlier, later in itertools.pairwise(path):
        assert earlier in order.entry(later).after
    assert math.isclose(sum(durations[name] for name in path), result.critical_path_bound)


def check_schedule(order: StartOrder, result: SimulationResult) -> None:
    entries = {entry.name: entry for entry in order}
    assert set(result.starts) == set(entries)
    for name, entry in entries.items():
        assert result.states[name] is VMState.READY
        for dep in entry.after:
            assert result.starts[name] >= result.ends[dep], f"{name} started before {dep}"
    # Resource and slot use at every instant: sweep the starts and ends (ends first on ties).
    moments = sorted(
        [(t, 0, name) for name, t in result.ends.items()]
        + [(t, 1, name) for name, t in result.starts.items()]
    )
    running: set[str] = set()
    for _, kind, name in moments:
        if kind == 0:
            running.discard(name)
            continue
        if result.ends[name] == result.starts[name]:
            continue  # took no time: it never held anything at any instant
        running.add(name)
        if order.max_parallel is not None:
            assert len(running) <= order.max_parallel
        for resource, capacity in order.limits.items():
            assert sum(resource in entries[n].resources for n in running) <= capacity


@settings(max_examples=100)
@given(scenarios())
def test_limits_are_never_exceeded_and_bounds_hold(
    scenario: tuple[StartOrder, dict[str, float]],
) -> None:
    order, durations = scenario
    result = simulate(order, durations)
    check_schedule(order, result)
    assert result.rto >= result.lower_bound * (1 - 1e-9)
    assert result.rto == max(result.ends.values())


@settings(max_examples=60)
@given(scenarios(barrier=True))
def test_barrier_groups_hold_in_virtual_time(
    scenario: tuple[StartOrder, dict[str, float]],
) -> None:
    order, durations = scenario
    result = simulate(order, durations)
    check_schedule(order, result)
    group = {entry.name: entry.group or 0 for entry in order}
    for name in group:
        earlier = [other for other in group if group[other] < group[name]]
        for other in earlier:
            assert result.starts[name] >= result.ends[other]


def three_tier() -> StartOrder:
    order = StartOrder(max_parallel=2)
    order.add("dc01")
    order.add("db01", after="dc01", timeout=100)
    order.add("app01", after="db01")
    order.add("web01", after="app01")
    order.add("batch")
    return order


def test_a_small_schedule_by_hand() -> None:
    result = simulate(three_tier(), {"dc01": 10, "db01": 20.0, "app01": 5, "web01": 1, "batch": 15})
    assert result.starts == {"dc01": 0, "batch": 0, "db01": 10, "app01": 30, "web01": 35}
    assert result.rto == 36
    assert result.critical_path == ("dc01", "db01", "app01", "web01")
    assert result.critical_path_bound == 36
    assert result.work_bound == 51 / 2
    assert result.ready["web01"] == 36
    assert result.p50 == result.p99 == 36
    assert result.runs == 1


def test_timeouts_and_failures_apply_the_failure_policy() -> None:
    durations = {"dc01": 10, "db01": 500, "app01": 5, "web01": 1, "batch": 15}
    result = simulate(three_tier(), durations, failures=["batch"])
    assert result.states["db01"] is VMState.TIMED_OUT
    assert result.ends["db01"] == 110
    assert result.states["app01"] is VMState.SKIPPED
    assert "app01" not in result.starts
    assert result.states["batch"] is VMState.FAILED
    assert result.rto == 110
    assert "db01" not in result.ready


def test_failure_probabilities_are_seeded() -> None:
    durations = dict.fromkeys(three_tier().vms, 1.0)
    first = simulate(three_tier(), durations, failures={"dc01": 0.5}, seed=3, runs=30)
    again = simulate(three_tier(), durations, failures={"dc01": 0.5}, seed=3, runs=30)
    assert first.rtos == again.rtos
    assert len(set(first.rtos)) == 2  # some runs lose dc01 and everything behind it


def test_monte_carlo_is_repeatable_and_ordered() -> None:
    order = three_tier()
    durations = {
        "dc01": LogNormal(60, 0.5),
        "db01": Uniform(10, 90),
        "app01": Fixed(5),
        "web01": 3,
        "batch": LogNormal(30, 1.0),
    }
    result = simulate(order, durations, seed=7, runs=50)
    assert result.runs == 50
    assert result.rtos == simulate(order, durations, seed=7, runs=50).rtos
    assert result.p50 <= result.p90 <= result.p99 <= max(result.rtos)
    assert min(result.rtos) <= result.rto <= max(result.rtos)
    assert sorted(result.rtos)[24] == result.rto  # the shown run is the (lower) median run
    assert result.percentile(0) == min(result.rtos)
    with pytest.raises(ValidationError):
        result.percentile(101)


def test_distributions_sample_within_their_support() -> None:
    rng = random.Random(1)
    assert Fixed(4).sample(rng) == 4 == Fixed(4).mean
    assert all(2 <= Uniform(2, 3).sample(rng) <= 3 for _ in range(100))
    assert Uniform(2, 4).mean == 3
    samples = sorted(LogNormal(60, 0.5).sample(rng) for _ in range(2001))
    assert 50 < samples[1000] < 70
    assert LogNormal(60, 0.5).mean == pytest.approx(60 * math.exp(0.125))


@pytest.mark.parametrize(
    "build",
    [
        lambda: Fixed(-1),
        lambda: Fixed(float("nan")),
        lambda: Uniform(5, 1),
        lambda: Uniform(-1, 1),
        lambda: LogNormal(0, 1),
        lambda: LogNormal(10, -1),
        lambda: Fixed("10"),
    ],
)
def test_bad_distributions_are_refused(build: object) -> None:
    with pytest.raises(ValidationError):
        build()  # type: ignore[operator]


def test_bad_durations_name_the_vms() -> None:
    order = three_tier()
    with pytest.raises(ValidationError) as caught:
        simulate(order, {"dc01": -1, "db01": "slow", "nope": 1, "app01": 1})
    items = " ".join(finding.item for finding in caught.value.findings)
    for name in ["dc01", "db01", "nope", "web01", "batch"]:
        assert name in items
    with pytest.raises(ValidationError, match="durations"):
        simulate(order, [1, 2, 3])  # type: ignore[arg-type]


def test_bad_runs_and_failures_are_refused() -> None:
    durations = dict.fromkeys(three_tier().vms, 1.0)
    with pytest.raises(ValidationError, match="runs"):
        simulate(three_tier(), durations, runs=0)
    with pytest.raises(ValidationError, match="failure for 'dc01'"):
        simulate(three_tier(), durations, failures={"dc01": 1.5})
    with pytest.raises(ValidationError, match="failure for 'ghost'"):
        simulate(three_tier(), durations, failures=["ghost"])


def test_an_invalid_order_is_refused_before_simulating() -> None:
    order = StartOrder()
    order.add("a", after="b")
    order.add("b", after="a")
    with pytest.raises(ValidationError, match="'a' -> 'b' -> 'a'"):
        simulate(order, {"a": 1, "b": 1})


def test_renders_as_text_and_escaped_svg() -> None:
    order = StartOrder()
    order.add("<script>alert(1)</script>")
    order.add("web01", after="<script>alert(1)</script>")
    result = simulate(order, {"<script>alert(1)</script>": 30, "web01": 90}, runs=3, seed=1)
    text = str(result)
    assert "Simulated RTO 2m00s" in text
    assert "web01" in text
    assert "Monte Carlo over 3 runs" in text
    html = result._repr_html_()
    assert "<svg" in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_text_timeline_is_truncated_for_big_orders() -> None:
    order = StartOrder(max_parallel=10)
    for index in range(100):
        order.add(f"vm{index}")
    result = simulate(order, {f"vm{index}": 1 + index % 7 for index in range(100)})
    assert "... and 60 more VMs" in str(result)
    assert "... and 50 more VMs" in result.svg_gantt(rows=50)


def test_an_empty_order_takes_no_time() -> None:
    result = simulate(StartOrder(), {})
    assert result.rto == 0
    assert result.critical_path == ()
    assert "Simulated RTO 0.0s" in str(result)


def numpy_linear_percentile(values: list[float], q: float) -> float:
    """numpy.percentile's default (linear between closest ranks), written out as the reference."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@settings(max_examples=50)
@given(
    rtos=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40),
    tenths=st.integers(0, 1000),
)
def test_percentiles_interpolate_like_numpy(rtos: list[float], tenths: int) -> None:
    result = SimulationResult(
        rto=rtos[0],
        starts={},
        ends={},
        states={},
        critical_path=(),
        critical_path_bound=0.0,
        work_bound=0.0,
        rtos=tuple(rtos),
    )
    q = tenths / 10
    assert result.percentile(q) == pytest.approx(numpy_linear_percentile(rtos, q), abs=1e-6)


@pytest.mark.parametrize("q", [-1, 100.5, 99.95, float("nan"), True, "50"])
def test_percentiles_outside_0_to_100_or_finer_than_tenths_are_refused(q: object) -> None:
    result = simulate(three_tier(), dict.fromkeys(three_tier().vms, 1.0), runs=3)
    with pytest.raises(ValidationError, match="percentile"):
        result.percentile(q)  # type: ignore[arg-type]


def test_workers_limit_the_simulation_like_max_parallel() -> None:
    order = StartOrder()
    for index in range(6):
        order.add(f"vm{index}")
    durations = {f"vm{index}": 10.0 for index in range(6)}
    assert simulate(order, durations).rto == 10
    limited = simulate(order, durations, workers=2)
    assert limited.rto == 30
    assert limited.max_parallel == 2
    assert limited.work_bound == 30
    capped = StartOrder(max_parallel=3)
    for index in range(6):
        capped.add(f"vm{index}")
    assert simulate(capped, durations, workers=4).max_parallel == 3
    with pytest.raises(ValidationError, match="workers"):
        simulate(order, durations, workers=0)


def test_only_start_orders_are_simulated() -> None:
    with pytest.raises(ValidationError, match="StartOrder"):
        simulate(["a"], {"a": 1})  # type: ignore[arg-type]
