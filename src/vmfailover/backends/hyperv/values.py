"""What a pipeline's output becomes on our side: plain Python, whatever pypsrp handed over.

pypsrp deserializes a .NET object into a ``GenericComplexObject`` (type names, adapted and
extended properties, ``ToString``), an enum into such an object whose single value is the number,
and leaves a ``DateTime`` as its text. :func:`plain` turns these into :class:`PSObject`,
:class:`PSEnum`, lists and primitives, so the rest of the backend reads properties by name, compares
enums by member name (numbers drift between Hyper-V module versions) and parses times in one place.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

__all__ = ["PSEnum", "PSObject", "as_datetime", "as_uuid", "enum_name", "plain"]

_DESERIALIZED = "Deserialized."


@attrs.frozen
class PSEnum:
    """A .NET enum value: its type, member name and number."""

    type_name: str
    name: str
    value: int

    def __str__(self) -> str:
        return self.name


@attrs.frozen
class PSObject:
    """A deserialized .NET object; ``type_names`` without the ``Deserialized.`` prefix."""

    type_names: tuple[str, ...]
    properties: Mapping[str, Any]
    to_string: str = ""

    @property
    def type_name(self) -> str:
        return self.type_names[0] if self.type_names else ""

    def is_a(self, type_name: str) -> bool:
        return type_name in self.type_names

    def get(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)


def _strip(name: str) -> str:
    return name[len(_DESERIALIZED) :] if name.startswith(_DESERIALIZED) else name


def plain(value: Any) -> Any:
    """A pypsrp value as :class:`PSObject` / :class:`PSEnum` / list / dict / primitive."""
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    types = getattr(value, "types", None)
    if types is None or not hasattr(value, "adapted_properties"):
        return value
    names = tuple(_strip(str(name)) for name in types)
    to_string = getattr(value, "to_string", None)
    text = "" if to_string is None else str(to_string)
    sets = list(getattr(value, "property_sets", []) or [])
    if "System.Enum" in names and sets and isinstance(sets[0], int):
        return PSEnum(names[0], text, int(sets[0]))
    properties: dict[str, Any] = {}
    for source in (value.adapted_properties, getattr(value, "extended_properties", {})):
        for key, item in source.items():
            properties[str(key)] = plain(item)
    return PSObject(names, properties, text)


def enum_name(value: Any) -> str | None:
    """An enum property as its member name (a number or text is taken as it comes)."""
    if value is None:
        return None
    if isinstance(value, PSEnum):
        return value.name
    if isinstance(value, PSObject):
        return value.to_string or None
    return str(value)


def as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


_DATETIME = re.compile(
    r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?P<fraction>\.\d+)?(?P<zone>Z|[+-]\d\d:\d\d)?$"
)


def as_datetime(value: Any) -> datetime | None:
    """A ``DateTime`` as CLIXML writes it (seven fractional digits, offset or Z), in UTC.

    A time without an offset is a host-local ``DateTime`` of unknown zone; it is read as UTC,
    the kind Hyper-V's replication times carry.
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    match = _DATETIME.match(value.strip())
    if match is None:
        return None
    micro = (match["fraction"] or ".0")[1:7].ljust(6, "0")
    zone = match["zone"] or "+00:00"
    if zone == "Z":
        zone = "+00:00"
    return datetime.fromisoformat(f"{match['base']}.{micro}{zone}").astimezone(UTC)
