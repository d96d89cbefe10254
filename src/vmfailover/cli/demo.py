"""The demo: the whole story on the in-memory lab, in a few seconds.

Replicate, list recovery points, then one plan three ways: a test failover (isolated copies,
production untouched, cleaned up with proof), a planned failover (no data lost) that is undone,
then planned again, run at site B for a while and failed back (only the changed blocks move), and
on a second lab, replicated by a scheduled job whose RPO table is shown just before site A is
lost, a regular failover (the loss counted). Each with a progress display and its report. It is
also the quickest way to see what the library does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import TextIO

from vmfailover.backends.memory import BLOCK_SIZE, MemoryBackend
from vmfailover.backends.memory.lab import (
    LAB_DEPENDENCIES,
    LAB_NETWORK_MAP,
    LAB_TEST_NETWORK_MAP,
    lab,
)
from vmfailover.cli.output import Output
from vmfailover.cli.show import show_report, show_rpo
from vmfailover.engine.replication import ReplicationJob
from vmfailover.engine.replication_results import JobOutcome, JobResult
from vmfailover.engine.results import RunReport
from vmfailover.engine.rpo import RPOReport
from vmfailover.engine.runner import Runner
from vmfailover.engine.scheduler import Scheduler
from vmfailover.errors import ValidationError
from vmfailover.model import is_finite_number
from vmfailover.plan import FailoverPlan
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.reip import ReIPRule, ReIPRules
from vmfailover.policy.retention import RetentionPolicy
from vmfailover.policy.schedule import format_elapsed
from vmfailover.policy.sequencer import StartOrder

__all__ = [
    "LAB_REIP",
    "LAB_TEST_REIP",
    "lab_plan",
    "lab_replication_job",
    "lab_start_order",
    "run_demo",
]


def lab_start_order() -> StartOrder:
    """The lab application's start order: directory, then databases, apps and web servers."""
    order = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        order.add(name, after=after)
    return order


def _show_points(output: Output, backend: MemoryBackend) -> None:
    inventory = backend.inventory()
    rows = []
    for replica in inventory.replicas:
        points = backend.recovery_points(replica.id)
        source = inventory.vm(replica.source_vm)
        newest = points[-1]
        rows.append(
            (
                source.name,
                inventory.vm(replica.replica_vm).name,
                replica.target_host,
                len(points),
                f"{points[0].created_at:%H:%M:%S}",
                f"{newest.created_at:%H:%M:%S}",
                f"{newest.size_bytes // BLOCK_SIZE} MiB",
            )
        )
    headers = ("VM", "replica", "on host", "points", "oldest", "newest", "last sync moved")
    output.table(headers, rows)


LAB_REIP = ReIPRules(
    [
        ReIPRule("192.168.20.*", "10.20.0.*", gateway="10.20.0.1", dns=["10.20.0.11"]),
        ReIPRule("192.168.10.*", "10.10.0.*", gateway="10.10.0.1", dns=["10.20.0.11"]),
    ]
)
"""The lab's production re-IP: site A's subnets become site B's."""

LAB_TEST_REIP = ReIPRules(
    [
        ReIPRule("192.168.20.*", "172.16.20.*", gateway="172.16.20.1", dns=["172.16.20.11"]),
        ReIPRule("192.168.10.*", "172.16.10.*", gateway="172.16.10.1", dns=["172.16.20.11"]),
    ]
)
"""The lab's test re-IP: test copies get addresses of their own, inside the isolated networks."""


def lab_plan(**overrides: object) -> FailoverPlan:
    """The lab's three-tier application as one failover plan, for all three kinds."""
    settings: dict[str, object] = {
        "name": "three-tier",
        "vms": tuple(LAB_DEPENDENCIES),
        "order": lab_start_order(),
        "network": NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
        "reip": LAB_REIP,
        "test_reip": LAB_TEST_REIP,
        "rpo": "30m",
        "rto": "15m",
        "description": "Directory, databases, application and web tier of site A, at site B.",
    }
    settings.update(overrides)
    return FailoverPlan(**settings)  # type: ignore[arg-type]


