"""The journal itself: the SQLite store and its schema versions, the history it gives, what it
refuses, group commit, and resume's own rules (what can be resumed, callables, plan steps)."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import attrs
import pytest

from journal_support import (
    DEPENDENCIES,
    STORES,
    JournalStore,
    journal_folder,
    journal_store,
    scene,
    small_plan,
)
from vmfailover import Runner
from vmfailover.engine import journal_schema, postgres_journal, sqlite_journal
from vmfailover.engine.journal import EntryKind, Journal, JournaledRun, JournalEntry, RunSummary
from vmfailover.engine.journal_codec import decode, dumps, encode, loads
from vmfailover.engine.journal_writer import JournalWriter
from vmfailover.engine.replication_results import JobResult
from vmfailover.engine.results import RunResult
from vmfailover.engine.run_record import read_record, write_record
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.errors import ConflictError, NotFoundError, ValidationError
from vmfailover.model import Credentials, FailoverKind
from vmfailover.plan import Approval, Step
from vmfailover.policy.probes import CallableProbe
from vmfailover.policy.sequencer import StartOrder
from vmfailover.testing import SimulatedCrash
from vmfailover.testing.postgres import postgres_server

__all__ = ["postgres_server"]  # the fixture, for the PostgreSQL store


@pytest.fixture
def folder() -> Iterator[Path]:
    with journal_folder() as path:
        yield path


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[JournalStore]:
    with journal_store(request.param, request) as opened:
        yield opened


def failover(store: JournalStore, kind: str = "regular", **runner: object) -> tuple[Journal, str]:
    journal = store.open()
    report = Runner(scene(kind), journal=journal, poll_interval=15, **runner).failover(  # type: ignore[arg-type]
        small_plan(), kind=kind
    )
    assert report.result is RunResult.SUCCEEDED
    return journal, report.run_id


# --- the store -----------------------------------------------------------------------------------


def test_a_new_journal_is_written_ahead_and_versioned(folder: Path) -> None:
    with SQLiteJournal(folder / "new.db") as journal:
        assert journal.schema_version == sqlite_journal.SCHEMA_VERSION
        assert journal.runs() == ()
    with sqlite3.connect(folder / "new.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert {"vmfailover_schema", "vmfailover_runs", "vmfailover_entries"} <= tables
    with SQLiteJournal(folder / "new.db") as again:  # opening it again changes nothing
        assert again.schema_version == sqlite_journal.SCHEMA_VERSION


def test_a_journal_of_a_newer_schema_is_refused_naming_both_versions(
    store: JournalStore,
) -> None:
    store.open("j").close()
    store.execute("j", "INSERT INTO vmfailover_schema VALUES (7, '9.0.0', '2030-01-01T00:00:00')")
    with pytest.raises(ConflictError) as refused:
        store.open("j")
    message = str(refused.value)
    assert "schema version 7" in message and "9.0.0" in message
    assert f"up to {sqlite_journal.SCHEMA_VERSION}" in message


def _store_module(store: JournalStore) -> object:
    return sqlite_journal if store.kind == "sqlite" else postgres_journal


def test_an_older_journal_is_migrated_on_open(
    store: JournalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, run_id = failover(store)
    journal.close()
    # The next schema version adds a column; its migration runs when this journal is opened.
    current = sqlite_journal.SCHEMA_VERSION
    monkeypatch.setattr(_store_module(store), "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(
        journal_schema.MIGRATIONS, current, ("ALTER TABLE vmfailover_runs ADD COLUMN note TEXT",)
    )
    with store.open() as migrated:
        assert migrated.schema_version == current + 1  # type: ignore[attr-defined]
        assert migrated.report(run_id).summary.result is RunResult.SUCCEEDED
    assert store.execute("journal", "SELECT note FROM vmfailover_runs") == [(None,)]
    versions = store.execute("journal", "SELECT version FROM vmfailover_schema ORDER BY version")
    assert versions == [(current,), (current + 1,)]


def test_an_older_journal_without_a_migration_is_refused(
    store: JournalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.open("j").close()
    current = sqlite_journal.SCHEMA_VERSION
    monkeypatch.setattr(_store_module(store), "SCHEMA_VERSION", current + 2)
    monkeypatch.delitem(journal_schema.MIGRATIONS, current + 1, raising=False)
    with pytest.raises(ConflictError, match=rf"schema version {current} .* cannot migrate"):
        store.open("j")


def test_tables_of_a_journal_without_its_version_table_are_refused(store: JournalStore) -> None:
    store.open("j").close()
    store.execute("j", "DROP TABLE vmfailover_schema")
    with pytest.raises(ValidationError, match="not a vmfailover journal"):
        store.open("j")


def test_what_is_not_a_journal_is_refused_by_name(folder: Path) -> None:
    text = folder / "notes.txt"
    text.write_text("these are not the journals you are looking for\n" * 20)
    with pytest.raises(ValidationError, match="not a vmfailover journal"):
        SQLiteJournal(text)
    other = folder / "other.db"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE inventory (name TEXT)")
    with pytest.raises(ValidationError, match="tables: inventory"):
        SQLiteJournal(other)
    with pytest.raises(ValidationError, match="folder does not exist"):
        SQLiteJournal(folder / "missing" / "j.db")
    with pytest.raises(ValidationError, match="is a folder"):
        SQLiteJournal(folder)
    with pytest.raises(ValidationError, match="file path"):
        SQLiteJournal(42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not a journal"):
        Runner(scene("test"), journal="journal.db")  # type: ignore[arg-type]


def test_a_closed_journal_and_a_run_stored_twice_are_conflicts(store: JournalStore) -> None:
    journal = store.open("j")
    summary = RunSummary("run-1", FailoverKind.TEST, "crm", scene("test").clock.now(), "running")
    journal.begin(summary, "{}")
    with pytest.raises(ConflictError, match="holds run run-1 already"):
        journal.begin(summary, "{}")
    journal.close()
    with pytest.raises(ConflictError, match="closed"):
        journal.runs()


# --- the history ----------------------------------------------------------------------------------


def test_runs_and_report_give_the_history_of_runs(store: JournalStore) -> None:
    journal, run_id = failover(store, "test")
    later = scene("planned")
    later.clock.advance(3600)  # type: ignore[attr-defined]  # runs are listed by their start
    runner = Runner(later, journal=journal, poll_interval=15)
    planned = runner.failover(small_plan(), kind="planned")
    runs = journal.runs()
    assert [(r.run_id, r.kind.value) for r in runs] == [
        (run_id, "test"),
        (planned.run_id, "planned"),
    ]
    latest = runs[-1]
    assert latest.plan == "crm" and latest.backend == "memory"
    assert latest.state == "failed_over" and latest.result is RunResult.SUCCEEDED
    assert latest.ended_at is not None and latest.ended_at > latest.started_at
    assert latest.rto_seconds == pytest.approx(planned.rto_seconds)
    assert latest.rto_target_seconds == 1800.0 and latest.rto_met is True
    assert not latest.interrupted
    history = journal.report(planned.run_id)
    assert [(c.old, c.new) for c in history.states] == [
        ("validating", "running"),
        ("running", "failed_over"),
    ]
    assert history.report == planned
    assert history.calls == 5 * 4  # shutdown, sync, revert, address, power on per VM
    data = json.loads(history.to_json())
    assert data["result"] == "succeeded" and data["report"]["vms"][0]["vm"] == "dc01"
    text = str(history)
    assert planned.run_id in text and "failed_over" in text and "dc01" in text
    with pytest.raises(NotFoundError, match="no run 'run-x'"):
        journal.report("run-x")


def test_a_cleaned_up_test_run_says_so(store: JournalStore) -> None:
    journal = store.open("j")
    runner = Runner(scene("test"), journal=journal, poll_interval=15)
    run = runner.start(small_plan(), kind="test", background=False)
    run.wait()
    runner.cleanup(run)
    history = journal.report(run.id)
    assert history.summary.state == "cleaned_up"
    assert history.report is not None and history.report.cleanup is not None
    assert history.report.cleanup.restored


# --- what it stores -------------------------------------------------------------------------------


def test_the_record_round_trips_the_compiled_plan(folder: Path) -> None:
    backend = scene("planned")
    runner = Runner(backend)
    plan = small_plan()
    facts = runner._facts(plan)
    compiled = plan.compile(
        facts.inventory, "planned", points=facts.points, now=facts.now, point_limit=None
    )
    text = write_record(
        compiled,
        reachable_sources=frozenset({"vm-001"}),
        weights={"dc01": 45.0},
        inventory_before=facts.inventory,
        backend="memory",
    )
    record = read_record(text)
    assert record.compiled.vms == compiled.vms
    assert record.compiled.kind is compiled.kind
    assert list(record.compiled.order) == list(compiled.order)
    assert record.compiled.warnings == compiled.warnings
    assert record.compiled.plan.rto == plan.rto and record.compiled.plan.vms == plan.vms
    assert record.inventory_before == facts.inventory
    assert record.reachable_sources == {"vm-001"} and record.weights == {"dc01": 45.0}
    with pytest.raises(ValidationError, match="format"):
        read_record(json.dumps({"format": 99}))


def test_the_codec_refuses_what_it_does_not_hold() -> None:
    with pytest.raises(ValidationError, match="Credentials"):
        encode(Credentials("admin", "hunter2"))  # no secret can be written by accident
    with pytest.raises(ValidationError, match="finite"):
        encode(float("nan"))
    with pytest.raises(ValidationError, match="cannot store a object"):
        encode(object())
    with pytest.raises(ValidationError, match="unknown class 'Credentials'"):
        decode({"$": "Credentials", "username": "a", "secret": "b"})
    with pytest.raises(ValidationError, match="not JSON"):
        loads("{")
    assert loads(dumps(("a", frozenset({"x", "y"}), {"k": 1.5}))) == (
        "a",
        frozenset({"x", "y"}),
        {"k": 1.5},
    )


# --- group commit ---------------------------------------------------------------------------------


class SlowJournal(Journal):
    """Counts commits; each takes 20 ms, like a slow disk."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def begin(self, summary: RunSummary, record: str) -> None:
        pass

    def append(self, entries: Sequence[JournalEntry]) -> None:
        time.sleep(0.02)
        self.batches.append(len(entries))

    def runs(self) -> tuple[RunSummary, ...]:
        return ()

    def load(self, run_id: str, kinds: object = None) -> JournaledRun:
        raise NotFoundError(run_id)

    def stored_report(self, run_id: str) -> str | None:
        return None

    def record_replication(self, result: JobResult) -> None:
        pass

    def replication_runs(
        self, job: str | None = None, *, since: datetime | None = None
    ) -> tuple[JobResult, ...]:
        return ()

    def close(self) -> None:
        pass


