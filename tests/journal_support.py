"""Shared by the journal and resume tests: a small lab plan, an observing backend, end states.

:class:`Observed` wraps a memory backend the way an auditor would sit beside the hypervisor: it
passes every call through and, from what the calls did, keeps the power state of every VM and the
network of every NIC, so it can check the run's promises as they happen (no VM powered on twice,
none started before its dependencies were ready, no replica started while its source runs, no
test copy started outside isolated networks) without reading the backend itself, which would
count as backend calls and move the crash points. It can also crash the orchestrator *after* the
n-th changing call acted (``crash_after``), where the memory backend's ``crash_at`` crashes before
a call acts.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from vmfailover import FailoverPlan, NetworkMapping, ReIPRule, ReIPRules, StartOrder
from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.journal import Journal
from vmfailover.engine.postgres_journal import PostgresJournal
from vmfailover.engine.run_journal import MUTATING
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.model import Inventory, PowerState
from vmfailover.policy.inventory_diff import inventory_differences
from vmfailover.testing import LAB_NETWORK_MAP, LAB_TEST_NETWORK_MAP, SimulatedCrash, lab

#: The plan the crash tests fail over: a chain with a branch (dc01 -> db01 -> app01, dc01 ->
#: mon01), every VM re-addressed, sources stopped gracefully where they run.
DEPENDENCIES = {"dc01": (), "db01": ("dc01",), "app01": ("db01",), "mon01": ("dc01",)}


#: Every lab of these tests starts at the same moment, so their end states compare; a short
#: history (two points half an hour apart, five minutes of writes since) keeps building it quick.
LAB_START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=30)
SINCE_LAST_SYNC = timedelta(minutes=5)
LAB_NOW = LAB_START + INTERVAL + SINCE_LAST_SYNC


def small_plan() -> FailoverPlan:
    order = StartOrder()
    for name, after in DEPENDENCIES.items():
        order.add(name, after=after)
    return FailoverPlan(
        "crm",
        order.vms,
        order=order,
        network=NetworkMapping(production=dict(LAB_NETWORK_MAP), test=dict(LAB_TEST_NETWORK_MAP)),
        reip=ReIPRules([ReIPRule("192.168.20.*", "10.20.0.*", gateway="10.20.0.1")]),
        test_reip=ReIPRules([ReIPRule("192.168.20.*", "172.16.20.*")]),
        power_off_source="graceful",
        rto="30m",
    )


def scene(kind: str) -> MemoryBackend:
    """The lab as each kind meets it: a regular failover after site A was lost."""
    backend = lab(start=LAB_START, points=2, interval=INTERVAL, since_last_sync=SINCE_LAST_SYNC)
    if kind == "regular":
        backend.fail_site("site-a")
    return backend


@contextmanager
def journal_folder() -> Iterator[Path]:
    """A folder for journals: on tmpfs where there is one (these tests check what a journal
    records and how runs resume, not the disk's sync, which costs milliseconds per commit)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="vmfailover-journal-", dir=base) as folder:
        yield Path(folder)


class Observed:
    """A backend that passes calls to ``inner`` and watches what they do (see the module doc)."""

    def __init__(self, inner: MemoryBackend, plan: FailoverPlan) -> None:
        self.inner = inner
        self.name = inner.name
        self.clock = inner.clock
        self.crash_after: int | None = None
        self.changing_calls = 0
        self.power_ons: Counter[str] = Counter()  # completed power_on calls per VM id
        self.transitions: Counter[str] = Counter()  # off -> on transitions per VM id
        self.first_change: dict[str, datetime] = {}  # plan VM name -> its first changing call
        self.powered_on: dict[str, datetime] = {}  # plan VM name -> when it was powered on
        self.violations: list[str] = []
        snapshot = inner.inventory()
        self._isolated = {(n.site, n.name) for n in snapshot.networks if n.isolated}
        self._site = {h.name: h.site for h in snapshot.hosts}
        self._power = {vm.id: vm.power_state is PowerState.ON for vm in snapshot.vms}
        self._nics = {(vm.id, nic.mac): nic.network for vm in snapshot.vms for nic in vm.nics}
        self._host = {vm.id: vm.host for vm in snapshot.vms}
        self._owner: dict[str, str] = {}  # VM id (source, replica VM, copy) -> plan VM name
        self._source_of: dict[str, str] = {}  # replica VM id or copy id -> source id
        self._replica_vm: dict[str, str] = {}  # replica id -> replica VM id
        self._copies: set[str] = set()
        for name in plan.vms:
            source = snapshot.vm(name)
            replica = snapshot.replica_of(source.id)
            self._owner.update({source.id: name, replica.replica_vm: name})
            self._source_of[replica.replica_vm] = source.id
            self._replica_vm[replica.id] = replica.replica_vm

    # --- the protocol, passed through ----------------------------------------------------------

    def __getattr__(self, attribute: str) -> Any:
        target = getattr(self.inner, attribute)
        if attribute.startswith("_") or not callable(target):
            return target

        @functools.wraps(target)
        def call(*args: Any, **kwargs: Any) -> Any:
            changing = attribute in MUTATING
            if changing and attribute == "power_on":
                self._before_power_on(str(args[0]))
            result = target(*args, **kwargs)
            if changing:
                self._after(attribute, args, result)
            return result

        return call

    def data_loss_blocks(self, source_vm_id: str, point_id: str) -> int:
        return self.inner.data_loss_blocks(source_vm_id, point_id)

    # --- watching ------------------------------------------------------------------------------

    def _before_power_on(self, vm_id: str) -> None:
        name = self._owner.get(vm_id, vm_id)
        source = self._source_of.get(vm_id)
        copy = vm_id in self._copies
        if source is not None and not copy and self._power.get(source, False):
            self.violations.append(f"{name}: powered on while its source {source} runs")
        if copy:  # a test copy may run beside its source, on isolated networks only
            site = self._site[self._host[vm_id]]
            for (owner, _mac), network in self._nics.items():
                if owner == vm_id and (site, network) not in self._isolated:
                    self.violations.append(f"{name}: test copy started on {network}")

    def _after(self, operation: str, args: tuple[Any, ...], result: object) -> None:
        now = self.clock.now()
        vm_id = str(args[0])
        if operation in ("revert", "sync", "create_test_copy"):
            vm_id = self._replica_vm.get(vm_id, vm_id)
        name = self._owner.get(vm_id)
        if name is not None:
            self.first_change.setdefault(name, now)
        if operation == "create_test_copy":
            copy = str(result)
            self._copies.add(copy)
            self._owner[copy] = self._owner[vm_id]
            self._source_of[copy] = self._source_of[vm_id]
            self._host[copy] = self._host[vm_id]
            self._power.setdefault(copy, False)
            for (owner, mac), network in list(self._nics.items()):
                if owner == vm_id:
                    self._nics.setdefault((copy, mac), network)
            self.first_change.setdefault(self._owner[copy], now)
        elif operation == "connect_nic":
            self._nics[(vm_id, str(args[1]))] = str(args[2])
        elif operation in ("shutdown_guest", "power_off"):
            self._power[vm_id] = False
        elif operation == "power_on":
            self.power_ons[vm_id] += 1
            if not self._power.get(vm_id, False):
                self.transitions[vm_id] += 1
                self.powered_on.setdefault(self._owner.get(vm_id, vm_id), now)
            self._power[vm_id] = True
        self.changing_calls += 1
        if self.crash_after is not None and self.changing_calls == self.crash_after:
            raise SimulatedCrash(f"simulated crash after changing call {self.changing_calls}")

    def check(self, ready: dict[str, datetime | None]) -> list[str]:
        """Every broken promise: the violations seen, VMs powered on twice, VMs changed before
        what they depend on was ready (``ready``: each VM's ready time from the report)."""
        problems = list(self.violations)
        for vm_id, count in self.power_ons.items():
            if count > 1 or self.transitions[vm_id] > 1:
                problems.append(
                    f"{self._owner.get(vm_id, vm_id)}: powered on {count} times "
                    f"({self.transitions[vm_id]} transitions)"
                )
        for name, after in DEPENDENCIES.items():
            started = self.first_change.get(name)
            for dependency in after:
                dependency_ready = ready.get(dependency)
                if started is not None and (dependency_ready is None or started < dependency_ready):
                    problems.append(f"{name} changed at {started}, before {dependency} was ready")
        return problems


@attrs.frozen
class EndState:
    """What a failover leaves behind, with run ids taken out of test copy names."""

    inventory: Inventory
    disks: dict[str, tuple[tuple[int, int], ...]]
    points: dict[str, tuple[tuple[object, ...], ...]]


def end_state(backend: MemoryBackend, run_ids: Callable[[], list[str]]) -> EndState:
    """The backend's state; a point the run made (a final sync) counts by content and kind, not
    by the moment it was made (after a crash, lab time has moved on before the run resumes)."""
    ids = run_ids()
    began = LAB_NOW

    def plain(text: str) -> str:
        for run_id in ids:
            text = text.replace(run_id, "RUN")
        return text

    inventory = backend.inventory()
    vms = tuple(
        attrs.evolve(vm, id=plain(vm.id), name=plain(vm.name))
        for vm in sorted(inventory.vms, key=lambda vm: plain(vm.id))
    )
    normalized = attrs.evolve(inventory, vms=vms)
    disks = {plain(vm.id): tuple(sorted(backend.disk(vm.id).items())) for vm in inventory.vms}
    # Point ids are numbered in the order replicas sync, which parallel VMs do in any order:
    # a point is what it holds and when it was made.
    points = {
        replica.id: tuple(
            (
                p.created_at if p.created_at < began else "made by the run",
                p.consistency,
                tuple(sorted(backend.point_disk(p.id).items())),
            )
            for p in backend.recovery_points(replica.id)
        )
        for replica in inventory.replicas
    }
    return EndState(normalized, disks, points)


def differences(expected: EndState, found: EndState) -> list[str]:
    problems = inventory_differences(expected.inventory, found.inventory)
    problems += [
        f"disk of {vm} differs"
        for vm in expected.disks
        if expected.disks[vm] != found.disks.get(vm)
    ]
    problems += [
        f"recovery points of {replica} differ"
        for replica, points in expected.points.items()
        if found.points.get(replica) != points
    ]
    return problems


# --- the stores -----------------------------------------------------------------------------------

#: The journal tests run against each store: SQLite files and a real PostgreSQL server.
STORES = ("sqlite", "postgres")
_schemas = itertools.count(1)


class JournalStore:
    """Journals by name on one store: each :meth:`open` a new connection, as another process
    would make; each name its own journal (a file, or a PostgreSQL schema)."""

    def __init__(self, kind: str, folder: Path, server_dsn: str | None = None) -> None:
        self.kind = kind
        self.folder = folder
        self._server_dsn = server_dsn
        self._prefix = f"j{os.getpid()}_{next(_schemas)}"
        self._schemas: set[str] = set()

    def __repr__(self) -> str:
        return f"JournalStore({self.kind})"

    def open(self, name: str = "journal") -> Journal:
        if self.kind == "sqlite":
            return SQLiteJournal(self.folder / f"{name}.db")
        assert self._server_dsn is not None
        return PostgresJournal(self._server_dsn, schema=self.schema(name))

    def schema(self, name: str) -> str:
        schema = f"{self._prefix}_{re.sub(r'[^a-z0-9]', '_', name.lower())}"[:63]
        self._schemas.add(schema)
        return schema

    def execute(self, name: str, statement: str) -> list[tuple[Any, ...]]:
        """One statement on journal ``name``'s store, outside any journal (what an older or
        newer vmfailover, or another program, would have left there)."""
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.folder / f"{name}.db")) as raw, raw:
                return raw.execute(statement).fetchall()
        import psycopg

        assert self._server_dsn is not None
        schema = self.schema(name)
        with psycopg.connect(self._server_dsn, autocommit=True) as raw:
            raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            raw.execute(f'SET search_path TO "{schema}"')
            cursor = raw.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        if self.kind == "postgres" and self._schemas:
            import psycopg

            assert self._server_dsn is not None
            with psycopg.connect(self._server_dsn, autocommit=True) as raw:
                for schema in self._schemas:
                    raw.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def journal_store(kind: str, request: Any) -> Iterator[JournalStore]:
    """A store of ``kind`` for a test (``request`` finds the PostgreSQL server fixture)."""
    with journal_folder() as folder:
        dsn = None
        if kind == "postgres":
            dsn = request.getfixturevalue("postgres_server").dsn
        store = JournalStore(kind, folder, dsn)
        try:
            yield store
        finally:
            store.close()
