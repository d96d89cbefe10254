"""vmfailover: protect virtual machines and fail them over.

The public API. Everything a user scripts against is importable from here.
"""

from __future__ import annotations

from vmfailover.backends.base import Backend, Readiness, Throttle
from vmfailover.backends.memory import MemoryBackend
from vmfailover.clock import Clock, SystemClock, VirtualClock
from vmfailover.engine.replication import ReplicationJob
from vmfailover.engine.replication_events import (
    JobFinished,
    JobStarted,
    ReplicationEvent,
    RPOChanged,
)
from vmfailover.engine.replication_results import (
    JobOutcome,
    JobResult,
    RemovedPoint,
    SyncOutcome,
    VMSyncResult,
)
from vmfailover.engine.results import Outcome, RunReport, RunResult, VMResult
from vmfailover.engine.rpo import RPOEntry, RPOReport, rpo_status
from vmfailover.engine.runner import RetryPolicy, Run, Runner
from vmfailover.engine.scheduler import Scheduler
from vmfailover.engine.simulate import (
    Distribution,
    Fixed,
    LogNormal,
    SimulationResult,
    Uniform,
    simulate,
)
from vmfailover.engine.throttle import TokenBucket
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
from vmfailover.policy.bandwidth import Bandwidth
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.points import choose_point
from vmfailover.policy.probes import (
    CallableProbe,
    HTTPStatus,
    IPAssigned,
    PoweredOn,
    Probe,
    TCPPort,
    ToolsHeartbeat,
)
from vmfailover.policy.reip import (
    IPAssignment,
    ReIPAction,
    ReIPEntry,
    ReIPOverride,
    ReIPPlan,
    ReIPRule,
    ReIPRules,
    RuleForm,
    addresses_in_use,
)
from vmfailover.policy.retention import (
    CalendarDuration,
    KeepReasons,
    RetentionDecision,
    RetentionEntry,
    RetentionPolicy,
)
from vmfailover.policy.rpo import RPOState, classify_rpo, rpo_compliance
from vmfailover.policy.schedule import Schedule
from vmfailover.policy.sequencer import (
    FailurePolicy,
    GroupMode,
    Sequencer,
    StartEntry,
    StartOrder,
    VMState,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "VM",
    "Backend",
    "BackendError",
    "Bandwidth",
    "CalendarDuration",
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
    "IPAssignment",
    "IPConfig",
    "Inventory",
    "JobFinished",
    "JobOutcome",
    "JobResult",
    "JobStarted",
    "KeepReasons",
    "LogNormal",
    "MemoryBackend",
    "MissingExtraError",
    "Network",
    "NetworkMapping",
    "Nic",
    "NotFoundError",
    "Outcome",
    "PermanentBackendError",
    "PowerState",
    "PoweredOn",
    "Probe",
    "RPOChanged",
    "RPOEntry",
    "RPOReport",
    "RPOState",
    "ReIPAction",
    "ReIPEntry",
    "ReIPOverride",
    "ReIPPlan",
    "ReIPRule",
    "ReIPRules",
    "Readiness",
    "RecoveryPoint",
    "RemovedPoint",
    "Replica",
    "ReplicaState",
    "ReplicationEvent",
    "ReplicationJob",
    "RetentionDecision",
    "RetentionEntry",
    "RetentionPolicy",
    "RetryPolicy",
    "RuleForm",
    "Run",
    "RunReport",
    "RunResult",
    "Runner",
    "Schedule",
    "Scheduler",
    "Sequencer",
    "Severity",
    "SimulationResult",
    "Site",
    "StartEntry",
    "StartOrder",
    "SyncOutcome",
    "SystemClock",
    "TCPPort",
    "Throttle",
    "TokenBucket",
    "ToolsHeartbeat",
    "TransientBackendError",
    "Uniform",
    "VMFailoverError",
    "VMResult",
    "VMState",
    "VMSyncResult",
    "ValidationError",
    "VirtualClock",
    "__version__",
    "addresses_in_use",
    "choose_point",
    "classify_rpo",
    "rpo_compliance",
    "rpo_status",
    "simulate",
]
