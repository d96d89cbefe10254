"""Reads through the PropertyCollector, with explicit property paths and continuation tokens.

Never pyVmomi attribute access in loops: one ``RetrievePropertiesEx`` returns the named properties
of every object of the named types under a container (through a ContainerView), or of a given
list of objects, however many there are; pages announced by a token are followed to the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from pyVmomi import vim, vmodl

from vmfailover.backends.vsphere.connection import VCenterConnection

__all__ = ["ObjectProperties", "retrieve_objects", "retrieve_view"]

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
            values = {prop.name: prop.val for prop in content.propSet or ()}
            found.append(ObjectProperties(content.obj, values))
        token = result.token
        if not token:
            break
        result = conn.invoke(what, collector.ContinueRetrievePropertiesEx, token)
    return found


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
    view_manager = conn.content.viewManager
    types = [_vim_type(name) for name in (*paths_by_type, *subtypes)]
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
        return _collect(conn, spec, what, page_size if page_size is not None else PAGE_SIZE)
    finally:
        conn.invoke(what, view.DestroyView)


def retrieve_objects(
    conn: VCenterConnection,
    objects: Iterable[Any],
    paths_by_type: Mapping[str, Sequence[str]],
    *,
    what: str,
) -> list[ObjectProperties]:
    """The named properties of the given objects, in one round trip.

    An object that does not exist raises :class:`~vmfailover.errors.NotFoundError` naming
    ``what``.
    """
    object_specs = [
        vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False) for obj in objects
    ]
    if not object_specs:
        return []
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=object_specs, propSet=_prop_specs(paths_by_type)
    )
    return _collect(conn, spec, what, PAGE_SIZE)
