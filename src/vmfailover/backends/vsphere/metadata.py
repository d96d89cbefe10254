"""What vmfailover writes on vSphere objects so it finds them again: pure encoding, no I/O.

Replica VMs and test copies carry their identity in ``config.extraConfig`` (it lives in the .vmx,
so it survives a vCenter rebuild and re-registration). Recovery points are snapshots whose
description is a small JSON document (creation time, consistency, tags, bytes moved).
Everything read back is checked: a hand-edited value is reported, never trusted blindly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from vmfailover.errors import PermanentBackendError
from vmfailover.model import Consistency, IPConfig, RecoveryPoint, ReplicaState, aware_utc

__all__ = [
    "GUEST_IP",
    "REPLICA_ID",
    "REPLICA_KEYS",
    "REPLICA_STATE",
    "TESTCOPY_KEY",
    "TESTCOPY_REPLICA",
    "ReplicaRecord",
    "decode_guest_ip",
    "decode_point",
    "encode_guest_ip",
    "encode_point",
    "extra_config",
    "point_id",
    "replica_id",
    "split_point_id",
    "split_replica_id",
]

PREFIX = "vmfailover."
REPLICA_ID = "vmfailover.replica.id"
REPLICA_SOURCE = "vmfailover.replica.source"
REPLICA_SOURCE_NAME = "vmfailover.replica.source_name"
REPLICA_SOURCE_HOST = "vmfailover.replica.source_host"
REPLICA_CREATED = "vmfailover.replica.created"
REPLICA_DATASTORE = "vmfailover.replica.datastore"
REPLICA_STATE = "vmfailover.replica.state"
REPLICA_KEYS = (
    REPLICA_ID,
    REPLICA_SOURCE,
    REPLICA_SOURCE_NAME,
    REPLICA_SOURCE_HOST,
    REPLICA_CREATED,
    REPLICA_DATASTORE,
    REPLICA_STATE,
)
TESTCOPY_REPLICA = "vmfailover.testcopy.replica"
TESTCOPY_KEY = "vmfailover.testcopy.key"
GUEST_IP = "vmfailover.guest_ip"
"""Guest addresses set for the next boot (JSON: MAC -> list of IPConfig, or null for DHCP)."""

SNAPSHOT_PREFIX = "vmfailover "
_POINT_FORMAT = 1


def extra_config(values: Any) -> dict[str, str]:
    """``config.extraConfig`` (a list of OptionValue) as a dict, our keys only."""
    found: dict[str, str] = {}
    for option in values or ():
        key = str(getattr(option, "key", ""))
        if key.startswith(PREFIX):
            found[key] = str(getattr(option, "value", "") or "")
    return found


# --- ids ---------------------------------------------------------------------------------------


def replica_id(replica_vm_id: str) -> str:
    return f"{replica_vm_id}/replica"


def split_replica_id(value: str) -> str | None:
    """The replica VM id of a replica id, or None if it is not one of ours."""
    vm_id, slash, tail = value.rpartition("/")
    return vm_id if slash and tail == "replica" and vm_id else None


def point_id(replica_vm_id: str, snapshot: str) -> str:
    return f"{replica_vm_id}/{snapshot}"


def split_point_id(value: str) -> tuple[str, str] | None:
    """(replica VM id, snapshot moref) of a point id, or None if it is not one of ours."""
    vm_id, slash, snapshot = value.rpartition("/")
    if not slash or not vm_id or not snapshot.startswith("snapshot-"):
        return None
    return vm_id, snapshot


# --- replicas ----------------------------------------------------------------------------------


@attrs.frozen
class ReplicaRecord:
    """A replica as its replica VM records it."""

    id: str
    source_vm: str
    source_name: str
    source_host: str
    created_at: datetime
    state: ReplicaState
    target_datastore: str | None

    def encode(self) -> dict[str, str]:
        return {
            REPLICA_ID: self.id,
            REPLICA_SOURCE: self.source_vm,
            REPLICA_SOURCE_NAME: self.source_name,
            REPLICA_SOURCE_HOST: self.source_host,
            REPLICA_CREATED: self.created_at.isoformat(),
            REPLICA_DATASTORE: self.target_datastore or "",
            REPLICA_STATE: self.state.value,
        }

    @classmethod
    def decode(cls, values: Mapping[str, str], vm_label: str) -> ReplicaRecord | None:
        """The record in a VM's extraConfig, or None when the VM is no replica."""
        if not values.get(REPLICA_ID):
            return None
        try:
            return cls(
                id=values[REPLICA_ID],
                source_vm=values[REPLICA_SOURCE],
                source_name=values.get(REPLICA_SOURCE_NAME) or values[REPLICA_SOURCE],
                source_host=values.get(REPLICA_SOURCE_HOST, ""),
                created_at=aware_utc(datetime.fromisoformat(values[REPLICA_CREATED])),
                state=ReplicaState(values.get(REPLICA_STATE) or ReplicaState.INITIALIZING.value),
                target_datastore=values.get(REPLICA_DATASTORE) or None,
            )
        except (KeyError, ValueError) as error:
            raise PermanentBackendError(
                f"{vm_label}: its vmfailover replica record is damaged ({error}); "
                "fix or remove the vmfailover.replica.* settings of the VM"
            ) from None


