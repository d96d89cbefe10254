"""Killed for real: the orchestrator process gets SIGKILL between an intent and its action (or
between an action and its outcome), and a new runner resumes the run from the journal on disk.

The backend must outlive the killed process, so it is a real peer both processes reach: simulated
Hyper-V hosts that this test process serves over HTTP (WinRM/PSRP), driven by the Hyper-V backend
in the child (:mod:`killed_runner`) and again here when resuming. (The memory backend lives inside
its process and would die with it; persisting it to a file would test our own save format rather
than a peer.) The child runs a planned failover of three VMs, a chain, with the journal on disk;
it stops at a changing call chosen at random with a fixed seed, before or after it acts, says so,
and is killed there: the kill lands exactly where it was meant to, every time. Kills are bounded:
one moment per kind of changing call, and one run that is not killed shows which calls there
are to choose from.

The replicas' recovery points are stamped in the hosts' fabric time, which runs ahead of the
runner's clock here (the setup waited for Hyper-V's replication cycles in fabric time), so a kill
after the final sync also checks that reconciling a sync compares no clocks.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from killed_runner import Logged, connect
from vmfailover.backends.hyperv.ids import VMRef
from vmfailover.engine.journal import Journal
from vmfailover.engine.results import Outcome, RunReport, RunResult
from vmfailover.engine.runner import Runner
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.testing.hyperv import FabricClock, HyperVHost, ReplicationFabric
from vmfailover.testing.hyperv.fixtures import hyperv_host_factory

__all__ = ["hyperv_host_factory"]

HERE = Path(__file__).resolve().parent
SEED = 20260302
VMS = ("dc01", "db01", "app01")
#: The changing calls of the planned failover, in the order each VM makes them (checked by the
#: run that is not killed). The VMs form a chain, so the run makes them VM after VM.
CALLS = ("shutdown_guest", "sync", "revert", "power_on")
#: A call whose kill needs a moment of its own: after the final sync acted, the resumed run must
#: find the point it made (syncing again would make another; taking an older one loses data).
AFTER = {"sync": "after"}
#: How long the child may take to reach its pause point (or its end).
CHILD_SECONDS = 60.0


def moments() -> list[tuple[int, str]]:
    """The seeded kill points, one per kind of call (so :data:`CALLS` bounds their count): which
    changing call of the run, of a VM chosen at random, and before or after it acts."""
    rng = random.Random(SEED)
    chosen = []
    for index, operation in enumerate(CALLS):
        vm = rng.randrange(len(VMS))
        moment = AFTER.get(operation) or rng.choice(("before", "after"))
        chosen.append((vm * len(CALLS) + index + 1, moment))
    return sorted(chosen)


def guid(vm_id: str) -> uuid.UUID:
    return VMRef.parse(vm_id).guid


def world(factory: Callable[..., HyperVHost]) -> tuple[HyperVHost, HyperVHost, list[str]]:
    """hv-a with three running VMs (booting instantly), each replicated to hv-b once, and
    written to since: a planned failover must carry that last write over."""
    fabric = ReplicationFabric(scheduled_replication=True)
    a = factory("hv-a", fabric=fabric, auth="basic")
    b = factory("hv-b", fabric=fabric, auth="basic")
    assert a.model is not None and b.model is not None
    a.model.add_switch("Prod")
    b.model.add_switch("DR-Prod")
    config = {"hosts": hosts(a, b), "username": a.username, "password": a.password}
    # the setup's syncs wait in fabric time (waiting is what makes Hyper-V's next cycle come);
    # the run's own syncs come after the source is off, which Hyper-V makes at once (-Prepare)
    backend = connect(config, clock=FabricClock(fabric), sync_poll_interval=30.0)
    ids = []
    for number, name in enumerate(VMS):
        record = a.model.add_vm(
            name, "Prod", state="Running", ip_addresses=[f"192.168.1.{10 + number}"]
        )
        vm_id = str(VMRef("hv-a", record.id))
        replica = backend.create_replica(
            vm_id, "hv-b", "hv-b-storage", network_map={"Prod": "DR-Prod"}
        )
        a.model.write_data(record.id)
        backend.sync(replica.id)
        a.model.write_data(record.id)
        ids.append(vm_id)
    backend.close()
    return a, b, ids


def hosts(a: HyperVHost, b: HyperVHost) -> list[tuple[str, str, int]]:
    return [("hv-a", "site-a", a.port), ("hv-b", "site-b", b.port)]


def run_child(config_path: Path, errors: Path) -> tuple[subprocess.Popen[str], str]:
    """Start the orchestrator; returns it and what it said (PAUSED, DONE ..., or "" if it
    ended or fell silent first). Never blocks past :data:`CHILD_SECONDS`."""
    with errors.open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(HERE / "killed_runner.py"), str(config_path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=HERE,
        )
    assert child.stdout is not None
    deadline = time.monotonic() + CHILD_SECONDS
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([child.stdout], [], [], left)
        if not ready:
            break
        line = child.stdout.readline()
        if not line:
            break
        if line.startswith(("PAUSED", "DONE")):
            return child, line.strip()
    return child, ""


def run_config(tmp_path: Path, a: HyperVHost, b: HyperVHost, ids: list[str]) -> dict[str, Any]:
    return {
        "hosts": hosts(a, b),
        "username": a.username,
        "password": a.password,
        "vms": ids,
        "journal": str(tmp_path / "journal.db"),
        "calls_log": str(tmp_path / "calls.jsonl"),
    }


def check_end_state(
    a: HyperVHost,
    b: HyperVHost,
    ids: list[str],
    versions: dict[str, int],
    tmp_path: Path,
    journal: Journal,
    report: RunReport,
) -> list[dict[str, str]]:
    """What the hosts and the journal say after the run: the same, killed or not. Returns the
    changing calls both processes completed, in order."""
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    power_ons = [call["target"] for call in calls if call["call"] == "power_on"]
    # on the runner's side: each replica once, in the chain's order, across both processes
    assert power_ons == [str(VMRef("hv-b", guid(vm_id))) for vm_id in ids], power_ons
    # on the hosts' side: Start-VM reached hv-b once per VM, never hv-a (split brain)
    assert b.calls.names().count("Start-VM") == len(ids)
    assert "Start-VM" not in a.calls.names()
    syncs = Counter(call["target"] for call in calls if call["call"] == "sync")
    assert sorted(syncs.values()) == [1] * len(ids), syncs  # a final sync is never taken twice
    assert a.model is not None and b.model is not None
    for vm_id in ids:
        source = a.model.vm(guid(vm_id))
        replica = b.model.vm(guid(vm_id))  # Hyper-V replicas keep the source's id
        assert source.state == "Off"
        assert replica.state == "Running"
        assert replica.data_version == versions[vm_id] == source.data_version  # nothing lost

    assert report.result is RunResult.SUCCEEDED, report
    assert [vm.vm for vm in report.vms] == ids
    assert all(vm.outcome is Outcome.READY for vm in report.vms), report.vms
    (run,) = journal.runs()
    assert run.run_id == report.run_id
    assert not run.interrupted and run.result is RunResult.SUCCEEDED
    history = journal.report(run.run_id)
    assert history.report == report  # the journal holds the report the caller got
    assert history.calls >= len(ids) * len(CALLS)
    return calls


def test_the_run_that_is_not_killed(
    hyperv_host_factory: Callable[..., HyperVHost], tmp_path: Path
) -> None:
    a, b, ids = world(hyperv_host_factory)
    assert a.model is not None
    versions = {vm_id: a.model.vm(guid(vm_id)).data_version for vm_id in ids}
    config = run_config(tmp_path, a, b, ids)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    child, said = run_child(config_path, tmp_path / "stderr.txt")
    child.wait(30)
    assert said == "DONE succeeded", (said, (tmp_path / "stderr.txt").read_text())
    with SQLiteJournal(tmp_path / "journal.db") as journal:
        (run,) = journal.runs()
        report = journal.report(run.run_id).report
        assert report is not None
        calls = check_end_state(a, b, ids, versions, tmp_path, journal, report)
    # the calls the moments choose among, VM after VM
    assert [call["call"] for call in calls] == list(CALLS) * len(ids)


@pytest.mark.parametrize(("pause_at", "moment"), moments())
def test_killed_between_intent_and_action_then_resumed(
    hyperv_host_factory: Callable[..., HyperVHost], tmp_path: Path, pause_at: int, moment: str
) -> None:
    a, b, ids = world(hyperv_host_factory)
    assert a.model is not None
    versions = {vm_id: a.model.vm(guid(vm_id)).data_version for vm_id in ids}
    config = run_config(tmp_path, a, b, ids)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({**config, "pause_at": pause_at, "moment": moment}))
    child, said = run_child(config_path, tmp_path / "stderr.txt")
    try:
        assert said == "PAUSED", (said, (tmp_path / "stderr.txt").read_text())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    completed = (tmp_path / "calls.jsonl").read_text().splitlines()
    assert len(completed) == (pause_at if moment == "after" else pause_at - 1)

    with SQLiteJournal(tmp_path / "journal.db") as journal:
        (run,) = journal.runs()
        assert run.interrupted
        backend = Logged(connect(config), config)
        runner = Runner(backend, journal=journal, poll_interval=0.2)  # type: ignore[arg-type]
        try:
            report = runner.resume(run.run_id, background=False).wait(60)
        finally:
            runner.close()
            backend.close()
        check_end_state(a, b, ids, versions, tmp_path, journal, report)
    print(f"killed at changing call {pause_at} ({moment} it acted), resumed: {report.result}")
