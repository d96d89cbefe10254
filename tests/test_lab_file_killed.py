"""``vmfailover run`` on the lab kept in a file, killed for real (SIGKILL) mid-run, then
``vmfailover resume RUN`` and ``report RUN``: the lab file's world agrees with the report.

A journaled run writes each changing call's outcome after the call; ``resume`` replays recorded
outcomes without calling the backend again. So the lab file must be at least as new as the
journal's record of any call, or the report says a VM runs that the lab has off. The child is the
real command line (:mod:`killed_cli`) stopped at a chosen moment: inside a call once the lab in
memory changed (not saved yet), once a call returned (outcome not journaled yet), and once a
power-on's outcome is committed to the journal.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cli_support import ROOT, vmfailover
from test_cli_new_user import _plan_from_docs
from vmfailover.backends.memory import MemoryBackend
from vmfailover.model import PowerState

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
LAB = "vmfailover-lab.json"
PLAN_VMS = ("dc01", "db01", "app01", "web01")
#: How long the child may take to reach its pause point.
CHILD_SECONDS = 120.0

#: Where the run is killed (see :mod:`killed_cli`); the plan is a chain, VM after VM.
MOMENTS = (
    "journaled:power_on:1",  # dc01 runs at site B and the journal says so
    "changed:power_on:2",  # db01's replica is on in memory, the call has not returned
    "returned:revert:3",  # app01's replica was reverted; no outcome journaled
    "journaled:shutdown_guest:4",  # web01's source is off and the journal says so
)


def start_killed(folder: Path, moment: str, *args: str) -> subprocess.Popen[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("VMFAILOVER_")
    }
    environment["PYTHONPATH"] = os.pathsep.join((str(ROOT / "src"), str(HERE)))
    return subprocess.Popen(
        [sys.executable, str(HERE / "killed_cli.py"), moment, *args],
        cwd=folder,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_paused(child: subprocess.Popen[str]) -> str:
    """Everything the child printed up to PAUSED; fails if it ends or falls silent first."""
    assert child.stdout is not None
    said = []
    deadline = time.monotonic() + CHILD_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = child.stdout.readline()
        if not line:
            break
        said.append(line)
        if line.strip() == "PAUSED":
            return "".join(said)
    child.kill()
    _, errors = child.communicate(timeout=30)
    pytest.fail(f"the run never reached its kill point:\n{''.join(said)}\n{errors}")


def run_id_in(folder: Path) -> str:
    done = vmfailover(folder, "report", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads(done.stdout)
    assert isinstance(runs, list) and len(runs) == 1, runs
    run_id = runs[0]["run_id"]
    assert isinstance(run_id, str)
    return run_id


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_run_killed_mid_run_resumes_to_a_lab_that_agrees_with_its_report(
    tmp_path: Path, moment: str
) -> None:
    (tmp_path / "lab-app.toml").write_text(_plan_from_docs())
    child = start_killed(tmp_path, moment, "run", "lab-app.toml", "--kind", "planned")
    try:
        wait_paused(child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    run_id = run_id_in(tmp_path)

    done = vmfailover(tmp_path, "resume", run_id, "--backend", "lab", "--plan", "lab-app.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    done = vmfailover(tmp_path, "report", run_id, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    history: dict[str, Any] = json.loads(done.stdout)
    report = history["report"]
    assert history["state"] == "failed_over", history["state"]
    assert report["result"] == "succeeded", report["result"]

    world = MemoryBackend.load(tmp_path / LAB)
    inventory = world.inventory()
    power = {vm.id: vm.power_state for vm in inventory.vms}
    site = {vm.id: inventory.host(vm.host).site for vm in inventory.vms}
    assert [vm["vm"] for vm in report["vms"]] == list(PLAN_VMS)
    for result in report["vms"]:
        source, replica = result["source_vm_id"], result["replica_vm_id"]
        assert result["outcome"] == "ready", result
        assert power[replica] is PowerState.ON, f"{moment}: {replica} is {power[replica]}"
        assert site[replica] == "site-b"
        # a planned failover shuts the source down before it syncs a last time
        assert power[source] is PowerState.OFF, f"{moment}: {source} is {power[source]}"
        assert site[source] == "site-a"
    assert world.split_brains() == ()
