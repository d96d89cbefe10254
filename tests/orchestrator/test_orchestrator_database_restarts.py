"""The orchestrators' PostgreSQL database goes away during a run, for real.

Two ``vmfailover serve`` processes share one PostgreSQL database (journal and leases) on a server
of this module's own, over TCP with a password that only the environment holds (``PGPASSWORD``,
as an operator keeps it off the command line); the plan, hosts and checks are those of
:mod:`test_orchestrator_processes`. The active orchestrator is held right after the run's second
power-on (acted, not yet recorded) while the database goes away:

* **a short restart** (an immediate stop, as a crash, and a start with recovery, well within the
  lease): the orchestrator retries and goes on under the same token; the run ends as the
  uninterrupted run ends, nobody took it over, and the standby never acted;
* **down past the lease**: the active orchestrator stops acting once its own deadline passes
  (no changing call while the database cannot confirm the lease, and no call at all past the
  deadline); when the database is back, a successor takes the run over with a newer token and
  finishes it, no VM powered on twice.

The server is durable (fsync and synchronous commit on): a crash must not lose a commit the
orchestrator was told was made.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from orchestrator.stores import SharedStores
from orchestrator.test_orchestrator_processes import (
    PLAN,
    SECOND_POWER_ON,
    WAIT_SECONDS,
    Service,
    check_the_end,
    paused_at,
    renewed,
    services,
    setup,
    wait_until_ended,
    wire,
)
from vmfailover.engine.journal import EntryKind
from vmfailover.engine.lease import LeaseState
from vmfailover.engine.run_journal import MUTATING
from vmfailover.testing.hyperv import HyperVHost
from vmfailover.testing.hyperv.fixtures import hyperv_host_factory
from vmfailover.testing.postgres import PostgresServer

__all__ = ["hyperv_host_factory", "services"]

#: Long enough that a restart of the database (a crash and its recovery) ends well within it.
RIDE_OUT_LEASE_SECONDS = 15.0
#: Short, so the database stays down past it quickly.
SHORT_LEASE_SECONDS = 2.0


@pytest.fixture(scope="module")
def database_server() -> Iterator[PostgresServer]:
    """A durable server of this module's own (its tests stop and restart it), over TCP."""
    with PostgresServer(tcp=True, durable=True) as server:
        yield server


@pytest.fixture
def database(
    database_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SharedStores, str]]:
    """Stores in a fresh schema of that server, the password in ``PGPASSWORD`` only; and the
    password, to check nothing shows it."""
    import psycopg

    settings = conninfo_to_dict(database_server.tcp_dsn)
    password = str(settings.pop("password"))
    schema = f"restart_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(database_server.tcp_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    monkeypatch.setenv("PGPASSWORD", password)
    dsn = make_conninfo(**settings, options=f"-c search_path={schema}")  # type: ignore[arg-type]
    yield SharedStores.database(dsn), password
    if not database_server.running:
        database_server.start()


def lease_state(stores: SharedStores) -> LeaseState | None:
    leases = stores.lease()
    try:
        return leases.state(PLAN)
    finally:
        leases.close()


