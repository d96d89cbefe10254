"""``vmfailover drill PLAN``: one recovery drill now, for cron (or any scheduler) to start.

The plan runs as a test failover on the chosen backend, with the run journal written as it goes
(``--journal``, as for ``run``), then its copies are removed and the inventory proven as before.
Before anything starts, the journal is read: a production run of the plan or of one of its VMs
that is not settled, a test run of them still running, or one whose cleanup never proved the
inventory restored, and the drill is skipped with the reason. Exit 0: passed; 1: failed (a VM not
ready, the RTO target missed, the cleanup not proven); 3: skipped or refused, with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

from vmfailover._render import text_table
from vmfailover.cli.backends import LAB_BACKEND, opened_backend
from vmfailover.cli.commands import EXIT_INVALID, load_plan
from vmfailover.cli.journal import journal_spec, open_journal
from vmfailover.cli.output import Output
from vmfailover.engine.drills import Drill, run_drill
from vmfailover.engine.runner import Runner
from vmfailover.policy.drills import DrillOutcome

__all__ = ["EXIT_DRILL_FAILED", "drill_command"]

EXIT_DRILL_FAILED = 1
"""The drill ran and failed: the output says why."""

_EXIT = {
    DrillOutcome.PASSED: 0,
    DrillOutcome.FAILED: EXIT_DRILL_FAILED,
    DrillOutcome.SKIPPED: EXIT_INVALID,
}


def drill_command(
    output: Output,
    plan_path: Path,
    *,
    backend: str = LAB_BACKEND,
    lab_file: Path | None = None,
    journal: str | os.PathLike[str] | None = None,
    max_duration: str | None = None,
    max_parallel: int = 8,
    as_json: bool = False,
) -> int:
    """Run one drill of the plan now; show the result; its exit code."""
    plan = load_plan(plan_path)
    drill = Drill(plan, max_duration=max_duration)
    with (
        open_journal(journal_spec(journal), create=True) as journaled,
        opened_backend(backend, lab_file) as opened,
    ):
        runner = Runner(opened, max_parallel=max_parallel, poll_interval=2.0, journal=journaled)
        try:
            result = run_drill(runner, drill)
        finally:
            runner.close()
    if as_json:
        output.say(result.to_json(indent=2))
    else:
        style = {
            DrillOutcome.PASSED: "bold green",
            DrillOutcome.FAILED: "bold red",
            DrillOutcome.SKIPPED: "bold yellow",
        }[result.result]
        output.say(result.summary(), style=style)
        if result.vms:
            output.say()
            output.say(text_table(*result.table()))
    return _EXIT[result.result]
