"""Reading and writing TOML and YAML text safely, with the place of every problem.

TOML is read with the standard library's :mod:`tomllib` and written with ``tomli-w``. YAML is read
with PyYAML's parser and composer only: no Python objects are ever constructed from tags, and a
plan file has no use for YAML's riskier parts, so they are refused with the line and column where
they appear: aliases and anchors (the "billion laughs" expansion), explicit tags (``!!python/...``),
duplicate keys (PyYAML would silently keep the last), keys that are not text, and nesting deeper
than :data:`MAX_DEPTH`. Scalars resolve by the YAML 1.2 core schema (``yes`` and ``on`` stay text,
``012`` is twelve), so a VM called ``no`` is a name, not ``false``.

YAML keeps the line and column of every key and list item, so findings about a YAML file's
content name the place too (``order.vms[2].timeout (line 14, column 5)``); :mod:`tomllib` gives
positions for syntax errors only.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import tomli_w
import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver, Resolver
from yaml.scanner import Scanner

from vmfailover.errors import ValidationError
from vmfailover.plan.convert import Path, describe, format_path

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "FileFormat",
    "Located",
    "read",
    "sniff",
    "toml_locator",
    "write",
]

#: A plan file larger than this is refused before it is parsed.
MAX_BYTES = 16 * 1024 * 1024
#: Tables and lists nested deeper than this are refused (a plan needs about six levels).
MAX_DEPTH = 64


class FileFormat(enum.StrEnum):
    """The text formats plan files are written in."""

    TOML = "toml"
    YAML = "yaml"


Located = Callable[[str], str]
"""Adds the place in the file to a finding's item, where the format knows it."""


def _unlocated(item: str) -> str:
    return item


def _at(line: int, column: int) -> str:
    return f"line {line}, column {column}"


def _decode(content: str | bytes) -> str:
    if isinstance(content, bytes):
        if len(content) > MAX_BYTES:
            raise ValidationError.of("plan file", f"is larger than {MAX_BYTES} bytes")
        try:
            return content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ValidationError.of(
                "plan file", f"is not UTF-8 text (byte {error.start} cannot be decoded)"
            ) from None
    if len(content) > MAX_BYTES:
        raise ValidationError.of("plan file", f"is larger than {MAX_BYTES} characters")
    return content.removeprefix("\ufeff")


_TOML_LINE = re.compile(r"^\s*(\[|[A-Za-z0-9_\"'.-]+\s*=)")


def sniff(text: str) -> FileFormat:
    """TOML if a line opens a table or assigns a key with ``=``, else YAML."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _TOML_LINE.match(line):
            return FileFormat.TOML
        if stripped.startswith(("---", "-")) or ":" in stripped:
            return FileFormat.YAML
    return FileFormat.TOML


def read(content: str | bytes, file_format: FileFormat) -> tuple[dict[str, Any], Located]:
    """The top-level table of a file, and how to locate findings about its content."""
    text = _decode(content)
    if file_format is FileFormat.TOML:
        return _read_toml(text), _unlocated
    return _read_yaml(text)


# --- TOML ---------------------------------------------------------------------------------------

_TOML_PLACE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _read_toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Python 3.14 gives msg, lineno and colno; earlier versions put the place in the text.
        message = str(getattr(error, "msg", None) or error)
        place = _TOML_PLACE.search(message)
        line, column = getattr(error, "lineno", None), getattr(error, "colno", None)
        if place:
            line, column = int(place.group(1)), int(place.group(2))
            message = message[: place.start()]
        message = message.replace("(at end of document)", "at the end of the file").strip()
        item = _at(line, column) if line is not None and column is not None else "plan file"
        raise ValidationError.of(item, f"is not valid TOML: {message}") from None
    except RecursionError:
        raise ValidationError.of("plan file", f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # tomllib's int() of a number past the interpreter's digit limit
        long = _LONG_NUMBER.search(text)
        item = "plan file"
        if long is not None:
            line = text.count("\n", 0, long.start()) + 1
            item = _at(line, long.start() - text.rfind("\n", 0, long.start()))
        raise ValidationError.of(item, "holds a number too long to be a setting") from None


_LONG_NUMBER = re.compile(r"[0-9_]{4000,}")

_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]")
_TOML_KEY = re.compile(r"""^\s*(?:([A-Za-z0-9_-]+)|"([^"\\]*)"|'([^']*)')\s*=""")