# --- recovery points ---------------------------------------------------------------------------


def encode_point(
    created_at: datetime, consistency: Consistency, tags: Iterable[str], size_bytes: int
) -> tuple[str, str]:
    """(snapshot name, snapshot description) for a recovery point."""
    document = {
        "vmfailover": _POINT_FORMAT,
        "created": created_at.isoformat(),
        "consistency": consistency.value,
        "tags": sorted(set(tags)),
        "size": size_bytes,
    }
    return SNAPSHOT_PREFIX + created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), json.dumps(
        document, sort_keys=True
    )


def decode_point(replica: str, point: str, name: str, description: str) -> RecoveryPoint | None:
    """The recovery point a snapshot records, or None when the snapshot is not one of ours."""
    if not name.startswith(SNAPSHOT_PREFIX):
        return None
    try:
        document = json.loads(description)
        if not isinstance(document, dict) or document.get("vmfailover") != _POINT_FORMAT:
            return None
        return RecoveryPoint(
            id=point,
            replica=replica,
            created_at=datetime.fromisoformat(document["created"]),
            consistency=document.get("consistency", Consistency.CRASH.value),
            tags=frozenset(str(tag) for tag in document.get("tags", ())),
            size_bytes=int(document.get("size", 0)),
        )
    except (ValueError, KeyError, TypeError):
        return None


# --- guest addresses for the next boot ---------------------------------------------------------


def _config_document(config: IPConfig) -> dict[str, Any]:
    return {
        "address": str(config.address),
        "gateway": str(config.gateway) if config.gateway else None,
        "dns": [str(server) for server in config.dns],
        "dns_suffixes": list(config.dns_suffixes),
    }


def encode_guest_ip(settings: Mapping[str, Sequence[IPConfig] | None]) -> str:
    return json.dumps(
        {
            mac: None if configs is None else [_config_document(c) for c in configs]
            for mac, configs in sorted(settings.items())
        },
        sort_keys=True,
    )


def decode_guest_ip(text: str) -> dict[str, tuple[IPConfig, ...] | None]:
    if not text:
        return {}
    try:
        document = json.loads(text)
        return {
            str(mac): None
            if configs is None
            else tuple(
                IPConfig(
                    c["address"],
                    gateway=c.get("gateway"),
                    dns=c.get("dns", ()),
                    dns_suffixes=c.get("dns_suffixes", ()),
                )
                for c in configs
            )
            for mac, configs in document.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PermanentBackendError(
            f"the pending guest address settings ({GUEST_IP}) are damaged: {error}"
        ) from None
