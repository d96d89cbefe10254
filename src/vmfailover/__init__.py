"""vmfailover: protect virtual machines and fail them over.

The public API. Everything a user scripts against is importable from here.
"""

from __future__ import annotations

from vmfailover.backends.base import Backend, Readiness
from vmfailover.backends.memory import MemoryBackend
from vmfailover.clock import Clock, SystemClock, VirtualClock
from vmfailover.errors import (
    BackendError,
    ConflictError,
    Finding,
    MissingExtraError,
    NotFoundError,
    PermanentBackendError,
    Severity,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import (
    VM,
    ConnectionState,
    Consistency,
    Credentials,
    Datastore,
    FailoverKind,
    GuestOS,
    Host,
    Inventory,
    IPConfig,
    Network,
    Nic,
    PowerState,
    RecoveryPoint,
    Replica,
    ReplicaState,
    Site,
)
from vmfailover.probes import (
    CallableProbe,
    HTTPStatus,
    IPAssigned,
    PoweredOn,
    Probe,
    TCPPort,
    ToolsHeartbeat,
)
from vmfailover.report import Outcome, RunReport, RunResult, VMResult
from vmfailover.runner import RetryPolicy, Run, Runner, choose_point
from vmfailover.sequencer import (
    FailurePolicy,
    GroupMode,
    Sequencer,
    StartEntry,
    StartOrder,
    VMState,
)
from vmfailover.simulate import (
    Distribution,
    Fixed,
    LogNormal,
    SimulationResult,
    Uniform,
    simulate,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "VM",
    "Backend",
    "BackendError",
    "CallableProbe",
    "Clock",
    "ConflictError",
    "ConnectionState",
    "Consistency",
    "Credentials",
    "Datastore",
    "Distribution",
    "FailoverKind",
    "FailurePolicy",
    "Finding",
    "Fixed",
    "GroupMode",
    "GuestOS",
    "HTTPStatus",
    "Host",
    "IPAssigned",
    "IPConfig",
    "Inventory",
    "LogNormal",
    "MemoryBackend",
    "MissingExtraError",
    "Network",
    "Nic",
    "NotFoundError",
    "Outcome",
    "PermanentBackendError",
    "PowerState",
    "PoweredOn",
    "Probe",
    "Readiness",
    "RecoveryPoint",
    "Replica",
    "ReplicaState",
    "RetryPolicy",
    "Run",
    "RunReport",
    "RunResult",
    "Runner",
    "Sequencer",
    "Severity",
    "SimulationResult",
    "Site",
    "StartEntry",
    "StartOrder",
    "SystemClock",
    "TCPPort",
    "ToolsHeartbeat",
    "TransientBackendError",
    "Uniform",
    "VMFailoverError",
    "VMResult",
    "VMState",
    "ValidationError",
    "VirtualClock",
    "__version__",
    "choose_point",
    "simulate",
]
