"""What keeping the lab in a file costs: a save after every changing call (``autosave``).

The command line keeps the in-memory lab in a file and saves the world inside every changing
protocol call, before it returns, so the file is never behind the run's journal (a killed
command resumes against the world its journal describes). Each save writes the whole world, so
its cost grows with the lab. Measured in one process, on the demo's lab and on
``scaled_lab(1000)``:

- the demo's planned failover (the lab's three-tier plan, journaled in SQLite) with the lab kept
  in a file, against the same run without the file: the ratio, and the cost per changing call;
- changing calls (a source VM powered off and on again) on each lab with the file, against the
  same calls without it: the cost per call;
- that cost against one save of the same world built from scratch (what every call paid before
  saves reused the parts that cannot have changed). Target: per changing call <= one such save
  (the file costs at most one save per call, and no more as the lab grows).

Run from the worktree root: ``python benchmarks/bench_lab_file.py``.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _smoke import announce, exit_code, judged, sized

from vmfailover import Runner, SQLiteJournal
from vmfailover.backends.memory import MemoryBackend
from vmfailover.backends.memory.lab import lab, scaled_lab
from vmfailover.cli.demo import lab_plan
from vmfailover.model import PowerState

SCALED_VMS = sized(1000, 20)
CALLS = sized(40, 4)  # changing calls per measurement (power-offs and power-ons)
RUNS = sized(3, 1)
#: Per changing call, the file may cost this many from-scratch saves of the same world.
TARGET = 1.0


def median_seconds(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def demo_run(folder: Path, kept: bool) -> tuple[float, int, bool]:
    """Seconds of the demo's planned failover, its changing calls, whether it succeeded."""
    backend = lab()
    if kept:
        backend.autosave(folder / "lab.json")
    journal_path = folder / f"journal-{time.monotonic_ns()}.db"
    start = time.perf_counter()
    with SQLiteJournal(str(journal_path)) as journal:
        runner = Runner(backend, journal=journal)
        report = runner.failover(lab_plan(), kind="planned")
        runner.close()
    seconds = time.perf_counter() - start
    return seconds, backend.autosaves, report.result.value == "succeeded"


def source_vms(backend: MemoryBackend, count: int) -> list[str]:
    running = [
        vm.id
        for vm in backend.inventory().vms
        if vm.power_state is PowerState.ON and not vm.id.endswith("-replica")
    ]
    return running[: max(1, count // 2)]


def per_call(backend: MemoryBackend, vm_ids: list[str]) -> float:
    """Seconds per changing call: each VM powered off, then on again."""

    def calls() -> None:
        for vm_id in vm_ids:
            backend.power_off(vm_id)
        for vm_id in vm_ids:
            backend.power_on(vm_id)

    return median_seconds(calls, RUNS) / (2 * len(vm_ids))


def cold_save(backend: MemoryBackend, path: Path) -> float:
    def save() -> None:
        backend._store.saved_parts = {}  # built from scratch, as before parts were reused
        backend.save(path)

    return median_seconds(save, RUNS)


def measure_lab(name: str, backend: MemoryBackend, folder: Path) -> tuple[float, bool]:
    """Per-call cost with the file against one save from scratch; whether the calls counted."""
    vm_ids = source_vms(backend, CALLS)
    path = folder / f"{name}.json"
    without = per_call(backend, vm_ids)
    save = cold_save(backend, path)
    backend.autosave(path)
    with_file = per_call(backend, vm_ids)
    saves = backend.autosaves
    backend.autosave(None)
    ratio = with_file / save
    print(
        f"{name}: {len(backend.inventory().vms)} VMs, "
        f"{path.stat().st_size / 1e6:.2f} MB file; per changing call {with_file * 1e3:.1f} ms "
        f"with the file, {without * 1e6:.1f} us without (x{with_file / without:,.0f}); "
        f"one save from scratch {save * 1e3:.1f} ms"
    )
    print(f"{name}: per changing call / one save from scratch = {ratio:.2f} (target <= {TARGET})")
    return ratio, saves == 2 * len(vm_ids) * RUNS


def main() -> int:
    announce()
    checks = True
    ratios = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        plain = [demo_run(folder, kept=False) for _ in range(RUNS)]
        kept = [demo_run(folder, kept=True) for _ in range(RUNS)]
        checks &= all(ok for _, _, ok in plain + kept)
        without = statistics.median(seconds for seconds, _, _ in plain)
        with_file = statistics.median(seconds for seconds, _, _ in kept)
        calls = kept[0][1]
        print(
            f"demo planned failover: {with_file:.2f} s with the lab in a file, {without:.2f} s "
            f"without: x{with_file / without:.1f}; {calls} changing calls, "
            f"{(with_file - without) / calls * 1e3:.1f} ms each for the file"
        )
        for name, backend in (
            ("demo lab", lab()),
            (f"scaled_lab({SCALED_VMS})", scaled_lab(SCALED_VMS)),
        ):
            ratio, counted = measure_lab(name, backend, folder)
            ratios.append(ratio)
            checks &= counted
    met = all(ratio <= TARGET for ratio in ratios)
    print(f"every changing call saved once, at most one save's cost: {judged(met)}")
    return exit_code(met, checks_passed=checks)


if __name__ == "__main__":
    raise SystemExit(main())
