"""A backend described in a file: ``--backend FILE.toml`` (or ``.yaml``/``.yml``).

The file says which backend (``backend = "vsphere"`` or ``"hyperv"``) and how to reach it: one
``[[vcenter]]`` table per site's vCenter (the keys of
:class:`~vmfailover.backends.vsphere.settings.VCenter`), or one ``[[host]]`` table per Hyper-V
host (the keys of :class:`~vmfailover.backends.hyperv.config.HostConnection`), with the Hyper-V
backend's own settings (``replication_frequency``...) at the top. Any other installed backend
(one another package registers under the ``vmfailover.backends`` entry points) is named the same
way, ``backend = "acme"``, with an ``[options]`` table: the keyword arguments of its factory,
checked against the factory's signature (names, required ones, and the types its annotations
tell). The backend is then made by the registry (:func:`vmfailover.backends.open_backend`), so
the settings classes and the backend check the values as they do for code; this module checks
only what a file adds: which keys exist, the type of each value, where the password comes from
and the files it names.

A password is never written in the file: ``password_env = "NAME"`` reads it from the environment,
``password_file = "PATH"`` from a file of its own (stripped of surrounding whitespace; refused
when group or others may use it, see :mod:`vmfailover.cli.named_files`); a ``password`` key is
refused. Another package's backend gets them as the ``Credentials`` of its factory's
``credentials`` parameter, and only if it has one. Relative paths (``password_file``,
``ca_bundle``, ``ca_file``, and options annotated ``Path``) are relative to the backend file's
folder; a CA bundle must hold a PEM certificate that loads. TLS verification stays on unless the
file says ``insecure = true`` (vSphere) or ``verify_tls = false`` (Hyper-V).

Every problem is a :class:`~vmfailover.errors.ValidationError` finding that names the file, the
key and its line and column (``dr.toml, vcenter[1].timeout (line 12, column 1)``); no finding
shows a secret, only the name of the variable or file it was to come from.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import attrs

from vmfailover.backends import available_backends, backend_class, open_backend
from vmfailover.backends.base import Backend
from vmfailover.cli.named_files import NamedFileProblem, ca_bundle_problem, read_password_file
from vmfailover.errors import Finding, NotFoundError, ValidationError
from vmfailover.model import Credentials
from vmfailover.plan.convert import describe
from vmfailover.plan.formats import FileFormat, Located, read, toml_locator

__all__ = ["BACKEND_FILE_SUFFIXES", "backend_file_options", "is_backend_file", "open_backend_file"]

BACKEND_FILE_SUFFIXES = (".toml", ".yaml", ".yml")

#: Keys that say where a connection's password comes from; ``password`` itself is refused.
_SECRET_SOURCES = ("password_env", "password_file")
#: Keys naming a CA bundle, read relative to the backend file's folder and checked when read.
_CA_KEYS = frozenset({"ca_bundle", "ca_file"})
#: The table holding the options of a backend another package registers.
_OPTIONS = "options"
_PASSWORD_HINT = (
    'give password_env = "NAME" to read it from an environment variable, '
    'or password_file = "PATH" to read it from a file holding only it'
)


@attrs.frozen
class _Shape:
    """What a backend file for one backend holds."""

    backend: str  # its name in the registry
    table: str  # the key of the list of connections
    argument: str  # the backend's parameter the connections are given to
    settings: str  # module:class of one connection's settings
    needs_credentials: bool
    options: tuple[str, ...]  # the backend's own settings, at the top of the file
    example: str  # how one connection starts


_SHAPES = {
    "vsphere": _Shape(
        "vsphere",
        "vcenter",
        "vcenters",
        "vmfailover.backends.vsphere.settings:VCenter",
        needs_credentials=True,
        options=(),
        example='[[vcenter]] with site, host, username and password_env = "NAME"',
    ),
    "hyperv": _Shape(
        "hyperv",
        "host",
        "hosts",
        "vmfailover.backends.hyperv.config:HostConnection",
        needs_credentials=False,
        options=(
            "replication_frequency",
            "recovery_history",
            "sync_poll_interval",
            "sync_timeout",
            "attempts",
            "retry_wait",
        ),
        example="[[host]] with name and site (username and password_env for NTLM or Basic)",
    ),
}


_SHAPES_TABLES = frozenset(shape.table for shape in _SHAPES.values())


def is_backend_file(spec: str) -> bool:
    """Whether ``--backend`` names a backend file (by its suffix), not lab or MODULE:FACTORY."""
    return spec.lower().endswith(BACKEND_FILE_SUFFIXES)


def open_backend_file(path: Path) -> Backend:
    """The backend ``path`` describes, made by the registry; our errors naming file, key and
    line for anything wrong in it."""
    reader, name, options = _read(Path(path))
    try:
        return open_backend(name, **options)
    except ValidationError as error:
        # The backend's own checks (a site given twice, replication_frequency 60...).
        reader.findings.placed(error, reader.table, dict.fromkeys(options))
        raise AssertionError("placed raises") from None  # pragma: no cover


def backend_file_options(path: Path) -> tuple[str, dict[str, Any]]:
    """The backend's registry name and the options to construct it with, read from ``path``."""
    _, name, options = _read(Path(path))
    return name, options


