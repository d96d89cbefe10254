"""Plain data (what a TOML or YAML parser returns) to document classes and back, with cattrs.

cattrs does the walking: it builds each document class from a table, refuses keys the class does
not have, and collects every problem with the path to it (``order.vms[2].timeout``). This module
adds what a plan file needs on top: strict scalar hooks (a string is not a number, ``true`` is not
1, a list is not a string), the file's value types (durations, date-times, prefix lengths ...),
tagged tables for probes and steps, and the translation of cattrs' exception groups into our
:class:`~vmfailover.errors.Finding` list. Hostile values (huge numbers, NaN, deep nesting, the
wrong type anywhere) end as findings, never as a raw ``TypeError`` or ``ValueError``.
"""

from __future__ import annotations

import difflib
import enum
import json
import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from vmfailover.errors import Finding, ValidationError
from vmfailover.model import parse_seconds
from vmfailover.plan.documents import (
    PROBE_TAGS,
    STEP_TAGS,
    CalendarSpan,
    HTTPCode,
    Port,
    PositiveInt,
    PrefixLength,
    ProbeDocument,
    RecoveryPointDocument,
    RetentionCount,
    Seconds,
    StepItem,
    Text,
    Timestamp,
)
from vmfailover.policy.retention import CalendarDuration

__all__ = ["Path", "describe", "format_path", "format_seconds", "structure", "unstructure"]

T = TypeVar("T")

Path = tuple[str | int, ...]
"""Where a value sits in a file: keys and list positions from the top."""

#: Text longer than this is refused where a name, pattern or duration is expected.
MAX_TEXT = 4096


def format_path(path: Path) -> str:
    """``("order", "vms", 2, "timeout")`` -> ``order.vms[2].timeout``; keys that are not plain
    words are quoted: ``network.production["Prod App"]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text or "plan file"


def describe(value: object) -> str:
    """A value as a message names it: its file type, and the value itself when short."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"a {value.bit_length()}-bit number" if value.bit_length() > 64 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        shown = json.dumps(value[:60], ensure_ascii=False)
        return f"text {shown}{'...' if len(value) > 60 else ''}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, time):
        return f"the time {value.isoformat()}"
    return type(value).__name__


class _Invalid(Exception):
    """A value that does not fit its key; ``at`` extends the path (a tag's own key)."""

    def __init__(self, message: str, hint: str | None = None, at: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.at = at


# --- scalar hooks -------------------------------------------------------------------------------


def _text(value: object, _: object = None) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be text, got {describe(value)}")
    if not value.strip():
        raise _Invalid("must not be empty")
    if len(value) > MAX_TEXT:
        raise _Invalid(f"is {len(value)} characters long; at most {MAX_TEXT} are allowed")
    return value


def _free_text(value: object, _: object = None) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be text, got {describe(value)}")
    return value


def _bool(value: object, _: object = None) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {describe(value)}")
    return value


def _whole(value: object, what: str = "a whole number") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"must be {what}, got {describe(value)}")
    return value


def _bounded(low: int, high: int | None, what: str) -> Callable[[object, object], int]:
    def hook(value: object, _: object = None) -> int:
        number = _whole(value, what)
        if number < low or (high is not None and number > high):
            raise _Invalid(f"must be {what}, got {describe(value)}")
        return number

    return hook


def _seconds(value: object, _: object = None) -> float:
    if isinstance(value, str) and len(value) > 64:
        raise _Invalid("is not a duration (too long)", "for example '15m' or '1h30m'")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid(
            f"must be a duration, got {describe(value)}",
            "give seconds as a number, or text such as '90s', '15m' or '1h30m'",
        )
    try:
        return parse_seconds(value, "duration")
    except ValidationError as error:
        message = error.findings[0].message
        if isinstance(value, int | float):
            # parse_seconds repeats the value; say it the way the file wrote it.
            message = message.replace(repr(value), describe(value))
        raise _Invalid(message, error.findings[0].hint) from None


