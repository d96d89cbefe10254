"""examples/explore_plan.ipynb runs from top to bottom, and what Jupyter would show holds the
start-order graph of the plan and the timeline of the test failover, as inline SVG.

The kernel is this test suite's own interpreter: the test writes a kernel spec for
``sys.executable`` into a temporary Jupyter data directory, so no installed kernel (and no
network) is needed, and the notebook runs against the code under test.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from vmfailover.plan import FailoverPlan

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "explore_plan.ipynb"
KERNEL = "vmfailover-tests"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    data = tmp_path_factory.mktemp("jupyter")
    spec = data / "kernels" / KERNEL
    spec.mkdir(parents=True)
    source = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "vmfailover tests",
                "language": "python",
                "env": {"PYTHONPATH": source},
            }
        ),
        encoding="utf-8",
    )
    previous = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(data)
    try:
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        client = NotebookClient(
            notebook,
            kernel_name=KERNEL,
            timeout=300,
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )
        client.execute()
    finally:
        if previous is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = previous
    return notebook


def html_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        output["data"]["text/html"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "text/html" in output.get("data", {})
    ]


def svgs(html: str) -> list[ElementTree.Element]:
    found, start = [], html.find("<svg")
    while start != -1:
        end = html.index("</svg>", start) + len("</svg>")
        found.append(ElementTree.fromstring(html[start:end]))
        start = html.find("<svg", end)
    return found


def test_the_notebook_is_stored_without_outputs() -> None:
    """Outputs are made by running it; a stored one would go stale with the code."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def test_every_cell_runs_without_error(executed: nbformat.NotebookNode) -> None:
    errors = [
        output
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors


def test_the_plan_shows_its_start_order_graph(executed: nbformat.NotebookNode) -> None:
    plan_html = html_outputs(executed)[0]
    assert "Failover plan &#x27;three-tier&#x27;" in plan_html
    (graph,) = svgs(plan_html)
    arrows = [path for path in graph.iter(f"{SVG}path") if path.get("marker-end")]
    order = FailoverPlan.load(NOTEBOOK.with_name("lab-plan.toml")).start_order()
    assert len(arrows) == sum(len(entry.after) for entry in order)  # every dependency
    nodes = {text.text for text in graph.iter(f"{SVG}text")}
    assert set(order.vms) <= nodes
    assert "<script" not in plan_html


def test_the_report_shows_the_test_failovers_timeline(executed: nbformat.NotebookNode) -> None:
    reports = [html for html in html_outputs(executed) if "vmfailover-report" in html]
    assert len(reports) == 2  # after the run, and after cleanup
    assert "test failover of plan" in reports[-1] and "inventory restored" in reports[-1]
    (timeline,) = svgs(reports[-1])
    labels = [text.text for text in timeline.iter(f"{SVG}text")]
    assert labels.count("ready") == 12
    assert "RTO target 15m00s" in labels
    segments = [
        rect for rect in timeline.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None
    ]
    tips = [rect.find(f"{SVG}title").text or "" for rect in segments]
    assert any(tip.startswith("db01: create test copy") for tip in tips)
    assert any(tip.startswith("db01: wait ready") for tip in tips)


def test_simulations_show_their_gantt_charts(executed: nbformat.NotebookNode) -> None:
    charts = [html for html in html_outputs(executed) if "Monte Carlo over 500 runs" in html]
    assert len(charts) == 2  # as planned, and two at once
    for html in charts:
        (chart,) = svgs(html)
        assert any((text.text or "").startswith("RTO ") for text in chart.iter(f"{SVG}text"))
    printed = "".join(
        output.get("text", "")
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
    )
    assert "as planned" in printed and "two at once" in printed
