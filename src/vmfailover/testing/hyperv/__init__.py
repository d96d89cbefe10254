"""A simulated Hyper-V host that speaks WinRM and PSRP, for pypsrp clients to test against.

Three layers, each ignorant of the one above: the WS-Management server (:mod:`.wsman`), the PSRP
session (:mod:`.session`), and the Hyper-V model with its cmdlets (:mod:`.model`,
:mod:`.cmdlets`, parameter binding in :mod:`.binding`). :class:`HyperVHost` puts them together on
a free port of 127.0.0.1::

    from vmfailover.testing.hyperv import HyperVHost, ReplicationFabric

    fabric = ReplicationFabric()
    with HyperVHost("hv-a", fabric=fabric, auth="basic", tls=False) as a, \\
         HyperVHost("hv-b", fabric=fabric, auth="ntlm", tls=True) as b:
        a.model.add_switch("Prod")
        a.model.add_vm("web01", switch="Prod", state="Running", memory_mb=2048)
        # any pypsrp client now reaches them (see PypsrpShell for one)

Pytest fixtures: ``pytest_plugins = ["vmfailover.testing.hyperv.fixtures"]``.
"""

from ._objects import (
    Call,
    CmdletError,
    CommandHost,
    CommandResult,
    EnumValue,
    InputObject,
    OutputObject,
    Shell,
    ShellResult,
    cmd,
)
from .client import PypsrpShell
from .cmdlets import HyperVCommandHost
from .fabric_clock import FabricClock
from .faults import (
    ACCESS_DENIED,
    OPERATION_TIMEOUT,
    SHELL_NOT_FOUND,
    TRANSIENT,
    FaultHooks,
    WinRMFault,
)
from .host import HyperVHost
from .limits import ConnectionCounts, ServerLimits
from .local import LocalShell
from .model import HostModel, ReplicationFabric
from .session import CallLog

__all__ = [
    "ACCESS_DENIED",
    "OPERATION_TIMEOUT",
    "SHELL_NOT_FOUND",
    "TRANSIENT",
    "Call",
    "CallLog",
    "CmdletError",
    "CommandHost",
    "CommandResult",
    "ConnectionCounts",
    "EnumValue",
    "FabricClock",
    "FaultHooks",
    "HostModel",
    "HyperVCommandHost",
    "HyperVHost",
    "InputObject",
    "LocalShell",
    "OutputObject",
    "PypsrpShell",
    "ReplicationFabric",
    "ServerLimits",
    "Shell",
    "ShellResult",
    "WinRMFault",
    "cmd",
]
