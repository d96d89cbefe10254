"""``vmfailover run`` and ``vmfailover cleanup``: a failover from the command line, journaled so
later processes can report it, resume it and clean it up.

``run PLAN --kind test|planned|regular`` fails the plan over on the chosen backend (the lab kept
in a file by default, see :mod:`vmfailover.cli.backends`), with the run journal
(``--journal``: an SQLite file or a ``postgresql://`` database, else ``$VMFAILOVER_JOURNAL``, else
``vmfailover-journal.db``; see :mod:`vmfailover.cli.journal`) written as it goes;
it shows the progress and the report and prints the run id. ``cleanup RUN`` removes a test run's
copies in a later process, on the same backend, and proves the inventory is as the journal
recorded it before the test. ``vmfailover report RUN`` (:mod:`vmfailover.cli.journal`) reads the
same journal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vmfailover.cli.backends import LAB_BACKEND, opened_backend
from vmfailover.cli.commands import load_plan
from vmfailover.cli.journal import journal_spec, open_journal
from vmfailover.cli.output import Output
from vmfailover.cli.show import say_deadline, show_report
from vmfailover.engine.results import RunResult
from vmfailover.engine.runner import Runner
from vmfailover.model import FailoverKind, as_enum

__all__ = ["EXIT_CLEANUP_INCOMPLETE", "cleanup_command", "run_command"]

EXIT_CLEANUP_INCOMPLETE = 4
"""``cleanup`` left something behind (it says what): run it again."""


def run_command(
    output: Output,
    plan_path: Path,
    *,
    kind: str,
    backend: str = LAB_BACKEND,
    lab_file: Path | None = None,
    journal: str | os.PathLike[str] | None = None,
    max_parallel: int = 8,
    as_json: bool = False,
) -> RunResult:
    """Fail the plan over with the journal written as it goes; show the report and the run id."""
    failover_kind = as_enum(FailoverKind, kind, "--kind")
    plan = load_plan(plan_path)
    with (
        open_journal(journal_spec(journal), create=True) as journaled,
        opened_backend(backend, lab_file) as opened,
    ):
        # this process ends with the run: the plan's deadline is journaled for whoever keeps it
        runner = Runner(
            opened,
            max_parallel=max_parallel,
            poll_interval=2.0,
            journal=journaled,
            keep_deadlines=False,
        )
        try:
            if not as_json:
                runner.subscribe(output.run_progress())
            report = runner.start(plan, kind=failover_kind).wait()
        finally:
            runner.close()
    if as_json:
        output.say(report.to_json(indent=2))
        return report.result
    show_report(output, report)
    output.say()
    output.say(f"run id: {report.run_id}", style="bold")
    if failover_kind is FailoverKind.TEST:
        output.say(f"the test copies keep running until: vmfailover cleanup {report.run_id}")
    elif report.deadline is not None:
        say_deadline(output, report.run_id, report.deadline)
    return report.result


def cleanup_command(
    output: Output,
    run_id: str,
    *,
    backend: str = LAB_BACKEND,
    lab_file: Path | None = None,
    journal: str | os.PathLike[str] | None = None,
    plan_path: Path | None = None,
    as_json: bool = False,
) -> int:
    """Clean up journaled test run ``run_id`` on the backend it ran on. Exit 0 when the inventory
    is restored; 4 when something is left (shown: run it again)."""
    plan = load_plan(plan_path) if plan_path is not None else None
    with (
        open_journal(journal_spec(journal)) as journaled,
        opened_backend(backend, lab_file) as opened,
    ):
        runner = Runner(opened, journal=journaled, keep_deadlines=False)
        try:
            report = runner.cleanup_journaled(run_id, plan=plan)
        finally:
            runner.close()
    cleanup = report.cleanup
    assert cleanup is not None
    if as_json:
        output.say(json.dumps(report.as_dict()["cleanup"], indent=2))
    else:
        output.say(
            f"run {run_id}: {cleanup.summary()}",
            style="bold green" if cleanup.restored else "bold red",
        )
    return 0 if cleanup.restored else EXIT_CLEANUP_INCOMPLETE
