"""What changed between two plans, in words, for the people who review a change to a DR plan.

A text diff of two plan files shows lines; a reviewer wants to know what a failover will do
differently: a VM that joins the plan, a dependency that moved, a probe that got stricter, a
network that maps elsewhere, a re-IP rule that changed, a recovery point choice, an objective.
:func:`diff` compares the plans as data (the start orders completed with every VM, rules keyed
by their source pattern, steps by name), so reordering a file changes nothing it reports.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import attrs

from vmfailover import _render
from vmfailover.plan.plan import FailoverPlan
from vmfailover.plan.steps import Approval, Step
from vmfailover.policy.reip import ReIPOverride, ReIPRule, ReIPRules
from vmfailover.policy.sequencer import StartEntry, StartOrder

__all__ = ["Change", "ChangeKind", "PlanDiff", "diff"]


class ChangeKind(enum.StrEnum):
    """Whether something was added, removed or changed."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@attrs.frozen
class Change:
    """One difference: in ``area`` (``vms``, ``order``, ``network``, ``reip`` ...), what
    ``subject`` (``VM 'db01'``, ``rule '192.168.1.*'``) did, and its values before and after
    (``None`` where it did not exist)."""

    area: str
    subject: str
    kind: ChangeKind
    before: str | None = None
    after: str | None = None

    def __str__(self) -> str:
        if self.kind is ChangeKind.ADDED:
            text = f"{self.subject} added"
            return f"{text}: {self.after}" if self.after else text
        if self.kind is ChangeKind.REMOVED:
            text = f"{self.subject} removed"
            return f"{text} (was {self.before})" if self.before else text
        return f"{self.subject} changed from {self.before} to {self.after}"


@attrs.frozen
class PlanDiff:
    """The changes from plan ``before`` to plan ``after``, in a stable order."""

    before: str
    after: str
    changes: tuple[Change, ...]

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def _title(self) -> str:
        names = (
            f"plan {self.before!r}"
            if self.before == self.after
            else f"plan {self.before!r} -> {self.after!r}"
        )
        count = len(self.changes)
        if not count:
            return f"{names}: no changes"
        return f"{names}: {count} change{'s' if count != 1 else ''}"

    def __str__(self) -> str:
        lines = [self._title()]
        lines.extend(f"  {change.area}: {change}" for change in self.changes)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [
            (
                change.area,
                change.subject,
                change.kind.value,
                change.before or "",
                change.after or "",
            )
            for change in self.changes
        ]
        return _render.html_table(
            ("area", "what", "change", "before", "after"), rows, title=self._title()
        )


def diff(before: FailoverPlan, after: FailoverPlan) -> PlanDiff:
    """What changed from ``before`` to ``after`` (also ``before.diff(after)``)."""
    changes: list[Change] = []
    _scalars(before, after, changes)
    _vms(before, after, changes)
    _points(before, after, changes)
    _order(before, after, changes)
    _network(before, after, changes)
    _rules("reip", before.reip, after.reip, changes)
    _rules("test_reip", before.test_reip, after.test_reip, changes)
    _overrides(before.reip_overrides, after.reip_overrides, changes)
    _steps(before.steps, after.steps, changes)
    return PlanDiff(before.name, after.name, tuple(changes))


# --- helpers ------------------------------------------------------------------------------------


def _show(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, enum.Enum):
        return _render.in_words(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list | frozenset | set):
        items = sorted(value, key=str) if isinstance(value, frozenset | set) else value
        return ", ".join(_show(item) for item in items) if items else "(none)"
    return str(value)


def _seconds(value: float | None) -> str:
    return "(none)" if value is None else _render.format_duration(value)


def _compare(
    changes: list[Change],
    area: str,
    subject: str,
    before: object,
    after: object,
    show: Callable[[Any], str] = _show,
) -> None:
    if before != after:
        changes.append(Change(area, subject, ChangeKind.CHANGED, show(before), show(after)))


def _keyed(
    area: str,
    label: Callable[[Any], str],
    before: Mapping[Any, Any],
    after: Mapping[Any, Any],
    changes: list[Change],
    describe: Callable[[Any], str],
    compare: Callable[[Any, Any, str], Iterable[Change]],
) -> None:
    for key, item in after.items():
        if key not in before:
            changes.append(Change(area, label(key), ChangeKind.ADDED, after=describe(item)))
    for key, item in before.items():
        if key not in after:
            changes.append(Change(area, label(key), ChangeKind.REMOVED, before=describe(item)))
        else:
            changes.extend(compare(item, after[key], label(key)))


# --- areas --------------------------------------------------------------------------------------


