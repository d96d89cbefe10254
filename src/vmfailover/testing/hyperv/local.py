"""An in-process :class:`Shell`: pipelines run straight against a :class:`CommandHost`.

For cmdlet semantics this is the fast transport; the same test bodies run over pypsrp too. To
keep those bodies transport-independent, :class:`LocalShell` mimics what remoting does to
objects at the edges of a pipeline and nowhere else:

* between the commands of one pipeline objects pass live (as in a PowerShell runspace): each
  command's output is the next one's ``input_objects``;
* what the last command writes is "deserialized" for the caller: every :class:`OutputObject`
  (nested ones included) gets ``Deserialized.``-prefixed type names, as a pypsrp client sees;
* an :class:`OutputObject` a test passes back as an argument becomes an :class:`InputObject`
  with the type names it carries, as the PSRP session layer hands it to the command host.

A terminating :class:`CmdletError` ends the pipeline and is reported in ``errors``, after the
non-terminating errors written before it. A downstream command whose upstream wrote nothing is
not run (PowerShell runs its process block once per input record), but its arguments are still
bound when the host offers ``validate``, so binding errors are reported as PowerShell does.
"""

from __future__ import annotations

from typing import Any

from ._objects import Call, CmdletError, CommandHost, InputObject, OutputObject, ShellResult

__all__ = ["LocalShell", "deserialize"]


def deserialize(value: Any) -> Any:
    """``value`` as a remoting client receives it (type names gain ``Deserialized.``)."""
    if isinstance(value, OutputObject):
        return OutputObject(
            tuple(
                n if n.startswith("Deserialized.") else "Deserialized." + n
                for n in value.type_names
            ),
            {key: deserialize(item) for key, item in value.properties.items()},
            value.to_string,
        )
    if isinstance(value, list | tuple):
        return [deserialize(item) for item in value]
    return value


def _as_argument(value: Any) -> Any:
    """A value a test passes, as the session layer delivers it to the command host."""
    if isinstance(value, OutputObject):
        received = deserialize(value)
        return InputObject(received.type_names, received.properties, received.to_string)
    if isinstance(value, list | tuple):
        return [_as_argument(item) for item in value]
    return value


class LocalShell:
    """Runs pipelines in process against ``command_host`` (see the module docstring)."""

    def __init__(self, command_host: CommandHost) -> None:
        self.command_host = command_host

    def run(self, *pipeline: Call) -> ShellResult:
        errors: list[CmdletError] = []
        current: tuple[Any, ...] = ()
        for index, call in enumerate(pipeline):
            arguments = tuple((name, _as_argument(value)) for name, value in call.arguments)
            try:
                if index > 0 and not current:
                    validate = getattr(self.command_host, "validate", None)
                    if validate is not None:
                        validate(call.command, arguments)
                    continue
                result = self.command_host.invoke(call.command, arguments, current)
            except CmdletError as error:
                error.terminating = True
                errors.append(error)
                current = ()
                break
            errors.extend(result.errors)
            current = result.output
        return ShellResult(tuple(deserialize(item) for item in current), tuple(errors))
