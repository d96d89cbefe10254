"""The JSON Schema of plan files, generated from the document classes.

The schema describes a file's content as JSON sees it (a TOML date-time is ISO 8601 text there),
so editors and CI can check plan files without Python. It is generated from
:mod:`vmfailover.plan.documents` (field types, defaults and ``metadata["doc"]`` descriptions), so
it cannot drift from what :func:`vmfailover.plan.files.load` reads; the copies shipped in
``vmfailover/plan/schemas/`` are checked against the generator by the test suite, and the
plan-file reference page of the documentation is generated from the schema.
"""

from __future__ import annotations

import enum
import json
import typing
from importlib import resources
from types import NoneType, UnionType
from typing import Any

import attrs

from vmfailover.plan.documents import (
    FORMAT_VERSION,
    PROBE_TAGS,
    STEP_TAGS,
    CalendarSpan,
    HTTPCode,
    PlanDocument,
    Port,
    PositiveInt,
    PrefixLength,
    ProbeDocument,
    RecoveryPointDocument,
    RetentionCount,
    RetentionDocument,
    Seconds,
    StepItem,
    Text,
    Timestamp,
)

__all__ = ["SCHEMA_FILES", "generate", "schema"]

#: Document class -> the file name its schema ships as.
SCHEMA_FILES: dict[type, str] = {
    PlanDocument: "plan.schema.json",
    RetentionDocument: "retention-policy.schema.json",
}

_DURATION = r"^\s*(\d{1,9}(\.\d{1,9})?\s*[smhdwSMHDW]\s*)+$"
_CENTURY = 100 * 366 * 86_400

_DEFINITIONS: dict[str, dict[str, Any]] = {
    "text": {"type": "string", "minLength": 1, "pattern": r"\S"},
    "duration": {
        "description": "Seconds as a number, or text such as `90s`, `15m`, `1h30m`, `2d`, `1w`.",
        "oneOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": _CENTURY},
            {"type": "string", "pattern": _DURATION},
        ],
    },
    "date-time": {
        "description": "A date-time with a time zone (a TOML date-time, or ISO 8601 text).",
        "type": "string",
        "format": "date-time",
        "pattern": r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$",
    },
    "calendar-span": {
        "description": "Years, months, days and hours, such as `7d` or `1y6m`.",
        "type": "string",
        "pattern": r"^\s*(\d{1,6}[ymdh])+\s*$",
    },
}

_SCALARS: dict[Any, dict[str, Any]] = {
    Text: {"$ref": "#/$defs/text"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    PositiveInt: {"type": "integer", "minimum": 1},
    RetentionCount: {"type": "integer", "minimum": -1},
    Port: {"type": "integer", "minimum": 1, "maximum": 65535},
    HTTPCode: {"type": "integer", "minimum": 100, "maximum": 599},
    PrefixLength: {"type": "integer", "minimum": 0, "maximum": 128},
    Seconds: {"$ref": "#/$defs/duration"},
    Timestamp: {"$ref": "#/$defs/date-time"},
    CalendarSpan: {"$ref": "#/$defs/calendar-span"},
}


class _Builder:
    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}

    def of(self, kind: Any) -> dict[str, Any]:
        if kind in _SCALARS:
            return dict(_SCALARS[kind])
        if kind == RecoveryPointDocument:
            return self._recovery_point()
        if kind == ProbeDocument:
            return self._tagged(PROBE_TAGS, required=True)
        if kind == StepItem:
            return self._tagged(STEP_TAGS, required=False)
        origin = typing.get_origin(kind)
        arguments = typing.get_args(kind)
        if origin in (UnionType, typing.Union):
            others = [argument for argument in arguments if argument is not NoneType]
            return self.of(others[0] if len(others) == 1 else typing.Union[tuple(others)])  # noqa: UP007
        if origin is tuple:
            return {"type": "array", "items": self.of(arguments[0])}
        if origin is dict:
            return {
                "type": "object",
                "propertyNames": self.of(arguments[0]),
                "additionalProperties": self.of(arguments[1]),
            }
        if origin is typing.Literal:
            return {"enum": list(arguments)}
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return {"enum": [member.value for member in kind]}
        if attrs.has(kind):
            return self._class(kind)
        raise TypeError(f"no schema for {kind!r}")

    def _class(self, kind: type, tag: tuple[str, bool] | None = None) -> dict[str, Any]:
        name = kind.__name__
        if name not in self.definitions:
            self.definitions[name] = {}  # recursion guard
            properties: dict[str, Any] = {}
            required: list[str] = []
            if tag is not None:
                value, needed = tag
                properties["type"] = {"const": value, "description": "What this table is."}
                if needed:
                    required.append("type")
                else:
                    properties["type"]["default"] = value
            hints = typing.get_type_hints(kind)
            for field in attrs.fields(kind):
                entry = self.of(hints[field.name])
                entry["description"] = field.metadata.get("doc", "")
                default = _default(field)
                if default is not _NO_DEFAULT:
                    entry["default"] = default
                else:
                    required.append(field.name)
                properties[field.name] = entry
            definition: dict[str, Any] = {
                "title": kind.__name__,
                "description": " ".join((kind.__doc__ or "").split()),
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
            }
            if required:
                definition["required"] = required
            self.definitions[name] = definition
        return {"$ref": f"#/$defs/{name}"}

    def _tagged(self, tags: dict[type, str], *, required: bool) -> dict[str, Any]:
        return {"oneOf": [self._class(kind, (tag, required)) for kind, tag in tags.items()]}

    def _recovery_point(self) -> dict[str, Any]:
        words: dict[str, Any] = {"enum": ["latest", "latest-application-consistent"]}
        moment = {"$ref": "#/$defs/date-time"}
        return {
            "anyOf": [
                words,
                moment,
                {
                    "type": "object",
                    "propertyNames": {"$ref": "#/$defs/text"},
                    "additionalProperties": {"anyOf": [words, moment]},
                },
            ]
        }


class _NoDefault:
    pass


_NO_DEFAULT = _NoDefault()


def _default(field: attrs.Attribute[Any]) -> Any:
    default = field.default
    if default is attrs.NOTHING:
        return _NO_DEFAULT
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()  # type: ignore[union-attr]
    if isinstance(default, enum.Enum):
        return default.value
    if isinstance(default, tuple):
        return list(default)
    return default


def generate(document: type = PlanDocument) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of files holding ``document``."""
    builder = _Builder()
    root = builder.of(document)
    name = root["$ref"].rsplit("/", 1)[1]
    top = builder.definitions.pop(name)
    title = "vmfailover plan file" if document is PlanDocument else "vmfailover retention policy"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:vmfailover:{SCHEMA_FILES[document].removesuffix('.schema.json')}:"
        f"{FORMAT_VERSION}",
        **top,
        "title": f"{title} (format {FORMAT_VERSION})",
        "$defs": {**_DEFINITIONS, **dict(sorted(builder.definitions.items()))},
    }


def schema(document: type = PlanDocument) -> dict[str, Any]:
    """The JSON Schema that ships with the package for ``document`` files."""
    text = resources.files("vmfailover.plan").joinpath("schemas", SCHEMA_FILES[document])
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


def render(document: type = PlanDocument) -> str:
    """:func:`generate` as the text of the shipped file."""
    return json.dumps(generate(document), indent=2, ensure_ascii=False) + "\n"
