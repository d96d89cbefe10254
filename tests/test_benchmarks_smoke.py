"""Every benchmark still runs: each ``benchmarks/bench_*.py`` in smoke mode, in its own process.

A benchmark is run only by ``nox -s bench``, so one that an API change broke went unnoticed until
the next full benchmark run. Here each runs with ``VMFAILOVER_BENCH_SMOKE=1`` (tiny sizes, one
round, no verdict on its targets: ``benchmarks/_smoke.py``) and must exit 0 and print its headline
lines, the ratios it exists for. The benchmarks are found by their file names, so a new one is
covered at once, and fails here until it has a smoke mode and its headline lines are listed below.

The peers are the test suite's own: the vSphere simulator's launcher as built for the vSphere tests
(handed to the benchmark through its cache folder), and PostgreSQL's server binaries, which
``bench_lease`` and ``bench_journal`` start throwaway servers from. A missing peer fails the test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vmfailover.testing.postgres import find_postgres_binaries
from vmfailover.testing.vcsim.build import build_launcher

BENCHMARKS_FOLDER = Path(__file__).resolve().parents[1] / "benchmarks"
BENCHMARKS = sorted(BENCHMARKS_FOLDER.glob("bench_*.py"))

#: A smoke run takes seconds; this much means it ran at full size or hangs.
TIMEOUT_SECONDS = 180.0
#: After the timeout the benchmark gets SIGINT and this long to stop its simulators and servers.
GRACE_SECONDS = 20.0

SMOKE_START = "SMOKE RUN (VMFAILOVER_BENCH_SMOKE=1): tiny sizes, one round"
SMOKE_END = "SMOKE RUN: verdict skipped (targets not judged at tiny sizes); size-independent checks"

_NUMBER = r"[\d.,]+"

#: Per benchmark, the lines (regular expressions, searched line by line) that carry what it
#: measures: if one is missing, the benchmark no longer prints what it exists for.
HEADLINES: dict[str, tuple[str, ...]] = {
    "bench_clean_point.py": (
        rf"^lab: 12 VMs x {_NUMBER} points",
        rf"^ +1  bisect +{_NUMBER}",
        rf"scan / bisect: boots {_NUMBER}x, rounds {_NUMBER}x, virtual time {_NUMBER}x$",
    ),
    "bench_hyperv.py": (
        rf"^inventory: {_NUMBER} pipelines with {_NUMBER} VMs, {_NUMBER} with {_NUMBER}",
        rf"site lost: {_NUMBER} pipelines per VM, all ready: True",
        rf"site answering .*: {_NUMBER} pipelines per VM, all ready and verified: True",
        rf"^reused pool: +{_NUMBER} ms/pipeline",
        rf"^pool per call: +{_NUMBER} ms/pipeline; x{_NUMBER} the reused pool",
    ),
    "bench_hyperv_sim.py": (
        rf"^baseline in-process CommandHost.invoke: +{_NUMBER} us/call",
        rf"^basic/http  reused pool: +{_NUMBER} ms/pipeline \(x{_NUMBER} baseline",
        rf"^basic/http  pool per call: +{_NUMBER} ms/pipeline \(x{_NUMBER} reused",
        rf"^ntlm /http  reused pool: +{_NUMBER} ms/pipeline \(x{_NUMBER} baseline",
        rf"^ntlm /http  pool per call: +{_NUMBER} ms/pipeline \(x{_NUMBER} reused",
    ),
    "bench_journal.py": (
        rf"^pair 1: without a journal {_NUMBER} s; SQLite .*\(ratio {_NUMBER},.*; "
        rf"PostgreSQL .*\(ratio {_NUMBER},",
        rf"journaled / not journaled = {_NUMBER} with SQLite \(target <= 2.0\), {_NUMBER} with "
        r"PostgreSQL",
    ),
    "bench_lab_file.py": (
        rf"^demo planned failover: {_NUMBER} s with the lab in a file, {_NUMBER} s without: "
        rf"x{_NUMBER}; {_NUMBER} changing calls, {_NUMBER} ms each for the file$",
        rf"^demo lab: per changing call / one save from scratch = {_NUMBER} ",
        rf"^scaled_lab\({_NUMBER}\): per changing call / one save from scratch = {_NUMBER} ",
    ),
    "bench_lease.py": (
        r"^server start \(test settings, initdb included\): median",
        r"^server start \(durable, initdb included\): median",
        rf"^PostgreSQL, durable: acquire\+release {_NUMBER}/s, renew {_NUMBER}/s",
        rf"^  check {_NUMBER} us vs SELECT 1 {_NUMBER} us \(bests\): median ratio of \d+ paired "
        rf"turns {_NUMBER}",
        rf"^  intent row with its check in the same statement .*: median ratio of \d+ paired "
        rf"turns {_NUMBER}",
        r"^PostgreSQL: a fenced call costs",
        rf"^SQLite \(WAL, synchronous=FULL\): acquire\+release {_NUMBER}/s",
        r"^SQLite: a fenced call costs",
    ),
    "bench_memory.py": (
        r"^Scaling in CPU time, collector paused",
        rf"^   build +t\(\w+\) / t\(\w+\) = +{_NUMBER} +t\(\w+\) / t\(\w+\) = +{_NUMBER}",
        rf"^   failover +t\(\w+\) / t\(\w+\) = +{_NUMBER} +t\(\w+\) / t\(\w+\) = +{_NUMBER}",
        r"^Single calls: CPU time per call",
        rf"^   power_on +{_NUMBER} us",
    ),
    "bench_placement.py": (
        rf"^fits: {_NUMBER} VMs on {_NUMBER} hosts",
        rf"^over: {_NUMBER} VMs on {_NUMBER} hosts",
        rf"^place / first fit: time {_NUMBER}x, VMs placed {_NUMBER}, memory used {_NUMBER}",
        rf"^failover: the 2 busiest of {_NUMBER} hosts fail",
    ),
    "bench_prediction.py": (
        rf"no max_parallel: measured +{_NUMBER} s, simulated .*: ratio {_NUMBER}",
        rf"max_parallel=\d+: measured +{_NUMBER} s, simulated .*: ratio {_NUMBER}",
        rf"for information: simulated without the runner's workers .*ratio {_NUMBER}",
    ),
    "bench_reip.py": (
        rf"rules: +{_NUMBER} translations/s",
        rf"cost {_NUMBER} rules / {_NUMBER} rules: {_NUMBER}x",
        rf"speed-up over the naive first-match scan: {_NUMBER}x",
    ),
    "bench_replication.py": (
        rf"^retention, job policy, .*ratio {_NUMBER}$",
        rf"apply / sort = {_NUMBER} with the job policy on points as listed",
        rf"^tick with every job due: {_NUMBER} s",
        rf"idle tick / due tick = {_NUMBER}",
    ),
    "bench_retention.py": (
        rf"^kept {_NUMBER}, removed {_NUMBER}",
        rf"^recovery points, shuffled, against sorting them by datetime: .*ratio {_NUMBER}",
        rf"^peak memory of one apply: {_NUMBER} MiB",
        rf"apply / sort by datetime = {_NUMBER} on shuffled recovery points",
    ),
    "bench_runner.py": (
        rf"^run 1: measured RTO {_NUMBER} s, simulated with the same durations",
        rf"^measured RTO / simulate\(\) with the same durations: {_NUMBER}",
        rf"^measured RTO / prediction from expected durations: {_NUMBER}",
    ),
    "bench_sequencer.py": (
        rf"^   RTO {_NUMBER} s, bound {_NUMBER} s, ratio 1\.000000",
        rf"^   max_parallel=16: RTO .*ratio {_NUMBER}",
        rf"^   max_parallel=64: RTO .*ratio {_NUMBER}",
        rf"SRM-style 5 priority groups by tier {_NUMBER} s: ratio {_NUMBER}",
        rf"Veeam-style linear .*: ratio {_NUMBER}",
        rf"^   t\(\w+\) / t\(\w+\) = {_NUMBER} .*t\(\w+\) / t\(\w+\) = {_NUMBER}",
    ),
    "bench_vsphere.py": (
        rf"^inventory round trips {_NUMBER} -> {_NUMBER} VMs: {_NUMBER} -> {_NUMBER}",
        rf"^  naive attribute reads: .*ratio: {_NUMBER}x calls",
        r"test failover first, .*copies ready and verified, inventory restored",
        rf"^  through the runner: .*{_NUMBER} per VM, .*every VM ready and verified",
        rf"^  ratio naive / ours: {_NUMBER}x calls, {_NUMBER}x time",
        r"^regular failover sources shut down, hosts answer",
    ),
}


def _peer_environment(name: str) -> dict[str, str]:
    """What a benchmark needs of the suite's peers; raises (the test fails) when one is missing."""
    if name == "bench_vsphere.py":
        # The launcher the vSphere tests use (built now if no test built it yet); the benchmark
        # finds it in its cache folder instead of building its own.
        return {"VMFAILOVER_VCSIM_CACHE": str(build_launcher().parent)}
    if name in ("bench_lease.py", "bench_journal.py"):
        find_postgres_binaries()  # the server binaries the benchmark starts its servers from
    return {}


