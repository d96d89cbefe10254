"""The journal's own record format: our value types as JSON, and back, with nothing else.

A journal outlives the process that wrote it, so what it stores must be read back exactly by a
later process: the compiled plan a run executes (VMs, replicas, recovery points, NIC changes,
expected addresses, the start order with its probes and limits, the steps), each backend call's
arguments and result, each VM's progress and the run's report. This module writes those as plain
JSON with small tags (``{"$": "VM", ...}`` for an attrs class of ours, ``{"$dt": ...}`` for a
moment, ``{"$enum": ...}``) and reads them back into the same frozen objects, through their own
constructors, so every validator runs again on the way in.

Only the classes registered here are read or written: a journal cannot name an arbitrary class
to construct, and credentials (:class:`~vmfailover.model.Credentials`) are not among them, so no
secret can be written by accident. A callable (a Python step, a callable probe, an approver)
cannot be stored: it is written as a :class:`Callable` marker naming it, and a run that holds one
is resumed only with its plan given again.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from vmfailover.engine.aftercare_results import (
    CommitResult,
    Deadline,
    DeadlineAction,
    FailbackResult,
    FailbackVM,
    UndoResult,
)
from vmfailover.engine.results import (
    CleanupResult,
    Outcome,
    RunReport,
    RunResult,
    StepRecord,
    VMResult,
)
from vmfailover.errors import Finding, Severity, ValidationError
from vmfailover.model import (
    VM,
    ConnectionState,
    Consistency,
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
from vmfailover.plan import Approval, NicChange, PowerOffSource, Step, StepFailure, VMRecovery, When
from vmfailover.policy.cluster import RestartPriority
from vmfailover.policy.placement import HostLoad, PlacedVM, Placement, UnplacedReason, UnplacedVM
from vmfailover.policy.probes import (
    CallableProbe,
    HTTPStatus,
    IPAssigned,
    PoweredOn,
    TCPPort,
    ToolsHeartbeat,
)
from vmfailover.policy.sequencer import FailurePolicy, GroupMode, StartEntry, StartOrder

__all__ = [
    "OrderRecord",
    "StoredCallable",
    "build_order",
    "decode",
    "dumps",
    "encode",
    "holds_callable",
    "loads",
]

_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        VM,
        Nic,
        IPConfig,
        Site,
        Host,
        Datastore,
        Network,
        Inventory,
        Replica,
        RecoveryPoint,
        Finding,
        StartEntry,
        PoweredOn,
        ToolsHeartbeat,
        IPAssigned,
        TCPPort,
        HTTPStatus,
        NicChange,
        VMRecovery,
        Step,
        Approval,
        StepRecord,
        VMResult,
        RunReport,
        CleanupResult,
        CommitResult,
        UndoResult,
        FailbackVM,
        FailbackResult,
        Deadline,
        Placement,
        PlacedVM,
        UnplacedVM,
        HostLoad,
    )
}
_ENUMS: dict[str, type[enum.Enum]] = {
    cls.__name__: cls
    for cls in (
        PowerState,
        ConnectionState,
        GuestOS,
        ReplicaState,
        Consistency,
        FailoverKind,
        PowerOffSource,
        FailurePolicy,
        GroupMode,
        Severity,
        When,
        StepFailure,
        Outcome,
        RunResult,
        DeadlineAction,
        RestartPriority,
        UnplacedReason,
    )
}


@attrs.frozen
class StoredCallable:
    """Where a record held a Python callable, which no journal can store: its name only.

    It stands in for the callable (so the step or probe holding it can be rebuilt) but refuses
    to be called: the run needs its plan given again.
    """

    name: str

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise ValidationError.of(
            f"callable {self.name}",
            "was not stored in the journal",
            "resume with the plan given again: runner.resume(run_id, plan=plan)",
        )


def _callable_name(value: object) -> str:
    module = getattr(value, "__module__", None) or "?"
    return f"{module}.{getattr(value, '__qualname__', None) or type(value).__qualname__}"


def encode(value: object) -> Any:
    """``value`` as JSON-ready data (dicts, lists, strings, numbers, booleans, None).

    Fields of our classes that hold their default are left out (the constructor gives them
    back). Raises :class:`~vmfailover.errors.ValidationError` naming the type of anything this
    format does not hold (never writes it silently).
    """
    kind = type(value)
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        encoder = _encoder_for(kind, value)
    return encoder(value)


def _same(value: Any) -> Any:
    return value


def _float(value: float) -> Any:
    if not math.isfinite(value):
        raise ValidationError.of("journal record", f"{value!r} is not a finite number")
    return value


def _sequence(value: Any) -> Any:
    return [encode(item) for item in value]


def _set(value: Any) -> Any:
    items = [encode(item) for item in value]
    if all(type(item) is str for item in items):
        return {"$set": sorted(items)}
    return {"$set": sorted(items, key=lambda item: json.dumps(item, sort_keys=True))}


def _mapping(value: Any) -> Any:
    return {"$map": [[encode(k), encode(v)] for k, v in value.items()]}


def _order_data(value: StartOrder) -> Any:
    return {
        "$order": {
            "max_parallel": value.max_parallel,
            "groups": encode(value.groups),
            "limits": encode(value.limits),
            "entries": [encode(entry) for entry in value],
        }
    }


_NO_DEFAULT = object()


def _attrs_encoder(cls: type) -> Callable[[Any], Any]:
    """An encoder for one of our attrs classes: its init fields that differ from the default."""
    fields = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        default = field.default
        if default is attrs.NOTHING or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = _NO_DEFAULT
        fields.append((field.alias, field.name, default))
    name = cls.__name__

    def encode_instance(value: Any) -> Any:
        data: dict[str, Any] = {"$": name}
        for alias, attribute, default in fields:
            item = getattr(value, attribute)
            if default is not _NO_DEFAULT and type(item) is type(default) and item == default:
                continue
            data[alias] = encode(item)
        return data

    return encode_instance


def _enum_encoder(cls: type[enum.Enum]) -> Callable[[Any], Any]:
    name = cls.__name__
    return lambda value: {"$enum": name, "v": value.value}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    str: _same,
    int: _same,
    bool: _same,
    type(None): _same,
    float: _float,
    tuple: _sequence,
    list: _sequence,
    frozenset: _set,
    set: _set,
    dict: _mapping,
    datetime: lambda value: {"$dt": value.isoformat()},
    ipaddress.IPv4Interface: lambda value: {"$if": str(value)},
    ipaddress.IPv6Interface: lambda value: {"$if": str(value)},
    ipaddress.IPv4Address: lambda value: {"$ip": str(value)},
    ipaddress.IPv6Address: lambda value: {"$ip": str(value)},
    StartOrder: _order_data,
    StoredCallable: lambda value: {"$callable": value.name},
    CallableProbe: lambda value: {"$callable": _callable_name(value.fn)},
}
_ENCODERS.update({cls: _attrs_encoder(cls) for cls in _CLASSES.values()})
# The most frequent record, a step of a VM's recovery, as a plain list (the report holds
# several per VM): name, start, end, error.
_ENCODERS[StepRecord] = lambda value: {
    "$step": [value.step, value.started_at.isoformat(), value.finished_at.isoformat(), value.error]
}
_ENCODERS.update({cls: _enum_encoder(cls) for cls in _ENUMS.values()})


def _encoder_for(kind: type, value: object) -> Callable[[Any], Any]:
    """The encoder for a type not in the table: mappings, and callables (stored by name)."""
    if isinstance(value, Mapping):
        return _mapping
    if isinstance(value, enum.Enum):
        raise ValidationError.of("journal record", f"cannot store enum {kind.__name__}")
    if attrs.has(kind):
        raise ValidationError.of("journal record", f"cannot store a {kind.__name__}")
    if callable(value):
        return lambda item: {"$callable": _callable_name(item)}
    raise ValidationError.of("journal record", f"cannot store a {kind.__name__}")


def decode(data: Any) -> Any:
    """The value :func:`encode` wrote; our ValidationError for anything it would not write."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return tuple(decode(item) for item in data)
    if not isinstance(data, dict):
        raise ValidationError.of("journal record", f"unexpected {type(data).__name__}")
    try:
        return _decode_tagged(data)
    except ValidationError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValidationError.of("journal record", f"cannot be read: {error}") from None


