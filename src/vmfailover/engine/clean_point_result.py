"""What a clean-point search found: per VM (or group) the newest good point and every verdict.

Plain data that plugs straight into a plan (:meth:`CleanPointResult.recovery_points`,
:meth:`CleanPointResult.apply_to`) and shows itself as text and, in Jupyter, as a time line of the
points with the tried ones marked (inline SVG) above a table of the verdicts.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from vmfailover._render import format_duration, html_table, listing, text_table
from vmfailover._timeline import svg_timeline
from vmfailover.engine.results import CleanupResult
from vmfailover.errors import NotFoundError, ValidationError
from vmfailover.policy.clean_point import RecoveryMoment, Verdict

if TYPE_CHECKING:
    from vmfailover.plan import FailoverPlan

__all__ = ["CleanPointResult", "PointVerdict", "SearchedGroup"]


def _frozen_table(value: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError.of("PointVerdict", f"expected a table of names, got {value!r:.80}")
    return MappingProxyType(dict(value))


@attrs.frozen
class PointVerdict:
    """One point tried: the moment (``index`` among the group's candidates, oldest 0), each VM's
    recovery point, the verdict and why, the round, when, and the test copies it booted (all
    removed)."""

    index: int
    moment: datetime
    points: Mapping[str, str] = attrs.field(converter=_frozen_table)
    verdict: Verdict
    reason: str
    round: int
    started_at: datetime
    finished_at: datetime
    copies: tuple[str, ...] = ()

    @property
    def good(self) -> bool:
        return self.verdict is Verdict.GOOD

    @property
    def seconds(self) -> float:
        """How long the test took: boot, check and cleanup."""
        return (self.finished_at - self.started_at).total_seconds()


@attrs.frozen
class SearchedGroup:
    """One VM, or a group recovered to one moment, and what its search found.

    ``candidates`` are every moment considered (oldest first); ``verdicts`` the ones tried, in the
    order they were tried; ``clean`` the newest good one (None: no point is good, or the search
    was cancelled first). ``max_rounds`` and ``max_boots`` are the search's promised bounds.
    """

    vms: tuple[str, ...]
    strategy: str
    parallel: int
    candidates: tuple[RecoveryMoment, ...]
    verdicts: tuple[PointVerdict, ...]
    clean: RecoveryMoment | None
    rounds: int
    max_rounds: int
    max_boots: int
    started_at: datetime
    finished_at: datetime
    complete: bool = True
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return " + ".join(self.vms)

    @property
    def found(self) -> bool:
        return self.clean is not None

    @property
    def boots(self) -> int:
        """Points booted (a group boots one copy per VM for each)."""
        return len(self.verdicts)

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def within_bounds(self) -> bool:
        return self.rounds <= self.max_rounds and self.boots <= self.max_boots

    def summary(self) -> str:
        if self.clean is not None:
            points = ", ".join(f"{vm} {p.id}" for vm, p in self.clean.points.items())
            found = f"newest clean point {self.clean.at:%Y-%m-%d %H:%M:%S} ({points})"
        elif self.complete:
            found = "no clean point" + (
                f" among {len(self.candidates)} points" if self.candidates else " (no points)"
            )
        else:
            found = "cancelled before a clean point was found"
        return (
            f"{self.name}: {found}; {self.boots} boots in {self.rounds} rounds "
            f"({self.strategy}, parallel {self.parallel}; bound {self.max_rounds} rounds, "
            f"{self.max_boots} boots), {format_duration(self.seconds)}"
        )

    _HEADERS = ("#", "moment", "verdict", "round", "took", "why")

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                str(v.index),
                f"{v.moment:%Y-%m-%d %H:%M:%S}",
                v.verdict.value + (" (chosen)" if self.clean and v.moment == self.clean.at else ""),
                str(v.round),
                format_duration(v.seconds),
                v.reason,
            )
            for v in sorted(self.verdicts, key=lambda v: v.index, reverse=True)
        ]

    def __str__(self) -> str:
        text = text_table(self._HEADERS, self._rows(), title=self.summary())
        return text + "".join(f"\n  warning: {w}" for w in self.warnings)

    def svg(self) -> str:
        """The group's points on a time line, tried ones marked, the chosen one ringed."""
        tried = {v.index: v for v in self.verdicts}
        marks = []
        chosen = None
        for index, candidate in enumerate(self.candidates):
            verdict = tried.get(index)
            points = ", ".join(f"{vm} {p.id}" for vm, p in candidate.points.items())
            when = f"{candidate.at:%Y-%m-%d %H:%M:%S}"
            if verdict is None:
                marks.append((candidate.at, "untried", "", f"{when} ({points}): not tried"))
                continue
            tip = f"{when} ({points}): {verdict.verdict.value} in round {verdict.round}: "
            marks.append(
                (candidate.at, verdict.verdict.value, str(verdict.round), tip + verdict.reason)
            )
            if self.clean is not None and candidate.at == self.clean.at:
                chosen = index
        found = f"clean point {self.clean.at:%Y-%m-%d %H:%M:%S}" if self.clean else "no clean point"
        title = f"{self.name}: {found}; {self.boots} boots in {self.rounds} rounds"
        return svg_timeline(marks, chosen=chosen, title=title)

    def _repr_html_(self) -> str:
        warnings = "".join(f"<p>warning: {html.escape(w)}</p>" for w in self.warnings)
        return (
            f"<div>{self.svg()}"
            + html_table(self._HEADERS, self._rows(), title=self.summary())
            + warnings
            + "</div>"
        )


@attrs.frozen
class CleanPointResult:
    """The whole search: one :class:`SearchedGroup` per VM or group, and the cleanup's proof.

    ``cancelled`` says the search was stopped before every group was decided. ``cleanup`` proves
    the inventory after the search equals the inventory before it (every test copy removed).
    """

    search_id: str
    groups: tuple[SearchedGroup, ...]
    started_at: datetime
    finished_at: datetime
    cleanup: CleanupResult
    cancelled: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        """Every group has a clean point."""
        return bool(self.groups) and all(group.found for group in self.groups)

    @property
    def boots(self) -> int:
        return sum(group.boots for group in self.groups)

    @property
    def rounds(self) -> int:
        return sum(group.rounds for group in self.groups)

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def group(self, vm: str) -> SearchedGroup:
        """The searched group holding ``vm`` (as the search was given it)."""
        for group in self.groups:
            if vm in group.vms:
                return group
        raise NotFoundError(f"the search {self.search_id} did not search VM {vm!r}")

    def recovery_points(self) -> Mapping[str, datetime]:
        """VM -> the moment to recover it to, for ``FailoverPlan(recovery_point=...)``: each VM's
        chosen point's time (the plan picks the newest point at or before it: that point).

        Raises :class:`~vmfailover.errors.NotFoundError` naming the VMs without a clean point.
        """
        missing = [vm for group in self.groups if not group.found for vm in group.vms]
        if missing:
            raise NotFoundError(
                f"no clean point for {listing(missing)}"
                + (" (the search was cancelled)" if self.cancelled else "")
            )
        return MappingProxyType(
            {
                vm: point.created_at
                for group in self.groups
                if group.clean is not None
                for vm, point in group.clean.points.items()
            }
        )

    def apply_to(self, plan: FailoverPlan) -> FailoverPlan:
        """``plan`` recovering every searched VM to its clean point (other VMs keep the plan's
        choice). Raises NotFoundError as :meth:`recovery_points` does."""
        chosen = dict(self.recovery_points())
        existing = plan.recovery_point
        merged = (
            {vm: existing.get(vm, "latest") for vm in plan.vms}
            if isinstance(existing, Mapping)
            else dict.fromkeys(plan.vms, existing)
        )
        merged.update(chosen)
        return attrs.evolve(plan, recovery_point=merged)

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else ("found" if self.found else "not all found")
        return (
            f"clean-point search {self.search_id}: {state}; {self.boots} boots, {self.rounds} "
            f"rounds, {format_duration(self.seconds)}; {self.cleanup.summary()}"
        )

    def __str__(self) -> str:
        parts = [self.summary(), *(str(group) for group in self.groups)]
        parts.extend(f"warning: {w}" for w in self.warnings)
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        body = "".join(group._repr_html_() for group in self.groups)
        warnings = "".join(f"<p>warning: {html.escape(w)}</p>" for w in self.warnings)
        return f"<div><p><b>{html.escape(self.summary())}</b></p>{body}{warnings}</div>"