def lab_replication_job(backend: MemoryBackend, plan: FailoverPlan) -> ReplicationJob:
    """The job that replicates the plan's VMs to site B every 15 minutes, against the plan's
    RPO, keeping the last 4 points and one an hour for a day."""
    return ReplicationJob(
        plan.name,
        plan.vms,
        "esx-b1",
        "ds-b1",
        schedule={"every": "15m"},
        retention=RetentionPolicy(last=4, hourly=24),
        rpo=plan.rpo or "30m",
        network=LAB_NETWORK_MAP,
        backend=backend,
    )


def _replicate_until_disaster(
    backend: MemoryBackend, plan: FailoverPlan, *, hours: int, since_last_sync: timedelta
) -> tuple[tuple[JobResult, ...], RPOReport]:
    """From the next quarter hour, run the plan's replication job on the scheduler for ``hours``
    while production writes, let ``since_last_sync`` pass after the last sync, and measure the
    RPO over the last ``hours`` (all of them the job's): the job's runs and the RPO report."""
    job = lab_replication_job(backend, plan)
    now = backend.clock.now()
    first = job.schedule.next_after(now)
    assert first is not None  # an interval always has a next slot
    backend.run_workload((first - now).total_seconds())
    end = first + timedelta(hours=hours)
    with Scheduler([job], max_parallel=1, rpo_check=None) as scheduler:
        while True:
            scheduler.run_pending()
            following = job.next_due(backend.clock.now())
            if following is None or following > end:
                break
            backend.run_workload((following - backend.clock.now()).total_seconds())
        backend.run_workload(since_last_sync.total_seconds())
        return job.history, scheduler.rpo_status(window=timedelta(hours=hours))


def check_speed(speed: object) -> float | None:
    """``--speed``: None for deterministic virtual time, else lab seconds per real second."""
    if speed is None:
        return None
    if not is_finite_number(speed) or not 1 <= speed <= 10_000:
        raise ValidationError.of(
            "--speed",
            f"must be a number of lab seconds per real second from 1 to 10000, got {speed!r}",
            "leave it out to run in virtual time, as fast as the machine allows",
        )
    return float(speed)


def _fail_back(
    say: Callable[..., None],
    show: Callable[[RunReport], None],
    backend: MemoryBackend,
    runner: Runner,
    plan: FailoverPlan,
) -> RunReport:
    """Planned failover again, production at site-b for an hour, then home: the failback's
    report (committed, replication in its first direction again)."""
    say(
        "4. Planned failover again; site-b runs production for an hour, then fails back:",
        style="bold",
    )
    run = runner.start(plan, kind="planned")
    say(run.wait().summary())
    for vm in run.plan.vms:  # what production writes at site-b meanwhile
        backend.write(backend.inventory().replica_of(vm).replica_vm, 64)
    backend.clock.advance(3600)  # type: ignore[attr-defined]
    back = runner.failback(run, background=False)
    assert back.report is not None
    say()
    show(back.report)
    committed = runner.commit(back)
    failback, commit = committed.failback, committed.commit
    assert failback is not None
    assert commit is not None
    share = failback.moved_bytes / failback.disk_bytes
    say(
        f"Only what site-b wrote came home: {failback.blocks_moved} blocks "
        f"({failback.moved_bytes // (1 << 20)} MiB, {share:.2%} of the disks). "
        f"Then the failback's commit: {commit.summary()}."
    )
    return committed


