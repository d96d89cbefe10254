"""``vmfailover validate`` and ``vmfailover simulate``: a plan file checked and its RTO predicted,
before anything is touched.

Both read the plan file (TOML or YAML; the ``files`` extra) and, with ``--lab``, check it against
the built-in two-site lab (the memory backend's embedded scene), so the whole flow works with no
hypervisor. Neither changes anything anywhere. Each returns its exit code: 0 when the plan
passes, 3 when it was refused; a usage problem (a missing file, an unknown option) is 2.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vmfailover._render import format_duration
from vmfailover.backends.memory.lab import LAB_VMS, lab
from vmfailover.cli.backends import opened_backend
from vmfailover.cli.output import Output
from vmfailover.cli.show import show_findings, show_simulation
from vmfailover.engine.simulate import DurationSpec, LogNormal, SimulationResult, simulate
from vmfailover.errors import Finding, Findings, Severity, ValidationError
from vmfailover.model import FailoverKind, as_enum, is_finite_number, parse_seconds
from vmfailover.plan import FailoverPlan

__all__ = ["EXIT_INVALID", "EXIT_OK", "durations_for", "simulate_command", "validate_command"]

EXIT_OK = 0
EXIT_INVALID = 3


def load_plan(path: Path) -> FailoverPlan:
    """The plan in ``path``; our ValidationError naming the line, column or key otherwise."""
    return FailoverPlan.load(Path(path))


def validate_command(
    output: Output,
    path: Path,
    *,
    kind: str = "test",
    use_lab: bool = False,
    site_lost: str | None = None,
    backend: str | None = None,
    as_json: bool = False,
) -> int:
    """Check the plan file; with ``use_lab`` also the pre-flight of a ``kind`` failover on the
    lab (``site_lost`` first fails that site, as a disaster would), with ``backend`` (a backend
    file, ``lab`` or ``MODULE:FACTORY``) on that backend. Reads only."""
    failover_kind = as_enum(FailoverKind, kind, "--kind")
    plan = load_plan(path)
    findings = Findings(plan.start_order().validate())
    against = "the file alone"
    if use_lab:
        the_lab = lab()
        if site_lost is not None:
            if site_lost not in {site.name for site in the_lab.inventory().sites}:
                raise ValidationError.of(
                    "--site-lost", f"the lab has no site {site_lost!r}", "name site-a or site-b"
                )
            the_lab.fail_site(site_lost)
        lost = f" with {site_lost} lost" if site_lost else ""
        against = f"a {failover_kind.value} failover on the lab{lost}"
        findings = Findings(_unique([*findings, *plan.validate(the_lab, failover_kind)]))
    elif backend is not None:
        with opened_backend(backend, None, save=False) as opened:
            against = f"a {failover_kind.value} failover on {backend}"
            findings = Findings(_unique([*findings, *plan.validate(opened, failover_kind)]))
    code = EXIT_INVALID if findings.blocking else EXIT_OK
    if as_json:
        output.say(
            json.dumps(
                {
                    "plan": plan.name,
                    "file": str(path),
                    "checked": against,
                    "kind": failover_kind.value if use_lab or backend is not None else None,
                    "valid": not findings.blocking,
                    "findings": [_finding_json(f) for f in findings],
                },
                indent=2,
            )
        )
        return code
    output.say(plan.summary())
    show_findings(output, findings, f"Checked against {against}")
    if findings.blocking:
        output.say(f"{path}: refused ({len(findings.errors)} errors)", style="bold red")
    else:
        output.say(f"{path}: valid", style="bold green")
    return code


def _unique(findings: Sequence[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "severity": finding.severity.value,
        "item": finding.item,
        "message": finding.message,
        "hint": finding.hint,
    }


def durations_for(
    vms: Sequence[str],
    given: Sequence[str] = (),
    *,
    default: str | None = None,
    use_lab: bool = False,
    runs: int = 1,
    spread: float = 0.3,
) -> dict[str, DurationSpec]:
    """Each VM's start-to-ready time for :func:`simulate`, from the command line's words.

    ``given`` holds ``VM=DURATION`` (seconds or a span: ``90``, ``2m``); the rest come from the
    lab's boot times with ``use_lab``, then from ``default``. With ``runs`` > 1 each becomes a
    log-normal around that median with ``spread`` (sigma), for a Monte Carlo estimate. A VM
    left without a duration is a finding naming it.
    """
    findings: list[Finding] = []
    medians: dict[str, float] = {}
    if use_lab:
        medians.update({vm: float(LAB_VMS[vm][3]) for vm in vms if vm in LAB_VMS})
    if default is not None:
        seconds = _seconds(default, "--default-duration", findings)
        if seconds is not None:
            medians.update({vm: seconds for vm in vms if vm not in medians})
    for item in given:
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            findings.append(
                Finding(f"--duration {item!r}", "must be VM=DURATION", hint="for example db01=90")
            )
            continue
        if name not in vms:
            findings.append(Finding(f"--duration {item!r}", f"the plan has no VM {name!r}"))
            continue
        seconds = _seconds(value, f"--duration {item!r}", findings)
        if seconds is not None:
            medians[name] = seconds
    missing = [vm for vm in vms if vm not in medians]
    if missing:
        findings.append(
            Finding(
                f"VMs {', '.join(repr(vm) for vm in missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                "have no start-to-ready time",
                hint="give --duration VM=SECONDS, --default-duration SECONDS"
                + ("" if use_lab else ", or --lab for the lab's boot times"),
            )
        )
    if not (is_finite_number(spread) and spread >= 0):
        findings.append(Finding("--spread", f"must be a finite number >= 0, got {spread!r}"))
    if findings:
        raise ValidationError(findings)
    if runs <= 1 or spread == 0:
        return dict(medians)
    return {
        vm: (LogNormal(median, spread) if median > 0 else median) for vm, median in medians.items()
    }


def _seconds(text: str, item: str, findings: list[Finding]) -> float | None:
    value: object = text.strip()
    with contextlib.suppress(ValueError):  # not a number: a span such as "2m"
        value = float(text)
    try:
        return parse_seconds(value, item, allow_zero=True)
    except ValidationError as error:
        findings.extend(error.findings)
        return None


def simulate_command(
    output: Output,
    path: Path,
    *,
    runs: int = 1,
    use_lab: bool = False,
    durations: Sequence[str] = (),
    default_duration: str | None = None,
    spread: float = 0.3,
    seed: int | None = 0,
    workers: int | None = None,
    as_json: bool = False,
) -> int:
    """Predict the plan's RTO in virtual time with the runner's own sequencer; with ``runs`` > 1
    a Monte Carlo estimate (p50, p90, p99). With ``use_lab`` the plan's VMs must exist in the lab
    and boot as long as the lab's do. Exit 3 when the prediction misses the plan's RTO target."""
    plan = load_plan(path)
    if use_lab:
        unknown = [vm for vm in plan.vms if vm not in LAB_VMS]
        if unknown:
            raise ValidationError(
                Finding(f"VM {vm!r}", "is not a VM of the lab", Severity.ERROR) for vm in unknown
            )
    order = plan.start_order()
    specs = durations_for(
        order.vms,
        durations,
        default=default_duration,
        use_lab=use_lab,
        runs=runs,
        spread=spread,
    )
    if as_json:
        result = simulate(order, specs, runs=runs, seed=seed, workers=workers)
    else:
        plural = "s" if runs != 1 else ""
        with output.working(f"simulating {runs} run{plural} of {plan.name!r} ..."):
            result = simulate(order, specs, runs=runs, seed=seed, workers=workers)
    target = plan.rto
    judged = result.p90 if runs > 1 else result.rto
    met = None if target is None else judged <= target
    if as_json:
        output.say(json.dumps(_simulation_json(plan, result, met), indent=2))
    else:
        output.say(plan.summary())
        show_simulation(output, result)
        if target is not None:
            what = "p90 RTO" if runs > 1 else "RTO"
            verdict = "meets" if met else "MISSES"
            output.say(
                f"predicted {what} {format_duration(judged)} {verdict} the plan's RTO target "
                f"{format_duration(target)}",
                style="bold green" if met else "bold red",
            )
    return EXIT_INVALID if met is False else EXIT_OK


def _simulation_json(
    plan: FailoverPlan, result: SimulationResult, met: bool | None
) -> dict[str, object]:
    percentiles: Mapping[str, float] = (
        {"p50": result.p50, "p90": result.p90, "p99": result.p99} if result.runs > 1 else {}
    )
    return {
        "plan": plan.name,
        "runs": result.runs,
        "rto_seconds": result.rto,
        **{f"{name}_seconds": value for name, value in percentiles.items()},
        "rto_target_seconds": plan.rto,
        "rto_target_met": met,
        "critical_path": list(result.critical_path),
        "critical_path_bound_seconds": result.critical_path_bound,
        "work_bound_seconds": result.work_bound,
        "vms": [
            {
                "vm": name,
                "start_seconds": result.starts[name],
                "end_seconds": result.ends.get(name),
                "state": result.states[name].value,
            }
            for name in result.starts
        ],
        "warnings": [str(warning) for warning in result.warnings],
    }
