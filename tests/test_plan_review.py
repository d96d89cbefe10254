"""Reviewing plans: diff in words, the plan and its findings in Jupyter (HTML with an SVG graph)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from pathlib import Path

import attrs
from hypothesis import given

from plan_strategies import plans
from vmfailover import _graph
from vmfailover.errors import Finding, Findings, Severity
from vmfailover.plan import Approval, FailoverPlan, Step, diff
from vmfailover.policy.probes import TCPPort
from vmfailover.policy.reip import ReIPRule, ReIPRules
from vmfailover.testing import lab

ROOT = Path(__file__).resolve().parents[1]
LAB_PLAN = FailoverPlan.load(ROOT / "examples" / "lab-plan.toml")
SVG = "{http://www.w3.org/2000/svg}"


@given(plans())
def test_a_plan_has_no_changes_against_itself_or_its_file(plan: FailoverPlan) -> None:
    assert not plan.diff(plan)
    assert not plan.diff(FailoverPlan.load(plan.to_yaml()))
    assert "no changes" in str(plan.diff(plan))


@given(plans(), plans())
def test_two_plans_differ_exactly_when_the_diff_says_so(
    first: FailoverPlan, second: FailoverPlan
) -> None:
    changes = first.diff(second)
    if first == second:
        assert not changes
    else:
        assert changes, "unequal plans need at least one change"
    for change in changes:
        assert str(change)
    assert changes._repr_html_().startswith('<table class="vmfailover">')


def edited_lab_plan() -> FailoverPlan:
    order = LAB_PLAN.start_order()
    changed = type(order)(max_parallel=8, groups=order.groups)
    for resource, capacity in order.limits.items():
        changed.limit(resource, capacity)
    for entry in order:
        if entry.name == "file01":
            continue
        after = entry.after
        probe = entry.probe
        if entry.name == "web03":
            after = ("app03", "mon01")
        if entry.name == "db01":
            probe = TCPPort(5433)
        changed.add(
            entry.name,
            after=after,
            group=entry.group,
            probe=probe,
            timeout=entry.timeout,
            on_failure=entry.on_failure,
            resources=entry.resources,
        )
    assert LAB_PLAN.reip is not None
    rules = [
        ReIPRule(r.source, "10.21.0.*", gateway="10.21.0.1") if r.source == "192.168.20.*" else r
        for r in LAB_PLAN.reip
    ]
    rules.append(ReIPRule("192.168.30.*", "10.30.0.*"))
    steps = [s for s in LAB_PLAN.steps if s.name != "change-board"]
    steps.append(Step("dns", ["/usr/local/bin/update-dns", "--zone", "corp"], when="after"))
    return attrs.evolve(
        LAB_PLAN,
        vms=(*LAB_PLAN.vms[:-1], "db03"),
        order=changed,
        reip=ReIPRules(rules),
        recovery_point={"db01": "latest-application-consistent"},
        power_off_source="graceful_then_force",
        rto="20m",
        steps=steps,
        network=attrs.evolve(LAB_PLAN.network, test={"Prod-App": "Test-App"}),  # type: ignore[misc]
    )


def test_the_diff_says_what_a_reviewer_needs() -> None:
    text = str(LAB_PLAN.diff(edited_lab_plan()))
    for expected in (
        "vms: VM 'db03' added",
        "vms: VM 'file01' removed",
        "objectives: RTO changed from 15m00s to 20m00s",
        "power-off: power off source changed from (none) to graceful then force",
        "recovery point: VM 'db01' changed from latest to latest-application-consistent",
        "order: max parallel changed from 6 to 8",
        "order: VM 'web03' dependencies changed from app03 to app03, mon01",
        "order: VM 'db01' probe changed from TCP <guest address>:5432 open",
        "network: test mapping of 'Prod-Web' removed (was -> 'Test-Web')",
        "reip: rule '192.168.20.*' changed from -> 10.20.0.*, gateway 10.20.0.1",
        "reip: rule '192.168.30.*' added: -> 10.30.0.*",
        "steps: step 'change-board' removed",
        "steps: step 'dns' added: runs dns (/usr/local/bin/update-dns --zone corp), after the plan",
    ):
        assert expected in text, f"{expected!r} not in\n{text}"


def test_the_module_function_and_the_method_agree() -> None:
    edited = edited_lab_plan()
    assert diff(LAB_PLAN, edited) == LAB_PLAN.diff(edited)


def test_point_choice_and_step_details() -> None:
    plan = FailoverPlan(name="p", vms=["a"], steps=[Approval("gate", timeout=60)])
    moment = datetime(2024, 5, 1, 12, tzinfo=UTC)
    other = attrs.evolve(
        plan, recovery_point=moment, steps=[Approval("gate", timeout=120, kinds=["planned"])]
    )
    text = str(plan.diff(other))
    assert "recovery point: choice changed from latest to 2024-05-01T12:00:00+00:00" in text
    assert "step 'gate' timeout changed from 1m00s to 2m00s" in text
    assert "step 'gate' kinds changed from planned, regular, test to planned" in text


def svg_of(html: str) -> ElementTree.Element:
    start, end = html.index("<svg"), html.index("</svg>") + len("</svg>")
    return ElementTree.fromstring(html[start:end])


def test_the_plan_in_jupyter_has_a_table_and_an_svg_graph_without_javascript() -> None:
    html = LAB_PLAN._repr_html_()
    assert "<script" not in html
    svg = svg_of(html)
    labels = {text.text for text in svg.iter(f"{SVG}text")}
    assert set(LAB_PLAN.vms) <= labels
    edges = [path for path in svg.iter(f"{SVG}path") if path.get("marker-end")]
    assert len(edges) == sum(len(entry.after) for entry in LAB_PLAN.start_order())
    assert "<table" in html and "guest tools heartbeat" in html
    assert str(LAB_PLAN).startswith("Failover plan 'three-tier': 12 VMs, RPO 30m00s")


@given(plans())
def test_every_vm_sits_right_of_what_it_waits_for(plan: FailoverPlan) -> None:
    order = plan.start_order()
    nodes = [entry.name for entry in order]
    edges = {entry.name: entry.after for entry in order}
    columns, stuck = _graph.layers(nodes, edges)
    assert not stuck
    column_of = {node: index for index, column in enumerate(columns) for node in column}
    assert sorted(column_of) == sorted(nodes)
    for node, deps in edges.items():
        for dep in deps:
            assert column_of[dep] < column_of[node]
    svg = svg_of(plan._repr_html_())  # parses: every name is escaped
    assert svg.get("width")


def test_a_cycle_is_drawn_and_marked() -> None:
    columns, stuck = _graph.layers(["a", "b", "c"], {"b": ["a", "c"], "c": ["b"]})
    assert stuck == {"b", "c"}
    assert columns == [["a"], ["b", "c"]]
    svg = _graph.svg_graph(["a", "b", "c"], {"b": ["a", "c"], "c": ["b"]})
    assert 'stroke="#c00"' in svg
    ElementTree.fromstring(svg)


def test_findings_show_themselves() -> None:
    findings = LAB_PLAN.validate(lab(), "regular")
    assert isinstance(findings, Findings) and findings.blocking
    assert str(findings).startswith("12 errors, 0 warnings\n  error: VM 'dc01'")
    assert findings._repr_html_().count("<tr>") == 13
    empty = Findings()
    assert str(empty) == "No findings" and not empty.blocking
    mixed = Findings([Finding("x", "<b>bold</b>", Severity.WARNING)])
    assert "&lt;b&gt;" in mixed._repr_html_() and not mixed.blocking
