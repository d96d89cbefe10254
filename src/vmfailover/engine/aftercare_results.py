"""What a production run's aftercare did: its commit, its undo, its failback, and its deadline.

Plain data for the run's report (:class:`~vmfailover.engine.results.RunReport`), like the test
failover's :class:`~vmfailover.engine.results.CleanupResult`: each says what was done, what could
not be, and (for an undo) the proof that the VMs the run touched are as they were before it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from vmfailover._jsonable import jsonable_fields

__all__ = [
    "BY_DEADLINE",
    "CommitResult",
    "Deadline",
    "DeadlineAction",
    "FailbackResult",
    "FailbackVM",
    "UndoResult",
]


class DeadlineAction(enum.StrEnum):
    """What a plan's deadline does to an uncommitted failover when its time comes."""

    COMMIT = "commit"
    UNDO = "undo"


@attrs.frozen
class Deadline:
    """The run will be committed or undone at ``at`` unless someone decides first."""

    action: DeadlineAction
    at: datetime

    def summary(self) -> str:
        return f"uncommitted: automatic {self.action.value} at {self.at:%Y-%m-%d %H:%M:%S} UTC"


#: Who decided a commit or an undo: a call, or the plan's deadline.
BY_DEADLINE = "deadline"


def _by(decided: str) -> str:
    return " automatically at the plan's deadline" if decided == BY_DEADLINE else ""


@attrs.frozen
class CommitResult:
    """A commit: the VMs whose failover is now permanent, and for a failback the replicas that
    replicate in their first direction again (``resumed``). ``by`` says who decided:
    ``"runner.commit"`` or ``"deadline"`` (the plan's ``auto_commit``)."""

    at: datetime
    committed: tuple[str, ...]
    resumed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    by: str = "runner.commit"

    @property
    def done(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        text = f"committed{_by(self.by)}: {len(self.committed)} VMs"
        if self.resumed:
            text += f"; replication resumed for {len(self.resumed)} in its first direction"
        if self.errors:
            text += "; NOT finished: " + "; ".join(self.errors) + " (commit again to finish)"
        return text

    def as_dict(self) -> dict[str, Any]:
        return jsonable_fields(self)


@attrs.frozen
class UndoResult:
    """An undo: the VMs whose replica went back to replicating, the sources started again, and
    the proof: ``restored`` is True when every VM and replica the run touched is as it was before
    the run (``differences`` names what is not). ``by`` says who decided: ``"runner.undo"`` or
    ``"deadline"`` (the plan's ``auto_undo``)."""

    at: datetime
    undone: tuple[str, ...]
    restarted: tuple[str, ...]
    restored: bool
    differences: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    by: str = "runner.undo"

    def summary(self) -> str:
        text = (
            f"undone{_by(self.by)}: {len(self.undone)} replicas back to replicating, "
            f"{len(self.restarted)} sources started again"
        )
        if self.restored and not self.errors:
            return text + "; every VM the run touched is as it was"
        parts = [text]
        parts.extend(f"NOT restored: {d}" for d in self.differences)
        parts.extend(f"error: {e}" for e in self.errors)
        return "; ".join(parts) + " (undo again to finish)"

    def as_dict(self) -> dict[str, Any]:
        return jsonable_fields(self)


@attrs.frozen
class FailbackVM:
    """One VM's way home: the replica that runs back, and what its syncs moved.

    ``seeded_bytes`` moved while the recovered VM still ran (the reverse replica's first sync),
    ``final_bytes`` in the final sync after it was shut down; ``disk_bytes`` is the VM's disk,
    what a full copy would have moved.
    """

    vm: str
    runs_as: str
    reverse_replica: str
    seeded_bytes: int
    final_bytes: int | None
    disk_bytes: int

    @property
    def moved_bytes(self) -> int:
        return self.seeded_bytes + (self.final_bytes or 0)


@attrs.frozen
class FailbackResult:
    """A failback: which run it brings home, and per VM what moved (in blocks where the backend
    counts them, ``block_size`` bytes each)."""

    of_run: str
    vms: tuple[FailbackVM, ...]
    block_size: int | None = None
    decisions: tuple[str, ...] = ()

    @property
    def moved_bytes(self) -> int:
        return sum(vm.moved_bytes for vm in self.vms)

    @property
    def disk_bytes(self) -> int:
        return sum(vm.disk_bytes for vm in self.vms)

    @property
    def blocks_moved(self) -> int | None:
        """Blocks the failback's syncs moved, where the backend counts blocks."""
        if not self.block_size:
            return None
        return sum(vm.moved_bytes // self.block_size for vm in self.vms)

    def summary(self) -> str:
        moved = _bytes(self.moved_bytes)
        if self.blocks_moved is not None:
            moved = f"{self.blocks_moved} blocks ({moved})"
        share = self.moved_bytes / self.disk_bytes if self.disk_bytes else 0.0
        return (
            f"failback of run {self.of_run}: moved {moved} for {len(self.vms)} VMs, "
            f"{share:.2%} of their disks ({_bytes(self.disk_bytes)})"
        )

    def as_dict(self) -> dict[str, Any]:
        data = jsonable_fields(self)
        data["moved_bytes"] = self.moved_bytes
        data["blocks_moved"] = self.blocks_moved
        data["disk_bytes"] = self.disk_bytes
        return data


def _bytes(count: int) -> str:
    """``count`` bytes in binary units (``57 MiB``, ``6.0 GiB``)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            value = count / size
            return (
                f"{value:.0f} {unit}"
                if value >= 100 or value == int(value)
                else (f"{value:.1f} {unit}")
            )
    return f"{count} B"
