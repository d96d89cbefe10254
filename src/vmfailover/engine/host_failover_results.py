"""What a host failover and a move back did, per VM: the reports users read afterwards.

Plain data, renderable as text and HTML like a :class:`~vmfailover.engine.results.RunReport`
(whose timeline they carry as ``run``). Times are UTC, durations seconds.
"""

from __future__ import annotations

import enum
import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from vmfailover._render import format_duration, html_table, in_words, text_table
from vmfailover.engine.results import Outcome, RunReport, RunResult, StepRecord
from vmfailover.errors import NotFoundError
from vmfailover.policy.cluster import RestartPriority
from vmfailover.policy.placement import Placement, UnplacedVM
from vmfailover.policy.sequencer import StartOrder

__all__ = ["HostFailoverReport", "HostRestart", "MoveBack", "MoveBackReport", "MovedBack"]


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _offset(moment: datetime | None, origin: datetime) -> str:
    return "-" if moment is None else f"+{format_duration((moment - origin).total_seconds())}"


@attrs.frozen
class HostRestart:
    """One VM of a failed host: where it restarted, how it ended, and how long it was down.

    ``to_host`` is None when no survivor could take it (``unplaced`` says why, with the
    placement's reason: no capacity, no datastore, anti-affinity ...). ``downtime_seconds`` runs
    from the report's ``failed_at`` (the host failure, or the decision when the failure time was
    not given) until the VM was ready again; None if it never was.
    """

    vm: str
    name: str
    from_host: str
    to_host: str | None
    priority: RestartPriority
    outcome: Outcome
    started_at: datetime | None = None
    restarted_at: datetime | None = None
    ready_at: datetime | None = None
    downtime_seconds: float | None = None
    reason: str | None = None
    unplaced: UnplacedVM | None = None
    steps: tuple[StepRecord, ...] = ()

    @property
    def restarted(self) -> bool:
        return self.outcome is Outcome.READY


@attrs.frozen
class HostFailoverReport:
    """A host failover: the placement, each VM's restart and downtime, and the run behind it.

    ``vms`` lists every VM of the failed hosts that was meant to restart, in restart order (the
    placed ones first); ``unplaced`` those no survivor could take, each with its reason.
    ``failed_at`` is when the host failed (or, when that was not known, when the failover was
    decided: ``downtime_from`` says which). ``run`` is the underlying run's report, with its
    timeline. ``order`` is the start order the restart followed, which :meth:`Runner.move_back`
    follows too.
    """

    run_id: str
    cluster: str
    failed_hosts: tuple[str, ...]
    failed_at: datetime
    downtime_from: str
    started_at: datetime
    finished_at: datetime
    result: RunResult
    vms: tuple[HostRestart, ...]
    placement: Placement
    run: RunReport
    warnings: tuple[str, ...] = ()
    order: StartOrder | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def unplaced(self) -> tuple[UnplacedVM, ...]:
        """The VMs no surviving host could take, with the reason."""
        return self.placement.unplaced

    @property
    def original_hosts(self) -> Mapping[str, str]:
        """VM id -> the host it ran on before the failure (what :meth:`move_back` restores)."""
        return {restart.vm: restart.from_host for restart in self.vms}

    @property
    def downtime(self) -> Mapping[str, float | None]:
        """VM name -> seconds down (None: not running again)."""
        return {restart.name: restart.downtime_seconds for restart in self.vms}

    @property
    def max_downtime_seconds(self) -> float | None:
        """The longest downtime of a VM that restarted (None if none did)."""
        times = [r.downtime_seconds for r in self.vms if r.downtime_seconds is not None]
        return max(times) if times else None

    def vm(self, name: str) -> HostRestart:
        """The restart of VM ``name`` (a name or an id)."""
        for restart in self.vms:
            if name in (restart.name, restart.vm):
                return restart
        raise NotFoundError(f"host failover {self.run_id} has no VM {name!r}")

    def summary(self) -> str:
        ready = sum(1 for r in self.vms if r.restarted)
        hosts = ", ".join(self.failed_hosts)
        text = (
            f"host failover {self.run_id} of {hosts} (cluster {self.cluster!r}): "
            f"{in_words(self.result)}, {ready}/{len(self.vms)} VMs running again"
        )
        if self.unplaced:
            text += f", {len(self.unplaced)} not placed"
        longest = self.max_downtime_seconds
        if longest is not None:
            text += f"; longest downtime {format_duration(longest)} (from the {self.downtime_from})"
        return text

    _HEADERS = ("VM", "from", "to", "priority", "outcome", "ready", "downtime", "note")

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                r.name,
                r.from_host,
                r.to_host or "-",
                r.priority.value,
                in_words(r.outcome),
                _offset(r.ready_at, self.failed_at),
                _duration(r.downtime_seconds),
                r.reason or "",
            )
            for r in self.vms
        ]

    def __str__(self) -> str:
        parts = [self.summary(), "", text_table(self._HEADERS, self._rows())]
        parts.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        notes = "".join(f"<p>warning: {html.escape(w)}</p>" for w in self.warnings)
        return (
            f'<div class="vmfailover-report"><p>{html.escape(self.summary())}</p>'
            + self.run.svg_timeline()
            + html_table(self._HEADERS, self._rows())
            + notes
            + "</div>"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "cluster": self.cluster,
            "failed_hosts": list(self.failed_hosts),
            "failed_at": self.failed_at.isoformat(),
            "downtime_from": self.downtime_from,
            "result": self.result.value,
            "vms": [
                {
                    "vm": r.vm,
                    "name": r.name,
                    "from_host": r.from_host,
                    "to_host": r.to_host,
                    "priority": r.priority.value,
                    "outcome": r.outcome.value,
                    "ready_at": None if r.ready_at is None else r.ready_at.isoformat(),
                    "downtime_seconds": r.downtime_seconds,
                    "reason": r.reason,
                    "unplaced_reason": None if r.unplaced is None else r.unplaced.reason.value,
                }
                for r in self.vms
            ],
            "warnings": list(self.warnings),
        }


