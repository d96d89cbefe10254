"""What a new user following the quickstart does, from the command line only.

In an empty folder, each step a ``python -m vmfailover`` process of its own: write the plan file
the quickstart shows (taken from docs/quickstart.md, so the page and the test cannot drift), then
every command of its "Run a test failover from the command line" section in order, checking
every exit code and what each prints. The lab lives in its file and the runs in the journal
between the processes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_support import ROOT, vmfailover

QUICKSTART = ROOT / "docs" / "quickstart.md"
SECTION = "## Run a test failover from the command line"


def _section() -> str:
    text = QUICKSTART.read_text()
    start = text.index(SECTION)
    return text[start : text.index("\n## ", start + 1)]


def _plan_from_docs() -> str:
    match = re.search(r"```toml\n(.*?)```", _section(), re.S)
    assert match, "the quickstart shows no plan file"
    return match.group(1)


def _commands_from_docs() -> list[list[str]]:
    match = re.search(r"```sh\n(.*?)```", _section(), re.S)
    assert match, "the quickstart shows no commands"
    lines = [line.split("#")[0].split() for line in match.group(1).splitlines()]
    return [line[1:] for line in lines if line and line[0] == "vmfailover"]


def test_a_new_user_runs_a_test_failover_on_the_lab_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "lab-app.toml").write_text(_plan_from_docs())
    commands = _commands_from_docs()
    assert [c[0] for c in commands] == [
        "validate",
        "simulate",
        "run",
        "report",
        "report",
        "cleanup",
        "report",
        "report",
        "lab",
    ]
    validate, simulate, run, report_text, report_json, cleanup, report_after, runs, reset = commands

    done = vmfailover(tmp_path, *validate)
    assert done.returncode == 0, done.stderr
    assert "lab-app.toml: valid" in done.stdout

    done = vmfailover(tmp_path, *simulate)
    assert done.returncode == 0, done.stderr
    assert "meets the plan's RTO target 15m00s" in done.stdout

    done = vmfailover(tmp_path, *run)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test failover of plan 'lab-app'" in done.stdout
    assert "succeeded, 4/4 VMs ready" in done.stdout
    found = re.search(r"^run id: (\S+)$", done.stdout, re.M)
    assert found, done.stdout
    run_id = found.group(1)
    assert (tmp_path / "vmfailover-lab.json").is_file()
    assert (tmp_path / "vmfailover-journal.db").is_file()

    def with_run(command: list[str]) -> list[str]:
        return [run_id if word == "RUN" else word for word in command]

    done = vmfailover(tmp_path, *with_run(report_text))
    assert done.returncode == 0, done.stderr
    assert run_id in done.stdout
    for vm in ("dc01", "db01", "app01", "web01"):
        assert re.search(rf"^{vm}\s+ready", done.stdout, re.M), done.stdout

    done = vmfailover(tmp_path, *with_run(report_json))
    assert done.returncode == 0, done.stderr
    history = json.loads(done.stdout)
    assert history["state"] == "failed_over"
    report = history["report"]
    assert report["run_id"] == run_id
    assert report["kind"] == "test"
    assert report["result"] == "succeeded"
    assert report["cleanup"] is None
    assert {vm["vm"]: vm["outcome"] for vm in report["vms"]} == dict.fromkeys(
        ("dc01", "db01", "app01", "web01"), "ready"
    )

    done = vmfailover(tmp_path, *with_run(cleanup))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 test copies removed; inventory restored" in done.stdout

    done = vmfailover(tmp_path, *with_run(report_after))
    assert done.returncode == 0, done.stderr
    history = json.loads(done.stdout)
    assert history["state"] == "cleaned_up"
    report = history["report"]
    assert report["state"] == "cleaned_up"
    assert report["cleanup"]["restored"] is True
    assert len(report["cleanup"]["removed"]) == 4
    assert report["cleanup"]["differences"] == []

    done = vmfailover(tmp_path, *runs)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"^{run_id}\s+test\s+lab-app\s+.*cleaned_up\s+succeeded", done.stdout, re.M)

    done = vmfailover(tmp_path, *reset)
    assert done.returncode == 0, done.stderr
    assert "a fresh two-site lab" in done.stdout


def test_the_command_line_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    (tmp_path / "lab-app.toml").write_text(_plan_from_docs())
    done = vmfailover(tmp_path, "report", "run-nope")
    assert done.returncode == 2
    assert "no journal" in done.stderr
    # a regular failover while site A runs: the pre-flight refuses it, nothing is touched
    done = vmfailover(tmp_path, "run", "lab-app.toml", "--kind", "regular")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "dc01" in done.stderr
    (tmp_path / "vmfailover-lab.json").write_text('{"format": "something else"}')
    done = vmfailover(tmp_path, "run", "lab-app.toml", "--kind", "test")
    assert done.returncode == 3
    assert "vmfailover-lab.json: format" in done.stderr
    done = vmfailover(tmp_path, "run", "lab-app.toml", "--kind", "test", "--backend", "nomodule")
    assert done.returncode == 3
    assert "MODULE:FACTORY" in done.stderr


@pytest.mark.slow
def test_a_planned_failover_on_a_backend_a_function_returns(tmp_path: Path) -> None:
    """--backend MODULE:FACTORY: the user's function returns the backend (here a saved lab)."""
    (tmp_path / "lab-app.toml").write_text(_plan_from_docs())
    (tmp_path / "mylab.py").write_text(
        "from vmfailover.backends.memory import MemoryBackend\n"
        "from vmfailover.backends.memory.lab import lab\n\n"
        "def backend():\n"
        "    return lab()\n"
    )
    done = vmfailover(
        tmp_path, "run", "lab-app.toml", "--kind", "planned", "--backend", "mylab:backend", "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kind"] == "planned"
    assert report["result"] == "succeeded"
    assert not (tmp_path / "vmfailover-lab.json").exists(), "the lab file is only for --backend lab"
    done = vmfailover(tmp_path, "cleanup", report["run_id"])
    assert done.returncode == 3
    assert "clean" in done.stderr, done.stderr
