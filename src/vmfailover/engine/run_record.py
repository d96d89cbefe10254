"""A run's record in the journal: the compiled plan and what the run knew when it started.

Everything a later process needs to go on with the run without checking the plan again: the
compiled plan (VM names and ids, replicas and recovery points, NIC changes, expected addresses,
the start order with its probes and limits, the steps), which sources answered at pre-flight,
the expected durations, and the inventory before it: all of it for a test (its cleanup proves it
back), what the run touches for a production run (its undo restores that and proves it back).
A failback run's record names the run it fails back and what reversing replication did; a
host failover's or a move back's names what it was (``host_run``: the cluster, the failed hosts
and the placement; or the host failover it undoes and each VM's home), so that resuming it
restarts or moves its VMs as the interrupted process would have.
The plan itself is kept as far as the run uses it (name, VMs, objectives, shutdown timeout);
its network mapping and re-IP rules are already resolved into each VM's NIC changes.

Python callables (a callable step, a callable probe, an approver) cannot be stored: the record
names them, and such a run is resumed with its plan given again (``runner.resume(id, plan=)``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from vmfailover.engine.journal_codec import (
    OrderRecord,
    StoredCallable,
    build_order,
    decode,
    encode,
    holds_callable,
)
from vmfailover.errors import ConflictError, Finding, ValidationError
from vmfailover.model import FailoverKind, Inventory
from vmfailover.plan import Approval, CompiledPlan, FailoverPlan, Step
from vmfailover.policy.probes import PROBE_TYPES, CallableProbe
from vmfailover.policy.sequencer import StartEntry

__all__ = [
    "RECORD_FORMAT",
    "RunRecord",
    "read_host_run",
    "read_plan_vms",
    "read_record",
    "write_decision_record",
    "write_record",
]

RECORD_FORMAT = 1
"""The version of the record layout inside the journal's schema."""


@attrs.frozen
class RunRecord:
    """What :func:`read_record` gives back."""

    compiled: CompiledPlan
    reachable_sources: frozenset[str]
    weights: Mapping[str, float] | None
    inventory_before: Inventory | None
    backend: str
    failback_of: str | None = None
    """The run this one fails back (its failback run), or None."""
    failback: Any = None
    """The failback's :class:`~vmfailover.engine.aftercare_results.FailbackResult` as the
    reversal left it, for a failback run."""
    host_run: Mapping[str, Any] | None = None
    """For a host failover or a move back: what :mod:`vmfailover.engine.host_run` needs to
    resume it and report it (``{"operation": "host_failover" | "move_back", ...}``, JSON as
    stored); None for a plan's run."""


def write_record(
    compiled: CompiledPlan,
    *,
    reachable_sources: frozenset[str],
    weights: Mapping[str, float] | None,
    inventory_before: Inventory | None,
    backend: str,
    failback_of: str | None = None,
    failback: object = None,
    host_run: Mapping[str, Any] | None = None,
) -> str:
    """The record of a run of ``compiled`` as journal text."""
    plan = compiled.plan
    data: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "backend": backend,
        "kind": encode(compiled.kind),
        "plan": {
            "name": plan.name,
            "description": plan.description,
            "vms": list(plan.vms),
            "rto": plan.rto,
            "rpo": plan.rpo,
            "shutdown_timeout": plan.shutdown_timeout,
            "power_off_source": encode(plan.power_off_source),
            "auto_commit": plan.auto_commit,
            "auto_undo": plan.auto_undo,
        },
        "order": encode(compiled.order),
        "vms": encode(compiled.vms),
        "steps": encode(compiled.steps),
        "warnings": encode(compiled.warnings),
        "decisions": list(compiled.decisions),
        "reachable_sources": sorted(reachable_sources),
        "weights": None if weights is None else dict(weights),
        "inventory_before": encode(inventory_before),
    }
    if failback_of is not None:
        data["failback_of"] = failback_of
        data["failback"] = encode(failback)
    if host_run is not None:
        data["host_run"] = dict(host_run)
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def read_host_run(text: str) -> Mapping[str, Any] | None:
    """What a host failover's or move back's record says the run is (its ``host_run``), or
    None for a plan's run; needs none of the record's callables."""
    host_run = _data(text).get("host_run")
    if host_run is not None and not (
        isinstance(host_run, dict) and host_run.get("operation") in ("host_failover", "move_back")
    ):
        raise ValidationError.of("run record", f"has an unknown host_run {host_run!r}")
    return host_run


