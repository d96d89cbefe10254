"""Every example runs, and the README's first command works."""

from __future__ import annotations

import io
import json
import os
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
    assert "succeeded, 12/12 VMs ready, RTO" in out
    for column in ("recovery point", "data loss", "start", "ready"):
        assert column in out
    assert "[########################]  12/12" in out


def test_demo_json_is_machine_readable() -> None:
    out = io.StringIO()
    assert main(["demo", "--speed", "2000", "--json"], out=out) == 0
    data = json.loads(out.getvalue())
    assert data["result"] == "succeeded"
    assert len(data["vms"]) == 12
    assert all(vm["data_loss_seconds"] > 0 for vm in data["vms"])


def test_bad_arguments_give_our_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--speed", "0"]) == 3
    assert "--speed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        main(["explode"])
    assert caught.value.code == 2
