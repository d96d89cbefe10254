"""vim faults and transport errors, mapped to vmfailover's errors by one table.

A vim fault is looked up by its class and then by each base class in turn (``HostCommunication``
covers ``HostNotReachable`` and ``HostNotConnected``), so a fault a newer vCenter adds still lands
on the kind of its family. A fault in no family is permanent: retrying what we do not understand
can do harm.
"""

from __future__ import annotations

import enum
import http.client
import socket
import ssl
from collections.abc import Mapping
from types import MappingProxyType

from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
    VMFailoverError,
)

__all__ = ["FAULT_KINDS", "FaultKind", "fault_kind", "fault_name", "translate_fault"]


class FaultKind(enum.StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    SESSION = "session"  # the session is gone: log in again, then retry once


FAULT_KINDS: Mapping[str, FaultKind] = MappingProxyType(
    {
        # the session
        "NotAuthenticated": FaultKind.SESSION,
        # the thing is not there
        "ManagedObjectNotFound": FaultKind.NOT_FOUND,
        "NotFound": FaultKind.NOT_FOUND,
        # the object's state forbids it now
        "InvalidPowerState": FaultKind.CONFLICT,
        "InvalidState": FaultKind.CONFLICT,
        "DuplicateName": FaultKind.CONFLICT,
        "CustomizationPending": FaultKind.CONFLICT,
        "SnapshotFault": FaultKind.CONFLICT,
        "CpuIncompatible": FaultKind.CONFLICT,  # no live move across CPUs: shut down, then move
        # worth trying again: the host, the network, a lock, a busy vCenter
        "HostCommunication": FaultKind.TRANSIENT,
        "HostConnectFault": FaultKind.TRANSIENT,
        "InvalidHostState": FaultKind.TRANSIENT,
        "InvalidHostConnectionState": FaultKind.TRANSIENT,
        "HostNotConnected": FaultKind.TRANSIENT,
        "HostNotReachable": FaultKind.TRANSIENT,
        "TaskInProgress": FaultKind.TRANSIENT,
        "ResourceInUse": FaultKind.TRANSIENT,
        "ConcurrentAccess": FaultKind.TRANSIENT,
        "Timedout": FaultKind.TRANSIENT,
        "ToolsUnavailable": FaultKind.TRANSIENT,
        "RequestCanceled": FaultKind.TRANSIENT,
        "SystemError": FaultKind.TRANSIENT,
        "HostPowerOpFailed": FaultKind.TRANSIENT,
        "InsufficientResourcesFault": FaultKind.TRANSIENT,
        # trying again will not help
        "InvalidLogin": FaultKind.PERMANENT,
        "NoPermission": FaultKind.PERMANENT,
        "InvalidArgument": FaultKind.PERMANENT,
        "InvalidRequest": FaultKind.PERMANENT,
        "MethodNotFound": FaultKind.PERMANENT,
        "NotSupported": FaultKind.PERMANENT,
        "NotImplemented": FaultKind.PERMANENT,
        "InvalidDatastore": FaultKind.PERMANENT,
        "NoDiskSpace": FaultKind.PERMANENT,
        "FileFault": FaultKind.PERMANENT,
        "VmConfigFault": FaultKind.PERMANENT,
        "InvalidVmConfig": FaultKind.PERMANENT,
        "CustomizationFault": FaultKind.PERMANENT,
        "NicSettingMismatch": FaultKind.PERMANENT,
        "LicenseRestricted": FaultKind.PERMANENT,
        "MigrationFault": FaultKind.PERMANENT,
    }
)
"""vim fault name -> what it means for a caller. Base classes are looked up too."""

_ERRORS: Mapping[FaultKind, type[VMFailoverError]] = MappingProxyType(
    {
        FaultKind.TRANSIENT: TransientBackendError,
        FaultKind.PERMANENT: PermanentBackendError,
        FaultKind.NOT_FOUND: NotFoundError,
        FaultKind.CONFLICT: ConflictError,
        FaultKind.SESSION: TransientBackendError,
    }
)

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    socket.timeout,
    http.client.HTTPException,
    OSError,
)
"""Failures to reach the vCenter at all: transient (it may come back)."""


def _lineage(fault: BaseException) -> list[str]:
    names = []
    for cls in type(fault).__mro__:
        name = getattr(cls, "_wsdlName", None) or cls.__name__
        if name not in names:
            names.append(name)
    return names


def fault_name(fault: BaseException) -> str:
    """The vim name of a fault (``InvalidPowerState``), or the Python class name."""
    return _lineage(fault)[0]


def fault_kind(fault: BaseException) -> FaultKind:
    """What a vim fault means, by the table; faults in no family there are permanent."""
    for name in _lineage(fault):
        kind = FAULT_KINDS.get(name)
        if kind is not None:
            return kind
    return FaultKind.PERMANENT


def _fault_message(fault: BaseException) -> str:
    text = getattr(fault, "msg", None) or ""
    if not text:
        faults = getattr(fault, "faultMessage", None) or ()
        text = "; ".join(str(getattr(m, "message", "")) for m in faults if m)
    return str(text).strip()


def translate_fault(fault: BaseException, what: str) -> VMFailoverError:
    """Our error for a vim fault raised while doing ``what`` (which names the item)."""
    if isinstance(fault, VMFailoverError):
        return fault
    if isinstance(fault, ssl.SSLCertVerificationError) or _is_pin_mismatch(fault):
        return PermanentBackendError(
            f"{what}: TLS failed, the server's certificate is not trusted: {fault} (give "
            "ca_bundle= or a pinned thumbprint=, or insecure=True to turn verification off)"
        )
    kind = fault_kind(fault) if _is_vim_fault(fault) else None
    if kind is None:
        if isinstance(fault, TRANSPORT_ERRORS):
            return TransientBackendError(
                f"{what}: the vCenter could not be reached ({type(fault).__name__}: {fault})"
            )
        return PermanentBackendError(f"{what}: {type(fault).__name__}: {fault}")
    message = _fault_message(fault)
    detail = f"{fault_name(fault)}" + (f": {message}" if message else "")
    return _ERRORS[kind](f"{what}: {detail}")


def _is_pin_mismatch(fault: BaseException) -> bool:
    return type(fault).__name__ == "CertificateMismatchError"


def _is_vim_fault(fault: BaseException) -> bool:
    return any(getattr(cls, "_wsdlName", None) == "MethodFault" for cls in type(fault).__mro__)
