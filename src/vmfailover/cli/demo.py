"""The demo: the whole story on the in-memory lab, in a few seconds.

Replicate, list recovery points, lose site A, fail over to site B in dependency order with a
progress display, and print the report. It is also the quickest way to see what the library does.
"""

from __future__ import annotations

import threading
from typing import TextIO

from vmfailover._render import in_words, text_table
from vmfailover.backends.memory import BLOCK_SIZE, MemoryBackend
from vmfailover.backends.memory.lab import LAB_DEPENDENCIES, lab
from vmfailover.engine.events import RunEvent, RunStarted, RunWarning, VMFailed, VMReady
from vmfailover.engine.results import RunReport
from vmfailover.engine.runner import Runner
from vmfailover.policy.sequencer import StartOrder

__all__ = ["Progress", "lab_start_order", "run_demo"]


def lab_start_order() -> StartOrder:
    """The lab application's start order: directory, then databases, apps and web servers."""
    order = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        order.add(name, after=after)
    return order


class Progress:
    """Prints a run's progress: a redrawn bar on a terminal, one line per VM elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._total = 0
        self._done = 0
        self._lock = threading.Lock()

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            if isinstance(event, RunStarted):
                self._total = len(event.vms)
                self._line(f"failing over {self._total} VMs ({event.run_id})")
            elif isinstance(event, VMReady):
                self._done += 1
                self._line(f"{event.vm} ready", progress=True)
            elif isinstance(event, VMFailed):
                self._done += 1
                self._line(f"{event.vm} {in_words(event.state)}: {event.reason}", progress=True)
            elif isinstance(event, RunWarning):
                self._line(f"warning: {event.message}")

    def _line(self, text: str, progress: bool = False) -> None:
        if progress and self._total:
            width = 24
            filled = width * self._done // self._total
            bar = "#" * filled + "." * (width - filled)
            text = f"[{bar}] {self._done:>3}/{self._total}  {text}"
        if self._tty and progress:
            end = "\n" if self._done == self._total else ""
            self._out.write(f"\r\x1b[2K{text}{end}")
        else:
            self._out.write(text + "\n")
        self._out.flush()


def _points_table(backend: MemoryBackend) -> str:
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
    return text_table(headers, rows)


def run_demo(
    out: TextIO, *, speed: float = 120.0, seed: int = 0, as_json: bool = False
) -> RunReport:
    """Play the demo, writing to ``out``; returns the failover's report."""

    def say(text: str = "") -> None:
        if not as_json:
            out.write(text + "\n")
            out.flush()

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
    say("1. Replicating every VM to site-b now ...")
    for replica in inventory.replicas:
        backend.sync(replica.id)
    say(_points_table(backend))
    say()

    backend.run_workload(300)
    say(f"2. {clock.now():%H:%M:%S}: five minutes of writes later, site-a is lost (power failure).")
    backend.fail_site("site-a")
    say()

    say("3. Regular (unplanned) failover to site-b, in dependency order:")
    clock.set_rate(speed)  # type: ignore[attr-defined]
    runner = Runner(backend, max_parallel=8, poll_interval=2.0)
    if not as_json:
        runner.subscribe(Progress(out))
    report = runner.failover(lab_start_order(), rto=900)
    say()
    if as_json:
        out.write(report.to_json(indent=2) + "\n")
    else:
        say(str(report))
        say()
        lost = [
            (r.vm, backend.blocks_differing(backend.disk(r.source_vm_id), backend.point_disk(p)))
            for r in report.vms
            if (p := r.recovery_point) is not None
        ]
        total = sum(blocks for _, blocks in lost)
        say(
            f"Measured on the lab: {total} blocks ({total * BLOCK_SIZE // (1 << 20)} MiB) written "
            "on site-a after the recovery points used are lost, "
            f"{max(lost, key=lambda item: item[1])[0]} the most."
        )
    return report
