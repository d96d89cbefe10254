"""What Jupyter shows: run timelines and simulations as inline SVG Gantt charts, and every result
type's ``_repr_html_``, well-formed, escaped and without JavaScript."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover import _svg
from vmfailover.cli.demo import lab_plan
from vmfailover.engine.results import Outcome, RunReport, RunResult, StepRecord, VMResult
from vmfailover.engine.runner import Runner
from vmfailover.engine.simulate import LogNormal, simulate
from vmfailover.errors import Finding, Findings, Severity
from vmfailover.model import FailoverKind, RecoveryPoint
from vmfailover.policy.reip import ReIPRule, ReIPRules
from vmfailover.policy.retention import RetentionPolicy
from vmfailover.testing import lab

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def svgs_of(html: str) -> list[ElementTree.Element]:
    """Every ``<svg>`` element of an HTML block, parsed (so: well-formed, every text escaped)."""
    found = []
    start = html.find("<svg")
    while start != -1:
        end = html.index("</svg>", start) + len("</svg>")
        found.append(ElementTree.fromstring(html[start:end]))
        start = html.find("<svg", end)
    return found


def texts(svg: ElementTree.Element) -> list[str]:
    return [element.text or "" for element in svg.iter(f"{SVG}text")]


def bars(svg: ElementTree.Element) -> list[ElementTree.Element]:
    """The chart's segments: rectangles with a tooltip (legend swatches have none)."""
    return [rect for rect in svg.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]


# --- the leaf renderer ---------------------------------------------------------------------------


