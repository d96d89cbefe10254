"""The ids the Hyper-V backend hands out, and reading them back.

A Hyper-V VM keeps its GUID across replication: the primary and its replica share it, on two
hosts. So our ids name the host too: a VM (and the replica kept as that VM) is ``host/GUID``, a
recovery point ``host/VM-GUID/checkpoint-GUID`` (the checkpoint GUID alone would do for Hyper-V;
the VM in the id lets the backend refuse a point of another replica without asking the host).
"""

from __future__ import annotations

import uuid

import attrs

from vmfailover.errors import NotFoundError

__all__ = ["PointRef", "VMRef"]


@attrs.frozen
class VMRef:
    """A VM on a host: ``hv-b/4f9c...``."""

    host: str
    guid: uuid.UUID

    def __str__(self) -> str:
        return f"{self.host}/{self.guid}"

    @classmethod
    def parse(cls, text: str, what: str = "VM") -> VMRef:
        host, _, guid = str(text).rpartition("/")
        parsed = _guid(guid)
        if not host or parsed is None:
            raise NotFoundError(f"no {what} {text!r} (Hyper-V ids read host/GUID)")
        return cls(host, parsed)


@attrs.frozen
class PointRef:
    """A recovery point (a Replica checkpoint) of a replica VM: ``hv-b/VM-GUID/GUID``."""

    host: str
    vm: uuid.UUID
    snapshot: uuid.UUID

    @property
    def replica(self) -> VMRef:
        return VMRef(self.host, self.vm)

    def __str__(self) -> str:
        return f"{self.host}/{self.vm}/{self.snapshot}"

    @classmethod
    def parse(cls, text: str) -> PointRef:
        rest, _, snapshot = str(text).rpartition("/")
        host, _, vm = rest.rpartition("/")
        vm_guid, snapshot_guid = _guid(vm), _guid(snapshot)
        if not host or vm_guid is None or snapshot_guid is None:
            raise NotFoundError(
                f"no recovery point {text!r} (Hyper-V point ids read host/VM-GUID/GUID)"
            )
        return cls(host, vm_guid, snapshot_guid)


def _guid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
