"""PowerShell parameter binding from declarative cmdlet metadata, and WildcardPattern.

A cmdlet is described by :class:`CmdletInfo` (its parameters with types, aliases, positions per
parameter set, mandatory sets and pipeline flags). :class:`Binder` binds what a client sent the
way PowerShell's parameter binder does, in the same order:

1. named arguments: case-insensitive, exact name or alias first, then an unambiguous prefix of a
   name or alias (common parameters included, so ``-V`` on Get-VM is ambiguous between
   ``-VMName`` and ``-Verbose``); each binding narrows the candidate parameter sets;
2. positional arguments, in position order over the parameters still unbound in the candidate
   sets, the default set's parameter tried first, first without type coercion then with it;
3. per pipeline record: ValueFromPipeline then ValueFromPipelineByPropertyName, again without and
   then with coercion;
4. parameter set resolution: a single set whose mandatory parameters are all bound wins; then the
   default set; else ``AmbiguousParameterSet``; a chosen set with unbound mandatory parameters
   gives ``MissingMandatoryParameter`` (a remote session cannot prompt for them).

Errors carry PowerShell's ids with the cmdlet class as suffix
(``NamedParameterNotFound,Microsoft.HyperV.PowerShell.Commands.GetVM``), category and exception
type as PowerShell reports them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from ._objects import CmdletError, EnumValue, InputObject, OutputObject
from .model import EnumType

__all__ = [
    "COMMON_PARAMETERS",
    "NO_INPUT",
    "Binder",
    "BoundCommand",
    "CmdletInfo",
    "ParamType",
    "Parameter",
    "WildcardPattern",
    "binding_error",
    "strip_deserialized",
    "type_names_of",
]

COMMANDS_NS: Final = "Microsoft.HyperV.PowerShell.Commands."
_BINDING_EXCEPTION: Final = "System.Management.Automation.ParameterBindingException"
_VALIDATION_EXCEPTION: Final = "System.Management.Automation.ParameterBindingValidationException"
_TRANSFORM_EXCEPTION: Final = (
    "System.Management.Automation.ParameterBindingArgumentTransformationException"
)


class _NoInput:
    def __repr__(self) -> str:
        return "NO_INPUT"


NO_INPUT: Final = _NoInput()


# ------------------------------------------------------------------------ wildcards


class WildcardPattern:
    """PowerShell's WildcardPattern: ``*``, ``?``, ``[abc]``, ``[a-z]``, backtick escapes.

    Matching ignores case (``WildcardOptions.IgnoreCase``, what Hyper-V uses) and is anchored at
    both ends. An unterminated ``[`` is an invalid pattern (:class:`ValueError`), as in
    PowerShell.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regex = re.compile(self._translate(pattern), re.IGNORECASE | re.DOTALL)

    @staticmethod
    def contains_wildcards(text: str) -> bool:
        """True if ``text`` has an unescaped ``*``, ``?``, ``[`` or ``]``."""
        index = 0
        while index < len(text):
            char = text[index]
            if char == "`":
                index += 2
                continue
            if char in "*?[]":
                return True
            index += 1
        return False

    @staticmethod
    def escape(text: str) -> str:
        """Backtick-escape the wildcard characters so ``text`` matches only itself."""
        return "".join("`" + c if c in "*?[]`" else c for c in text)

    @staticmethod
    def unescape(text: str) -> str:
        out: list[str] = []
        index = 0
        while index < len(text):
            if text[index] == "`" and index + 1 < len(text):
                out.append(text[index + 1])
                index += 2
                continue
            out.append(text[index])
            index += 1
        return "".join(out)

    def is_match(self, text: str) -> bool:
        return self._regex.fullmatch(text) is not None

    @staticmethod
    def _translate(pattern: str) -> str:
        out: list[str] = []
        index = 0
        while index < len(pattern):
            char = pattern[index]
            if char == "`":
                if index + 1 < len(pattern):
                    out.append(re.escape(pattern[index + 1]))
                    index += 2
                else:
                    out.append(re.escape("`"))
                    index += 1
            elif char == "*":
                out.append(".*")
                index += 1
            elif char == "?":
                out.append(".")
                index += 1
            elif char == "[":
                index += 1
                members: list[str] = []
                closed = False
                while index < len(pattern):
                    inner = pattern[index]
                    if inner == "]" and members:
                        closed = True
                        index += 1
                        break
                    if inner == "`" and index + 1 < len(pattern):
                        inner = pattern[index + 1]
                        index += 1
                    if (
                        index + 2 < len(pattern)
                        and pattern[index + 1] == "-"
                        and pattern[index + 2] != "]"
                    ):
                        low, high = inner, pattern[index + 2]
                        if low > high:
                            raise ValueError(
                                f"The specified wildcard character pattern is not valid: {pattern}"
                            )
                        members.append(f"{re.escape(low)}-{re.escape(high)}")
                        index += 3
                        continue
                    members.append(re.escape(inner))
                    index += 1
                if not closed:
                    raise ValueError(
                        f"The specified wildcard character pattern is not valid: {pattern}"
                    )
                out.append("[" + "".join(members) + "]")
            else:
                out.append(re.escape(char))
                index += 1
        return "".join(out)


# ---------------------------------------------------------------------- metadata


@attrs.frozen
class ParamType:
    """A parameter's .NET type, as far as binding needs it.

    ``kind`` is one of string, int, bool, switch, guid, datetime, timespan, enum, object (a
    Hyper-V object such as ``Microsoft.HyperV.PowerShell.VirtualMachine``, named by
    ``type_name``), any (PSObject, PSCredential, CimSession: accepted as is).
    """

    kind: str
    type_name: str
    is_array: bool = False
    enum: EnumType | None = None

    @property
    def display(self) -> str:
        return self.type_name + ("[]" if self.is_array else "")


@attrs.frozen
class Parameter:
    """One parameter. ``positions`` maps set name -> position; ``sets`` empty = every set."""

    name: str
    type: ParamType
    aliases: tuple[str, ...] = ()
    sets: frozenset[str] = frozenset()
    mandatory_in: frozenset[str] = frozenset()
    positions: Mapping[str, int] = attrs.field(factory=dict)
    by_value: bool = False
    by_property_name: bool = False

    def in_set(self, set_name: str) -> bool:
        return not self.sets or set_name in self.sets


@attrs.frozen
class CmdletInfo:
    """A cmdlet's binding metadata: ``class_name`` is the FQID suffix (``GetVM``)."""

    name: str
    class_name: str
    parameters: tuple[Parameter, ...]
    parameter_sets: tuple[str, ...]
    default_set: str
    supports_should_process: bool = False
    confirm_impact: str = "Medium"
    #: The .NET namespace of the cmdlet's class (Hyper-V's, or CimCmdlets' for Get-CimInstance).
    commands_namespace: str = COMMANDS_NS

    @property
    def class_full_name(self) -> str:
        return self.commands_namespace + self.class_name

    def fqid(self, error_id: str) -> str:
        return f"{error_id},{self.class_full_name}"

    def all_parameters(self) -> tuple[Parameter, ...]:
        extra: tuple[Parameter, ...] = COMMON_PARAMETERS
        if self.supports_should_process:
            extra = extra + SHOULD_PROCESS_PARAMETERS
        return self.parameters + extra


_STRING = ParamType("string", "System.String")
_SWITCH = ParamType("switch", "System.Management.Automation.SwitchParameter")
_ACTION = EnumType(
    "System.Management.Automation.ActionPreference",
    {
        "SilentlyContinue": 0,
        "Stop": 1,
        "Continue": 2,
        "Inquire": 3,
        "Ignore": 4,
        "Suspend": 5,
        "Break": 6,
    },
)
_ACTION_TYPE = ParamType("enum", _ACTION.type_name, enum=_ACTION)

#: Windows PowerShell 5.1's common parameters (no ProgressAction: Hyper-V hosts run 5.1).
COMMON_PARAMETERS: Final = (
    Parameter("Verbose", _SWITCH, ("vb",)),
    Parameter("Debug", _SWITCH, ("db",)),
    Parameter("ErrorAction", _ACTION_TYPE, ("ea",)),
    Parameter("WarningAction", _ACTION_TYPE, ("wa",)),
    Parameter("InformationAction", _ACTION_TYPE, ("infa",)),
    Parameter("ErrorVariable", _STRING, ("ev",)),
    Parameter("WarningVariable", _STRING, ("wv",)),
    Parameter("InformationVariable", _STRING, ("iv",)),
    Parameter("OutVariable", _STRING, ("ov",)),
    Parameter("OutBuffer", ParamType("int", "System.Int32"), ("ob",)),
    Parameter("PipelineVariable", _STRING, ("pv",)),
)
SHOULD_PROCESS_PARAMETERS: Final = (
    Parameter("WhatIf", _SWITCH, ("wi",)),
    Parameter("Confirm", _SWITCH, ("cf",)),
)


# ------------------------------------------------------------------------ helpers


def strip_deserialized(type_name: str) -> str:
    return type_name.removeprefix("Deserialized.")


def type_names_of(value: object) -> tuple[str, ...]:
    """The .NET type names of an object a client passed, without ``Deserialized.``."""
    if isinstance(value, InputObject | OutputObject):
        return tuple(strip_deserialized(n) for n in value.type_names)
    return ()


def binding_error(
    info: CmdletInfo,
    error_id: str,
    message: str,
    *,
    category: str = "InvalidArgument",
    exception_type: str = _BINDING_EXCEPTION,
    terminating: bool = True,
    target: object = None,
) -> CmdletError:
    return CmdletError(
        info.fqid(error_id),
        message,
        category=category,
        exception_type=exception_type,
        terminating=terminating,
        target=target,
    )


def _describe(value: object) -> str:
    if isinstance(value, InputObject | OutputObject):
        return value.to_string or (value.type_names[0] if value.type_names else "")
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _dotnet_type(value: object) -> str:
    if isinstance(value, InputObject | OutputObject):
        return value.type_names[0] if value.type_names else "System.Management.Automation.PSObject"
    return {
        str: "System.String",
        int: "System.Int32",
        bool: "System.Boolean",
        float: "System.Double",
        uuid.UUID: "System.Guid",
        datetime: "System.DateTime",
    }.get(type(value), "System.Object")


class _ConversionError(Exception):
    def __init__(self, reason: str, *, transformation: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transformation = transformation


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$")


def _convert_scalar(ptype: ParamType, value: object, coerce: bool) -> object:
    """Convert one element; without ``coerce`` only values already of the right type pass."""
    kind = ptype.kind
    if kind == "any":
        return value
    if kind == "object":
        if ptype.type_name in type_names_of(value):
            return value
        raise _ConversionError(
            f'Cannot convert the "{_describe(value)}" value of type "{_dotnet_type(value)}" to '
            f'type "{ptype.type_name}".'
        )
    if kind == "string":
        if isinstance(value, str):
            return value
        if not coerce:
            raise _ConversionError("not a string")
        if isinstance(value, InputObject | OutputObject):
            return value.to_string
        if isinstance(value, bool):
            return "True" if value else "False"
        if isinstance(value, EnumValue):
            return value.name
        return str(value)
    if kind == "switch" or kind == "bool":
        if isinstance(value, bool):
            return value
        if coerce and isinstance(value, int | float):
            return value != 0
        raise _ConversionError(
            f'Cannot convert value "{_dotnet_type(value)}" to type "System.Boolean". Boolean '
            "parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
            transformation=True,
        )
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        elif not coerce:
            raise _ConversionError("not an int")
        elif isinstance(value, bool):
            result = int(value)
        elif isinstance(value, float):
            result = round(value)
        elif isinstance(value, str):
            text = value.strip()
            try:
                result = int(text, 16) if text.lower().startswith("0x") else int(text)
            except ValueError:
                raise _ConversionError(
                    f'Cannot convert value "{value}" to type "System.Int32". Error: "Input string '
                    'was not in a correct format."'
                ) from None
        else:
            raise _ConversionError(
                f'Cannot convert the "{_describe(value)}" value of type "{_dotnet_type(value)}" '
                'to type "System.Int32".'
            )
        if not -(2**31) <= result < 2**31:
            raise _ConversionError(
                f'Cannot convert value "{value}" to type "System.Int32". Error: "Value was either '
                'too large or too small for an Int32."'
            )
        return result
    if kind == "guid":
        if isinstance(value, uuid.UUID):
            return value
        if coerce and isinstance(value, str):
            try:
                return uuid.UUID(value.strip())
            except ValueError:
                pass
        if not coerce:
            raise _ConversionError("not a guid")
        raise _ConversionError(
            f'Cannot convert value "{_describe(value)}" to type "System.Guid". Error: "Guid should '
            'contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."'
        )
    if kind == "datetime":
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if coerce and isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                pass
            else:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if not coerce:
            raise _ConversionError("not a datetime")
        raise _ConversionError(
            f'Cannot convert value "{_describe(value)}" to type "System.DateTime". Error: "String '
            'was not recognized as a valid DateTime."'
        )
    if kind == "timespan":
        if isinstance(value, timedelta):
            return value
        if coerce and isinstance(value, str):
            match = _TIMESPAN.match(value.strip())
            if match:
                days, hours, minutes, seconds, fraction = match.groups()
                return timedelta(
                    days=int(days or 0),
                    hours=int(hours),
                    minutes=int(minutes),
                    seconds=int(seconds or 0),
                    microseconds=int((fraction or "0").ljust(7, "0")[:6]),
                )
        if coerce and isinstance(value, int) and not isinstance(value, bool):
            return timedelta(microseconds=value / 10)
        if not coerce:
            raise _ConversionError("not a timespan")
        raise _ConversionError(
            f'Cannot convert value "{_describe(value)}" to type "System.TimeSpan". Error: "String '
            'was not recognized as a valid TimeSpan."'
        )
    if kind == "enum":
        enum = ptype.enum
        assert enum is not None
        if isinstance(value, EnumValue) and value.type_name == enum.type_name:
            return value
        if not coerce:
            raise _ConversionError("not an enum value")
        found: EnumValue | None = None
        if isinstance(value, EnumValue):
            found = enum.lookup(value.name)
        elif isinstance(value, str):
            found = enum.lookup(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            found = enum.by_value(value)
        if found is None:
            names = ", ".join(enum.members)
            raise _ConversionError(
                f'Cannot convert value "{_describe(value)}" to type "{enum.type_name}". Error: '
                f'"Unable to match the identifier name {_describe(value)} to a valid enumerator '
                f'name. Specify one of the following enumerator names and try again: {names}"'
            )
        return found
    raise AssertionError(f"unknown parameter kind {kind!r}")


def convert(ptype: ParamType, value: object, coerce: bool) -> object:
    """Convert ``value`` to ``ptype`` (arrays: each element; a scalar becomes a one-item list)."""
    if ptype.is_array:
        items = list(value) if isinstance(value, list | tuple) else [value]
        return [_convert_scalar(ptype, item, coerce) for item in items]
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return _convert_scalar(ptype, value[0], coerce)
        if ptype.kind == "string" and coerce:
            return " ".join(_describe(v) for v in value)
        raise _ConversionError(
            f'Cannot convert the "System.Object[]" value of type "System.Object[]" to type '
            f'"{ptype.type_name}".'
        )
    return _convert_scalar(ptype, value, coerce)


# ------------------------------------------------------------------------ binding


@attrs.frozen
class BoundCommand:
    """The outcome of binding: the chosen parameter set and the values by canonical name."""

    info: CmdletInfo
    parameter_set: str
    values: Mapping[str, Any]
    pipeline_parameter: str | None = None

    def has(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def switch(self, name: str) -> bool:
        return bool(self.values.get(name, False))


@attrs.define
class _State:
    candidates: list[str]
    values: dict[str, Any]


class Binder:
    """Binds arguments for one cmdlet. Stateless and thread-safe once built."""

    def __init__(self, info: CmdletInfo) -> None:
        self.info = info
        self._params = info.all_parameters()
        self._by_name = {p.name.casefold(): p for p in self._params}

    # -- step 1: names

    def resolve_name(self, given: str) -> Parameter:
        folded = given.lstrip("-").casefold()
        for param in self._params:
            if param.name.casefold() == folded or folded in (a.casefold() for a in param.aliases):
                return param
        matches: list[Parameter] = []
        for param in self._params:
            names = (param.name, *param.aliases)
            if any(n.casefold().startswith(folded) for n in names) and param not in matches:
                matches.append(param)
        if len(matches) == 1 and folded:
            return matches[0]
        if len(matches) > 1 and folded:
            listed = " ".join("-" + p.name for p in matches)
            raise binding_error(
                self.info,
                "AmbiguousParameter",
                f"Parameter cannot be processed because the parameter name '{given}' is "
                f"ambiguous. Possible matches include: {listed}.",
            )
        raise binding_error(
            self.info,
            "NamedParameterNotFound",
            f"A parameter cannot be found that matches parameter name '{given}'.",
        )

    def _narrow(self, state: _State, param: Parameter) -> None:
        if param.sets:
            remaining = [s for s in state.candidates if s in param.sets]
            if not remaining:
                raise self._ambiguous_set()
            state.candidates = remaining

    def _ambiguous_set(self) -> CmdletError:
        return binding_error(
            self.info,
            "AmbiguousParameterSet",
            "Parameter set cannot be resolved using the specified named parameters. One or more "
            "parameters issued cannot be used together or an insufficient number of parameters "
            "were provided.",
        )

    def _mandatory_anywhere(self, state: _State, param: Parameter) -> bool:
        return any(s in param.mandatory_in for s in state.candidates)

    def _assign(self, state: _State, param: Parameter, value: object, coerce: bool) -> None:
        """Convert and store; raises _ConversionError (or CmdletError for validation)."""
        if param.type.kind == "switch" and value is None:
            converted: object = True
        elif value is None:
            if self._mandatory_anywhere(state, param):
                raise binding_error(
                    self.info,
                    "ParameterArgumentValidationErrorNullNotAllowed",
                    f"Cannot bind argument to parameter '{param.name}' because it is null.",
                    category="InvalidData",
                    exception_type=_VALIDATION_EXCEPTION,
                )
            raise binding_error(
                self.info,
                "ParameterArgumentValidationError",
                f"Cannot validate argument on parameter '{param.name}'. The argument is null. "
                "Provide a valid value for the argument, and then try running the command again.",
                category="InvalidData",
                exception_type=_VALIDATION_EXCEPTION,
            )
        else:
            converted = convert(param.type, value, coerce)
        if param.type.kind == "string" and (
            converted == "" or converted == [] or (isinstance(converted, list) and "" in converted)
        ):
            raise binding_error(
                self.info,
                "ParameterArgumentValidationError",
                f"Cannot validate argument on parameter '{param.name}'. The argument is null or "
                "empty. Provide an argument that is not null or empty, and then try the command "
                "again.",
                category="InvalidData",
                exception_type=_VALIDATION_EXCEPTION,
            )
        state.values[param.name] = converted

    def _conversion_failure(self, param: Parameter, error: _ConversionError) -> CmdletError:
        if error.transformation:
            return binding_error(
                self.info,
                "ParameterArgumentTransformationError",
                f"Cannot process argument transformation on parameter '{param.name}'. "
                f"{error.reason}",
                category="InvalidData",
                exception_type=_TRANSFORM_EXCEPTION,
            )
        return binding_error(
            self.info,
            "CannotConvertArgumentNoMessage",
            f"Cannot bind parameter '{param.name}'. {error.reason}",
        )

    # -- steps 1 and 2

    def bind_arguments(self, arguments: Sequence[tuple[str | None, Any]]) -> _State:
        """Named then positional binding; raises CmdletError (terminating)."""
        state = _State(candidates=list(self.info.parameter_sets), values={})
        positional: list[object] = []
        for name, value in arguments:
            if name is None:
                positional.append(value)
                continue
            param = self.resolve_name(name)
            if param.name in state.values:
                raise binding_error(
                    self.info,
                    "ParameterAlreadyBound",
                    f"Cannot bind parameter because parameter '{param.name}' is specified more "
                    "than once. To provide multiple values to parameters that can accept multiple "
                    'values, use the array syntax. For example, "-parameter value1,value2,value3".',
                )
            self._narrow(state, param)
            try:
                self._assign(state, param, value, coerce=True)
            except _ConversionError as error:
                raise self._conversion_failure(param, error) from None
        if positional:
            self._bind_positional(state, positional)
        return state

    def _positional_slots(self, state: _State) -> list[int]:
        slots = {
            position
            for param in self.info.parameters
            if param.name not in state.values
            for set_name, position in param.positions.items()
            if set_name in state.candidates
        }
        return sorted(slots)

    def _ordered_sets(self, state: _State) -> list[str]:
        default = self.info.default_set
        return ([default] if default in state.candidates else []) + [
            s for s in state.candidates if s != default
        ]

    def _bind_positional(self, state: _State, positional: list[object]) -> None:
        for value in positional:
            bound = False
            last_error: CmdletError | None = None
            for position in self._positional_slots(state):
                candidates: list[Parameter] = []
                for set_name in self._ordered_sets(state):
                    for param in self.info.parameters:
                        if (
                            param.name not in state.values
                            and param.positions.get(set_name) == position
                            and param not in candidates
                        ):
                            candidates.append(param)
                for coerce in (False, True):
                    for param in candidates:
                        try:
                            trial = _State(list(state.candidates), dict(state.values))
                            self._narrow(trial, param)
                            self._assign(trial, param, value, coerce)
                        except _ConversionError as error:
                            last_error = self._conversion_failure(param, error)
                            continue
                        except CmdletError as error:
                            last_error = error
                            continue
                        state.candidates, state.values = trial.candidates, trial.values
                        bound = True
                        break
                    if bound:
                        break
                if bound or candidates:
                    break
            if not bound:
                if last_error is not None:
                    raise last_error
                raise binding_error(
                    self.info,
                    "PositionalParameterNotFound",
                    f"A positional parameter cannot be found that accepts argument "
                    f"'{_describe(value)}'.",
                )

    # -- step 3

    def bind_pipeline(self, state: _State, item: object) -> tuple[_State, str]:
        """Bind one pipeline record; raises CmdletError InputObjectNotBound (non-terminating)."""
        params = [p for p in self.info.parameters if p.name not in state.values]
        for coerce in (False, True):
            for by_property in (False, True):
                for set_name in self._ordered_sets(state):
                    for param in params:
                        if not param.in_set(set_name):
                            continue
                        if by_property:
                            if not param.by_property_name:
                                continue
                            value = _property_of(item, (param.name, *param.aliases))
                            if value is _MISSING:
                                continue
                        else:
                            if not param.by_value:
                                continue
                            value = item
                        trial = _State(list(state.candidates), dict(state.values))
                        try:
                            self._narrow(trial, param)
                            self._assign(trial, param, value, coerce)
                        except (_ConversionError, CmdletError):
                            continue
                        return trial, param.name
        raise binding_error(
            self.info,
            "InputObjectNotBound",
            "The input object cannot be bound to any parameters for the command either because "
            "the command does not take pipeline input or the input and its properties do not "
            "match any of the parameters that take pipeline input.",
            terminating=False,
            target=item,
        )

    # -- step 4

    def resolve_set(self, state: _State) -> str:
        def unbound(set_name: str) -> list[str]:
            return [
                p.name
                for p in self.info.parameters
                if set_name in p.mandatory_in and p.name not in state.values
            ]

        complete = [s for s in state.candidates if not unbound(s)]
        if len(complete) == 1:
            return complete[0]
        if len(complete) > 1:
            if self.info.default_set in complete:
                return self.info.default_set
            raise self._ambiguous_set()
        if self.info.default_set in state.candidates:
            chosen = self.info.default_set
        elif len(state.candidates) == 1:
            chosen = state.candidates[0]
        else:
            raise self._ambiguous_set()
        missing = unbound(chosen)
        raise binding_error(
            self.info,
            "MissingMandatoryParameter",
            "Cannot process command because of one or more missing mandatory parameters: "
            + " ".join(missing)
            + ".",
        )

    def bind(
        self, arguments: Sequence[tuple[str | None, Any]], item: object = NO_INPUT
    ) -> BoundCommand:
        """Bind arguments and, if given, one pipeline record; raises CmdletError."""
        state = self.bind_arguments(arguments)
        pipeline_parameter: str | None = None
        if item is not NO_INPUT:
            state, pipeline_parameter = self.bind_pipeline(state, item)
        chosen = self.resolve_set(state)
        return BoundCommand(self.info, chosen, dict(state.values), pipeline_parameter)


_MISSING: Final = object()


def _property_of(item: object, names: Iterable[str]) -> object:
    if not isinstance(item, InputObject | OutputObject):
        return _MISSING
    folded = {n.casefold() for n in names}
    for key, value in item.properties.items():
        if key.casefold() in folded:
            return value
    return _MISSING