def _decode_tagged(data: dict[str, Any]) -> Any:
    if "$" in data:
        cls = _CLASSES.get(data["$"])
        if cls is None:
            raise ValidationError.of("journal record", f"names an unknown class {data['$']!r}")
        kwargs = {key: decode(value) for key, value in data.items() if key != "$"}
        return cls(**kwargs)
    if "$enum" in data:
        kind = _ENUMS.get(data["$enum"])
        if kind is None:
            raise ValidationError.of("journal record", f"names an unknown enum {data['$enum']!r}")
        return kind(data["v"])
    if "$dt" in data:
        return datetime.fromisoformat(data["$dt"])
    if "$if" in data:
        return ipaddress.ip_interface(data["$if"])
    if "$ip" in data:
        return ipaddress.ip_address(data["$ip"])
    if "$set" in data:
        return frozenset(decode(item) for item in data["$set"])
    if "$map" in data:
        return {decode(k): decode(v) for k, v in data["$map"]}
    if "$step" in data:
        step, started, finished, error = data["$step"]
        return StepRecord(
            step, datetime.fromisoformat(started), datetime.fromisoformat(finished), error
        )
    if "$callable" in data:
        return StoredCallable(str(data["$callable"]))
    if "$order" in data:
        return _order(data["$order"])
    raise ValidationError.of("journal record", f"an object with keys {sorted(data)!r}")