def toml_locator(text: str) -> Located:
    """How to locate findings about a TOML file's content, which :mod:`tomllib` does not say:
    the line and column of each table header (``[[vcenter]]`` counted as ``vcenter[0]``,
    ``vcenter[1]``...) and of each key assigned on a line of its own (``vcenter[1].port``).
    Dotted keys and values spanning lines are located by the table they are in."""
    places: dict[str, tuple[int, int]] = {}
    counts: dict[Path, int] = {}
    table: Path = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = _TOML_HEADER.match(line)
        if header is not None:
            brackets, name = header.groups()
            table = tuple(name.split("."))
            if brackets == "[[":
                places.setdefault(format_path(table), (number, header.start(1) + 1))
                index = counts.get(table, 0)
                counts[table] = index + 1
                table = (*table, index)
            places.setdefault(format_path(table), (number, header.start(1) + 1))
            continue
        key = _TOML_KEY.match(line)
        if key is not None:
            name = next(group for group in key.groups() if group is not None)
            column = line.index(name) + 1 if name else 1
            places.setdefault(format_path((*table, name)), (number, column))
    return lambda item: _locate(places, item)


def write_toml(data: dict[str, Any]) -> str:
    return tomli_w.dumps(data)


# --- YAML ---------------------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

# The YAML 1.2 core schema: what a plain scalar is, if not text.
_CORE_SCALARS: tuple[tuple[str, re.Pattern[str], list[str]], ...] = (
    (_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    (
        _FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    ),
)


class _CoreResolver(BaseResolver):
    """Plain scalars resolve by the YAML 1.2 core schema only."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 (PyYAML's class-level table)


for _tag, _pattern, _first in _CORE_SCALARS:
    _CoreResolver.add_implicit_resolver(_tag, _pattern, _first)


class _Refused(Exception):
    def __init__(self, message: str, mark: Any, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.hint = hint


class _PlanComposer(Reader, Scanner, Parser, Composer, _CoreResolver):
    """PyYAML's reader, scanner, parser and composer; refuses aliases, anchors, tags, depth."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreResolver.__init__(self)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                f"the alias *{event.anchor} is not allowed in a plan file",
                event.start_mark,
                "write the value out; plan files use no anchors and aliases",
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(
                f"the anchor &{anchor} is not allowed in a plan file",
                event.start_mark,
                "write the value out; plan files use no anchors and aliases",
            )
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            raise _Refused(
                f"the tag {tag} is not allowed in a plan file",
                event.start_mark,
                "remove it: plan files hold only text, numbers, true/false, lists and tables",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nests deeper than {MAX_DEPTH} levels", event.start_mark)
            node: Node = super().compose_node(parent, index)  # type: ignore[assignment]
        finally:
            self._depth -= 1
        return node


class _Values:
    """Plain values from composed nodes, remembering where each key and list item is."""

    def __init__(self) -> None:
        self.places: dict[str, tuple[int, int]] = {}

    def value(self, node: Node, path: Path) -> Any:
        self.places[format_path(path)] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, ScalarNode):
            return _scalar(node)
        if isinstance(node, SequenceNode):
            return [self.value(item, (*path, index)) for index, item in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        table: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, ScalarNode) else key_node
            if not isinstance(key, str):
                what = "a list or table" if isinstance(key, Node) else describe(key)
                raise _Refused(
                    f"a key must be text, got {what}",
                    key_node.start_mark,
                    "quote it",
                )
            if key in table:
                raise _Refused(f"the key {key!r} appears twice in this table", key_node.start_mark)
            table[key] = self.value(value_node, (*path, key))
            self.places[format_path((*path, key))] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
        return table

    def locate(self, item: str) -> str:
        return _locate(self.places, item)


def _locate(places: dict[str, tuple[int, int]], item: str) -> str:
    """``item`` with the line and column of the longest known path it starts with."""
    best = ""
    for known in places:
        if (
            len(known) > len(best)
            and item.startswith(known)
            and item[len(known) : len(known) + 1] in ("", ".", "[")
        ):
            best = known
    if not best and (item != "plan file" or item not in places):
        return item
    line, column = places[best or "plan file"]
    return f"{item} ({_at(line, column)})"


def _scalar(node: ScalarNode) -> Any:
    text: str = node.value
    if node.tag == _NULL:
        return None
    if node.tag == _BOOL:
        return text.lower() == "true"
    if node.tag == _INT:
        try:
            if text.startswith(("0o", "0x")):
                return int(text[2:], 8 if text[1] == "o" else 16)
            return int(text, 10)
        except ValueError:
            raise _Refused(f"the number {text[:20]}... is too long", node.start_mark) from None
    if node.tag == _FLOAT:
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        if lowered == ".nan":
            return float("nan")
        return float(text)
    return text


def _read_yaml(text: str) -> tuple[dict[str, Any], Located]:
    values = _Values()
    try:
        composer = _PlanComposer(text)
        try:
            node = composer.get_single_node()
        finally:
            composer.dispose()
        data = None if node is None else values.value(node, ())
    except _Refused as refused:
        mark = refused.mark
        raise ValidationError.of(
            _at(mark.line + 1, mark.column + 1), refused.message, refused.hint
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "cannot be parsed"
        item = _at(mark.line + 1, mark.column + 1) if mark is not None else "plan file"
        raise ValidationError.of(item, f"is not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ValidationError.of("plan file", f"is not valid YAML: {error}") from None
    except RecursionError:
        raise ValidationError.of("plan file", f"nests deeper than {MAX_DEPTH} levels") from None
    if data is None:
        raise ValidationError.of("plan file", "is empty", "a plan needs at least name and vms")
    if not isinstance(data, dict):
        raise ValidationError.of(
            "plan file", f"must be a table of keys (name, vms, ...), got {describe(data)}"
        )
    return data, values.locate


class _PlanDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting any text that either YAML 1.1 or 1.2 would read as
    something else, writing date-times as ISO 8601 text and keeping key order."""

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's class-level table)
        key: list(value) for key, value in Resolver.yaml_implicit_resolvers.items()
    }


for _tag, _pattern, _first in _CORE_SCALARS:
    _PlanDumper.add_implicit_resolver(_tag, _pattern, _first)


def _represent_datetime(dumper: yaml.SafeDumper, value: datetime) -> yaml.ScalarNode:
    return dumper.represent_scalar(_STR, value.isoformat())


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Line and paragraph separators, NEL, BOM and other unprintable characters survive only
    # escaped, and only a double-quoted scalar escapes.
    style = None if value.isprintable() and "\ufeff" not in value else '"'
    return dumper.represent_scalar(_STR, value, style=style)


_PlanDumper.add_representer(datetime, _represent_datetime)
_PlanDumper.add_representer(str, _represent_text)


def write_yaml(data: dict[str, Any]) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_PlanDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return text


def write(data: dict[str, Any], file_format: FileFormat, header: Iterable[str] = ()) -> str:
    """``data`` as text in ``file_format``, after ``header`` lines written as comments."""
    body = write_toml(data) if file_format is FileFormat.TOML else write_yaml(data)
    comments = "".join(f"# {line}\n" for line in header)
    return comments + body
