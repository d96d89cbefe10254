"""vmfailover: protect virtual machines and fail them over.

The public API. Everything a user scripts against is importable from here.
"""

from __future__ import annotations

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

__version__ = "0.1.0.dev0"

__all__ = [
    "VM",
    "BackendError",
    "ConflictError",
    "ConnectionState",
    "Consistency",
    "Credentials",
    "Datastore",
    "FailoverKind",
    "Finding",
    "GuestOS",
    "Host",
    "IPConfig",
    "Inventory",
    "MissingExtraError",
    "Network",
    "Nic",
    "NotFoundError",
    "PermanentBackendError",
    "PowerState",
    "RecoveryPoint",
    "Replica",
    "ReplicaState",
    "Severity",
    "Site",
    "TransientBackendError",
    "VMFailoverError",
    "ValidationError",
    "__version__",
]