def _read(path: Path) -> tuple[_Reader, str, dict[str, Any]]:
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"--backend: the backend file {str(path)!r} does not exist") from None
    except OSError as error:
        raise ValidationError.of(str(path), f"cannot be read: {error.strerror or error}") from None
    file_format = FileFormat.TOML if path.suffix.lower() == ".toml" else FileFormat.YAML
    try:
        data, locate = read(content, file_format)
    except ValidationError as error:
        raise _in_file(path, error) from None
    if file_format is FileFormat.TOML:
        locate = toml_locator(content.decode("utf-8-sig", errors="replace"))
    reader = _Reader(path, locate)
    name, options = reader.options(data)
    return reader, name, options


def _in_file(path: Path, error: ValidationError) -> ValidationError:
    """The format reader's findings (about "plan file", or a line) as findings about ``path``."""
    return ValidationError(
        Finding(
            str(path) if f.item == "plan file" else f"{path}, {f.item}",
            re.sub(
                r"\(name, vms, \.\.\.\)", "(backend, vcenter, host or options)", f.message
            ).replace("plan file", "backend file"),
            f.severity,
            # The reader's hints speak of plans ("a plan needs at least name and vms").
            None if f.hint is None or "plan" in f.hint else f.hint,
        )
        for f in error.findings
    )


class _Findings(list[Finding]):
    """Findings about one file, each naming its key and place."""

    def __init__(self, path: Path, locate: Located) -> None:
        super().__init__()
        self.path = path
        self.locate = locate

    def add(self, key: str, message: str, hint: str | None = None) -> None:
        self.append(Finding(f"{self.path}, {self.locate(key)}", message, hint=hint))

    def placed(self, error: ValidationError, where: str, values: dict[str, Any]) -> None:
        """Raise ``error`` of a settings class or the backend as findings about the file, each
        placed at the key its text names (else at ``where``), and with the findings so far."""
        for finding in error.findings:
            self.add(_key_named(finding, where, values), str(finding))
        self.check()

    def check(self) -> None:
        if self:
            raise ValidationError(self)


