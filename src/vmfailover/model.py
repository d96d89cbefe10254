"""The hypervisor-neutral model: immutable value types every other layer speaks.

Everything here is frozen (``attrs.evolve`` makes changed copies) and checked when it is built, so a
bad value is refused where it enters, with a :class:`~vmfailover.errors.ValidationError` naming the
item and the field. Timestamps are timezone-aware and normalised to UTC.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeGuard, TypeVar

import attrs

from vmfailover.errors import Finding, NotFoundError, ValidationError

__all__ = [
    "VM",
    "ConnectionState",
    "Consistency",
    "Credentials",
    "Datastore",
    "FailoverKind",
    "GuestOS",
    "Host",
    "IPAddress",
    "IPConfig",
    "IPInterface",
    "Inventory",
    "Network",
    "Nic",
    "PowerState",
    "RecoveryPoint",
    "Replica",
    "ReplicaState",
    "Secret",
    "Site",
    "as_count",
    "as_enum",
    "as_flag",
    "as_instance",
    "as_items",
    "as_name",
    "aware_utc",
    "check_flag",
    "is_collection",
    "is_finite_number",
    "lookup",
    "parse_seconds",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface: TypeAlias = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class PowerState(enum.StrEnum):
    ON = "on"
    OFF = "off"
    SUSPENDED = "suspended"


class ConnectionState(enum.StrEnum):
    """Whether the management plane reaches a host."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    NOT_RESPONDING = "not_responding"


class ReplicaState(enum.StrEnum):
    """Where a replica is in its life.

    ``initializing`` (created, no recovery point yet) -> ``ready`` (replicating) ->
    ``test_failover`` (a test copy runs) / ``failed_over`` (the replica runs in production) ->
    ``committed`` (failover made permanent) -> ``reversed`` (replicating back to the source).
    """

    INITIALIZING = "initializing"
    READY = "ready"
    TEST_FAILOVER = "test_failover"
    FAILED_OVER = "failed_over"
    COMMITTED = "committed"
    REVERSED = "reversed"
    ERROR = "error"


class FailoverKind(enum.StrEnum):
    """``planned``: no data loss, source shut down first. ``test``: isolated, production untouched.
    ``regular``: unplanned, the source site is gone."""

    PLANNED = "planned"
    TEST = "test"
    REGULAR = "regular"


class Consistency(enum.StrEnum):
    CRASH = "crash"
    APPLICATION = "application"


class GuestOS(enum.StrEnum):
    LINUX = "linux"
    WINDOWS = "windows"
    OTHER = "other"


# --- validation helpers -------------------------------------------------------------------------


