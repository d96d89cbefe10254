"""A plan as people read it: a text summary, and HTML for Jupyter (a VM table and the start-order
graph as inline SVG, no JavaScript)."""

from __future__ import annotations

import html
from datetime import datetime

from vmfailover import _graph, _render
from vmfailover.plan.plan import FailoverPlan
from vmfailover.plan.steps import Approval
from vmfailover.policy.sequencer import StartEntry

__all__ = ["plan_html", "plan_summary", "plan_text"]

_HEADERS = ("VM", "group", "after", "probe", "timeout", "on failure", "recovery point")


def _point(plan: FailoverPlan, vm: str) -> str:
    choice = plan.point_choice(vm)
    return choice.isoformat() if isinstance(choice, datetime) else str(choice)


def _row(plan: FailoverPlan, entry: StartEntry) -> tuple[str, ...]:
    return (
        entry.name,
        "" if entry.group is None else str(entry.group),
        ", ".join(entry.after),
        "" if entry.probe is None else entry.probe.describe(),
        "" if entry.timeout is None else _render.format_duration(entry.timeout),
        _render.in_words(entry.on_failure),
        _point(plan, entry.name),
    )


def _facts(plan: FailoverPlan) -> list[str]:
    facts = [f"{len(plan.vms)} VMs"]
    if plan.rpo is not None:
        facts.append(f"RPO {_render.format_duration(plan.rpo)}")
    if plan.rto is not None:
        facts.append(f"RTO {_render.format_duration(plan.rto)}")
    if plan.order is not None and plan.order.max_parallel is not None:
        facts.append(f"at most {plan.order.max_parallel} starting at once")
    if plan.network is not None:
        facts.append("network mapping")
    if plan.reip is not None:
        facts.append(f"{len(plan.reip)} re-IP rules")
    if plan.test_reip is not None:
        facts.append(f"{len(plan.test_reip)} test re-IP rules")
    steps = sum(1 for item in plan.steps if not isinstance(item, Approval))
    gates = len(plan.steps) - steps
    if steps:
        facts.append(f"{steps} step{'s' if steps != 1 else ''}")
    if gates:
        facts.append(f"{gates} approval{'s' if gates != 1 else ''}")
    return facts


def plan_summary(plan: FailoverPlan) -> str:
    """One line: the plan's name, size, objectives and what it holds."""
    return f"Failover plan {plan.name!r}: {', '.join(_facts(plan))}"


def plan_text(plan: FailoverPlan) -> str:
    """The plan as a fixed-width table under a one-line summary."""
    order = plan.start_order()
    title = plan_summary(plan)
    return _render.text_table(_HEADERS, [_row(plan, entry) for entry in order], title=title)


def plan_html(plan: FailoverPlan) -> str:
    """The plan for Jupyter: summary, start-order graph (SVG) and VM table."""
    order = plan.start_order()
    entries = list(order)
    notes = {entry.name: entry.probe.describe() for entry in entries if entry.probe is not None}
    graph = _graph.svg_graph(
        [entry.name for entry in entries],
        {entry.name: entry.after for entry in entries},
        groups={entry.name: entry.group for entry in entries},
        notes=notes,
        title="Start order (each arrow: a VM waits for the one it comes from)",
    )
    parts = [
        '<div class="vmfailover-plan">',
        f"<h4>Failover plan {html.escape(repr(plan.name))}</h4>",
        f"<p>{html.escape(', '.join(_facts(plan)))}</p>",
    ]
    if plan.description:
        parts.append(f"<p>{html.escape(plan.description)}</p>")
    parts.append(graph)
    parts.append(_render.html_table(_HEADERS, [_row(plan, entry) for entry in entries]))
    if plan.network is not None:
        parts.append(plan.network._repr_html_())
    if plan.reip is not None:
        parts.append(plan.reip._repr_html_())
    parts.append("</div>")
    return "".join(parts)
