"""``vmfailover commit``, ``undo`` and ``failback`` RUN, each a process of its own on the lab
kept in a file and the journal, as a user runs them after ``vmfailover run``: the exit codes,
what each prints, what ``report`` shows afterwards, and every refusal naming the run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import ROOT, vmfailover
from test_cli_new_user import _plan_from_docs
from vmfailover.backends.memory.lab import lab
from vmfailover.backends.memory.lab_file import held_lab
from vmfailover.engine.runner import Runner
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.plan import FailoverPlan
from vmfailover.testing import SimulatedCrash

pytestmark = pytest.mark.slow

LAB = "vmfailover-lab.json"
JOURNAL = "vmfailover-journal.db"


def run_id_of(done: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"^(?:failback )?run id: (\S+)$", done.stdout, re.M)
    assert found, done.stdout + done.stderr
    return found.group(1)


def history(folder: Path, run_id: str) -> dict[str, object]:
    done = vmfailover(folder, "report", run_id, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert isinstance(data, dict)
    return data


def restore_site_a(folder: Path) -> None:
    """Site A's power comes back (its VMs stay off), as before a failback after a disaster."""
    with held_lab(folder / LAB, timeout=30) as backend:
        for host in backend.inventory().hosts:
            if host.site == "site-a":
                backend.restore_host(host.name)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "lab-app.toml").write_text(_plan_from_docs())
    return tmp_path


