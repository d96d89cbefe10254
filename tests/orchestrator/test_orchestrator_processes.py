"""Two orchestrator processes (``vmfailover serve``) on one plan, for real.

The backend must outlive the orchestrators, so it is a real peer both reach: simulated Hyper-V
hosts that this test process serves over HTTP, driven by the Hyper-V backend in each
orchestrator (:mod:`hosts_backend`). Journal and leases are stores both share, every test on both:
SQLite files (``--journal FILE --lease FILE``), and one PostgreSQL database (``--journal
postgresql://...``, the leases in the same database, each journal write fenced in its own
statement). The plan is the kill test's: a planned failover of three VMs in a chain
(:mod:`test_resume_killed`), whose end state is checked the same way: each replica powered on
once, in order (the orchestrators' own record and the host's count of ``Start-VM``), sources off,
nothing lost, the run succeeded and the journal holds the report.

* Both are told to run the plan at once: exactly one does; the other never calls a changing
  operation.
* The active one is killed (SIGKILL) right after it powered a VM on, before it recorded that:
  the other takes over once the lease expired (a newer token) and finishes the run as the
  uninterrupted run ends, without powering that VM on again.
* The active one is stopped (SIGSTOP) there, the other takes over and finishes; then the stopped
  one is continued (SIGCONT): it makes no backend call (reads included, by its own record and
  the hosts' logs) and writes nothing to the journal after waking.

Leases of 2 s keep this quick.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from killed_runner import plan_of
from orchestrator.stores import SharedStores
from test_resume_killed import check_end_state, guid, hosts, world
from vmfailover.engine import deadlines
from vmfailover.engine.journal import EntryKind
from vmfailover.testing.hyperv import HyperVHost
from vmfailover.testing.hyperv.fixtures import hyperv_host_factory

__all__ = ["hyperv_host_factory"]

HERE = Path(__file__).resolve().parent
PLAN = "killed"
LEASE_SECONDS = 2.0
#: The changing call after which the active orchestrator is paused: the second VM's power-on
#: (each VM makes shutdown_guest, sync, revert, power_on), acted but not yet recorded.
SECOND_POWER_ON = 8
#: The longest any step of these tests waits.
WAIT_SECONDS = 60.0


class Service:
    """One ``vmfailover serve`` process; its output lines, read as they come."""

    def __init__(
        self,
        name: str,
        folder: Path,
        stores: SharedStores,
        *,
        submit: bool,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "vmfailover",
            "serve",
            *stores.serve_arguments(),
            "--backend",
            "hosts_backend:backend",
            "--name",
            name,
            "--lease-seconds",
            str(lease_seconds),
            "--poll",
            "0.2",
        ]
        if submit:
            command += ["--submit", str(folder / "plan.toml"), "--kind", "planned"]
        tests = str(HERE.parent)
        path = os.pathsep.join(filter(None, [str(HERE), tests, os.environ.get("PYTHONPATH")]))
        environment = {
            **os.environ,
            "ORCHESTRATOR_TEST_CONFIG": str(folder / "config.json"),
            "PYTHONPATH": path,
        }
        self.name = name
        self.errors = folder / f"{name}.stderr"
        with self.errors.open("w") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=environment
            )
        self.pid = self.process.pid
        self.lines: list[str] = []
        self._said = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._said:
                self.lines.append(line.rstrip("\n"))
                self._said.notify_all()
        with self._said:
            self.lines.append("<EOF>")
            self._said.notify_all()

    def wait_for(self, *texts: str, timeout: float = WAIT_SECONDS) -> str:
        """The first line holding one of ``texts``; fails naming what it said instead."""
        deadline = time.monotonic() + timeout

        def found() -> str | None:
            return next((line for line in self.lines if any(t in line for t in texts)), None)

        with self._said:
            while (line := found()) is None:
                left = deadline - time.monotonic()
                if left <= 0 or "<EOF>" in self.lines:
                    raise AssertionError(
                        f"{self.name} never said {texts}: {self.lines}\n{self.errors.read_text()}"
                    )
                self._said.wait(left)
        return line

    def signal(self, number: signal.Signals) -> None:
        os.kill(self.pid, number)

    def stop(self) -> int:
        """SIGTERM, and the exit code (bounded), once every line it wrote has been read."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise
        # The process may exit before the reader has taken its last lines off the pipe.
        self._reader.join(10)
        assert not self._reader.is_alive(), f"{self.name}: output still open after exit"
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            service.signal(signal.SIGCONT)  # a stopped process cannot die of SIGKILL's wait
            service.kill()


