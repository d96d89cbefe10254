"""What a run did, per VM and overall: the report users read after a failover.

Plain data, renderable as text (terminal), HTML (Jupyter) and JSON (machines). Times are UTC;
durations are seconds. Objectives are judged strictly: an RTO is met only when every VM of the
run became ready within it, and an RPO only when no VM lost more than it allows; a missed one is
flagged in the summary, never hidden behind "succeeded".
"""

from __future__ import annotations

import enum
import html
import json
from datetime import datetime
from typing import Any

import attrs

from vmfailover import _svg
from vmfailover._jsonable import jsonable_fields
from vmfailover._render import format_duration, html_table, in_words, text_table
from vmfailover.engine.aftercare_results import (
    CommitResult,
    Deadline,
    FailbackResult,
    UndoResult,
)
from vmfailover.errors import NotFoundError, ValidationError
from vmfailover.model import FailoverKind, as_count

__all__ = [
    "CleanupResult",
    "Outcome",
    "RunReport",
    "RunResult",
    "StepRecord",
    "VMResult",
    "json_text",
]


class Outcome(enum.StrEnum):
    """How one VM's part of a run ended."""

    READY = "ready"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    REFUSED = "refused"


class RunResult(enum.StrEnum):
    """``succeeded``: every VM ready; ``partial``: some; ``failed``: none; ``cancelled``."""

    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"


