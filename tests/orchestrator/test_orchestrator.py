"""The orchestrator in one process: runs under the plan's lease, refuses a plan another holds,
hands runs over when it stops, takes over interrupted runs of leased plans (and only those), and
fences its journal as it fences its backend. The tests with real processes are next door."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from journal_support import DEPENDENCIES, Observed, scene, small_plan
from vmfailover import Orchestrator, Runner, SQLiteJournal, SQLiteLease, StartOrder, Step
from vmfailover.engine.events import RunEvent, RunFinished
from vmfailover.engine.fenced_journal import FencedJournal
from vmfailover.engine.journal import EntryKind, JournalEntry
from vmfailover.engine.lease import Lease, LeaseLostError, LeaseUnavailableError
from vmfailover.engine.lease_keeper import LeaseKeeper
from vmfailover.engine.results import RunResult
from vmfailover.errors import ConflictError, ValidationError
from vmfailover.testing import SimulatedCrash

#: Readiness polled every this many lab seconds (the lab runs in virtual time).
RUNNER = {"poll_interval": 15.0}


def make(journal: SQLiteJournal, backend: Any, lease: Lease, name: str) -> Orchestrator:
    return Orchestrator(
        journal, backend, lease, name=name, lease_seconds=2, poll=0.05, runner_options=RUNNER
    )


def test_a_submitted_run_ends_under_its_lease_which_is_then_given_back(tmp_path: Path) -> None:
    backend = scene("regular")
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        lease = SQLiteLease(tmp_path / "lease.db")
        site_b = make(journal, backend, lease, "site-b")
        run = site_b.submit(small_plan(), "regular")
        (held,) = site_b.held()
        assert (held.run_id, held.plan, held.token.number, held.resumed) == (
            run.id,
            "crm",
            1,
            False,
        )
        report = run.wait(60)
        assert report.result is RunResult.SUCCEEDED, report
        assert site_b.run_once() == ()  # reaps the run: nothing to take over
        assert site_b.held() == ()
        state = lease.state("crm")
        assert state is not None and state.released and state.token.number == 1
        (summary,) = journal.runs()
        assert summary.result is RunResult.SUCCEEDED and not summary.interrupted
        assert journal.report(run.id).report == report
        site_b.stop()
        lease.close()
    assert backend.faults.per_operation["power_on"] == len(small_plan().vms)


def test_a_plan_held_by_another_orchestrator_is_refused_naming_the_holder(tmp_path: Path) -> None:
    backend = scene("regular")
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        site_a = make(journal, backend, SQLiteLease(tmp_path / "lease.db"), "site-a")
        site_b = make(journal, backend, SQLiteLease(tmp_path / "lease.db"), "site-b")
        run = site_b.submit(small_plan(), "regular")
        with pytest.raises(ConflictError, match=r"another orchestrator.*site-b/"):
            site_a.submit(small_plan(), "regular")
        with pytest.raises(ConflictError, match="runs plan 'crm' already"):
            site_b.submit(small_plan(), "regular")
        assert run.wait(60).result is RunResult.SUCCEEDED
        assert site_a.run_once() == ()  # the run ended: nothing to take over
        site_b.stop()
        site_a.stop()
        assert len(journal.runs()) == 1
    assert backend.faults.per_operation["power_on"] == len(small_plan().vms)


def test_a_crashed_run_is_handed_over_and_finished_by_the_other_orchestrator(
    tmp_path: Path, lease_factory: Callable[[], Lease]
) -> None:
    plan = small_plan()
    backend = Observed(scene("regular"), plan)
    backend.crash_after = 5  # the orchestrator's run dies after its fifth change
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        site_a = make(journal, backend, lease_factory(), "site-a")
        site_b = make(journal, backend, lease_factory(), "site-b")
        run = site_a.submit(plan, "regular")
        with pytest.raises(SimulatedCrash):
            run.wait(60)
        backend.crash_after = None
        (summary,) = journal.runs()
        assert summary.interrupted
        assert site_b.run_once() == ()  # site-a still holds the plan's lease
        site_a.stop()  # hands over: the lease is released at once
        assert site_b.run_once() == (run.id,)
        (held,) = site_b.held()
        assert held.resumed and held.token.number == 2
        report = held.run.wait(60)
        site_b.stop()
        assert report.result is RunResult.SUCCEEDED, report
        assert backend.check({vm.vm: vm.ready_at for vm in report.vms}) == []
        assert sorted(backend.power_ons.values()) == [1] * len(plan.vms)  # none twice
        (summary,) = journal.runs()
        assert summary.result is RunResult.SUCCEEDED
        resumed = journal.load(run.id, [EntryKind.RESUMED]).entries
        assert len(resumed) == 1


def test_runs_of_plans_never_leased_are_not_taken_over(tmp_path: Path) -> None:
    plan = small_plan()
    backend = Observed(scene("regular"), plan)
    backend.crash_after = 3
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        plain = Runner(backend, journal=journal, poll_interval=15.0)  # type: ignore[arg-type]
        with pytest.raises(SimulatedCrash):
            plain.failover(plan, kind="regular")
        assert plain._writer is not None
        plain._writer.abandon()
        site_b = make(journal, backend, SQLiteLease(tmp_path / "lease.db"), "site-b")
        assert site_b.run_once() == ()
        assert site_b.held() == ()
        (summary,) = journal.runs()
        assert summary.interrupted  # left for `vmfailover resume`, whose owner check applies
        site_b.stop()


def test_serve_takes_over_and_stops_when_told(tmp_path: Path) -> None:
    plan = small_plan()
    backend = Observed(scene("regular"), plan)
    backend.crash_after = 6
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        site_a = make(journal, backend, SQLiteLease(tmp_path / "lease.db"), "site-a")
        run = site_a.submit(plan, "regular")
        with pytest.raises(SimulatedCrash):
            run.wait(60)
        backend.crash_after = None
        site_a.stop()
        site_b = make(journal, backend, SQLiteLease(tmp_path / "lease.db"), "site-b")
        finished = threading.Event()
        events: list[RunEvent] = []

        def observer(event: RunEvent) -> None:
            events.append(event)
            if isinstance(event, RunFinished):
                finished.set()
            raise RuntimeError("an observer that raises changes nothing")

        site_b.subscribe(observer)
        stop = threading.Event()
        service = threading.Thread(target=site_b.serve, args=(stop,))
        service.start()
        try:
            assert finished.wait(60)
            deadline = time.monotonic() + 30
            while site_b.held() and time.monotonic() < deadline:  # reaped once it ended
                time.sleep(0.05)
        finally:
            stop.set()
            service.join(30)
        assert not service.is_alive()
        assert site_b.held() == ()
        (summary,) = journal.runs()
        assert summary.result is RunResult.SUCCEEDED
        assert any(isinstance(event, RunFinished) for event in events)
        with pytest.raises(ConflictError, match="is stopped"):
            site_b.submit(plan, "regular")


def test_the_fenced_journal_writes_only_under_the_lease(tmp_path: Path) -> None:
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        plain = Runner(scene("regular"), journal=journal, poll_interval=15.0)
        run = plain.failover(small_plan(), kind="regular")
        plain.close()
        lease = SQLiteLease(tmp_path / "lease.db")
        keeper = LeaseKeeper(lease, "crm", ttl=2)
        keeper.acquire()
        fenced = FencedJournal(journal, keeper)
        last = journal.load(run.run_id).entries[-1]

        def entry(seq: int) -> JournalEntry:
            return JournalEntry(run.run_id, seq, EntryKind.APPROVAL, last.at, data="{}")

        fenced.append([entry(last.seq + 1)])
        keeper.fence_off("a newer holder took the plan")
        with pytest.raises(LeaseLostError, match="a newer holder"):
            fenced.append([entry(last.seq + 2)])
        assert journal.load(run.run_id).entries[-1].seq == last.seq + 1
        assert fenced.runs() == journal.runs()  # reads pass through
        keeper.release()
        lease.close()


class Flaky:
    """A fence whose store does not answer ``failures`` times, then confirms."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def check(self) -> None:
        if self.failures:
            self.failures -= 1
            raise LeaseUnavailableError("crm", "check", "connection refused")