def setup(
    factory: Callable[..., HyperVHost], folder: Path, stores: SharedStores
) -> tuple[Any, ...]:
    """The hosts with three replicated VMs, the config, plan file, journal and lease tables."""
    a, b, ids = world(factory)
    assert a.model is not None
    versions = {vm_id: a.model.vm(guid(vm_id)).data_version for vm_id in ids}
    config = {
        "hosts": hosts(a, b),
        "username": a.username,
        "password": a.password,
        "calls_log": str(folder / "wire.jsonl"),
    }
    (folder / "config.json").write_text(json.dumps(config))
    plan_of({"vms": ids}).save(folder / "plan.toml")
    stores.prepare()
    return a, b, ids, versions


def paused_at(folder: Path, change: int) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "pause_at": change}))


def wire(folder: Path) -> list[dict[str, Any]]:
    path = folder / "wire.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_until_ended(stores: SharedStores) -> str:
    """The run's id once the journal records its end (bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    with stores.journal() as journal:
        while time.monotonic() < deadline:
            runs = journal.runs()
            if runs and runs[0].ended_at is not None:
                return runs[0].run_id
            time.sleep(0.1)
    raise AssertionError(f"the run did not end within {WAIT_SECONDS:g} s")


def check_the_end(
    a: HyperVHost, b: HyperVHost, ids: list[str], versions: Any, folder: Path, stores: SharedStores
) -> None:
    """The kill test's end-state checks, over the changing calls both processes completed."""
    done = [call for call in wire(folder) if call.get("done")]
    (folder / "calls.jsonl").write_text("".join(json.dumps(call) + "\n" for call in done))
    with stores.journal() as journal:
        (run,) = journal.runs()
        report = journal.report(run.run_id).report
        assert report is not None
        check_end_state(a, b, ids, versions, folder, journal, report)


def renewed(stores: SharedStores) -> None:
    """Return just after the holder renewed its lease (so it is not inside a transaction)."""
    lease = stores.lease()
    try:
        state = lease.state(PLAN)
        assert state is not None and state.held
        deadline = time.monotonic() + 5 * LEASE_SECONDS
        while time.monotonic() < deadline:
            now = lease.state(PLAN)
            assert now is not None
            if now.expires_at != state.expires_at:
                return
            time.sleep(0.005)
        raise AssertionError("the holder did not renew its lease")
    finally:
        lease.close()


def test_two_orchestrators_told_to_run_a_plan_exactly_one_acts(
    hyperv_host_factory: Callable[..., HyperVHost],
    tmp_path: Path,
    services: list[Service],
    shared_stores: SharedStores,
) -> None:
    stores = shared_stores
    a, b, ids, versions = setup(hyperv_host_factory, tmp_path, stores)
    paused_at(tmp_path, 1)  # the winner waits after its first change until both have spoken
    services += [Service(name, tmp_path, stores, submit=True) for name in ("site-a", "site-b")]
    verdicts = {s.name: s.wait_for("submitted run", "refused plan") for s in services}
    assert sorted(v.split()[0] for v in verdicts.values()) == ["refused", "submitted"], verdicts
    (winner,) = (s for s in services if verdicts[s.name].startswith("submitted"))
    (loser,) = (s for s in services if s is not winner)
    assert "another orchestrator" in verdicts[loser.name]
    winner.wait_for("PAUSED")
    winner.signal(signal.SIGCONT)  # wakes its pause (it was never stopped)
    run_id = wait_until_ended(stores)
    assert verdicts[winner.name] == f"submitted run {run_id} of plan {PLAN!r}"
    check_the_end(a, b, ids, versions, tmp_path, stores)
    changers = {call["pid"] for call in wire(tmp_path) if call.get("done")}
    assert changers == {winner.pid}
    with stores.journal() as journal:
        assert journal.load(run_id, [EntryKind.RESUMED]).entries == ()
    assert [s.stop() for s in services] == [0, 0]
    assert all(s.lines[-2].endswith(": stopped") for s in services), [s.lines for s in services]