def _timestamp(value: object, _: object = None) -> datetime:
    moment: datetime
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid(
                f"{describe(value)} is not a date-time",
                "write it as ISO 8601 with a time zone, for example 2024-05-01T12:00:00Z",
            ) from None
    else:
        raise _Invalid(
            f"must be a date-time with a time zone, got {describe(value)}",
            "for example 2024-05-01T12:00:00Z",
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _Invalid(
            f"{moment.isoformat()} has no time zone, so its instant is unknown",
            "add one, for example Z for UTC or +02:00",
        )
    return moment


def _calendar_span(value: object, _: object = None) -> str:
    text = _text(value)
    if len(text) > 64:
        raise _Invalid("is not a calendar span (too long)", "for example '7d' or '1y6m'")
    try:
        CalendarDuration.parse(text, "span")
    except ValidationError as error:
        raise _Invalid(error.findings[0].message, error.findings[0].hint) from None
    return text


_POINT_WORDS = typing.get_args(typing.get_args(RecoveryPointDocument)[0])


def _point(value: object, _: object = None) -> str | datetime:
    if isinstance(value, str) and value in _POINT_WORDS:
        return value
    if isinstance(value, datetime | str):
        try:
            return _timestamp(value)
        except _Invalid as problem:
            if isinstance(value, datetime):
                raise
            raise _Invalid(
                f"{describe(value)} is not a recovery point choice",
                "use 'latest', 'latest-application-consistent' or a date-time with a time zone",
            ) from problem
    raise _Invalid(
        f"must be 'latest', 'latest-application-consistent' or a date-time, got {describe(value)}"
    )


def _recovery_point(value: object, _: object = None) -> object:
    if isinstance(value, dict):
        return _gather_mapping(value, _text, _point, dict)
    return _point(value)


def _enum_hook(kind: type[enum.Enum]) -> Callable[[object, object], enum.Enum]:
    allowed = [member.value for member in kind]

    def hook(value: object, _: object = None) -> enum.Enum:
        if isinstance(value, str) and value in allowed:
            return kind(value)
        raise _Invalid(
            f"must be one of {', '.join(json.dumps(v) for v in allowed)}; got {describe(value)}"
        )

    return hook


# --- containers ---------------------------------------------------------------------------------


def _gather_sequence(value: object, item: Callable[[Any], Any], kind: type) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise _Invalid(f"must be a list, got {describe(value)}")
    out: list[Any] = []
    errors: list[Exception] = []
    for index, element in enumerate(value):
        try:
            out.append(item(element))
        except Exception as error:
            error.add_note(IterableValidationNote(f"@ index {index}", index, kind))
            errors.append(error)
    if errors:
        raise IterableValidationError("invalid items", errors, kind)
    return tuple(out)


def _gather_mapping(
    value: object, key: Callable[[Any], Any], item: Callable[[Any], Any], kind: type
) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"must be a table, got {describe(value)}")
    out: dict[Any, Any] = {}
    errors: list[Exception] = []
    for name, element in value.items():
        try:
            out[key(name)] = item(element)
        except Exception as error:
            label = name if isinstance(name, str) else describe(name)
            error.add_note(IterableValidationNote(f"@ key {label}", label, kind))
            errors.append(error)
    if errors:
        raise IterableValidationError("invalid entries", errors, kind)
    return out


def _tagged(
    converter: cattrs.Converter, tags: Mapping[type, str], default: str | None
) -> Callable[[object, object], object]:
    by_tag = {tag: kind for kind, tag in tags.items()}
    names = ", ".join(json.dumps(tag) for tag in by_tag)

    def hook(value: object, _: object = None) -> object:
        if not isinstance(value, dict):
            raise _Invalid(f"must be a table, got {describe(value)}")
        tag = value.get("type", default)
        if tag is None:
            raise _Invalid("needs a type", f"one of {names}", at=("type",))
        if not isinstance(tag, str) or tag not in by_tag:
            raise _Invalid(f"must be one of {names}; got {describe(tag)}", at=("type",))
        rest = {key: item for key, item in value.items() if key != "type"}
        return converter.structure(rest, by_tag[tag])

    return hook


def _tag_first(converter: cattrs.Converter, kind: type, tag: str) -> Callable[[Any], Any]:
    plain: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        kind, converter, _cattrs_omit_if_default=True
    )

    def hook(value: Any) -> dict[str, Any]:
        return {"type": tag, **plain(value)}

    return hook


def _is_tuple(kind: Any) -> bool:
    return typing.get_origin(kind) is tuple


def _is_dict(kind: Any) -> bool:
    return typing.get_origin(kind) is dict


