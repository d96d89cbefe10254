"""Pre- and post-steps and approval gates: what a plan runs around its VMs, and where it pauses.

A :class:`Step` is a Python callable or an argv command (never a shell string: arguments stay
arguments) that runs before or after the whole plan, a priority group or one VM, within a timeout,
with a failure policy. An :class:`Approval` pauses the run at the same places until someone says
yes (``run.approve(name)``) or an approval callback answers. Both are plain data; the engine runs
them.

Steps can be limited to some failover kinds (``kinds=``), because what a test failover needs (say,
a smoke test) is rarely what a production failover needs (say, a DNS update).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import FailoverKind, as_enum, is_finite_number

__all__ = [
    "Approval",
    "ApprovalRequest",
    "PlanAction",
    "Step",
    "StepContext",
    "StepFailure",
    "StepScope",
    "When",
]


class When(enum.StrEnum):
    """Whether a step runs before its scope starts or after it has finished."""

    BEFORE = "before"
    AFTER = "after"


class StepScope(enum.StrEnum):
    """What a step surrounds: the whole ``plan``, a priority ``group`` or one ``vm``."""

    PLAN = "plan"
    GROUP = "group"
    VM = "vm"


class StepFailure(enum.StrEnum):
    """What a failed step (or one that timed out) does.

    ``abort``: start nothing new; the run ends cancelled. ``fail_vm`` (VM steps only): the VM fails
    and its start-order failure policy decides about the rest. ``continue``: a warning only.
    """

    ABORT = "abort"
    FAIL_VM = "fail_vm"
    CONTINUE = "continue"


@attrs.frozen
class StepContext:
    """What a callable step receives: which run, kind and plan, and where in it the step is."""

    run_id: str
    kind: FailoverKind
    plan: str
    step: str
    when: When
    vm: str | None = None
    group: int | None = None
    vm_id: str | None = None
    addresses: tuple[str, ...] = ()

    def environment(self) -> dict[str, str]:
        """The same facts as environment variables, for argv steps."""
        env = {
            "VMFAILOVER_RUN_ID": self.run_id,
            "VMFAILOVER_KIND": self.kind.value,
            "VMFAILOVER_PLAN": self.plan,
            "VMFAILOVER_STEP": self.step,
            "VMFAILOVER_WHEN": self.when.value,
        }
        if self.vm is not None:
            env["VMFAILOVER_VM"] = self.vm
        if self.vm_id is not None:
            env["VMFAILOVER_VM_ID"] = self.vm_id
        if self.group is not None:
            env["VMFAILOVER_GROUP"] = str(self.group)
        if self.addresses:
            env["VMFAILOVER_ADDRESSES"] = " ".join(self.addresses)
        return env


@attrs.frozen
class ApprovalRequest:
    """What an approval callback is asked: may the run go past this gate?"""

    run_id: str
    kind: FailoverKind
    plan: str
    approval: str
    when: When
    vm: str | None = None
    group: int | None = None


PlanAction: TypeAlias = Callable[[StepContext], object] | tuple[str, ...]
"""A step's action: a callable given a :class:`StepContext`, or an argv command."""

_ALL_KINDS = frozenset(FailoverKind)


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of(
            f"{type(instance).__name__}", f"name must be a non-empty string, got {value!r}"
        )


def _label(instance: Step | Approval) -> str:
    return f"{type(instance).__name__.lower()} {instance.name!r}"


