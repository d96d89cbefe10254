"""What one run of a replication job did, per VM: plain data to read, render and record.

Every field is a name, an id, a number or a UTC time, and :meth:`JobResult.as_dict` turns a
result into JSON-ready data, so the journal can record runs as they are and replay the RPO
history from them.
"""

from __future__ import annotations

import enum
import html
import json
from datetime import datetime
from typing import Any

import attrs

from vmfailover._render import html_table, text_table
from vmfailover.errors import NotFoundError

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
        return attrs.asdict(self, value_serializer=_jsonable)


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
        data = attrs.asdict(self, value_serializer=_jsonable)
        data["outcome"] = self.outcome.value
        return data

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.as_dict(), **kwargs)

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


def _jsonable(instance: object, attribute: object, value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _size(nbytes: int) -> str:
    for size, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} B"
