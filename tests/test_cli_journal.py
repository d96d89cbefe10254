"""``vmfailover report`` and ``vmfailover resume``: the journal from the command line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from journal_support import journal_folder, scene, small_plan
from vmfailover.backends.memory import MemoryBackend
from vmfailover.cli import main
from vmfailover.engine.runner import Runner
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.testing import SimulatedCrash

#: The backend the crashed run ran on; ``--backend test_cli_journal:crashed_backend`` finds it,
#: as a site's own factory would connect to its vCenter.
CRASHED: list[MemoryBackend] = []


def crashed_backend() -> MemoryBackend:
    return CRASHED[-1]


def run(*argv: str) -> tuple[int, str]:
    stream = io.StringIO()
    return main(list(argv), out=stream), stream.getvalue()


@pytest.fixture
def interrupted() -> Iterator[tuple[Path, str]]:
    """A journal holding one planned run that crashed halfway."""
    with journal_folder() as folder:
        backend = scene("planned")
        backend.faults.crash_at(backend.faults.calls + 25)
        path = folder / "journal.db"
        runner = Runner(backend, journal=SQLiteJournal(path), poll_interval=15)
        with pytest.raises(SimulatedCrash):
            runner.failover(small_plan(), kind="planned")
        runner.close()
        backend.faults.crash_at(None)
        CRASHED.append(backend)
        run_id = SQLiteJournal(path).runs()[0].run_id
        yield path, run_id
        CRASHED.clear()


def test_report_lists_runs_and_resume_continues_one(interrupted: tuple[Path, str]) -> None:
    path, run_id = interrupted
    code, out = run("report", "--journal", str(path))
    assert code == 0 and run_id in out and "running (interrupted)" in out
    code, out = run("report", run_id, "--journal", str(path))
    assert code == 0 and "interrupted: vmfailover resume it" in out
    code, out = run(
        "resume", run_id, "--journal", str(path), "--backend", "test_cli_journal:crashed_backend"
    )
    assert code == 0, out
    assert "succeeded, 4/4 VMs ready" in out
    code, out = run("report", run_id, "--journal", str(path), "--json")
    data = json.loads(out)
    assert code == 0 and data["result"] == "succeeded" and data["state"] == "failed_over"
    assert [change["to"] for change in data["states"]] == ["running", "failed_over"]
    assert len(data["report"]["vms"]) == 4
    code, out = run("report", "--journal", str(path), "--json")
    assert json.loads(out)[0]["interrupted"] is False


def test_a_run_that_is_not_interrupted_is_refused(
    interrupted: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, run_id = interrupted
    spec = "test_cli_journal:crashed_backend"
    assert run("resume", run_id, "--journal", str(path), "--backend", spec, "--json")[0] == 0
    code, _ = run("resume", run_id, "--journal", str(path), "--backend", spec)
    assert code == 3
    assert "is failed_over" in capsys.readouterr().err


def test_the_journal_comes_from_the_environment(
    interrupted: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, run_id = interrupted
    monkeypatch.setenv("VMFAILOVER_JOURNAL", str(path))
    code, out = run("report")
    assert code == 0 and run_id in out
    monkeypatch.delenv("VMFAILOVER_JOURNAL")
    monkeypatch.chdir(tmp_path)  # no vmfailover-journal.db here
    assert run("report")[0] == 2
    assert not (tmp_path / "vmfailover-journal.db").exists()  # reading never creates one


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", "is not MODULE:FACTORY"),
        ("no_such_module_here:backend", "cannot be imported"),
        ("test_cli_journal:missing", "has no function 'missing'"),
    ],
)
def test_a_backend_spec_that_does_not_work_is_named(
    interrupted: tuple[Path, str], capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    path, run_id = interrupted
    code, _ = run("resume", run_id, "--journal", str(path), "--backend", spec)
    assert code in (2, 3)
    assert message in capsys.readouterr().err


def test_report_shows_an_undo_and_a_failback_with_its_commit() -> None:
    """Commit, undo and failback are journaled: `report` prints their results from the journal,
    and the failback run is a run of its own in the list."""
    with journal_folder() as folder:
        path = folder / "journal.db"
        backend = scene("planned")
        with SQLiteJournal(path) as journal:
            runner = Runner(backend, journal=journal, poll_interval=15)
            undone = runner.start(small_plan(), kind="planned", background=False)
            undone.wait()
            undone.undo()
            again = runner.start(small_plan(), kind="planned", background=False)
            again.wait()
            back = again.failback(background=False)
            back.commit()
            runner.close()
        code, text = run("report", undone.id, "--journal", str(path))
        assert code == 0
        assert "state undone" in text and "every VM the run touched is as it was" in text
        code, text = run("report", back.id, "--journal", str(path))
        assert code == 0 and "state committed" in text and "committed" in text
        assert f"failback of run {again.id}" in text or again.id in text
        code, text = run("report", "--journal", str(path), "--json")
        states = {entry["run_id"]: entry["state"] for entry in json.loads(text)}
        assert states == {undone.id: "undone", again.id: "failed_back", back.id: "committed"}