def test_rows_bars_markers_and_legend_are_drawn_where_the_times_say() -> None:
    rows = [
        _svg.Row("a", (_svg.Bar(0, 30, "#111", "a first"), _svg.Bar(30, 60, "#222", "a second"))),
        _svg.Row("b", (_svg.Bar(60, 60, "#333", "b instant"),), note="failed", note_colour="#c00"),
    ]
    svg = ElementTree.fromstring(
        _svg.svg_gantt(
            rows,
            markers=[_svg.Marker(120, "target", dashed=True)],
            legend=[("first", "#111")],
            title="T",
        )
    )
    drawn = bars(svg)
    assert [rect.find(f"{SVG}title").text for rect in drawn] == ["a first", "a second", "b instant"]
    x = [float(rect.get("x", "")) for rect in drawn]
    width = [float(rect.get("width", "")) for rect in drawn]
    assert x[0] + width[0] == pytest.approx(x[1])  # back to back
    assert width[1] == pytest.approx(width[0])  # equal durations, equal lengths
    assert width[2] == 1.0  # a step that took no time still shows
    assert x[2] == pytest.approx(x[1] + width[1])
    # The axis reaches the target beyond every bar: 0 to 120 s, so 60 s is half way.
    assert x[1] - x[0] == pytest.approx(width[0]) and width[0] == pytest.approx(150)
    assert {"a", "b", "failed", "target", "first", "T"} <= set(texts(svg))
    dashed = [line for line in svg.iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 1


@pytest.mark.parametrize(
    ("span", "step"),
    [
        (1, 0.2),
        (8, 1),
        (45, 10),
        (100, 15),
        (400, 60),
        (900, 120),
        (7200, 900),
        (86400 * 30, 864000),
    ],
)
def test_ticks_fall_on_round_durations(span: float, step: float) -> None:
    assert _svg._tick_step(span) == step


@given(
    st.lists(
        st.tuples(
            st.text(max_size=40),
            st.floats(min_value=0, max_value=1e7),
            st.floats(min_value=0, max_value=1e7),
        ),
        max_size=8,
    ),
    st.text(max_size=30),
)
def test_any_labels_and_times_make_well_formed_svg(
    rows: list[tuple[str, float, float]], label: str
) -> None:
    drawn = [
        _svg.Row(name, (_svg.Bar(min(a, b), max(a, b), "#000", f"tip {name}"),), note=name)
        for name, a, b in rows
    ]
    svg = _svg.svg_gantt(drawn, markers=[_svg.Marker(10, label)], legend=[(label, "#fff")])
    root = ElementTree.fromstring(svg)
    assert len(bars(root)) == len(rows)
    assert "<script" not in svg


def test_times_that_are_not_finite_are_left_out_not_drawn() -> None:
    rows = [_svg.Row("a", (_svg.Bar(0, float("inf"), "#000", "x"), _svg.Bar(0, 5, "#000", "y")))]
    svg = ElementTree.fromstring(_svg.svg_gantt(rows, markers=[_svg.Marker(float("nan"), "m")]))
    assert [rect.find(f"{SVG}title").text for rect in bars(svg)] == ["y"]


# --- a run's report ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_run_report() -> RunReport:
    backend = lab()
    runner = Runner(backend, max_parallel=8, poll_interval=2.0)
    run = runner.start(lab_plan(), kind="test")
    run.wait(timeout=300)
    return runner.cleanup(run)


def test_a_run_report_shows_its_timeline_step_by_step(test_run_report: RunReport) -> None:
    report = test_run_report
    html = report._repr_html_()
    assert "<script" not in html and "<table" in html
    (svg,) = svgs_of(html)
    labels = texts(svg)
    assert [vm.vm for vm in report.vms] == [label for label in labels if label in lab_plan().vms]
    assert "RTO target 15m00s" in labels
    assert any(label.startswith("RTO ") and "target" not in label for label in labels)
    # One segment per recorded step, each named in its tooltip.
    segments = bars(svg)
    assert len(segments) == sum(len(vm.steps) for vm in report.vms)
    tips = [rect.find(f"{SVG}title").text or "" for rect in segments]
    for step in ("create test copy", "connect nic", "power on", "wait ready"):
        assert any(f": {step} +" in tip for tip in tips), step
        assert step in labels  # the legend names the colour

    # db01 waits for dc01: its first step starts where dc01's last one ended.
    def first_x(vm: str) -> float:
        return min(
            float(r.get("x", ""))
            for r, t in zip(segments, tips, strict=True)
            if t.startswith(vm + ":")
        )

    def last_x(vm: str) -> float:
        return max(
            float(r.get("x", "")) + float(r.get("width", ""))
            for r, t in zip(segments, tips, strict=True)
            if t.startswith(vm + ":")
        )

    assert first_x("db01") >= last_x("dc01") - 1.0
    assert labels.count("ready") == 12


def hand_made_report(**overrides: object) -> RunReport:
    def steps(*spans: tuple[str, int, int, str | None]) -> tuple[StepRecord, ...]:
        return tuple(
            StepRecord(name, T0 + timedelta(seconds=a), T0 + timedelta(seconds=b), error)
            for name, a, b, error in spans
        )

    vms = (
        VMResult(
            "db<1>",
            "vm-1",
            "vm-1r",
            Outcome.READY,
            started_at=T0,
            ready_at=T0 + timedelta(seconds=90),
            steps=steps(
                ("revert", 0, 10, None), ("power_on", 10, 12, None), ("wait_ready", 12, 90, None)
            ),
        ),
        VMResult(
            "app01",
            "vm-2",
            "vm-2r",
            Outcome.TIMED_OUT,
            started_at=T0 + timedelta(seconds=90),
            reason="not ready within 60 s",
            steps=steps(("revert", 90, 95, None), ("wait_ready", 95, 155, "not ready within 60 s")),
        ),
        VMResult("web01", "vm-3", "vm-3r", Outcome.SKIPPED, reason="app01 timed out"),
    )
    settings: dict[str, object] = {
        "run_id": "run-1",
        "kind": FailoverKind.REGULAR,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=155),
        "vms": vms,
        "result": RunResult.PARTIAL,
        "rto_target_seconds": 60.0,
        "warnings": ("<b>careful</b>",),
    }
    settings.update(overrides)
    return RunReport(**settings)  # type: ignore[arg-type]


