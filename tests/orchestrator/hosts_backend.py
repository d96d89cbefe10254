"""The backend of the orchestrator processes under test (``--backend hosts_backend:backend``).

The Hyper-V backend over simulated hosts that the test process serves over HTTP (the peer outlives
every orchestrator), read from the JSON file ``$ORCHESTRATOR_TEST_CONFIG`` names. Every call that
leaves the process, reads included, is appended to ``calls_log`` as a JSON line with this
process's id *before* it goes out, and completed changing calls once more after (``"done":
true``), so the test can tell which process called what and when. With ``pause_at``, the first
process to complete that many changing calls stops right after the call acted (once across all
processes: a marker file says it happened), says ``PAUSED`` and waits until it is continued
(SIGCONT) or killed.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from killed_runner import connect
from vmfailover.backends.hyperv import HyperVBackend
from vmfailover.engine.run_journal import MUTATING

READS = frozenset({"inventory", "recovery_points", "recovery_point_limit", "readiness"})

#: Longest a paused process waits to be continued or killed.
PAUSE_SECONDS = 120.0


class Recorded:
    """Passes calls through, records each, pauses once where told."""

    def __init__(self, inner: HyperVBackend, config: dict[str, Any]) -> None:
        self.inner = inner
        self.name = inner.name
        self.clock = inner.clock
        self.log = open(config["calls_log"], "a", encoding="utf-8")  # noqa: SIM115
        self.pause_at: int | None = config.get("pause_at")
        self.marker = Path(config["calls_log"] + ".paused")
        self.changes = 0
        self.woken = threading.Event()
        self._lock = threading.Lock()
        signal.signal(signal.SIGCONT, lambda signum, frame: self.woken.set())

    def close(self) -> None:
        self.log.close()
        self.inner.close()

    def _record(self, call: str, target: str, **extra: object) -> None:
        line = {"pid": os.getpid(), "call": call, "target": target, "at": time.time(), **extra}
        with self._lock:
            self.log.write(json.dumps(line) + "\n")
            self.log.flush()

    def _pause_here(self) -> bool:
        with self._lock:
            self.changes += 1
            if self.changes != self.pause_at:
                return False
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False  # another process paused already
        return True

    def __getattr__(self, attribute: str) -> Any:
        target = getattr(self.inner, attribute)
        if attribute not in MUTATING and attribute not in READS:
            return target

        @functools.wraps(target)
        def call(*args: Any, **kwargs: Any) -> Any:
            self._record(attribute, str(args[0]) if args else "", sent=True)
            result = target(*args, **kwargs)
            if attribute in MUTATING:
                self._record(attribute, str(args[0]), done=True)
                if self._pause_here():
                    print("PAUSED", flush=True)
                    self.woken.wait(PAUSE_SECONDS)
                    print("CONTINUED", flush=True)
            return result

        return call


def backend() -> Recorded:
    with open(os.environ["ORCHESTRATOR_TEST_CONFIG"], encoding="utf-8") as file:
        config = json.load(file)
    return Recorded(connect(config), config)


if __name__ == "__main__":  # pragma: no cover - imported by the CLI, never run
    sys.exit("import this module: vmfailover serve --backend hosts_backend:backend")
