"""The Hyper-V backend against simulated Hyper-V hosts over real HTTP on 127.0.0.1.

``two_sites`` builds the usual world: ``hv-a`` at site-a (switch ``Prod``) and ``hv-b`` at site-b
(``DR-Prod``, ``DR-Spare``, ``DR-Test`` private), on one fabric that replicates on Hyper-V's own
schedule in fabric time, and a :class:`HyperVBackend` whose clock is that time
(:class:`FabricClock`): waiting for a recovery point is what makes the next one come.
"""

from __future__ import annotations

import faulthandler
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

from vmfailover.backends.hyperv import HostConnection, HyperVBackend
from vmfailover.backends.hyperv.ids import VMRef
from vmfailover.model import Credentials, Replica
from vmfailover.testing.hyperv import FabricClock, HyperVHost, ReplicationFabric

# pytest only honours ``pytest_plugins`` in the top-level conftest: importing the fixtures
# registers them for this directory just the same.
from vmfailover.testing.hyperv.fixtures import hyperv_host_factory

__all__ = ["hyperv_host_factory"]

#: No test may hang: after this many seconds the process dumps its threads and exits.
HANG_GUARD_SECONDS = 120


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    faulthandler.dump_traceback_later(HANG_GUARD_SECONDS, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


def connection(host: HyperVHost, site: str, **overrides: Any) -> HostConnection:
    """How the backend reaches a simulated host (its transport as the host was started)."""
    settings: dict[str, Any] = {
        "address": "127.0.0.1",
        "port": host.port,
        "tls": host.tls,
        "auth": host.auth,
        "credentials": Credentials(host.username, host.password),
        "encryption": "never" if host.auth == "basic" and not host.tls else "auto",
        "operation_timeout": 2,
        "read_timeout": 10,
        "connect_timeout": 5,
        "pipeline_timeout": 30,
    }
    settings.update(overrides)
    return HostConnection(host.name, site, **settings)


@attrs.frozen
class World:
    """Two simulated hosts, their fabric, and a backend over both."""

    fabric: ReplicationFabric
    a: HyperVHost
    b: HyperVHost
    backend: HyperVBackend
    clock: FabricClock

    def vm_id(self, host: HyperVHost, name: str) -> str:
        assert host.model is not None
        return str(VMRef(host.name, host.model.vm(name).id))

    def wait(self, seconds: float) -> None:
        self.fabric.advance(timedelta(seconds=seconds))

    def write(self, vm_id: str) -> None:
        ref = VMRef.parse(vm_id)
        host = self.a if ref.host == self.a.name else self.b
        assert host.model is not None
        host.model.write_data(ref.guid)


def build_world(
    factory: Callable[..., HyperVHost],
    *,
    a_transport: dict[str, Any] | None = None,
    b_transport: dict[str, Any] | None = None,
    a_connection: dict[str, Any] | None = None,
    b_connection: dict[str, Any] | None = None,
    **backend_options: Any,
) -> World:
    fabric = ReplicationFabric(scheduled_replication=True)
    a = factory("hv-a", fabric=fabric, **(a_transport or {"auth": "basic"}))
    b = factory("hv-b", fabric=fabric, **(b_transport or {"auth": "basic"}))
    assert a.model is not None
    assert b.model is not None
    a.model.add_switch("Prod")
    b.model.add_switch("DR-Prod")
    b.model.add_switch("DR-Spare")
    b.model.add_switch("DR-Test", "Private")
    clock = FabricClock(fabric)
    backend_options.setdefault("sync_poll_interval", 30.0)
    backend = HyperVBackend(
        [
            connection(a, "site-a", **(a_connection or {})),
            connection(b, "site-b", **(b_connection or {})),
        ],
        clock=clock,
        **backend_options,
    )
    return World(fabric, a, b, backend, clock)


@pytest.fixture
def world(hyperv_host_factory: Callable[..., HyperVHost]) -> Iterator[World]:
    built = build_world(hyperv_host_factory)
    yield built
    built.backend.close()


def add_vm(world: World, name: str, **kwargs: Any) -> str:
    """A running VM on hv-a (switch Prod, 192.168.1.x), returned as its backend id."""
    assert world.a.model is not None
    kwargs.setdefault("switch", "Prod")
    kwargs.setdefault("state", "Running")
    kwargs.setdefault("ip_addresses", [f"192.168.1.{10 + len(world.a.model.vms)}"])
    record = world.a.model.add_vm(name, **kwargs)
    return str(VMRef("hv-a", record.id))


def replicate(world: World, vm_id: str) -> Replica:
    """A replica of ``vm_id`` on hv-b, its NICs on DR-Prod."""
    return world.backend.create_replica(
        vm_id, "hv-b", "hv-b-storage", network_map={"Prod": "DR-Prod"}
    )


def guid_of(vm_id: str) -> uuid.UUID:
    return VMRef.parse(vm_id).guid
