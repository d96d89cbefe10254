"""The command line that ``test_lab_file_killed`` kills: ``vmfailover ARGS`` (the real ``main``,
in a process of its own) that stops at one chosen moment of the run, says ``PAUSED`` on standard
output and waits there to be killed with SIGKILL.

Run as ``python killed_cli.py MOMENT ARGS...``. ``MOMENT`` is ``WHEN:CALL:N``: at the ``N``-th
``CALL`` (a changing backend call, such as ``power_on``) of the run,

- ``changed``: inside the call, once the lab in memory changed (the VM's power is set, the
  replica's state moved) and before the call returns (so before any save that follows it);
- ``returned``: once the call returned (its outcome is not journaled yet);
- ``journaled``: once its outcome is committed to the journal.

The moment is reached at most once; a run that never reaches it runs to its end.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from vmfailover.backends.memory import MemoryBackend
from vmfailover.backends.memory.store import MemoryStore
from vmfailover.cli import main
from vmfailover.engine.run_journal import RunJournal

#: The store method through which each call's change reaches the lab in memory.
_CHANGES = {"power_on": "set_power", "shutdown_guest": "set_power", "revert": "apply"}


class Moment:
    def __init__(self, text: str) -> None:
        self.when, self.call, count = text.split(":")
        self.count = int(count)
        self.seen = 0
        self.inside = threading.local()
        self._lock = threading.Lock()

    def arrived(self) -> bool:
        """One more ``call`` began; whether it is the chosen one."""
        with self._lock:
            self.seen += 1
            return self.seen == self.count


def pause() -> None:
    print("PAUSED", flush=True)
    while True:  # the test kills this process here
        time.sleep(1)


def install(moment: Moment) -> None:
    original = getattr(MemoryBackend, moment.call)

    @functools.wraps(original)
    def call(self: MemoryBackend, *args: Any, **kwargs: Any) -> Any:
        chosen = moment.arrived()
        moment.inside.chosen = chosen
        try:
            result = original(self, *args, **kwargs)
        finally:
            moment.inside.chosen = False
        if chosen and moment.when == "returned":
            pause()
        if chosen and moment.when == "journaled":
            moment.inside.pending = True
        return result

    setattr(MemoryBackend, moment.call, call)
    if moment.when == "changed":
        store_method = _CHANGES[moment.call]
        changing: Callable[..., Any] = getattr(MemoryStore, store_method)

        @functools.wraps(changing)
        def change(self: MemoryStore, *args: Any, **kwargs: Any) -> Any:
            result = changing(self, *args, **kwargs)
            if getattr(moment.inside, "chosen", False):
                pause()
            return result

        setattr(MemoryStore, store_method, change)
    if moment.when == "journaled":
        outcome = RunJournal.outcome

        @functools.wraps(outcome)
        def journaled(self: RunJournal, *args: Any, **kwargs: Any) -> None:
            outcome(self, *args, **kwargs)
            if getattr(moment.inside, "pending", False):
                self.writer.flush()  # the outcome is committed, as a durable one would be
                pause()

        RunJournal.outcome = journaled  # type: ignore[method-assign]


if __name__ == "__main__":
    install(Moment(sys.argv[1]))
    raise SystemExit(main(sys.argv[2:]))
