"""``vmfailover deadlines``: act once on every plan deadline of the journal that is due.

A plan's ``auto_commit`` / ``auto_undo`` is journaled when its run's recovery ends
(:mod:`vmfailover.engine.deadlines`). ``vmfailover serve`` keeps them while it runs; without a
server, this command (from cron, say every few minutes) commits or undoes each run whose
deadline is due now, by the backend's clock, as ``vmfailover commit`` / ``undo`` would, with
``by="deadline"``. It reads the journal first and opens the backend only when a deadline is
pending. A run decided meanwhile, or acted on by another process at the same moment, is left
alone (said so). Exit 0 when nothing was left unfinished; 4 when a commit or undo could not
finish (shown: ``vmfailover commit RUN`` / ``undo RUN`` finishes it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vmfailover.cli.aftercare import EXIT_UNFINISHED
from vmfailover.cli.backends import LAB_BACKEND, opened_backend
from vmfailover.cli.journal import journal_spec, open_journal
from vmfailover.cli.output import Output
from vmfailover.engine.deadlines import act_on_due, pending_deadlines
from vmfailover.engine.runner import Runner

__all__ = ["deadlines_command"]


def deadlines_command(
    output: Output,
    *,
    backend: str = LAB_BACKEND,
    lab_file: Path | None = None,
    journal: str | os.PathLike[str] | None = None,
    as_json: bool = False,
) -> int:
    """Commit or undo every journaled run whose plan deadline is due; say what was done."""
    with open_journal(journal_spec(journal)) as journaled:
        if not pending_deadlines(journaled):
            if as_json:
                output.say(json.dumps({"acted": [], "pending": []}, indent=2))
            else:
                output.say("no deadline is pending in the journal")
            return 0
        with opened_backend(backend, lab_file) as opened:
            runner = Runner(opened, journal=journaled, keep_deadlines=False)
            try:
                now = runner.clock.now()
                outcomes = act_on_due(runner, now)
            finally:
                runner.close()
        later = pending_deadlines(journaled)
    unfinished = any(outcome.acted and not outcome.finished for outcome in outcomes)
    if as_json:
        data = {
            "acted": [outcome.as_dict() for outcome in outcomes],
            "pending": [
                {"run_id": run_id, "action": d.action.value, "at": d.at.isoformat()}
                for run_id, d in later.items()
            ],
        }
        output.say(json.dumps(data, indent=2))
        return EXIT_UNFINISHED if unfinished else 0
    for outcome in outcomes:
        good = outcome.acted and outcome.finished
        output.say(outcome.summary(), style="bold green" if good else "bold yellow")
    if not outcomes:
        output.say(f"no deadline is due at {now:%Y-%m-%d %H:%M:%S} UTC")
    for run_id, deadline in later.items():
        output.say(
            f"run {run_id}: automatic {deadline.action.value} due "
            f"{deadline.at:%Y-%m-%d %H:%M:%S} UTC (not yet)"
        )
    return EXIT_UNFINISHED if unfinished else 0