def _scalars(before: FailoverPlan, after: FailoverPlan, changes: list[Change]) -> None:
    _compare(changes, "plan", "name", before.name, after.name)
    _compare(changes, "plan", "description", before.description, after.description, repr)
    _compare(
        changes, "power-off", "power off source", before.power_off_source, after.power_off_source
    )
    _compare(
        changes,
        "power-off",
        "shutdown timeout",
        before.shutdown_timeout,
        after.shutdown_timeout,
        _seconds,
    )
    _compare(changes, "objectives", "RPO", before.rpo, after.rpo, _seconds)
    _compare(changes, "objectives", "RTO", before.rto, after.rto, _seconds)


def _vms(before: FailoverPlan, after: FailoverPlan, changes: list[Change]) -> None:
    for name in after.vms:
        if name not in before.vms:
            changes.append(Change("vms", f"VM {name!r}", ChangeKind.ADDED))
    for name in before.vms:
        if name not in after.vms:
            changes.append(Change("vms", f"VM {name!r}", ChangeKind.REMOVED))


def _points(before: FailoverPlan, after: FailoverPlan, changes: list[Change]) -> None:
    if not isinstance(before.recovery_point, Mapping) and not isinstance(
        after.recovery_point, Mapping
    ):
        _compare(changes, "recovery point", "choice", before.recovery_point, after.recovery_point)
        return
    for vm in after.vms:
        if vm in before.vms:
            _compare(
                changes,
                "recovery point",
                f"VM {vm!r}",
                before.point_choice(vm),
                after.point_choice(vm),
            )


def _describe_entry(entry: StartEntry) -> str:
    parts = []
    if entry.after:
        parts.append(f"after {_show(entry.after)}")
    if entry.group is not None:
        parts.append(f"group {entry.group}")
    if entry.probe is not None:
        parts.append(f"probe {entry.probe.describe()}")
    return ", ".join(parts)


def _entry_changes(before: StartEntry, after: StartEntry, subject: str) -> Iterator[Change]:
    added = [name for name in after.after if name not in before.after]
    removed = [name for name in before.after if name not in after.after]
    if added or removed:
        yield Change(
            "order",
            f"{subject} dependencies",
            ChangeKind.CHANGED,
            _show(before.after),
            _show(after.after),
        )
    found: list[Change] = []
    _compare(found, "order", f"{subject} group", before.group, after.group)
    _compare(
        found,
        "order",
        f"{subject} probe",
        before.probe,
        after.probe,
        lambda probe: "(none)" if probe is None else f"{probe.describe()} ({probe.timeout:g} s)",
    )
    _compare(found, "order", f"{subject} timeout", before.timeout, after.timeout, _seconds)
    _compare(found, "order", f"{subject} on failure", before.on_failure, after.on_failure)
    _compare(
        found,
        "order",
        f"{subject} resources",
        sorted(before.resources),
        sorted(after.resources),
    )
    yield from found


def _order(before: FailoverPlan, after: FailoverPlan, changes: list[Change]) -> None:
    old, new = before.start_order(), after.start_order()
    _order_settings(before.order, after.order, changes)
    shared_before = {entry.name: entry for entry in old if entry.name in after.vms}
    shared_after = {entry.name: entry for entry in new if entry.name in before.vms}
    _keyed(
        "order",
        lambda name: f"VM {name!r}",
        shared_before,
        shared_after,
        changes,
        _describe_entry,
        _entry_changes,
    )
    for name in after.vms:
        if name not in before.vms and name in new:
            description = _describe_entry(new.entry(name))
            if description:
                changes.append(Change("order", f"VM {name!r}", ChangeKind.ADDED, after=description))


def _order_settings(
    before: StartOrder | None, after: StartOrder | None, changes: list[Change]
) -> None:
    old = before if before is not None else StartOrder()
    new = after if after is not None else StartOrder()
    _compare(changes, "order", "max parallel", old.max_parallel, new.max_parallel)
    _compare(changes, "order", "group mode", old.groups, new.groups)
    _keyed(
        "order",
        lambda name: f"limit on {name!r}",
        old.limits,
        new.limits,
        changes,
        lambda capacity: f"{capacity} at once",
        lambda a, b, subject: (
            [Change("order", subject, ChangeKind.CHANGED, str(a), str(b))] if a != b else []
        ),
    )


def _network(before: FailoverPlan, after: FailoverPlan, changes: list[Change]) -> None:
    if (before.network is None) != (after.network is None):
        changes.append(
            Change(
                "network",
                "network mapping",
                ChangeKind.ADDED if after.network is not None else ChangeKind.REMOVED,
            )
        )
    old, new = before.network, after.network
    for table in ("production", "test"):
        old_table = getattr(old, table) if old is not None else {}
        new_table = getattr(new, table) if new is not None else {}
        _keyed(
            "network",
            functools.partial(_mapping_label, table),
            old_table,
            new_table,
            changes,
            lambda target: f"-> {target!r}",
            lambda a, b, subject: (
                [Change("network", subject, ChangeKind.CHANGED, a, b)] if a != b else []
            ),
        )
    if old is not None and new is not None:
        _compare(changes, "network", "same_name", old.same_name, new.same_name)
        _compare(
            changes,
            "network",
            "allow_non_isolated_test",
            old.allow_non_isolated_test,
            new.allow_non_isolated_test,
        )


