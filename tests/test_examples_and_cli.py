"""Every example runs, the demo works, and CI runs exactly the README's test command."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vmfailover.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(example)], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr + done.stdout


def test_there_are_examples() -> None:
    assert EXAMPLES


def test_demo_via_python_dash_m_prints_the_report() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vmfailover", "demo", "--speed", "2000"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Replicating every VM" in out
    assert "site-a is lost" in out
    for kind in ("test", "planned", "regular"):
        assert f"{kind} failover of plan 'three-tier'" in out
    # test, planned, planned again, its failback, regular
    assert out.count("succeeded, 12/12 VMs ready, RTO") == 5
    assert "inventory restored" in out
    assert "every VM the run touched is as it was" in out  # the undo
    assert "failover of plan 'three-tier (failback)'" in out
    assert "Only what site-b wrote came home: " in out
    assert "replication resumed for 12 in its first direction" in out
    assert "Blocks lost: 0" in out
    # The RPO table, just before site-a is lost: the job's runs kept every VM within its RPO.
    before, after = out.split("site-a is lost", 1)
    assert "9 runs, 9 with every VM synced" in before
    assert "RPO at " in before and "12 compliant (met: share of the last 2h)" in before
    table = before.rsplit("RPO at ", 1)[1]
    assert table.count("three-tier  30m") == 12 and table.count("5m00s  compliant  100.0%") == 12
    assert "regular failover of plan 'three-tier'" in after
    for column in ("recovery point", "data loss", "start", "ready"):
        assert column in out
    assert "[########################]  12/12" in out


def test_demo_json_is_machine_readable() -> None:
    out = io.StringIO()
    assert main(["demo", "--json"], out=out) == 0
    data = json.loads(out.getvalue())
    assert set(data) == {"test", "planned", "failback", "regular", "rpo_before_disaster"}
    rpo = data.pop("rpo_before_disaster")
    assert rpo["window_seconds"] == 2 * 3600 and len(rpo["entries"]) == 12
    for entry in rpo["entries"]:
        assert entry["state"] == "compliant" and entry["job"] == "three-tier"
        assert entry["age_seconds"] == 300 and entry["compliance"] == 1.0
    assert all(report["result"] == "succeeded" for report in data.values())
    assert data["test"]["cleanup"]["restored"] is True
    assert data["planned"]["state"] == "undone" and data["planned"]["undo"]["restored"] is True
    failback = data["failback"]
    assert failback["state"] == "committed" and len(failback["commit"]["resumed"]) == 12
    assert 0 < failback["failback"]["blocks_moved"] <= 12 * 64  # what site-b wrote, no more
    assert failback["failback"]["moved_bytes"] < failback["failback"]["disk_bytes"] / 10
    assert all(vm["data_loss_blocks"] == 0 for vm in data["planned"]["vms"])
    # The regular failover loses the five minutes since the job's last sync, and no more.
    assert all(vm["data_loss_seconds"] == 300 for vm in data["regular"]["vms"])


def test_the_demo_reports_the_same_rto_on_every_machine() -> None:
    """Virtual time jumps only when every worker waits: the RTO does not depend on the CPU."""
    rtos = []
    for _ in range(3):
        out = io.StringIO()
        assert main(["demo", "--json"], out=out) == 0
        reports = json.loads(out.getvalue())
        del reports["rpo_before_disaster"]
        rtos.append({kind: r["rto_seconds"] for kind, r in reports.items()})
    assert rtos[0] == rtos[1] == rtos[2]


def test_bad_arguments_give_our_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "nan", "inf", "1e308", "1e-300"):
        assert main(["demo", "--speed", bad]) == 3
        assert "--speed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["explode"])
    assert caught.value.code == 2


def readme_commands() -> list[str]:
    """The shell commands of the README's "Two commands on a fresh machine", in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)


def test_the_readme_commands_are_one_line_each_in_their_own_virtual_environment() -> None:
    """Debian's and Ubuntu's system Python refuse ``pip install`` (externally managed), so each
    command makes its own virtual environment first and uses only what it installed there."""
    commands = readme_commands()
    assert len(commands) == 2
    for command in commands:
        assert "\n" not in command
        steps = command.split(" && ")
        assert steps[0] == "python3 -m venv .venv"
        assert all(step.startswith(".venv/bin/") for step in steps[1:]), command
    assert commands[0].endswith(" -m vmfailover demo")
    assert commands[1].endswith(" -m nox -s lint typecheck tests docs")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert readme_commands()[1] in ci
