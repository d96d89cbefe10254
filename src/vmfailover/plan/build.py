"""Documents to API objects and back: a :class:`PlanDocument` becomes a :class:`FailoverPlan`.

Field types were checked when the document was read (:mod:`vmfailover.plan.convert`); what is left
is what only the whole plan can tell: references (a start-order VM or an ``after`` that is not one
of the plan's VMs, a step naming an unknown VM), names given twice, a dependency cycle, and the
checks the API's own constructors make. Each problem becomes a finding named by its path in the
file. The way back refuses what a file cannot hold (Python callables), naming the step or probe.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from vmfailover._render import listing
from vmfailover.errors import Finding, ValidationError
from vmfailover.model import FailoverKind, IPConfig
from vmfailover.plan.convert import Path, format_path
from vmfailover.plan.documents import (
    FORMAT_VERSION,
    ApprovalDocument,
    HTTPStatusProbe,
    IPAssignedProbe,
    IPConfigDocument,
    NetworkDocument,
    OrderDocument,
    OrderVMDocument,
    OverrideDocument,
    PlanDocument,
    PoweredOnProbe,
    ProbeDocument,
    RetentionDocument,
    RuleDocument,
    StepDocument,
    StepItem,
    TCPPortProbe,
    ToolsHeartbeatProbe,
)
from vmfailover.plan.plan import FailoverPlan
from vmfailover.plan.steps import Approval, Step
from vmfailover.policy.netmap import NetworkMapping
from vmfailover.policy.probes import (
    CallableProbe,
    HTTPStatus,
    IPAssigned,
    PoweredOn,
    Probe,
    TCPPort,
    ToolsHeartbeat,
)
from vmfailover.policy.reip import ReIPOverride, ReIPRule, ReIPRules
from vmfailover.policy.retention import WITHIN_RULES, RetentionPolicy
from vmfailover.policy.sequencer import StartOrder

__all__ = [
    "plan_from_document",
    "plan_to_document",
    "retention_from_document",
    "retention_to_document",
]

T = TypeVar("T")

_PROBES: dict[type, type] = {
    PoweredOnProbe: PoweredOn,
    ToolsHeartbeatProbe: ToolsHeartbeat,
    IPAssignedProbe: IPAssigned,
    TCPPortProbe: TCPPort,
    HTTPStatusProbe: HTTPStatus,
}
_PROBE_DOCUMENTS = {api: document for document, api in _PROBES.items()}


def _quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


class _Problems:
    """Findings collected while building, each named by its path in the file."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, path: Path, message: str, hint: str | None = None) -> None:
        self.findings.append(Finding(format_path(path), message, hint=hint))

    def attempt(self, path: Path, build: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``build(*args, **kwargs)``, or None with its findings recorded at ``path``."""
        try:
            return build(*args, **kwargs)
        except ValidationError as error:
            for finding in error.findings:
                self.findings.append(
                    Finding(
                        format_path(path),
                        f"{finding.item}: {finding.message}",
                        finding.severity,
                        finding.hint,
                    )
                )
            return None

    def raise_if_any(self) -> None:
        if self.findings:
            raise ValidationError(self.findings)


def _fields(document: Any) -> dict[str, Any]:
    """An attrs object's fields by name, for the API class with the same parameters."""
    return {field.name: getattr(document, field.name) for field in attrs.fields(type(document))}


# --- file -> API --------------------------------------------------------------------------------


def plan_from_document(document: PlanDocument) -> FailoverPlan:
    """The plan a document describes; a :class:`ValidationError` names every problem's path."""
    problems = _Problems()
    if document.format_version != FORMAT_VERSION:
        problems.add(
            ("format_version",),
            f"this vmfailover reads format {FORMAT_VERSION}, the file is format "
            f"{document.format_version}",
            "upgrade vmfailover, or write the plan in the format this version reads",
        )
    known = _plan_vms(document.vms, problems)
    order = _order(document.order, known, problems) if document.order is not None else None
    network = (
        problems.attempt(("network",), NetworkMapping, **_fields(document.network))
        if document.network is not None
        else None
    )
    reip = _rules(document.reip, "reip", problems)
    test_reip = _rules(document.test_reip, "test_reip", problems)
    overrides = [
        problems.attempt(("reip_overrides", index), _override, item)
        for index, item in enumerate(document.reip_overrides)
    ]
    steps = _steps(document.steps, known, problems)
    if isinstance(document.recovery_point, dict):
        for vm in document.recovery_point:
            if vm not in known:
                problems.add(
                    ("recovery_point", vm),
                    f"names VM {_quoted(vm)}, which is not one of the plan's vms",
                    f"the plan's VMs: {listing(known)}",
                )
    problems.raise_if_any()
    plan = problems.attempt(
        (),
        FailoverPlan,
        name=document.name,
        vms=document.vms,
        order=order,
        network=network,
        reip=reip,
        test_reip=test_reip,
        recovery_point=document.recovery_point,
        power_off_source=document.power_off_source,
        rpo=document.rpo,
        rto=document.rto,
        auto_commit=document.auto_commit,
        auto_undo=document.auto_undo,
        steps=steps,
        reip_overrides=overrides,
        shutdown_timeout=document.shutdown_timeout,
        description=document.description,
    )
    problems.raise_if_any()
    assert plan is not None
    if plan.order is not None:
        for finding in plan.start_order().validate():
            if finding.blocking:
                problems.add(("order",), f"{finding.item} {finding.message}", finding.hint)
    problems.raise_if_any()
    return plan


def _plan_vms(vms: Iterable[str], problems: _Problems) -> dict[str, int]:
    known: dict[str, int] = {}
    for index, name in enumerate(vms):
        if name in known:
            problems.add(
                ("vms", index),
                f"{_quoted(name)} is listed twice (first as vms[{known[name]}])",
                "list each VM of the plan once",
            )
        else:
            known[name] = index
    if not known:
        problems.add(("vms",), "a plan needs at least one VM")
    return known


def _unknown_vm(path: Path, name: str, known: Mapping[str, int], problems: _Problems) -> None:
    problems.add(
        path, f"unknown VM {_quoted(name)}", f"the plan's vms are {listing(known, quoted=True)}"
    )


def _order(document: OrderDocument, known: Mapping[str, int], problems: _Problems) -> StartOrder:
    order = problems.attempt(
        ("order",), StartOrder, max_parallel=document.max_parallel, groups=document.groups
    )
    if order is None:  # the finding is recorded; go on to find the entries' problems too
        order = StartOrder(groups=document.groups)
    for resource, capacity in document.limits.items():
        problems.attempt(("order", "limits", resource), order.limit, resource, capacity)
    seen: dict[str, int] = {}
    for index, entry in enumerate(document.vms):
        path: Path = ("order", "vms", index)
        if entry.name not in known:
            _unknown_vm((*path, "name"), entry.name, known, problems)
        if entry.name in seen:
            problems.add(
                (*path, "name"),
                f"{_quoted(entry.name)} is in the start order twice (first as "
                f"order.vms[{seen[entry.name]}])",
                "give each VM one entry, with all it waits for in one `after`",
            )
            continue
        seen[entry.name] = index
        for position, name in enumerate(entry.after):
            if name not in known:
                _unknown_vm((*path, "after", position), name, known, problems)
        for position, resource in enumerate(entry.resources):
            if resource not in document.limits:
                problems.add(
                    (*path, "resources", position),
                    f"resource {_quoted(resource)} has no capacity in order.limits",
                    f"add it to order.limits, e.g. {_quoted(resource)} = 2",
                )
        problems.attempt(
            path,
            order.add,
            entry.name,
            after=entry.after,
            group=entry.group,
            probe=_probe(entry.probe),
            timeout=entry.timeout,
            on_failure=entry.on_failure,
            resources=entry.resources,
        )
    return order


def _probe(document: ProbeDocument | None) -> Probe | None:
    if document is None:
        return None
    built: Probe = _PROBES[type(document)](**_fields(document))
    return built


def _rules(
    documents: tuple[RuleDocument, ...] | None, key: str, problems: _Problems
) -> ReIPRules | None:
    if documents is None:
        return None
    rules = [
        problems.attempt((key, index), ReIPRule, **_fields(document))
        for index, document in enumerate(documents)
    ]
    checked = [rule for rule in rules if rule is not None]
    if len(checked) != len(rules):
        return None
    return problems.attempt((key,), ReIPRules, checked)


def _override(document: OverrideDocument) -> ReIPOverride:
    configs = [IPConfig(**_fields(config)) for config in document.ip_configs]
    return ReIPOverride(document.vm, document.mac, configs, dhcp=document.dhcp)


def _steps(
    documents: tuple[StepItem, ...], known: Mapping[str, int], problems: _Problems
) -> list[Step | Approval]:
    steps: list[Step | Approval] = []
    names: dict[str, int] = {}
    for index, document in enumerate(documents):
        path: Path = ("steps", index)
        if document.name in names:
            problems.add(
                (*path, "name"),
                f"{_quoted(document.name)} is the name of steps[{names[document.name]}] too",
                "give each step and approval its own name",
            )
        names.setdefault(document.name, index)
        if document.vm is not None and document.vm not in known:
            _unknown_vm((*path, "vm"), document.vm, known, problems)
        settings = _fields(document)
        if isinstance(document, StepDocument):
            settings["action"] = settings.pop("command")
            if not document.command or not document.command[0].strip():
                problems.add(
                    (*path, "command"),
                    "must name the program to run first",
                    "for example command = ['/usr/local/bin/update-dns', '--zone', 'corp']",
                )
                continue
            item: Step | Approval | None = problems.attempt(path, Step, **settings)
        else:
            item = problems.attempt(path, Approval, **settings)
        if item is not None:
            steps.append(item)
    return steps


def retention_from_document(document: RetentionDocument) -> RetentionPolicy:
    """The retention policy a document describes."""
    problems = _Problems()
    policy = problems.attempt((), RetentionPolicy, **_fields(document))
    problems.raise_if_any()
    assert policy is not None
    return policy


# --- API -> file --------------------------------------------------------------------------------


def plan_to_document(plan: FailoverPlan) -> PlanDocument:
    """The document of ``plan``; refuses what a file cannot hold (Python callables), by path."""
    problems = _Problems()
    order = _order_document(plan.order, problems) if plan.order is not None else None
    network = None
    if plan.network is not None:
        network = NetworkDocument(
            production=dict(plan.network.production),
            test=dict(plan.network.test),
            same_name=plan.network.same_name,
            allow_non_isolated_test=plan.network.allow_non_isolated_test,
        )
    steps = [_step_document(index, item, problems) for index, item in enumerate(plan.steps)]
    problems.raise_if_any()
    recovery_point: Any = plan.recovery_point
    if isinstance(recovery_point, Mapping):
        recovery_point = dict(recovery_point)
    return PlanDocument(
        name=plan.name,
        vms=plan.vms,
        description=plan.description,
        recovery_point=recovery_point,
        power_off_source=plan.power_off_source,
        shutdown_timeout=plan.shutdown_timeout,
        rpo=plan.rpo,
        rto=plan.rto,
        auto_commit=plan.auto_commit,
        auto_undo=plan.auto_undo,
        order=order,
        network=network,
        reip=_rule_documents(plan.reip),
        test_reip=_rule_documents(plan.test_reip),
        reip_overrides=tuple(_override_document(item) for item in plan.reip_overrides),
        steps=tuple(item for item in steps if item is not None),
    )


def _order_document(order: StartOrder, problems: _Problems) -> OrderDocument:
    entries = []
    for index, entry in enumerate(order):
        probe = None
        if isinstance(entry.probe, CallableProbe):
            problems.add(
                ("order", "vms", index, "probe"),
                f"VM {_quoted(entry.name)} has a Python callable probe "
                f"({entry.probe.describe()}), which a plan file cannot hold",
                "use a tcp_port or http_status probe, or set the callable probe in code after "
                "loading the plan",
            )
        elif entry.probe is not None:
            probe = _PROBE_DOCUMENTS[type(entry.probe)](**_fields(entry.probe))
        entries.append(
            OrderVMDocument(
                name=entry.name,
                after=entry.after,
                group=entry.group,
                probe=probe,
                timeout=entry.timeout,
                on_failure=entry.on_failure,
                resources=entry.resources,
            )
        )
    return OrderDocument(
        max_parallel=order.max_parallel,
        groups=order.groups,
        limits=dict(order.limits),
        vms=tuple(entries),
    )


def _rule_documents(rules: ReIPRules | None) -> tuple[RuleDocument, ...] | None:
    if rules is None:
        return None
    return tuple(
        RuleDocument(
            source=rule.source,
            target=rule.target,
            prefix=rule.prefix,
            mask=rule.mask,
            gateway=None if rule.gateway is None else str(rule.gateway),
            dns=tuple(str(server) for server in rule.dns),
            dns_suffixes=rule.dns_suffixes,
            description=rule.description,
        )
        for rule in rules
    )


def _override_document(override: ReIPOverride) -> OverrideDocument:
    return OverrideDocument(
        vm=override.vm,
        mac=override.mac,
        ip_configs=tuple(
            IPConfigDocument(
                address=str(config.address),
                gateway=None if config.gateway is None else str(config.gateway),
                dns=tuple(str(server) for server in config.dns),
                dns_suffixes=config.dns_suffixes,
            )
            for config in override.ip_configs
        ),
        dhcp=override.dhcp,
    )


def _kinds(item: Step | Approval) -> tuple[FailoverKind, ...] | None:
    if item.kinds == frozenset(FailoverKind):
        return None
    return tuple(kind for kind in FailoverKind if kind in item.kinds)


def _step_document(index: int, item: Step | Approval, problems: _Problems) -> StepItem | None:
    path: Path = ("steps", index)
    scope: dict[str, Any] = {
        "name": item.name,
        "when": item.when,
        "vm": item.vm,
        "group": item.group,
        "timeout": item.timeout,
        "kinds": _kinds(item),
    }
    if isinstance(item, Approval):
        if item.approver is not None:
            problems.add(
                (*path, "approver"),
                f"approval {_quoted(item.name)} has a Python approver callable, which a plan "
                "file cannot hold",
                "save the plan without it and pass the approver in code, or approve with "
                "run.approve(name)",
            )
            return None
        return ApprovalDocument(**scope)
    if item.command is None:
        what = getattr(item.action, "__qualname__", repr(item.action))
        problems.add(
            (*path, "command"),
            f"step {_quoted(item.name)} runs a Python callable ({what}), which a plan file "
            "cannot hold",
            "make it an argv command, or add the callable step in code after loading the plan",
        )
        return None
    return StepDocument(command=item.command, on_failure=item.on_failure, **scope)


def retention_to_document(policy: RetentionPolicy) -> RetentionDocument:
    """The document of a retention policy."""
    settings = {
        field.name: getattr(policy, field.name)
        for field in attrs.fields(RetentionPolicy)
        if field.init
    }
    for name in ("within", *WITHIN_RULES):
        window = settings[name]
        settings[name] = None if window is None else str(window)
    return RetentionDocument(**settings)