def _mapping_label(table: str, source: str) -> str:
    return f"{table} mapping of {source!r}"


def _describe_rule(rule: ReIPRule) -> str:
    text = f"-> {rule.target}"
    if rule.result_prefix is not None:
        text += f"/{rule.result_prefix}"
    if rule.gateway is not None:
        text += f", gateway {rule.gateway}"
    if rule.dns:
        text += f", DNS {_show(tuple(str(server) for server in rule.dns))}"
    return text


def _rule_changes(before: ReIPRule, after: ReIPRule, subject: str) -> list[Change]:
    if before == after:
        return []
    return [
        Change("reip", subject, ChangeKind.CHANGED, _describe_rule(before), _describe_rule(after))
    ]


def _rules(
    area: str, before: ReIPRules | None, after: ReIPRules | None, changes: list[Change]
) -> None:
    if (before is None) != (after is None):
        changes.append(
            Change(
                area,
                "re-IP" if area == "reip" else "test re-IP",
                ChangeKind.ADDED if after is not None else ChangeKind.REMOVED,
            )
        )
    found: list[Change] = []
    _keyed(
        area,
        lambda source: f"rule {source!r}",
        {rule.source: rule for rule in before or ()},
        {rule.source: rule for rule in after or ()},
        found,
        _describe_rule,
        _rule_changes,
    )
    changes.extend(attrs.evolve(change, area=area) for change in found)


def _describe_override(override: ReIPOverride) -> str:
    if override.dhcp:
        return "DHCP"
    return ", ".join(str(config.address) for config in override.ip_configs)


def _overrides(
    before: tuple[ReIPOverride, ...], after: tuple[ReIPOverride, ...], changes: list[Change]
) -> None:
    _keyed(
        "reip_overrides",
        lambda key: f"override for VM {key[0]!r} NIC {key[1]}",
        {(item.vm, item.mac): item for item in before},
        {(item.vm, item.mac): item for item in after},
        changes,
        _describe_override,
        lambda a, b, subject: (
            [
                Change(
                    "reip_overrides",
                    subject,
                    ChangeKind.CHANGED,
                    _describe_override(a),
                    _describe_override(b),
                )
            ]
            if a != b
            else []
        ),
    )


def _describe_step(item: Step | Approval) -> str:
    where = (
        f"VM {item.vm!r}"
        if item.vm is not None
        else f"group {item.group}"
        if item.group is not None
        else "the plan"
    )
    what = "approval" if isinstance(item, Approval) else f"runs {item.describe()}"
    return f"{what}, {item.when.value} {where}"


def _step_changes(before: Step | Approval, after: Step | Approval, subject: str) -> list[Change]:
    if type(before) is not type(after):
        return [
            Change(
                "steps", subject, ChangeKind.CHANGED, _describe_step(before), _describe_step(after)
            )
        ]
    found: list[Change] = []
    if isinstance(before, Step) and isinstance(after, Step):
        _compare(found, "steps", f"{subject} command", before.command, after.command, _argv)
        _compare(found, "steps", f"{subject} on failure", before.on_failure, after.on_failure)
    _compare(found, "steps", f"{subject} when", before.when, after.when)
    _compare(
        found,
        "steps",
        f"{subject} scope",
        (before.vm, before.group),
        (after.vm, after.group),
        lambda scope: (
            f"VM {scope[0]!r}"
            if scope[0] is not None
            else f"group {scope[1]}"
            if scope[1] is not None
            else "the plan"
        ),
    )
    _compare(found, "steps", f"{subject} timeout", before.timeout, after.timeout, _seconds)
    _compare(found, "steps", f"{subject} kinds", before.kinds, after.kinds)
    return found


def _argv(command: tuple[str, ...] | None) -> str:
    return "(a Python callable)" if command is None else " ".join(command)


def _steps(
    before: tuple[Step | Approval, ...],
    after: tuple[Step | Approval, ...],
    changes: list[Change],
) -> None:
    old = {item.name: item for item in before}
    new = {item.name: item for item in after}
    _keyed(
        "steps",
        lambda name: f"step {name!r}",
        old,
        new,
        changes,
        _describe_step,
        _step_changes,
    )
    shared = [name for name in old if name in new]
    if shared != [name for name in new if name in old]:
        changes.append(
            Change(
                "steps",
                "order of steps",
                ChangeKind.CHANGED,
                _show(tuple(shared)),
                _show(tuple(name for name in new if name in old)),
            )
        )
