"""A memory-backend world saved to JSON and loaded back is the same world, and behaves the same.

The round trip rides on the index state machine of ``test_memory_indexes``: random sequences of
every call that changes the world, and now and then the world is saved, loaded, compared in full
(tables, disks, points, clock, random generator, counters, the order VMs arrived on each host) and
the run goes on with the loaded copy, so the indexes it rebuilt are checked by every later step.
Hostile documents (corrupt, foreign, newer, mutated at random) end in our ValidationError.
"""

from __future__ import annotations

import json
import math
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from test_memory_indexes import IndexedBackend
from vmfailover.backends.memory import MemoryBackend
from vmfailover.backends.memory.lab import lab
from vmfailover.backends.memory.lab_file import held_lab
from vmfailover.backends.memory.saved import (
    WORLD_VERSION,
    disk_runs,
    store_document,
    store_from_document,
)
from vmfailover.backends.memory.store import MemoryStore
from vmfailover.backends.memory.world_file import lock_path, world_lock
from vmfailover.clock import SystemClock, VirtualClock
from vmfailover.errors import ConflictError, NotFoundError, ValidationError
from vmfailover.model import VM, IPConfig, Nic, PowerState


def world_state(store: MemoryStore) -> dict[str, Any]:
    """Everything a world is, read through the store (white box on purpose)."""
    clock = store.clock
    assert isinstance(clock, VirtualClock)
    return {
        "inventory": store.build_inventory(),
        "records": [
            (
                r.vm,
                dict(r.disk),
                r.boot_seconds,
                r.booted_at,
                r.boots,
                r.shutdown_seconds,
                r.test_copy_of,
                r.write_rate,
            )
            for r in store.vm_records()
        ],
        "points": [(p.point, dict(p.disk)) for p in store.all_points()],
        "points_of": {
            r.id: [p.point.id for p in store.points_of(r.id)] for r in store.all_replicas()
        },
        "vms_on": {h.name: store.vm_order_on(h.name) for h in store.all_hosts()},
        "writers": [r.vm.id for r in store.writers()],
        "clock": (clock.start, clock.monotonic(), clock.now(), clock.rate),
        "random": store.rng.getstate(),
        "counters": (store.last_version, store.last_point_number, store.bytes_transferred),
        "limit": store.recovery_point_limit,
        "failovers": store.all_failovers(),
        "split_brains": list(store.split_brains),
    }


class SavedBackend(IndexedBackend):
    """The index machine, plus: save, load, compare, and go on with the loaded world."""

    @rule()
    def save_and_load(self) -> None:
        before = world_state(self.store)
        text = json.dumps(store_document(self.store), allow_nan=False)
        loaded = MemoryBackend(clock=VirtualClock())
        loaded._store = store_from_document(json.loads(text), "memory")
        assert world_state(loaded._store) == before
        self.backend = loaded


TestSavedBackend = SavedBackend.TestCase
TestSavedBackend.settings = settings(max_examples=60, stateful_step_count=30)


def test_the_lab_round_trips_through_a_file(tmp_path: Path) -> None:
    backend = lab()
    backend.run_workload(60)
    path = tmp_path / "lab.json"
    backend.save(path)
    loaded = MemoryBackend.load(path)
    assert world_state(loaded._store) == world_state(backend._store)
    # the same world goes on the same way: the same blocks written, the same points taken
    for world in (backend, loaded):
        world.run_workload(600)
        for replica in world.inventory().replicas:
            world.sync(replica.id)
    assert world_state(loaded._store) == world_state(backend._store)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.json"], "a temporary file is left"


def test_a_test_failover_survives_the_file(tmp_path: Path) -> None:
    backend = lab()
    replica = backend.inventory().replicas[0]
    point = backend.recovery_points(replica.id)[-1]
    copy = backend.create_test_copy(replica.id, point.id, "t1")
    backend.power_on(copy)
    backend.save(tmp_path / "lab.json")
    loaded = MemoryBackend.load(tmp_path / "lab.json")
    assert loaded.inventory().replica(replica.id).state.value == "test_failover"
    assert loaded.readiness(copy).powered_on
    loaded.remove_test_copy(copy)
    assert loaded.inventory().replica(replica.id).state.value == "ready"


def test_disk_runs_are_compact_and_exact() -> None:
    disk = {0: 5, 1: 5, 2: 5, 4: 7, 5: 8, -1: -1}
    assert disk_runs(disk) == [[-1, 1, -1], [0, 3, 5], [4, 1, 7], [5, 1, 8]]
    assert disk_runs(dict.fromkeys(range(4096), 1)) == [[0, 4096, 1]]


