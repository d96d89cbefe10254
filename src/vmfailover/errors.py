"""The exception hierarchy of vmfailover.

Every error the library raises on purpose derives from :class:`VMFailoverError`, so a caller can
catch ours without catching everything. Validation errors carry a list of :class:`Finding`, each
naming the offending item (a VM, a rule, a field, a line of a plan file) and saying what is wrong,
because a DR plan usually has several problems and its author wants to see all of them at once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

import attrs

__all__ = [
    "BackendError",
    "ConflictError",
    "Finding",
    "Findings",
    "MissingExtraError",
    "NotFoundError",
    "PermanentBackendError",
    "Severity",
    "TransientBackendError",
    "VMFailoverError",
    "ValidationError",
]


class Severity(enum.StrEnum):
    """How much a finding matters: an ``error`` blocks a run, a ``warning`` is reported only."""

    ERROR = "error"
    WARNING = "warning"


def _shortened(limit: int) -> Callable[[object], str]:
    """A converter to text of at most ``limit`` characters: a finding quoting a megabyte of the
    user's input would bury the message (and the log) under it."""

    def shorten(value: object) -> str:
        text = value if isinstance(value, str) else str(value)
        if len(text) <= limit:
            return text
        head, tail = limit // 2, limit // 2 - 40  # 40: room for the note between them
        left_out = len(text) - head - tail
        return f"{text[:head]}... ({left_out:,} characters left out) ...{text[-tail:]}"

    return shorten


_ITEM = _shortened(300)
_MESSAGE = _shortened(2000)


def _item_text(value: object) -> str:
    return _ITEM(value)


def _message_text(value: object) -> str:
    return _MESSAGE(value)


def _hint_text(value: object) -> str | None:
    return None if value is None else _MESSAGE(value)


@attrs.frozen
class Finding:
    """One problem found while checking input.

    ``item`` names what is wrong (``"VM 'db01'"``, ``"rule 2 ('192.168.1.*')"``,
    ``"created_at"``); ``message`` says what is wrong with it; ``hint`` says what to change.
    """

    item: str = attrs.field(converter=_item_text)
    message: str = attrs.field(converter=_message_text)
    severity: Severity = Severity.ERROR
    hint: str | None = attrs.field(default=None, converter=_hint_text)

    @property
    def blocking(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        text = f"{self.item}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class Findings(list[Finding]):
    """A list of findings that shows itself: one line each in text, a table in Jupyter.

    What a pre-flight check returns (:meth:`FailoverPlan.validate`); it is a plain ``list`` in
    every other way. :attr:`blocking` tells whether anything stops a run.
    """

    def __init__(self, findings: Iterable[Finding] = (), /) -> None:
        given: object = findings
        if not isinstance(given, Iterable) or isinstance(given, str | bytes):
            raise ValidationError.of("Findings", f"needs Finding objects, got {given!r}")
        items = list(findings)
        if not all(isinstance(item, Finding) for item in items):
            raise ValidationError.of("Findings", f"needs Finding objects, got {items!r:.200}")
        super().__init__(items)

    @property
    def blocking(self) -> bool:
        """Whether any finding is an error (a run must not start)."""
        return any(finding.blocking for finding in self)

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self if finding.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self if finding.severity is Severity.WARNING]

    def _title(self) -> str:
        if not self:
            return "No findings"
        return f"{len(self.errors)} errors, {len(self.warnings)} warnings"

    def __str__(self) -> str:
        lines = [self._title()]
        lines.extend(f"  {finding.severity.value}: {finding}" for finding in self)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from vmfailover._render import html_table

        rows = [(f.severity.value, f.item, f.message, f.hint or "") for f in self]
        return html_table(("severity", "item", "problem", "hint"), rows, title=self._title())


class VMFailoverError(Exception):
    """Root of every error vmfailover raises on purpose."""


class ValidationError(VMFailoverError, ValueError):
    """Input is wrong. ``findings`` lists every problem found, each naming its item."""

    findings: tuple[Finding, ...]

    def __init__(self, findings: Finding | Iterable[Finding]) -> None:
        given: object = findings
        if isinstance(given, Finding):
            given = (given,)
        is_list = isinstance(given, Iterable) and not isinstance(given, str | bytes)
        self.findings = tuple(given) if is_list else ()  # type: ignore[arg-type]
        if not self.findings or not all(isinstance(f, Finding) for f in self.findings):
            # Our own error, about itself: whoever raises must say what was wrong.
            self.findings = (
                Finding("ValidationError", f"needs one or more Finding objects, got {given!r}"),
            )
        super().__init__(self._message())

    @classmethod
    def of(cls, item: str, message: str, hint: str | None = None) -> ValidationError:
        """A validation error with a single blocking finding."""
        return cls(Finding(item, message, Severity.ERROR, hint))

    def _message(self) -> str:
        if len(self.findings) == 1:
            return str(self.findings[0])
        lines = [f"{len(self.findings)} problems:"]
        lines.extend(f"  - {finding}" for finding in self.findings)
        return "\n".join(lines)

    def __reduce__(self) -> tuple[type[ValidationError], tuple[tuple[Finding, ...]]]:
        return (type(self), (self.findings,))


class BackendError(VMFailoverError):
    """A backend could not do what was asked."""


class TransientBackendError(BackendError):
    """The same call may succeed if tried again (a dropped connection, a busy host, a timeout)."""


class PermanentBackendError(BackendError):
    """Trying again will not help (no such operation, insufficient rights, invalid state)."""


class NotFoundError(VMFailoverError, LookupError):
    """A named object (VM, host, network, replica, recovery point, run) does not exist."""


class ConflictError(VMFailoverError):
    """The object is in a state that does not allow the operation (undo after commit, ...)."""


class MissingExtraError(VMFailoverError, ImportError):
    """A backend (or a feature, such as plan files) needs an optional dependency that is not
    installed. ``what`` names the feature when it is not a backend."""

    def __init__(self, backend: str, extra: str, missing: str, *, what: str | None = None) -> None:
        self.backend = backend
        self.extra = extra
        needs = what or f"the {backend} backend"
        super().__init__(
            f"{needs} needs the {missing!r} package: pip install 'vmfailover[{extra}]'"
        )
