"""Plans (and retention policies) as TOML or YAML files: load, save, and nothing lost between.

``FailoverPlan.load(path_or_text)`` and ``plan.save(path)`` / ``plan.to_toml()`` /
``plan.to_yaml()`` are the everyday doors; this module holds them for every kind of document
(:func:`load`, :func:`dumps`, :func:`save`), so that retention policies, and replication jobs
later, share the one reader.

Reading goes text -> plain values (:mod:`~vmfailover.plan.formats`, safe parsers) -> document
classes (:mod:`~vmfailover.plan.convert`, cattrs, every key and type checked) -> API objects
(:mod:`~vmfailover.plan.build`, references and the API's own checks). Every problem of every
step is a :class:`~vmfailover.errors.ValidationError` whose findings name the place: a line and
column where the parser knows it, the path in the file otherwise. Writing goes the other way, and
is checked by reading the result back, so a file :func:`save` writes always loads to an equal
plan.

Needs the ``files`` extra (``pip install 'vmfailover[files]'``: cattrs, tomli-w, PyYAML).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Any, TypeVar, cast, overload

import attrs

from vmfailover.errors import Finding, NotFoundError, ValidationError
from vmfailover.plan.build import (
    plan_from_document,
    plan_to_document,
    retention_from_document,
    retention_to_document,
)
from vmfailover.plan.convert import structure, unstructure
from vmfailover.plan.documents import FORMAT_VERSION, PlanDocument, RetentionDocument
from vmfailover.plan.formats import FileFormat, read, sniff, write
from vmfailover.plan.plan import FailoverPlan
from vmfailover.policy.retention import RetentionPolicy

__all__ = ["FileFormat", "dumps", "file_format_of", "load", "save"]

T = TypeVar("T", FailoverPlan, RetentionPolicy)

Source = str | bytes | os.PathLike[str]


@attrs.frozen
class _Kind:
    """How one kind of API object travels through a file."""

    document: type
    from_document: Callable[[Any], Any]
    to_document: Callable[[Any], Any]
    title: str


_KINDS: dict[type, _Kind] = {
    FailoverPlan: _Kind(PlanDocument, plan_from_document, plan_to_document, "plan"),
    RetentionPolicy: _Kind(
        RetentionDocument, retention_from_document, retention_to_document, "retention policy"
    ),
}

_SUFFIXES = {".toml": FileFormat.TOML, ".yaml": FileFormat.YAML, ".yml": FileFormat.YAML}


def file_format_of(path: str | os.PathLike[str]) -> FileFormat:
    """The format a file name's suffix says (``.toml``, ``.yaml``, ``.yml``)."""
    suffix = FilePath(path).suffix.lower()
    try:
        return _SUFFIXES[suffix]
    except KeyError:
        raise ValidationError.of(
            f"plan file {os.fspath(path)!r}",
            f"has the suffix {suffix!r}, which names no plan-file format",
            "name it .toml, .yaml or .yml, or give format='toml' or format='yaml'",
        ) from None


def _looks_like_path(source: str) -> bool:
    return "\n" not in source and source.strip().lower().endswith(tuple(_SUFFIXES))


def _as_format(value: FileFormat | str) -> FileFormat:
    try:
        return FileFormat(value)
    except ValueError:
        raise ValidationError.of(
            "format", f"{value!r} is not a plan-file format", "use 'toml' or 'yaml'"
        ) from None


@overload
def load(source: Source, kind: type[T], *, format: FileFormat | str | None = None) -> T: ...
@overload
def load(
    source: Source, kind: None = None, *, format: FileFormat | str | None = None
) -> FailoverPlan: ...
def load(
    source: Source, kind: type[T] | None = None, *, format: FileFormat | str | None = None
) -> FailoverPlan | T:
    """A ``kind`` object (default :class:`FailoverPlan`) from a file or from text.

    ``source`` is a path (a :class:`os.PathLike`, or a one-line string ending in ``.toml``,
    ``.yaml`` or ``.yml``) or the text itself (``str`` or UTF-8 ``bytes``). The format comes from
    ``format``, else the file's suffix, else the text: TOML when a line opens a ``[table]`` or
    assigns ``key = value``, YAML otherwise. Every problem is reported at once in one
    :class:`ValidationError`; a missing file is a :class:`NotFoundError`.
    """
    chosen = _KINDS[FailoverPlan if kind is None else kind]
    file_format = None if format is None else _as_format(format)
    content: str | bytes
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _looks_like_path(source)):
        path = FilePath(source)
        file_format = file_format or file_format_of(path)
        content = _read_file(path)
    elif isinstance(source, str | bytes):
        content = source
    else:
        raise ValidationError.of(
            "source", f"must be a path, text or bytes, got {type(source).__name__}"
        )
    if file_format is None:
        text = content if isinstance(content, str) else content.decode("utf-8", "replace")
        file_format = sniff(text)
    data, locate = read(content, file_format)
    try:
        document: Any = structure(data, chosen.document)
        return cast("FailoverPlan | T", chosen.from_document(document))
    except ValidationError as error:
        raise ValidationError(
            Finding(locate(f.item), f.message, f.severity, f.hint) for f in error.findings
        ) from None


def _read_file(path: FilePath) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"plan file {str(path)!r} does not exist") from None
    except OSError as error:
        raise ValidationError.of(
            f"plan file {str(path)!r}", f"cannot be read: {error.strerror or error}"
        ) from None


def dumps(value: FailoverPlan | RetentionPolicy, format: FileFormat | str = "toml") -> str:
    """``value`` as TOML or YAML text that :func:`load` reads back to an equal object.

    Refuses, naming each, what a file cannot hold: steps, probes and approvers that are Python
    callables (give them in code after loading), and anything :func:`load` would refuse.
    """
    chosen = _KINDS.get(type(value))
    if chosen is None:
        raise ValidationError.of(
            "value", f"a {type(value).__name__} cannot be saved as a plan file"
        )
    file_format = _as_format(format)
    document = chosen.to_document(value)
    data = unstructure(document)
    if isinstance(document, PlanDocument):
        data = {"format_version": FORMAT_VERSION, **data}
    # What we write must read back: the same checks as load, naming the same paths.
    chosen.from_document(structure(data, chosen.document))
    header = (f"A vmfailover {chosen.title}, plan-file format {FORMAT_VERSION}.",)
    return write(data, file_format, header)


def save(
    value: FailoverPlan | RetentionPolicy,
    path: str | os.PathLike[str],
    *,
    format: FileFormat | str | None = None,
) -> FilePath:
    """Write ``value`` to ``path`` (format from ``format`` or the suffix); returns the path.

    The file is written whole or not at all: to a temporary file beside it, then renamed.
    """
    target = FilePath(path)
    file_format = _as_format(format) if format is not None else file_format_of(target)
    text = dumps(value, file_format)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ValidationError.of(
            f"plan file {str(target)!r}", f"cannot be written: {error.strerror or error}"
        ) from None
    return target