def read_plan_vms(text: str) -> tuple[str, ...]:
    """The names of the VMs the run's plan held, read from its record without rebuilding the
    plan (no callables needed): what a drill checks a run against."""
    plan = _data(text).get("plan")
    vms = plan.get("vms") if isinstance(plan, dict) else None
    if not isinstance(vms, list) or not all(isinstance(name, str) for name in vms):
        raise ValidationError.of("run record", f"has no list of VM names in its plan: {vms!r:.80}")
    return tuple(vms)


def write_decision_record(
    *, name: str, description: str, kind: FailoverKind, backend: str, host_run: Mapping[str, Any]
) -> str:
    """The record of a host run that decided there was nothing to do (no VM to restart): what
    it decided, for the journal's history; there is no plan to run, so it cannot be taken up
    (:func:`read_record` says so)."""
    data: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "backend": backend,
        "kind": encode(kind),
        "plan": {"name": name, "description": description, "vms": []},
        "vms": [],
        "host_run": {**host_run, "empty": True},
    }
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _data(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ValidationError.of("run record", f"is not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ValidationError.of(
            "run record", f"has format {found!r}; this vmfailover reads format {RECORD_FORMAT}"
        )
    return data


def read_record(
    text: str,
    plan: FailoverPlan | None = None,
    *,
    probes: Mapping[str, object] | None = None,
    stand_ins: bool = False,
) -> RunRecord:
    """The run record in ``text``; ``plan`` supplies what could not be stored (callables), or
    ``probes`` (VM name -> probe) the callable readiness probes alone. With ``stand_ins`` a
    callable given by neither stays a stand-in that refuses to be called (for reading a report,
    which calls none).

    Raises :class:`~vmfailover.errors.ValidationError` naming each callable the record lacks
    when neither is given, or how ``plan`` differs from the journaled one;
    :class:`~vmfailover.errors.ConflictError` for a host run that decided there was nothing to
    do (it has no plan to take up).
    """
    data = _data(text)
    host_run = read_host_run(text)
    if host_run is not None and host_run.get("empty"):
        raise ConflictError(
            f"{data['plan']['name']} had nothing to restart: its run ended when it was "
            "decided, there is nothing of it to take up"
        )
    kind = decode(data["kind"])
    stored = data["plan"]
    order_record: OrderRecord = decode(data["order"])
    steps: tuple[Step | Approval, ...] = decode(data["steps"])
    callable_probes = {
        entry.name: probe_name
        for entry in order_record.entries
        if (probe_name := _stored_name(entry.probe)) is not None
    }
    given = _given_probes(probes, callable_probes, plan)
    missing = [
        f"probe of VM {vm!r} ({probe_name})"
        for vm, probe_name in callable_probes.items()
        if vm not in given
    ] + [f"{type(item).__name__.lower()} {item.name!r}" for item in steps if holds_callable(item)]
    if plan is not None:
        _check_same_plan(plan, stored)
        given_order = plan.start_order()
        steps = plan.steps_for(kind)

        def probe(entry: StartEntry) -> object:
            if _stored_name(entry.probe) is not None and entry.name in given_order:
                return given_order.entry(entry.name).probe
            return entry.probe

    else:
        if missing and not stand_ins:
            hint = (
                "resume with the plan given again: runner.resume(run_id, plan=plan)"
                if host_run is None
                else "resume with its probes given again: "
                "runner.resume(run_id, probes={vm_name: probe})"
            )
            raise ValidationError(
                [
                    Finding(item, "is a Python callable, which the journal cannot store", hint=hint)
                    for item in missing
                ]
            )

        def probe(entry: StartEntry) -> object:
            if entry.name in given:
                return given[entry.name]
            name = _stored_name(entry.probe)
            return entry.probe if name is None else CallableProbe(StoredCallable(name))

    order = build_order(order_record, probe)
    if plan is None:
        plan = FailoverPlan(
            name=stored["name"],
            vms=tuple(stored["vms"]),
            order=order,
            rto=stored["rto"],
            rpo=stored["rpo"],
            shutdown_timeout=stored["shutdown_timeout"],
            power_off_source=decode(stored["power_off_source"]),
            steps=steps,
            description=stored["description"],
            auto_commit=stored.get("auto_commit"),
            auto_undo=stored.get("auto_undo"),
        )
    vms = tuple(attrs.evolve(vm, entry=order.entry(vm.name)) for vm in decode(data["vms"]))
    compiled = CompiledPlan(
        plan=plan,
        kind=kind,
        order=order,
        vms=vms,
        steps=steps,
        warnings=decode(data["warnings"]),
        decisions=tuple(data["decisions"]),
    )
    weights = data["weights"]
    inventory = decode(data["inventory_before"])
    return RunRecord(
        compiled=compiled,
        reachable_sources=frozenset(data["reachable_sources"]),
        weights=None if weights is None else dict(weights),
        inventory_before=inventory if isinstance(inventory, Inventory) else None,
        backend=str(data["backend"]),
        failback_of=data.get("failback_of"),
        failback=decode(data.get("failback")),
        host_run=host_run,
    )


def _stored_name(probe: object) -> str | None:
    """The name of a callable probe the journal stored by name only, or None."""
    return probe.name if isinstance(probe, StoredCallable) else None


def _given_probes(
    probes: object, callable_probes: Mapping[str, str], plan: object
) -> dict[str, object]:
    """The probes given to resume a run, checked: one per VM whose probe was a callable."""
    if probes is None:
        return {}
    if plan is not None:
        raise ValidationError.of("resume probes", "give the plan or the probes, not both")
    if not isinstance(probes, Mapping):
        raise ValidationError.of("resume probes", f"must map VM names to probes, got {probes!r}")
    findings = [
        Finding(
            f"probe of VM {name!r}",
            "is not needed: the journal stored this VM's probe (or it has none)"
            if isinstance(name, str)
            else "is keyed by something that is not a VM name",
            hint=f"the VMs whose probe was a Python callable: {', '.join(callable_probes)}"
            if callable_probes
            else "this run held no callable probe",
        )
        for name in probes
        if name not in callable_probes
    ]
    findings += [
        Finding(f"probe of VM {name!r}", f"must be a readiness probe or a function, got {probe!r}")
        for name, probe in probes.items()
        if name in callable_probes and not isinstance(probe, PROBE_TYPES) and not callable(probe)
    ]
    if findings:
        raise ValidationError(findings)
    return {
        name: probe if isinstance(probe, PROBE_TYPES) else CallableProbe(probe)
        for name, probe in probes.items()
    }


def _check_same_plan(plan: object, stored: Mapping[str, Any]) -> None:
    if not isinstance(plan, FailoverPlan):
        raise ValidationError.of("resume plan", f"must be a FailoverPlan, got {plan!r}")
    if plan.name != stored["name"] or set(plan.vms) != set(stored["vms"]):
        raise ValidationError.of(
            "resume plan",
            f"plan {plan.name!r} with VMs {', '.join(plan.vms)} is not the journaled plan "
            f"{stored['name']!r} with VMs {', '.join(stored['vms'])}",
            "give the plan the run was started with",
        )
