"""Predict the recovery time of a start order before anything is touched.

:func:`simulate` drives the very :class:`~vmfailover.policy.sequencer.Sequencer` the runner drives,
but in virtual time: an event heap stands in for the clock, and each VM's start-to-ready time comes
from a number or a distribution. With distributions and ``runs=N`` it is a Monte Carlo estimate of
the RTO (p50, p90, p99). The result carries two lower bounds no schedule can beat, the longest
dependency path (``critical_path_bound``) and the work divided by the parallelism (``work_bound``),
so a plan's author sees both the prediction and how much room is left.

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeAlias, TypeGuard, runtime_checkable

import attrs

from vmfailover import _svg
from vmfailover._render import format_duration, in_words, text_table
from vmfailover.clock import MAX_SECONDS
from vmfailover.errors import Finding, ValidationError
from vmfailover.model import as_count, is_collection, is_finite_number
from vmfailover.policy.sequencer import CompiledOrder, Event, Sequencer, StartOrder, VMState

__all__ = [
    "Distribution",
    "Fixed",
    "LogNormal",
    "SimulationResult",
    "Uniform",
    "simulate",
]


@runtime_checkable
class Distribution(Protocol):
    """A start-to-ready time distribution: ``sample`` draws seconds, ``mean`` is the expectation."""

    def sample(self, rng: random.Random) -> float: ...

    @property
    def mean(self) -> float: ...


def _is_seconds(value: object, *, allow_zero: bool = True) -> TypeGuard[int | float]:
    """A finite number of seconds, at most a century (no sum of them overflows)."""
    return (
        is_finite_number(value)
        and (value >= 0 if allow_zero else value > 0)
        and value <= MAX_SECONDS
    )


def _seconds(what: str, value: object, *, allow_zero: bool = True) -> float:
    if not _is_seconds(value, allow_zero=allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValidationError.of(
            what, f"must be a finite number of seconds {bound} and at most a century, got {value!r}"
        )
    return float(value)


_MAX_SIGMA = 5.0  # the p99 is then 10**5 times the median: spread enough for any boot time


def _sigma_field(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not is_finite_number(value) or not 0 <= value <= _MAX_SIGMA:
        raise ValidationError.of(
            f"{type(instance).__name__} sigma",
            f"must be a number from 0 to {_MAX_SIGMA:g}, got {value!r}",
            "0.5 gives a long tail; 1 a very long one",
        )


def _seconds_field(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    _seconds(f"{type(instance).__name__} {attribute.name}", value)


def _positive_seconds_field(
    instance: object, attribute: attrs.Attribute[float], value: object
) -> None:
    _seconds(f"{type(instance).__name__} {attribute.name}", value, allow_zero=False)


@attrs.frozen
class Fixed:
    """Always ``value`` seconds."""

    value: float = attrs.field(validator=_seconds_field)

    def sample(self, rng: random.Random) -> float:
        return self.value

    @property
    def mean(self) -> float:
        return self.value


@attrs.frozen
class Uniform:
    """Uniformly between ``low`` and ``high`` seconds."""

    low: float = attrs.field(validator=_seconds_field)
    high: float = attrs.field(validator=_seconds_field)

    def __attrs_post_init__(self) -> None:
        if self.high < self.low:
            raise ValidationError.of(
                f"Uniform({self.low:g}, {self.high:g})", "high must not be below low"
            )

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


@attrs.frozen
class LogNormal:
    """Log-normal around ``median`` seconds; ``sigma`` is the spread of the log (0.5: a long tail).

    Boot and service start times are skewed like this: usually near the median, now and then
    several times longer.
    """

    median: float = attrs.field(validator=_positive_seconds_field)
    sigma: float = attrs.field(validator=_sigma_field)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median), self.sigma)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


MAX_RUNS = 100_000
"""The most Monte Carlo runs one :func:`simulate` call makes: its time grows with runs x VMs."""

#: What a VM's duration may be given as.
DurationSpec: TypeAlias = float | int | Distribution


_STATE_COLOURS = {
    VMState.READY: "#4c9a4c",
    VMState.FAILED: "#c0392b",
    VMState.TIMED_OUT: "#d68910",
}


@attrs.frozen
class SimulationResult:
    """The outcome of :func:`simulate`.

    ``rto``, ``starts``, ``ends``, ``states``, ``critical_path`` and the bounds describe one run:
    the only run, or with ``runs > 1`` the median run (the run whose RTO is the lower median).
    ``rto`` is when the last VM became ready, failed or timed out (0 for an empty order).
    ``rtos`` holds every run's RTO in run order, and ``p50``/``p90``/``p99`` summarise them.
    ``ends`` is when each started VM became ready, failed or timed out; ``ready`` keeps only the
    ready ones. ``critical_path`` is the longest dependency chain under that run's durations, and
    ``critical_path_bound`` its length; ``work_bound`` is total work divided by ``max_parallel``
    (or, if larger, one resource's work divided by its capacity; 0 when nothing limits).
    """

    rto: float
    starts: Mapping[str, float]
    ends: Mapping[str, float]
    states: Mapping[str, VMState]
    critical_path: tuple[str, ...]
    critical_path_bound: float
    work_bound: float
    rtos: tuple[float, ...]
    max_parallel: int | None = None
    warnings: tuple[Finding, ...] = ()

    @property
    def ready(self) -> dict[str, float]:
        """VM -> the time it became ready, for the VMs that did."""
        return {
            name: time for name, time in self.ends.items() if self.states[name] is VMState.READY
        }

    @property
    def runs(self) -> int:
        return len(self.rtos)

    @property
    def lower_bound(self) -> float:
        """No schedule can finish sooner: the larger of the two bounds."""
        return max(self.critical_path_bound, self.work_bound)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the RTO over all runs; ``q`` from 0 to 100 in steps of 0.1.

        Linear interpolation between the closest runs (``statistics.quantiles`` with
        ``method="inclusive"``, numpy's default), so ``percentile(0)`` is the fastest run and
        ``percentile(100)`` the slowest.
        """
        tenths = round(q * 10) if _is_number(q) and 0 <= q <= 100 else -1
        if tenths < 0 or not math.isclose(q * 10, tenths, abs_tol=1e-9):
            raise ValidationError.of(
                "percentile", f"q must be a number from 0 to 100 in steps of 0.1, got {q!r}"
            )
        if tenths == 0 or len(self.rtos) == 1:
            return min(self.rtos)
        if tenths == 1000:
            return max(self.rtos)
        import statistics  # here, not at the top: only percentiles need it (and its imports)

        parts, cut = (100, tenths // 10) if tenths % 10 == 0 else (1000, tenths)
        return statistics.quantiles(self.rtos, n=parts, method="inclusive")[cut - 1]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p90(self) -> float:
        return self.percentile(90)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def _summary(self) -> list[str]:
        lines = [
            f"Simulated RTO {format_duration(self.rto)} "
            f"(critical-path bound {format_duration(self.critical_path_bound)}, "
            f"work bound {format_duration(self.work_bound)})"
        ]
        if self.runs > 1:
            lines.append(
                f"Monte Carlo over {self.runs} runs: p50 {format_duration(self.p50)}, "
                f"p90 {format_duration(self.p90)}, p99 {format_duration(self.p99)}"
            )
        counts: dict[str, int] = {}
        for state in self.states.values():
            counts[in_words(state)] = counts.get(in_words(state), 0) + 1
        lines.append(", ".join(f"{count} {state}" for state, count in counts.items()))
        if self.critical_path:
            path = " -> ".join(self.critical_path[:8])
            if len(self.critical_path) > 8:
                path += f" -> ... ({len(self.critical_path)} VMs)"
            lines.append(f"Critical path: {path}")
        return lines

    def summary(self) -> str:
        """The RTO, its bounds, the Monte Carlo percentiles, outcomes and the critical path, one
        line each."""
        return "\n".join(self._summary())

    def table(self, rows: int = 40) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """The first ``rows`` VMs to start as text: headers and one row per VM (name, start,
        end, state), for other renderers."""
        return ("VM", "start", "end", "state"), [
            (name, format_duration(start), format_duration(end), in_words(state))
            for name, start, end, state in self._timeline_rows(rows)
        ]

    def _timeline_rows(self, limit: int) -> list[tuple[str, float, float, VMState]]:
        as_count(limit, "rows", 10_000_000)
        rows = sorted(
            ((name, start, self.ends.get(name, start)) for name, start in self.starts.items()),
            key=lambda row: (row[1], row[2], row[0]),
        )
        return [(name, start, end, self.states[name]) for name, start, end in rows[:limit]]

    def __str__(self) -> str:
        return self.text(rows=40)

    def text(self, rows: int = 40, width: int = 50) -> str:
        """The summary and a text Gantt of the first ``rows`` VMs to start."""
        as_count(width, "text width", 1_000)
        lines = self._summary()
        span = self.rto or 1.0
        table = []
        for name, start, end, state in self._timeline_rows(rows):
            first = min(width - 1, int(start / span * width))
            last = max(first + 1, min(width, math.ceil(end / span * width)))
            mark = "#" if state is VMState.READY else "x"
            bar = " " * first + mark * (last - first)
            table.append(
                (
                    name,
                    format_duration(start),
                    format_duration(end),
                    in_words(state),
                    f"|{bar.ljust(width)}|",
                )
            )
        lines.append(text_table(("VM", "start", "end", "state", "timeline"), table))
        hidden = len(self.starts) - len(table)
        if hidden > 0:
            lines.append(f"... and {hidden} more VMs")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.svg_gantt()

    def svg_gantt(self, rows: int = 200) -> str:
        """An HTML block with the summary and an inline SVG Gantt chart (first ``rows`` VMs to
        start), with the RTO and the lower bound no schedule can beat as vertical lines."""
        timeline = self._timeline_rows(rows)
        chart_rows = [
            _svg.Row(
                name,
                (
                    _svg.Bar(
                        start,
                        end,
                        _STATE_COLOURS.get(state, "#888"),
                        f"{name}: {format_duration(start)} - {format_duration(end)} "
                        f"({in_words(state)})",
                    ),
                ),
                note="" if state is VMState.READY else in_words(state),
                note_colour=_STATE_COLOURS.get(state, "#888"),
            )
            for name, start, end, state in timeline
        ]
        markers = [_svg.Marker(self.rto, f"RTO {format_duration(self.rto)}")]
        if 0 < self.lower_bound < self.rto:
            markers.append(
                _svg.Marker(
                    self.lower_bound,
                    f"lower bound {format_duration(self.lower_bound)}",
                    colour="#6b7280",
                    dashed=True,
                )
            )
        present = list(dict.fromkeys(state for *_, state in timeline))
        chart = _svg.svg_gantt(
            chart_rows,
            markers=markers,
            legend=[(in_words(state), _STATE_COLOURS.get(state, "#888")) for state in present],
            tick_label=format_duration,
        )
        summary = "".join(f"<div>{_svg.escape(line)}</div>" for line in self._summary())
        hidden = len(self.starts) - len(timeline)
        more = f"<div>... and {hidden} more VMs</div>" if hidden > 0 else ""
        return f'<div class="vmfailover">{summary}{chart}{more}</div>'


def _is_number(value: object) -> bool:
    return is_finite_number(value)


def _is_distribution(spec: object) -> bool:
    # Duck-typed on purpose: isinstance() against a runtime-checkable Protocol costs
    # microseconds per call, which 100,000 VMs notice.
    return callable(getattr(spec, "sample", None)) and hasattr(spec, "mean")


def _durations(
    names: tuple[str, ...], index: Mapping[str, int], durations: Mapping[str, DurationSpec]
) -> list[float | Distribution]:
    """Per VM (by position) either fixed seconds or a distribution; every VM must have one."""
    if not isinstance(durations, Mapping):
        raise ValidationError.of(
            "durations", f"must map each VM to seconds or a distribution, got {durations!r}"
        )
    findings: list[Finding] = []
    result: list[float | Distribution | None] = [None] * len(names)
    for name, spec in durations.items():
        position = index.get(name) if isinstance(name, str) else None
        if position is None:
            findings.append(Finding(f"duration for {name!r}", "names a VM not in the start order"))
        elif type(spec) is float or type(spec) is int:
            if _is_seconds(spec):
                result[position] = float(spec)
            else:
                findings.append(
                    Finding(
                        f"duration for {name!r}",
                        f"must be seconds >= 0 and at most a century, got {spec!r}",
                    )
                )
        elif _is_distribution(spec):
            result[position] = spec
        else:
            findings.append(
                Finding(
                    f"duration for {name!r}",
                    f"must be seconds >= 0 or a distribution, got {spec!r}",
                    hint="use a number, Fixed(x), Uniform(low, high) or LogNormal(median, sigma)",
                )
            )
    missing = [name for name, spec in zip(names, result, strict=True) if spec is None]
    missing = [name for name in missing if name not in durations]
    if missing:
        shown = ", ".join(repr(name) for name in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        findings.append(
            Finding(
                f"durations for VM {shown}{more}",
                "are missing",
                hint="give every VM of the order a duration",
            )
        )
    if findings:
        raise ValidationError(findings)
    return [spec for spec in result if spec is not None]


def _mean(spec: float | Distribution) -> float:
    return spec if isinstance(spec, float) else float(spec.mean)


def _sample(specs: list[float | Distribution], rng: random.Random) -> list[float]:
    return [spec if isinstance(spec, float) else spec.sample(rng) for spec in specs]


def _failure_chances(
    index: Mapping[str, int], failures: Mapping[str, float] | Iterable[str] | None
) -> list[float]:
    chance = [0.0] * len(index)
    if failures is None:
        return chance
    pairs: Iterable[tuple[object, object]]
    if isinstance(failures, Mapping):
        pairs = failures.items()
    elif isinstance(failures, str):
        pairs = [(failures, 1.0)]
    elif not is_collection(failures):
        raise ValidationError.of(
            "failures", f"must list VM names or map them to probabilities, got {failures!r}"
        )
    else:
        pairs = [(name, 1.0) for name in failures]
    findings: list[Finding] = []
    for name, probability in pairs:
        position = index.get(name) if isinstance(name, str) else None
        if position is None:
            findings.append(Finding(f"failure for {name!r}", "names a VM not in the start order"))
        elif (
            isinstance(probability, bool)
            or not isinstance(probability, int | float)
            or not 0 <= probability <= 1
        ):
            findings.append(
                Finding(
                    f"failure for {name!r}",
                    f"must be a probability between 0 and 1, got {probability!r}",
                )
            )
        else:
            chance[position] = float(probability)
    if findings:
        raise ValidationError(findings)
    return chance


@attrs.frozen
class _Run:
    rto: float
    start: list[float]
    end: list[float]
    states: dict[str, VMState]
    duration: list[float]
    warnings: list[Finding]


def _one_run(compiled: CompiledOrder, durations: list[float], failing: list[bool]) -> _Run:
    sequencer = Sequencer(compiled)
    count = len(compiled.names)
    start = [math.nan] * count
    end = [math.nan] * count
    timeout = compiled.timeout
    events: list[tuple[float, int, Event]] = []
    push = heapq.heappush
    pop = heapq.heappop
    now = 0.0

    def launch() -> None:
        for position in sequencer.take_startable_positions():
            start[position] = now
            limit = timeout[position]
            duration = durations[position]
            if limit is not None and duration > limit:
                push(events, (now + limit, position, Event.TIME_OUT))
            elif failing[position]:
                push(events, (now + duration, position, Event.FAIL))
            else:
                push(events, (now + duration, position, Event.READY))

    launch()
    while events:
        now = events[0][0]
        # Everything that happens at the same instant is told before asking what may start.
        while events and events[0][0] == now:
            _, position, event = pop(events)
            end[position] = now
            if event is Event.READY:
                sequencer.mark_ready_at(position)
            elif event is Event.FAIL:
                sequencer.mark_failed_at(position, "simulated failure")
            else:
                sequencer.mark_timed_out_at(position)
        launch()
    return _Run(
        rto=now,
        start=start,
        end=end,
        states=sequencer.states,
        duration=durations,
        warnings=sequencer.warnings,
    )


def _bounds(compiled: CompiledOrder, run: _Run) -> tuple[tuple[str, ...], float, float]:
    """The critical path and its length, and the work bound, under this run's durations."""
    effective = [
        duration if limit is None else min(duration, limit)
        for duration, limit in zip(run.duration, compiled.timeout, strict=True)
    ]
    finish = [0.0] * len(effective)
    best_dep = [-1] * len(effective)
    for position in compiled.topological:
        latest = 0.0
        for dep in compiled.deps[position]:
            if best_dep[position] == -1 or finish[dep] > latest:
                latest = finish[dep]
                best_dep[position] = dep
        finish[position] = latest + effective[position]
    path: list[str] = []
    if finish:
        position = max(range(len(finish)), key=finish.__getitem__)
        bound = finish[position]
        while position != -1:
            path.append(compiled.names[position])
            position = best_dep[position]
        path.reverse()
    else:
        bound = 0.0
    work = 0.0
    if compiled.max_parallel is not None:
        work = sum(effective) / compiled.max_parallel
    per_resource = [0.0] * len(compiled.capacity)
    for position, uses in enumerate(compiled.uses):
        for resource in uses:
            per_resource[resource] += effective[position]
    for resource, total in enumerate(per_resource):
        work = max(work, total / compiled.capacity[resource])
    return tuple(path), bound, work


def simulate(
    order: StartOrder,
    durations: Mapping[str, DurationSpec],
    *,
    seed: int | None = None,
    runs: int = 1,
    failures: Mapping[str, float] | Iterable[str] | None = None,
    workers: int | None = None,
) -> SimulationResult:
    """Run ``order`` in virtual time and predict its RTO.

    ``durations`` maps every VM to its start-to-ready time: seconds, or a :class:`Distribution`
    (:class:`Fixed`, :class:`Uniform`, :class:`LogNormal`, or your own) sampled once per run.
    A VM whose sampled time exceeds its ``timeout`` times out at the timeout. ``failures`` makes
    VMs fail after their duration: a list of names (always fail) or a mapping name -> probability;
    the VM's failure policy then applies as in a real run. ``runs`` > 1 repeats the run with fresh
    samples (Monte Carlo); ``seed`` makes it repeatable. The sequencer prioritises by the
    distributions' means, as a real run would know only expectations.

    ``workers`` is how many VMs the driver that will run the order can start at once; give the
    runner's (``workers=runner.max_parallel``) to predict what that runner will do. Like the
    runner, the simulation then never starts more than the smaller of ``workers`` and the order's
    ``max_parallel``, critical path first; the result's ``max_parallel`` is that limit.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_RUNS:
        raise ValidationError.of(
            "simulate runs",
            f"must be a whole number from 1 to {MAX_RUNS:,}, got {runs!r}",
            "a few thousand runs already give steady percentiles",
        )
    if not isinstance(order, StartOrder):
        raise ValidationError.of("simulate", f"needs a StartOrder, got {order!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValidationError.of("simulate seed", f"must be a whole number or None, got {seed!r}")
    names = order.vms
    index = {name: position for position, name in enumerate(names)}
    specs = _durations(names, index, durations)
    chances = _failure_chances(index, failures)
    # Compiled once for every run, prioritised by the expected (mean) durations.
    means = {name: _mean(spec) for name, spec in zip(names, specs, strict=True)}
    compiled = order.compile(weights=means, workers=workers)
    rng = random.Random(seed)
    results: list[_Run] = []
    for _ in range(runs):
        sampled = _sample(specs, rng)
        for position, value in enumerate(sampled):
            if not _is_seconds(value):
                raise ValidationError.of(
                    f"duration for {compiled.names[position]!r}",
                    f"the distribution drew {value!r}; durations must be finite, >= 0 and at "
                    "most a century",
                )
        failing = [chance > 0 and rng.random() < chance for chance in chances]
        results.append(_one_run(compiled, sampled, failing))
    rtos = tuple(run.rto for run in results)
    median_rank = sorted(range(runs), key=lambda index: (rtos[index], index))[(runs - 1) // 2]
    shown = results[median_rank]
    path, bound, work = _bounds(compiled, shown)
    names = compiled.names
    starts = {
        names[position]: time for position, time in enumerate(shown.start) if not math.isnan(time)
    }
    ends = {
        names[position]: time for position, time in enumerate(shown.end) if not math.isnan(time)
    }
    return SimulationResult(
        rto=shown.rto,
        starts=starts,
        ends=ends,
        states=shown.states,
        critical_path=path,
        critical_path_bound=bound,
        work_bound=work,
        rtos=rtos,
        max_parallel=compiled.max_parallel,
        warnings=tuple(shown.warnings),
    )