def test_the_fenced_journal_rides_out_a_lease_store_that_does_not_answer(tmp_path: Path) -> None:
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        plain = Runner(scene("regular"), journal=journal, poll_interval=15.0)
        run = plain.failover(small_plan(), kind="regular")
        plain.close()
        last = journal.load(run.run_id).entries[-1]
        entry = JournalEntry(run.run_id, last.seq + 1, EntryKind.APPROVAL, last.at, data="{}")
        FencedJournal(journal, Flaky(2), patience=5).append([entry])
        assert journal.load(run.run_id).entries[-1].seq == last.seq + 1
        with pytest.raises(LeaseUnavailableError):
            FencedJournal(journal, Flaky(100), patience=0.3).append([entry])


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("name", "", "Orchestrator name"),
        ("name", 7, "Orchestrator name"),
        ("lease_seconds", math.nan, "lease_seconds"),
        ("lease_seconds", 0, "lease_seconds"),
        ("poll", math.inf, "Orchestrator poll"),
        ("poll", -1, "Orchestrator poll"),
        ("stop_timeout", "soon", "stop_timeout"),
        ("runner_options", {"speed": 3}, "unknown option"),
        ("runner_options", {"max_parallel": 0}, "max_parallel"),
        ("journal_for", "pg", "journal_for"),
    ],
)
def test_bad_settings_are_refused_where_they_enter(
    tmp_path: Path, option: str, value: object, match: str
) -> None:
    settings: dict[str, Any] = {"name": "site-b", option: value}
    with (
        SQLiteJournal(tmp_path / "journal.db") as journal,
        pytest.raises(ValidationError, match=match),
    ):
        Orchestrator(journal, scene("regular"), SQLiteLease(tmp_path / "lease.db"), **settings)