@attrs.frozen
class StepRecord:
    """One step of a VM's part of a run: which, when it started and ended, and its error."""

    step: str
    started_at: datetime
    finished_at: datetime
    error: str | None = None

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@attrs.frozen
class VMResult:
    """One VM's part of a run.

    ``runs_as`` is the VM that was started: the replica VM, or for a test the test copy.
    ``data_loss_seconds`` is the age of the recovery point when the run started (0 for a planned
    failover, which recovers from a final sync of the stopped source); ``data_loss_blocks`` is
    what the backend counted as written after the point, where it can count (the memory backend).
    ``addresses`` are the static addresses re-IP gave the guest; ``addresses_verified`` says
    whether the guest then reported them (None: nothing to verify). ``source`` says what happened
    to the source VM.
    """

    vm: str
    source_vm_id: str
    replica_vm_id: str | None
    outcome: Outcome
    recovery_point: str | None = None
    recovery_point_time: datetime | None = None
    data_loss_seconds: float | None = None
    started_at: datetime | None = None
    powered_on_at: datetime | None = None
    ready_at: datetime | None = None
    reason: str | None = None
    runs_as: str | None = None
    data_loss_blocks: int | None = None
    addresses: tuple[str, ...] = ()
    addresses_verified: bool | None = None
    source: str | None = None
    steps: tuple[StepRecord, ...] = ()

    @property
    def seconds(self) -> float | None:
        """Start of its part of the run until ready (None if it never became ready)."""
        if self.started_at is None or self.ready_at is None:
            return None
        return (self.ready_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return jsonable_fields(self)


@attrs.frozen
class CleanupResult:
    """A test failover's cleanup: what was removed, and the proof that nothing else changed.

    ``restored`` is True when the inventory after cleanup equals the inventory before the test;
    otherwise ``differences`` names every VM, replica, host or network that differs.
    """

    at: datetime
    removed: tuple[str, ...]
    restored: bool
    differences: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.restored and not self.errors:
            return f"cleaned up: {len(self.removed)} test copies removed; inventory restored"
        parts = [f"cleanup: {len(self.removed)} test copies removed"]
        parts.extend(f"NOT restored: {d}" for d in self.differences)
        parts.extend(f"error: {e}" for e in self.errors)
        return "; ".join(parts)


@attrs.frozen
class RunReport:
    """A whole run: kind, when, each VM's result, warnings and decisions, and the objectives.

    ``rto_seconds`` is measured from the start of the run until the last VM became ready.
    ``ideal_rto_seconds`` is what :func:`~vmfailover.simulate` gives for this run's start order,
    limits and the durations each VM actually took: the gap between the two is what the
    runner's own scheduling cost. ``predicted_rto_seconds`` is the prediction from the expected
    durations the run was given, if any.
    """

    run_id: str
    kind: FailoverKind
    started_at: datetime
    finished_at: datetime
    vms: tuple[VMResult, ...]
    result: RunResult
    warnings: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    rto_target_seconds: float | None = None
    plan: str = ""
    rpo_target_seconds: float | None = None
    predicted_rto_seconds: float | None = None
    ideal_rto_seconds: float | None = None
    state: str = ""
    cleanup: CleanupResult | None = None
    commit: CommitResult | None = None
    undo: UndoResult | None = None
    failback: FailbackResult | None = None
    deadline: Deadline | None = None

    @property
    def rto_seconds(self) -> float:
        """From the start of the run until the last VM that became ready was ready (or, if none
        did, until the run ended)."""
        ready = [r.ready_at for r in self.vms if r.ready_at is not None]
        end = max(ready) if ready else self.finished_at
        return (end - self.started_at).total_seconds()

    @property
    def all_ready(self) -> bool:
        return bool(self.vms) and all(r.outcome is Outcome.READY for r in self.vms)

    @property
    def rto_met(self) -> bool | None:
        """None without a target; otherwise True only if every VM was ready within it."""
        if self.rto_target_seconds is None:
            return None
        return self.all_ready and self.rto_seconds <= self.rto_target_seconds

    @property
    def rpo_met(self) -> bool | None:
        """None without a target; otherwise True only if no VM lost more than it allows."""
        if self.rpo_target_seconds is None:
            return None
        losses = [r.data_loss_seconds for r in self.vms]
        return all(loss is not None and loss <= self.rpo_target_seconds for loss in losses)

    def vm(self, name: str) -> VMResult:
        for result in self.vms:
            if result.vm == name:
                return result
        raise NotFoundError(f"run {self.run_id} has no VM {name!r}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "plan": self.plan,
            "kind": self.kind.value,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "result": self.result.value,
            "rto_seconds": self.rto_seconds,
            "rto_target_seconds": self.rto_target_seconds,
            "rto_met": self.rto_met,
            "rpo_target_seconds": self.rpo_target_seconds,
            "rpo_met": self.rpo_met,
            "predicted_rto_seconds": self.predicted_rto_seconds,
            "ideal_rto_seconds": self.ideal_rto_seconds,
            "warnings": list(self.warnings),
            "decisions": list(self.decisions),
            "cleanup": None if self.cleanup is None else jsonable_fields(self.cleanup),
            "commit": None if self.commit is None else self.commit.as_dict(),
            "undo": None if self.undo is None else self.undo.as_dict(),
            "failback": None if self.failback is None else self.failback.as_dict(),
            "deadline": None if self.deadline is None else jsonable_fields(self.deadline),
            "vms": [result.as_dict() for result in self.vms],
        }

    def to_json(self, **kwargs: Any) -> str:
        """The report as JSON; ``kwargs`` go to :func:`json.dumps` (``indent=2``, ...)."""
        return json_text(self.as_dict(), kwargs)

    # --- rendering -------------------------------------------------------------------------------

    _HEADERS = ("VM", "outcome", "recovery point", "data loss", "start", "ready", "note")

    def _rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for r in self.vms:
            loss = _duration(r.data_loss_seconds)
            if r.data_loss_blocks is not None:
                loss += f" ({r.data_loss_blocks} blocks)"
            note = r.reason or ""
            if r.addresses:
                verified = {True: "verified", False: "NOT verified", None: ""}[r.addresses_verified]
                note = "; ".join(x for x in (note, f"{', '.join(r.addresses)} {verified}") if x)
            rows.append(
                (
                    r.vm,
                    in_words(r.outcome),
                    _clock(r.recovery_point_time),
                    loss,
                    _offset(r.started_at, self.started_at),
                    _offset(r.ready_at, self.started_at),
                    note.strip(),
                )
            )
        return rows

    def table(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """The per-VM table as text, its headers and one row per VM: what ``str()`` shows, for
        other renderers (the command line draws it with rich on a terminal)."""
        return self._HEADERS, self._rows()

    def summary(self) -> str:
        ready = sum(1 for r in self.vms if r.outcome is Outcome.READY)
        name = f" of plan {self.plan!r}" if self.plan else ""
        text = (
            f"{self.kind.value} failover{name} {self.run_id}: {in_words(self.result)}, "
            f"{ready}/{len(self.vms)} VMs ready, RTO {_duration(self.rto_seconds)}"
        )
        if self.rto_target_seconds is not None:
            verdict = "met" if self.rto_met else "MISSED"
            text += f" (target {_duration(self.rto_target_seconds)}: {verdict})"
        if self.rpo_target_seconds is not None:
            verdict = "met" if self.rpo_met else "MISSED"
            text += f", RPO target {_duration(self.rpo_target_seconds)}: {verdict}"
        if self.ideal_rto_seconds is not None and self.ideal_rto_seconds > 0:
            text += f"; ideal schedule {_duration(self.ideal_rto_seconds)}"
        pending = self.deadline if self.commit is None and self.undo is None else None
        for after in (self.cleanup, self.failback, self.commit, self.undo, pending):
            if after is not None:
                text += f"; {after.summary()}"
        return text

    def __str__(self) -> str:
        parts = [self.summary(), "", text_table(self._HEADERS, self._rows())]
        parts.extend(f"decision: {d}" for d in self.decisions)
        parts.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        """The report in Jupyter: summary, the timeline as an SVG Gantt chart, the VM table,
        decisions and warnings."""
        extra = "".join(
            f"<p>{html.escape(prefix)}: {html.escape(text)}</p>"
            for prefix, items in (("decision", self.decisions), ("warning", self.warnings))
            for text in items
        )
        return (
            f'<div class="vmfailover-report"><p>{html.escape(self.summary())}</p>'
            + self.svg_timeline()
            + html_table(self._HEADERS, self._rows())
            + extra
            + "</div>"
        )

    def svg_timeline(self, rows: int = 200) -> str:
        """The run's timeline as an inline SVG Gantt chart: per VM (the first ``rows``) its steps
        as segments from the start of the run (revert, power on, wait ready ...), a failed step
        in red, how the VM ended at the right, and the measured RTO and its target as lines."""
        shown = self.vms[: as_count(rows, "svg_timeline rows", 10_000_000)]
        chart_rows = [self._timeline_row(result) for result in shown]
        steps = dict.fromkeys(
            record.step for result in shown for record in result.steps if record.error is None
        )
        legend = [(step.replace("_", " "), _STEP_COLOURS.get(step, "#9ca3af")) for step in steps]
        if any(record.error for result in shown for record in result.steps):
            legend.append(("failed step", _FAILED))
        markers = []
        if any(result.ready_at is not None for result in self.vms):
            markers.append(_svg.Marker(self.rto_seconds, f"RTO {_duration(self.rto_seconds)}"))
        if self.rto_target_seconds is not None:
            colour = "#15803d" if self.rto_met else _FAILED
            markers.append(
                _svg.Marker(
                    self.rto_target_seconds,
                    f"RTO target {_duration(self.rto_target_seconds)}",
                    colour=colour,
                    dashed=True,
                )
            )
        chart = _svg.svg_gantt(
            chart_rows, markers=markers, legend=legend, tick_label=format_duration
        )
        hidden = len(self.vms) - len(shown)
        more = f"<p>... and {hidden} more VMs</p>" if hidden > 0 else ""
        return chart + more

    def _timeline_row(self, result: VMResult) -> _svg.Row:
        bars = []
        for record in result.steps:
            start = (record.started_at - self.started_at).total_seconds()
            end = (record.finished_at - self.started_at).total_seconds()
            words = record.step.replace("_", " ")
            tip = f"{result.vm}: {words} +{_duration(start)} to +{_duration(end)}"
            if record.error is not None:
                tip += f": {record.error}"
                colour = _TIMED_OUT if result.outcome is Outcome.TIMED_OUT else _FAILED
            else:
                colour = _STEP_COLOURS.get(record.step, "#9ca3af")
            bars.append(_svg.Bar(start, end, colour, tip))
        if not bars and result.started_at is not None:  # no step records: its span as one bar
            end_at = result.ready_at or self.finished_at
            start = (result.started_at - self.started_at).total_seconds()
            end = (end_at - self.started_at).total_seconds()
            bars.append(_svg.Bar(start, end, _OUTCOME_COLOURS.get(result.outcome, "#9ca3af")))
        note = in_words(result.outcome)
        if result.outcome is not Outcome.READY and result.reason:
            note += f": {result.reason}"
        return _svg.Row(
            result.vm,
            tuple(bars),
            note=note if len(note) <= 60 else note[:59] + "…",
            note_colour=_OUTCOME_COLOURS.get(result.outcome, "#6b7280"),
        )


_FAILED = "#c0392b"
_TIMED_OUT = "#d68910"

#: A step's colour in the timeline: the source's side grey, data work blue, network teal,
#: booting amber, waiting for readiness green.
_STEP_COLOURS = {
    "check_source": "#cbd5e1",
    "shutdown_source": "#94a3b8",
    "power_off_source": "#94a3b8",
    "final_sync": "#7c3aed",
    "revert": "#2563eb",
    "create_test_copy": "#60a5fa",
    "connect_nic": "#0d9488",
    "set_guest_ip": "#14b8a6",
    "power_on": "#f59e0b",
    "wait_ready": "#4c9a4c",
    "verify_addresses": "#84cc16",
    "remove_test_copy": "#a3a3a3",
    "restart_on_host": "#f59e0b",
    "migrate_vm": "#0ea5e9",
    "shutdown_guest": "#94a3b8",
}

_OUTCOME_COLOURS = {
    Outcome.READY: "#15803d",
    Outcome.FAILED: _FAILED,
    Outcome.TIMED_OUT: _TIMED_OUT,
}


def json_text(data: dict[str, Any], kwargs: dict[str, Any]) -> str:
    """``data`` as JSON, ``kwargs`` going to :func:`json.dumps`; what it refuses (an unknown
    keyword, a bad indent) is our ValidationError, as a result's ``to_json`` promises."""
    try:
        return json.dumps(data, **kwargs)
    except (TypeError, ValueError) as error:
        refused = f"json.dumps refused {kwargs!r:.100}: {error}"
        raise ValidationError.of("to_json", refused) from None


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _offset(moment: datetime | None, origin: datetime) -> str:
    if moment is None:
        return "-"
    return f"+{_duration((moment - origin).total_seconds())}"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)