class MoveBack(enum.StrEnum):
    """How a VM went home. ``live``: moved while running (no downtime). ``cold``: shut down,
    moved and started again (it could not move live). ``started``: it was off (not placed, or
    it had stopped) and was started on its original host. ``home``: it ran there already."""

    LIVE = "live"
    COLD = "cold"
    STARTED = "started"
    HOME = "home"


@attrs.frozen
class MovedBack:
    """One VM's way back to its original host (``how``); ``downtime_seconds`` from its shutdown
    until it was ready again (0 for a live move, None when it was not running before)."""

    vm: str
    name: str
    from_host: str
    to_host: str
    outcome: Outcome
    how: MoveBack | None = None
    downtime_seconds: float | None = None
    reason: str | None = None
    steps: tuple[StepRecord, ...] = ()


@attrs.frozen
class MoveBackReport:
    """Moving the VMs of a host failover back: per VM how, and whether the original placement
    is restored (``restored``: every VM runs on its original host; otherwise ``differences``
    names each VM that does not)."""

    run_id: str
    failover_run_id: str
    started_at: datetime
    finished_at: datetime
    result: RunResult
    vms: tuple[MovedBack, ...]
    restored: bool
    differences: tuple[str, ...]
    run: RunReport
    warnings: tuple[str, ...] = ()

    def vm(self, name: str) -> MovedBack:
        for moved in self.vms:
            if name in (moved.name, moved.vm):
                return moved
        raise NotFoundError(f"move back {self.run_id} has no VM {name!r}")

    def summary(self) -> str:
        live = sum(1 for m in self.vms if m.how is MoveBack.LIVE)
        cold = sum(1 for m in self.vms if m.how is MoveBack.COLD)
        state = "original placement restored" if self.restored else "NOT restored"
        return (
            f"move back {self.run_id} (after {self.failover_run_id}): {in_words(self.result)}, "
            f"{live} moved live, {cold} shut down and restarted; {state}"
        )

    _HEADERS = ("VM", "from", "to", "how", "outcome", "downtime", "note")

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                m.name,
                m.from_host,
                m.to_host,
                "-" if m.how is None else m.how.value,
                in_words(m.outcome),
                _duration(m.downtime_seconds),
                m.reason or "",
            )
            for m in self.vms
        ]

    def __str__(self) -> str:
        parts = [self.summary(), "", text_table(self._HEADERS, self._rows())]
        parts.extend(f"not restored: {d}" for d in self.differences)
        parts.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        notes = "".join(
            f"<p>{html.escape(prefix)}: {html.escape(text)}</p>"
            for prefix, items in (("not restored", self.differences), ("warning", self.warnings))
            for text in items
        )
        return (
            f'<div class="vmfailover-report"><p>{html.escape(self.summary())}</p>'
            + html_table(self._HEADERS, self._rows())
            + notes
            + "</div>"
        )
