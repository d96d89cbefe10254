"""Reads through the PropertyCollector, with explicit property paths and continuation tokens.

Never pyVmomi attribute access in loops: one ``RetrievePropertiesEx`` returns the named properties
of every object of the named types under a container (through a ContainerView), or of a given
list of objects, however many there are; pages announced by a token are followed to the end.

Reads of given objects made at the same time by several threads on one connection (the runner
reverts and boots several VMs at once, and each confirms its tasks and polls readiness) are
combined: while one read is on the wire the others queue, and the next read carries all of them
in one ``RetrievePropertiesEx``. Nobody waits for company; a read that finds the wire free goes
at once.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from pyVmomi import vim, vmodl

from vmfailover.backends.vsphere.connection import VCenterConnection
from vmfailover.errors import NotFoundError, VMFailoverError

__all__ = ["ObjectProperties", "ReadCombiner", "combiner", "retrieve_objects", "retrieve_view"]

PAGE_SIZE: int | None = None
"""Objects per page asked of vCenter; None lets the server choose (it pages large results)."""


@attrs.frozen
class ObjectProperties:
    """One object's properties as read: ``ref`` the managed object, ``values`` path -> value."""

    ref: Any
    values: Mapping[str, Any]

    @property
    def moref(self) -> str:
        return str(self.ref._moId)

    @property
    def type_name(self) -> str:
        return str(self.ref._wsdlName)

    def get(self, path: str, default: Any = None) -> Any:
        return self.values.get(path, default)


def _vim_type(name: str) -> Any:
    found = getattr(vim, name, None)
    if found is None:
        found = getattr(vim.dvs, name, None)
    return found


def _prop_specs(paths_by_type: Mapping[str, Sequence[str]]) -> list[Any]:
    return [
        vmodl.query.PropertyCollector.PropertySpec(
            type=_vim_type(type_name), pathSet=list(paths), all=False
        )
        for type_name, paths in paths_by_type.items()
    ]


def _collect(
    conn: VCenterConnection, spec: Any, what: str, page_size: int | None
) -> list[ObjectProperties]:
    collector = conn.content.propertyCollector
    options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_size)
    result = conn.invoke(what, collector.RetrievePropertiesEx, [spec], options)
    found: list[ObjectProperties] = []
    while result is not None:
        for content in result.objects or ():
            if _gone(content):
                continue  # reported missing (reportMissingObjectsInResults): not found
            values = {prop.name: prop.val for prop in content.propSet or ()}
            found.append(ObjectProperties(content.obj, values))
        token = result.token
        if not token:
            break
        result = conn.invoke(what, collector.ContinueRetrievePropertiesEx, token)
    return found


def _gone(content: Any) -> bool:
    return any(
        isinstance(getattr(missing, "fault", None), vmodl.fault.ManagedObjectNotFound)
        for missing in content.missingSet or ()
    )


def retrieve_view(
    conn: VCenterConnection,
    container: Any,
    paths_by_type: Mapping[str, Sequence[str]],
    *,
    what: str,
    subtypes: Sequence[str] = (),
    page_size: int | None = None,
) -> list[ObjectProperties]:
    """The named properties of every object of the named types under ``container``.

    ``subtypes`` names subtypes to put in the view explicitly (``ClusterComputeResource`` for
    ``ComputeResource``): their properties come from their base type's paths. Three round trips
    for any number of objects (view, read, view destroyed), plus one per further page the
    server announces.
    """
    types = [_vim_type(name) for name in (*paths_by_type, *subtypes)]
    size = page_size if page_size is not None else PAGE_SIZE
    generation = conn.generation
    try:
        return _read_view(conn, container, types, paths_by_type, what, size)
    except NotFoundError:
        if conn.generation == generation:
            raise
        # the view went with the session (vCenter restarted and we logged in again): once more
        return _read_view(conn, container, types, paths_by_type, what, size)


def _read_view(
    conn: VCenterConnection,
    container: Any,
    types: list[Any],
    paths_by_type: Mapping[str, Sequence[str]],
    what: str,
    page_size: int | None,
) -> list[ObjectProperties]:
    view_manager = conn.content.viewManager
    view = conn.invoke(what, view_manager.CreateContainerView, container, types, True)
    try:
        traversal = vmodl.query.PropertyCollector.TraversalSpec(
            name="view", type=vim.view.ContainerView, path="view", skip=False
        )
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])
            ],
            propSet=_prop_specs(paths_by_type),
        )
        return _collect(conn, spec, what, page_size)
    finally:
        with contextlib.suppress(VMFailoverError):  # a view dies with its session anyway
            conn.invoke(what, view.DestroyView)


