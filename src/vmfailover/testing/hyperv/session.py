"""The PSRP layer: one runspace pool per WinRM shell, its pipelines run against a CommandHost.

psrpcore's ``ServerRunspacePool``/``ServerPipeline`` turn the fragments a client sends into
events; this module turns ``CreatePipeline`` into calls of :meth:`CommandHost.invoke`, one per
command (the previous command's output is the next one's ``input_objects``; statements run in
order), and turns what the command host answers into PSRP messages: output objects as PSObjects
with the :class:`OutputObject`'s type names and adapted properties, :class:`EnumValue` as a real
.NET enum (type names ending in ``System.Enum``, ``System.ValueType``, ``System.Object``;
``ToString`` the member name; value the integer), :class:`CmdletError` as an ``ErrorRecord``
(fully qualified error id, category, target object, exception type and message). A terminating
error ends the pipeline in the ``Failed`` state carrying the record; a non-terminating one is
written to the error stream and the pipeline goes on.

Scripts are never executed: a command sent with ``add_script`` (``IsScript``) fails the pipeline
with the error PowerShell gives in a no-language runspace, ``FullyQualifiedErrorId``
``ScriptsNotAllowed``, category ``ParserError``.

Knows nothing of WS-Management: the server layer hands it the raw PSRP bytes of Create, Command
and Send, and asks it for bytes to Receive. It is thread-safe; each pipeline runs on its own
worker thread so Receive can long-poll.
"""

from __future__ import annotations

import datetime
import enum
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
from psrpcore import (
    CreatePipelineEvent,
    EndOfPipelineInputEvent,
    GetAvailableRunspacesEvent,
    GetCommandMetadataEvent,
    PipelineInputEvent,
    PSRPPayload,
    ResetRunspaceStateEvent,
    ServerPipeline,
    ServerRunspacePool,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
    StreamType,
)
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSDouble,
    PSEnumBase,
    PSInvocationState,
    PSNoteProperty,
    PSObject,
    PSType,
)
from psrpcore.types._enum import PSEnumMeta

from ._objects import Call, CmdletError, CommandHost, EnumValue, InputObject, OutputObject
from ._soap import WSManFault
from .faults import FaultHooks, WinRMFault

__all__ = ["SCRIPTS_NOT_ALLOWED", "CallLog", "ReceiveResult", "RunspaceSession"]

log = logging.getLogger("vmfailover.testing.hyperv")

_DESERIALIZED = "Deserialized."

#: The error a script (``add_script``) gets instead of being run.
SCRIPTS_NOT_ALLOWED = CmdletError(
    "ScriptsNotAllowed",
    "The syntax is not supported by this runspace. This can occur if the runspace is in "
    "no-language mode.",
    category="ParserError",
    exception_type="System.Management.Automation.ParseException",
)


