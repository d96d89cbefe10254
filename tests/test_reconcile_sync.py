"""Reconciling an interrupted sync: did it make its recovery point, or must it sync again?

A sync is not idempotent (a second one makes a second point), so a resumed run must tell the
sync's point from the points before it. The intent records the replica's newest point just
before the sync (its context), which needs no clock at all; a journal written before intents held
a context is still read, and reconciled by the intent's time as before.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from journal_support import INTERVAL, LAB_NOW, LAB_START, SINCE_LAST_SYNC
from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.journal import EntryKind, JournalEntry
from vmfailover.engine.journal_codec import dumps, encode
from vmfailover.engine.reconcile import reconcile
from vmfailover.engine.replay import CallRecord, Replay
from vmfailover.engine.run_journal import call_key
from vmfailover.model import RecoveryPoint
from vmfailover.testing import lab


def read(fn: Any, *args: Any) -> Any:
    return fn(*args)


def scene() -> tuple[MemoryBackend, str, tuple[RecoveryPoint, ...]]:
    """The lab, one of its replicas and that replica's points (two, the newest 5 min old)."""
    backend = lab(start=LAB_START, points=2, interval=INTERVAL, since_last_sync=SINCE_LAST_SYNC)
    replica = backend.inventory().replicas[0].id
    return backend, replica, backend.recovery_points(replica)


def sync_record(replica: str, at: datetime, context: dict[str, Any] | None) -> CallRecord:
    """The sync's intent as a resumed run reads it back from a journal entry, written in the
    current format (with its context) or, for ``None``, as journals before contexts held it."""
    args = encode((replica,))
    data = (
        json.dumps({"args": args, "context": encode(context)})
        if context is not None
        else (dumps((replica,)))
    )
    entry = JournalEntry("run-1", 7, EntryKind.INTENT, at, vm="db01", operation="sync", data=data)
    replay = Replay(LAB_START, [entry])
    record = replay.take("db01", "sync", call_key("sync", (replica,)))
    assert record is not None and record.outcome is None
    assert record.args == (replica,)
    return record


def test_an_intent_without_context_is_read_as_before() -> None:
    _, replica, _ = scene()
    record = sync_record(replica, LAB_NOW, None)
    assert record.context == {}


def test_a_sync_that_acted_is_found_by_the_point_before_it() -> None:
    backend, replica, before = scene()
    context = {"newest_point": before[-1].id, "newest_at": before[-1].created_at}
    made = backend.sync(replica)
    # our clock runs an hour ahead of the backend's: comparing times would miss the point
    record = sync_record(replica, LAB_NOW + timedelta(hours=1), context)
    assert record.context == context
    verdict = reconcile(read, backend, record)
    assert verdict.done and verdict.result == made, verdict


def test_a_sync_that_never_acted_is_repeated() -> None:
    backend, replica, before = scene()
    # our clock runs behind the backend's: by time the newest old point would pass for the sync's
    record = sync_record(
        replica, before[-1].created_at - timedelta(minutes=1), {"newest_point": before[-1].id}
    )
    verdict = reconcile(read, backend, record)
    assert not verdict.done, verdict
    assert "syncing again" in verdict.reason


def test_a_replica_without_points_before_the_sync() -> None:
    backend, replica, before = scene()
    for point in before:
        backend.delete_recovery_point(point.id)
    record = sync_record(replica, LAB_NOW + timedelta(hours=1), {"newest_point": None})
    assert not reconcile(read, backend, record).done
    made = backend.sync(replica)
    verdict = reconcile(read, backend, record)
    assert verdict.done and verdict.result == made


def test_when_the_point_before_was_deleted_the_backends_own_clock_decides() -> None:
    backend, replica, before = scene()
    context = {"newest_point": before[-1].id, "newest_at": before[-1].created_at}
    record = sync_record(replica, LAB_NOW + timedelta(hours=1), context)
    backend.delete_recovery_point(before[-1].id)  # retention removed it meanwhile
    assert not reconcile(read, backend, record).done  # the older point is not the sync's
    made = backend.sync(replica)
    verdict = reconcile(read, backend, record)
    assert verdict.done and verdict.result == made


def test_an_old_intent_is_reconciled_by_its_time() -> None:
    backend, replica, before = scene()
    record = sync_record(replica, LAB_NOW, None)
    assert not reconcile(read, backend, record).done  # the points it finds are older
    made = backend.sync(replica)
    assert made.created_at >= LAB_NOW
    verdict = reconcile(read, backend, record)
    assert verdict.done and verdict.result == made
    assert before[-1].created_at < LAB_NOW
