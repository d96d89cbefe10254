"""pytest fixtures for simulated Hyper-V hosts.

Use them with ``pytest_plugins = ["vmfailover.testing.hyperv.fixtures"]`` in a top-level conftest.

* ``hyperv_host``: one started :class:`HyperVHost` (Basic on http) on a free port;
* ``hyperv_pair``: a primary and a replica host sharing one replication fabric, each on its own
  port (``pair.primary``, ``pair.replica``, ``pair.fabric``);
* ``hyperv_host_factory``: call it with :class:`HyperVHost`'s arguments for any other setup.

Every host started through these fixtures is stopped at teardown (stop closes its connections and
pipelines, so teardown does not wait on clients).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from .host import HyperVHost
from .model import ReplicationFabric

__all__ = ["HostPair", "hyperv_host", "hyperv_host_factory", "hyperv_pair"]


@attrs.frozen
class HostPair:
    """A primary and a replica host on one replication fabric."""

    primary: HyperVHost
    replica: HyperVHost
    fabric: ReplicationFabric


@pytest.fixture
def hyperv_host_factory() -> Iterator[Callable[..., HyperVHost]]:
    """Start hosts with any :class:`HyperVHost` arguments; all are stopped at teardown."""
    started: list[HyperVHost] = []

    def factory(name: str = "hv-test", **kwargs: Any) -> HyperVHost:
        host = HyperVHost(name, **kwargs).start()
        started.append(host)
        return host

    yield factory
    for host in reversed(started):
        host.stop()


@pytest.fixture
def hyperv_host(hyperv_host_factory: Callable[..., HyperVHost]) -> HyperVHost:
    """One simulated Hyper-V host, Basic auth on http."""
    return hyperv_host_factory("hv-a")


@pytest.fixture
def hyperv_pair(hyperv_host_factory: Callable[..., HyperVHost]) -> HostPair:
    """A primary (``hv-a``) and a replica (``hv-b``) host on one replication fabric."""
    fabric = ReplicationFabric()
    primary = hyperv_host_factory("hv-a", fabric=fabric)
    replica = hyperv_host_factory("hv-b", fabric=fabric)
    return HostPair(primary, replica, fabric)
