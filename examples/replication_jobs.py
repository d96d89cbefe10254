"""Replicate the lab's web tier every 15 minutes for two simulated days, then read the RPO table.

Run it: ``python examples/replication_jobs.py``. It touches nothing outside this process but a
journal in a temporary folder, which records every run: the lab's clock is virtual, so two days
of replication take a second or two.
"""

import tempfile
from datetime import timedelta
from pathlib import Path

from vmfailover import ReplicationJob, RetentionPolicy, RPOChanged, Scheduler, SQLiteJournal
from vmfailover.testing import lab


def main() -> None:
    backend = lab()  # site A replicated to site B; the newest points are 20 minutes old
    web = ReplicationJob(
        "web-tier",
        ["web01", "web02", "web03"],
        "esx-b1",
        "ds-b1",
        schedule={"every": "15m"},
        retention=RetentionPolicy(last=4, hourly=12, daily=7, weekly=4),
        rpo="30m",
        bandwidth="50MB/s",
        backend=backend,
    )
    web.subscribe(lambda event: print(event) if isinstance(event, RPOChanged) else None)

    with (
        tempfile.TemporaryDirectory() as folder,
        SQLiteJournal(Path(folder) / "journal.db") as journal,
        Scheduler([web], journal=journal) as scheduler,
    ):
        scheduler.run_forever(until=backend.clock.now() + timedelta(days=2))
        print(web.history[-1])  # the last run: per VM, the point made and what retention removed
        print()
        web.disable()  # stop replicating for an hour: the RPO goes from compliant to severe
        scheduler.run_forever(until=backend.clock.now() + timedelta(hours=1))
        report = scheduler.rpo_status()
        # The journal holds every run, for audits and for RPO compliance after a restart.
        recorded = journal.replication_runs(
            "web-tier", since=backend.clock.now() - timedelta(days=1)
        )
        print(f"journal: {len(journal.replication_runs())} runs, {len(recorded)} in the last day")
    print(report)
    assert report.count("severe") == 3, report
    assert recorded[-1] == web.history[-1]


if __name__ == "__main__":
    main()
