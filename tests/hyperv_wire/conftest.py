"""Wire tests of the simulated host: pypsrp against the WS-Management/PSRP layers.

The command host here is a small one of our own (the seam of ``_objects.py``), so these tests
exercise the transport alone; the Hyper-V cmdlets are tested in ``tests/hyperv``.
"""

from __future__ import annotations

import contextlib
import datetime
import faulthandler
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from vmfailover.testing.hyperv._objects import (
    CmdletError,
    CommandResult,
    EnumValue,
    OutputObject,
)
from vmfailover.testing.hyperv.client import PypsrpShell

# pytest only honours ``pytest_plugins`` in the top-level conftest (not ours to edit): importing
# the fixtures registers them for this directory just the same.
from vmfailover.testing.hyperv.fixtures import (
    hyperv_host,
    hyperv_host_factory,
    hyperv_pair,
)

__all__ = ["hyperv_host", "hyperv_host_factory", "hyperv_pair"]
from vmfailover.testing.hyperv.host import HyperVHost

#: No test may hang: after this many seconds the process dumps its threads and exits.
HANG_GUARD_SECONDS = 60

VM_STATE = "Microsoft.HyperV.PowerShell.VMState"
WHEN = datetime.datetime(2026, 11, 26, 12, 30, 15, 123456, tzinfo=datetime.UTC)
ITEM_ID = uuid.UUID("6f1c7c4e-3b0a-4d7e-9a57-0c0ffee00001")


def item(name: str) -> OutputObject:
    """The object ``Get-Item`` writes: enums, a nested object, a list, a date, a GUID, a float."""
    adapter = OutputObject(
        ("Microsoft.HyperV.PowerShell.VMNetworkAdapter", "System.Object"),
        {"Name": "Network Adapter", "SwitchName": "Prod", "MacAddress": "00155D000001"},
        "VMNetworkAdapter (Name = 'Network Adapter')",
    )
    return OutputObject(
        ("Microsoft.HyperV.PowerShell.VirtualMachine", "System.Object"),
        {
            "Name": name,
            "Id": ITEM_ID,
            "State": EnumValue(VM_STATE, "Running", 2),
            "MemoryStartup": 2048 * 1024 * 1024,
            "CPUUsage": 3,
            "Uptime": 1.5,
            "CreationTime": WHEN,
            "NetworkAdapters": [adapter],
            "Notes": None,
            "IsClustered": False,
        },
        f"VirtualMachine (Name = '{name}')",
    )


class EchoHost:
    """A CommandHost with a handful of commands that exercise every path of the PSRP layer."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def invoke(
        self,
        command: str,
        arguments: Sequence[tuple[str | None, Any]],
        input_objects: Sequence[Any] = (),
    ) -> CommandResult:
        named = {name.lower(): value for name, value in arguments if name is not None}
        positional = [value for name, value in arguments if name is None]
        key = command.lower()
        if key == "get-item":
            names = positional or [named.get("name", "web01")]
            return CommandResult(output=tuple(item(str(n)) for n in names))
        if key == "echo-value":
            return CommandResult(output=(*input_objects, *(value for _, value in arguments)))
        if key == "count-input":
            return CommandResult(output=(len(input_objects),))
        if key == "fail-item":
            raise CmdletError(
                "InvalidState,Microsoft.HyperV.PowerShell.Commands.StartVM",
                f"'{positional[0] if positional else 'web01'}' failed to start.",
                category="InvalidOperation",
                target=item(str(positional[0]) if positional else "web01"),
            )
        if key == "warn-item":
            errors = tuple(
                CmdletError(
                    "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.GetVM",
                    f'Hyper-V was unable to find a virtual machine with name "{n}".',
                    category="ObjectNotFound",
                    target=str(n),
                    terminating=False,
                )
                for n in positional
            )
            return CommandResult(output=(item("found"),), errors=errors)
        if key == "big-output":
            size = int(named.get("size", 100_000))
            return CommandResult(output=("".join(chr(65 + i % 26) for i in range(size)),))
        if key == "sleep-item":
            self.stop.wait(float(named.get("seconds", 0.2)))
            return CommandResult(output=(named.get("tag", "slept"),))
        if key == "crash-item":
            raise RuntimeError("bug in the command host")
        raise CmdletError(
            "CommandNotFoundException",
            f"The term '{command}' is not recognized as the name of a cmdlet, function, script "
            "file, or operable program.",
            category="ObjectNotFound",
            target=command,
            exception_type="System.Management.Automation.CommandNotFoundException",
        )


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    """pytest-timeout is not installed: dump every thread and exit if a test hangs."""
    faulthandler.dump_traceback_later(HANG_GUARD_SECONDS, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


TRANSPORTS = {
    "basic-http": {"auth": "basic", "tls": False},
    "basic-https": {"auth": "basic", "tls": True},
    "ntlm-http": {"auth": "ntlm", "tls": False},
}


@pytest.fixture
def echo_host_factory(
    hyperv_host_factory: Callable[..., HyperVHost],
) -> Callable[..., HyperVHost]:
    def factory(name: str = "hv-wire", **kwargs: Any) -> HyperVHost:
        kwargs.setdefault("command_host", EchoHost())
        return hyperv_host_factory(name, **kwargs)

    return factory


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(TRANSPORTS[request.param])


@pytest.fixture
def wire_host(
    echo_host_factory: Callable[..., HyperVHost], transport: dict[str, Any]
) -> HyperVHost:
    """An EchoHost behind each transport in turn."""
    return echo_host_factory(**transport)


@pytest.fixture
def shell_factory(
    hyperv_host_factory: Callable[..., HyperVHost],
) -> Iterator[Callable[..., PypsrpShell]]:
    """Open PypsrpShells with short timeouts; all are closed at teardown (before the hosts)."""
    shells: list[PypsrpShell] = []

    def factory(host: HyperVHost, **kwargs: Any) -> PypsrpShell:
        kwargs.setdefault("operation_timeout", 2)
        kwargs.setdefault("read_timeout", 10)
        shell = PypsrpShell(host, **kwargs)
        shells.append(shell)
        return shell

    yield factory
    for shell in shells:
        # A test may have stopped the host or broken the connection on purpose.
        with contextlib.suppress(Exception):
            shell.close()


@pytest.fixture
def shell(wire_host: HyperVHost, shell_factory: Callable[..., PypsrpShell]) -> PypsrpShell:
    return shell_factory(wire_host)