def run_demo(
    out: TextIO, *, speed: float | None = None, seed: int = 0, as_json: bool = False
) -> list[RunReport]:
    """Play the demo, writing to ``out``; returns the reports of its failovers.

    With ``speed`` None the lab runs in virtual time that jumps ahead whenever every worker waits,
    so every machine reports the same RTOs; a ``speed`` lets lab time flow at that many seconds
    per real second, to watch the progress.
    """
    rate = check_speed(speed)

    output = Output(out)

    def say(text: str = "", style: str | None = None) -> None:
        if not as_json:
            output.say(text, style=style)

    def show(report: RunReport) -> None:
        if not as_json:
            show_report(output, report)

    backend = lab(seed=seed)
    clock = backend.clock
    inventory = backend.inventory()
    sources = inventory.vms_at("site-a")
    say(f"vmfailover demo: the in-memory lab at {clock.now():%Y-%m-%d %H:%M:%S} UTC")
    say(
        f"site-a: {len(sources)} VMs on {sum(h.site == 'site-a' for h in inventory.hosts)} hosts, "
        f"replicated to site-b ({len(inventory.replicas)} replicas)"
    )
    say()
    say("1. Replicating every VM to site-b now ...", style="bold")
    for replica in inventory.replicas:
        backend.sync(replica.id)
    if not as_json:
        _show_points(output, backend)
    say()
    plan = lab_plan()
    if rate is not None:
        clock.set_rate(rate)  # type: ignore[attr-defined]
    runner = Runner(backend, max_parallel=8, poll_interval=2.0)
    if not as_json:
        runner.subscribe(output.run_progress())
    reports: dict[str, RunReport] = {}

    say(
        "2. Test failover: isolated copies at site-b, test addresses, production untouched.",
        style="bold",
    )
    run = runner.start(plan, kind="test")
    reports["test"] = run.wait()
    say()
    show(reports["test"])
    reports["test"] = runner.cleanup(run)
    assert reports["test"].cleanup is not None
    say(f"Cleanup: {reports['test'].cleanup.summary()}.")
    say()

    backend.run_workload(300)
    say(
        f"3. {clock.now():%H:%M:%S}: five minutes of writes later, a planned failover (no loss):",
        style="bold",
    )
    planned = runner.start(plan, kind="planned")
    reports["planned"] = planned.wait()
    say()
    show(reports["planned"])
    say(
        f"Blocks lost: {sum(r.data_loss_blocks or 0 for r in reports['planned'].vms)} "
        "(every replica's disk equals its source's at shutdown)."
    )
    reports["planned"] = runner.undo(planned)
    assert reports["planned"].undo is not None
    say(f"A change of heart, so undo: {reports['planned'].undo.summary()}.")
    say()

    reports["failback"] = _fail_back(say, show, backend, runner, plan)
    say()

    disaster = lab(seed=seed)
    say(
        f"5. A second lab: job {plan.name!r} replicates the plan's VMs every 15 minutes for two "
        f"hours, RPO {format_elapsed(timedelta(seconds=plan.rpo or 0))}. Five minutes after its "
        "last sync, the RPO table:",
        style="bold",
    )
    runs, rpo = _replicate_until_disaster(
        disaster, plan, hours=2, since_last_sync=timedelta(minutes=5)
    )
    synced = sum(run.outcome is JobOutcome.SUCCEEDED for run in runs)
    say(
        f"{len(runs)} runs, {synced} with every VM synced: "
        f"{sum(run.bytes_moved for run in runs) / (1 << 30):.1f} GiB moved, "
        f"{sum(run.points_created for run in runs)} points made, "
        f"{sum(run.points_removed for run in runs)} removed by retention."
    )
    if not as_json:
        show_rpo(output, rpo)
    say()
    disaster.fail_site("site-a")
    if rate is not None:
        disaster.clock.set_rate(rate)  # type: ignore[attr-defined]
    say(
        f"{disaster.clock.now():%H:%M:%S}: site-a is lost (power failure), so the same plan as "
        "a regular failover:",
        style="bold",
    )
    regular_runner = Runner(disaster, max_parallel=8, poll_interval=2.0)
    if not as_json:
        regular_runner.subscribe(output.run_progress())
    reports["regular"] = regular_runner.failover(plan, kind="regular")
    say()
    show(reports["regular"])
    total = sum(r.data_loss_blocks or 0 for r in reports["regular"].vms)
    say(
        f"Measured on the lab: {total} blocks ({total * BLOCK_SIZE // (1 << 20)} MiB) written "
        "on site-a after the recovery points used are lost."
    )
    if as_json:
        document: dict[str, object] = {kind: report.as_dict() for kind, report in reports.items()}
        document["rpo_before_disaster"] = rpo.as_dict()
        out.write(json.dumps(document, indent=2) + "\n")
    return list(reports.values())
