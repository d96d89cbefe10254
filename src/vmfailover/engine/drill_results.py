"""What one recovery drill did: the record a drill's history keeps and a person reads.

Plain data, renderable as text (terminal), HTML (Jupyter) and JSON (machines), as a
:class:`~vmfailover.engine.results.RunReport` is. Times are UTC; durations are seconds.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import attrs

from vmfailover._jsonable import jsonable_fields
from vmfailover._render import format_duration, html_table, text_table
from vmfailover.engine.results import CleanupResult, RunReport, json_text
from vmfailover.policy.drills import DrillOutcome

__all__ = ["DrillResult", "VMReadiness"]


@attrs.frozen
class VMReadiness:
    """One VM in a drill: how its test copy ended, and start-to-ready seconds if it was ready."""

    vm: str
    outcome: str
    seconds: float | None = None
    reason: str | None = None


@attrs.frozen
class DrillResult:
    """One drill of plan ``plan``: when, how it ended (``result``) and why.

    ``rto_seconds`` is the test run's measured RTO; ``predicted_rto_seconds`` what
    :func:`~vmfailover.simulate` gave for the same plan from the expected durations (the drill's,
    else those the last passed drill measured; None for a first drill without any);
    ``rto_target_seconds`` the plan's objective. ``cleanup`` is the proof that the inventory is as
    before the test (``cleanup.restored``, ``cleanup.differences``). A skipped drill has no run:
    ``reason`` says what stopped it.
    """

    plan: str
    started_at: datetime
    ended_at: datetime
    result: DrillOutcome
    reason: str = ""
    run_id: str | None = None
    rto_seconds: float | None = None
    predicted_rto_seconds: float | None = None
    rto_target_seconds: float | None = None
    vms: tuple[VMReadiness, ...] = ()
    cleanup: CleanupResult | None = None
    report: RunReport | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def passed(self) -> bool:
        return self.result is DrillOutcome.PASSED

    @property
    def seconds(self) -> float:
        """From the drill's start to the end of its cleanup."""
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def cleanup_restored(self) -> bool | None:
        """Whether the cleanup proved the inventory restored (None: nothing to clean up)."""
        return None if self.cleanup is None else self.cleanup.restored

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "seconds": self.seconds,
            "result": self.result.value,
            "reason": self.reason,
            "run_id": self.run_id,
            "rto_seconds": self.rto_seconds,
            "predicted_rto_seconds": self.predicted_rto_seconds,
            "rto_target_seconds": self.rto_target_seconds,
            "vms": [jsonable_fields(vm) for vm in self.vms],
            "cleanup": None if self.cleanup is None else jsonable_fields(self.cleanup),
        }

    def to_json(self, **kwargs: Any) -> str:
        """The drill as JSON; ``kwargs`` go to :func:`json.dumps` (``indent=2``, ...)."""
        return json_text(self.as_dict(), kwargs)

    # --- rendering -------------------------------------------------------------------------------

    _HEADERS = ("VM", "outcome", "ready after", "note")

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                vm.vm,
                vm.outcome.replace("_", " "),
                "" if vm.seconds is None else format_duration(vm.seconds),
                vm.reason or "",
            )
            for vm in self.vms
        ]

    def table(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """The per-VM table, its headers and one row per VM (none for a skipped drill)."""
        return self._HEADERS, self._rows()

    def summary(self) -> str:
        text = f"drill of plan {self.plan!r} at {self.started_at:%Y-%m-%d %H:%M:%S} UTC: "
        text += self.result.value.upper() if self.result is not DrillOutcome.PASSED else "passed"
        if self.reason:
            text += f" ({self.reason})"
        if self.run_id is not None:
            text += f"; test run {self.run_id}"
        if self.rto_seconds is not None:
            text += f"; RTO {format_duration(self.rto_seconds)}"
            if self.predicted_rto_seconds is not None:
                text += f" (predicted {format_duration(self.predicted_rto_seconds)})"
            if self.rto_target_seconds is not None:
                text += f", target {format_duration(self.rto_target_seconds)}"
        if self.cleanup is not None:
            text += f"; {self.cleanup.summary()}"
        return text

    def __str__(self) -> str:
        if not self.vms:
            return self.summary()
        return "\n".join([self.summary(), "", text_table(self._HEADERS, self._rows())])

    def _repr_html_(self) -> str:
        table = html_table(self._HEADERS, self._rows()) if self.vms else ""
        return f'<div class="vmfailover-drill"><p>{html.escape(self.summary())}</p>{table}</div>'