def retrieve_objects(
    conn: VCenterConnection,
    objects: Iterable[Any],
    paths_by_type: Mapping[str, Sequence[str]],
    *,
    what: str,
) -> list[ObjectProperties]:
    """The named properties of the given objects, in one round trip (shared with other threads).

    An object that does not exist raises :class:`~vmfailover.errors.NotFoundError` naming
    ``what``.
    """
    wanted = list(objects)
    if not wanted:
        return []
    return combiner(conn).read(_ReadRequest(wanted, paths_by_type, what))


def _read_now(
    conn: VCenterConnection,
    objects: Sequence[Any],
    paths_by_type: Mapping[str, Sequence[str]],
    what: str,
    *,
    report_missing: bool = False,
) -> list[ObjectProperties]:
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[
            vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False) for obj in objects
        ],
        propSet=_prop_specs(paths_by_type),
        reportMissingObjectsInResults=report_missing or None,
    )
    return _collect(conn, spec, what, PAGE_SIZE)


# --- combining the reads of several threads ----------------------------------------------------


@attrs.define(eq=False)
class _ReadRequest:
    objects: list[Any]
    paths_by_type: Mapping[str, Sequence[str]]
    what: str
    answered: bool = False
    result: list[ObjectProperties] = attrs.field(factory=list)
    error: BaseException | None = None

    def answer(self, result: list[ObjectProperties]) -> None:
        self.result, self.answered = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.answered = error, True


def _key(ref: Any) -> tuple[str, str]:
    return str(ref._wsdlName), str(ref._moId)


class ReadCombiner:
    """One read of given objects on the wire per connection; reads queued meanwhile go together.

    A read that finds the wire free goes at once, carrying whatever is queued. When the wire is
    free again, one queued thread whose read was not answered takes it with everything queued by
    then. A combined read that fails is answered by reading each request alone, so one thread's
    missing object never fails another thread's read.
    """

    def __init__(self, conn: VCenterConnection) -> None:
        self._conn = conn
        self._changed = threading.Condition()
        self._queue: list[_ReadRequest] = []
        self._busy = False
        self.round_trips = 0
        """Combined reads sent (each one ``RetrievePropertiesEx``, plus any further pages)."""
        self.requests = 0
        """Reads asked for."""

    def read(self, request: _ReadRequest) -> list[ObjectProperties]:
        with self._changed:
            self.requests += 1
            self._queue.append(request)
            while self._busy and not request.answered:
                # the thread on the wire is bounded by its call's timeout and always wakes us
                self._changed.wait(1.0)
            if not request.answered:
                self._busy = True
                batch, self._queue = self._queue, []
                self.round_trips += 1
        if not request.answered:
            try:
                self._answer(batch)
            except BaseException as error:
                for item in batch:
                    if not item.answered:
                        item.fail(error)
                raise
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
        if request.error is not None:
            raise request.error
        return request.result

    def _answer(self, batch: list[_ReadRequest]) -> None:
        if len(batch) == 1:
            self._alone(batch[0])
            return
        objects: dict[tuple[str, str], Any] = {}
        paths: dict[str, dict[str, None]] = {}
        for request in batch:
            for obj in request.objects:
                objects.setdefault(_key(obj), obj)
            for type_name, type_paths in request.paths_by_type.items():
                paths.setdefault(type_name, {}).update(dict.fromkeys(type_paths))
        what = f"{batch[0].what} (with {len(batch) - 1} other read(s))"
        try:
            found = _read_now(
                self._conn,
                list(objects.values()),
                {name: list(names) for name, names in paths.items()},
                what,
                report_missing=True,
            )
        except VMFailoverError:
            for request in batch:
                self._alone(request)
            return
        by_key = {_key(item.ref): item for item in found}
        for request in batch:
            if all(_key(obj) in by_key for obj in request.objects):
                request.answer([by_key[_key(obj)] for obj in request.objects])
            else:
                self._alone(request)  # its object is gone: the error it gets alone

    def _alone(self, request: _ReadRequest) -> None:
        try:
            request.answer(
                _read_now(self._conn, request.objects, request.paths_by_type, request.what)
            )
        except VMFailoverError as error:
            request.fail(error)


_combiners: weakref.WeakKeyDictionary[VCenterConnection, ReadCombiner] = weakref.WeakKeyDictionary()
_combiners_lock = threading.Lock()


def combiner(conn: VCenterConnection) -> ReadCombiner:
    """The connection's read combiner (one per connection, made on first use)."""
    with _combiners_lock:
        found = _combiners.get(conn)
        if found is None:
            found = _combiners[conn] = ReadCombiner(conn)
        return found
