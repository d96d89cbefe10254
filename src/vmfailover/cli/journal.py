"""``vmfailover report`` and ``vmfailover resume``: the run journal from the command line.

``report RUN`` shows a journaled run (its kind, plan, state changes, result, RTO and last report);
without RUN it lists every run of the journal, for RTO trends. ``resume RUN`` continues an
interrupted run: it needs the backend the run ran on, which the journal does not hold (it stores
no credentials), so ``--backend MODULE:FACTORY`` names a function of yours that connects and
returns it, the same one your scripts use. The journal is ``--journal PATH``, else
``$VMFAILOVER_JOURNAL``, else ``vmfailover-journal.db`` in the working directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vmfailover._render import format_duration
from vmfailover.cli.backends import opened_backend
from vmfailover.cli.output import Output
from vmfailover.cli.show import show_report
from vmfailover.engine.journal import RunHistory
from vmfailover.engine.results import RunResult
from vmfailover.engine.runner import Runner
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.errors import NotFoundError
from vmfailover.plan import FailoverPlan

__all__ = ["DEFAULT_JOURNAL", "journal_path", "open_journal", "report_command", "resume_command"]

DEFAULT_JOURNAL = "vmfailover-journal.db"
"""The journal file in the working directory when neither --journal nor the environment says."""

ENVIRONMENT = "VMFAILOVER_JOURNAL"


def journal_path(given: Path | None) -> Path:
    """--journal, else $VMFAILOVER_JOURNAL, else the default file in the working directory."""
    if given is not None:
        return given
    return Path(os.environ.get(ENVIRONMENT) or DEFAULT_JOURNAL)


def open_journal(path: Path) -> SQLiteJournal:
    """The existing journal at ``path`` (the command line never creates one by reading)."""
    if not path.is_file():
        raise NotFoundError(
            f"no journal at {str(path)!r} (give --journal PATH or set ${ENVIRONMENT})"
        )
    return SQLiteJournal(path)


def report_command(
    output: Output, run_id: str | None, path: Path | None, *, as_json: bool = False
) -> int:
    """Show run ``run_id`` of the journal, or every run when ``run_id`` is None. Exit 0."""
    with open_journal(journal_path(path)) as journal:
        if run_id is None:
            runs = journal.runs()
            if as_json:
                output.say(json.dumps([run.as_dict() for run in runs], indent=2))
                return 0
            output.table(
                ("run", "kind", "plan", "started", "state", "result", "RTO", "target"),
                [
                    (
                        run.run_id,
                        run.kind.value,
                        run.plan,
                        f"{run.started_at:%Y-%m-%d %H:%M:%S}",
                        run.state + (" (interrupted)" if run.interrupted else ""),
                        run.result.value if run.result else "-",
                        format_duration(run.rto_seconds) if run.rto_seconds is not None else "-",
                        format_duration(run.rto_target_seconds)
                        if run.rto_target_seconds is not None
                        else "-",
                    )
                    for run in runs
                ],
                title=f"{len(runs)} runs in {journal.path}",
            )
            return 0
        history = journal.report(run_id)
    if as_json:
        output.say(history.to_json(indent=2))
    else:
        _show_history(output, history)
    return 0


def _show_history(output: Output, history: RunHistory) -> None:
    summary = history.summary
    rto = "-" if summary.rto_seconds is None else format_duration(summary.rto_seconds)
    output.say(
        f"run {summary.run_id}: {summary.kind.value} failover of plan {summary.plan!r} on "
        f"{summary.backend or 'a backend'}; state {summary.state}"
        + (" (interrupted: vmfailover resume it)" if summary.interrupted else "")
        + f"; RTO {rto}"
    )
    output.table(
        ("at", "from", "to"),
        [(f"{c.at:%Y-%m-%d %H:%M:%S}", c.old, c.new) for c in history.states],
        title="state changes",
    )
    output.say(f"{history.calls} changing backend calls journaled")
    if history.report is not None:
        output.say()
        show_report(output, history.report)


def resume_command(
    output: Output,
    run_id: str,
    path: Path | None,
    *,
    backend_spec: str,
    lab_file: Path | None = None,
    plan_path: Path | None = None,
    as_json: bool = False,
) -> RunResult:
    """Resume run ``run_id`` on the backend ``backend_spec`` names (``lab``, the lab in
    ``lab_file``, or MODULE:FACTORY, see :mod:`vmfailover.cli.backends`); shows its report."""
    plan = FailoverPlan.load(plan_path) if plan_path is not None else None
    with (
        opened_backend(backend_spec, lab_file) as backend,
        open_journal(journal_path(path)) as journal,
    ):
        runner = Runner(backend, journal=journal)
        if not as_json:
            runner.subscribe(output.run_progress())
        try:
            report = runner.resume(run_id, plan=plan, background=False).wait()
        finally:
            runner.close()
    if as_json:
        output.say(report.to_json(indent=2))
    else:
        show_report(output, report)
    return report.result