def said_by_one(among: list[Service], text: str) -> tuple[Service, str]:
    """The first service to say ``text``, and its line (bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for service in among:
            line = next((line for line in service.lines if text in line), None)
            if line is not None:
                return service, line
        time.sleep(0.05)
    raise AssertionError(f"none said {text!r}: {[s.lines for s in among]}")


def shown_nowhere(secret: str, among: list[Service]) -> None:
    for service in among:
        assert all(secret not in line for line in service.lines)
        assert secret not in service.errors.read_text()


def held_after_second_power_on(
    factory: Callable[..., HyperVHost],
    folder: Path,
    stores: SharedStores,
    services: list[Service],
    lease_seconds: float,
) -> tuple[Any, ...]:
    """The hosts, VMs and their data versions, and two orchestrators (the active one held right
    after the run's second power-on, its journal flushed and its lease just renewed)."""
    a, b, ids, versions = setup(factory, folder, stores)
    paused_at(folder, SECOND_POWER_ON)
    active = Service("site-a", folder, stores, submit=True, lease_seconds=lease_seconds)
    standby = Service("site-b", folder, stores, submit=False, lease_seconds=lease_seconds)
    services += [active, standby]
    active.wait_for("PAUSED")
    time.sleep(0.7)  # its journal's background flush has nothing left to write
    renewed(stores)
    return a, b, ids, versions, active, standby


def test_a_short_database_restart_is_ridden_out_under_the_same_token(
    hyperv_host_factory: Callable[..., HyperVHost],
    tmp_path: Path,
    services: list[Service],
    database_server: PostgresServer,
    database: tuple[SharedStores, str],
) -> None:
    stores, password = database
    lease = RIDE_OUT_LEASE_SECONDS
    a, b, ids, versions, active, standby = held_after_second_power_on(
        hyperv_host_factory, tmp_path, stores, services, lease
    )
    began = time.monotonic()
    database_server.restart(mode="immediate")  # a crash: no checkpoint, recovery at the start
    assert time.monotonic() - began < lease / 2, "the restart took too long for this test"
    active.signal(signal.SIGCONT)
    run_id = wait_until_ended(stores)
    active.wait_for(f"run {run_id} ended succeeded")

    check_the_end(a, b, ids, versions, tmp_path, stores)  # the second VM powered on once
    changers = {call["pid"] for call in wire(tmp_path) if call.get("done")}
    assert changers == {active.pid}  # the standby never acted
    with stores.journal() as journal:
        assert journal.load(run_id, [EntryKind.RESUMED]).entries == ()  # nobody took it over
    state = lease_state(stores)
    assert state is not None and state.token.number == 1 and state.released
    assert not any("took run" in line for line in standby.lines)
    assert [active.stop(), standby.stop()] == [0, 0]
    shown_nowhere(password, services)


def test_a_database_down_past_the_lease_stops_the_holder_and_a_successor_finishes(
    hyperv_host_factory: Callable[..., HyperVHost],
    tmp_path: Path,
    services: list[Service],
    database_server: PostgresServer,
    database: tuple[SharedStores, str],
) -> None:
    stores, password = database
    lease = SHORT_LEASE_SECONDS
    a, b, ids, versions, active, standby = held_after_second_power_on(
        hyperv_host_factory, tmp_path, stores, services, lease
    )
    database_server.stop(mode="fast")
    down_at = time.time()
    active.signal(signal.SIGCONT)  # the power-on returns into a run whose database is gone
    said = active.wait_for("stops without acting")
    assert "lease on plan 'killed' lost (token 1)" in said
    time.sleep(max(0.0, down_at + 2 * lease - time.time()))  # down well past the lease
    database_server.start()
    up_at = time.time()

    successor, took = said_by_one(services, "took run")
    assert "under token killed#2" in took and "expired" in took, took
    run_id = wait_until_ended(stores)
    successor.wait_for(f"run {run_id} ended succeeded")
    check_the_end(a, b, ids, versions, tmp_path, stores)  # the second VM powered on once

    calls = wire(tmp_path)
    while_down = [call for call in calls if down_at <= call["at"] < up_at]
    assert [c for c in while_down if c["call"] in MUTATING] == []  # nothing changed unconfirmed
    assert [c for c in while_down if c["at"] >= down_at + lease] == []  # nothing past the lease
    with stores.journal() as journal:
        (resumed,) = journal.load(run_id, [EntryKind.RESUMED]).entries
        assert resumed.payload()["owner"].endswith(f":{successor.pid}")
    state = lease_state(stores)
    assert state is not None and state.token.number == 2 and state.released
    assert [active.stop(), standby.stop()] == [0, 0]
    shown_nowhere(password, services)