def test_the_active_orchestrator_killed_mid_run_the_other_takes_over_and_finishes(
    hyperv_host_factory: Callable[..., HyperVHost],
    tmp_path: Path,
    services: list[Service],
    shared_stores: SharedStores,
) -> None:
    stores = shared_stores
    a, b, ids, versions = setup(hyperv_host_factory, tmp_path, stores)
    paused_at(tmp_path, SECOND_POWER_ON)
    active = Service("site-a", tmp_path, stores, submit=True)
    standby = Service("site-b", tmp_path, stores, submit=False)
    services += [active, standby]
    active.wait_for("PAUSED")
    active.kill()
    killed_at = time.monotonic()
    assert active.process.returncode == -signal.SIGKILL
    took = standby.wait_for("took run")
    assert time.monotonic() - killed_at <= WAIT_SECONDS
    assert "under token killed#2" in took and "expired" in took
    run_id = wait_until_ended(stores)
    standby.wait_for(f"run {run_id} ended succeeded")  # and its lease given back
    check_the_end(a, b, ids, versions, tmp_path, stores)  # the second VM was not powered on again
    calls = wire(tmp_path)
    assert {call["pid"] for call in calls} == {active.pid, standby.pid}
    with stores.journal() as journal:
        (resumed,) = journal.load(run_id, [EntryKind.RESUMED]).entries
        assert resumed.payload()["owner"].endswith(f":{standby.pid}")
    lease = stores.lease()
    state = lease.state(PLAN)
    lease.close()
    assert state is not None and state.token.number == 2 and state.released
    assert standby.stop() == 0


def test_the_active_orchestrator_paused_past_its_lease_does_nothing_after_waking(
    hyperv_host_factory: Callable[..., HyperVHost],
    tmp_path: Path,
    services: list[Service],
    shared_stores: SharedStores,
) -> None:
    stores = shared_stores
    a, b, ids, versions = setup(hyperv_host_factory, tmp_path, stores)
    paused_at(tmp_path, SECOND_POWER_ON)
    active = Service("site-a", tmp_path, stores, submit=True)
    standby = Service("site-b", tmp_path, stores, submit=False)
    services += [active, standby]
    active.wait_for("PAUSED")
    time.sleep(0.7)  # its journal's background flush has nothing left to write
    renewed(stores)
    active.signal(signal.SIGSTOP)
    standby.wait_for("took run")
    run_id = wait_until_ended(stores)
    standby.wait_for(f"run {run_id} ended succeeded")

    with stores.journal() as journal:
        rows_before = journal.load(run_id).entries
        summary_before = journal.runs()
    host_calls = (len(a.calls), len(b.calls))
    woke_at = time.time()
    active.signal(signal.SIGCONT)
    active.wait_for("CONTINUED")
    said = active.wait_for("stops without acting")
    assert "lease on plan 'killed' lost (token 1)" in said
    active.wait_for(f"run {run_id} ended failed", f"run {run_id} ended partial")
    time.sleep(1.0)  # anything it would still write or call has had its chance

    assert (len(a.calls), len(b.calls)) == host_calls  # the hosts heard nothing more
    after = [c for c in wire(tmp_path) if c["pid"] == active.pid and c["at"] >= woke_at]
    assert after == []  # not even a read
    with stores.journal() as journal:
        assert journal.load(run_id).entries == rows_before
        assert journal.runs() == summary_before
    check_the_end(a, b, ids, versions, tmp_path, stores)
    assert [active.stop(), standby.stop()] == [0, 0]


def test_a_deadline_outlives_the_orchestrator_that_ran_the_run(
    hyperv_host_factory: Callable[..., HyperVHost],
    tmp_path: Path,
    services: list[Service],
    shared_stores: SharedStores,
) -> None:
    stores = shared_stores
    a, b, ids, versions = setup(hyperv_host_factory, tmp_path, stores)
    attrs.evolve(plan_of({"vms": ids}), auto_commit=3.0).save(tmp_path / "plan.toml")
    active = Service("site-a", tmp_path, stores, submit=True)
    standby = Service("site-b", tmp_path, stores, submit=False)
    services += [active, standby]
    run_id = wait_until_ended(stores)
    active.kill()  # before its deadline (three seconds after the run's end) fell due
    with stores.journal() as journal:
        assert journal.runs()[0].state == "failed_over"
        assert list(deadlines.pending_deadlines(journal)) == [run_id]
    said = standby.wait_for(f"run {run_id}: automatic commit due")
    assert said.endswith("committed (under token killed#2)"), said
    with stores.journal() as journal:
        history = journal.report(run_id)
        assert history.summary.state == "committed"
        assert history.report is not None and history.report.commit is not None
        assert history.report.commit.by == "deadline" and history.report.commit.done
    commits = [call for call in wire(tmp_path) if call["call"] == "commit_failover"]
    assert {call["pid"] for call in commits} == {standby.pid}
    assert len([call for call in commits if call.get("done")]) == len(ids)
    check_the_end(a, b, ids, versions, tmp_path, stores)
    assert standby.stop() == 0
