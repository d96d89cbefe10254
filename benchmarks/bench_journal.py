"""What the journal costs: a failover of 10,000 VMs with the SQLite journal, and with the
PostgreSQL journal, against the same failover without one.

Run from the repository root: ``python benchmarks/bench_journal.py``. The scene is built here
(10,000 VMs on 50 hosts per site, each with one NIC re-addressed by a rule, replicated with one
recovery point), on the memory backend with **zero latency** in virtual time, so the run is
nothing but the runner's own work: the worst case for a journal, whose cost is then not hidden
behind any hypervisor's seconds. Each VM's regular failover makes three changing calls (revert,
set the guest address, power on) and the journal records each one's intent durably before it
acts, plus the outcomes, the VM's start and end, and the run's record and report; the SQLite
file lives in a temporary folder on the machine's disk (``synchronous=FULL``: every commit waits
for the disk). The PostgreSQL journal writes to a throwaway server started here
(:mod:`vmfailover.testing.postgres`, durable settings: ``fsync`` and ``synchronous_commit`` on,
so its commits wait for the disk too), over its Unix socket: a round trip per commit that a
remote primary would make longer.

Both runs use the same runner (``max_parallel`` below); the intents of the VMs that act at once
share a commit. Printed: each run's wall time, the ratios (SQLite's target <= 2.0, median of
three; PostgreSQL's printed beside it, without a target of its own), each journal's overhead per
VM, and its commits and rows. Exits non-zero when SQLite misses. Without PostgreSQL's server
binaries the PostgreSQL column says so and the SQLite result stands alone.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    import vmfailover  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _smoke import SMOKE, announce, exit_code, sized

from vmfailover import VM, FailoverPlan, IPConfig, Nic, PowerState, ReIPRule, ReIPRules, Runner
from vmfailover.backends.memory import BLOCK_SIZE, MemoryBackend
from vmfailover.engine.journal import Journal
from vmfailover.engine.postgres_journal import PostgresJournal
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.testing.postgres import PostgresServer, PostgresServerError

VMS = sized(10_000, 20)
HOSTS = sized(50, 2)
MAX_PARALLEL = sized(64, 4)
REPEATS = sized(3, 1)
TARGET = 2.0


def scene() -> tuple[MemoryBackend, FailoverPlan]:
    """10,000 VMs at site a, each replicated to site b with one recovery point."""
    backend = MemoryBackend()
    for site in ("a", "b"):
        backend.add_site(site)
        backend.add_datastore(f"ds-{site}", site, capacity_bytes=1 << 60)
        backend.add_network(f"net-{site}", site)
        for number in range(HOSTS):
            backend.add_host(
                f"h{site}{number}",
                site,
                cpu_cores=4096,
                memory_mb=1 << 30,
                datastores=(f"ds-{site}",),
                networks=(f"net-{site}",),
            )
    names = []
    for index in range(VMS):
        mac = f"02:00:00:{index // 65536:02x}:{index // 256 % 256:02x}:{index % 256:02x}"
        address = f"10.1.{index // 250}.{index % 250 + 1}/16"
        vm = VM(
            f"id-{index}",
            f"vm{index:05d}",
            f"ha{index % HOSTS}",
            power_state=PowerState.OFF,
            nics=(Nic(mac, "net-a", (IPConfig(address),)),),
            disk_bytes=4 * BLOCK_SIZE,
        )
        backend.add_vm(vm, boot_seconds=30)
        replica = backend.create_replica(
            vm.id, f"hb{index % HOSTS}", "ds-b", network_map={"net-a": "net-b"}
        )
        backend.sync(replica.id)
        names.append(vm.name)
    plan = FailoverPlan("bench", names, reip=ReIPRules([ReIPRule("10.1.0.0/16", "10.2.0.0/16")]))
    return backend, plan


def one_run(open_journal: Callable[[], Journal] | None) -> tuple[float, int, int]:
    """Seconds of one regular failover (and the journal's commits and rows, if any)."""
    backend, plan = scene()
    journal = open_journal() if open_journal is not None else None
    runner = Runner(backend, max_parallel=MAX_PARALLEL, journal=journal)
    gc.collect()
    started = time.perf_counter()
    report = runner.failover(plan, kind="regular")
    runner.close()
    seconds = time.perf_counter() - started
    if report.result.value != "succeeded" or len(report.vms) != VMS:
        raise SystemExit(f"the benchmark's failover did not succeed: {report.summary()}")
    commits = rows = 0
    if journal is not None:
        assert runner._writer is not None
        commits = runner._writer.commits
        rows = len(journal.load(report.run_id).entries)
        journal.close()
    return seconds, commits, rows


def _overhead(seconds: float, plain: float) -> str:
    return (
        f"{seconds:.2f} s (ratio {seconds / plain:.2f}, {(seconds - plain) / VMS * 1e6:.0f} us/VM)"
    )


def main() -> int:
    announce()
    sqlite_ratios: list[float] = []
    postgres_ratios: list[float] = []
    with contextlib.ExitStack() as stack:
        server: PostgresServer | None = None
        try:
            server = stack.enter_context(PostgresServer(durable=True))
        except PostgresServerError as error:
            print(f"PostgreSQL journal: not measured ({error})")
        for repeat in range(REPEATS):
            plain, _, _ = one_run(None)
            with tempfile.TemporaryDirectory(prefix="bench-journal-") as folder:
                sqlite = functools.partial(SQLiteJournal, Path(folder) / "journal.db")
                journaled, commits, rows = one_run(sqlite)
            sqlite_ratios.append(journaled / plain)
            line = (
                f"pair {repeat + 1}: without a journal {plain:.2f} s; SQLite "
                f"{_overhead(journaled, plain)}, {commits} commits, {rows} rows"
            )
            if server is not None:
                postgres = functools.partial(PostgresJournal, server.dsn, schema=f"bench_{repeat}")
                on_pg, pg_commits, _ = one_run(postgres)
                postgres_ratios.append(on_pg / plain)
                line += f"; PostgreSQL {_overhead(on_pg, plain)}, {pg_commits} commits"
            print(line, flush=True)
    ratio = statistics.median(sqlite_ratios)
    print(
        f"{VMS:,} VMs, regular failover, memory backend with zero latency, max_parallel "
        f"{MAX_PARALLEL}: journaled / not journaled = {ratio:.2f} with SQLite (target <= {TARGET})"
        + (
            f", {statistics.median(postgres_ratios):.2f} with PostgreSQL (local, durable)"
            if postgres_ratios
            else ""
        )
    )
    if ratio > TARGET and not SMOKE:
        print("MISS")
    return exit_code(ratio <= TARGET)


if __name__ == "__main__":
    raise SystemExit(main())
