"""The command line's plan commands, its exit codes, and its output: rich on a terminal, plain text
in a pipe, and plain text when rich is not installed."""

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
from vmfailover.cli.commands import durations_for
from vmfailover.cli.output import Output
from vmfailover.errors import ValidationError

ROOT = Path(__file__).resolve().parents[1]
LAB_PLAN = ROOT / "examples" / "lab-plan.toml"


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a console would."""

    def isatty(self) -> bool:
        return True


def run(*argv: str, out: io.StringIO | None = None) -> tuple[int, str]:
    stream = out if out is not None else io.StringIO()
    code = main(list(argv), out=stream)
    return code, stream.getvalue()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- validate ------------------------------------------------------------------------------------


def test_validate_a_good_plan_file() -> None:
    code, out = run("validate", str(LAB_PLAN))
    assert code == 0
    assert "Failover plan 'three-tier': 12 VMs" in out
    assert "Checked against the file alone: no findings" in out
    assert out.rstrip().endswith("lab-plan.toml: valid")


def test_validate_against_the_lab_for_each_kind() -> None:
    assert run("validate", str(LAB_PLAN), "--lab")[0] == 0  # a test failover, by default
    assert run("validate", str(LAB_PLAN), "--lab", "--kind", "planned")[0] == 0
    code, out = run("validate", str(LAB_PLAN), "--lab", "--kind", "regular")
    assert code == 3  # site A still runs: split brain
    assert "12 errors, 0 warnings" in out and "VM 'dc01'" in out and "refused (12 errors)" in out
    code, out = run(
        "validate", str(LAB_PLAN), "--lab", "--kind", "regular", "--site-lost", "site-a"
    )
    assert code == 0 and "with site-a lost: no findings" in out


def test_validate_json_is_one_document() -> None:
    code, out = run("validate", str(LAB_PLAN), "--lab", "--kind", "regular", "--json")
    assert code == 3
    data = json.loads(out)
    assert data["valid"] is False and data["kind"] == "regular" and data["plan"] == "three-tier"
    assert len(data["findings"]) == 12
    assert data["findings"][0]["severity"] == "error"
    assert data["findings"][0]["item"] == "VM 'dc01'"


def test_errors_in_the_file_name_their_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = write(tmp_path, "broken.toml", 'format_version = 1\nname = = "x"\nvms = ["a"]\n')
    assert run("validate", str(broken))[0] == 3
    err = capsys.readouterr().err
    assert "broken.toml: line 2, column" in err and "not valid TOML" in err
    unknown = write(
        tmp_path,
        "unknown.toml",
        'format_version = 1\nname = "x"\nvms = ["a"]\n[[order.vms]]\nname = "a"\nafter = ["b"]\n',
    )
    assert run("validate", str(unknown))[0] == 3
    err = capsys.readouterr().err
    assert "order.vms[0].after" in err or "'b'" in err, err
    cycle = write(
        tmp_path,
        "cycle.yaml",
        "format_version: 1\nname: x\nvms: [a, b]\norder:\n  vms:\n"
        "    - {name: a, after: [b]}\n    - {name: b, after: [a]}\n",
    )
    assert run("validate", str(cycle))[0] == 3
    assert "'a' -> 'b' -> 'a'" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("validate", "no-such-plan.toml")[0] == 2
    assert "no-such-plan.toml' does not exist" in capsys.readouterr().err
    for argv in (
        ["validate"],
        ["validate", str(LAB_PLAN), "--kind", "sideways"],
        ["validate", str(LAB_PLAN), "--site-lost", "site-a"],  # needs --lab
        ["simulate", str(LAB_PLAN), "--runs", "0"],
        ["simulate", str(LAB_PLAN), "--runs", "many"],
        ["simulate", str(LAB_PLAN), "--workers", "-1"],
        ["explode"],
    ):
        with pytest.raises(SystemExit) as caught:
            main(argv, out=io.StringIO())
        assert caught.value.code == 2, argv
    assert run("validate", str(LAB_PLAN), "--lab", "--site-lost", "site-z")[0] == 3
    assert "no site 'site-z'" in capsys.readouterr().err


# --- simulate ------------------------------------------------------------------------------------


def test_simulate_on_the_lab_with_monte_carlo() -> None:
    code, out = run("simulate", str(LAB_PLAN), "--lab", "--runs", "300")
    assert code == 0
    assert "Monte Carlo over 300 runs: p50" in out
    assert "Critical path: " in out
    assert "meets the plan's RTO target 15m00s" in out
    assert out.count(" ready ") >= 12


def test_simulate_json_and_a_missed_target(tmp_path: Path) -> None:
    code, out = run("simulate", str(LAB_PLAN), "--lab", "--runs", "50", "--json")
    data = json.loads(out)
    assert code == 0 and data["runs"] == 50 and data["rto_target_met"] is True
    assert data["p50_seconds"] <= data["p90_seconds"] <= data["p99_seconds"]
    assert data["critical_path"][0] in ("dc01", "dc02")
    assert set(data["critical_path"]) <= {vm["vm"] for vm in data["vms"]}
    assert len(data["vms"]) == 12
    # Every VM booting in 5 minutes: four tiers deep, the 15-minute target is missed.
    code, out = run("simulate", str(LAB_PLAN), "--default-duration", "5m", "--json")
    data = json.loads(out)
    assert code == 3 and data["rto_target_met"] is False and data["rto_seconds"] == 20 * 60


def test_simulate_durations_from_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        "simulate", str(LAB_PLAN), "--default-duration", "30", "--duration", "db01=2m", "--json"
    )
    data = json.loads(out)
    ends = {vm["vm"]: vm["end_seconds"] for vm in data["vms"]}
    assert code == 0 and ends["db01"] == 30 + 120
    assert run("simulate", str(LAB_PLAN))[0] == 3
    assert "have no start-to-ready time" in capsys.readouterr().err
    for bad in ("db01", "nosuchvm=5", "db01=-3", "db01=nan", "db01=soon"):
        assert run("simulate", str(LAB_PLAN), "--lab", "--duration", bad)[0] == 3, bad
        assert "--duration" in capsys.readouterr().err


def test_durations_become_distributions_only_for_monte_carlo() -> None:
    fixed = durations_for(["a", "b"], ["b=10"], default="5")
    assert fixed == {"a": 5.0, "b": 10.0}
    drawn = durations_for(["a"], default="5", runs=10, spread=0.5)
    assert drawn["a"].mean > 5  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="--spread"):
        durations_for(["a"], default="5", runs=10, spread=float("inf"))


def test_simulate_with_lab_refuses_vms_the_lab_does_not_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = write(tmp_path, "p.toml", 'format_version = 1\nname = "x"\nvms = ["dc01", "sap01"]\n')
    assert run("simulate", str(plan), "--lab")[0] == 3
    assert "VM 'sap01': is not a VM of the lab" in capsys.readouterr().err


# --- how it writes -------------------------------------------------------------------------------


def test_on_a_terminal_rich_draws_tables_and_colour() -> None:
    terminal = Terminal()
    code, out = run("validate", str(LAB_PLAN), "--lab", "--kind", "regular", out=terminal)
    assert code == 3
    assert "\x1b[" in out  # colour
    assert "┃" in out or "│" in out  # a drawn table
    assert "dc01" in out


def test_piped_output_is_plain_text() -> None:
    code, out = run("validate", str(LAB_PLAN), "--lab", "--kind", "regular")
    assert code == 3 and "\x1b[" not in out and "│" not in out
    code, out = run("demo")
    assert code == 0 and "\x1b[" not in out


def test_a_terminal_run_shows_a_progress_bar() -> None:
    terminal = Terminal()
    assert main(["demo"], out=terminal) == 0
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue())  # no escape codes
    out = " ".join(plain.split())  # rich wraps long lines to the console's width
    assert "12/12" in out and "test failover" in out
    assert "succeeded, 12/12 VMs ready" in out


def test_no_colour_when_asked_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    output = Output(Terminal())
    output.say("ready", style="green")
    assert "\x1b[3" not in output.stream.getvalue()  # type: ignore[attr-defined]


def test_on_a_terminal_without_rich_the_output_is_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vmfailover.cli.output.rich_module", lambda: None)
    terminal = Terminal()
    assert main(["demo"], out=terminal) == 0
    out = terminal.getvalue()
    assert "\r\x1b[2K[########################]  12/12" in out  # the bar redrawn in place
    assert "│" not in out and "\x1b[3" not in out  # no drawn tables, no colour


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


# Makes `import rich` fail, as on a core install (pip install vmfailover), then runs the CLI.
WITHOUT_RICH = """
import sys
class NoRich:
    def find_spec(self, name, path=None, target=None):
        if name == "rich" or name.startswith("rich."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoRich())
from vmfailover.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_without_rich_every_command_works_in_plain_text() -> None:
    for argv, expected_code, expected in (
        (["demo"], 0, "[########################]  12/12"),
        (["validate", str(LAB_PLAN), "--lab"], 0, "valid"),
        (["simulate", str(LAB_PLAN), "--lab", "--runs", "20"], 0, "Monte Carlo over 20 runs"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", WITHOUT_RICH, *argv],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == expected_code, done.stderr
        assert expected in done.stdout
        assert "rich" not in done.stderr