def test_bad_arguments_are_refused_with_our_errors(tmp_path: Path) -> None:
    backend = scene("regular")
    lease = SQLiteLease(tmp_path / "lease.db")
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        with pytest.raises(ValidationError, match="must be a Journal"):
            Orchestrator(object(), backend, lease, name="b")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="must be a Backend"):
            Orchestrator(journal, object(), lease, name="b")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="must be a Lease"):
            Orchestrator(journal, backend, object(), name="b")  # type: ignore[arg-type]
        site_b = make(journal, backend, lease, "site-b")
        with pytest.raises(ValidationError, match="needs a FailoverPlan"):
            site_b.submit("crm")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="kind"):
            site_b.submit(small_plan(), "sideways")
        with pytest.raises(ValidationError, match=r"threading\.Event"):
            site_b.serve(True)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="callable"):
            site_b.subscribe("print")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="needs a Journal"):
            FencedJournal(object(), Flaky(0))  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="patience"):
            FencedJournal(journal, Flaky(0), patience=math.nan)
        assert site_b.held() == () and lease.state("crm") is None  # nothing was taken
        site_b.stop()


def test_a_run_that_needs_its_plan_again_is_refused_once_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    order = StartOrder()
    for name, after in DEPENDENCIES.items():
        order.add(name, after=after)
    plan = attrs.evolve(
        small_plan(), order=order, steps=[Step("hello", lambda context: None, vm="app01")]
    )
    backend = Observed(scene("regular"), plan)
    backend.crash_after = 2
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        site_a = make(journal, backend, SQLiteLease(tmp_path / "lease.db"), "site-a")
        run = site_a.submit(plan, "regular")
        with pytest.raises(SimulatedCrash):
            run.wait(60)
        site_a.stop()
        site_b = make(journal, backend, SQLiteLease(tmp_path / "lease.db"), "site-b")
        assert site_b.run_once() == ()
        assert "step 'hello'" in site_b.refused[run.id]
        assert site_b.run_once() == ()  # not tried again
        assert sum("cannot take run" in r.message for r in caplog.records) == 1
        state = SQLiteLease(tmp_path / "lease.db").state("crm")
        assert state is not None and state.released and state.token.number == 2
        site_b.stop()
