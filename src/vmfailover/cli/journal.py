"""``vmfailover report`` and ``vmfailover resume``: the run journal from the command line, and the
one way every command turns ``--journal`` into a journal.

``report RUN`` shows a journaled run (its kind, plan, state changes, result, RTO and last report);
without RUN it lists every run of the journal, for RTO trends. ``resume RUN`` continues an
interrupted run: it needs the backend the run ran on, which the journal does not hold (it stores
no credentials), so ``--backend MODULE:FACTORY`` names a function of yours that connects and
returns it, the same one your scripts use.

The journal is ``--journal``, else ``$VMFAILOVER_JOURNAL``, else ``vmfailover-journal.db`` in the
working directory: an SQLite file, or a ``postgresql://`` connection string (the journal in a
PostgreSQL database, as ``serve`` shares it). A connection string may hold a password; it is never
shown (the journal is named by its host and database). Only ``run`` makes a journal; the commands
that read one refuse a missing file or a database without the journal's tables (NotFoundError),
and a database that does not answer is refused naming the journal (ValidationError).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from vmfailover._render import format_duration
from vmfailover.cli.backends import opened_backend
from vmfailover.cli.output import Output
from vmfailover.cli.show import say_deadline, show_report
from vmfailover.engine.aftercare_results import Deadline
from vmfailover.engine.deadlines import pending_deadlines
from vmfailover.engine.journal import Journal, JournalUnavailableError, RunHistory
from vmfailover.engine.lease import LeaseUnavailableError
from vmfailover.engine.postgres_connection import describe_dsn, first_line, import_psycopg
from vmfailover.engine.postgres_journal import PostgresJournal
from vmfailover.engine.results import RunResult
from vmfailover.engine.runner import Runner
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.errors import NotFoundError, ValidationError
from vmfailover.plan import FailoverPlan

__all__ = [
    "DEFAULT_JOURNAL",
    "ENVIRONMENT",
    "describe_store",
    "is_database",
    "journal_spec",
    "open_journal",
    "reached",
    "report_command",
    "resume_command",
]

DEFAULT_JOURNAL = "vmfailover-journal.db"
"""The journal file in the working directory when neither --journal nor the environment says."""

ENVIRONMENT = "VMFAILOVER_JOURNAL"

_POSTGRES = ("postgresql://", "postgres://")
_T = TypeVar("_T")


def is_database(spec: str) -> bool:
    """Whether a store given on the command line is a PostgreSQL connection string (a URI)."""
    return spec.startswith(_POSTGRES)


def journal_spec(given: str | os.PathLike[str] | None) -> str:
    """--journal, else $VMFAILOVER_JOURNAL, else the default file in the working directory."""
    spec = os.fspath(given) if given is not None else os.environ.get(ENVIRONMENT) or DEFAULT_JOURNAL
    if not spec.strip():
        raise ValidationError.of(
            "--journal", "must name an SQLite file or a postgresql:// database, got ''"
        )
    return spec


def describe_store(option: str, spec: str) -> str:
    """What may be shown of the store ``spec`` names: an SQLite file's path, a database's host
    and database (never its password). ValidationError naming ``option`` for a connection string
    that is not one."""
    if not is_database(spec):
        return spec
    where, _ = describe_dsn(import_psycopg(option), spec, option)
    return where


def reached(option: str, spec: str, open_store: Callable[[], _T]) -> _T:
    """``open_store()`` on the database ``spec`` names; a string that is not a connection string,
    or a database that does not answer, is refused naming ``option`` and the host and database
    (never the password)."""
    where = describe_store(option, spec)
    try:
        return open_store()
    except (LeaseUnavailableError, JournalUnavailableError) as error:
        cause = error.__cause__ if error.__cause__ is not None else error
        raise ValidationError.of(
            option,
            f"cannot reach the database {where!r}: {first_line(cause)}",
            "is the database up, and the connection string right?",
        ) from error


def open_journal(spec: str, *, create: bool = False) -> Journal:
    """The journal ``spec`` (from :func:`journal_spec`) names, opened. Without ``create`` (every
    command but ``run``) only an existing one: NotFoundError for a missing file, or a database
    whose schema holds no journal."""
    if is_database(spec):
        return reached("--journal", spec, lambda: PostgresJournal(spec, create=create))
    if not create and not Path(spec).is_file():
        raise NotFoundError(
            f"no journal at {spec!r} (give --journal PATH|postgresql://... or set ${ENVIRONMENT})"
        )
    return SQLiteJournal(Path(spec))


def report_command(
    output: Output,
    run_id: str | None,
    journal_given: str | os.PathLike[str] | None,
    *,
    as_json: bool = False,
) -> int:
    """Show run ``run_id`` of the journal, or every run when ``run_id`` is None. Exit 0."""
    spec = journal_spec(journal_given)
    with open_journal(spec) as journal:
        if run_id is None:
            runs = journal.runs()
            pending = pending_deadlines(journal)
            if as_json:
                listed = [
                    {**run.as_dict(), "deadline": _deadline_dict(pending.get(run.run_id))}
                    for run in runs
                ]
                output.say(json.dumps(listed, indent=2))
                return 0
            output.table(
                ("run", "kind", "plan", "started", "state", "result", "RTO", "target", "deadline"),
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
                        _deadline_text(pending.get(run.run_id)),
                    )
                    for run in runs
                ],
                title=f"{len(runs)} runs in {describe_store('--journal', spec)}",
            )
            return 0
        history = journal.report(run_id)
    if as_json:
        output.say(history.to_json(indent=2))
    else:
        _show_history(output, history)
    return 0


def _deadline_dict(deadline: Deadline | None) -> dict[str, str] | None:
    if deadline is None:
        return None
    return {"action": deadline.action.value, "at": deadline.at.isoformat()}


def _deadline_text(deadline: Deadline | None) -> str:
    """A pending deadline for the table of runs: ``commit at 2026-03-02 10:00:00``."""
    if deadline is None:
        return "-"
    return f"{deadline.action.value} at {deadline.at:%Y-%m-%d %H:%M:%S}"


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
    journal_given: str | os.PathLike[str] | None,
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
        open_journal(journal_spec(journal_given)) as journal,
        opened_backend(backend_spec, lab_file) as backend,
    ):
        runner = Runner(backend, journal=journal, keep_deadlines=False)
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
        if report.deadline is not None and report.commit is None and report.undo is None:
            say_deadline(output, report.run_id, report.deadline)
    return report.result
