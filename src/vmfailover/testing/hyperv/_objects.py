"""The seam between the simulated host's layers, and between its tests and its transports.

Three layers, each ignorant of the one above (see the package docstring):

* the WS-Management server and the PSRP session (``wsman``/``session`` modules) turn what a
  pypsrp client sends into calls of a :class:`CommandHost`, and turn what it answers into PSRP
  objects and error records;
* the Hyper-V model and its cmdlets (``model``/``cmdlets`` modules) implement :class:`CommandHost`
  in plain Python, with no knowledge of PSRP;
* tests talk to a :class:`Shell`: the same test body runs in process against the command host
  (fast, for cmdlet semantics) and through pypsrp over Basic/http, Basic/https and NTLM with
  message encryption (for the wire).

The types here are plain data so both sides can be written and tested independently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

__all__ = [
    "Call",
    "CmdletError",
    "CommandHost",
    "CommandResult",
    "EnumValue",
    "InputObject",
    "OutputObject",
    "Shell",
    "ShellResult",
    "cmd",
]


@attrs.frozen
class EnumValue:
    """A .NET enum value: it travels as an enum (type name, member name, integer value)."""

    type_name: str
    name: str
    value: int

    def __str__(self) -> str:
        return self.name


@attrs.frozen
class OutputObject:
    """An object a cmdlet writes to its output (a ``VirtualMachine``, a ``VMSnapshot``, ...).

    ``type_names`` is most derived first, as PowerShell lists them
    (``Microsoft.HyperV.PowerShell.VirtualMachine``, ..., ``System.Object``). Property values are
    str, int, bool, float, None, datetime (aware), uuid.UUID, :class:`EnumValue`, nested
    :class:`OutputObject`, or lists of these.
    """

    type_names: tuple[str, ...]
    properties: Mapping[str, Any]
    to_string: str


@attrs.frozen
class InputObject:
    """An object the client sent as a parameter value or as pipeline input, deserialized.

    Typically an object it received earlier (``Get-VMSnapshot``'s output passed back to
    ``Start-VMFailover -VMRecoverySnapshot``); ``type_names`` carry the ``Deserialized.`` prefix
    exactly as sent.
    """

    type_names: tuple[str, ...]
    properties: Mapping[str, Any]
    to_string: str = ""


class CmdletError(Exception):
    """An error record a cmdlet writes.

    ``fully_qualified_error_id`` is Hyper-V's ``Id,Microsoft.HyperV.PowerShell.Commands.Class``
    form (or PowerShell's own, such as ``NamedParameterNotFound,Microsoft.HyperV...``);
    ``category`` is an ``ErrorCategory`` member name (``InvalidOperation``, ``ObjectNotFound``,
    ``InvalidArgument``, ...). ``terminating`` errors stop the pipeline; the others are written to
    the error stream and the command goes on.
    """

    def __init__(
        self,
        fully_qualified_error_id: str,
        message: str,
        *,
        category: str = "NotSpecified",
        target: object = None,
        exception_type: str = "Microsoft.HyperV.PowerShell.VirtualizationException",
        terminating: bool = True,
    ) -> None:
        super().__init__(message)
        self.fully_qualified_error_id = fully_qualified_error_id
        self.message = message
        self.category = category
        self.target = target
        self.exception_type = exception_type
        self.terminating = terminating

    def __repr__(self) -> str:
        return f"CmdletError({self.fully_qualified_error_id!r}, {self.message!r})"


@attrs.frozen
class CommandResult:
    """What one command of a pipeline produced: output objects and non-terminating errors."""

    output: tuple[Any, ...] = ()
    errors: tuple[CmdletError, ...] = ()


class CommandHost(Protocol):
    """Runs one command of a pipeline, by name, with its arguments as sent.

    ``arguments`` keeps the wire order: ``(name, value)`` for a named parameter, ``(None, value)``
    for a positional argument. A switch given without a value (``add_parameter("Force")``) arrives
    as ``(name, None)``; ``-Confirm:$false`` arrives as ``("Confirm", False)``. Values are plain
    Python (str, int, bool, float, None, datetime, uuid.UUID, lists) or :class:`InputObject`.
    ``input_objects`` is the previous command's output in the same pipeline (empty for the first).

    Raises :class:`CmdletError` for a terminating error (unknown command, parameter binding
    failures, invalid state). Must be safe to call from several threads at once.

    A host may also offer ``validate(command, arguments)``: binding only, raising the binding
    errors. Shells call it instead of ``invoke`` for a downstream command that receives no input
    (``Get-VM nomatch* | Stop-VM`` runs Stop-VM zero times, but still reports a bad parameter).
    """

    def invoke(
        self,
        command: str,
        arguments: Sequence[tuple[str | None, Any]],
        input_objects: Sequence[Any] = (),
    ) -> CommandResult: ...


@attrs.frozen
class Call:
    """One command of a pipeline as a test writes it: see :func:`cmd`."""

    command: str
    arguments: tuple[tuple[str | None, Any], ...] = ()


def cmd(command: str, *positional: Any, **named: Any) -> Call:
    """``cmd("Start-VMFailover", "web01", Prepare=None, Confirm=False)``.

    Positional values become ``(None, value)``; ``Name=None`` is a switch given without value.
    Use :class:`Call` directly for parameter names that are not Python identifiers.
    """
    arguments: list[tuple[str | None, Any]] = [(None, value) for value in positional]
    arguments.extend(named.items())
    return Call(command, tuple(arguments))


@attrs.frozen
class ShellResult:
    """What a pipeline produced, as a client sees it.

    ``output`` holds :class:`OutputObject` (type names as received, so a deserialized object's names
    start with ``Deserialized.``) or primitives; ``errors`` holds :class:`CmdletError` rebuilt from
    the error records received. ``had_errors`` is PowerShell's flag.
    """

    output: tuple[Any, ...]
    errors: tuple[CmdletError, ...]

    @property
    def had_errors(self) -> bool:
        return bool(self.errors)


class Shell(Protocol):
    """Where a test sends pipelines: in process, or through pypsrp over the wire.

    ``run(cmd("Get-VM"), cmd("Stop-VM", Force=None))`` is one pipeline of two commands. A
    terminating error does not raise: it ends up in ``errors``, as it would in a PowerShell host.
    """

    def run(self, *pipeline: Call) -> ShellResult: ...