def _seconds(instance: Step | Approval, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_finite_number(value) or value <= 0:
        raise ValidationError.of(
            _label(instance),
            f"{attribute.name} must be a finite number of seconds > 0, got {value!r}",
        )


def _kinds(value: object) -> frozenset[FailoverKind]:
    if value is None:
        return _ALL_KINDS
    items: Iterable[object] = (value,) if isinstance(value, str | FailoverKind) else value  # type: ignore[assignment]
    if not isinstance(items, Iterable):
        raise ValidationError.of("step kinds", f"must be failover kinds, got {value!r}")
    kinds = frozenset(as_enum(FailoverKind, item, "step kinds") for item in items)
    if not kinds:
        raise ValidationError.of("step kinds", "must name at least one kind (or be left out)")
    return kinds


def _on_failure(value: object) -> StepFailure:
    return as_enum(StepFailure, value, "step on_failure")


def _when(value: object) -> When:
    return as_enum(When, value, "step when")


def _group(instance: Step | Approval, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValidationError.of(
            _label(instance), f"group must be a whole number >= 1 or None, got {value!r}"
        )


def _vm(instance: Step | Approval, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValidationError.of(_label(instance), f"vm must be a VM name or None, got {value!r}")


def _scope_of(item: Step | Approval) -> StepScope:
    if item.vm is not None and item.group is not None:
        raise ValidationError.of(
            _label(item),
            "names both a VM and a group",
            "a step surrounds the plan (neither), one group or one VM",
        )
    if item.vm is not None:
        return StepScope.VM
    if item.group is not None:
        return StepScope.GROUP
    return StepScope.PLAN


def _action(value: object) -> PlanAction:
    if callable(value):
        return value
    if isinstance(value, str):
        raise ValidationError.of(
            "step action",
            f"{value!r} is a string: commands are argv lists, never shell text",
            "write it as a list, for example ['/usr/local/bin/update-dns', '--zone', 'corp']",
        )
    if isinstance(value, Iterable):
        argv = tuple(value)
        if argv and all(isinstance(part, str) for part in argv) and argv[0].strip():
            return argv
    raise ValidationError.of(
        "step action",
        f"must be a callable or a non-empty argv list of strings, got {value!r}",
    )


@attrs.frozen
class Step:
    """A pre- or post-step: ``action`` runs ``when`` (before/after) the plan, a group or a VM.

    Give ``vm=`` (a VM name of the plan) or ``group=`` (a priority group of the start order), or
    neither for the whole plan. ``timeout`` bounds the step (seconds); ``on_failure`` says what a
    failure or timeout does (see :class:`StepFailure`); ``kinds`` limits it to some failover kinds.
    """

    name: str = attrs.field(validator=_name)
    action: PlanAction = attrs.field(converter=_action)
    when: When = attrs.field(default=When.BEFORE, converter=_when)
    vm: str | None = attrs.field(default=None, validator=_vm)
    group: int | None = attrs.field(default=None, validator=_group)
    timeout: float = attrs.field(default=600.0, validator=_seconds)
    on_failure: StepFailure = attrs.field(default=StepFailure.ABORT, converter=_on_failure)
    kinds: frozenset[FailoverKind] = attrs.field(default=None, converter=_kinds)

    def __attrs_post_init__(self) -> None:
        scope = _scope_of(self)
        if self.on_failure is StepFailure.FAIL_VM and scope is not StepScope.VM:
            raise ValidationError.of(
                _label(self),
                "on_failure='fail_vm' needs a VM step",
                "use 'abort' or 'continue' for plan and group steps",
            )

    @property
    def scope(self) -> StepScope:
        return _scope_of(self)

    @property
    def command(self) -> tuple[str, ...] | None:
        """The argv of a command step, or None for a callable."""
        return self.action if isinstance(self.action, tuple) else None

    def describe(self) -> str:
        what = (
            " ".join(self.command)
            if self.command
            else getattr(self.action, "__qualname__", repr(self.action))
        )
        return f"{self.name} ({what})"


@attrs.frozen
class Approval:
    """A gate: the run pauses ``when`` (before/after) the plan, a group or a VM until approved.

    ``approver`` (optional) is asked first; it answers True (go on), False (refuse: the run is
    cancelled) or None (no answer: wait for ``run.approve(name)``). Every gate has a ``timeout``
    (default a day); a gate nobody answers in time cancels the run.
    """

    name: str = attrs.field(validator=_name)
    when: When = attrs.field(default=When.BEFORE, converter=_when)
    vm: str | None = attrs.field(default=None, validator=_vm)
    group: int | None = attrs.field(default=None, validator=_group)
    timeout: float = attrs.field(default=86_400.0, validator=_seconds)
    approver: Callable[[ApprovalRequest], bool | None] | None = attrs.field(default=None, eq=False)
    kinds: frozenset[FailoverKind] = attrs.field(default=None, converter=_kinds)

    def __attrs_post_init__(self) -> None:
        _scope_of(self)
        if self.approver is not None and not callable(self.approver):
            raise ValidationError.of(
                _label(self), f"approver must be callable or None, got {self.approver!r}"
            )

    @property
    def scope(self) -> StepScope:
        return _scope_of(self)


def steps_tuple(
    value: Iterable[Step | Approval] | Step | Approval | None,
) -> tuple[Step | Approval, ...]:
    """The plan's steps as a tuple, each checked to be a :class:`Step` or :class:`Approval`."""
    if value is None:
        return ()
    if isinstance(value, Step | Approval):
        return (value,)
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValidationError.of("FailoverPlan steps", f"must be a list of steps, got {value!r}")
    items = tuple(value)
    wrong = [item for item in items if not isinstance(item, Step | Approval)]
    if wrong:
        raise ValidationError.of(
            "FailoverPlan steps",
            f"holds {wrong[0]!r}, which is not a Step or an Approval",
        )
    names: dict[str, None] = {}
    for item in items:
        if item.name in names:
            raise ValidationError.of(
                _label(item), "appears twice in the plan", "give each step a distinct name"
            )
        names[item.name] = None
    return items
