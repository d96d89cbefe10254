"""A move back on a journaled runner: its report read back, and resumed after a crash.

A three-host cluster loses ``h1``; its VMs restart elsewhere (one where it cannot move back live,
one where it can, one no survivor can take), then ``h1`` answers again and they move home: one
cold (shut down, moved, started), one live, one started where it was. First uninterrupted; then,
on a fresh cluster each time, the move back crashes before every backend call and after every
changing call, its journal writer stops as a dead process's would, and a new runner over a new
connection to the journal resumes the move back (or, when it died before anything was journaled,
moves back again). :meth:`Runner.move_back_report` must then give the report the uninterrupted
move back gave: how each VM went home, from where to where, its outcome, and the proof that the
original placement is restored; no VM may start more often than it did uninterrupted. Each store
(an SQLite file and a real PostgreSQL server) runs it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from journal_support import STORES, JournalStore, journal_store
from test_host_failover_journal import Watched
from vmfailover import (
    ClusterPolicy,
    ConflictError,
    HostFailoverReport,
    MoveBack,
    MoveBackReport,
    PowerState,
    Runner,
    RunResult,
)
from vmfailover.backends.memory import MemoryBackend
from vmfailover.clock import VirtualClock
from vmfailover.engine.journal import EntryKind
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.model import VM, Nic
from vmfailover.testing import SimulatedCrash
from vmfailover.testing.postgres import postgres_server

__all__ = ["postgres_server"]  # the fixture, for the PostgreSQL store

POLICY = ClusterPolicy(anti_affinity=[{"app1", "app3"}])


@pytest.fixture(scope="module", params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[JournalStore]:
    with journal_store(request.param, request) as opened:
        yield opened


def cluster() -> MemoryBackend:
    """h1 and h2 of one CPU family, h3 of another (nothing moves live onto or off it); h1 runs
    app1, app2 and big, which no survivor has the memory for; h2 runs app3."""
    backend = MemoryBackend(clock=VirtualClock())
    backend.add_site("a")
    backend.add_datastore("shared", "a")
    backend.add_network("lan", "a")
    for name, family, memory in (
        ("h1", "intel", 65536),
        ("h2", "intel", 16384),
        ("h3", "amd", 16384),
    ):
        backend.add_host(
            name,
            "a",
            cluster="c",
            datastores=["shared"],
            networks=["lan"],
            cpu_family=family,
            cpu_cores=16,
            memory_mb=memory,
        )
    for number, (name, host, memory) in enumerate(
        (("app1", "h1", 4096), ("app2", "h1", 4096), ("big", "h1", 32768), ("app3", "h2", 4096)),
        start=1,
    ):
        backend.add_vm(
            VM(
                id=f"vm-{number}",
                name=name,
                host=host,
                power_state=PowerState.ON,
                nics=(Nic(f"00:50:56:00:00:0{number}", "lan"),),
                cpu=2,
                memory_mb=memory,
                datastore="shared",
            ),
            boot_seconds=20,
        )
    return backend


def failed_over(journal: Any) -> tuple[MemoryBackend, Watched, HostFailoverReport]:
    """The cluster after h1 failed, its VMs restarted (journaled), and h1 back."""
    backend = cluster()
    backend.fail_host("h1")
    runner = Runner(backend, journal=journal, poll_interval=1.0)
    report = runner.host_failover("c", "h1", POLICY)
    runner.close()
    backend.restore_host("h1")
    return backend, Watched(backend), report


def essence(report: MoveBackReport) -> tuple[Any, ...]:
    """What a resumed move back must report as the uninterrupted one did (not its moments)."""
    return (
        report.result,
        report.restored,
        report.differences,
        tuple(
            (m.vm, m.name, m.from_host, m.to_host, m.outcome, m.how, m.downtime_seconds is None)
            for m in report.vms
        ),
    )


def placement(backend: MemoryBackend) -> dict[str, tuple[str, PowerState]]:
    return {vm.name: (vm.host, vm.power_state) for vm in backend.inventory().vms}


def test_the_move_back_report_reads_back_from_the_journal(tmp_path: Any) -> None:
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        backend, watched, failover = failed_over(journal)
        assert failover.vm("app1").to_host == "h3" and failover.vm("big").unplaced is not None
        runner = Runner(watched, journal=journal, poll_interval=1.0)
        back = runner.move_back(failover)
        assert back.restored, back.differences
        assert {m.name: m.how for m in back.vms} == {
            "app1": MoveBack.COLD,
            "app2": MoveBack.LIVE if failover.vm("app2").to_host == "h2" else MoveBack.COLD,
            "big": MoveBack.STARTED,
        }
        assert back.vm("app1").downtime_seconds is not None
        assert back.vm("app1").downtime_seconds >= 20
        # in this process and in another one, the journal gives the same report
        assert runner.move_back_report(back.run_id) == back
        other = Runner(backend, journal=journal, poll_interval=1.0)
        assert other.move_back_report(back.run_id) == back
        (checked,) = [e for e in journal.load(back.run_id).entries if e.kind is EntryKind.CHECKED]
        assert checked.payload() == {"restored": True, "differences": []}
        with pytest.raises(ConflictError, match=r"host failover of h1, not a move back"):
            runner.move_back_report(failover.run_id)
        with pytest.raises(ConflictError, match="has no journal"):
            Runner(backend).move_back_report(back.run_id)
        runner.close()
        other.close()


def _uninterrupted(
    store: JournalStore,
) -> tuple[MoveBackReport, Counter[str], dict[str, Any], int, int]:
    with store.open("back-clean") as journal:
        backend, watched, failover = failed_over(journal)
        before = backend.faults.calls
        runner = Runner(watched, journal=journal, poll_interval=1.0)
        back = runner.move_back(failover)
        assert back.restored, back.differences
        assert runner.move_back_report(back.run_id) == back
        runner.close()
    return (
        back,
        watched.started,
        placement(backend),
        backend.faults.calls - before,
        watched.changing_calls,
    )


def _crash_and_resume(
    store: JournalStore, label: str, *, before_call: int | None, after_change: int | None
) -> tuple[str, MoveBackReport, Counter[str], dict[str, Any]]:
    name = f"back-{label}"
    journal = store.open(name)
    backend, watched, failover = failed_over(journal)
    if before_call is not None:
        backend.faults.crash_at(backend.faults.calls + before_call)
    watched.crash_after = after_change
    crashed = Runner(watched, journal=journal, poll_interval=1.0)
    try:
        crashed.move_back(failover)
    except SimulatedCrash:
        pass
    else:  # readiness polls vary by a call or two between runs: the last point may not come
        backend.faults.crash_at(None)
        crashed.close()
        journal.close()
        return "not reached", expected_of(store, name), watched.started, placement(backend)
    assert crashed._writer is not None
    crashed._writer.abandon()  # the process is gone: what it had not committed is lost
    journal.close()
    backend.faults.crash_at(None)
    watched.crash_after = None
    with store.open(name) as reopened:
        runner = Runner(watched, journal=reopened, poll_interval=1.0)
        runs = [run for run in reopened.runs() if run.run_id != failover.run_id]
        if not runs:  # crashed before anything of it was journaled or touched
            how = "moved back again"
            run_id = runner.move_back(runner.host_failover_report(failover.run_id)).run_id
        elif runs[0].interrupted:
            how, run_id = "resumed", runs[0].run_id
            resumed = runner.resume(run_id, background=False).wait()
            assert resumed.result is RunResult.SUCCEEDED, resumed
        else:  # its run ended, its proof was not journaled yet: the report proves it
            how, run_id = "proved when read", runs[0].run_id
        report = runner.move_back_report(run_id)
        assert runner.move_back_report(run_id) == report  # proved once, then read back
        runner.close()
    return how, report, watched.started, placement(backend)


def expected_of(store: JournalStore, name: str) -> MoveBackReport:
    """The report of the move back that ran through in journal ``name``."""
    with store.open(name) as journal:
        runner = Runner(MemoryBackend(clock=VirtualClock()), journal=journal)
        last = journal.runs()[-1].run_id
        report = runner.move_back_report(last)
        runner.close()
    return report


def test_crash_at_every_point_of_a_move_back_then_resume(store: JournalStore, capsys: Any) -> None:
    expected, started, home, calls, changes = _uninterrupted(store)
    assert {m.how for m in expected.vms} >= {MoveBack.COLD, MoveBack.STARTED}
    points = [(f"before-{n}", n, None) for n in range(1, calls + 1)]
    points += [(f"after-{m}", None, m) for m in range(1, changes + 1)]
    counted: Counter[str] = Counter()
    failures: list[str] = []
    for label, before_call, after_change in points:
        how, report, starts, placed = _crash_and_resume(
            store, label, before_call=before_call, after_change=after_change
        )
        counted[how] += 1
        if essence(report) != essence(expected):
            failures.append(f"crash {label} ({how}): report\n{report}\n!=\n{expected}")
        if placed != home:
            failures.append(f"crash {label} ({how}): placement {placed} != {home}")
        if starts != started:
            failures.append(f"crash {label} ({how}): VMs started {dict(starts)} != {dict(started)}")
    assert failures == [], "\n".join(failures[:10])
    assert counted["resumed"] > 0 and counted["moved back again"] > 0
    assert counted["not reached"] <= 2
    with capsys.disabled():
        print(
            f"\nmove back on {store.kind}: {len(points)} crash points covered ({calls} before a "
            f"backend call, {changes} after a changing call acted); "
            + ", ".join(f"{n} {how}" for how, n in sorted(counted.items()))
            + "; each report read back equals the uninterrupted one"
        )


def test_an_empty_host_failover_is_journaled_as_its_decision(tmp_path: Any) -> None:
    backend = cluster()
    for vm in ("vm-1", "vm-2", "vm-3"):
        backend.power_off(vm)
    backend.fail_host("h1")
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        runner = Runner(backend, journal=journal, poll_interval=1.0)
        report = runner.host_failover("c", "h1", vms=[])  # nothing of h1 to restart
        assert report.vms == () and report.result is RunResult.SUCCEEDED
        (summary,) = journal.runs()
        assert (summary.run_id, summary.plan) == (report.run_id, "host failover of h1")
        assert (summary.state, summary.result) == ("failed_over", RunResult.SUCCEEDED)
        assert not summary.interrupted and summary.ended_at == summary.started_at
        other = Runner(backend, journal=journal, poll_interval=1.0)
        read = other.host_failover_report(report.run_id)
        assert read == report
        assert read.placement == report.placement and read.failed_hosts == ("h1",)
        assert "nothing was done" in " ".join(read.run.decisions)
        with pytest.raises(ConflictError, match="nothing of it is in flight"):
            other.resume(report.run_id)
        with pytest.raises(ConflictError, match="had nothing to restart"):
            other.attach(report.run_id)
        backend.restore_host("h1")
        back = other.move_back(read)
        assert back.restored and back.vms == ()
        assert "nothing to move back" in str(back)
        runner.close()
        other.close()


def _up(*_args: object) -> bool:
    return True


def test_a_host_failover_with_callable_probes_resumes_with_them_given_again(
    tmp_path: Any,
) -> None:
    from test_host_failover_journal import FAILED, failed_lab
    from vmfailover import CallableProbe, StartOrder, ValidationError

    order = StartOrder()
    order.add("dc01", probe=CallableProbe(_up))
    order.add("db01", after=["dc01"])
    _backend, watched = failed_lab()
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        watched.crash_after = 1
        crashed = Runner(watched, journal=journal, poll_interval=2.0)
        with pytest.raises(SimulatedCrash):
            crashed.host_failover("prod-cluster", [FAILED], order=order)
        assert crashed._writer is not None
        crashed._writer.abandon()
        watched.crash_after = None
        (summary,) = journal.runs()
        runner = Runner(watched, journal=journal, poll_interval=2.0)
        with pytest.raises(ValidationError, match=r"probe of VM 'dc01'.*probes=") as refused:
            runner.resume(summary.run_id)
        assert "db01" not in str(refused.value)
        with pytest.raises(ValidationError, match=r"probe of VM 'web01'.*not needed"):
            runner.resume(summary.run_id, probes={"dc01": _up, "web01": _up})
        with pytest.raises(ValidationError, match=r"probe of VM 'dc01'.*readiness probe"):
            runner.resume(summary.run_id, probes={"dc01": 42})
        run = runner.resume(summary.run_id, probes={"dc01": _up}, background=False)
        assert run.wait().result is RunResult.SUCCEEDED
        report = runner.host_failover_report(summary.run_id)  # reads back with stand-ins
        assert {r.name for r in report.vms if r.restarted} == {"dc01", "db01", "app01", "web01"}
        assert watched.started == dict.fromkeys(["dc01", "db01", "app01", "web01"], 1)
        runner.close()
