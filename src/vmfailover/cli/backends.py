"""Which backend a command works on: the lab in a file, a backend file, or one a function of
yours returns.

Each command is a process of its own, so the in-memory lab lives in a file between commands:
``--lab FILE``, else ``$VMFAILOVER_LAB``, else ``vmfailover-lab.json`` in the working directory,
created from the built-in two-site lab on first use (``vmfailover lab reset`` starts it over).
A command holds the file alone while it works (another one waits, at most 30 seconds) and
writes the lab back when it ends.

``--backend FILE.toml`` (or ``.yaml``/``.yml``) names a backend file: which backend (vSphere,
Hyper-V or one another package registers) and how to reach it, with passwords read from the
environment or a file of their own (:mod:`vmfailover.cli.backend_file`); the command logs out
when it ends.

``--backend MODULE:FACTORY`` names a function that connects and returns a backend (vSphere,
Hyper-V, or one of yours): the command line keeps no credentials, your function reads them where
you keep them. The same convention as ``vmfailover resume``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path

from vmfailover.backends.base import Backend
from vmfailover.backends.memory.lab import lab
from vmfailover.backends.memory.lab_file import held_lab
from vmfailover.backends.memory.world_file import world_lock
from vmfailover.cli.backend_file import is_backend_file, open_backend_file
from vmfailover.errors import NotFoundError, ValidationError

__all__ = [
    "DEFAULT_LAB",
    "LAB_BACKEND",
    "LAB_ENVIRONMENT",
    "backend_from_factory",
    "backend_from_spec",
    "lab_path",
    "opened_backend",
    "reset_lab",
]

LAB_BACKEND = "lab"
DEFAULT_LAB = "vmfailover-lab.json"
LAB_ENVIRONMENT = "VMFAILOVER_LAB"
LOCK_TIMEOUT = 30.0


def lab_path(given: Path | None) -> Path:
    """--lab, else $VMFAILOVER_LAB, else the default file in the working directory."""
    if given is not None:
        return Path(given)
    return Path(os.environ.get(LAB_ENVIRONMENT) or DEFAULT_LAB)


def backend_from_factory(spec: str) -> Backend:
    """The backend ``MODULE:FACTORY()`` returns (our errors for a spec that does not work)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValidationError.of(
            "--backend",
            f"{spec!r} is not MODULE:FACTORY (nor lab, the lab in a file, nor a backend file)",
            "name a backend file (dr.toml, dr.yaml) or a function that connects and returns "
            "the backend, e.g. mysite.dr:backend",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise NotFoundError(
            f"--backend: module {module_name!r} cannot be imported: {error}"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise NotFoundError(f"--backend: {module_name} has no function {attribute!r}")
    backend = factory()
    if not isinstance(backend, Backend):
        raise ValidationError.of(
            "--backend", f"{spec}() returned {type(backend).__name__}, which is not a Backend"
        )
    return backend


def backend_from_spec(spec: str) -> Backend:
    """The backend a backend file describes, or the one ``MODULE:FACTORY()`` returns."""
    if is_backend_file(spec):
        return open_backend_file(Path(spec))
    return backend_from_factory(spec)


@contextlib.contextmanager
def opened_backend(spec: str, lab_file: Path | None, *, save: bool = True) -> Iterator[Backend]:
    """The backend ``spec`` names, for one command: the lab (held alone, saved afterwards unless
    ``save`` is False), a backend file's (closed afterwards: it logs out) or what a factory
    returns (yours to close)."""
    if spec == LAB_BACKEND:
        with held_lab(lab_path(lab_file), timeout=LOCK_TIMEOUT, save=save) as backend:
            yield backend
    elif is_backend_file(spec):
        from_file = open_backend_file(Path(spec))
        try:
            yield from_file
        finally:
            close = getattr(from_file, "close", None)
            if callable(close):
                close()
    else:
        yield backend_from_factory(spec)


def reset_lab(lab_file: Path | None) -> Path:
    """Replace the lab file with a fresh two-site lab; returns its path."""
    path = lab_path(lab_file)
    with world_lock(path, LOCK_TIMEOUT):
        lab().save(path)
    return path