def aware_utc(value: datetime, item: str = "timestamp") -> datetime:
    """Return ``value`` in UTC; refuse naive datetimes (their instant is unknown)."""
    if not isinstance(value, datetime):
        raise ValidationError.of(item, f"expected a datetime, got {value!r}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError.of(
            item,
            f"{value.isoformat()} is a naive datetime",
            "give a timezone, for example datetime(..., tzinfo=UTC)",
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError.of(
            item, f"{value.isoformat()} is outside the years 1 to 9999 in UTC"
        ) from None


def _label(instance: object) -> str:
    kind = type(instance).__name__
    for key in ("name", "id", "mac"):
        value = getattr(instance, key, None)
        if isinstance(value, str) and value:
            return f"{kind} {value!r}"
    return kind


def _utc_field(instance: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None:
        checked = aware_utc(value, f"{_label(instance)}: {attribute.name}")
        object.__setattr__(instance, attribute.name, checked)


def _utc_required(instance: object, attribute: attrs.Attribute[Any], value: datetime) -> None:
    """An aware datetime that must be there (``None`` is refused naming the field)."""
    if value is None:
        raise ValidationError.of(f"{_label(instance)}: {attribute.name}", "is required, got None")
    _utc_field(instance, attribute, value)


MAX_WHOLE = 2**63 - 1
"""The largest whole number a model field takes: what hypervisor APIs carry (a signed 64 bits)."""


def _non_empty(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of(
            _label(instance), f"{attribute.name} must be a non-empty string, got {value!r}"
        )


def _text(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str):
        raise ValidationError.of(_label(instance), f"{attribute.name} must be text, got {value!r}")


def _whole(instance: object, attribute: attrs.Attribute[Any], value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_WHOLE:
        raise ValidationError.of(
            _label(instance),
            f"{attribute.name} must be a whole number from {minimum} to 2**63-1, got {value!r}",
        )


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    _whole(instance, attribute, value, 0)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    _whole(instance, attribute, value, 1)


def as_flag(value: object, item: str) -> bool:
    """``value`` if it is ``True`` or ``False``; anything else is refused naming ``item``.

    Flags are never read as truthy: ``"no"``, ``"False"``, ``0`` and ``None`` would each switch a
    guard one way or the other without saying so.
    """
    if not isinstance(value, bool):
        raise ValidationError.of(item, f"must be True or False, got {value!r}")
    return value


def check_flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: the field is ``True`` or ``False`` (see :func:`as_flag`)."""
    as_flag(value, f"{_label(instance)} {attribute.name}")


def is_finite_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a real, finite number.

    Booleans are not numbers here (``True`` is no timeout), and an integer too large for a float
    is not finite, so a check written with this never meets an ``OverflowError``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


_E = TypeVar("_E", bound=enum.StrEnum)
_I = TypeVar("_I")


def as_enum(
    enum_type: type[_E], value: object, item: str | None = None, *, field: str | None = None
) -> _E:
    """``value`` as a member of ``enum_type``: a member already, or a member's value (a string).

    The one place every layer turns user input into an enum. Anything else is refused with a
    :class:`~vmfailover.errors.ValidationError` naming ``item`` (the enum's name by default) and
    the ``field`` it was given for, and listing the values accepted.
    """
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        try:
            return enum_type(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in enum_type)
    given = f"{field} {value!r}" if field else repr(value)
    raise ValidationError.of(item or enum_type.__name__, f"{given} is not one of: {allowed}")


_SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_SPAN_PART = re.compile(r"\s*(\d{1,9}(?:\.\d{1,9})?)\s*([smhdw])", re.IGNORECASE)


def parse_seconds(value: object, item: str, *, allow_zero: bool = False) -> float:
    """Seconds from a number or a span such as ``"90s"``, ``"15m"``, ``"1h30m"`` or ``"2d"``.

    ``m`` is minutes here (an objective or a timeout, not a calendar span). NaN, infinity,
    negative numbers, zero (unless ``allow_zero``), booleans and malformed text raise a
    ValidationError naming ``item``.
    """
    seconds: float
    if isinstance(value, str):
        text = value.strip().lower()
        position, total, units = 0, 0.0, set()
        while position < len(text):
            match = _SPAN_PART.match(text, position)
            if match is None or match.group(2) in units:
                raise ValidationError.of(
                    item,
                    f"{value!r} is not a duration",
                    "write a number with s, m, h, d or w, for example '15m' or '1h30m'",
                )
            units.add(match.group(2))
            total += float(match.group(1)) * _SPAN_UNITS[match.group(2)]
            position = match.end()
        if not units:
            raise ValidationError.of(item, "is an empty duration", "for example '15m'")
        seconds = total
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError.of(
            item, f"must be seconds or a duration such as '15m', got {value!r}"
        )
    else:
        try:
            seconds = float(value)
        except OverflowError:
            raise ValidationError.of(item, f"{value!r} seconds is out of range") from None
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValidationError.of(item, f"must be a finite number of seconds {bound}, got {value!r}")
    if seconds > 100 * 366 * 86_400:
        raise ValidationError.of(item, f"{value!r} is longer than a century")
    return seconds


def _host_connection(value: object) -> ConnectionState:
    return as_enum(ConnectionState, value, "Host", field="connection")


def _host_power(value: object) -> PowerState:
    return as_enum(PowerState, value, "Host", field="power")


def _vm_power_state(value: object) -> PowerState:
    return as_enum(PowerState, value, "VM", field="power_state")


def _vm_guest_os(value: object) -> GuestOS:
    return as_enum(GuestOS, value, "VM", field="guest_os")


def _replica_state(value: object) -> ReplicaState:
    return as_enum(ReplicaState, value, "Replica", field="state")


def _point_consistency(value: object) -> Consistency:
    return as_enum(Consistency, value, "RecoveryPoint", field="consistency")


def as_instance(value: object, kind: type[_I], item: str) -> _I:
    """``value`` if it is a ``kind``; anything else is refused naming ``item`` and the type wanted.

    For arguments that must be one of our objects (an inventory, a plan, an observation): a wrong
    one would otherwise fail deep inside as an ``AttributeError``.
    """
    if not isinstance(value, kind):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValidationError.of(item, f"needs a {kind.__name__}, got {shown}")
    return value


def as_count(value: object, item: str, most: int) -> int:
    """``value`` if it is a whole number from 1 to ``most`` (rows to show, runs, attempts)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ValidationError.of(item, f"must be a whole number from 1 to {most:,}, got {value!r}")
    return value


def as_name(value: object, item: str) -> str:
    """``value`` if it is a non-empty string (a name or an id); anything else is refused."""
    if not isinstance(value, str) or not value:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValidationError.of(item, f"needs a name, got {shown}")
    return value


def is_collection(value: object) -> bool:
    """Whether ``value`` holds items to take one by one: an iterable, but no text, bytes or
    mapping (those iterate too, as characters, numbers and keys, which is never meant)."""
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | bytearray | Mapping)


def as_items(
    value: object, kind: type[_I] | tuple[type[_I], ...], item: str, what: str
) -> tuple[_I, ...]:
    """``value`` as a tuple of ``kind``: one ``kind`` alone, or any collection of them.

    The one place user input of "one or many" becomes a tuple: text, bytes, mappings, anything
    that is no collection, and stray items are refused naming ``item`` (and the stray's
    position), saying that each must be ``what``.
    """
    if isinstance(value, kind):
        return (value,)
    if not is_collection(value):
        raise ValidationError.of(item, f"expected {what} or a list of them, got {value!r}")
    items: tuple[Any, ...] = tuple(value)  # type: ignore[arg-type]
    for position, element in enumerate(items, start=1):
        if not isinstance(element, kind):
            raise ValidationError.of(item, f"item {position} must be {what}, got {element!r}")
    return items


def _listed(value: Iterable[Any] | str) -> tuple[Any, ...]:
    """A collection field as a tuple (one string is one item). Anything that is no collection is
    left as it is, for the field's validator to refuse with the item's name."""
    if isinstance(value, str):
        return (value,)
    if is_collection(value):
        return tuple(value)
    return value  # type: ignore[return-value]


def _str_tuple(value: Iterable[str] | str) -> tuple[str, ...]:
    return _listed(value)


_NO_NAMES: frozenset[str] = frozenset()
"""The one empty set every untagged VM and recovery point shares: CPython makes a new 216-byte
empty frozenset per call, and a million untagged points would each carry (and a retention pass
would each visit) their own."""


def _str_frozenset(value: Iterable[str] | str) -> frozenset[str]:
    listed = _listed(value)
    try:
        return frozenset(listed) or _NO_NAMES
    except TypeError:  # an unhashable item: the validator names it
        return listed  # type: ignore[return-value]


def _collection(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple | frozenset):
        raise ValidationError.of(
            _label(instance), f"{attribute.name} must be a list, got {value!r}"
        )


def _each(kind: type, what: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """A validator: the field is a collection of ``kind``; a stray item is named by position."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        _collection(instance, attribute, value)
        assert isinstance(value, tuple | frozenset)
        for position, item in enumerate(value, start=1):
            if not isinstance(item, kind):
                raise ValidationError.of(
                    _label(instance),
                    f"{attribute.name} item {position} must be {what}, got {item!r}",
                )

    return check


def _each_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _collection(instance, attribute, value)
    assert isinstance(value, tuple | frozenset)
    for position, name in enumerate(sorted(value, key=repr), start=1):
        if not isinstance(name, str) or not name.strip():
            raise ValidationError.of(
                _label(instance),
                f"{attribute.name} item {position} must be a non-empty string, got {name!r}",
            )


# --- sites, hosts, storage, networks ------------------------------------------------------------


@attrs.frozen
class Site:
    """A location that can be lost as a whole (a data centre, a region)."""

    name: str = attrs.field(validator=_non_empty)
    description: str = attrs.field(default="", validator=_text)


def _optional_label(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        _non_empty(instance, attribute, value)


def _optional_positive(
    instance: object, attribute: attrs.Attribute[Any], value: int | None
) -> None:
    if value is not None:
        _positive(instance, attribute, value)


@attrs.frozen
class Host:
    """A hypervisor host. ``datastores`` and ``networks`` are the names it can reach.

    ``cluster`` names the failover cluster (vSphere HA cluster, Hyper-V failover cluster) the host
    belongs to, if any. The remaining fields describe what a cluster needs to fail over safely;
    ``None`` means "not known", and a readiness check says nothing about what it does not know:

    - ``cpu_family``: the CPU vendor and family (``"intel"``, ``"amd"``); VMs cannot move live
      between hosts of different families.
    - ``cpu_feature_level``: the CPU feature baseline VMs see (a vSphere EVC mode such as
      ``"intel-cascadelake"``, Hyper-V processor compatibility); live moves need a common one.
    - ``management_paths``: independent paths of the management network (uplinks, or cluster
      networks on Hyper-V); 1 means a single NIC or switch port can isolate the host.
    - ``storage_paths``: independent paths to the shared storage (multipathing); 1 means a single
      failure cuts the host off its datastores.
    """

    name: str = attrs.field(validator=_non_empty)
    site: str = attrs.field(validator=_non_empty)
    cluster: str | None = attrs.field(default=None, validator=_optional_label)
    connection: ConnectionState = attrs.field(
        default=ConnectionState.CONNECTED, converter=_host_connection
    )
    power: PowerState = attrs.field(default=PowerState.ON, converter=_host_power)
    cpu_cores: int = attrs.field(default=32, validator=_positive)
    memory_mb: int = attrs.field(default=262_144, validator=_positive)
    datastores: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_each_name
    )
    networks: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, validator=_each_name)
    cpu_family: str | None = attrs.field(default=None, validator=_optional_label)
    cpu_feature_level: str | None = attrs.field(default=None, validator=_optional_label)
    management_paths: int | None = attrs.field(default=None, validator=_optional_positive)
    storage_paths: int | None = attrs.field(default=None, validator=_optional_positive)

    @property
    def available(self) -> bool:
        """Powered on and reachable by the management plane."""
        return self.power is PowerState.ON and self.connection is ConnectionState.CONNECTED


@attrs.frozen
class Datastore:
    name: str = attrs.field(validator=_non_empty)
    site: str = attrs.field(validator=_non_empty)
    capacity_bytes: int = attrs.field(validator=_non_negative)
    free_bytes: int = attrs.field(validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.free_bytes > self.capacity_bytes:
            raise ValidationError.of(
                _label(self),
                f"free_bytes ({self.free_bytes}) exceeds capacity_bytes ({self.capacity_bytes})",
            )


def _optional_vlan(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4095
    ):
        raise ValidationError.of(
            _label(instance), f"vlan must be a VLAN id from 0 to 4095 or None, got {value!r}"
        )


@attrs.frozen
class Network:
    """A network (port group, virtual switch) at a site. ``isolated`` networks reach no
    production system: test failovers must land on them."""

    name: str = attrs.field(validator=_non_empty)
    site: str = attrs.field(validator=_non_empty)
    isolated: bool = attrs.field(default=False, validator=check_flag)
    vlan: int | None = attrs.field(default=None, validator=_optional_vlan)


# --- NICs and addresses -------------------------------------------------------------------------


def _interface(value: object) -> IPInterface:
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value
    if not isinstance(value, str):
        raise ValidationError.of("IPConfig address", f"expected 'address/prefix', got {value!r}")
    if "/" not in value:
        raise ValidationError.of(
            "IPConfig address",
            f"{value!r} has no prefix length",
            "write it as address/prefix, for example 192.168.1.10/24",
        )
    try:
        return ipaddress.ip_interface(value)
    except ValueError as exc:
        raise ValidationError.of("IPConfig address", f"{value!r} is not valid: {exc}") from None


def _address(value: object) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):
        raise ValidationError.of("IPConfig", f"expected an IP address as text, got {value!r}")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError.of("IPConfig", f"{value!r} is not an IP address") from None


def _optional_address(value: object) -> IPAddress | None:
    return None if value is None else _address(value)


def _addresses(value: object) -> tuple[IPAddress, ...]:
    if isinstance(value, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
        value = (value,)
    if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise ValidationError.of("IPConfig dns", f"must be a list of addresses, got {value!r}")
    return tuple(_address(item) for item in value)


@attrs.frozen
class IPConfig:
    """A static interface address with its prefix, gateway, DNS servers and suffixes."""

    address: IPInterface = attrs.field(converter=_interface)
    gateway: IPAddress | None = attrs.field(default=None, converter=_optional_address)
    dns: tuple[IPAddress, ...] = attrs.field(default=(), converter=_addresses)
    dns_suffixes: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_each_name
    )

    def __attrs_post_init__(self) -> None:
        item = f"IPConfig {self.address}"
        if self.gateway is not None:
            if self.gateway.version != self.address.version:
                raise ValidationError.of(item, f"gateway {self.gateway} is another IP version")
            if self.gateway not in self.address.network:
                raise ValidationError.of(
                    item, f"gateway {self.gateway} is outside {self.address.network}"
                )
        for server in self.dns:
            if server.version != self.address.version:
                raise ValidationError.of(item, f"DNS server {server} is another IP version")


def _ip_configs(value: Iterable[IPConfig]) -> tuple[IPConfig, ...]:
    return _listed(value)


_MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$|^[0-9a-f]{12}$")


def _mac(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError.of("Nic mac", f"expected a MAC address as text, got {value!r}")
    text = value.strip().lower()
    if not _MAC.match(text):
        raise ValidationError.of(
            "Nic mac", f"{value!r} is not a MAC address", "write six hex pairs, aa:bb:cc:dd:ee:ff"
        )
    digits = re.sub(r"[^0-9a-f]", "", text)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


@attrs.frozen
class Nic:
    """A virtual network adapter, identified by its MAC, on a network of its VM's site."""

    mac: str = attrs.field(converter=_mac)
    network: str = attrs.field(validator=_non_empty)
    ip_configs: tuple[IPConfig, ...] = attrs.field(
        default=(), converter=_ip_configs, validator=_each(IPConfig, "an IPConfig")
    )
    dhcp: bool = attrs.field(default=False, validator=check_flag)
    label: str = attrs.field(default="", validator=_text)

    def __attrs_post_init__(self) -> None:
        if self.dhcp and self.ip_configs:
            raise ValidationError.of(
                _label(self), "a NIC on DHCP cannot also have static ip_configs"
            )

    @property
    def addresses(self) -> tuple[IPAddress, ...]:
        return tuple(config.address.ip for config in self.ip_configs)


def _nics(value: Iterable[Nic]) -> tuple[Nic, ...]:
    return _listed(value)


# --- VMs, replicas, recovery points -------------------------------------------------------------


@attrs.frozen
class VM:
    """A virtual machine. ``id`` is stable across renames and moves; ``name`` is what people use."""

    id: str = attrs.field(validator=_non_empty)
    name: str = attrs.field(validator=_non_empty)
    host: str = attrs.field(validator=_non_empty)
    power_state: PowerState = attrs.field(default=PowerState.OFF, converter=_vm_power_state)
    nics: tuple[Nic, ...] = attrs.field(default=(), converter=_nics, validator=_each(Nic, "a Nic"))
    cpu: int = attrs.field(default=1, validator=_positive)
    memory_mb: int = attrs.field(default=1024, validator=_positive)
    guest_os: GuestOS = attrs.field(default=GuestOS.LINUX, converter=_vm_guest_os)
    datastore: str | None = attrs.field(default=None, validator=_optional_label)
    disk_bytes: int = attrs.field(default=0, validator=_non_negative)
    tags: frozenset[str] = attrs.field(
        default=frozenset(), converter=_str_frozenset, validator=_each_name
    )

    def __attrs_post_init__(self) -> None:
        seen: set[str] = set()
        for nic in self.nics:
            if nic.mac in seen:
                raise ValidationError.of(_label(self), f"two NICs share the MAC {nic.mac}")
            seen.add(nic.mac)

    def nic(self, mac: str) -> Nic:
        wanted = _mac(mac)
        for nic in self.nics:
            if nic.mac == wanted:
                return nic
        raise NotFoundError(f"VM {self.name!r} has no NIC with MAC {wanted}")


@attrs.frozen
class Replica:
    """A copy of ``source_vm`` kept as ``replica_vm`` on ``target_host`` (both are VM ids)."""

    id: str = attrs.field(validator=_non_empty)
    source_vm: str = attrs.field(validator=_non_empty)
    replica_vm: str = attrs.field(validator=_non_empty)
    target_host: str = attrs.field(validator=_non_empty)
    created_at: datetime = attrs.field(validator=_utc_required)
    state: ReplicaState = attrs.field(default=ReplicaState.INITIALIZING, converter=_replica_state)
    target_datastore: str | None = attrs.field(default=None, validator=_optional_label)

    def check_point(self, point: RecoveryPoint) -> None:
        """Refuse a recovery point that cannot belong to this replica."""
        point = as_instance(point, RecoveryPoint, "check_point")
        if point.replica != self.id:
            raise ValidationError.of(
                _label(point), f"belongs to replica {point.replica!r}, not {self.id!r}"
            )
        if point.created_at < self.created_at:
            raise ValidationError.of(
                _label(point),
                f"created_at {point.created_at.isoformat()} is older than its replica "
                f"{self.id!r} ({self.created_at.isoformat()})",
            )


@attrs.frozen
class RecoveryPoint:
    """An immutable state of a replica's disks that a failover can return to."""

    id: str = attrs.field(validator=_non_empty)
    replica: str = attrs.field(validator=_non_empty)
    created_at: datetime = attrs.field(validator=_utc_required)
    consistency: Consistency = attrs.field(default=Consistency.CRASH, converter=_point_consistency)
    tags: frozenset[str] = attrs.field(
        default=frozenset(), converter=_str_frozenset, validator=_each_name
    )
    pinned_until: datetime | None = attrs.field(default=None, validator=_utc_field)
    size_bytes: int = attrs.field(default=0, validator=_non_negative)

    def pinned_at(self, now: datetime) -> bool:
        return self.pinned_until is not None and self.pinned_until > aware_utc(now, "now")


class Secret:
    """A password or token that hides itself: in ``repr`` and ``str``, in ``attrs.asdict`` (it is
    no attrs class, so it stays this object), in JSON (``json`` cannot encode it) and in pickles
    (refused). :meth:`reveal` gives the text, for the one call that needs it.

    Two secrets are equal when their texts are (compared in constant time); the hash says nothing
    about the text.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str | Secret) -> None:
        if isinstance(text, Secret):
            text = text.reveal()
        if not isinstance(text, str) or not text:
            shown = "an empty string" if isinstance(text, str) else f"a {type(text).__name__}"
            raise ValidationError.of("secret", f"must be a non-empty string, got {shown}")
        object.__setattr__(self, "_text", text)

    def reveal(self) -> str:
        """The secret's text. Pass it straight to the call that needs it; never log it."""
        text: str = object.__getattribute__(self, "_text")
        return text

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Secret cannot be changed")

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    def __str__(self) -> str:
        return "<hidden>"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.reveal().encode(), other.reveal().encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled: it would carry its text in clear")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self


def _secret(value: str | Secret) -> Secret:
    return Secret(value)


@attrs.frozen(repr=False)
class Credentials:
    """A user name and a :class:`Secret`. The secret never appears in ``repr``, ``str``, logs,
    ``attrs.asdict`` or pickles; ``credentials.secret.reveal()`` gives its text.

    Credentials are equal when both the user name and the secret are.
    """

    username: str = attrs.field(validator=_non_empty)
    secret: Secret = attrs.field(converter=_secret, hash=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Credentials cannot be pickled: they would carry the secret in clear")

    def __copy__(self) -> Credentials:
        return self  # immutable: a copy is the same credentials

    def __deepcopy__(self, memo: object) -> Credentials:
        return self


# --- the inventory ------------------------------------------------------------------------------


@attrs.frozen
class Inventory:
    """A consistent snapshot of what a backend manages, checked for internal consistency.

    Lookups (:meth:`vm`, :meth:`host`, ...) raise :class:`NotFoundError` naming the missing item.
    """

    sites: tuple[Site, ...] = attrs.field(
        default=(), converter=_listed, validator=_each(Site, "a Site")
    )
    hosts: tuple[Host, ...] = attrs.field(
        default=(), converter=_listed, validator=_each(Host, "a Host")
    )
    datastores: tuple[Datastore, ...] = attrs.field(
        default=(), converter=_listed, validator=_each(Datastore, "a Datastore")
    )
    networks: tuple[Network, ...] = attrs.field(
        default=(), converter=_listed, validator=_each(Network, "a Network")
    )
    vms: tuple[VM, ...] = attrs.field(default=(), converter=_listed, validator=_each(VM, "a VM"))
    replicas: tuple[Replica, ...] = attrs.field(
        default=(), converter=_listed, validator=_each(Replica, "a Replica")
    )
    _index: _InventoryIndex = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        index = _InventoryIndex.build(self)
        object.__setattr__(self, "_index", index)

    # lookups
    def site(self, name: str) -> Site:
        return lookup(self._index.sites, name, "site")

    def host(self, name: str) -> Host:
        return lookup(self._index.hosts, name, "host")

    def datastore(self, name: str) -> Datastore:
        return lookup(self._index.datastores, name, "datastore")

    def network(self, site: str, name: str) -> Network:
        return lookup(self._index.networks, (site, name), f"network at site {site!r}")

    def has_network(self, site: str, name: str) -> bool:
        return (as_name(site, "has_network site"), as_name(name, "has_network")) in (
            self._index.networks
        )

    def vm(self, key: str) -> VM:
        """The VM with this id, or else with this name (names must then be unique)."""
        if not isinstance(key, str):
            raise ValidationError.of("VM", f"expected a VM id or name, got {key!r}")
        index = self._index
        found = index.vms_by_id.get(key)
        if found is not None:
            return found
        namesakes = index.namesakes.get(key)
        if namesakes is not None:
            sites = ", ".join(sorted(self.site_of(vm) for vm in namesakes))
            raise NotFoundError(f"the name {key!r} is ambiguous (VMs at sites {sites}); use the id")
        return lookup(index.vms_by_name, key, "VM with id or name")

    def vms_named(self, name: str) -> tuple[VM, ...]:
        """Every VM called ``name`` (at most one per site), in inventory order; O(1)."""
        if not isinstance(name, str):
            raise ValidationError.of("VM", f"expected a VM name, got {name!r}")
        index = self._index
        namesakes = index.namesakes.get(name)
        if namesakes is not None:
            return namesakes
        found = index.vms_by_name.get(name)
        return () if found is None else (found,)

    def replica(self, replica_id: str) -> Replica:
        return lookup(self._index.replicas, replica_id, "replica")

    def is_replicated(self, vm_id: str) -> bool:
        """Whether the VM with this id is the source of a replica (one not reversed)."""
        if not isinstance(vm_id, str):
            raise ValidationError.of("VM", f"expected a VM id, got {vm_id!r}")
        return vm_id in self._index.replica_by_source

    def replica_of(self, source_vm: str) -> Replica:
        """The replica whose source is this VM (id or name)."""
        vm = self.vm(source_vm)
        found = self._index.replica_by_source.get(vm.id)
        if found is None:
            raise NotFoundError(f"VM {vm.name!r} has no replica")
        return found

    def site_of(self, vm: VM | str) -> str:
        if not isinstance(vm, VM):
            vm = self.vm(vm)
        return self.host(vm.host).site

    def vms_at(self, site: str) -> tuple[VM, ...]:
        return tuple(vm for vm in self.vms if self.host(vm.host).site == site)


_T = TypeVar("_T")


def lookup(table: Mapping[Any, _T], key: Any, what: str) -> _T:
    """``table[key]``, or a NotFoundError saying which ``what`` is missing (a ValidationError
    when ``key`` cannot be a key at all, such as a list)."""
    try:
        return table[key]
    except KeyError:
        raise NotFoundError(f"no {what} {key!r}") from None
    except TypeError:  # unhashable: no name of anything
        raise ValidationError.of(what, f"{key!r} is not a name") from None


@attrs.frozen
class _InventoryIndex:
    """The inventory's lookups, built and checked in one pass per table: O(size), so a
    100,000-VM inventory is as cheap per VM as a small one (bar the CPU caches)."""

    sites: dict[str, Site]
    hosts: dict[str, Host]
    datastores: dict[str, Datastore]
    networks: dict[tuple[str, str], Network]
    vms_by_id: dict[str, VM]
    vms_by_name: dict[str, VM]  # the first VM of each name
    namesakes: dict[str, tuple[VM, ...]]  # every VM of each name several VMs share
    replicas: dict[str, Replica]
    replica_by_source: dict[str, Replica]

    @classmethod
    def build(cls, inv: Inventory) -> _InventoryIndex:
        findings: list[Finding] = []

        def unique(items: Iterable[Any], key: Any, what: str) -> dict[Any, Any]:
            table: dict[Any, Any] = {}
            for item in items:
                k = key(item)
                if k in table:
                    findings.append(Finding(f"{what} {k!r}", "appears twice in the inventory"))
                table[k] = item
            return table

        sites = unique(inv.sites, lambda s: s.name, "site")
        hosts = unique(inv.hosts, lambda h: h.name, "host")
        datastores = unique(inv.datastores, lambda d: d.name, "datastore")
        networks = unique(inv.networks, lambda n: (n.site, n.name), "network")

        placed: tuple[Host | Datastore | Network, ...] = (
            *inv.hosts,
            *inv.datastores,
            *inv.networks,
        )
        for thing in placed:
            if thing.site not in sites:
                findings.append(Finding(_label(thing), f"site {thing.site!r} does not exist"))

        vms_by_id: dict[str, VM] = {}
        vms_by_name: dict[str, VM] = {}
        namesakes: dict[str, list[VM]] = {}
        for vm in inv.vms:
            if vm.id in vms_by_id:
                findings.append(Finding(f"VM id {vm.id!r}", "appears twice in the inventory"))
            vms_by_id[vm.id] = vm
            first = vms_by_name.setdefault(vm.name, vm)
            if first is not vm:
                namesakes.setdefault(vm.name, [first]).append(vm)
            host = hosts.get(vm.host)
            if host is None:
                findings.append(Finding(f"VM {vm.name!r}", f"host {vm.host!r} does not exist"))
                continue
            if vm.datastore is not None and vm.datastore not in datastores:
                findings.append(
                    Finding(f"VM {vm.name!r}", f"datastore {vm.datastore!r} does not exist")
                )
            for nic in vm.nics:
                if (host.site, nic.network) not in networks:
                    findings.append(
                        Finding(
                            f"VM {vm.name!r} NIC {nic.mac}",
                            f"network {nic.network!r} does not exist at site {host.site!r}",
                        )
                    )
        # Only names several VMs share can clash at a site: check those alone.
        for name, vms in namesakes.items():
            seen_at: dict[str, VM] = {}
            for vm in vms:
                host = hosts.get(vm.host)
                if host is None:
                    continue
                earlier = seen_at.get(host.site)
                if earlier is not None:
                    findings.append(
                        Finding(
                            f"VM {name!r}",
                            f"two VMs have this name at site {host.site!r} "
                            f"(ids {earlier.id!r} and {vm.id!r})",
                        )
                    )
                seen_at[host.site] = vm

        replicas: dict[str, Replica] = {}
        replica_by_source: dict[str, Replica] = {}
        for replica in inv.replicas:
            if replica.id in replicas:
                findings.append(
                    Finding(f"replica {replica.id!r}", "appears twice in the inventory")
                )
            replicas[replica.id] = replica
            for role, vm_id in (("source", replica.source_vm), ("replica", replica.replica_vm)):
                if vm_id not in vms_by_id:
                    findings.append(Finding(_label(replica), f"{role} VM {vm_id!r} does not exist"))
            if replica.target_host not in hosts:
                findings.append(
                    Finding(_label(replica), f"target host {replica.target_host!r} does not exist")
                )
            if replica.state is not ReplicaState.REVERSED:
                replica_by_source[replica.source_vm] = replica

        if findings:
            raise ValidationError(findings)
        return cls(
            sites=sites,
            hosts=hosts,
            datastores=datastores,
            networks=networks,
            vms_by_id=vms_by_id,
            vms_by_name=vms_by_name,
            namesakes={name: tuple(vms) for name, vms in namesakes.items()},
            replicas=replicas,
            replica_by_source=replica_by_source,
        )