def test_concurrent_durable_writes_share_commits() -> None:
    slow = SlowJournal()
    writer = JournalWriter(slow)
    start = threading.Barrier(16)

    def write(number: int) -> None:
        start.wait()
        entry = JournalEntry("run", number, EntryKind.INTENT, scene("test").clock.now())
        writer.write([entry], durable=True)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert sum(slow.batches) == 16
    assert len(slow.batches) < 16  # entries that queued during a commit shared the next one


class BrokenJournal(SlowJournal):
    def append(self, entries: Sequence[JournalEntry]) -> None:
        raise OSError("disk full")


def test_no_action_without_a_durable_intent() -> None:
    backend = scene("regular")
    backend.faults.per_operation.clear()
    report = Runner(backend, journal=BrokenJournal(), poll_interval=15).failover(
        small_plan(), kind="regular"
    )
    assert report.result is RunResult.FAILED
    assert "disk full" in (report.vm("dc01").reason or "")
    changed = {op for op in backend.faults.per_operation if op not in ("readiness", "inventory")}
    assert changed <= {"recovery_points", "recovery_point_limit"}, changed


# --- what can be resumed --------------------------------------------------------------------------


def test_only_an_interrupted_run_can_be_resumed(store: JournalStore) -> None:
    journal, run_id = failover(store)
    runner = Runner(scene("regular"), journal=journal)
    with pytest.raises(ConflictError, match=f"run {run_id} is failed_over.*interrupted"):
        runner.resume(run_id)
    with pytest.raises(NotFoundError, match="no run 'run-none'"):
        runner.resume("run-none")
    with pytest.raises(ConflictError, match="no journal"):
        Runner(scene("regular")).resume(run_id)


