"""A plan's deadline outlives the process that set it: journaled when the recovery ends, read
back and acted on by another process (attach, resume, act_on_due), cancelled by a decision taken
anywhere, and acted on once when two processes race. On SQLite and on the real PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from vmfailover import Runner
from vmfailover.backends.memory import MemoryBackend
from vmfailover.cli.demo import lab_plan
from vmfailover.engine import deadlines
from vmfailover.engine.aftercare_results import Deadline
from vmfailover.engine.journal import EntryKind, Journal
from vmfailover.engine.postgres_journal import PostgresJournal
from vmfailover.engine.run_state import RunState
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.model import ReplicaState
from vmfailover.testing import lab
from vmfailover.testing.postgres import postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server"]

OpenJournal = Callable[[], Journal]


@pytest.fixture(params=["sqlite", "postgres"])
def open_journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenJournal]:
    """Opens the journal the test's processes share: each call a connection of its own, as
    another process would open it."""
    made: list[Journal] = []
    if request.param == "sqlite":

        def make() -> Journal:
            made.append(SQLiteJournal(tmp_path / "journal.db"))
            return made[-1]
    else:
        dsn = request.getfixturevalue("postgres_dsn")

        def make() -> Journal:
            made.append(PostgresJournal(dsn))
            return made[-1]

    yield make
    for journal in made:
        journal.close()


def synced_lab() -> MemoryBackend:
    backend = lab()
    for replica in backend.inventory().replicas:
        backend.sync(replica.id)
    return backend


def ended_run(backend: MemoryBackend, journal: Journal, **policy: str) -> tuple[str, Deadline]:
    """A planned failover whose process then ends (as `vmfailover run` does): its runner keeps
    no deadline thread, so only the journal holds the deadline."""
    runner = Runner(backend, journal=journal, poll_interval=2.0, keep_deadlines=False)
    run = runner.start(lab_plan(**policy), kind="planned", background=False)
    report = run.wait()
    runner.close()
    assert run.state is RunState.FAILED_OVER and report.deadline is not None
    return run.id, report.deadline


def later_process(backend: MemoryBackend, open_journal: OpenJournal, **options: bool) -> Runner:
    return Runner(backend, journal=open_journal(), poll_interval=2.0, **options)


def eventually(check: Callable[[], bool], seconds: float = 30.0) -> None:
    limit = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < limit, "not within the time"
        time.sleep(0.01)


def replica_states(backend: MemoryBackend) -> set[ReplicaState]:
    return {replica.state for replica in backend.inventory().replicas}


def test_the_deadline_is_journaled_with_its_due_time_and_read_back_elsewhere(
    open_journal: OpenJournal,
) -> None:
    backend = synced_lab()
    run_id, deadline = ended_run(backend, open_journal(), auto_commit="4h")
    other = open_journal()
    (entry,) = other.load(run_id, [EntryKind.DEADLINE]).entries
    assert entry.payload() == {"action": "commit", "at": deadline.at.isoformat()}
    history = other.report(run_id)
    assert history.report is not None and history.report.finished_at is not None
    assert deadline.at - history.report.finished_at == timedelta(hours=4)
    assert history.report.deadline == deadline
    assert "uncommitted: automatic commit at" in history.report.summary()
    assert history.as_dict()["report"]["deadline"]["action"] == "commit"
    assert deadlines.pending_deadlines(other) == {run_id: deadline}
    assert deadlines.due_deadlines(other, deadline.at - timedelta(seconds=1)) == {}
    assert deadlines.due_deadlines(other, deadline.at) == {run_id: deadline}


@pytest.mark.parametrize(
    ("setting", "end", "replicas"),
    [
        ("auto_commit", RunState.COMMITTED, {ReplicaState.COMMITTED}),
        ("auto_undo", RunState.UNDONE, {ReplicaState.READY}),
    ],
)
def test_a_later_process_acts_on_a_due_deadline_once(
    open_journal: OpenJournal, setting: str, end: RunState, replicas: set[ReplicaState]
) -> None:
    backend = synced_lab()
    run_id, deadline = ended_run(backend, open_journal(), **{setting: "2h"})
    runner = later_process(backend, open_journal, keep_deadlines=False)
    assert deadlines.act_on_due(runner, deadline.at - timedelta(seconds=1)) == ()  # not yet
    (outcome,) = deadlines.act_on_due(runner, deadline.at)
    assert (outcome.run_id, outcome.acted, outcome.finished) == (run_id, True, True)
    assert outcome.action is deadline.action and outcome.due == deadline.at
    assert outcome.as_dict() == {
        "run_id": run_id,
        "action": deadline.action.value,
        "due": deadline.at.isoformat(),
        "acted": True,
        "finished": True,
        "message": outcome.message,
    }
    runner.close()
    assert replica_states(backend) == replicas
    reader = open_journal()
    history = reader.report(run_id)
    assert history.summary.state == end.value
    assert history.report is not None and history.report.deadline is None
    decided = history.report.commit if end is RunState.COMMITTED else history.report.undo
    assert decided is not None and decided.by == "deadline"
    claims = [e.payload() for e in reader.load(run_id, [EntryKind.DEADLINE]).entries]
    assert len(claims) == 2 and "fired_by" in claims[1]
    assert deadlines.pending_deadlines(reader) == {}
    again = later_process(backend, open_journal, keep_deadlines=False)
    assert deadlines.act_on_due(again, deadline.at + timedelta(days=1)) == ()
    again.close()


@pytest.mark.parametrize("past", [False, True])
def test_attach_in_a_new_process_arms_the_deadline_again(
    open_journal: OpenJournal, past: bool
) -> None:
    backend = synced_lab()
    run_id, deadline = ended_run(backend, open_journal(), auto_commit="3h")
    if past:  # the new process starts after the deadline: it fires at once
        backend.clock.advance(4 * 3600)
    runner = later_process(backend, open_journal)
    run = runner.attach(run_id)
    assert run.deadline == deadline or run.state is RunState.COMMITTED
    # on the lab's virtual clock the deadline comes as soon as nothing else holds time back
    eventually(lambda: run.state is RunState.COMMITTED)
    assert backend.clock.now() >= deadline.at
    assert run.report is not None and run.report.commit is not None
    assert run.report.commit.by == "deadline" and run.report.commit.done
    assert replica_states(backend) == {ReplicaState.COMMITTED}
    runner.close()
    assert deadlines.pending_deadlines(open_journal()) == {}


def test_a_decision_in_another_process_cancels_the_deadline_kept_here(
    open_journal: OpenJournal, caplog: pytest.LogCaptureFixture
) -> None:
    backend = synced_lab()
    keeper = later_process(backend, open_journal)  # keeps the deadline in a thread
    with backend.clock.enlist():  # time stands still while the person decides elsewhere
        run = keeper.start(lab_plan(auto_commit="1h"), kind="planned", background=False)
        deadline = run.wait().deadline
        assert deadline is not None and run.deadline == deadline
        person = later_process(backend, open_journal, keep_deadlines=False)
        decided = person.attach(run.id)
        report = person.undo(decided)
        assert report.undo is not None and report.undo.restored
        person.close()
        commits = backend.faults.per_operation["commit_failover"]
    with caplog.at_level(logging.WARNING, logger="vmfailover.deadlines"):
        for thread in threading.enumerate():
            if thread.name == f"vmfailover-commit-{run.id}":
                thread.join(30)
                assert not thread.is_alive()
    assert backend.clock.now() >= deadline.at
    assert backend.faults.per_operation["commit_failover"] == commits == 0
    assert replica_states(backend) == {ReplicaState.READY}
    assert "decided meanwhile (the journal says the run is undone)" in caplog.text
    assert run.deadline is None
    keeper.close()
    assert open_journal().report(run.id).summary.state == "undone"


def test_of_two_processes_racing_for_a_deadline_one_acts(
    open_journal: OpenJournal, caplog: pytest.LogCaptureFixture
) -> None:
    backend = synced_lab()
    run_id, deadline = ended_run(backend, open_journal(), auto_undo="1h")
    first = later_process(backend, open_journal, keep_deadlines=False)
    second = later_process(backend, open_journal, keep_deadlines=False)
    mine, theirs = first.attach(run_id), second.attach(run_id)
    assert mine.deadline == theirs.deadline == deadline
    assert second.journal is not None
    stale = second.journal.load(run_id, deadlines.DEADLINE_KINDS)  # read before `first` acts
    won = deadlines.fire(first, mine, deadline)
    assert won.acted and won.finished
    # `second` read the journal before `first` claimed it: its claim takes the same number
    reader = second.journal
    second.journal = _Stale(reader, stale)  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="vmfailover.deadlines"):
        lost = deadlines.fire(second, theirs, deadline)
    second.journal = reader
    assert not lost.acted and "another process acts on it (its claim was refused" in lost.message
    assert "refused" in caplog.text
    assert theirs.state is RunState.FAILED_OVER  # untouched here
    assert backend.faults.per_operation["undo_failover"] == len(lab_plan().vms)  # once each
    # the loser's journal still works: a later read and write go through
    assert second.journal.report(run_id).summary.state == "undone"
    second.close()
    first.close()


def test_two_processes_firing_at_the_same_moment_act_once(open_journal: OpenJournal) -> None:
    backend = synced_lab()
    run_id, deadline = ended_run(backend, open_journal(), auto_commit="1h")
    runners = [later_process(backend, open_journal, keep_deadlines=False) for _ in range(2)]
    runs = [runner.attach(run_id) for runner in runners]
    start = threading.Barrier(2)
    outcomes: list[deadlines.DeadlineOutcome] = []

    def fire(index: int) -> None:
        start.wait(10)
        outcomes.append(deadlines.fire(runners[index], runs[index], deadline))

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcome.acted for outcome in outcomes) == [False, True]
    assert backend.faults.per_operation["commit_failover"] == len(lab_plan().vms)
    assert replica_states(backend) == {ReplicaState.COMMITTED}
    for runner in runners:
        runner.close()


def test_bad_arguments_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="Runner keep_deadlines"):
        Runner(lab(), keep_deadlines="no")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="pending_deadlines: needs a Journal"):
        deadlines.pending_deadlines("journal.db")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="act_on_due: needs a Runner"):
        deadlines.act_on_due(None)  # type: ignore[arg-type]
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        runner = Runner(lab(), journal=journal)
        naive = datetime(2026, 3, 2, 6, 0)  # the bad input under test: no time zone
        with pytest.raises(ValidationError, match="act_on_due now: must be a datetime with a"):
            deadlines.act_on_due(runner, naive)
        with pytest.raises(ValidationError, match="due_deadlines now"):
            deadlines.due_deadlines(journal, "now")  # type: ignore[arg-type]
        runner.close()
    with pytest.raises(ConflictError, match="needs a runner with a journal"):
        deadlines.act_on_due(Runner(lab()))


class _Stale:
    """A journal whose run reads return what was read before (another process's view)."""

    def __init__(self, inner: Journal, loaded: object) -> None:
        self._inner = inner
        self._loaded = loaded

    def load(self, run_id: str, kinds: object = None) -> object:
        return self._loaded

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)