def test_a_regular_failover_is_committed_then_failed_back(folder: Path) -> None:
    disaster = lab()
    disaster.fail_site("site-a")
    disaster.save(folder / LAB)
    done = vmfailover(folder, "run", "lab-app.toml", "--kind", "regular")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = run_id_of(done)

    done = vmfailover(folder, "failback", run_id)
    assert done.returncode == 3
    assert f"run {run_id} is not committed yet" in done.stderr
    assert f"vmfailover commit {run_id}" in done.stderr

    done = vmfailover(folder, "commit", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"run {run_id}: committed: 4 VMs" in done.stdout
    assert f"vmfailover failback {run_id}" in done.stdout
    assert history(folder, run_id)["state"] == "committed"

    done = vmfailover(folder, "undo", run_id)
    assert done.returncode == 3
    assert f"run {run_id} is committed: a committed failover can no longer be undone" in (
        done.stderr
    )
    done = vmfailover(folder, "commit", run_id)
    assert done.returncode == 3 and f"run {run_id} is committed already" in done.stderr

    # site A is still down: the failback cannot reverse replication; run it again later
    done = vmfailover(folder, "failback", run_id)
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"run {run_id}: the failback could not finish" in done.stderr
    assert "esx-a1" in done.stderr and "Traceback" not in done.stderr
    assert history(folder, run_id)["state"] == "failing_back"

    restore_site_a(folder)
    done = vmfailover(folder, "failback", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"failback of run {run_id}: moved" in done.stdout
    back_id = run_id_of(done)
    assert back_id != run_id
    assert f"vmfailover commit {back_id}" in done.stdout
    assert history(folder, run_id)["state"] == "failing_back"

    done = vmfailover(folder, "failback", back_id)
    assert done.returncode == 3
    assert f"run {back_id} is the failback of run {run_id}" in done.stderr

    done = vmfailover(folder, "commit", back_id, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["run_id"] == back_id and report["state"] == "committed"
    assert len(report["commit"]["committed"]) == 4 and len(report["commit"]["resumed"]) == 4
    assert report["failback"]["of_run"] == run_id

    original = history(folder, run_id)
    assert original["state"] == "failed_back"
    states = [change["to"] for change in original["states"]]  # type: ignore[attr-defined]
    # the failback that could not finish left it failing_back; the next one went on from there
    assert list(dict.fromkeys(states))[-4:] == [
        "committing",
        "committed",
        "failing_back",
        "failed_back",
    ]
    done = vmfailover(folder, "report")
    assert re.search(rf"^{run_id}\s+regular\s+lab-app\s+.*failed_back", done.stdout, re.M)
    assert re.search(rf"^{back_id}\s+planned\s+lab-app \(failback\).*committed", done.stdout, re.M)


def test_a_planned_failover_is_undone(folder: Path) -> None:
    done = vmfailover(folder, "run", "lab-app.toml", "--kind", "planned")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = run_id_of(done)

    done = vmfailover(folder, "failback", run_id)
    assert done.returncode == 3 and f"run {run_id} is not committed yet" in done.stderr

    done = vmfailover(folder, "undo", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"run {run_id}: undone: 4 replicas back to replicating" in done.stdout
    assert "every VM the run touched is as it was" in done.stdout

    data = history(folder, run_id)
    assert data["state"] == "undone"
    report = data["report"]
    assert isinstance(report, dict)
    assert report["undo"]["restored"] is True and len(report["undo"]["restarted"]) == 4

    for again, message in (
        ("undo", f"run {run_id} is undone already"),
        ("commit", f"run {run_id} was undone"),
        ("failback", f"run {run_id} was undone"),
    ):
        done = vmfailover(folder, again, run_id)
        assert done.returncode == 3, (again, done.stdout, done.stderr)
        assert message in done.stderr


def test_a_test_run_and_an_unknown_run_are_refused(folder: Path) -> None:
    done = vmfailover(folder, "commit", "run-nope")
    assert done.returncode == 2 and "no journal" in done.stderr  # nothing was run here yet
    done = vmfailover(folder, "run", "lab-app.toml", "--kind", "test")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = run_id_of(done)
    for action, verb in (("commit", "committed"), ("undo", "undone"), ("failback", "failed back")):
        done = vmfailover(folder, action, run_id)
        assert done.returncode == 3, done.stdout + done.stderr
        assert f"run {run_id} is a test failover" in done.stderr
        assert f"never {verb} (vmfailover cleanup {run_id})" in done.stderr
        done = vmfailover(folder, action, "run-nope")
        assert done.returncode == 2
        assert "holds no run 'run-nope'" in done.stderr
    done = vmfailover(folder, "failback", run_id, "--plan", "missing.toml")
    assert done.returncode == 2 and "missing.toml" in done.stderr
    assert history(folder, run_id)["state"] == "failed_over"  # nothing acted on it


def crash_a_planned_run(folder: Path) -> str:
    """A planned run of the lab-app plan whose process stops halfway (its recovery interrupted,
    the journal naming this process as the run's holder); returns its id."""
    backend = lab()
    backend.faults.crash_at(backend.faults.calls + 25)
    with SQLiteJournal(folder / JOURNAL) as journal:
        runner = Runner(backend, journal=journal, poll_interval=15)
        with pytest.raises(SimulatedCrash):
            runner.failover(FailoverPlan.load(folder / "lab-app.toml"), kind="planned")
        runner.close()
        return journal.runs()[-1].run_id


def test_a_run_still_running_elsewhere_or_interrupted_is_refused(folder: Path) -> None:
    live = folder / "live"
    live.mkdir()
    (live / "lab-app.toml").write_text(_plan_from_docs())
    run_id = crash_a_planned_run(live)  # held by this (live) test process
    for action in ("commit", "undo", "failback"):
        done = vmfailover(live, action, run_id)
        assert done.returncode == 3, done.stdout + done.stderr
        assert f"run {run_id} is still running in process {os.getpid()}" in done.stderr
    assert not (live / LAB).exists(), "refused before the backend was opened"

    script = (
        "import sys; from pathlib import Path; import pytest\n"
        "from test_cli_aftercare import crash_a_planned_run\n"
        "print(crash_a_planned_run(Path(sys.argv[1])))\n"
    )
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join((str(ROOT / "src"), str(ROOT / "tests")))
    crashed = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    run_id = crashed.stdout.split()[-1]  # its holder has ended
    for action in ("commit", "undo", "failback"):
        done = vmfailover(folder, action, run_id)
        assert done.returncode == 3, done.stdout + done.stderr
        assert f"run {run_id} was interrupted in its recovery (running)" in done.stderr
        assert f"vmfailover resume {run_id} --backend lab" in done.stderr