def test_a_run_still_running_here_is_not_interrupted(store: JournalStore) -> None:
    journal = store.open("j")
    backend = scene("test")
    plan = small_plan()
    gated = attrs.evolve(plan, steps=[Approval("go", vm="db01")])
    runner = Runner(backend, journal=journal, poll_interval=15)
    run = runner.start(gated, kind="test")
    deadline = time.monotonic() + 30
    while "go" not in run.waiting_approvals and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ConflictError, match="running in this process"):
        Runner(backend, journal=journal).resume(run.id)
    run.approve("go")
    assert run.wait(30).result is RunResult.SUCCEEDED


def counting_step(path: Path) -> Step:
    """An argv step that appends a line to ``path`` each time it runs."""
    code = f"open({str(path)!r}, 'a').write('ran\\n')"
    return Step("note", [sys.executable, "-c", code], vm="db01", when="before")


def test_a_finished_plan_step_is_not_run_again_on_resume(store: JournalStore) -> None:
    notes = store.folder / "notes.txt"
    stepped = attrs.evolve(small_plan(), steps=[counting_step(notes)])
    backend = scene("regular")
    journal = store.open("j")
    original = backend.power_on

    def power_on(vm_id: str) -> None:  # db01's step runs before its power-on: die there
        if vm_id == "vm-003-replica":
            raise SimulatedCrash("dies as db01 powers on")
        original(vm_id)

    backend.power_on = power_on  # type: ignore[method-assign]
    crashed = Runner(backend, journal=journal, poll_interval=15)
    with pytest.raises(SimulatedCrash):
        crashed.failover(stepped, kind="regular")
    assert crashed._writer is not None
    crashed._writer.abandon()
    backend.power_on = original  # type: ignore[method-assign]
    assert notes.read_text() == "ran\n"
    resumed = Runner(backend, journal=store.open("j"), poll_interval=15)
    report = resumed.resume(journal.runs()[0].run_id, background=False).wait()
    assert report.result is RunResult.SUCCEEDED
    assert notes.read_text() == "ran\n"  # not again