def _is_enum(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, enum.Enum)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(
        forbid_extra_keys=True, detailed_validation=True, omit_if_default=True
    )
    scalar_hooks: dict[Any, Callable[[object, object], object]] = {
        str: _free_text,
        Text: _text,
        bool: _bool,
        int: lambda value, _: _whole(value),
        PositiveInt: _bounded(1, None, "a whole number >= 1"),
        RetentionCount: _bounded(-1, None, "-1 (all), 0 (off) or a positive whole number"),
        Port: _bounded(1, 65535, "a TCP port 1-65535"),
        HTTPCode: _bounded(100, 599, "an HTTP status code 100-599"),
        PrefixLength: _bounded(0, 128, "a prefix length 0-128"),
        Seconds: _seconds,
        Timestamp: _timestamp,
        CalendarSpan: _calendar_span,
        RecoveryPointDocument: _recovery_point,
    }
    for kind, hook in scalar_hooks.items():
        converter.register_structure_hook(kind, hook)

    def tuple_hook(kind: Any) -> Callable[[object, object], object]:
        element = typing.get_args(kind)[0]
        item = converter.get_structure_hook(element)
        return lambda value, _: _gather_sequence(value, lambda v: item(v, element), kind)

    def dict_hook(kind: Any) -> Callable[[object, object], object]:
        key_type, value_type = typing.get_args(kind)
        key, item = converter.get_structure_hook(key_type), converter.get_structure_hook(value_type)
        return lambda value, _: _gather_mapping(
            value, lambda k: key(k, key_type), lambda v: item(v, value_type), kind
        )

    def class_hook(kind: Any) -> Callable[[object, object], object]:
        build = make_dict_structure_fn(
            kind,
            converter,
            _cattrs_forbid_extra_keys=True,
            _cattrs_detailed_validation=True,
        )

        def hook(value: object, _: object = None) -> object:
            if not isinstance(value, dict):
                raise _Invalid(f"must be a table, got {describe(value)}")
            return build(value, kind)

        return hook

    converter.register_structure_hook_factory(_is_enum, _enum_hook)
    converter.register_structure_hook_factory(_is_tuple, tuple_hook)
    converter.register_structure_hook_factory(_is_dict, dict_hook)
    converter.register_structure_hook_factory(attrs.has, class_hook)
    probe = _tagged(converter, PROBE_TAGS, None)
    converter.register_structure_hook(ProbeDocument, probe)
    converter.register_structure_hook(
        ProbeDocument | None, lambda value, _: None if value is None else probe(value, None)
    )
    converter.register_structure_hook(StepItem, _tagged(converter, STEP_TAGS, "step"))

    converter.register_unstructure_hook(Seconds, format_seconds)
    # StrEnum before str in the MRO: members are written as their plain values.
    converter.register_unstructure_hook(enum.StrEnum, lambda member: member.value)
    for tags in (PROBE_TAGS, STEP_TAGS):
        for kind, tag in tags.items():
            converter.register_unstructure_hook(kind, _tag_first(converter, kind, tag))
    return converter


def format_seconds(seconds: float) -> str | float:
    """A duration as a file writes it: ``"1h30m"`` for whole seconds, else the number."""
    if not seconds.is_integer() or not 0 < seconds < 1e9:
        return seconds
    whole = int(seconds)
    parts = []
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


_CONVERTER = _make_converter()


def structure(data: object, kind: type[T]) -> T:
    """``data`` (plain values from a parser) as a ``kind`` document; every problem at once, as a
    :class:`ValidationError` whose findings name the path, e.g. ``order.vms[2].timeout``."""
    try:
        return _CONVERTER.structure(data, kind)
    except RecursionError:
        raise ValidationError.of("plan file", "nests too deeply") from None
    except Exception as error:
        raise ValidationError(list(_findings(error, ()))) from None


def unstructure(document: object) -> dict[str, Any]:
    """A document as plain values (tables, lists, text, numbers, date-times), defaults left out."""
    data = _CONVERTER.unstructure(document)
    assert isinstance(data, dict)
    return data


# --- cattrs' exception groups to findings -------------------------------------------------------


def _findings(error: BaseException, path: Path) -> Iterator[Finding]:
    if isinstance(error, IterableValidationError | ClassValidationError):
        for inner in error.exceptions:
            yield from _findings(inner, path + _note_path(inner))
        return
    if isinstance(error, _Invalid):
        yield Finding(format_path(path + error.at), error.message, hint=error.hint)
    elif isinstance(error, ValidationError):
        for finding in error.findings:
            yield Finding(
                format_path(path), f"{finding.item}: {finding.message}", hint=finding.hint
            )
    elif isinstance(error, KeyError):
        yield Finding(format_path(path), "is required")
    elif isinstance(error, ForbiddenExtraKeysError):
        known = [field.name for field in attrs.fields(error.cl)]
        for key in sorted(error.extra_fields):
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            yield Finding(format_path((*path, key)), "is not a known key", hint=hint)
    elif isinstance(error, RecursionError):
        yield Finding(format_path(path), "nests too deeply")
    else:
        # A converter bug must still reach the user as a finding naming the place.
        yield Finding(format_path(path), f"cannot be read ({type(error).__name__}: {error})")


def _note_path(error: BaseException) -> Path:
    for note in getattr(error, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            return (note.name,)
        if isinstance(note, IterableValidationNote):
            index = note.index
            return (index if isinstance(index, int | str) else str(index),)
    return ()
