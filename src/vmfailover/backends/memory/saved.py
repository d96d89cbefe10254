"""A memory-backend world as a JSON document, and back: what lets a lab outlive its process.

Each command of the command line is a new process, so a lab that a test failover changed must be
written down and read back by the next command. The document holds the whole world: sites,
hosts, datastores, networks, every VM with its disk, boot and workload, replicas in whatever
state they are, recovery points with their disks, uncommitted failovers (what undo gives back),
the split brains the lab witnessed, the virtual clock, the random generator's state
and the counters that name new points and block versions. What a loaded world does next is what
the saved one would have done (a property test holds it to that).

Fault injection is not part of the world: a backend with faults armed is refused rather than
saved without them, and a loaded backend has none.

JSON, never pickle: a file a user points us at must never run code. A document that is not JSON,
not ours, newer than this version, or inconsistent (a replica of a VM that does not exist) is
refused with our :class:`~vmfailover.errors.ValidationError`, each finding naming the file and the
place in it (``vms[3].vm.nics[0].mac``). Disks are written as runs of consecutive blocks with one
content version, so a freshly installed disk is one run.
"""

from __future__ import annotations

import enum
import ipaddress
import random
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

import attrs

from vmfailover.backends.memory.store import FailoverRecord, MemoryStore, PointRecord, VMRecord
from vmfailover.clock import VirtualClock
from vmfailover.errors import Finding, ValidationError, VMFailoverError
from vmfailover.model import (
    VM,
    Datastore,
    Host,
    Inventory,
    IPConfig,
    Network,
    Nic,
    RecoveryPoint,
    Replica,
    ReplicaState,
    Site,
    aware_utc,
    is_finite_number,
)

__all__ = [
    "WORLD_FORMAT",
    "WORLD_VERSION",
    "inventory_document",
    "inventory_from_document",
    "store_document",
    "store_from_document",
]

WORLD_FORMAT = "vmfailover-memory-world"
"""The ``format`` every saved world names, so a foreign JSON file is told apart."""

WORLD_VERSION = 1
"""The document version this code writes; it reads this one and refuses newer ones."""

_T = TypeVar("_T")
_V = TypeVar("_V")


class _Part(Protocol):
    def __call__(self, holder: object, make: Callable[[_V], Json], value: _V) -> Json: ...


Json = Any


# --- writing ------------------------------------------------------------------------------------


def store_document(store: MemoryStore) -> dict[str, Json]:
    """The whole world of ``store`` as plain JSON data (the caller holds the store's lock)."""
    clock = store.clock
    if not isinstance(clock, VirtualClock):
        raise ValidationError.of(
            "memory backend clock",
            f"only a world on a VirtualClock can be saved, this one runs on {clock!r}",
            "a real clock's readings mean nothing to another process",
        )
    version, internal, gauss = store.rng.getstate()
    hosts = store.all_hosts()
    earlier = store.saved_parts
    kept: dict[int, tuple[object, object]] = {}

    def part(holder: object, make: Callable[[_V], Json], value: _V) -> Json:
        """``make(value)``, or what it made for ``holder`` (unchanged since) at the last save."""
        cached = earlier.get(id(holder))
        made = cached[1] if cached is not None and cached[0] is holder else make(value)
        kept[id(holder)] = (holder, made)
        return cast(Json, made)

    document: dict[str, Json] = {
        "format": WORLD_FORMAT,
        "version": WORLD_VERSION,
        "clock": {
            "start": clock.start.isoformat(),
            "elapsed_seconds": clock.monotonic(),
            "rate": clock.rate,
        },
        "random_state": [version, list(internal), gauss],
        "recovery_point_limit": store.recovery_point_limit,
        "bytes_transferred": store.bytes_transferred,
        "last_version": store.last_version,
        "last_point_number": store.last_point_number,
        "sites": [_plain(site) for site in store.all_sites()],
        "hosts": [_plain(host) for host in hosts],
        "datastores": [_plain(datastore) for datastore in store.all_datastores()],
        "networks": [_plain(network) for network in store.all_networks()],
        "vms": [_vm_record(record, part) for record in store.vm_records()],
        "vm_order": {
            host.name: list(order) for host in hosts if (order := store.vm_order_on(host.name))
        },
        "replicas": [part(replica, _plain, replica) for replica in store.all_replicas()],
        "points": [
            {
                "point": part(record.point, _plain, record.point),
                "disk": part(record, disk_runs, record.disk),
            }
            for record in store.all_points()
        ],
        "failovers": {
            replica: {
                "point": record.point,
                "disk_before": part(record, disk_runs, record.disk_before),
            }
            for replica, record in store.all_failovers().items()
        },
        "split_brains": list(store.split_brains),
    }
    store.saved_parts = kept  # what is gone since is forgotten
    return document


