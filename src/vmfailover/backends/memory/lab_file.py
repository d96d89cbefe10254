"""The lab in a file, for programs that run once per command (the command line).

:func:`held_lab` holds the lab file alone, reads the lab from it (or builds a fresh
:func:`~vmfailover.backends.memory.lab.lab` when there is no file yet), hands it to the block, and
writes it back when the block ends, so the next process finds the world as this one left it.

While the block runs, every changing protocol call saves the world before it returns
(:meth:`~vmfailover.backends.memory.MemoryBackend.autosave`): a journaled run writes a call's
outcome only after the call returned, so a process killed mid-run (SIGKILL, power loss) leaves a
file at least as new as the journal's record of any call, and ``vmfailover resume`` replays
outcomes the world holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from vmfailover.backends.memory.backend import MemoryBackend
from vmfailover.backends.memory.lab import lab
from vmfailover.backends.memory.world_file import as_path, world_lock

__all__ = ["held_lab"]


@contextlib.contextmanager
def held_lab(
    path: str | Path,
    *,
    timeout: float = 30.0,
    create: Callable[[], MemoryBackend] = lab,
    save: bool = True,
) -> Iterator[MemoryBackend]:
    """The lab saved in ``path``, held alone for the block and saved back after it.

    A missing file is created from ``create()`` (the two-site lab). Each changing protocol call
    (``power_on``, ``revert``...) saves the world before it returns, so the file is never behind
    a journal that recorded the call; read-only calls never save. The world is saved again when
    the block ends, also when it raises, for what the scene builder and world events changed
    (``fail_site``, ``restore_host``): what the block did to the world happened (a failover that
    failed half-way left VMs running), and the file must say so. ``save=False`` only reads (the
    lock is still held, so no writer is half-way). Another process holding the file makes this
    wait up to ``timeout`` seconds, then our ConflictError.
    """
    path = as_path(path)
    with world_lock(path, timeout):
        backend = MemoryBackend.load(path) if path.exists() else create()
        if save:
            backend.autosave(path)
        try:
            yield backend
        finally:
            backend.autosave(None)
            if save:
                backend.save(path)
