"""What a run did, per VM and overall: the report users read after a failover.

Plain data, renderable as text (terminal), HTML (Jupyter) and JSON (machines). Times are UTC;
durations are seconds.
"""

from __future__ import annotations

import enum
import html
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from vmfailover._render import format_duration, html_table, in_words, text_table
from vmfailover.errors import NotFoundError
from vmfailover.model import FailoverKind

__all__ = ["Outcome", "RunReport", "RunResult", "VMResult"]


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
class VMResult:
    """One VM's part of a run.

    ``data_loss_seconds`` is the age of the recovery point used when the run started: the most
    data the VM can have lost (the source may have stopped writing earlier).
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

    def as_dict(self) -> dict[str, Any]:
        return {key: _jsonable(value) for key, value in attrs.asdict(self).items()}


@attrs.frozen
class RunReport:
    """A whole run: kind, when, each VM's result, warnings and decisions, and the measured RTO."""

    run_id: str
    kind: FailoverKind
    started_at: datetime
    finished_at: datetime
    vms: tuple[VMResult, ...]
    result: RunResult
    warnings: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    rto_target_seconds: float | None = None

    @property
    def rto_seconds(self) -> float:
        """From the start of the run until the last VM that became ready was ready."""
        ready = [r.ready_at for r in self.vms if r.ready_at is not None]
        end = max(ready) if ready else self.finished_at
        return (end - self.started_at).total_seconds()

    @property
    def rto_met(self) -> bool | None:
        if self.rto_target_seconds is None:
            return None
        return self.rto_seconds <= self.rto_target_seconds

    def vm(self, name: str) -> VMResult:
        for result in self.vms:
            if result.vm == name:
                return result
        raise NotFoundError(f"run {self.run_id} has no VM {name!r}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind.value,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "result": self.result.value,
            "rto_seconds": self.rto_seconds,
            "rto_target_seconds": self.rto_target_seconds,
            "warnings": list(self.warnings),
            "decisions": list(self.decisions),
            "vms": [result.as_dict() for result in self.vms],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.as_dict(), **kwargs)

    # --- rendering -------------------------------------------------------------------------------

    _HEADERS = ("VM", "outcome", "recovery point", "data loss", "start", "ready", "note")

    def _rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for r in self.vms:
            rows.append(
                (
                    r.vm,
                    in_words(r.outcome),
                    _clock(r.recovery_point_time),
                    _duration(r.data_loss_seconds),
                    _offset(r.started_at, self.started_at),
                    _offset(r.ready_at, self.started_at),
                    r.reason or "",
                )
            )
        return rows

    def summary(self) -> str:
        ready = sum(1 for r in self.vms if r.outcome is Outcome.READY)
        text = (
            f"{self.kind.value} failover {self.run_id}: {in_words(self.result)}, "
            f"{ready}/{len(self.vms)} VMs ready, RTO {_duration(self.rto_seconds)}"
        )
        if self.rto_target_seconds is not None:
            verdict = "met" if self.rto_met else "MISSED"
            text += f" (target {_duration(self.rto_target_seconds)}: {verdict})"
        return text

    def __str__(self) -> str:
        parts = [self.summary(), "", text_table(self._HEADERS, self._rows())]
        parts.extend(f"decision: {d}" for d in self.decisions)
        parts.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.summary())}</p>" + html_table(self._HEADERS, self._rows())


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _offset(moment: datetime | None, origin: datetime) -> str:
    if moment is None:
        return "-"
    return f"+{_duration((moment - origin).total_seconds())}"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)