def _vm_record(record: VMRecord, part: _Part) -> Json:
    return {
        "vm": part(record.vm, _plain, record.vm),  # frozen: a VM that changes is a new object
        "disk": disk_runs(record.disk),
        "boot_seconds": record.boot_seconds,
        "booted_at": record.booted_at,
        "boots": record.boots,
        "shutdown_seconds": record.shutdown_seconds,
        "test_copy_of": record.test_copy_of,
        "write_rate": record.write_rate,
    }


def _plain(value: object) -> Json:
    """A model value as JSON data: attrs classes as objects of their fields, enums by value,
    times in ISO 8601, addresses as text, sets sorted."""
    if attrs.has(type(value)):
        return {
            field.name: _plain(getattr(value, field.name))
            for field in attrs.fields(type(value))  # type: ignore[arg-type]
            if field.init
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(
        value,
        ipaddress.IPv4Address
        | ipaddress.IPv6Address
        | ipaddress.IPv4Interface
        | ipaddress.IPv6Interface,
    ):
        return str(value)
    if isinstance(value, frozenset):
        return sorted(_plain(item) for item in value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def disk_runs(disk: Mapping[int, int]) -> list[list[int]]:
    """A disk as ``[first block, count, version]`` runs of consecutive blocks of one version."""
    runs: list[list[int]] = []
    for block in sorted(disk):
        version = disk[block]
        last = runs[-1] if runs else None
        if last is not None and last[0] + last[1] == block and last[2] == version:
            last[1] += 1
        else:
            runs.append([block, 1, version])
    return runs


def inventory_document(inventory: Inventory) -> dict[str, Json]:
    """An inventory as plain JSON data (:func:`inventory_from_document` reads it back)."""
    return {
        "sites": [_plain(site) for site in inventory.sites],
        "hosts": [_plain(host) for host in inventory.hosts],
        "datastores": [_plain(datastore) for datastore in inventory.datastores],
        "networks": [_plain(network) for network in inventory.networks],
        "vms": [_plain(vm) for vm in inventory.vms],
        "replicas": [_plain(replica) for replica in inventory.replicas],
    }


def inventory_from_document(document: object, source: str) -> Inventory:
    """The inventory :func:`inventory_document` wrote; our ValidationError naming ``source``."""
    try:
        top = _object(document, "", "an inventory (a JSON object)")
        _known_keys(top, "", _INVENTORY_TABLES)
        kinds: dict[str, tuple[type[Any], tuple[str, ...]]] = {
            "sites": (Site, ()),
            "hosts": (Host, ()),
            "datastores": (Datastore, ()),
            "networks": (Network, ()),
            "vms": (VM, ()),
            "replicas": (Replica, _REPLICA_TIMES),
        }
        tables = {
            key: [_build(kind, item, where, times) for where, item in _items(top, key)]
            for key, (kind, times) in kinds.items()
        }
        return Inventory(**tables)
    except _Refusal as refusal:
        where = f"{source}: {refusal.where}" if refusal.where else source
        raise ValidationError([Finding(where, refusal.message)]) from None
    except VMFailoverError as error:
        raise ValidationError([Finding(source, f"not a consistent inventory: {error}")]) from None


_INVENTORY_TABLES = ("sites", "hosts", "datastores", "networks", "vms", "replicas")


# --- reading ------------------------------------------------------------------------------------


class _Refusal(Exception):
    """One problem at one place of the document; turned into a finding naming the file."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def store_from_document(document: object, source: str) -> MemoryStore:
    """The world ``document`` describes, every index rebuilt through the store's own checks.

    ``source`` names the file in every finding. Refuses (ValidationError) a document that is not
    a saved world, is newer than :data:`WORLD_VERSION`, or does not hold together.
    """
    try:
        return _read(document)
    except _Refusal as refusal:
        where = f"{source}: {refusal.where}" if refusal.where else source
        raise ValidationError([Finding(where, refusal.message)]) from None
    except VMFailoverError as error:  # the store or a model class refused a value
        raise ValidationError([Finding(source, f"not a consistent world: {error}")]) from None


def _read(document: object) -> MemoryStore:
    top = _object(document, "", "a saved memory-backend world (a JSON object)")
    if top.get("format") != WORLD_FORMAT:
        raise _Refusal(
            "format",
            f"is {top.get('format')!r}, not {WORLD_FORMAT!r}: this is not a saved lab",
        )
    version = top.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Refusal("version", f"must be a whole number from 1, got {version!r}")
    if version > WORLD_VERSION:
        raise _Refusal(
            "version",
            f"{version} is newer than this vmfailover reads ({WORLD_VERSION}): upgrade it, or "
            "start a new lab",
        )
    _known_keys(top, "", _TOP_KEYS)
    clock = _clock(_field(top, "clock", "", dict))
    store = MemoryStore(
        clock,
        recovery_point_limit=_optional_count(
            top.get("recovery_point_limit"), "recovery_point_limit"
        ),
        seed=0,
    )
    store.rng = _random(top.get("random_state"))
    store.bytes_transferred = _count(top.get("bytes_transferred"), "bytes_transferred")
    store.last_version = _count(top.get("last_version"), "last_version")
    store.last_point_number = _count(top.get("last_point_number"), "last_point_number")
    for where, item in _items(top, "sites"):
        _at(where, store.add_site, _build(Site, item, where))
    for where, item in _items(top, "hosts"):
        _at(where, store.add_host, _build(Host, item, where))
    for where, item in _items(top, "datastores"):
        _at(where, store.add_datastore, _build(Datastore, item, where))
    for where, item in _items(top, "networks"):
        _at(where, store.add_network, _build(Network, item, where))
    for where, item in _items(top, "vms"):
        record = _read_vm_record(item, where)
        _at(where, store.add_vm, record)
        _check_versions(record.disk, store.last_version, f"{where}.disk")
    for host, order in _field(top, "vm_order", "", dict).items():
        ids = _field({"ids": order}, "ids", f"vm_order.{host}", list)
        _at(f"vm_order.{host}", store.arrange_vms_on, str(host), tuple(map(str, ids)))
    for where, item in _items(top, "replicas"):
        _at(where, store.restore_replica, _build(Replica, item, where, _REPLICA_TIMES))
    for record in store.vm_records():
        if record.test_copy_of is not None and store.find_replica(record.test_copy_of) is None:
            raise _Refusal(
                f"VM {record.vm.id!r}", f"is a test copy of unknown replica {record.test_copy_of!r}"
            )
    for replica in store.all_replicas():
        if store.test_copies_of(replica.id) and replica.state is not ReplicaState.TEST_FAILOVER:
            raise _Refusal(
                f"replica {replica.id!r}", f"has test copies but is {replica.state.value}"
            )
    for where, item in _items(top, "points"):
        fields = _object(item, where, "a recovery point and its disk")
        _known_keys(fields, where, ("point", "disk"))
        point = _build(
            RecoveryPoint, _field(fields, "point", where, dict), f"{where}.point", _POINT_TIMES
        )
        disk = _disk(fields.get("disk"), f"{where}.disk")
        _check_versions(disk, store.last_version, f"{where}.disk")
        _at(where, store.add_point, PointRecord(point, disk))
    for replica_id, item in _field(top, "failovers", "", dict).items():
        where = f"failovers.{replica_id}"
        fields = _object(item, where, "an uncommitted failover")
        _known_keys(fields, where, ("point", "disk_before"))
        point_id = fields.get("point")
        if not isinstance(point_id, str) or not point_id:
            raise _Refusal(f"{where}.point", f"must be a recovery point id, got {point_id!r}")
        before = _disk(fields.get("disk_before"), f"{where}.disk_before")
        _check_versions(before, store.last_version, f"{where}.disk_before")
        _at(where, store.restore_failover, str(replica_id), FailoverRecord(point_id, before))
    witnessed = _field(top, "split_brains", "", list)
    if not all(isinstance(line, str) for line in witnessed):
        raise _Refusal("split_brains", "must be a list of text")
    store.split_brains = list(witnessed)
    numbers = [_point_number(record.point.id) for record in store.all_points()]
    if numbers and max(numbers) > store.last_point_number:
        raise _Refusal("last_point_number", "is below the number of a recovery point it holds")
    return store


_TOP_KEYS = (
    "format",
    "version",
    "clock",
    "random_state",
    "recovery_point_limit",
    "bytes_transferred",
    "last_version",
    "last_point_number",
    "sites",
    "hosts",
    "datastores",
    "networks",
    "vms",
    "vm_order",
    "replicas",
    "points",
    "failovers",
    "split_brains",
)
_REPLICA_TIMES = ("created_at",)
_POINT_TIMES = ("created_at", "pinned_until")


def _at(where: str, action: Callable[..., object], *args: object) -> None:
    """Apply a store change; a refusal names the place in the document."""
    try:
        action(*args)
    except VMFailoverError as error:
        raise _Refusal(where, str(error)) from None


def _object(value: object, where: str, what: str) -> dict[str, Json]:
    if not isinstance(value, dict):
        raise _Refusal(where, f"must be {what}, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true or false"}.get(
        type(value), "null" if value is None else "a number"
    )


def _field(mapping: Mapping[str, Json], key: str, where: str, kind: type[_T]) -> _T:
    value = mapping.get(key)
    place = f"{where}.{key}" if where else key
    if not isinstance(value, kind):
        label = "an object" if kind is dict else "a list" if kind is list else kind.__name__
        raise _Refusal(place, f"must be {label}, got {_kind(value)}")
    return value


def _known_keys(mapping: Mapping[str, Json], where: str, known: tuple[str, ...]) -> None:
    unknown = sorted(str(key) for key in mapping if key not in known)
    if unknown:
        raise _Refusal(where or "document", f"has unknown keys {unknown}")


def _items(top: Mapping[str, Json], key: str) -> Iterator[tuple[str, Json]]:
    for index, item in enumerate(_field(top, key, "", list)):
        yield f"{key}[{index}]", item


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Refusal(where, f"must be a whole number >= 0, got {value!r}")
    return value


def _optional_count(value: object, where: str) -> int | None:
    return None if value is None else _count(value, where)


def _number(value: object, where: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if not is_finite_number(value):
        raise _Refusal(where, f"must be a finite number, got {value!r}")
    return float(value)


def _clock(fields: Mapping[str, Json]) -> VirtualClock:
    _known_keys(fields, "clock", ("start", "elapsed_seconds", "rate"))
    start = _time(fields.get("start"), "clock.start")
    elapsed = _number(fields.get("elapsed_seconds"), "clock.elapsed_seconds")
    rate = _number(fields.get("rate"), "clock.rate")
    assert elapsed is not None
    assert rate is not None
    try:
        clock = VirtualClock(start)
        clock.advance(elapsed)
        clock.set_rate(rate)
    except VMFailoverError as error:
        raise _Refusal("clock", str(error)) from None
    return clock


def _time(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise _Refusal(where, f"must be an ISO 8601 time as text, got {_kind(value)}")
    try:
        return aware_utc(datetime.fromisoformat(value), where)
    except ValueError:
        raise _Refusal(where, f"{value!r} is not an ISO 8601 time") from None
    except VMFailoverError as error:
        raise _Refusal(where, str(error)) from None


def _random(value: object) -> random.Random:
    where = "random_state"
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[1], list)):
        raise _Refusal(where, "must be [version, [624 + 1 whole numbers], gauss]")
    version, internal, gauss = value
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in internal):
        raise _Refusal(where, "the generator's state must be whole numbers")
    rng = random.Random()
    try:
        rng.setstate((version, tuple(internal), gauss))
    except (TypeError, ValueError, OverflowError) as error:
        raise _Refusal(where, f"is not a generator's state: {error}") from None
    return rng


def _build(kind: type[_T], value: object, where: str, times: tuple[str, ...] = ()) -> _T:
    """An attrs model instance from its fields; its own validators check the values."""
    fields = _object(value, where, f"a {kind.__name__}")
    names = tuple(field.name for field in attrs.fields(kind) if field.init)  # type: ignore[arg-type]
    _known_keys(fields, where, names)
    arguments = dict(fields)
    required = {
        field.name
        for field in attrs.fields(kind)  # type: ignore[arg-type]
        if field.default is attrs.NOTHING
    }
    for name in times:
        if arguments.get(name) is not None or name in required:
            arguments[name] = _time(arguments.get(name), f"{where}.{name}")
    if kind is VM and isinstance(arguments.get("nics"), list):
        arguments["nics"] = [
            _read_nic(nic, f"{where}.nics[{index}]") for index, nic in enumerate(arguments["nics"])
        ]
    if kind is Nic and isinstance(arguments.get("ip_configs"), list):
        arguments["ip_configs"] = [
            _build(IPConfig, config, f"{where}.ip_configs[{index}]")
            for index, config in enumerate(arguments["ip_configs"])
        ]
    try:
        return kind(**arguments)
    except VMFailoverError as error:
        raise _Refusal(where, str(error)) from None
    except TypeError as error:  # a required field is missing
        raise _Refusal(where, f"is not a complete {kind.__name__}: {error}") from None


def _read_nic(value: object, where: str) -> Nic:
    return _build(Nic, value, where)


def _read_vm_record(value: object, where: str) -> VMRecord:
    fields = _object(value, where, "a VM and its disk")
    _known_keys(
        fields,
        where,
        (
            "vm",
            "disk",
            "boot_seconds",
            "booted_at",
            "boots",
            "shutdown_seconds",
            "test_copy_of",
            "write_rate",
        ),
    )
    boots = fields.get("boots")
    if not isinstance(boots, bool):
        raise _Refusal(f"{where}.boots", f"must be true or false, got {boots!r}")
    copy_of = fields.get("test_copy_of")
    if copy_of is not None and not isinstance(copy_of, str):
        raise _Refusal(f"{where}.test_copy_of", f"must be a replica id or null, got {copy_of!r}")
    boot, shutdown, rate = (
        _not_negative(fields.get(name), f"{where}.{name}")
        for name in ("boot_seconds", "shutdown_seconds", "write_rate")
    )
    return VMRecord(
        vm=_build(VM, _field(fields, "vm", where, dict), f"{where}.vm"),
        disk=_disk(fields.get("disk"), f"{where}.disk"),
        boot_seconds=boot,
        booted_at=_number(fields.get("booted_at"), f"{where}.booted_at", optional=True),
        boots=boots,
        shutdown_seconds=shutdown,
        test_copy_of=copy_of,
        write_rate=rate,
    )


def _not_negative(value: object, where: str) -> float:
    number = _number(value, where)
    assert number is not None
    if number < 0:
        raise _Refusal(where, f"must be >= 0, got {number!r}")
    return number


_MAX_BLOCKS = 1 << 40


def _disk(value: object, where: str) -> dict[int, int]:
    if not isinstance(value, list):
        raise _Refusal(
            where, f"must be a list of [first block, count, version] runs, got {_kind(value)}"
        )
    disk: dict[int, int] = {}
    for index, run in enumerate(value):
        if not (
            isinstance(run, list)
            and len(run) == 3
            and all(isinstance(n, int) and not isinstance(n, bool) for n in run)
        ):
            raise _Refusal(f"{where}[{index}]", "must be [first block, count, version]")
        first, count, version = run
        if not (-1 <= first < _MAX_BLOCKS and 1 <= count <= _MAX_BLOCKS - first):
            raise _Refusal(f"{where}[{index}]", f"run {run} is out of range")
        if len(disk) + count > _MAX_BLOCKS:
            raise _Refusal(where, "holds more blocks than a disk can")
        for block in range(first, first + count):
            if block in disk:
                raise _Refusal(f"{where}[{index}]", f"block {block} appears twice")
            disk[block] = version
    return disk


def _check_versions(disk: Mapping[int, int], last: int, where: str) -> None:
    """Every written block's version was handed out before (-1 marks damage)."""
    for version in disk.values():
        if version != -1 and not 1 <= version <= last:
            raise _Refusal(where, f"block version {version} was never handed out")


def _point_number(point_id: str) -> int:
    prefix, _, number = point_id.partition("-")
    return int(number) if prefix == "rp" and number.isdigit() else 0
