"""Hyper-V error records, and which of our errors each one is.

Hyper-V's ``FullyQualifiedErrorId`` reads ``<ErrorId>,Microsoft.HyperV.PowerShell.Commands.<Class>``
(module 1.x names the class with a ``Command`` suffix; a framework that re-throws may append a
third part). :data:`ERROR_TABLE` maps the error id, for one cmdlet class or for any (``"*"``), to
the error we raise; :func:`classify` looks the specific entry up first. The messages are
localized on the host, so nothing here reads them.

A non-terminating error record fails the call just as a terminating one does: Hyper-V writes a
per-VM refusal (not found, wrong state) as non-terminating, and a call that did not do what was
asked must not look like it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
    VMFailoverError,
)

__all__ = ["ERROR_TABLE", "ErrorRecord", "classify", "to_error"]

_PREFIX = "Microsoft.HyperV.PowerShell.Commands."

ERROR_TABLE: Mapping[tuple[str, str], type[VMFailoverError]] = {
    # Hyper-V's own ids (reference, section 5.3), any cmdlet
    ("ObjectNotFound", "*"): NotFoundError,
    ("InvalidState", "*"): ConflictError,
    ("InvalidParameter", "*"): PermanentBackendError,
    ("OperationFailed", "*"): PermanentBackendError,
    ("InvalidOperation", "*"): PermanentBackendError,
    ("AccessDenied", "*"): PermanentBackendError,
    ("NotSupported", "*"): PermanentBackendError,
    ("OperationTimeout", "*"): TransientBackendError,
    ("ObjectInUse", "*"): TransientBackendError,
    ("StatusIncorrectType", "*"): PermanentBackendError,
    ("StatusUnavailable", "*"): TransientBackendError,
    ("OutOfMemory", "*"): PermanentBackendError,
    ("RebootRequired", "*"): PermanentBackendError,
    ("FileNotFound", "*"): PermanentBackendError,
    ("DeviceNotFound", "*"): PermanentBackendError,
    ("Unspecified", "*"): PermanentBackendError,
    # where a cmdlet uses an id for "no such thing" or "not in that state"
    ("InvalidParameter", "GetVM"): NotFoundError,  # a name that matches no VM
    ("InvalidParameter", "GetVMSwitch"): NotFoundError,  # a switch name that matches none
    ("InvalidParameter", "ConnectVMNetworkAdapter"): NotFoundError,  # no such switch
    ("OperationFailed", "GetVMReplication"): NotFoundError,  # the VM does not replicate
    ("OperationFailed", "EnableVMReplication"): ConflictError,  # already enabled, wrong mode
    ("OperationFailed", "StartVMFailover"): ConflictError,  # not applicable in this mode
    ("OperationFailed", "StopVMFailover"): ConflictError,
    ("OperationFailed", "CompleteVMFailover"): ConflictError,
    ("OperationFailed", "SetVMReplication"): ConflictError,  # -Reverse on a primary
    ("InvalidParameter", "StartVMFailover"): ConflictError,  # -Prepare vs primary/replica
    ("InvalidOperation", "StopVM"): ConflictError,  # shutdown needs a prompt: no guest service
    # PowerShell's own: the host is not what we talk to (module missing, binding changed)
    ("CommandNotFoundException", "*"): PermanentBackendError,
    ("NamedParameterNotFound", "*"): PermanentBackendError,
    ("MissingMandatoryParameter", "*"): PermanentBackendError,
    ("AmbiguousParameterSet", "*"): PermanentBackendError,
    ("ParameterArgumentValidationError", "*"): PermanentBackendError,
    ("ParameterArgumentTransformationError", "*"): PermanentBackendError,
    ("InputObjectNotBound", "*"): PermanentBackendError,
    ("HostFunctionNotImplemented", "*"): PermanentBackendError,  # a prompt in a remote session
    ("ScriptsNotAllowed", "*"): PermanentBackendError,
}


@attrs.frozen
class ErrorRecord:
    """The parts of a PowerShell error record we act on."""

    fully_qualified_error_id: str
    message: str
    category: int = 0
    target: str = ""

    @property
    def error_id(self) -> str:
        return self.fully_qualified_error_id.split(",", 1)[0].strip()

    @property
    def command_class(self) -> str:
        """The cmdlet class (``StartVM``), whatever module version or wrapper wrote it."""
        parts = self.fully_qualified_error_id.split(",")
        if len(parts) < 2:
            return ""
        name = parts[1].strip().removeprefix(_PREFIX)
        return name.removesuffix("Command") if name.endswith("Command") else name

    def __str__(self) -> str:
        return f"{self.message} [{self.fully_qualified_error_id}]"

    @classmethod
    def from_pypsrp(cls, record: Any) -> ErrorRecord:
        """From pypsrp's ErrorRecord (the exception's message preferred, as PowerShell shows)."""
        message = None
        exception = getattr(record, "exception", None)
        if exception is not None:
            for source in ("adapted_properties", "extended_properties"):
                found = getattr(exception, source, {}).get("Message")
                if found:
                    message = str(found)
                    break
        if not message:
            message = str(getattr(record, "message", "") or "")
        target = getattr(record, "target_name", None) or ""
        return cls(
            str(getattr(record, "fq_error", "") or ""),
            message,
            int(getattr(record, "category", 0) or 0),
            str(target),
        )


def classify(record: ErrorRecord) -> type[VMFailoverError]:
    """Our error type for a record: the cmdlet's own entry, else the id's, else permanent."""
    specific = ERROR_TABLE.get((record.error_id, record.command_class))
    if specific is not None:
        return specific
    return ERROR_TABLE.get((record.error_id, "*"), PermanentBackendError)


def to_error(record: ErrorRecord, host: str, doing: str) -> VMFailoverError:
    """The error to raise for ``record``, saying which host and what we were doing."""
    return classify(record)(f"{host}: {doing}: {record}")
