"""Backends, found by name.

Built-in backends and those of other packages are registered under the ``vmfailover.backends``
entry-point group (``memory = "vmfailover.backends.memory:MemoryBackend"``), so a product can add
its own without touching vmfailover. A backend that needs an optional dependency says which extra
installs it, instead of failing with an ImportError from deep inside.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from typing import Any

from vmfailover.backends.base import Backend, Readiness
from vmfailover.errors import MissingExtraError, NotFoundError, ValidationError

__all__ = ["Backend", "Readiness", "available_backends", "backend_class", "open_backend"]

_GROUP = "vmfailover.backends"

# Built-in backends: where they live, and the (importable module, extra) each needs.
_BUILTIN: dict[str, str] = {
    "memory": "vmfailover.backends.memory:MemoryBackend",
    "vsphere": "vmfailover.backends.vsphere:VSphereBackend",
    "hyperv": "vmfailover.backends.hyperv:HyperVBackend",
}
_REQUIRES: dict[str, tuple[str, str]] = {
    "vsphere": ("pyVmomi", "vsphere"),
    "hyperv": ("pypsrp", "hyperv"),
}


def _registered() -> dict[str, str]:
    # Imported here, not at the top: importlib.metadata is a third of `import vmfailover`, and
    # only looking a backend up by name needs it.
    from importlib.metadata import entry_points

    found = dict(_BUILTIN)
    for entry in entry_points(group=_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def available_backends() -> tuple[str, ...]:
    """Names of the backends this installation can open, sorted."""
    return tuple(sorted(_registered()))


def backend_class(name: str) -> type[Any]:
    """The class registered as ``name``.

    Raises :class:`~vmfailover.errors.MissingExtraError` naming the extra to install when the
    backend's dependency is missing, and :class:`~vmfailover.errors.NotFoundError` for a name
    nobody registered.
    """
    if not isinstance(name, str):
        raise ValidationError.of("backend", f"expected a backend name, got {name!r}")
    requirement = _REQUIRES.get(name)
    if requirement is not None:
        module, extra = requirement
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(name, extra, module)
    target = _registered().get(name)
    if target is None:
        known = ", ".join(available_backends())
        raise NotFoundError(f"no backend named {name!r} (available: {known})")
    module_name, _, attribute = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), attribute)
    return cls


def open_backend(name: str, **options: Any) -> Backend:
    """Construct the backend registered as ``name`` with ``options``.

    An option the backend does not take (or a required one left out) is a
    :class:`~vmfailover.errors.ValidationError` naming the backend and what it does take.
    """
    cls = backend_class(name)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as error:
        takes = ", ".join(
            parameter.name
            for parameter in inspect.signature(cls).parameters.values()
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        )
        raise ValidationError.of(
            f"backend {name!r} options", str(error), f"it takes: {takes or 'no options'}"
        ) from None
    backend: Backend = cls(**options)
    return backend
