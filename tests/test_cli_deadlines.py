"""The command line keeps a plan's deadline through the journal: ``run`` says when it falls due
and who keeps it, ``report`` shows it pending, ``deadlines`` (for cron) acts on the due ones
once, each command a process of its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_support import vmfailover
from test_cli_aftercare import LAB, history, run_id_of
from test_cli_new_user import _plan_from_docs
from vmfailover.backends.memory.lab_file import held_lab

pytestmark = pytest.mark.slow


def plan_with(policy: str) -> str:
    """The quickstart's plan with a commit policy line after its RTO."""
    text = _plan_from_docs()
    assert '\nrto = "15m"\n' in text
    return text.replace('\nrto = "15m"\n', f'\nrto = "15m"\n{policy}\n', 1)


def test_a_due_deadline_is_acted_on_by_the_deadlines_command_once(tmp_path: Path) -> None:
    (tmp_path / "lab-app.toml").write_text(plan_with('auto_commit = "1h"'))
    done = vmfailover(tmp_path, "run", "lab-app.toml", "--kind", "planned")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = run_id_of(done)
    said = re.search(r"automatic commit due (\S+ \S+) UTC, kept by `vmfailover serve`", done.stdout)
    assert said, done.stdout
    assert f"`vmfailover commit {run_id}` / `vmfailover undo {run_id}`" in done.stdout
    # the run's process has ended: the journal alone holds the deadline
    assert history(tmp_path, run_id)["state"] == "failed_over"
    report = history(tmp_path, run_id)["report"]
    assert isinstance(report, dict) and report["deadline"]["action"] == "commit"
    listed = vmfailover(tmp_path, "report")
    assert re.search(rf"^{run_id}\s.*failed_over.*commit at {said.group(1)}", listed.stdout, re.M)
    listed = json.loads(vmfailover(tmp_path, "report", "--json").stdout)
    assert listed[0]["deadline"]["action"] == "commit"

    with held_lab(tmp_path / LAB, timeout=30) as lab:  # an hour passes on the lab's clock
        lab.clock.advance(3600)
    done = vmfailover(tmp_path, "deadlines")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"run {run_id}: automatic commit due" in done.stdout and "committed" in done.stdout
    final = history(tmp_path, run_id)
    assert final["state"] == "committed"
    assert isinstance(final["report"], dict) and final["report"]["commit"]["by"] == "deadline"
    assert final["report"]["deadline"] is None

    done = vmfailover(tmp_path, "deadlines", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"acted": [], "pending": []}


def test_a_deadline_not_due_is_left_and_a_person_s_undo_cancels_it(tmp_path: Path) -> None:
    (tmp_path / "lab-app.toml").write_text(plan_with('auto_commit = "4h"'))
    done = vmfailover(tmp_path, "run", "lab-app.toml", "--kind", "planned")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = run_id_of(done)
    done = vmfailover(tmp_path, "deadlines")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no deadline is due at" in done.stdout
    assert f"run {run_id}: automatic commit due" in done.stdout and "(not yet)" in done.stdout
    assert history(tmp_path, run_id)["state"] == "failed_over"
    done = vmfailover(tmp_path, "undo", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    done = vmfailover(tmp_path, "deadlines")
    assert done.returncode == 0 and "no deadline is pending in the journal" in done.stdout
    assert history(tmp_path, run_id)["state"] == "undone"
