"""A lease holder in a process of its own, for the tests that pause it (SIGSTOP/SIGCONT).

``python holder_process.py DSN PLAN TTL MODE``: holds PLAN's lease on the PostgreSQL at DSN and
keeps powering a lab VM off and on through a fenced memory backend. It is paused (SIGSTOP) either
by the test while it idles after announcing ``IDLE`` (MODE ``idle``) or by itself right after the
store confirmed its lease, before the call that check was for (MODE ``after-check``, the worst
moment). On SIGCONT it notes the backend's mutating call counts; when its lease is refused it
prints those and the final counts as JSON and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from vmfailover.engine.fenced import MUTATING_OPERATIONS, FencedBackend
from vmfailover.engine.lease import FencingToken, LeaseLostError
from vmfailover.engine.lease_keeper import LeaseKeeper
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.testing import lab


class PausingLease(PostgresLease):
    """Stops its own process once, right after the store answered a check."""

    pause_at_check: int | None = None
    checks = 0

    def check(self, token: FencingToken) -> None:
        super().check(token)
        self.checks += 1
        if self.checks == self.pause_at_check:
            print("PAUSING", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)


def main() -> int:
    dsn, plan, ttl, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    backend = lab()
    backend.faults.per_operation.clear()
    vm = next(v for v in backend.inventory().vms if v.name == "web01").id

    def mutating() -> dict[str, int]:
        counts = backend.faults.per_operation
        return {op: counts[op] for op in sorted(MUTATING_OPERATIONS) if counts[op]}

    at_wake: dict[str, int] = {}

    def woke(signum: int, frame: object) -> None:
        at_wake.update(mutating())

    signal.signal(signal.SIGCONT, woke)
    lease = PausingLease(dsn)
    if mode == "after-check":
        lease.pause_at_check = 6
    keeper = LeaseKeeper(lease, plan, ttl=ttl, holder=f"paused-{os.getpid()}")
    keeper.acquire()
    fenced = FencedBackend(backend, keeper)
    print("READY", keeper.token.number, flush=True)
    try:
        for turn in range(10_000):
            fenced.power_off(vm)
            fenced.power_on(vm)
            if mode == "idle" and turn == 2:
                print("IDLE", flush=True)
                time.sleep(2.0)  # the test stops the process here
    except LeaseLostError as error:
        print(json.dumps({"at_wake": at_wake, "final": mutating(), "error": str(error)}))
        return 0
    print(json.dumps({"error": "the lease was never refused", "final": mutating()}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
