"""The memory backend's indexes stay equal to a brute-force scan of its tables, whatever happens.

A hypothesis state machine plays random sequences of every call that changes the world (scene
building, the protocol, world events), refusals included, and after each step rebuilds every index
of the :class:`~vmfailover.backends.memory.store.MemoryStore` by scanning its tables: the indexed
lookups, the indexes themselves (so no stale entry hides in them) and the cached inventory must all
match. A white-box test: it reads the store's private indexes on purpose.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from vmfailover.backends.memory import MemoryBackend
from vmfailover.backends.memory.store import MemoryStore
from vmfailover.clock import VirtualClock
from vmfailover.errors import VMFailoverError
from vmfailover.model import VM, IPConfig, Nic, PowerState, ReplicaState

SITES = ("a", "b", "c")
HOSTS = {"a": ("a1", "a2"), "b": ("b1", "b2"), "c": ("c1",)}
NETWORKS = ("lan", "dmz")
NAMES = ("web", "db", "app", "web_replica")  # few names, so name clashes happen
KEYS = ("t1", "t2")
ALL_HOSTS = tuple(host for hosts in HOSTS.values() for host in hosts)


def _members(table: dict[str, dict[str, None]]) -> dict[str, list[str]]:
    return {key: list(members) for key, members in table.items()}


def brute_force_check(store: MemoryStore) -> None:
    """Every index of ``store`` equals the same index rebuilt by scanning the tables."""
    records = store.vm_records()
    hosts = store.all_hosts()
    replicas = store.all_replicas()
    points = store.all_points()
    site_of = {host.name: host.site for host in hosts}

    hosts_at: dict[str, list[str]] = {}
    for host in hosts:
        hosts_at.setdefault(host.site, []).append(host.name)
    assert _members(store._hosts_at) == hosts_at
    for site in store._sites:
        assert [h.name for h in store.hosts_at(site)] == hosts_at.get(site, [])

    vms_on: dict[str, list[str]] = {}
    for record in records:
        vms_on.setdefault(record.vm.host, []).append(record.vm.id)
    # in the order VMs arrived on each host (added, or moved there): compared as sets
    assert {k: sorted(v) for k, v in _members(store._vms_on).items()} == {
        k: sorted(v) for k, v in vms_on.items()
    }
    for host in hosts:
        assert sorted(r.vm.id for r in store.vms_on(host.name)) == sorted(vms_on.get(host.name, []))

    named: dict[str, dict[str, str]] = {site: {} for site in store._sites}
    for record in records:
        named[site_of[record.vm.host]][record.vm.name] = record.vm.id
    assert sum(map(len, named.values())) == len(records), "two VMs share a name at a site"
    assert store._vm_named == named

    writers = [r.vm.id for r in records if r.write_rate]
    assert list(store._writers) == writers
    assert [r.vm.id for r in store.writers()] == writers

    copies: dict[str, list[str]] = {}
    for record in records:
        if record.test_copy_of is not None:
            copies.setdefault(record.test_copy_of, []).append(record.vm.id)
    assert _members(store._test_copies) == copies
    for replica in replicas:
        assert list(store.test_copies_of(replica.id)) == copies.get(replica.id, [])
        if replica.id in copies:
            assert replica.state is ReplicaState.TEST_FAILOVER, "a test copy outlived its test"

    replicas_from: dict[str, list[str]] = {}
    replicas_into: dict[str, list[str]] = {}
    for replica in replicas:
        replicas_from.setdefault(replica.source_vm, []).append(replica.id)
        replicas_into.setdefault(replica.replica_vm, []).append(replica.id)
    assert {key: list(ids) for key, ids in store._replicas_from.items()} == replicas_from
    assert {key: list(ids) for key, ids in store._replicas_into.items()} == replicas_into
    vm_ids = {r.vm.id for r in records} | set(replicas_from) | set(replicas_into)
    for vm_id in vm_ids:
        scanned = next(
            (r for r in replicas if r.source_vm == vm_id and r.state is not ReplicaState.REVERSED),
            None,
        )
        assert store.replica_of(vm_id) == scanned
        assert list(store.replicas_into(vm_id)) == [r for r in replicas if r.replica_vm == vm_id]

    points_of: dict[str, list[str]] = {replica.id: [] for replica in replicas}
    for record in points:
        points_of[record.point.replica].append(record.point.id)
    assert _members(store._points_of) == points_of
    for replica in replicas:
        assert [p.point.id for p in store.points_of(replica.id)] == points_of[replica.id]
        assert store.point_count(replica.id) == len(points_of[replica.id])

    assert store.inventory() == store.build_inventory(), "the cached inventory is stale"


class IndexedBackend(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.backend = MemoryBackend(
            clock=VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)), recovery_point_limit=3
        )
        for site in SITES:
            self.backend.add_site(site)
            self.backend.add_datastore(f"ds-{site}", site)
            for network in NETWORKS:
                self.backend.add_network(network, site)
            for host in HOSTS[site]:
                self.backend.add_host(host, site, datastores=[f"ds-{site}"], networks=NETWORKS)
        self.added = 0
        self.refusals = 0

    # --- what exists now, to draw from -----------------------------------------------------------

    @property
    def store(self) -> MemoryStore:
        return self.backend._store

    def vm_ids(self) -> list[str]:
        return [record.vm.id for record in self.store.vm_records()]

    def replica_ids(self) -> list[str]:
        return [replica.id for replica in self.store.all_replicas()]

    def point_ids(self) -> list[str]:
        return [record.point.id for record in self.store.all_points()]

    def attempt(self, action: object, *args: object, **kwargs: object) -> None:
        """Call; a refusal of our own kind is an answer, any other exception a bug."""
        assert callable(action)
        try:
            action(*args, **kwargs)
        except VMFailoverError:
            self.refusals += 1

    def replicas_in(self, *states: ReplicaState) -> list[str]:
        return [r.id for r in self.store.all_replicas() if r.state in states]

    def pick(self, data: st.DataObject, preferred: list[str], fallback: list[str]) -> str:
        """Mostly one of ``preferred`` (where the call can succeed), sometimes any."""
        choices = preferred if preferred and data.draw(st.integers(0, 3)) else fallback
        return data.draw(st.sampled_from(choices))

    @initialize(count=st.integers(1, 4), syncs=st.integers(1, 2))
    def protect_a_few_vms(self, count: int, syncs: int) -> None:
        """Start from a protected world: VMs at site a, replicated to b, synced."""
        for number in range(count):
            self.added += 1
            vm = VM(
                id=f"vm-{self.added}",
                name=f"protected-{number}",
                host=HOSTS["a"][number % 2],
                power_state=PowerState.ON,
                nics=(Nic(f"00:50:56:00:01:{self.added % 256:02x}", "lan"),),
                disk_bytes=4 << 20,
            )
            self.backend.add_vm(vm, boot_seconds=10, write_rate=0.5)
            replica = self.backend.create_replica(vm.id, HOSTS["b"][number % 2], "ds-b")
            for _ in range(syncs):
                self.backend.sync(replica.id)
                self.backend.run_workload(30)

    # --- building --------------------------------------------------------------------------------

    @rule(
        name=st.sampled_from(NAMES),
        site=st.sampled_from(SITES),
        data=st.data(),
        network=st.sampled_from((*NETWORKS, *NETWORKS, "missing")),
        on=st.booleans(),
        write_rate=st.sampled_from((0.0, 0.0, 0.5)),
    )
    def add_vm(
        self,
        name: str,
        site: str,
        data: st.DataObject,
        network: str,
        on: bool,
        write_rate: float,
    ) -> None:
        self.added += 1
        host = data.draw(st.sampled_from((*HOSTS[site], *HOSTS[site], "nowhere")))
        vm = VM(
            id=f"vm-{self.added}",
            name=name,
            host=host,
            power_state=PowerState.ON if on else PowerState.OFF,
            nics=(Nic(f"00:50:56:00:00:{self.added % 256:02x}", network),),
            disk_bytes=4 << 20,
        )
        self.attempt(self.backend.add_vm, vm, boot_seconds=10, write_rate=write_rate)

    @precondition(lambda self: bool(self.vm_ids()))
    @rule(data=st.data(), host=st.sampled_from(ALL_HOSTS))
    def create_replica(self, data: st.DataObject, host: str) -> None:
        vm = data.draw(st.sampled_from(self.vm_ids()))
        site = self.store.host(host).site
        mapping = data.draw(st.sampled_from(({}, {}, {"lan": "dmz"}, {"lan": "missing"})))
        self.attempt(self.backend.create_replica, vm, host, f"ds-{site}", network_map=mapping)

    # --- the protocol ----------------------------------------------------------------------------

    @precondition(lambda self: bool(self.replica_ids()))
    @rule(data=st.data())
    def sync(self, data: st.DataObject) -> None:
        self.attempt(self.backend.sync, data.draw(st.sampled_from(self.replica_ids())))

    @precondition(lambda self: bool(self.point_ids()))
    @rule(data=st.data())
    def delete_recovery_point(self, data: st.DataObject) -> None:
        point = data.draw(st.sampled_from(self.point_ids()))
        self.attempt(self.backend.delete_recovery_point, point)

    @precondition(lambda self: bool(self.point_ids()))
    @rule(data=st.data(), test=st.booleans(), key=st.sampled_from(KEYS))
    def revert_or_test(self, data: st.DataObject, test: bool, key: str) -> None:
        with_points = [r for r in self.replica_ids() if self.store.point_count(r)]
        replica = self.pick(data, with_points, self.replica_ids())
        points = [p.point.id for p in self.store.points_of(replica)] or self.point_ids()
        point = data.draw(st.sampled_from(points))
        if test:
            self.attempt(self.backend.create_test_copy, replica, point, key)
        else:
            self.attempt(self.backend.revert, replica, point)

    @precondition(lambda self: bool(self.replica_ids()))
    @rule(data=st.data(), commit=st.booleans())
    def commit_or_undo(self, data: st.DataObject, commit: bool) -> None:
        failed_over = self.replicas_in(ReplicaState.FAILED_OVER)
        replica = self.pick(data, failed_over, self.replica_ids())
        call = self.backend.commit_failover if commit else self.backend.undo_failover
        self.attempt(call, replica)

    @precondition(lambda self: bool(self.replica_ids()))
    @rule(data=st.data())
    def reverse_replication(self, data: st.DataObject) -> None:
        failed_over = self.replicas_in(ReplicaState.FAILED_OVER, ReplicaState.COMMITTED)
        replica = self.pick(data, failed_over, self.replica_ids())
        if data.draw(st.booleans()):  # the source must be off to receive
            source = self.store.replica(replica).source_vm
            self.attempt(self.backend.power_off, source)
        self.attempt(self.backend.reverse_replication, replica)

    @precondition(lambda self: bool(self.vm_ids()))
    @rule(
        data=st.data(),
        call=st.sampled_from(
            ("power_on", "power_off", "shutdown_guest", "readiness", "remove_test_copy", "write")
        ),
    )
    def vm_call(self, data: st.DataObject, call: str) -> None:
        copies = [r.vm.id for r in self.store.vm_records() if r.test_copy_of is not None]
        vm = self.pick(data, copies if call == "remove_test_copy" else [], self.vm_ids())
        if call == "shutdown_guest":
            timeout = data.draw(st.sampled_from((1, 60)))
            self.attempt(self.backend.shutdown_guest, vm, timeout=timeout)
        elif call == "write":
            self.attempt(self.backend.write, vm, 2)
        else:
            self.attempt(getattr(self.backend, call), vm)

    @precondition(lambda self: bool(self.vm_ids()))
    @rule(data=st.data(), network=st.sampled_from((*NETWORKS, "missing")), dhcp=st.booleans())
    def reconfigure_nic(self, data: st.DataObject, network: str, dhcp: bool) -> None:
        vm = data.draw(st.sampled_from(self.vm_ids()))
        mac = self.store.vm(vm).vm.nics[0].mac
        self.attempt(self.backend.connect_nic, vm, mac, network)
        configs = None if dhcp else [IPConfig("10.0.0.5/24", gateway="10.0.0.1")]
        self.attempt(self.backend.set_guest_ip, vm, mac, configs)

    @precondition(lambda self: bool(self.vm_ids()))
    @rule(
        data=st.data(),
        call=st.sampled_from(("restart_on_host", "migrate_vm")),
        host=st.sampled_from((*ALL_HOSTS, "nowhere")),
    )
    def move_vm(self, data: st.DataObject, call: str, host: str) -> None:
        self.attempt(getattr(self.backend, call), data.draw(st.sampled_from(self.vm_ids())), host)

    # --- world events ----------------------------------------------------------------------------

    @rule(
        data=st.data(),
        event=st.sampled_from(
            ("fail_host", "isolate_host", "restore_host", "restore_host", "restore_host", "site")
        ),
    )
    def host_event(self, data: st.DataObject, event: str) -> None:
        if event != "site":
            self.attempt(getattr(self.backend, event), data.draw(st.sampled_from(ALL_HOSTS)))
            return
        site = data.draw(st.sampled_from((*SITES, "nowhere")))
        action = data.draw(st.sampled_from(("fail_site", "isolate_site", "restore")))
        if action != "restore":
            self.attempt(getattr(self.backend, action), site)
        else:
            for host in HOSTS.get(site, ()):
                self.backend.restore_host(host)

    @rule(seconds=st.sampled_from((1.0, 30.0)))
    def run_workload(self, seconds: float) -> None:
        self.backend.run_workload(seconds)

    @rule()
    def read_inventory(self) -> None:
        """Fill the cache, so the next change must invalidate it."""
        self.backend.inventory()

    # --- the promise -----------------------------------------------------------------------------

    @invariant()
    def indexes_match_a_brute_force_scan(self) -> None:
        brute_force_check(self.store)


TestIndexedBackend = IndexedBackend.TestCase