def _small_document() -> dict[str, Any]:
    """A small world with every kind of thing in it: a test copy, points, a reversed replica."""
    backend = MemoryBackend(clock=VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)))
    for site in ("a", "b"):
        backend.add_site(site)
        backend.add_datastore(f"ds-{site}", site)
        backend.add_network("lan", site)
        backend.add_host(f"{site}1", site, datastores=[f"ds-{site}"], networks=["lan"])
    for number in (1, 2, 3):
        nic = Nic(f"00:50:56:00:00:0{number}", "lan", (IPConfig(f"10.0.0.{number}/24"),))
        vm = VM(f"vm-{number}", f"vm{number}", "a1", PowerState.ON, (nic,), disk_bytes=4 << 20)
        backend.add_vm(vm, write_rate=0.1)
        replica = backend.create_replica(vm.id, "b1", "ds-b")
        backend.sync(replica.id)
        backend.run_workload(20)
        backend.sync(replica.id)
    backend.create_test_copy("replica-vm-1", backend.recovery_points("replica-vm-1")[0].id, "t")
    backend.power_off("vm-2")
    backend.revert("replica-vm-2", backend.recovery_points("replica-vm-2")[-1].id)
    backend.reverse_replication("replica-vm-2")
    backend.damage("vm-3")
    return store_document(backend._store)


def _refused(document: object) -> str:
    with pytest.raises(ValidationError) as caught:
        store_from_document(document, "lab.json")
    text = str(caught.value)
    assert "lab.json" in text
    return text


def test_foreign_newer_and_broken_documents_are_refused_naming_the_place() -> None:
    assert "not a saved lab" in _refused({"name": "something else"})
    assert "a list" in _refused([1, 2, 3])
    document = _small_document()
    assert "newer" in _refused({**document, "version": WORLD_VERSION + 1})
    assert "unknown keys" in _refused({**document, "surprise": 1})
    vms = [dict(vm) for vm in document["vms"]]
    vms[3] = {**vms[3], "vm": {**vms[3]["vm"], "host": "nowhere"}}
    assert "vms[3]" in _refused({**document, "vms": vms})
    vms = [dict(vm) for vm in document["vms"]]
    vms[0] = {**vms[0], "disk": [[0, 2, 1], [1, 1, 1]]}
    assert "appears twice" in _refused({**document, "vms": vms})
    replicas = [r for r in document["replicas"] if r["id"] != "replica-vm-3"]
    assert "points[" in _refused({**document, "replicas": replicas})  # its points are orphans
    assert "random_state" in _refused({**document, "random_state": [3, [1, 2], None]})
    points = [dict(point) for point in document["points"]]
    points[2] = {**points[2], "point": {**points[2]["point"], "created_at": None}}
    assert "points[2].point.created_at" in _refused({**document, "points": points})


def test_files_that_are_not_json_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    for content, expected in (
        (b"\x80\x81 not text", "not UTF-8"),
        (b'{"format": ', "not JSON"),
        (b'{"format": NaN}', "NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "lab.json"),
    ):
        path.write_bytes(content)
        with pytest.raises(ValidationError, match=expected):
            MemoryBackend.load(path)
    with pytest.raises(NotFoundError):
        MemoryBackend.load(tmp_path / "missing.json")


def _leaves(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list) and value and len(value) < 50:
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [path]


SMALL = _small_document()
SMALL_LEAVES = [leaf for leaf in _leaves(SMALL) if leaf[:1] != ("random_state",)]
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(-3, 3), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=150)
@given(data=st.data())
def test_a_mutated_document_loads_or_is_refused_with_our_error(data: st.DataObject) -> None:
    document = json.loads(json.dumps(SMALL))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(SMALL_LEAVES))
        target = document
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = data.draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    refusal = None
    try:
        store_from_document(document, "lab.json")
    except ValidationError as error:
        refusal = str(error)
    assert refusal is None or "lab.json" in refusal


def test_what_cannot_be_saved_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VirtualClock"):
        MemoryBackend(clock=SystemClock()).save(tmp_path / "lab.json")
    backend = lab(points=1)
    backend.faults.fail("power_on")
    with pytest.raises(ConflictError, match="faults"):
        backend.save(tmp_path / "lab.json")
    assert not (tmp_path / "lab.json").exists()


def test_the_lock_keeps_a_second_holder_out_until_the_first_is_done(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    held = threading.Event()
    release = threading.Event()

    def first() -> None:
        with world_lock(path):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(10)
    with pytest.raises(ConflictError, match="in use by another command"), world_lock(path, 0.2):
        pass
    release.set()
    thread.join(10)
    with world_lock(path, timeout=5):
        assert lock_path(path).exists()


def test_held_lab_creates_the_lab_once_and_keeps_what_happened(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    with held_lab(path) as backend:
        backend.fail_host("esx-a1")
        now = backend.clock.now()
    with held_lab(path) as again:
        assert again.inventory().host("esx-a1").power.value == "off"
        assert again.clock.now() == now


def test_a_saved_clock_keeps_its_instant_and_rate(tmp_path: Path) -> None:
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    backend = MemoryBackend(clock=clock)
    backend.add_site("a")
    clock.advance(12.5)
    backend.save(tmp_path / "w.json")
    loaded = MemoryBackend.load(tmp_path / "w.json")
    assert loaded.clock.now() == clock.now()
    assert math.isclose(loaded.clock.monotonic(), 12.5)
