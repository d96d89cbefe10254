"""vmfailover: protect virtual machines and fail them over.

The public API. Everything a user scripts against is importable from here.
"""

from __future__ import annotations

from vmfailover.backends.base import Backend, Readiness, Throttle
from vmfailover.backends.memory import MemoryBackend
from vmfailover.clock import Clock, SystemClock, VirtualClock
from vmfailover.engine.aftercare_results import (
    CommitResult,
    Deadline,
    DeadlineAction,
    FailbackResult,
    FailbackVM,
    UndoResult,
)
from vmfailover.engine.clean_point import CleanPointSearch, find_clean_point
from vmfailover.engine.clean_point_result import CleanPointResult, PointVerdict, SearchedGroup
from vmfailover.engine.deadlines import DeadlineOutcome, act_on_due, pending_deadlines
from vmfailover.engine.drill_results import DrillResult, VMReadiness
from vmfailover.engine.drills import Drill, DrillDriver, run_drill
from vmfailover.engine.fenced import FencedBackend
from vmfailover.engine.fenced_journal import FencedJournal
from vmfailover.engine.host_failover import HostFailoverResponse
from vmfailover.engine.host_failover_results import (
    HostFailoverReport,
    HostRestart,
    MoveBack,
    MoveBackReport,
    MovedBack,
)
from vmfailover.engine.host_monitor import (
    BackendWitness,
    HostMonitor,
    MonitorMode,
    MonitorNote,
    RestartObservation,
    VMPowerWitness,
    Witness,
)
from vmfailover.engine.journal import (
    Journal,
    JournalEntry,
    JournalUnavailableError,
    RunHistory,
    RunSummary,
)
from vmfailover.engine.lease import (
    FencingToken,
    Lease,
    LeaseGrant,
    LeaseLostError,
    LeaseState,
    LeaseUnavailableError,
)
from vmfailover.engine.lease_keeper import LeaseKeeper
from vmfailover.engine.lease_postgres import PostgresLease
from vmfailover.engine.lease_sqlite import SQLiteLease
from vmfailover.engine.orchestrator import HeldRun, Orchestrator
from vmfailover.engine.point_checks import BootedCopy, CleanPointError
from vmfailover.engine.postgres_journal import PostgresJournal
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
from vmfailover.engine.results import (
    CleanupResult,
    Outcome,
    RunReport,
    RunResult,
    StepRecord,
    VMResult,
)
from vmfailover.engine.rpo import RPOEntry, RPOReport, rpo_status
from vmfailover.engine.run_state import RunState
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
from vmfailover.engine.sqlite_journal import SQLiteJournal
from vmfailover.engine.throttle import TokenBucket
from vmfailover.errors import (
    BackendError,
    ConflictError,
    Finding,
    Findings,
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
    Secret,
    Site,
)
from vmfailover.plan import (
    Approval,
    ApprovalRequest,
    CompiledPlan,
    FailoverPlan,
    PowerOffSource,
    Step,
    StepContext,
    StepFailure,
)
from vmfailover.plan.reverse import reverse_plan
from vmfailover.policy.bandwidth import Bandwidth
from vmfailover.policy.clean_point import PointSearch, RecoveryMoment, Verdict
from vmfailover.policy.cluster import (
    AdmissionControl,
    Cluster,
    ClusterPolicy,
    IsolationResponse,
    RestartPriority,
)
from vmfailover.policy.cluster_check import check_cluster
from vmfailover.policy.drills import DrillOutcome
from vmfailover.policy.host_health import (
    HealthEvent,
    HostDecision,
    HostHealth,
    HostObservation,
    HostState,
    WitnessVerdict,
)
from vmfailover.policy.isolation import IsolationVerdict, isolation_restarts
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.placement import (
    HostLoad,
    PlacedVM,
    Placement,
    UnplacedReason,
    UnplacedVM,
    place,
)
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
    CompiledOrder,
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
    "AdmissionControl",
    "Approval",
    "ApprovalRequest",
    "Backend",
    "BackendError",
    "BackendWitness",
    "Bandwidth",
    "BootedCopy",
    "CalendarDuration",
    "CallableProbe",
    "CleanPointError",
    "CleanPointResult",
    "CleanPointSearch",
    "CleanupResult",
    "Clock",
    "Cluster",
    "ClusterPolicy",
    "CommitResult",
    "CompiledOrder",
    "CompiledPlan",
    "ConflictError",
    "ConnectionState",
    "Consistency",
    "Credentials",
    "Datastore",
    "Deadline",
    "DeadlineAction",
    "DeadlineOutcome",
    "Distribution",
    "Drill",
    "DrillDriver",
    "DrillOutcome",
    "DrillResult",
    "FailbackResult",
    "FailbackVM",
    "FailoverKind",
    "FailoverPlan",
    "FailurePolicy",
    "FencedBackend",
    "FencedJournal",
    "FencingToken",
    "Finding",
    "Findings",
    "Fixed",
    "GroupMode",
    "GuestOS",
    "HTTPStatus",
    "HealthEvent",
    "HeldRun",
    "Host",
    "HostDecision",
    "HostFailoverReport",
    "HostFailoverResponse",
    "HostHealth",
    "HostLoad",
    "HostMonitor",
    "HostObservation",
    "HostRestart",
    "HostState",
    "IPAssigned",
    "IPAssignment",
    "IPConfig",
    "Inventory",
    "IsolationResponse",
    "IsolationVerdict",
    "JobFinished",
    "JobOutcome",
    "JobResult",
    "JobStarted",
    "Journal",
    "JournalEntry",
    "JournalUnavailableError",
    "KeepReasons",
    "Lease",
    "LeaseGrant",
    "LeaseKeeper",
    "LeaseLostError",
    "LeaseState",
    "LeaseUnavailableError",
    "LogNormal",
    "MemoryBackend",
    "MissingExtraError",
    "MonitorMode",
    "MonitorNote",
    "MoveBack",
    "MoveBackReport",
    "MovedBack",
    "Network",
    "NetworkMapping",
    "Nic",
    "NotFoundError",
    "Orchestrator",
    "Outcome",
    "PermanentBackendError",
    "PlacedVM",
    "Placement",
    "PointSearch",
    "PointVerdict",
    "PostgresJournal",
    "PostgresLease",
    "PowerOffSource",
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
    "RecoveryMoment",
    "RecoveryPoint",
    "RemovedPoint",
    "Replica",
    "ReplicaState",
    "ReplicationEvent",
    "ReplicationJob",
    "RestartObservation",
    "RestartPriority",
    "RetentionDecision",
    "RetentionEntry",
    "RetentionPolicy",
    "RetryPolicy",
    "RuleForm",
    "Run",
    "RunHistory",
    "RunReport",
    "RunResult",
    "RunState",
    "RunSummary",
    "Runner",
    "SQLiteJournal",
    "SQLiteLease",
    "Schedule",
    "Scheduler",
    "SearchedGroup",
    "Secret",
    "Sequencer",
    "Severity",
    "SimulationResult",
    "Site",
    "StartEntry",
    "StartOrder",
    "Step",
    "StepContext",
    "StepFailure",
    "StepRecord",
    "SyncOutcome",
    "SystemClock",
    "TCPPort",
    "Throttle",
    "TokenBucket",
    "ToolsHeartbeat",
    "TransientBackendError",
    "UndoResult",
    "Uniform",
    "UnplacedReason",
    "UnplacedVM",
    "VMFailoverError",
    "VMPowerWitness",
    "VMReadiness",
    "VMResult",
    "VMState",
    "VMSyncResult",
    "ValidationError",
    "Verdict",
    "VirtualClock",
    "Witness",
    "WitnessVerdict",
    "__version__",
    "act_on_due",
    "addresses_in_use",
    "check_cluster",
    "choose_point",
    "classify_rpo",
    "find_clean_point",
    "isolation_restarts",
    "pending_deadlines",
    "place",
    "reverse_plan",
    "rpo_compliance",
    "rpo_status",
    "run_drill",
    "simulate",
]
