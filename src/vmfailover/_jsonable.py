"""Values as JSON holds them: the one conversion every result's ``as_dict`` uses.

Datetimes become ISO 8601 text, enums their values, mappings dicts and sequences lists, at any
depth; anything else is left as it is. A leaf: it imports nothing of ours, so any layer may use it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = ["jsonable", "jsonable_fields"]


def jsonable(value: object) -> object:
    """``value`` with every datetime, enum, mapping and sequence in it as JSON holds them."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def jsonable_fields(instance: Any) -> dict[str, Any]:
    """The fields of the attrs instance ``instance``, by name, as JSON holds them."""
    result = jsonable(attrs.asdict(instance))
    assert isinstance(result, dict)
    return result
