"""PowerShell pipelines as data: commands and typed parameters, never script text.

The backend describes every pipeline it runs with these values; the session turns them into
``add_cmdlet``/``add_parameter``/``add_statement`` calls of pypsrp. A value is sent as what it is
(a string stays a string, a GUID a ``System.Guid``), so a VM called ``x'; Remove-VM * -Force; '``
reaches Hyper-V as that literal text: there is no script to inject into. Hyper-V treats *name*
parameters as wildcard patterns, so the backend addresses VMs by ``-Id`` and passes any other name
through :func:`literal_name`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import attrs

from vmfailover.errors import ValidationError

__all__ = ["SWITCH", "Command", "Pipeline", "Switch", "cmd", "literal_name", "pipeline"]


@attrs.frozen
class Switch:
    """A switch parameter given without a value (``-Force``)."""

    def __repr__(self) -> str:
        return "SWITCH"


SWITCH = Switch()

ParameterValue = str | int | bool | uuid.UUID | Switch


def _parameters(
    value: tuple[tuple[str, ParameterValue], ...],
) -> tuple[tuple[str, ParameterValue], ...]:
    for name, item in value:
        if not name.isidentifier():
            raise ValidationError.of(f"parameter {name!r}", "is not a PowerShell parameter name")
        if not isinstance(item, str | int | uuid.UUID | Switch):
            raise ValidationError.of(
                f"parameter -{name}", f"{type(item).__name__} values are not sent"
            )
    return value


@attrs.frozen
class Command:
    """One cmdlet of a pipeline with its named parameters, in order."""

    name: str
    parameters: tuple[tuple[str, ParameterValue], ...] = attrs.field(
        default=(), converter=_parameters
    )

    def __str__(self) -> str:
        parts = [self.name]
        for name, value in self.parameters:
            if isinstance(value, Switch):
                parts.append(f"-{name}")
            elif isinstance(value, bool):
                parts.append(f"-{name}:${str(value).lower()}")
            else:
                parts.append(f"-{name} {value!r}")
        return " ".join(parts)


def cmd(name: str, **parameters: ParameterValue) -> Command:
    """``cmd("Stop-VM", TurnOff=SWITCH)``; parameters keep their keyword order."""
    return Command(name, tuple(parameters.items()))


@attrs.frozen
class Pipeline:
    """Statements run in order in one PowerShell invocation (one round trip to the host).

    Each statement is a chain of commands (``Get-VM -Id X | Start-VM``); the output of every
    statement goes to the invocation's output, so a reader tells results apart by their type.
    ``description`` says what it is for, in errors and timeouts.
    """

    description: str
    statements: tuple[tuple[Command, ...], ...]

    def __attrs_post_init__(self) -> None:
        if not self.statements or not all(self.statements):
            raise ValidationError.of(f"pipeline {self.description!r}", "has an empty statement")

    def commands(self) -> Iterator[Command]:
        for statement in self.statements:
            yield from statement

    def __str__(self) -> str:
        return "; ".join(" | ".join(str(c) for c in statement) for statement in self.statements)


def pipeline(description: str, *statements: tuple[Command, ...] | Command) -> Pipeline:
    """A pipeline of statements; a statement is a command or a tuple of piped commands."""
    return Pipeline(
        description,
        tuple(s if isinstance(s, tuple) else (s,) for s in statements),
    )


_WILDCARDS = "`*?[]"


def literal_name(name: str) -> str:
    """``name`` as a PowerShell wildcard pattern that matches exactly ``name``.

    Backtick-escapes the characters WildcardPattern gives meaning to (`` ` * ? [ ] ``).
    """
    return "".join(f"`{char}" if char in _WILDCARDS else char for char in name)
