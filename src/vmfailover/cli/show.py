"""How the command line shows our results: run reports, findings, simulations.

Each takes an :class:`~vmfailover.cli.output.Output`, so the same call draws rich tables on a
terminal and plain text in a pipe; the words are the ones ``str()`` of each result uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from vmfailover.cli.output import Output
from vmfailover.engine.aftercare_results import Deadline
from vmfailover.engine.results import RunReport, RunResult
from vmfailover.engine.rpo import RPOReport
from vmfailover.engine.simulate import SimulationResult
from vmfailover.errors import Finding

__all__ = ["say_deadline", "show_findings", "show_report", "show_rpo", "show_simulation"]

_RESULT_STYLES = {
    RunResult.SUCCEEDED: "bold green",
    RunResult.PARTIAL: "bold yellow",
    RunResult.FAILED: "bold red",
    RunResult.CANCELLED: "bold",
}


def show_report(output: Output, report: RunReport) -> None:
    """The summary line, the per-VM table, then decisions and warnings."""
    output.say(report.summary(), style=_RESULT_STYLES.get(report.result))
    output.say()
    headers, rows = report.table()
    output.table(headers, rows)
    for decision in report.decisions:
        output.say(f"decision: {decision}", style="cyan")
    for warning in report.warnings:
        output.say(f"warning: {warning}", style="yellow")


def show_rpo(output: Output, report: RPOReport) -> None:
    """The RPO table under its summary line; each VM's state coloured on a terminal."""
    headers, rows = report.table()
    output.table(headers, rows, title=report.summary())


def show_findings(output: Output, findings: Sequence[Finding], title: str) -> None:
    """A table of findings (severity, item, problem, hint) under ``title``; a line if none."""
    if not findings:
        output.say(f"{title}: no findings", style="green")
        return
    errors = sum(1 for finding in findings if finding.blocking)
    counted = f"{title}: {errors} errors, {len(findings) - errors} warnings"
    output.table(
        ("severity", "item", "problem", "hint"),
        [(f.severity.value, f.item, f.message, f.hint or "") for f in findings],
        title=counted,
    )


def show_simulation(output: Output, result: SimulationResult, rows: int = 40) -> None:
    """The summary (RTO, bounds, percentiles, critical path) and the first ``rows`` VMs; in
    plain text with the text Gantt chart ``str()`` draws."""
    if not output.rich:
        output.say(result.text(rows=rows))
        return
    for line in result.summary().splitlines():
        output.say(line)
    output.say()
    headers, table = result.table(rows)
    output.table(headers, table)
    hidden = len(result.starts) - len(table)
    if hidden > 0:
        output.say(f"... and {hidden} more VMs")


def say_deadline(output: Output, run_id: str, deadline: Deadline) -> None:
    """When a run's deadline falls due and who keeps it (this process does not)."""
    action = deadline.action.value
    output.say(
        f"automatic {action} due {deadline.at:%Y-%m-%d %H:%M:%S} UTC, kept by `vmfailover serve` "
        "on this journal (or by `vmfailover deadlines`, run from cron); or decide with "
        f"`vmfailover commit {run_id}` / `vmfailover undo {run_id}`",
        style="yellow",
    )
