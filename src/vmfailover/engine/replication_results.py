"""What one run of a replication job did, per VM: plain data to read, render and record.

Every field is a name, an id, a number or a UTC time. :meth:`JobResult.as_dict` turns a result
into JSON-ready data and :meth:`JobResult.from_dict` turns that data back into the same result,
so a journal records runs as they are and gives them back as history for RPO reports.
"""

from __future__ import annotations

import enum
import html
import json
from datetime import datetime
from typing import Any

import attrs

from vmfailover._jsonable import jsonable_fields
from vmfailover._render import html_table, text_table
from vmfailover.errors import NotFoundError, ValidationError

__all__ = ["JobOutcome", "JobResult", "RemovedPoint", "SyncOutcome", "VMSyncResult"]


class SyncOutcome(enum.StrEnum):
    """How one VM's part of a job run ended."""

    SYNCED = "synced"
    FAILED = "failed"


class JobOutcome(enum.StrEnum):
    """``succeeded``: every VM synced; ``partial``: some did; ``failed``: none did."""

    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"


@attrs.frozen
class RemovedPoint:
    """A recovery point the job's retention deleted, and why."""

    point_id: str
    created_at: datetime
    reason: str


@attrs.frozen
class VMSyncResult:
    """One VM's part of a job run: the sync, the bytes it moved, and what retention did.

    ``point_time`` is when the new point was made; ``kept`` counts the replica's points after
    retention; ``removed`` lists the points retention deleted. ``warnings`` note what went wrong
    without failing the VM (a point retention could not delete, a limit not enforced).
    """

    vm: str
    outcome: SyncOutcome
    started_at: datetime
    finished_at: datetime
    vm_id: str | None = None
    replica_id: str | None = None
    replica_created: bool = False
    point_id: str | None = None
    point_time: datetime | None = None
    bytes_moved: int = 0
    kept: int = 0
    removed: tuple[RemovedPoint, ...] = ()
    attempts: int = 0
    reason: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def points_created(self) -> int:
        return 0 if self.point_id is None else 1

    def as_dict(self) -> dict[str, Any]:
        return jsonable_fields(self)


@attrs.frozen
class JobResult:
    """One run of a replication job: when, each VM's result, and notes on the whole run."""

    job: str
    started_at: datetime
    finished_at: datetime
    vms: tuple[VMSyncResult, ...]
    schedule: str
    retention: str
    bandwidth: str | None = None
    notes: tuple[str, ...] = ()
    run_id: str = ""
    """Names this run in a journal (``repl-<start>-<random>``)."""

    @property
    def outcome(self) -> JobOutcome:
        synced = sum(1 for result in self.vms if result.outcome is SyncOutcome.SYNCED)
        if synced == len(self.vms):
            return JobOutcome.SUCCEEDED
        return JobOutcome.PARTIAL if synced else JobOutcome.FAILED

    @property
    def bytes_moved(self) -> int:
        return sum(result.bytes_moved for result in self.vms)

    @property
    def points_created(self) -> int:
        return sum(result.points_created for result in self.vms)

    @property
    def points_removed(self) -> int:
        return sum(len(result.removed) for result in self.vms)

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def vm(self, name: str) -> VMSyncResult:
        for result in self.vms:
            if result.vm == name:
                return result
        raise NotFoundError(f"job {self.job!r} run at {self.started_at} has no VM {name!r}")

    def as_dict(self) -> dict[str, Any]:
        data = jsonable_fields(self)
        data["outcome"] = self.outcome.value
        return data

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.as_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Any) -> JobResult:
        """The result :meth:`as_dict` gave ``data`` for (``outcome`` is recomputed, not read).

        Data that is not such a result raises :class:`ValidationError` naming the run.
        """
        name = data.get("run_id") or data.get("job") if isinstance(data, dict) else None
        try:
            return cls(
                job=_string(data["job"]),
                started_at=_time(data["started_at"]),
                finished_at=_time(data["finished_at"]),
                vms=tuple(_vm_result(vm) for vm in data["vms"]),
                schedule=_string(data["schedule"]),
                retention=_string(data["retention"]),
                bandwidth=None if data.get("bandwidth") is None else _string(data["bandwidth"]),
                notes=tuple(_string(note) for note in data.get("notes", ())),
                run_id=_string(data.get("run_id", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValidationError.of(
                f"replication run {name!r:.80}",
                f"is not a job result as JobResult.as_dict writes it: {type(error).__name__}: "
                f"{error}",
            ) from None

    # --- rendering -------------------------------------------------------------------------------

    _HEADERS = ("VM", "outcome", "point", "moved", "kept", "removed", "note")

    def _rows(self) -> list[tuple[str, ...]]:
        return [
            (
                result.vm,
                result.outcome.value,
                result.point_id or "-",
                _size(result.bytes_moved),
                str(result.kept) if result.outcome is SyncOutcome.SYNCED else "-",
                ", ".join(point.point_id for point in result.removed) or "-",
                "; ".join(filter(None, (result.reason, *result.warnings))),
            )
            for result in self.vms
        ]

    def summary(self) -> str:
        synced = sum(1 for result in self.vms if result.outcome is SyncOutcome.SYNCED)
        limit = f", limit {self.bandwidth}" if self.bandwidth else ""
        return (
            f"job {self.job} at {self.started_at:%Y-%m-%d %H:%M:%S}: {self.outcome.value}, "
            f"{synced}/{len(self.vms)} VMs synced, {_size(self.bytes_moved)} moved{limit}, "
            f"{self.points_created} points created, {self.points_removed} removed "
            f"in {self.duration_seconds:.0f} s"
        )

    def __str__(self) -> str:
        parts = [self.summary(), "", text_table(self._HEADERS, self._rows())]
        parts.extend(f"note: {note}" for note in self.notes)
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        notes = "".join(f"<p>note: {html.escape(note)}</p>" for note in self.notes)
        return (
            f"<p>{html.escape(self.summary())}</p>"
            + html_table(self._HEADERS, self._rows())
            + notes
        )


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r:.80}")
    return value


def _time(value: object) -> datetime:
    moment = datetime.fromisoformat(_string(value))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {value!r:.80}")
    return value


def _optional(value: object) -> str | None:
    return None if value is None else _string(value)


def _vm_result(data: Any) -> VMSyncResult:
    point_time = data.get("point_time")
    return VMSyncResult(
        vm=_string(data["vm"]),
        outcome=SyncOutcome(data["outcome"]),
        started_at=_time(data["started_at"]),
        finished_at=_time(data["finished_at"]),
        vm_id=_optional(data.get("vm_id")),
        replica_id=_optional(data.get("replica_id")),
        replica_created=data.get("replica_created") is True,
        point_id=_optional(data.get("point_id")),
        point_time=None if point_time is None else _time(point_time),
        bytes_moved=_count(data.get("bytes_moved", 0)),
        kept=_count(data.get("kept", 0)),
        removed=tuple(
            RemovedPoint(_string(p["point_id"]), _time(p["created_at"]), _string(p["reason"]))
            for p in data.get("removed", ())
        ),
        attempts=_count(data.get("attempts", 0)),
        reason=_optional(data.get("reason")),
        warnings=tuple(_string(warning) for warning in data.get("warnings", ())),
    )


def _size(nbytes: int) -> str:
    for size, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} B"
