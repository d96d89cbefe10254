"""Host failover and move back on a journaled runner: in the history, and resumed after a crash.

The crash-point test follows :mod:`test_resume_crash_points`: the lab loses host ``esx-a1`` and
its four VMs restart on the survivors, first uninterrupted; then, on a fresh lab each time, the
orchestrator crashes before every backend call and after every changing call, its journal
writer stops as a dead process's would, and a new runner over a new connection to the journal
resumes the run (or, when it died in its pre-flight, before anything was journaled, starts the
host failover again). The end state must be the uninterrupted one, with no VM started twice;
then the failover's report read back from the journal moves every VM home. Each store (an
SQLite file and a real PostgreSQL server) runs it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from journal_support import STORES, JournalStore, journal_store
from vmfailover import ConflictError, PowerState, Runner, RunResult
from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.journal import EntryKind
from vmfailover.engine.run_journal import MUTATING
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.testing import SimulatedCrash, lab
from vmfailover.testing.postgres import postgres_server

__all__ = ["postgres_server"]  # the fixture, for the PostgreSQL store

FAILED = "esx-a1"
ON_FAILED_HOST = {"dc01", "db01", "app01", "web01"}


@pytest.fixture(scope="module", params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[JournalStore]:
    with journal_store(request.param, request) as opened:
        yield opened


class Watched:
    """The lab backend, passed through, counting each VM's off -> on transitions and the
    changing calls that acted; ``crash_after`` crashes right after that many acted."""

    def __init__(self, inner: MemoryBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.clock = inner.clock
        self.crash_after: int | None = None
        self.changing_calls = 0
        self.started: Counter[str] = Counter()

    def __getattr__(self, attribute: str) -> Any:
        target = getattr(self.inner, attribute)
        if attribute.startswith("_") or not callable(target) or attribute not in MUTATING:
            return target

        @functools.wraps(target)
        def call(*args: Any, **kwargs: Any) -> Any:
            record = self.inner._store.vm(str(args[0]))
            was_running = record.running
            result = target(*args, **kwargs)
            if record.running and not was_running:
                self.started[record.vm.name] += 1
            self.changing_calls += 1
            if self.crash_after is not None and self.changing_calls == self.crash_after:
                raise SimulatedCrash(f"crash after changing call {self.changing_calls}")
            return result

        return call


def failed_lab() -> tuple[MemoryBackend, Watched]:
    backend = lab()
    backend.fail_host(FAILED)
    return backend, Watched(backend)


def placement(backend: MemoryBackend) -> dict[str, tuple[str, PowerState]]:
    return {vm.name: (vm.host, vm.power_state) for vm in backend.inventory().vms}


def test_host_failover_and_move_back_are_journaled_with_each_restart(tmp_path: Any) -> None:
    backend, _watched = failed_lab()
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        runner = Runner(backend, journal=journal, poll_interval=2.0)
        report = runner.host_failover("prod-cluster", [FAILED])
        assert report.result is RunResult.SUCCEEDED

        (summary,) = journal.runs()
        assert summary.run_id == report.run_id
        assert summary.plan == f"host failover of {FAILED}"
        assert (summary.state, summary.result) == ("failed_over", RunResult.SUCCEEDED)
        assert summary.started_at == report.started_at
        assert summary.ended_at == report.finished_at
        assert summary.rto_seconds == report.run.rto_seconds > 0
        assert not summary.interrupted
        history = journal.report(report.run_id)
        assert history.calls == len(ON_FAILED_HOST)  # one restart_on_host each
        assert history.report is not None
        assert history.report.result is RunResult.SUCCEEDED
        entries = journal.load(report.run_id).entries
        intents = {e.vm: e for e in entries if e.kind is EntryKind.INTENT}
        assert set(intents) == ON_FAILED_HOST
        assert {e.operation for e in intents.values()} == {"restart_on_host"}
        for name, intent in intents.items():
            vm = report.vm(name)
            assert intent.payload() == [vm.vm, vm.to_host]
        outcomes = [e for e in entries if e.kind is EntryKind.OUTCOME]
        assert sorted(e.payload()["intent"] for e in outcomes) == sorted(
            e.seq for e in intents.values()
        )
        finished = {e.vm: e.payload()["state"] for e in entries if e.kind is EntryKind.VM_FINISHED}
        assert finished == dict.fromkeys(ON_FAILED_HOST, "ready")

        # read back from the journal, in this process or another, it is the same report
        assert runner.host_failover_report(report.run_id) == report
        other = Runner(backend, journal=journal, poll_interval=2.0)
        assert other.host_failover_report(report.run_id).downtime == report.downtime

        backend.restore_host(FAILED)
        back = runner.move_back(other.host_failover_report(report.run_id))
        assert back.restored, back.differences
        moved, failover = journal.runs()[1], journal.runs()[0]
        assert failover.run_id == report.run_id
        assert moved.run_id == back.run_id
        assert moved.plan == f"move back after {report.run_id}"
        assert (moved.state, moved.result) == ("failed_over", RunResult.SUCCEEDED)
        migrations = [
            e
            for e in journal.load(back.run_id).entries
            if e.kind is EntryKind.INTENT and e.operation == "migrate_vm"
        ]
        assert {e.vm for e in migrations} == ON_FAILED_HOST
        assert all(e.payload()[1] == FAILED for e in migrations)
        runner.close()
        other.close()


def test_a_host_run_has_no_commit_undo_or_failback_and_resume_says_why(tmp_path: Any) -> None:
    backend, _watched = failed_lab()
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        runner = Runner(backend, journal=journal, poll_interval=2.0)
        report = runner.host_failover("prod-cluster", [FAILED])
        other = Runner(backend, journal=journal, poll_interval=2.0)
        run = other.attach(report.run_id)
        for action in (other.commit, other.undo, other.failback):
            with pytest.raises(ConflictError, match=r"host failover of esx-a1.*move_back"):
                action(run)
        with pytest.raises(ConflictError, match="nothing of it is in flight"):
            other.resume(report.run_id)
        runner.close()
        other.close()


def test_the_report_of_a_run_that_is_not_a_finished_host_failover_is_refused(
    tmp_path: Any,
) -> None:
    backend, watched = failed_lab()
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        watched.crash_after = 2
        crashed = Runner(watched, journal=journal, poll_interval=2.0)
        with pytest.raises(SimulatedCrash):
            crashed.host_failover("prod-cluster", [FAILED])
        assert crashed._writer is not None
        crashed._writer.abandon()
        (summary,) = journal.runs()
        assert summary.interrupted
        runner = Runner(backend, journal=journal, poll_interval=2.0)
        with pytest.raises(ConflictError, match=r"interrupted.*runner\.resume"):
            runner.host_failover_report(summary.run_id)
        runner.resume(summary.run_id, background=False).wait()
        backend.restore_host(FAILED)
        back = runner.move_back(runner.host_failover_report(summary.run_id))
        with pytest.raises(ConflictError, match=r"is the move back after .*not a host failover"):
            runner.host_failover_report(back.run_id)
        with pytest.raises(ConflictError, match="has no journal"):
            Runner(backend).host_failover_report(summary.run_id)
        runner.close()


def _uninterrupted(store: JournalStore) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    backend, watched = failed_lab()
    before = backend.faults.calls
    with store.open("host-clean") as journal:
        runner = Runner(watched, journal=journal, poll_interval=2.0)
        report = runner.host_failover("prod-cluster", [FAILED])
        assert report.result is RunResult.SUCCEEDED
        calls, changes = backend.faults.calls - before, watched.changing_calls
        after_failover = placement(backend)
        backend.restore_host(FAILED)
        back = runner.move_back(report)
        assert back.restored, back.differences
        runner.close()
    assert watched.started == dict.fromkeys(ON_FAILED_HOST, 1)
    return after_failover, placement(backend), calls, changes


def _crash_and_resume(
    store: JournalStore, label: str, *, before_call: int | None, after_change: int | None
) -> tuple[str, list[str], dict[str, Any], dict[str, Any]]:
    backend, watched = failed_lab()
    if before_call is not None:
        backend.faults.crash_at(backend.faults.calls + before_call)
    watched.crash_after = after_change
    name = f"host-{label}"
    journal = store.open(name)
    crashed = Runner(watched, journal=journal, poll_interval=2.0)
    with pytest.raises(SimulatedCrash):
        crashed.host_failover("prod-cluster", [FAILED])
    assert crashed._writer is not None
    crashed._writer.abandon()  # the process is gone: what it had not committed is lost
    journal.close()
    backend.faults.crash_at(None)
    watched.crash_after = None
    problems: list[str] = []
    with store.open(name) as reopened:
        runner = Runner(watched, journal=reopened, poll_interval=2.0)
        runs = reopened.runs()
        if runs:
            assert len(runs) == 1 and runs[0].interrupted, runs
            how, run_id = "resumed", runs[0].run_id
            resumed = runner.resume(run_id, background=False).wait()
            if resumed.result is not RunResult.SUCCEEDED:
                problems.append(f"the resumed run ended {resumed.result.value}: {resumed}")
        else:  # crashed in its pre-flight, before anything was journaled or touched
            how = "restarted"
            run_id = runner.host_failover("prod-cluster", [FAILED]).run_id
        summary = reopened.report(run_id).summary
        if summary.interrupted or summary.result is not RunResult.SUCCEEDED:
            problems.append(f"the journal says {summary}")
        report = runner.host_failover_report(run_id)
        if {r.name for r in report.vms if r.restarted} != ON_FAILED_HOST:
            problems.append(f"the report read back is {report.summary()}")
        after_failover = placement(backend)
        twice = {vm: n for vm, n in watched.started.items() if n > 1}
        if twice:
            problems.append(f"started more than once: {twice}")
        backend.restore_host(FAILED)
        back = runner.move_back(report)
        if not back.restored:
            problems.append(f"move back did not restore: {back.differences}")
        runner.close()
    return how, problems, after_failover, placement(backend)


def test_crash_at_every_point_of_a_host_failover_then_resume(
    store: JournalStore, capsys: Any
) -> None:
    expected_failover, expected_home, calls, changes = _uninterrupted(store)
    assert changes == len(ON_FAILED_HOST)  # one restart each
    points = [(f"before-{n}", n, None) for n in range(1, calls + 1)]
    points += [(f"after-{m}", None, m) for m in range(1, changes + 1)]
    counted: Counter[str] = Counter()
    failures: list[str] = []
    for label, before_call, after_change in points:
        how, problems, after_failover, home = _crash_and_resume(
            store, label, before_call=before_call, after_change=after_change
        )
        counted[how] += 1
        if after_failover != expected_failover:
            problems.append(f"after the failover {after_failover} != {expected_failover}")
        if home != expected_home:
            problems.append(f"after the move back {home} != {expected_home}")
        failures += [f"crash {label}: {problem}" for problem in problems]
    assert failures == [], "\n".join(failures[:20])
    assert counted["resumed"] > counted["restarted"] > 0
    with capsys.disabled():
        print(
            f"\nhost failover on {store.kind}: {len(points)} crash points covered "
            f"({calls} before a backend call, {changes} after a restart acted); "
            f"{counted['resumed']} resumed from the journal, {counted['restarted']} crashed in "
            "the pre-flight and started again; each then moved back home from its journaled report"
        )