class CallLog:
    """Every command the host was asked to run, as :class:`Call` (name and arguments as sent).

    Thread-safe. Commands refused before dispatch (scripts) are not in it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def snapshot(self) -> tuple[Call, ...]:
        with self._lock:
            return tuple(self._calls)

    def names(self) -> list[str]:
        """The command names, in the order they were dispatched."""
        return [call.command for call in self.snapshot()]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def __iter__(self) -> Iterator[Call]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)


@attrs.frozen
class ReceiveResult:
    """Bytes for one Receive response, and whether the command is done once they are sent."""

    data: bytes
    done: bool


# -- values: CommandHost <-> psrpcore ------------------------------------------------------------

_enum_cache: dict[tuple[str, str, int], Any] = {}
_enum_lock = threading.Lock()


def _enum_member(value: EnumValue) -> Any:
    """A psrpcore enum member serializing as ``value`` does on Windows.

    One tiny enum class per (type, member, value), never registered for rehydration, so the
    process-global psrpcore type registry is left alone.
    """
    key = (value.type_name, value.name, value.value)
    with _enum_lock:
        member = _enum_cache.get(key)
        if member is None:
            namespace: Any = PSEnumMeta.__prepare__("SimulatedEnum", (PSEnumBase,))
            namespace[value.name] = value.value
            cls: Any = PSEnumMeta("SimulatedEnum", (PSEnumBase,), namespace)
            cls = PSType([value.type_name], rehydrate=False)(cls)
            member = cls[value.name]
            _enum_cache[key] = member
        return member


def _ps_object(type_names: Sequence[str], properties: Mapping[str, Any], to_string: str) -> Any:
    obj = PSObject()
    obj.PSObject.type_names = list(type_names)
    obj.PSObject.to_string = to_string
    for name, value in properties.items():
        obj.PSObject.adapted_properties.append(PSNoteProperty(str(name), to_psrp(value)))
    return obj


def to_psrp(value: Any) -> Any:
    """A value of the CommandHost seam as the psrpcore object that serializes like Windows."""
    if isinstance(value, OutputObject):
        return _ps_object(value.type_names, value.properties, value.to_string)
    if isinstance(value, InputObject):
        names = [
            n[len(_DESERIALIZED) :] if n.startswith(_DESERIALIZED) else n for n in value.type_names
        ]
        return _ps_object(names, value.properties, value.to_string)
    if isinstance(value, EnumValue):
        return _enum_member(value)
    if isinstance(value, enum.Enum):
        return str(value.name)
    if isinstance(value, float):
        return PSDouble(value)
    if isinstance(value, list | tuple):
        return [to_psrp(item) for item in value]
    if isinstance(value, Mapping):
        return {to_psrp(k): to_psrp(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | bool | datetime.datetime | uuid.UUID | bytes):
        return value
    return str(value)


def _strip_prefix(name: str) -> str:
    return name[len(_DESERIALIZED) :] if name.startswith(_DESERIALIZED) else name


def from_psrp(value: Any) -> Any:
    """A deserialized psrpcore value as plain Python / :class:`InputObject` / :class:`EnumValue`."""
    ps = getattr(value, "PSObject", None)
    type_names = list(ps.type_names) if ps is not None else []
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, enum.Enum):
        return EnumValue(
            type_names[0] if type_names else type(value).__name__, value.name, int(value.value)
        )
    if isinstance(value, int):
        if ps is not None and any(_strip_prefix(n) == "System.Enum" for n in type_names):
            return EnumValue(_strip_prefix(type_names[0]), str(ps.to_string), int(value))
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime.datetime):
        return datetime.datetime.fromtimestamp(value.timestamp(), tz=value.tzinfo or datetime.UTC)
    if isinstance(value, uuid.UUID):
        return uuid.UUID(str(value))
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, list | tuple):
        return [from_psrp(item) for item in value]
    if isinstance(value, dict):
        return {from_psrp(k): from_psrp(v) for k, v in value.items()}
    if ps is not None:
        properties: dict[str, Any] = {}
        for prop in itertools.chain(ps.adapted_properties, ps.extended_properties):
            properties[prop.name] = from_psrp(prop.get_value(value))
        # psrpcore prefixes every type name; a client that sent them prefixed already (as PowerShell
        # does for an object it received) must not see the prefix doubled.
        names = tuple(
            n[len(_DESERIALIZED) :] if n.startswith(_DESERIALIZED * 2) else n for n in type_names
        )
        return InputObject(names, properties, str(ps.to_string or ""))
    return value


_DOTNET_NAMES: dict[type, str] = {
    str: "String",
    int: "Int32",
    bool: "Boolean",
    float: "Double",
    uuid.UUID: "Guid",
    datetime.datetime: "DateTime",
    list: "Object[]",
    tuple: "Object[]",
}


def _error_record(error: CmdletError, activity: str) -> Any:
    exception = NETException(Message=error.message, HResult=-2146233087)
    exception_names = [error.exception_type]
    if error.exception_type != "System.Exception":
        exception_names.append("System.Exception")
    exception.PSObject.type_names = [*exception_names, "System.Object"]
    try:
        category = ErrorCategory[error.category]
    except KeyError:
        category = ErrorCategory.NotSpecified
    target = error.target
    target_name = "" if target is None else str(getattr(target, "to_string", target))
    if isinstance(target, OutputObject | InputObject) and target.type_names:
        target_type = _strip_prefix(target.type_names[0]).rsplit(".", 1)[-1]
    else:
        target_type = _DOTNET_NAMES.get(type(target), type(target).__name__)
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=ErrorCategoryInfo(
            Category=category,
            Activity=activity,
            Reason=error.exception_type.rsplit(".", 1)[-1],
            TargetName=target_name,
            TargetType=target_type if target is not None else "",
        ),
        TargetObject=to_psrp(target),
        FullyQualifiedErrorId=error.fully_qualified_error_id,
    )


# -- psrpcore classes ----------------------------------------------------------------------------


def _accept_ci_spelling(event: Any) -> None:
    # pypsrp writes the call id as "CI"; psrpcore reads "ci". PowerShell ignores the case.
    ps_object = event._ps_object
    if getattr(ps_object, "ci", None) is None and getattr(ps_object, "CI", None) is not None:
        ps_object.ci = ps_object.CI


class _Pool(ServerRunspacePool):
    def _process_SetMaxRunspaces(self, event: Any) -> None:
        _accept_ci_spelling(event)
        super()._process_SetMaxRunspaces(event)

    def _process_SetMinRunspaces(self, event: Any) -> None:
        _accept_ci_spelling(event)
        super()._process_SetMinRunspaces(event)

    def _process_GetAvailableRunspaces(self, event: Any) -> None:
        _accept_ci_spelling(event)
        super()._process_GetAvailableRunspaces(event)

    def _process_ResetRunspaceState(self, event: Any) -> None:
        _accept_ci_spelling(event)
        super()._process_ResetRunspaceState(event)


class _Pipeline(ServerPipeline):
    def begin(self) -> None:
        # PowerShell does not announce Running to the client; it only reports the end state.
        self._change_state(PSInvocationState.Running, emit=False)

    def fail(self, record: Any) -> None:
        self._change_state(PSInvocationState.Failed, error=record)


class _Run:
    """One pipeline: its psrpcore object, its input and the worker's flags."""

    def __init__(self, command_id: str, pipeline: _Pipeline) -> None:
        self.command_id = command_id
        self.pipeline = pipeline
        self.inputs: list[Any] = []
        self.started = False
        self.finished = False
        self.drained = False
        self.stop = threading.Event()
        self.current = "Invoke"


