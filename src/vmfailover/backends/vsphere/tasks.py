"""Waiting for vCenter tasks: many at once, with one filter and ``WaitForUpdatesEx``.

The first look is one read of every task's state (quick tasks are often done by then). Tasks still
running are then watched through a private PropertyCollector with a single filter over all of
them, so N tasks cost a handful of round trips, not N polling loops. Every wait has a deadline: a
task still running when it passes is a :class:`~vmfailover.errors.TransientBackendError`.

The first look can carry the properties of other objects too (:func:`wait_and_read`): the VM a
task changed is read in the same round trip that finds the task done, so the caller knows the
VM's state after its task without reading it again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from pyVmomi import vim, vmodl

from vmfailover.backends.vsphere.connection import VCenterConnection
from vmfailover.backends.vsphere.faults import translate_fault
from vmfailover.backends.vsphere.properties import ObjectProperties, retrieve_objects
from vmfailover.errors import NotFoundError, TransientBackendError, VMFailoverError

__all__ = ["TaskOutcome", "TaskWait", "wait_and_read", "wait_for_task", "wait_for_tasks"]

_PATHS = ("info.state", "info.error", "info.result")
_DONE = ("success", "error")


@attrs.frozen
class TaskOutcome:
    """What one task ended with: its result, or our error for its fault."""

    what: str
    result: Any = None
    error: VMFailoverError | None = None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def _outcome(what: str, values: dict[str, Any]) -> TaskOutcome:
    if values.get("info.state") == "error":
        fault = values.get("info.error")
        inner = getattr(fault, "fault", None) or fault
        if inner is None:
            inner = RuntimeError("the task failed without a fault")
        return TaskOutcome(what, error=translate_fault(inner, what))
    return TaskOutcome(what, result=values.get("info.result"))


@attrs.frozen
class TaskWait:
    """Outcomes of the tasks, in order, and what was read with them.

    ``objects`` (by managed object id) holds the other objects' properties as read in the round
    trip that found every task done; it is None when a task was still running then, or the
    objects could not be read, and the caller must read them itself if it needs them.
    """

    outcomes: list[TaskOutcome]
    objects: dict[str, ObjectProperties] | None


def wait_and_read(
    conn: VCenterConnection,
    tasks: Sequence[Any],
    whats: Sequence[str],
    objects: Sequence[Any] = (),
    paths_by_type: Mapping[str, Sequence[str]] | None = None,
    *,
    timeout: float | None = None,
) -> TaskWait:
    """Wait for every task (failures are outcomes, not raised), reading ``objects`` on the way.

    Raises :class:`~vmfailover.errors.TransientBackendError` if any task is still running after
    ``timeout`` seconds (the connection's ``task_timeout`` by default).
    """
    if not tasks:
        return TaskWait([], None)
    deadline = time.monotonic() + (timeout if timeout is not None else conn.settings.task_timeout)
    label = whats[0] if len(whats) == 1 else f"{len(whats)} tasks ({whats[0]}, ...)"
    states: dict[str, dict[str, Any]] = {}
    extra = list(objects) if paths_by_type else []
    try:
        found = retrieve_objects(
            conn,
            [*tasks, *extra],
            {"Task": _PATHS, **(paths_by_type or {})},
            what=f"{label}: task state",
        )
    except NotFoundError:
        extra = []  # an object we meant to read with them is gone: read the tasks alone
        found = _task_states(conn, tasks, label)
    read: dict[str, ObjectProperties] = {}
    for item in found:
        if item.type_name == "Task":
            states[item.moref] = dict(item.values)
        else:
            read[item.moref] = item
    pending = {
        task._moId for task in tasks if states.get(task._moId, {}).get("info.state") not in _DONE
    }
    if pending:
        _watch(conn, [t for t in tasks if t._moId in pending], states, deadline, label)
    outcomes = [
        _outcome(what, states.get(task._moId, {})) for task, what in zip(tasks, whats, strict=True)
    ]
    # read before the tasks ended, the objects are stale now
    return TaskWait(outcomes, read if extra and not pending else None)


def _task_states(conn: VCenterConnection, tasks: Sequence[Any], label: str) -> list[Any]:
    try:
        return retrieve_objects(conn, tasks, {"Task": _PATHS}, what=f"{label}: task state")
    except NotFoundError:
        raise _task_gone(label) from None


def _task_gone(label: str) -> TransientBackendError:
    # vCenter forgets recent tasks when it restarts: what the task did is not known, and the
    # caller's operation (idempotent, or reconciled) is worth trying again
    return TransientBackendError(
        f"{label}: vCenter no longer knows the task (it restarted?): its outcome is unknown"
    )


def wait_for_tasks(
    conn: VCenterConnection,
    tasks: Sequence[Any],
    whats: Sequence[str],
    *,
    timeout: float | None = None,
) -> list[TaskOutcome]:
    """Wait for every task; return their outcomes in order (failures are outcomes, not raised).

    Raises :class:`~vmfailover.errors.TransientBackendError` if any task is still running after
    ``timeout`` seconds (the connection's ``task_timeout`` by default).
    """
    return wait_and_read(conn, tasks, whats, timeout=timeout).outcomes


def wait_for_task(
    conn: VCenterConnection, task: Any, what: str, *, timeout: float | None = None
) -> Any:
    """Wait for one task and return its result; its fault is raised as our error."""
    return wait_for_tasks(conn, [task], [what], timeout=timeout)[0].unwrap()


def _watch(
    conn: VCenterConnection,
    tasks: Sequence[Any],
    states: dict[str, dict[str, Any]],
    deadline: float,
    label: str,
) -> None:
    """Watch ``tasks`` until each is done (their states land in ``states``).

    The private collector belongs to the session: when vCenter restarts, a new session has
    none, so the watch starts again with a new collector (the tasks outlive the session).
    """
    pending = {task._moId for task in tasks}
    while True:
        if time.monotonic() > deadline:
            raise TransientBackendError(
                f"{label}: {len(pending)} task(s) still running when the wait timed out"
            )
        generation = conn.generation
        try:
            _watch_with_collector(conn, tasks, states, pending, deadline, label)
            return
        except NotFoundError:
            if conn.generation == generation:
                raise
            pending = {
                moref for moref in pending if states.get(moref, {}).get("info.state") not in _DONE
            }


def _watch_with_collector(
    conn: VCenterConnection,
    tasks: Sequence[Any],
    states: dict[str, dict[str, Any]],
    pending: set[str],
    deadline: float,
    label: str,
) -> None:
    what = f"{label}: waiting"
    pc_type = vmodl.query.PropertyCollector
    collector = conn.invoke(what, conn.content.propertyCollector.CreatePropertyCollector)
    try:
        spec = pc_type.FilterSpec(
            objectSet=[
                pc_type.ObjectSpec(obj=task, skip=False) for task in tasks if task._moId in pending
            ],
            propSet=[pc_type.PropertySpec(type=vim.Task, pathSet=list(_PATHS), all=False)],
        )
        generation = conn.generation
        try:
            conn.invoke(what, collector.CreateFilter, spec, False)
        except NotFoundError:
            if conn.generation != generation:
                raise  # the collector went with the session
            raise _task_gone(label) from None
        version = ""
        max_wait = max(1, int(conn.settings.timeout / 2))
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransientBackendError(
                    f"{label}: {len(pending)} task(s) still running when the wait timed out"
                )
            options = pc_type.WaitOptions(maxWaitSeconds=max(1, min(max_wait, int(remaining) or 1)))
            update = conn.invoke(what, collector.WaitForUpdatesEx, version, options)
            if update is None:
                continue
            version = update.version
            for filter_update in update.filterSet or ():
                for object_update in filter_update.objectSet or ():
                    values = states.setdefault(object_update.obj._moId, {})
                    for change in object_update.changeSet or ():
                        values[change.name] = change.val
                    if values.get("info.state") in _DONE:
                        pending.discard(object_update.obj._moId)
    finally:
        try:  # noqa: SIM105
            conn.invoke(what, collector.DestroyPropertyCollector)
        except VMFailoverError:
            pass  # the collector dies with the session anyway
