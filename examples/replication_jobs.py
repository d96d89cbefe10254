"""Replicate the lab's web tier every 15 minutes for two simulated days, then read the RPO table.

Run it: ``python examples/replication_jobs.py``. It touches nothing outside this process: the
lab's clock is virtual, so two days of replication take a second or two.
"""

from datetime import timedelta

from vmfailover import ReplicationJob, RetentionPolicy, RPOChanged, Scheduler
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

    with Scheduler([web]) as scheduler:
        scheduler.run_forever(until=backend.clock.now() + timedelta(days=2))
        print(web.history[-1])  # the last run: per VM, the point made and what retention removed
        print()
        web.disable()  # stop replicating for an hour: the RPO goes from compliant to severe
        scheduler.run_forever(until=backend.clock.now() + timedelta(hours=1))
        report = scheduler.rpo_status()
    print(report)
    assert report.count("severe") == 3, report


if __name__ == "__main__":
    main()
