"""A plan resolved for one kind of failover: the exact per-VM work the runner will do.

Everything that can be decided before touching anything is decided here: which replica and which
recovery point, what happens to the source, which NIC moves to which network, which addresses the
guest gets and which it must then report. The runner executes a :class:`CompiledPlan` and the
simulator predicts one, so both talk about the same run.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping

import attrs

from vmfailover import _render
from vmfailover.errors import Finding, NotFoundError, ValidationError
from vmfailover.model import VM, FailoverKind, IPAddress, IPConfig, RecoveryPoint, Replica
from vmfailover.plan.plan import FailoverPlan, PowerOffSource
from vmfailover.plan.steps import Approval, Step
from vmfailover.policy.sequencer import StartEntry, StartOrder

__all__ = ["CompiledPlan", "NicChange", "VMRecovery", "compile_plan"]


@attrs.frozen
class NicChange:
    """What happens to one NIC (by MAC) of the VM that will run.

    ``network``: the network to connect it to, or None to leave it where it is. ``ip_configs``:
    the static configuration the guest gets at its next boot, or None to leave the addresses
    alone; ``dhcp=True`` moves the NIC to DHCP instead.
    """

    mac: str
    network: str | None = None
    ip_configs: tuple[IPConfig, ...] | None = None
    dhcp: bool = False

    @property
    def changes_address(self) -> bool:
        return self.ip_configs is not None or self.dhcp


@attrs.frozen
class VMRecovery:
    """One VM's part of a failover, resolved.

    ``point`` is the recovery point to recover from, or None for a planned failover, which takes
    a final sync once the source is down. ``expected_addresses`` are what the guest must report
    after boot (the static addresses re-IP gives it); empty means nothing is verified.
    ``accepted_risk`` names the split-brain concern that ``force=True`` overrode, if any.
    """

    name: str
    source: VM
    replica: Replica
    replica_vm: VM
    target_site: str
    point: RecoveryPoint | None
    power_off: PowerOffSource
    nics: tuple[NicChange, ...]
    expected_addresses: tuple[IPAddress, ...]
    entry: StartEntry
    accepted_risk: str | None = None

    @property
    def final_sync(self) -> bool:
        return self.point is None

    @property
    def reip(self) -> bool:
        return any(nic.changes_address for nic in self.nics)


@attrs.frozen
class CompiledPlan:
    """A :class:`FailoverPlan` resolved for a failover of ``kind`` against one inventory.

    ``vms`` in the plan's order; ``order`` is the complete start order; ``steps`` the steps and
    approvals that apply to this kind; ``warnings`` the non-blocking findings of the check;
    ``decisions`` what ``force=True`` overrode.
    """

    plan: FailoverPlan
    kind: FailoverKind
    order: StartOrder
    vms: tuple[VMRecovery, ...]
    steps: tuple[Step | Approval, ...] = ()
    warnings: tuple[Finding, ...] = ()
    decisions: tuple[str, ...] = ()
    _by_name: Mapping[str, VMRecovery] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        parts = (
            (self.plan, FailoverPlan),
            (self.kind, FailoverKind),
            (self.order, StartOrder),
            (self.vms, tuple),
            (self.steps, tuple),
            (self.warnings, tuple),
            (self.decisions, tuple),
        )
        if not all(isinstance(part, kind) for part, kind in parts) or not all(
            isinstance(vm, VMRecovery) for vm in self.vms
        ):
            raise ValidationError.of(
                "CompiledPlan", "is made by FailoverPlan.compile(), not by hand"
            )
        object.__setattr__(self, "_by_name", {vm.name: vm for vm in self.vms})

    def vm(self, name: str) -> VMRecovery:
        """The resolved work for the plan's VM ``name``."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise NotFoundError(f"plan {self.plan.name!r} has no VM {name!r}") from None

    def __iter__(self) -> Iterator[VMRecovery]:
        return iter(self.vms)

    def __len__(self) -> int:
        return len(self.vms)

    # --- rendering ---------------------------------------------------------------------------

    _HEADERS = ("VM", "runs as", "on host", "recovery point", "source", "networks", "re-IP")

    def _rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for vm in self.vms:
            point = "final sync" if vm.point is None else f"{vm.point.created_at:%Y-%m-%d %H:%M}"
            networks = ", ".join(f"{n.mac[-5:]}->{n.network}" for n in vm.nics if n.network)
            addresses = ", ".join(str(a) for a in vm.expected_addresses) or (
                "dhcp" if any(n.dhcp for n in vm.nics) else "-"
            )
            runs_as = "test copy" if self.kind is FailoverKind.TEST else vm.replica_vm.name
            rows.append(
                (
                    vm.name,
                    runs_as,
                    vm.replica.target_host,
                    point,
                    vm.power_off.value.replace("_", " "),
                    networks or "unchanged",
                    addresses,
                )
            )
        return rows

    def _title(self) -> str:
        return (
            f"{self.kind.value} failover of plan {self.plan.name!r}: {len(self.vms)} VMs, "
            f"{len(self.warnings)} warnings"
        )

    def __str__(self) -> str:
        text = _render.text_table(self._HEADERS, self._rows(), title=self._title())
        notes = [f"  warning: {w}" for w in self.warnings] + [
            f"  decision: {d}" for d in self.decisions
        ]
        return text + ("\n" + "\n".join(notes) if notes else "")

    def _repr_html_(self) -> str:
        """The table, then the warnings and the decisions ``force`` made, as ``str`` shows them."""
        notes = [("warning", str(warning)) for warning in self.warnings] + [
            ("decision", decision) for decision in self.decisions
        ]
        table = _render.html_table(self._HEADERS, self._rows(), title=self._title())
        return table + "".join(
            f"<p>{html.escape(kind)}: {html.escape(text)}</p>" for kind, text in notes
        )


def compile_plan(
    plan: FailoverPlan, facts: object, kind: FailoverKind | str, *, force: bool = False
) -> CompiledPlan:
    """Resolve ``plan`` against ``facts`` (:class:`~vmfailover.plan.check.Facts`) for ``kind``.

    Raises :class:`ValidationError` listing every blocking finding.
    """
    from vmfailover.plan.check import Facts, resolve

    if not isinstance(facts, Facts):
        raise ValidationError.of("compile", f"expected plan facts, got {facts!r}")
    resolution = resolve(plan, facts, kind, force=force)
    blocking = [finding for finding in resolution.findings if finding.blocking]
    if blocking:
        raise ValidationError(blocking)
    return CompiledPlan(
        plan=plan,
        kind=resolution.kind,
        order=resolution.order,
        vms=resolution.vms,
        steps=plan.steps_for(resolution.kind),
        warnings=tuple(f for f in resolution.findings if not f.blocking),
        decisions=resolution.decisions,
    )
