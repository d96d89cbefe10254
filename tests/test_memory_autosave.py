"""The memory backend kept in a file after every change (``autosave``, and ``held_lab`` with it):
each changing protocol call is on disk before it returns, read-only calls never write, and calls
finishing together may share a save but none returns before its change is saved."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest

from vmfailover.backends.base import CHANGING_CALLS, Backend
from vmfailover.backends.memory import MemoryBackend
from vmfailover.backends.memory.autosave import is_world_changing
from vmfailover.backends.memory.lab import lab
from vmfailover.backends.memory.lab_file import held_lab
from vmfailover.backends.memory.saved import store_document
from vmfailover.errors import ConflictError
from vmfailover.model import PowerState

PROTOCOL_CALLS = {
    name
    for name, member in inspect.getmembers(Backend, inspect.isfunction)
    if not name.startswith("_")
}


def running_source_vms(backend: MemoryBackend) -> list[str]:
    return sorted(
        vm.id
        for vm in backend.inventory().vms
        if vm.power_state is PowerState.ON and vm.host.startswith("esx-a")
    )


def power_in_file(path: Path, vm_id: str) -> PowerState:
    return MemoryBackend.load(path).inventory().vm(vm_id).power_state


def test_every_changing_call_and_no_read_is_saved() -> None:
    assert CHANGING_CALLS <= PROTOCOL_CALLS
    for name in PROTOCOL_CALLS:
        marked = is_world_changing(getattr(MemoryBackend, name))
        assert marked is (name in CHANGING_CALLS), name


def test_a_changing_call_is_in_the_file_before_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    with held_lab(path) as backend:
        vm_id = running_source_vms(backend)[0]
        backend.power_off(vm_id)
        assert power_in_file(path, vm_id) is PowerState.OFF  # not only when the block ends
        assert backend.autosaves == 1
        backend.power_on(vm_id)
        assert power_in_file(path, vm_id) is PowerState.ON
        assert backend.autosaves == 2
    assert backend.autosaves == 0  # autosave ends with the block


def test_read_only_calls_never_write(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    lab().save(path)
    before = path.stat()
    with held_lab(path) as backend:
        inventory = backend.inventory()
        vm_id = running_source_vms(backend)[0]
        backend.readiness(vm_id)
        for replica in inventory.replicas:
            backend.recovery_points(replica.id)
        backend.recovery_point_limit()
        assert backend.autosaves == 0
        assert path.stat().st_ino == before.st_ino  # os.replace would give a new file
        assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_a_call_that_raises_still_saves_what_it_did(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    with held_lab(path) as backend:
        replica = backend.inventory().replicas[0]
        with pytest.raises(ConflictError, match="has not been failed over"):
            backend.power_on(replica.replica_vm)
        assert backend.autosaves == 1


def test_a_read_only_hold_does_not_autosave(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    lab().save(path)
    before = path.stat().st_mtime_ns
    with held_lab(path, save=False) as backend:
        backend.power_off(running_source_vms(backend)[0])
        assert backend.autosaves == 0
    assert path.stat().st_mtime_ns == before


def test_autosave_with_faults_armed_is_refused_like_a_save(tmp_path: Path) -> None:
    backend = lab()
    backend.autosave(tmp_path / "lab.json")
    backend.faults.fail("inventory", nth=5)  # armed, on a call that is not made here
    with pytest.raises(ConflictError, match="faults armed"):
        backend.power_off(running_source_vms(lab())[0])
    backend.faults.clear()
    backend.autosave(None)


def test_calls_finishing_together_are_each_saved_before_they_return(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    backend = lab()
    backend.autosave(path)
    vm_ids = running_source_vms(backend)
    seen: dict[str, PowerState] = {}
    start = threading.Barrier(len(vm_ids))

    def stop(vm_id: str) -> None:
        start.wait(10)
        backend.power_off(vm_id)
        seen[vm_id] = power_in_file(path, vm_id)  # its own change, on disk once it returned

    threads = [threading.Thread(target=stop, args=(vm_id,)) for vm_id in vm_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == dict.fromkeys(vm_ids, PowerState.OFF)
    assert 1 <= backend.autosaves <= len(vm_ids)
    saved = MemoryBackend.load(path).inventory()
    assert all(saved.vm(vm_id).power_state is PowerState.OFF for vm_id in vm_ids)


def test_parts_kept_between_saves_never_go_stale(tmp_path: Path) -> None:
    """A save reuses what it wrote for unchanged parts (by identity); every kind of change makes
    a new part, so the document equals one written from scratch."""
    path = tmp_path / "lab.json"
    backend = lab()
    backend.autosave(path)
    store = backend._store
    replica = backend.inventory().replicas[0]
    source = replica.source_vm
    backend.write(source, 5)
    backend.sync(replica.id)
    first, *_, newest = backend.recovery_points(replica.id)
    backend.delete_recovery_point(first.id)
    backend.damage(source)  # reaches the replica's points: each becomes a new record
    backend.power_off(source)
    backend.revert(replica.id, newest.id)
    backend.set_guest_ip(
        replica.replica_vm, backend.inventory().vm(replica.replica_vm).nics[0].mac, None
    )
    backend.power_on(replica.replica_vm)
    with store.lock:
        reused = store_document(store)
        store.saved_parts = {}
        fresh = store_document(store)
    assert reused == fresh
    assert MemoryBackend.load(path).inventory() == backend.inventory()
    loaded = MemoryBackend.load(path)
    assert loaded.point_disk(newest.id) == backend.point_disk(newest.id)
    assert loaded.disk(replica.replica_vm) == backend.disk(replica.replica_vm)