def test_callables_need_the_plan_again(store: JournalStore) -> None:
    ran: list[str] = []
    plan = small_plan()
    hello = Step("hello", lambda context: ran.append(context.vm or ""), vm="app01")
    order = StartOrder()
    for name, after in DEPENDENCIES.items():
        probe = CallableProbe(lambda probed: probed.readiness.ready) if name == "mon01" else None
        order.add(name, after=after, probe=probe)
    stepped = attrs.evolve(plan, order=order, steps=[hello])
    backend = scene("regular")
    journal = store.open("j")
    base = backend.faults.calls
    backend.faults.crash_at(base + 12)
    with pytest.raises(SimulatedCrash):
        Runner(backend, journal=journal, poll_interval=15).failover(stepped, kind="regular")
    backend.faults.crash_at(None)
    run_id = journal.runs()[0].run_id
    runner = Runner(backend, journal=store.open("j"), poll_interval=15)
    with pytest.raises(ValidationError) as refused:
        runner.resume(run_id)
    items = [finding.item for finding in refused.value.findings]
    assert len(items) == 2 and items[1] == "step 'hello'"
    assert items[0].startswith("probe of VM 'mon01' (") and "<lambda>" in items[0]
    assert all("plan=" in (finding.hint or "") for finding in refused.value.findings)
    with pytest.raises(ValidationError, match="not the journaled plan"):
        runner.resume(run_id, plan=type(plan)("other", ["dc01"]))
    report = runner.resume(run_id, plan=stepped, background=False).wait()
    assert report.result is RunResult.SUCCEEDED
    assert ran == ["app01"]


def test_the_journal_page_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "journal.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)\n```", page, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/journal.md", "exec"), {})
    out = capsys.readouterr().out
    assert " running\n" in out
    assert "succeeded, 3/3 VMs ready" in out and "running     failed_over" in out