def _pipeline_id(data: bytes) -> uuid.UUID | None:
    """The PID of the first PSRP message in ``data`` (fragment header 21 bytes, then message)."""
    if len(data) < 21 + 40:
        return None
    return uuid.UUID(bytes_le=bytes(data[21 + 24 : 21 + 40]))


class RunspaceSession:
    """A runspace pool on the simulated host (one WinRM shell)."""

    def __init__(
        self,
        command_host: CommandHost,
        *,
        faults: FaultHooks | None = None,
        calls: CallLog | None = None,
    ) -> None:
        self._host = command_host
        self._faults = faults or FaultHooks()
        self._calls = calls if calls is not None else CallLog()
        self._cond = threading.Condition()
        self._pool = _Pool()
        self._runs: dict[str, _Run] = {}
        self._closed = False

    # -- requests from the server layer -----------------------------------------------------
    def open(self, data: bytes) -> None:
        """Feed the ``creationXml`` fragments of Create (SessionCapability, InitRunspacePool)."""
        with self._cond:
            self._feed(data)

    def command(self, command_id: str | None, data: bytes) -> str:
        """Start a pipeline from the first fragments sent with Command; returns its CommandId."""
        pid = _pipeline_id(data)
        if pid is None:
            pid = uuid.UUID(command_id) if command_id else uuid.uuid4()
        key = str(pid).upper()
        with self._cond:
            if key in self._runs:
                raise WSManFault(
                    0x80070057, f"The command {key} already exists.", subcode="w:InvalidParameter"
                )
            run = _Run(key, _Pipeline(self._pool, pid))
            self._runs[key] = run
            try:
                self._feed(data)
            except BaseException:
                self._forget(run)
                raise
        return key

    def send(self, command_id: str | None, data: bytes) -> None:
        """Feed fragments sent with Send (pipeline input, the rest of a large CreatePipeline...)."""
        with self._cond:
            if command_id is not None:
                self._run(command_id)
            self._feed(data)

    def receive(
        self, command_id: str | None, max_bytes: int, timeout: float
    ) -> ReceiveResult | None:
        """Wait up to ``timeout`` s for data; ``None`` means nothing came (OperationTimeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            run = self._run(command_id) if command_id is not None else None
            pid = run.pipeline.pipeline_id if run is not None else None
            while True:
                data = self._take(pid, max_bytes)
                done = run is not None and run.finished and not self._pending(pid)
                if data or done or self._closed:
                    if done and run is not None and not run.drained:
                        run.drained = True
                        run.pipeline.close()
                    return ReceiveResult(data, done)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.5))

    def signal(self, command_id: str, code: str) -> None:
        """``Terminate`` forgets the command; a ctrl_c stops it first."""
        with self._cond:
            run = self._run(command_id)
            run.stop.set()
            if code.lower().endswith("terminate"):
                self._forget(run)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop every pipeline and refuse further work (Delete, or the server stopping)."""
        with self._cond:
            self._closed = True
            for run in self._runs.values():
                run.stop.set()
            self._runs.clear()
            self._cond.notify_all()

    @property
    def runspace_pool_id(self) -> uuid.UUID:
        return self._pool.runspace_pool_id

    # -- internals (called with the lock held) ------------------------------------------------
    def _run(self, command_id: str) -> _Run:
        run = self._runs.get(command_id.upper())
        if run is None:
            raise WSManFault(
                0x8033805B,
                "The Windows Remote Shell received a request to perform an operation on a command "
                "identifier that does not exist. Either the command has completed execution or the "
                "client specified an invalid command identifier.",
                subcode="w:InvalidSelectors",
                sender=True,
            )
        return run

    def _forget(self, run: _Run) -> None:
        self._runs.pop(run.command_id, None)
        self._pool.pipeline_table.pop(run.pipeline.pipeline_id, None)
        buffer = self._pool._send_buffer
        self._pool._send_buffer = [m for m in buffer if m.pipeline_id != run.pipeline.pipeline_id]

    def _pending(self, pid: uuid.UUID | None) -> bool:
        return any(m.pipeline_id == pid for m in self._pool._send_buffer)

    def _take(self, pid: uuid.UUID | None, max_bytes: int) -> bytes:
        # psrpcore packs from one shared buffer in order and stops at another pipeline's message;
        # hand it only this target's messages so concurrent pipelines never block each other.
        buffer = self._pool._send_buffer
        mine = [m for m in buffer if m.pipeline_id == pid]
        if not mine:
            return b""
        self._pool._send_buffer = mine
        try:
            payload = self._pool.data_to_send(max(22, max_bytes))
        finally:
            rest = self._pool._send_buffer
            self._pool._send_buffer = [m for m in buffer if m.pipeline_id != pid] + rest
        return bytes(payload.data) if payload is not None else b""

    def _feed(self, data: bytes) -> None:
        if self._closed:
            raise WSManFault(0x8033805B, "The shell was closed.", subcode="w:InvalidSelectors")
        self._pool.receive_data(PSRPPayload(data, StreamType.default, None))
        while True:
            event = self._pool.next_event()
            if event is None:
                break
            self._dispatch(event)
        self._cond.notify_all()

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, CreatePipelineEvent):
            run = self._run(str(event.pipeline_id))
            # psrpcore has parsed the pipeline into ``metadata`` already; parsing is not cheap.
            metadata = run.pipeline.metadata
            for command in getattr(metadata, "commands", None) or []:
                fault = self._faults.peek_winrm_failure(str(command.command_text))
                if fault is not None:
                    self._forget(run)
                    raise WSManFault(
                        fault.code, fault.reason, subcode=fault.subcode, sender=fault.sender
                    )
            if getattr(metadata, "no_input", True):
                self._start(run)
        elif isinstance(event, PipelineInputEvent):
            self._run(str(event.pipeline_id)).inputs.append(event.data)
        elif isinstance(event, EndOfPipelineInputEvent):
            self._start(self._run(str(event.pipeline_id)))
        elif isinstance(
            event, SetMaxRunspacesEvent | SetMinRunspacesEvent | ResetRunspaceStateEvent
        ):
            self._pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, GetAvailableRunspacesEvent):
            self._pool.runspace_availability_response(event.ci, int(self._pool.max_runspaces or 1))
        elif isinstance(event, GetCommandMetadataEvent):
            run = self._run(str(event.pipeline_id))
            run.pipeline.begin()
            run.pipeline.fail(
                _error_record(
                    CmdletError(
                        "CommandMetadataNotSupported",
                        "The simulated host does not answer Get-Command metadata requests.",
                        category="NotImplemented",
                        exception_type="System.NotSupportedException",
                    ),
                    "Get-Command",
                )
            )
            run.finished = True

    def _start(self, run: _Run) -> None:
        if run.started:
            return
        run.started = True
        run.pipeline.begin()
        threading.Thread(
            target=self._execute, args=(run,), name=f"psrp-pipeline-{run.command_id}", daemon=True
        ).start()

    # -- the worker ---------------------------------------------------------------------------
    def _write(self, run: _Run, action: Any, *args: Any) -> None:
        with self._cond:
            if run.command_id in self._runs and not self._closed:
                action(*args)
                self._cond.notify_all()

    def _execute(self, run: _Run) -> None:
        pipeline = run.pipeline
        try:
            self._run_statements(run)
        except CmdletError as error:
            self._write(run, pipeline.fail, _error_record(error, run.current))
        except Exception:  # a bug in the command host: report it, do not hang the client
            # The traceback goes to the log; the client learns only the id to look it up by.
            error_id = str(uuid.uuid4())
            log.exception("%s failed in the simulated host (error id %s)", run.current, error_id)
            failure = CmdletError(
                "SimulatorError",
                f"The simulated host failed running {run.current}; its log has the details "
                f"under error id {error_id}.",
                exception_type="System.Exception",
            )
            self._write(run, pipeline.fail, _error_record(failure, run.current))
        else:
            if run.stop.is_set():
                self._write(run, pipeline.stop)
            else:
                self._write(run, pipeline.complete)
        with self._cond:
            run.finished = True
            self._cond.notify_all()

    def _run_statements(self, run: _Run) -> None:
        commands: list[Any] = list(getattr(run.pipeline.metadata, "commands", None) or [])
        if any(command.is_script for command in commands):
            # Refused as a whole, before anything runs: no command of a pipeline carrying script
            # text is executed.
            run.current = "Invoke-Expression"
            raise SCRIPTS_NOT_ALLOWED
        statements: list[list[Any]] = [[]]
        for command in commands:
            statements[-1].append(command)
            if command.end_of_statement:
                statements.append([])
        first = True
        for statement in (s for s in statements if s):
            objects: list[Any] = [from_psrp(item) for item in run.inputs] if first else []
            first = False
            for index, command in enumerate(statement):
                if run.stop.is_set():
                    return
                objects = self._run_command(run, command, objects, downstream=index > 0)
            for item in objects:
                self._write(run, run.pipeline.write_output, to_psrp(item))

    def _run_command(
        self, run: _Run, command: Any, objects: list[Any], *, downstream: bool
    ) -> list[Any]:
        name = str(command.command_text)
        run.current = name
        arguments = tuple(
            (None if n is None else str(n), from_psrp(v)) for n, v in command.parameters
        )
        self._calls.record(Call(name, arguments))
        delay = self._faults.delay_for(name)
        if delay and run.stop.wait(delay):
            return []
        injected = self._faults.take_failure(name)
        if isinstance(injected, WinRMFault):
            injected = CmdletError(f"WinRMFault{injected.code:#x}", injected.reason)
        try:
            if injected is not None:
                raise injected
            if downstream and not objects:
                # PowerShell binds a downstream command's arguments, then runs it once per input
                # object: with none, only binding errors can surface.
                validate = getattr(self._host, "validate", None)
                if validate is not None:
                    validate(name, arguments)
                return []
            result = self._host.invoke(name, arguments, tuple(objects))
        except CmdletError as error:
            if error.terminating:
                raise
            self._write(run, self._write_error, run, error, name)
            return []
        for written in result.errors:
            self._write(run, self._write_error, run, written, name)
        return list(result.output)

    @staticmethod
    def _write_error(run: _Run, error: CmdletError, activity: str) -> None:
        record = _error_record(error, activity)
        run.pipeline.write_error(
            record.Exception,
            record.CategoryInfo,
            record.TargetObject,
            record.FullyQualifiedErrorId,
        )
