"""Benchmark of the simulated Hyper-V host's wire: what one small pipeline costs through pypsrp.

Measures, over Basic/http and NTLM/http with message encryption:

* a small pipeline on a reused runspace pool (the steady state of a backend), and
* a pool opened for one pipeline and closed again (what a backend pays without pooling),

against an in-process call of the same command host (the baseline), and prints the ratios. The
later Hyper-V backend's benchmarks cannot be faster than the reused-pool figure: it is their floor.

Run from the worktree root: ``python benchmarks/bench_hyperv_sim.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _smoke import announce, exit_code, judged, sized

from vmfailover.testing.hyperv._objects import (
    CommandResult,
    EnumValue,
    OutputObject,
    cmd,
)
from vmfailover.testing.hyperv.client import PypsrpShell
from vmfailover.testing.hyperv.host import HyperVHost

#: Targets (ms per pipeline on a reused pool, client and server in this one process): generous for
#: 2 shared cores, tight enough to catch a regression such as Nagle's 40 ms delayed-ACK stall on
#: each of a pipeline's three requests (Command, Receive, Signal).
TARGET_REUSED_MS = {"basic": 40.0, "ntlm": 60.0}
#: A pool open + pipeline + close must stay within this many reused pipelines.
TARGET_OPEN_RATIO = 8.0
#: Batches per measurement (their median counts), and calls per batch.
BATCHES = sized(5, 1)
BASELINE_CALLS = sized(2000, 20)
WARM_UP = sized(20, 2)
REUSED_CALLS = sized(40, 2)
OPENED_CALLS = sized(8, 1)


class SmallHost:
    """Answers ``Get-VM``-like calls with one small object carrying an enum."""

    def invoke(
        self,
        command: str,
        arguments: Sequence[tuple[str | None, Any]],
        input_objects: Sequence[Any] = (),
    ) -> CommandResult:
        name = next((str(v) for n, v in arguments if n in (None, "Name")), "web01")
        vm = OutputObject(
            ("Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"),
            {"Name": name, "State": EnumValue("Microsoft.HyperV.PowerShell.VMState", "Off", 3)},
            f"VirtualMachine (Name = '{name}')",
        )
        return CommandResult(output=(vm,))


def per_call_ms(action: Callable[[], object], repeat: int) -> float:
    """Median of ``BATCHES`` batches, in milliseconds per call."""
    batches = []
    for _ in range(BATCHES):
        started = time.perf_counter()
        for _ in range(repeat):
            action()
        batches.append((time.perf_counter() - started) * 1000 / repeat)
    return statistics.median(batches)


def main() -> int:
    announce()
    command_host = SmallHost()
    baseline = per_call_ms(lambda: command_host.invoke("Get-VM", [(None, "web01")]), BASELINE_CALLS)
    print(f"baseline in-process CommandHost.invoke: {baseline * 1000:8.1f} us/call")
    ok = True
    for auth in ("basic", "ntlm"):
        with HyperVHost(f"bench-{auth}", auth=auth, command_host=command_host) as host:
            shell = PypsrpShell(host)
            for _ in range(WARM_UP):  # warm up connections and caches
                shell.run(cmd("Get-VM", "web01"))
            reused = per_call_ms(
                lambda shell=shell: shell.run(cmd("Get-VM", "web01")), REUSED_CALLS
            )
            shell.close()

            def open_run_close() -> None:
                with PypsrpShell(host) as fresh:
                    fresh.run(cmd("Get-VM", "web01"))

            opened = per_call_ms(open_run_close, OPENED_CALLS)
        ratio_reused = reused / baseline
        ratio_open = opened / reused
        reused_ok = reused <= TARGET_REUSED_MS[auth]
        open_ok = ratio_open <= TARGET_OPEN_RATIO
        ok = ok and reused_ok and open_ok
        print(
            f"{auth:5}/http  reused pool: {reused:7.2f} ms/pipeline "
            f"(x{ratio_reused:,.0f} baseline; target <= {TARGET_REUSED_MS[auth]:.0f} ms: "
            f"{judged(reused_ok)})"
        )
        print(
            f"{auth:5}/http  pool per call: {opened:7.2f} ms/pipeline "
            f"(x{ratio_open:.1f} reused; target <= x{TARGET_OPEN_RATIO:.0f}: "
            f"{judged(open_ok)})"
        )
    print(judged(ok))
    return exit_code(ok)


if __name__ == "__main__":
    raise SystemExit(main())
