"""The failover plan: which VMs, from which point, mapped and re-addressed how, started in which
order, with which steps around them. One plan serves all three kinds of failover.

A :class:`FailoverPlan` is plain frozen data, checked where each value enters, so a plan can be
reviewed, diffed and (with the plan-file support) saved. It knows nothing about any hypervisor:
:meth:`FailoverPlan.validate` holds it against a backend's inventory (reading only) and
:meth:`FailoverPlan.compile` resolves it into the per-VM work the runner does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from vmfailover.errors import Finding, Findings, MissingExtraError, ValidationError
from vmfailover.model import (
    FailoverKind,
    Inventory,
    RecoveryPoint,
    as_enum,
    as_flag,
    as_instance,
    aware_utc,
    parse_seconds,
)
from vmfailover.plan.steps import Approval, Step, steps_tuple
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.points import PointChoice
from vmfailover.policy.reip import ReIPOverride, ReIPRules
from vmfailover.policy.sequencer import StartOrder

if TYPE_CHECKING:
    import os
    from pathlib import Path
    from types import ModuleType

    from vmfailover.backends.base import Backend
    from vmfailover.plan.changes import PlanDiff
    from vmfailover.plan.compiled import CompiledPlan

__all__ = ["FailoverPlan", "PointChoices", "PowerOffSource"]


class PowerOffSource(enum.StrEnum):
    """What happens to a source VM before its replica starts.

    ``never``: the source is left alone (a regular failover then relies on the split-brain guard,
    a planned one needs the source already off). ``graceful``: shut the guest down, and fail the
    VM if it is not off within the plan's ``shutdown_timeout``. ``graceful_then_force``: shut
    down, then cut the power if the guest does not stop in time. ``require_off``: touch nothing,
    but refuse to start a replica while its source runs.

    A test failover never touches a source, whatever this says.
    """

    NEVER = "never"
    GRACEFUL = "graceful"
    GRACEFUL_THEN_FORCE = "graceful_then_force"
    REQUIRE_OFF = "require_off"


#: The power-off behaviour each kind uses when the plan leaves it unset.
DEFAULT_POWER_OFF: Mapping[FailoverKind, PowerOffSource] = MappingProxyType(
    {
        FailoverKind.PLANNED: PowerOffSource.GRACEFUL,
        FailoverKind.REGULAR: PowerOffSource.NEVER,
        FailoverKind.TEST: PowerOffSource.NEVER,
    }
)

PointChoices: TypeAlias = PointChoice | Mapping[str, PointChoice]
"""A recovery point choice for every VM, or per VM (VMs not named use ``"latest"``)."""

_CHOICE_WORDS = ("latest", "latest-application-consistent")


def _text(value: object, item: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of(item, f"must be a non-empty string, got {value!r}")
    return value


def _plan_name(instance: FailoverPlan, attribute: attrs.Attribute[Any], value: object) -> None:
    _text(value, "FailoverPlan name")


def _vm_names(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise ValidationError.of(
            "FailoverPlan vms", f"must be a list of VM names or ids, got {value!r}"
        )
    names: dict[str, None] = {}
    findings: list[Finding] = []
    for position, name in enumerate(value):
        if not isinstance(name, str) or not name.strip():
            findings.append(Finding(f"vms[{position}]", f"must be a VM name or id, got {name!r}"))
        elif name in names:
            findings.append(
                Finding(f"VM {name!r}", "is listed twice", hint="list each VM of the plan once")
            )
        else:
            names[name] = None
    if findings:
        raise ValidationError(findings)
    if not names:
        raise ValidationError.of("FailoverPlan vms", "a plan needs at least one VM")
    return tuple(names)


def _point_choice(value: object, item: str) -> PointChoice:
    if isinstance(value, datetime):
        return aware_utc(value, item)
    if isinstance(value, str) and value in _CHOICE_WORDS:
        return value  # type: ignore[return-value]
    raise ValidationError.of(
        item,
        f"{value!r} is not a recovery point choice",
        "use 'latest', 'latest-application-consistent' or a timezone-aware datetime",
    )


def _point_choices(value: object) -> PointChoices:
    if isinstance(value, Mapping):
        table: dict[str, PointChoice] = {}
        for vm, choice in value.items():
            item = f"recovery_point for VM {vm!r}"
            table[_text(vm, "recovery_point VM")] = _point_choice(choice, item)
        return MappingProxyType(table)
    return _point_choice(value, "recovery_point")


def _power_off(value: object) -> PowerOffSource | None:
    if value is None:
        return None
    return as_enum(PowerOffSource, value, "power_off_source")


def _rpo(value: object) -> float | None:
    return None if value is None else parse_seconds(value, "FailoverPlan rpo")


def _rto(value: object) -> float | None:
    return None if value is None else parse_seconds(value, "FailoverPlan rto")


def _shutdown_timeout(value: object) -> float:
    return parse_seconds(value, "FailoverPlan shutdown_timeout")


def _auto_commit(value: object) -> float | None:
    return (
        None if value is None else parse_seconds(value, "FailoverPlan auto_commit", allow_zero=True)
    )


def _auto_undo(value: object) -> float | None:
    return (
        None if value is None else parse_seconds(value, "FailoverPlan auto_undo", allow_zero=True)
    )


def _optional(kind: type, item: str, hint: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, kind):
            raise ValidationError.of(
                item, f"must be a {kind.__name__} or None, got {value!r}", hint
            )

    return check


def _description(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError.of("FailoverPlan description", f"must be a string, got {value!r}")


def _order(value: object) -> StartOrder | None:
    if value is None:
        return None
    if not isinstance(value, StartOrder):
        raise ValidationError.of(
            "FailoverPlan order", f"must be a StartOrder or None, got {value!r}"
        )
    return copy_order(value)


def copy_order(order: StartOrder) -> StartOrder:
    """A copy of ``order``, so later changes to the original do not change a plan."""
    copy = StartOrder(max_parallel=order.max_parallel, groups=order.groups)
    for resource, capacity in order.limits.items():
        copy.limit(resource, capacity)
    for entry in order:
        copy.add(
            entry.name,
            after=entry.after,
            group=entry.group,
            probe=entry.probe,
            timeout=entry.timeout,
            on_failure=entry.on_failure,
            resources=entry.resources,
        )
    return copy


def order_key(order: StartOrder | None) -> object:
    """What makes two start orders equal: their settings, limits and entries."""
    if order is None:
        return None
    return (order.max_parallel, order.groups, sorted(order.limits.items()), tuple(order))


def _overrides(value: object) -> tuple[ReIPOverride, ...]:
    if isinstance(value, ReIPOverride):
        return (value,)
    if not isinstance(value, Iterable) or isinstance(value, str | Mapping):
        raise ValidationError.of("reip_overrides", f"must be a list of ReIPOverride, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, ReIPOverride):
            raise ValidationError.of("reip_overrides", f"{item!r} is not a ReIPOverride")
    return items


@attrs.frozen
class FailoverPlan:
    """What to fail over and how; the same plan runs as a test, planned or regular failover.

    - ``vms``: source VM names or ids; ``order``: a :class:`StartOrder` over those names (default:
      every VM, no dependencies; VMs the order leaves out start with no dependencies).
    - ``network``: a :class:`NetworkMapping`; its production table serves planned and regular
      failovers, its test table test failovers. ``None`` leaves every replica's NICs where
      replication put them (a test failover then needs a mapping: it must reach isolated
      networks).
    - ``reip`` / ``test_reip``: :class:`ReIPRules` for production and for test failovers (a test
      can re-address differently, or not at all); ``reip_overrides`` are per-NIC exceptions to
      ``reip``.
    - ``recovery_point``: ``"latest"``, ``"latest-application-consistent"``, a datetime (the
      newest point at or before it) or a per-VM mapping of those. A planned failover ignores it:
      it recovers from a final sync taken after the source is down.
    - ``power_off_source``: see :class:`PowerOffSource`; ``None`` means the kind's default
      (``graceful`` for planned, ``never`` otherwise). ``shutdown_timeout`` bounds a graceful
      shutdown.
    - ``rpo`` / ``rto``: objectives (seconds, or durations such as ``"15m"``); a run that misses
      one says so in its report.
    - ``steps``: :class:`Step` and :class:`Approval` items around the plan, groups and VMs.
    - ``auto_commit`` / ``auto_undo``: a commit policy, as Zerto's: a planned or regular failover
      stays uncommitted (it can be undone) until it is committed, or until this long (seconds,
      or a duration such as ``"4h"``) after its recovery ended, when it is committed or undone
      automatically. At most one of the two; neither: it waits for a decision.
    """

    name: str = attrs.field(validator=_plan_name)
    vms: tuple[str, ...] = attrs.field(converter=_vm_names)
    order: StartOrder | None = attrs.field(
        default=None,
        converter=_order,
        eq=attrs.cmp_using(eq=lambda a, b: order_key(a) == order_key(b)),
    )
    network: NetworkMapping | None = attrs.field(
        default=None,
        validator=_optional(NetworkMapping, "FailoverPlan network", "build it with NetworkMapping"),
    )
    reip: ReIPRules | None = attrs.field(
        default=None,
        validator=_optional(ReIPRules, "FailoverPlan reip", "build it with ReIPRules([...])"),
    )
    test_reip: ReIPRules | None = attrs.field(
        default=None,
        validator=_optional(ReIPRules, "FailoverPlan test_reip", "build it with ReIPRules([...])"),
    )
    recovery_point: PointChoices = attrs.field(default="latest", converter=_point_choices)
    power_off_source: PowerOffSource | None = attrs.field(default=None, converter=_power_off)
    rpo: float | None = attrs.field(default=None, converter=_rpo)
    rto: float | None = attrs.field(default=None, converter=_rto)
    steps: tuple[Step | Approval, ...] = attrs.field(default=(), converter=steps_tuple)
    reip_overrides: tuple[ReIPOverride, ...] = attrs.field(default=(), converter=_overrides)
    shutdown_timeout: float = attrs.field(default=300.0, converter=_shutdown_timeout)
    description: str = attrs.field(default="", validator=_description)
    auto_commit: float | None = attrs.field(default=None, converter=_auto_commit)
    auto_undo: float | None = attrs.field(default=None, converter=_auto_undo)

    def __attrs_post_init__(self) -> None:
        findings: list[Finding] = []
        known = frozenset(self.vms)  # membership per name: the plan's vms are a tuple
        if self.auto_commit is not None and self.auto_undo is not None:
            findings.append(
                Finding(
                    "FailoverPlan auto_commit, auto_undo",
                    "are both set: a failover is either committed or undone when its time comes",
                    hint="keep the one the plan's owner wants",
                )
            )
        if isinstance(self.recovery_point, Mapping):
            for vm in self.recovery_point:
                if vm not in known:
                    findings.append(
                        Finding(
                            f"recovery_point for VM {vm!r}",
                            "names a VM that is not in the plan",
                            hint=f"the plan's VMs: {', '.join(self.vms)}",
                        )
                    )
        if self.order is not None:
            for name in self.order.vms:
                if name not in known:
                    findings.append(
                        Finding(
                            f"start order VM {name!r}",
                            "is not in the plan's vms",
                            hint="add it to vms or remove it from the order",
                        )
                    )
        for item in self.steps:
            if item.vm is not None and item.vm not in known:
                findings.append(
                    Finding(
                        f"{type(item).__name__.lower()} {item.name!r}",
                        f"names VM {item.vm!r}, which is not in the plan",
                    )
                )
        if findings:
            raise ValidationError(findings)

    # --- what each kind uses -----------------------------------------------------------------

    def point_choice(self, vm: str) -> PointChoice:
        """The recovery point choice for the plan's VM ``vm``."""
        if isinstance(self.recovery_point, Mapping):
            return self.recovery_point.get(vm, "latest")
        return self.recovery_point

    def power_off(self, kind: FailoverKind | str) -> PowerOffSource:
        """What happens to sources in a failover of ``kind`` (tests never touch them)."""
        kind = as_enum(FailoverKind, kind, "kind")
        if kind is FailoverKind.TEST:
            return PowerOffSource.NEVER
        return self.power_off_source or DEFAULT_POWER_OFF[kind]

    def rules(self, kind: FailoverKind | str) -> ReIPRules | None:
        """The re-IP rules a failover of ``kind`` applies."""
        kind = as_enum(FailoverKind, kind, "kind")
        return self.test_reip if kind is FailoverKind.TEST else self.reip

    def start_order(self) -> StartOrder:
        """The plan's start order, completed: every VM of the plan is in it."""
        order = copy_order(self.order) if self.order is not None else StartOrder()
        for name in self.vms:
            if name not in order:
                order.add(name)
        return order

    def steps_for(self, kind: FailoverKind | str) -> tuple[Step | Approval, ...]:
        """The steps and approvals that apply to a failover of ``kind``."""
        kind = as_enum(FailoverKind, kind, "kind")
        return tuple(item for item in self.steps if kind in item.kinds)

    # --- review -------------------------------------------------------------------------------

    def diff(self, other: FailoverPlan) -> PlanDiff:
        """What changes from this plan to ``other``, in words, for review.

        See :mod:`vmfailover.plan.changes`; also :func:`vmfailover.plan.diff`.
        """
        from vmfailover.plan.changes import diff

        return diff(self, as_instance(other, FailoverPlan, "diff"))

    def summary(self) -> str:
        """One line: name, number of VMs, objectives, limits, rules and steps."""
        from vmfailover.plan.show import plan_summary

        return plan_summary(self)

    def __str__(self) -> str:
        from vmfailover.plan.show import plan_text

        return plan_text(self)

    def _repr_html_(self) -> str:
        """The plan in Jupyter: a summary, the start-order graph (inline SVG) and a VM table."""
        from vmfailover.plan.show import plan_html

        return plan_html(self)

    # --- files -------------------------------------------------------------------------------

    @classmethod
    def load(
        cls, source: str | bytes | os.PathLike[str], *, format: str | None = None
    ) -> FailoverPlan:
        """A plan from a TOML or YAML file, or from its text; see :mod:`vmfailover.plan.files`.

        Every problem is reported at once in one :class:`ValidationError` whose findings name
        the place (line and column for syntax, ``order.vms[2].timeout`` for content). Needs the
        ``files`` extra.
        """
        plan: FailoverPlan = _files().load(source, cls, format=format)
        return plan

    def save(self, path: str | os.PathLike[str], *, format: str | None = None) -> Path:
        """Write the plan to ``path`` (TOML or YAML by its suffix, or ``format``)."""
        saved: Path = _files().save(self, path, format=format)
        return saved

    def to_toml(self) -> str:
        """The plan as TOML text that :meth:`load` reads back to an equal plan."""
        text: str = _files().dumps(self, "toml")
        return text

    def to_yaml(self) -> str:
        """The plan as YAML text that :meth:`load` reads back to an equal plan."""
        text: str = _files().dumps(self, "yaml")
        return text

    # --- checking and compiling --------------------------------------------------------------

    def validate(
        self,
        backend: Backend,
        kind: FailoverKind | str,
        *,
        force: bool = False,
        now: datetime | None = None,
    ) -> Findings:
        """The pre-flight: every problem a failover of ``kind`` would meet, blocking or warning.

        Reads the backend's inventory, the recovery points of the plan's replicas and the point
        limit; makes no call that changes anything. ``now`` defaults to the backend's clock.
        The :class:`~vmfailover.errors.Findings` list shows itself as a table in Jupyter.
        """
        from vmfailover.plan.check import check, gather

        kind = as_enum(FailoverKind, kind, "kind")
        force = as_flag(force, "force")
        if now is not None:
            now = aware_utc(now, "now")
        if not callable(getattr(backend, "inventory", None)):
            raise ValidationError.of("validate", f"needs a backend, got {backend!r:.80}")
        facts = gather(self, backend, now=now)
        return Findings(check(self, facts, kind, force=force))

    def compile(
        self,
        inventory: Inventory,
        kind: FailoverKind | str,
        *,
        points: Mapping[str, Iterable[RecoveryPoint]],
        now: datetime,
        force: bool = False,
        point_limit: int | None = None,
    ) -> CompiledPlan:
        """Resolve the plan against ``inventory`` and the replicas' ``points`` (replica id ->
        points) into the per-VM work of a failover of ``kind``.

        Raises :class:`ValidationError` with every blocking finding; warnings travel with the
        result (:attr:`CompiledPlan.warnings`).
        """
        from vmfailover.plan.check import Facts
        from vmfailover.plan.compiled import compile_plan

        facts = Facts.of(inventory, points, now=now, point_limit=point_limit)
        return compile_plan(self, facts, kind, force=force)


_FILE_PACKAGES = {"cattrs": "cattrs", "tomli_w": "tomli-w", "yaml": "PyYAML"}


def _files() -> ModuleType:
    """The plan-file module, or a :class:`MissingExtraError` naming the extra to install."""
    try:
        from vmfailover.plan import files
    except ModuleNotFoundError as error:
        if error.name not in _FILE_PACKAGES:
            raise
        raise MissingExtraError(
            "files", "files", _FILE_PACKAGES[error.name], what="plan files"
        ) from None
    return files
