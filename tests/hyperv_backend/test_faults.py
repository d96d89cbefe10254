"""Faults on the wire end in a clear error or a successful retry, never a hang."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from vmfailover.backends.hyperv import HyperVBackend
from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
)
from vmfailover.model import ConnectionState, PowerState
from vmfailover.testing.hyperv import TRANSIENT, CmdletError, HyperVHost

from .conftest import World, add_vm, connection


def test_a_dropped_connection_is_retried_on_a_fresh_pool(world: World) -> None:
    vm = add_vm(world, "app")
    world.backend.readiness(vm)  # the pool is open
    session = world.backend.session("hv-a")
    opened = session.pools_opened
    world.a.faults.drop_connection_after(0)
    assert world.backend.readiness(vm).powered_on
    assert "drop" in world.a.faults.fired
    assert session.pools_opened == opened + 1


def test_a_fault_that_persists_ends_in_a_transient_error_after_bounded_tries(
    world: World,
) -> None:
    vm = add_vm(world, "app")
    for _ in range(10):
        world.a.faults.fail_next("Start-VM", TRANSIENT)
    started = time.monotonic()
    with pytest.raises(TransientBackendError, match=r"hv-a: power on: .*tried 3 times"):
        world.backend.power_on(vm)
    assert time.monotonic() - started < 10
    assert world.a.faults.fired.count("fail Start-VM") == 3


def test_a_receive_timeout_is_polled_through(world: World) -> None:
    vm = add_vm(world, "app")
    world.backend.readiness(vm)
    world.a.faults.time_out_next_receive(3)
    assert world.backend.readiness(vm).powered_on
    assert world.a.faults.fired.count("receive-timeout") == 3


def test_a_busy_winrm_service_is_retried(world: World) -> None:
    vm = add_vm(world, "app")
    world.a.faults.fail_next("Start-VM", TRANSIENT)
    world.backend.shutdown_guest(vm, timeout=60)
    world.backend.power_on(vm)
    assert world.backend.inventory().vm(vm).power_state is PowerState.ON


def test_a_cmdlet_that_never_answers_ends_in_a_timeout_not_a_hang(
    hyperv_host_factory: Callable[..., HyperVHost],
) -> None:
    host = hyperv_host_factory("hv-a", auth="basic")
    assert host.model is not None
    record = host.model.add_vm("app", state="Running")
    backend = HyperVBackend([connection(host, "site-a", pipeline_timeout=3)])
    host.faults.delay("Stop-VM", 60)
    started = time.monotonic()
    with pytest.raises(TransientBackendError, match="hv-a: shut the guest down"):
        backend.shutdown_guest(f"hv-a/{record.id}", timeout=2)
    assert time.monotonic() - started < 6
    host.faults.clear()
    backend.power_off(f"hv-a/{record.id}")  # the next call opens a fresh pool and works
    assert host.model.vm("app").state == "Off"
    backend.close()


def test_rejected_credentials_fail_at_once_without_retry(world: World) -> None:
    vm = add_vm(world, "app")
    world.a.faults.reject_auth()
    started = time.monotonic()
    with pytest.raises(PermanentBackendError, match="authentication failed for user 'admin'"):
        world.backend.power_on(vm)
    assert time.monotonic() - started < 5
    assert world.backend.session("hv-a").pipelines_sent == 1


def test_a_host_that_does_not_answer_is_not_responding_in_the_inventory(world: World) -> None:
    vm = add_vm(world, "app")
    replica = world.backend.create_replica(
        vm, "hv-b", "hv-b-storage", network_map={"Prod": "DR-Prod"}
    )
    world.a.stop()
    started = time.monotonic()
    inventory = world.backend.inventory()
    assert time.monotonic() - started < 10
    assert inventory.host("hv-a").connection is ConnectionState.NOT_RESPONDING
    # known from its replica's side; not known to be off
    assert inventory.vm(vm).power_state is PowerState.ON
    assert inventory.replica_of(vm).id == replica.id
    with pytest.raises(TransientBackendError, match="connection failed"):
        world.backend.power_on(vm)
    world.backend.declare_host_down("hv-a")
    down = world.backend.inventory()
    assert down.host("hv-a").power is PowerState.OFF
    assert down.vm(vm).power_state is PowerState.OFF


def test_error_records_become_our_errors_by_their_id(world: World) -> None:
    vm = add_vm(world, "app")
    world.a.faults.fail_next(
        "Start-VM",
        CmdletError(
            "OutOfMemory,Microsoft.HyperV.PowerShell.Commands.StartVM",
            "'app' failed to start: not enough memory in the system to start the virtual machine.",
            category="FromStdErr",
            terminating=False,
        ),
    )
    with pytest.raises(PermanentBackendError, match=r"OutOfMemory,.*StartVM"):
        world.backend.power_on(vm)
    world.a.faults.fail_next(
        "Start-VM",
        CmdletError(
            "ObjectInUse,Microsoft.HyperV.PowerShell.Commands.StartVM",
            "The system is in use.",
            category="ResourceBusy",
        ),
    )
    with pytest.raises(TransientBackendError, match="ObjectInUse"):
        world.backend.power_on(vm)
    with pytest.raises(NotFoundError, match=r"ObjectNotFound,.*GetVM"):
        world.backend.power_on("hv-a/6f1c7c4e-3b0a-4d7e-9a57-0c0ffee00001")


def test_a_replica_cannot_start_before_it_is_failed_over(world: World) -> None:
    vm = add_vm(world, "app")
    replica = world.backend.create_replica(
        vm, "hv-b", "hv-b-storage", network_map={"Prod": "DR-Prod"}
    )
    with pytest.raises(ConflictError, match=r"InvalidState,.*StartVM"):
        world.backend.power_on(replica.replica_vm)