class _Reader:
    def __init__(self, path: Path, locate: Located) -> None:
        self.path = path
        self.folder = path.parent
        self.findings = _Findings(path, locate)
        self.table = "backend"  # the key of the connections, once the backend is known

    def options(self, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = self._backend_name(data)
        # The registry says which extra is missing before the settings class is imported.
        backend = backend_class(name)
        shape = _SHAPES.get(name)
        if shape is None:
            self.table = _OPTIONS
            return name, self._registered_options(name, backend, data)
        self.table = shape.table
        module_name, _, class_name = shape.settings.partition(":")
        settings_class: type[Any] = getattr(importlib.import_module(module_name), class_name)
        option_types = _parameter_types(backend)
        known = {"backend", shape.table, *shape.options}
        for key in data:
            if key not in known:
                self._unknown(key, sorted(known))
        options: dict[str, Any] = {}
        for key in shape.options:
            if key in data:
                options[key] = self._typed(key, data[key], option_types.get(key))
        connections = self._connections(shape, settings_class, data.get(shape.table))
        self.findings.check()
        return shape.backend, {shape.argument: connections, **options}

    def _backend_name(self, data: dict[str, Any]) -> str:
        name = data.get("backend")
        installed = available_backends()
        choices = ", ".join(f'"{known}"' for known in installed)
        if name is None:
            self.findings.add(
                "backend",
                "says no backend",
                f'start the file with backend = "vsphere" or "hyperv" (installed: {choices})',
            )
        elif not isinstance(name, str) or name not in installed:
            self.findings.add(
                "backend",
                f"{describe(name)} is not an installed backend",
                f"the installed backends are {choices}; another package's backend is there once "
                "that package is installed (it registers under the vmfailover.backends entry "
                "points)",
            )
        self.findings.check()
        return str(name)

    def _registered_options(self, name: str, factory: Any, data: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``factory`` (another package's backend) its file's
        ``[options]`` table gives, checked against the factory's signature."""
        for key in data:
            if key not in ("backend", _OPTIONS):
                self._unknown(
                    key,
                    ["backend", _OPTIONS],
                    f"the settings of backend {name!r} go in its [{_OPTIONS}] table",
                )
        given = data.get(_OPTIONS, {})
        if not isinstance(given, dict):
            self.findings.add(
                _OPTIONS,
                f"must be a table of the settings of backend {name!r}, got {describe(given)}",
            )
            self.findings.check()
        takes = _FactorySignature.of(factory)
        secret_keys = ("username", *_SECRET_SOURCES) if takes.credentials else ()
        known = sorted({*(takes.names or ()), *secret_keys} - {takes.credentials or ""})
        hint = f"backend {name!r} takes: {', '.join(known) or 'no options'}"
        values: dict[str, Any] = {}
        for key, value in given.items():
            place = f"{_OPTIONS}.{key}"
            if key == "password":
                self._refuse_password(place)
            elif key in secret_keys:
                values[key] = self._typed(place, value, str)
            elif key in _SECRET_SOURCES:
                self.findings.add(
                    place,
                    f"backend {name!r} takes no credentials, so no password is read for it",
                    hint,
                )
            elif key == takes.credentials:
                self.findings.add(
                    place,
                    "credentials are not written in the backend file",
                    f"give username, and {_PASSWORD_HINT}",
                )
            elif takes.names is not None and key not in takes.names:
                self.findings.add(place, f"is not an option of backend {name!r}", hint)
            else:
                values[key] = self._option(place, key, value, takes.types.get(key))
        if takes.credentials:
            credentials = self._credentials(
                _OPTIONS, values, required=takes.credentials_required, refused="password" in given
            )
            if credentials is not None:
                values[takes.credentials] = credentials
        for key in takes.required:
            if key not in given and key != takes.credentials:
                self.findings.add(_OPTIONS, f"backend {name!r} needs the option {key}", hint)
        self.findings.check()
        return values

    def _option(self, place: str, key: str, value: Any, wanted: Any) -> Any:
        """One option of another package's backend: typed as its annotation tells, paths
        relative to the file's folder, a CA bundle checked."""
        if key in _CA_KEYS and isinstance(value, str) and value.strip():
            return self._ca_bundle(place, value)
        if value is None and type(None) in typing.get_args(wanted):
            return None  # YAML's null, for a parameter that takes None
        typed = self._typed(place, value, wanted)
        return self.folder / typed if isinstance(typed, Path) else typed

    def _ca_bundle(self, place: str, name: str) -> str:
        path = self.folder / name
        problem = ca_bundle_problem(path)
        if problem is not None:
            self.findings.add(place, problem.message, problem.hint)
        return str(path)

    def _refuse_password(self, place: str) -> None:
        # The value is never shown: it is the secret.
        self.findings.add(place, "a password is not kept in the backend file", _PASSWORD_HINT)

    def _unknown(self, key: str, known: list[str], hint: str | None = None) -> None:
        self.findings.add(
            key, "is not a setting of this file", hint or f"the keys are: {', '.join(known)}"
        )

    def _connections(self, shape: _Shape, settings_class: type[Any], given: Any) -> list[Any]:
        if not isinstance(given, list) or not given or not all(isinstance(t, dict) for t in given):
            self.findings.add(
                shape.table,
                "is missing"
                if given is None
                else f"must be a list of tables, got {describe(given)}",
                f"give one {shape.example}",
            )
            return []
        fields = {
            field.name: field.type
            for field in attrs.fields(attrs.resolve_types(settings_class))
            if field.name != "credentials"
        }
        known = sorted({*fields, "username", *_SECRET_SOURCES})
        made = []
        for index, table in enumerate(given):
            where = f"{shape.table}[{index}]"
            before = len(self.findings)
            values: dict[str, Any] = {}
            for key, value in table.items():
                place = f"{where}.{key}"
                if key == "password":
                    self._refuse_password(place)
                elif key not in known:
                    self._unknown(place, known)
                elif key not in fields:
                    values[key] = self._typed(place, value, str)
                elif key in _CA_KEYS and isinstance(value, str) and value.strip():
                    values[key] = self._ca_bundle(place, value)
                elif value is not None:
                    values[key] = self._typed(place, value, fields[key])
            credentials = self._credentials(
                where, values, required=shape.needs_credentials, refused="password" in table
            )
            if len(self.findings) > before:
                continue
            if credentials is not None:
                values["credentials"] = credentials
            try:
                made.append(settings_class(**values))
            except ValidationError as error:
                self.findings.placed(error, where, values)
        return made

    def _credentials(
        self, where: str, values: dict[str, Any], *, required: bool, refused: bool
    ) -> Credentials | None:
        """The connection's credentials (None when it needs none); ``refused`` when its literal
        password was refused already."""
        username = values.pop("username", None)
        sources = [key for key in _SECRET_SOURCES if key in values]
        secret_from = {key: values.pop(key) for key in sources}
        if username is None and not sources:
            if required and not refused:
                self.findings.add(
                    where, "says no username", 'give username and password_env = "NAME"'
                )
            return None
        if username is None:
            self.findings.add(f"{where}.{sources[0]}", "is given without a username")
            return None
        if not sources and refused:
            return None
        if len(sources) != 1:
            self.findings.add(
                f"{where}.{sources[1] if sources else 'username'}",
                "needs one place the password comes from"
                if not sources
                else "give password_env or password_file, not both",
                None if sources else 'give password_env = "NAME" or password_file = "PATH"',
            )
            return None
        secret = self._secret(f"{where}.{sources[0]}", sources[0], secret_from[sources[0]])
        if secret is None or not isinstance(username, str) or not username.strip():
            return None
        return Credentials(username, secret)

    def _secret(self, place: str, source: str, name: Any) -> str | None:
        if not isinstance(name, str) or not name.strip():
            return None  # its type was refused already, or it is empty: below
        if source == "password_env":
            text = os.environ.get(name)
            if not text:
                self.findings.add(
                    place,
                    f"the environment variable {name} is {'empty' if text == '' else 'not set'}",
                    "set it to the password before running the command",
                )
                return None
            return text
        try:
            return read_password_file(self.folder / name)
        except NamedFileProblem as problem:
            self.findings.add(place, problem.message, problem.hint)
            return None

    def _typed(self, place: str, value: Any, wanted: Any) -> Any:
        """``value`` if it is what ``wanted`` (a settings field's type) takes from a file."""
        kinds = _kinds(wanted)
        if not kinds:  # a type no file value stands for: the settings class decides
            if isinstance(value, float) and not math.isfinite(value):
                self.findings.add(place, f"must be a finite number, got {value!r}")
            return value
        for kind in kinds:
            accepted, converted = _accepts(kind, value)
            if accepted:
                if isinstance(converted, float) and not math.isfinite(converted):
                    self.findings.add(place, f"must be a finite number, got {converted!r}")
                return converted
        self.findings.add(
            place, f"must be {' or '.join(_description(k) for k in kinds)}, got {describe(value)}"
        )
        return value


_DESCRIPTIONS = {
    str: "text",
    bool: "true or false",
    int: "a whole number",
    float: "a number",
}
#: Collections a file gives as a list.
_COLLECTIONS = (frozenset, set, tuple, list)


def _kinds(wanted: Any) -> tuple[Any, ...]:
    """The file value kinds a field's type takes: ``float | None`` -> ``(float,)``; a path
    first, so text given for ``str | Path`` is read as the path."""
    if isinstance(wanted, types.UnionType) or typing.get_origin(wanted) is typing.Union:
        found = tuple(k for arg in typing.get_args(wanted) for k in _kinds(arg))
        return tuple(sorted(found, key=lambda kind: kind is not Path))
    if wanted is Path:
        return (Path,)
    origin = typing.get_origin(wanted) or wanted
    return (wanted,) if origin in _DESCRIPTIONS or origin in _COLLECTIONS else ()


def _description(kind: Any) -> str:
    if kind is Path:
        return "a path (text)"
    origin = typing.get_origin(kind) or kind
    if origin in _COLLECTIONS:
        return "a list of text" if _of_text(kind) else "a list"
    return _DESCRIPTIONS[origin]


def _of_text(kind: Any) -> bool:
    """Whether a collection type holds text (``frozenset[str]``, ``tuple[str, ...]``)."""
    items = [arg for arg in typing.get_args(kind) if arg is not Ellipsis]
    bare_frozenset = (typing.get_origin(kind) or kind) is frozenset and not items
    return bare_frozenset or items == [str]


def _accepts(kind: Any, value: Any) -> tuple[bool, Any]:
    if kind is Path:
        return isinstance(value, str), Path(value) if isinstance(value, str) else value
    origin = typing.get_origin(kind) or kind
    if origin in _COLLECTIONS:
        ok = isinstance(value, list) and (
            not _of_text(kind) or all(isinstance(item, str) for item in value)
        )
        return ok, origin(value) if ok else value
    if origin is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, value
    if origin is float:
        return isinstance(value, int | float), value
    return isinstance(value, origin), value


def _parameter_types(factory: Any) -> dict[str, Any]:
    """The annotations of a backend class's ``__init__`` or of a factory function."""
    try:
        return typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except (NameError, TypeError):  # annotations that do not resolve: the backend checks those
        return {}


@attrs.frozen
class _FactorySignature:
    """What the factory of another package's backend takes, as far as its signature tells."""

    names: frozenset[str] | None  # its keyword parameters; None: any key (**options)
    required: tuple[str, ...]
    types: dict[str, Any]
    credentials: str | None  # the parameter taking Credentials, if any
    credentials_required: bool

    @classmethod
    def of(cls, factory: Any) -> _FactorySignature:
        try:
            parameters = list(inspect.signature(factory).parameters.values())
        except (TypeError, ValueError):  # no signature to read: the factory checks its options
            return cls(None, (), {}, None, credentials_required=False)
        hints = _parameter_types(factory)
        keyword = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
        credentials = next(
            (p for p in keyword if p.name == "credentials" or _is_credentials(hints.get(p.name))),
            None,
        )
        return cls(
            None if takes_any else frozenset(p.name for p in keyword),
            tuple(p.name for p in keyword if p.default is p.empty),
            hints,
            credentials.name if credentials else None,
            credentials_required=credentials is not None
            and credentials.default is inspect.Parameter.empty,
        )


def _is_credentials(annotation: Any) -> bool:
    return annotation is Credentials or Credentials in typing.get_args(annotation)


_WORD = r"(?<![A-Za-z0-9_]){}(?![A-Za-z0-9_])"


def _key_named(finding: Finding, where: str, values: dict[str, Any]) -> str:
    """The key a settings class's finding is about: the given key its text names first, else
    the connection's table (or, for the backend's own findings, the connections' key)."""
    # Quoted values ('site-a') are no key names.
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "", f"{finding.item} {finding.message}")
    named = [
        (found.start(), key)
        for key in values
        if (found := re.search(_WORD.format(re.escape(key)), text)) is not None
    ]
    if not named:
        return where
    key = min(named)[1]
    return key if where in _SHAPES_TABLES else f"{where}.{key}"