@attrs.frozen
class OrderRecord:
    """A start order as the journal holds it: its settings and entries, probes possibly stored
    by name only (:class:`StoredCallable`); :func:`build_order` makes the order again."""

    max_parallel: int | None
    groups: GroupMode
    limits: Mapping[str, int]
    entries: tuple[StartEntry, ...]


def _order(data: dict[str, Any]) -> OrderRecord:
    return OrderRecord(
        max_parallel=data["max_parallel"],
        groups=decode(data["groups"]),
        limits=decode(data["limits"]),
        entries=decode(data["entries"]),
    )


def build_order(record: OrderRecord, probe: Callable[[StartEntry], object]) -> StartOrder:
    """The start order of ``record``; ``probe(entry)`` gives each entry's probe (so a probe
    stored by name can be taken from the plan given again)."""
    order = StartOrder(max_parallel=record.max_parallel, groups=record.groups)
    for resource, capacity in record.limits.items():
        order.limit(resource, capacity)
    for entry in record.entries:
        order.add(
            entry.name,
            after=entry.after,
            group=entry.group,
            probe=probe(entry),  # type: ignore[arg-type]
            timeout=entry.timeout,
            on_failure=entry.on_failure,
            resources=entry.resources,
        )
    return order


def dumps(value: object) -> str:
    """``value`` as compact JSON text."""
    return json.dumps(encode(value), separators=(",", ":"), allow_nan=False)


def loads(text: str) -> Any:
    """What :func:`dumps` wrote."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as error:
        raise ValidationError.of("journal record", f"is not JSON: {error}") from None
    return decode(data)


def holds_callable(value: object) -> bool:
    """Whether ``value`` (an attrs object of ours) holds a callable stored by name only."""
    if isinstance(value, StoredCallable):
        return True
    if isinstance(value, tuple):
        return any(holds_callable(item) for item in value)
    kind = type(value)
    if attrs.has(kind):
        return any(holds_callable(getattr(value, f.name)) for f in attrs.fields(kind))
    return False
