"""Fixtures for the simulated Hyper-V host: the same test bodies run over every transport.

``TRANSPORTS`` maps a transport name to a factory: a context manager that yields a
:class:`HyperVPair` (two hosts of one fabric, ``hv-a`` primary and ``hv-b`` replica, each reached
through a :class:`Shell`) and tears it down on exit. Only ``"local"`` (in process) is defined
here; the wire transports (Basic over http and https, NTLM with encryption) register their
factories in the same dict. Fixtures:

* ``hv_pair``: a fresh pair, parametrized over ``TRANSPORTS``;
* ``hv``: one host (the pair's primary) as :class:`HyperVSingle`.

Scene setting goes through the models (plain Python); everything under test goes through the
shells. Compare type names with :func:`type_name`, which strips ``Deserialized.``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import attrs
import pytest

from vmfailover.testing.hyperv._objects import CmdletError, Shell, ShellResult, cmd
from vmfailover.testing.hyperv.client import PypsrpShell
from vmfailover.testing.hyperv.cmdlets import HyperVCommandHost
from vmfailover.testing.hyperv.host import HyperVHost
from vmfailover.testing.hyperv.local import LocalShell
from vmfailover.testing.hyperv.model import HostModel, ReplicationFabric


@attrs.frozen
class HyperVPair:
    primary: Shell
    replica: Shell
    primary_model: HostModel
    replica_model: HostModel
    fabric: ReplicationFabric
    transport: str = "local"


@attrs.frozen
class HyperVSingle:
    shell: Shell
    model: HostModel
    fabric: ReplicationFabric
    transport: str = "local"


@contextmanager
def make_local_pair() -> Iterator[HyperVPair]:
    fabric = ReplicationFabric()
    primary = fabric.add_host("hv-a")
    replica = fabric.add_host("hv-b")
    yield HyperVPair(
        primary=LocalShell(HyperVCommandHost(primary)),
        replica=LocalShell(HyperVCommandHost(replica)),
        primary_model=primary,
        replica_model=replica,
        fabric=fabric,
    )


@contextmanager
def make_wire_pair(auth: str, tls: bool, transport: str) -> Iterator[HyperVPair]:
    """Two simulated hosts on 127.0.0.1, each reached by pypsrp through a reused pool."""
    fabric = ReplicationFabric()
    with (
        HyperVHost("hv-a", fabric=fabric, auth=auth, tls=tls) as primary,
        HyperVHost("hv-b", fabric=fabric, auth=auth, tls=tls) as replica,
    ):
        shells = (PypsrpShell(primary), PypsrpShell(replica))
        try:
            assert primary.model is not None
            assert replica.model is not None
            yield HyperVPair(
                primary=shells[0],
                replica=shells[1],
                primary_model=primary.model,
                replica_model=replica.model,
                fabric=fabric,
                transport=transport,
            )
        finally:
            for shell in shells:
                shell.close()


TRANSPORTS: dict[str, Callable[[], AbstractContextManager[HyperVPair]]] = {
    "local": make_local_pair,
    # The same test bodies over the wire: pypsrp against the simulated WinRM/PSRP host.
    "basic-http": functools.partial(make_wire_pair, "basic", False, "basic-http"),
    "basic-https": functools.partial(make_wire_pair, "basic", True, "basic-https"),
    "ntlm": functools.partial(make_wire_pair, "ntlm", False, "ntlm"),
}


@pytest.fixture(params=sorted(TRANSPORTS))
def hv_pair(request: pytest.FixtureRequest) -> Iterator[HyperVPair]:
    with TRANSPORTS[request.param]() as pair:
        yield pair


@pytest.fixture
def hv(hv_pair: HyperVPair) -> HyperVSingle:
    return HyperVSingle(hv_pair.primary, hv_pair.primary_model, hv_pair.fabric, hv_pair.transport)


# ----------------------------------------------------------------------------- helpers


def start_replication(pair: HyperVPair, vm: str, *, cycles: int) -> None:
    """Replicate ``vm`` from hv-a to hv-b (history 4), then run ``cycles`` write+sync cycles."""
    ok(pair.primary.run(cmd("Enable-VMReplication", vm, "hv-b", 80, "Kerberos", RecoveryHistory=4)))
    ok(pair.primary.run(cmd("Start-VMInitialReplication", vm)))
    for _ in range(cycles):
        pair.primary_model.write_data(vm)
        pair.primary_model.replicate(vm)


def type_name(obj: Any) -> str:
    """The most derived .NET type name, without ``Deserialized.``."""
    return str(obj.type_names[0]).removeprefix("Deserialized.")


def prop(obj: Any, name: str) -> Any:
    return obj.properties[name]


def describe(value: Any) -> str:
    """A value as text: an object by its ToString, an enum by member name, else str().

    Works whether a transport delivers a nested object as an object or, beyond PowerShell's
    remoting serialization depth, as its ToString.
    """
    to_string = getattr(value, "to_string", None)
    if isinstance(to_string, str) and to_string:
        return to_string
    return str(value)


def text(obj: Any, name: str) -> str:
    """A property as text (see :func:`describe`)."""
    return describe(obj.properties[name])


def names(result: ShellResult, key: str = "Name") -> list[str]:
    return [str(o.properties[key]) for o in result.output]


def error_ids(result: ShellResult) -> list[str]:
    return [e.fully_qualified_error_id for e in result.errors]


def only_error(result: ShellResult) -> CmdletError:
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def ok(result: ShellResult) -> ShellResult:
    assert not result.errors, result.errors
    return result
