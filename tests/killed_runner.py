"""The orchestrator that ``test_resume_killed`` kills: a planned failover through the Hyper-V
backend against simulated hosts the test process serves over HTTP, with a journal on disk.

Run as ``python killed_runner.py CONFIG.json``. It stops at the ``pause_at``-th changing backend
call, ``before`` it acts (its intent is durable by then) or ``after`` it acted (its outcome not
yet), says ``PAUSED`` on standard output and waits to be killed with SIGKILL. Every changing call
that completes is appended to ``calls_log`` (one JSON line each, flushed), so the test can count
power-ons across the killed process and the one that resumes. Without a pause point it runs to
the end and says ``DONE``.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from typing import Any

from vmfailover import FailoverPlan, Runner, SQLiteJournal, StartOrder
from vmfailover.backends.hyperv import HostConnection, HyperVBackend
from vmfailover.engine.run_journal import MUTATING
from vmfailover.model import Credentials


def connect(config: dict[str, Any], **options: Any) -> HyperVBackend:
    """The Hyper-V backend over the hosts ``config`` names (``options`` for the backend)."""
    options.setdefault("sync_poll_interval", 0.2)
    credentials = Credentials(config["username"], config["password"])
    return HyperVBackend(
        [
            HostConnection(
                name,
                site,
                address="127.0.0.1",
                port=port,
                tls=False,
                auth="basic",
                credentials=credentials,
                encryption="never",
                operation_timeout=2,
                read_timeout=10,
                connect_timeout=5,
                pipeline_timeout=30,
            )
            for name, site, port in config["hosts"]
        ],
        **options,
    )


def plan_of(config: dict[str, Any]) -> FailoverPlan:
    order = StartOrder()
    previous: list[str] = []
    for vm_id in config["vms"]:  # a chain: each VM after the one before
        order.add(vm_id, after=previous)
        previous = [vm_id]
    return FailoverPlan("killed", config["vms"], order=order, power_off_source="graceful")


class Logged:
    """Passes calls through; logs each completed changing call; pauses where told."""

    def __init__(self, inner: HyperVBackend, config: dict[str, Any]) -> None:
        self.inner = inner
        self.name = inner.name
        self.clock = inner.clock
        self.log = open(config["calls_log"], "a", encoding="utf-8")  # noqa: SIM115
        self.pause_at = config.get("pause_at")
        self.moment = config.get("moment", "before")
        self.count = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.log.close()
        self.inner.close()

    def _pause(self) -> None:
        print("PAUSED", flush=True)
        while True:  # the test kills this process here
            time.sleep(1)

    def __getattr__(self, attribute: str) -> Any:
        target = getattr(self.inner, attribute)
        if attribute not in MUTATING:
            return target

        @functools.wraps(target)
        def call(*args: Any) -> Any:
            with self._lock:
                self.count += 1
                paused = self.count == self.pause_at
            if paused and self.moment == "before":
                self._pause()
            result = target(*args)
            with self._lock:
                self.log.write(json.dumps({"call": attribute, "target": str(args[0])}) + "\n")
                self.log.flush()
            if paused:
                self._pause()
            return result

        return call


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        config = json.load(file)
    backend = Logged(connect(config), config)
    with SQLiteJournal(config["journal"]) as journal:
        runner = Runner(backend, journal=journal, poll_interval=0.2)  # type: ignore[arg-type]
        report = runner.failover(plan_of(config), kind="planned")
        runner.close()
    backend.close()
    print("DONE", report.result.value, flush=True)


if __name__ == "__main__":
    main()