def test_failed_steps_outcomes_and_a_missed_target_stand_out() -> None:
    report = hand_made_report()
    html = report._repr_html_()
    (svg,) = svgs_of(html)
    labels = texts(svg)
    assert "db&lt;1&gt;" in html and "&lt;b&gt;careful&lt;/b&gt;" in html
    assert "timed out: not ready within 60 s" in labels
    assert "skipped: app01 timed out" in labels
    assert "failed step" in labels
    fills = {
        (rect.find(f"{SVG}title").text or "").split(":")[1].strip().split(" +")[0]: rect.get("fill")
        for rect in bars(svg)
        if (rect.find(f"{SVG}title").text or "").startswith("app01")
    }
    assert fills["wait ready"] == "#d68910"  # timed out: orange, not the green of waiting
    target = next(line for line in svg.iter(f"{SVG}line") if line.get("stroke-dasharray"))
    assert target.get("stroke") == "#c0392b"  # missed
    assert "RTO target 1m00s" in labels and "RTO 1m30s" in labels


def test_a_met_target_is_green_and_no_target_draws_no_target_line() -> None:
    met = svgs_of(hand_made_report(rto_target_seconds=600.0).svg_timeline())[0]
    lines = [line for line in met.iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert [line.get("stroke") for line in lines] == ["#c0392b"]  # not all ready: missed
    without = svgs_of(hand_made_report(rto_target_seconds=None).svg_timeline())[0]
    assert not [line for line in without.iter(f"{SVG}line") if line.get("stroke-dasharray")]


def test_big_runs_show_their_first_rows_and_say_how_many_more() -> None:
    report = hand_made_report()
    html = report.svg_timeline(rows=1)
    assert "... and 2 more VMs" in html
    assert len(bars(svgs_of(html)[0])) == 3


# --- the other results ---------------------------------------------------------------------------


def test_a_simulation_draws_its_rto_and_lower_bound() -> None:
    order = lab_plan().start_order()
    result = simulate(order, {vm: LogNormal(40, 0.5) for vm in order.vms}, runs=50, seed=3)
    (svg,) = svgs_of(result._repr_html_())
    labels = texts(svg)
    assert f"RTO {_duration(result.rto)}" in labels
    assert len(bars(svg)) == len(order.vms)
    if result.lower_bound < result.rto:
        assert f"lower bound {_duration(result.lower_bound)}" in labels


def _duration(seconds: float) -> str:
    from vmfailover._render import format_duration

    return format_duration(seconds)


def test_every_result_type_renders_html_without_javascript() -> None:
    backend = lab()
    backend.fail_site("site-a")
    plan = lab_plan()
    inventory = backend.inventory()
    points = {r.id: backend.recovery_points(r.id) for r in inventory.replicas}
    compiled = plan.compile(inventory, "regular", points=points, now=backend.clock.now())
    retention = RetentionPolicy(last=2).apply(
        [RecoveryPoint(f"rp-{i}", "r", T0 - timedelta(hours=i)) for i in range(4)], now=T0
    )
    reip = ReIPRules([ReIPRule("192.168.20.*", "10.20.0.*")]).plan(inventory.vms_at("site-a"))
    findings = Findings([Finding("VM 'x'", "<missing>", Severity.WARNING)])
    shown = {
        "plan": plan._repr_html_(),
        "compiled plan": compiled._repr_html_(),
        "findings": findings._repr_html_(),
        "retention": retention._repr_html_(),
        "re-IP plan": reip._repr_html_(),
    }
    for name, html in shown.items():
        assert "<table" in html, name
        assert "<script" not in html, name
        svgs_of(html)  # any SVG in it parses
    assert "&lt;missing&gt;" in shown["findings"]
    assert len(svgs_of(shown["plan"])) == 1  # the start-order graph
