"""What a holder does when it is paused past its lease, or its database goes away.

Real processes and a real server: the holder is stopped with SIGSTOP and woken with SIGCONT after
another holder took its lease over; the database is restarted or stopped while a lease is held.
In every case the holder's memory backend shows no mutating call made without the lease.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.fenced import MUTATING_OPERATIONS, FencedBackend
from vmfailover.engine.lease import LeaseGrant, LeaseLostError, LeaseUnavailableError
from vmfailover.engine.lease_keeper import LeaseKeeper
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.testing import lab
from vmfailover.testing.postgres import PostgresServer

HOLDER = Path(__file__).with_name("holder_process.py")


def _stopped(pid: int) -> bool:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0] in ("T", "t")


def _wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _take_over(dsn: str, plan: str, timeout: float) -> LeaseGrant:
    lease = PostgresLease(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            grant = lease.acquire(plan, "site-b", 60)
            if grant is not None:
                return grant
            time.sleep(0.05)
        raise AssertionError("the paused holder's lease never expired")
    finally:
        lease.close()


@pytest.mark.parametrize("moment", ["idle", "after-check"])
def test_a_holder_paused_past_its_lease_changes_nothing_after_waking(
    postgres_dsn: str, moment: str
) -> None:
    ttl = 1.0
    child = subprocess.Popen(
        [sys.executable, str(HOLDER), postgres_dsn, "paused-plan", str(ttl), moment],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready = child.stdout.readline().split()
        assert ready[:1] == ["READY"], [*ready, child.stderr.read() if child.stderr else ""]
        paused_token = int(ready[1])
        if moment == "idle":
            assert child.stdout.readline().strip() == "IDLE"
            os.kill(child.pid, signal.SIGSTOP)
        else:
            assert child.stdout.readline().strip() == "PAUSING"
        _wait_until(lambda: _stopped(child.pid), 10, "the holder to stop")
        grant = _take_over(postgres_dsn, "paused-plan", timeout=ttl + 10)
        assert grant.token.number > paused_token
        assert _stopped(child.pid), "the holder stayed paused while its lease passed on"
        os.kill(child.pid, signal.SIGCONT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == 0, out + err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["at_wake"], "the holder acted before its pause"
    assert result["final"] == result["at_wake"], "a mutating call after waking"
    assert "lost" in result["error"]
    lease = PostgresLease(postgres_dsn)
    lease.check(grant.token)  # the new holder's lease is untouched
    lease.close()


@pytest.fixture(scope="module")
def restartable_server() -> Iterator[PostgresServer]:
    """A server of this module's own: its tests restart and stop it."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def own_server(restartable_server: PostgresServer) -> PostgresServer:
    restartable_server.start()  # running, whatever the test before left
    return restartable_server


def _mutations(backend: MemoryBackend) -> dict[str, int]:
    counts = backend.faults.per_operation
    return {op: counts[op] for op in MUTATING_OPERATIONS if counts[op]}


def test_a_database_restart_while_a_lease_is_held_is_ridden_out(
    own_server: PostgresServer,
) -> None:
    backend = lab()
    vm = next(v for v in backend.inventory().vms if v.name == "web01").id
    lease = PostgresLease(own_server.dsn, timeout=2)
    with LeaseKeeper(lease, "restarted-plan", ttl=4, renew_every=0.5) as keeper:
        fenced = FencedBackend(backend, keeper)
        token = keeper.token
        fenced.power_off(vm)
        own_server.stop()
        before = _mutations(backend)
        with pytest.raises(LeaseUnavailableError, match="cannot check"):
            fenced.power_on(vm)  # the lease can be neither confirmed nor denied: no action
        assert _mutations(backend) == before
        own_server.start()
        # The next renewals reconnect; the fenced call goes through once the store answers.
        _wait_until(lambda: _retry(lambda: fenced.power_on(vm)), 10, "the fenced call")
        time.sleep(1.5)  # renewals go on past the restart
        keeper.check()
        assert keeper.lost is None and keeper.token == token
        state = lease.state("restarted-plan")
        assert state is not None and state.held and state.token == token
        own_server.restart()  # a restart between two calls: the next call reconnects at once
        fenced.power_off(vm)
        keeper.check()
    lease.close()


def _retry(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except LeaseUnavailableError:
        return False
    return True


def test_a_database_down_past_the_lease_stops_the_holder_cleanly(
    own_server: PostgresServer,
) -> None:
    backend = lab()
    vm = next(v for v in backend.inventory().vms if v.name == "web01").id
    lease = PostgresLease(own_server.dsn, timeout=1)
    keeper = LeaseKeeper(lease, "outage-plan", ttl=1.0, renew_every=0.3)
    keeper.acquire()
    fenced = FencedBackend(backend, keeper)
    fenced.power_off(vm)
    own_server.stop()
    before = _mutations(backend)
    time.sleep(1.3)
    with pytest.raises(LeaseLostError, match=r"deadline passed|no renewal got through"):
        fenced.power_on(vm)
    assert keeper.lost is not None
    own_server.start()
    with pytest.raises(LeaseLostError):
        fenced.power_on(vm)  # lost stays lost, even with the store back
    assert _mutations(backend) == before, "nothing acted without a lease"
    with pytest.raises(LeaseLostError, match="expired"):
        lease.check(keeper.token)
    successor = lease.acquire("outage-plan", "site-b", 30)
    assert successor is not None and successor.token.newer_than(keeper.token)
    keeper.release()
    lease.check(successor.token)
    lease.close()