def _run(benchmark: Path, cwd: Path, environment: dict[str, str]) -> tuple[int, str, str, float]:
    """(exit status, stdout, stderr, seconds). On timeout SIGINT first, so the benchmark stops the
    simulators and servers it started, then SIGKILL."""
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(benchmark)],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        pytest.fail(
            f"{benchmark.name} still ran after {TIMEOUT_SECONDS:g} s in smoke mode (does it "
            f"have one?)\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        )
    return process.returncode, stdout, stderr, time.monotonic() - began


def test_benchmarks_are_found() -> None:
    assert len(BENCHMARKS) >= 14, BENCHMARKS
    listed_but_gone = sorted(set(HEADLINES) - {path.name for path in BENCHMARKS})
    assert not listed_but_gone, f"HEADLINES lists benchmarks that do not exist: {listed_but_gone}"


@pytest.mark.parametrize("benchmark", BENCHMARKS, ids=lambda path: path.stem)
def test_benchmark_runs_in_smoke_mode(benchmark: Path, tmp_path: Path) -> None:
    headlines = HEADLINES.get(benchmark.name)
    assert headlines is not None, (
        f"{benchmark.name} has no headline lines in {Path(__file__).name}'s HEADLINES: give it "
        "a smoke mode (benchmarks/_smoke.py) and list the lines that carry its ratios"
    )
    environment = {
        **os.environ,
        "VMFAILOVER_BENCH_SMOKE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ next to the benchmarks
        **_peer_environment(benchmark.name),
    }
    status, stdout, stderr, seconds = _run(benchmark, tmp_path, environment)
    shown = f"--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- {seconds:.1f} s"
    assert status == 0, f"{benchmark.name} exited {status} in smoke mode\n{shown}"
    lines = stdout.splitlines()
    assert lines and lines[0].startswith(SMOKE_START), f"no smoke-run banner first\n{shown}"
    assert lines[-1] == f"{SMOKE_END}: passed", f"no skipped verdict last\n{shown}"
    missing = [
        pattern for pattern in headlines if not any(re.search(pattern, line) for line in lines)
    ]
    assert not missing, f"{benchmark.name} no longer prints {missing}\n{shown}"
    # Smoke runs judge no target: no verdict of one may appear.
    verdicts = [line for line in lines if re.search(r"\b(PASS|MISS|MISSED|OK)\b", line)]
    assert not verdicts, f"{benchmark.name} judged a target in smoke mode: {verdicts}\n{shown}"


def test_a_smoke_setting_other_than_1_or_0_is_refused(tmp_path: Path) -> None:
    environment = {**os.environ, "VMFAILOVER_BENCH_SMOKE": "yes", "PYTHONDONTWRITEBYTECODE": "1"}
    status, stdout, stderr, _ = _run(
        BENCHMARKS_FOLDER / "bench_retention.py", tmp_path, environment
    )
    assert status != 0
    assert "VMFAILOVER_BENCH_SMOKE must be 1 (smoke run) or 0 / unset, got 'yes'" in stderr
    assert "building" not in stdout  # refused before anything ran
