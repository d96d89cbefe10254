"""The in-memory backend: a real backend for tests, demos and what-if simulation.

Not a test double: it keeps the same promises as the vSphere and Hyper-V backends and passes the
same contract suite (in the spirit of fsspec's ``MemoryFileSystem``). What it adds is what real
hypervisors cannot give a test: disks whose every block can be compared, a clock that can be
virtual, and faults on demand.

Disks are block maps (block number -> content version). A workload writes blocks; a sync sends
the blocks that differ to the replica and records an immutable copy as a recovery point. So "no
data lost" and "exactly these blocks lost" are facts a test can check by comparing disks.

The class is assembled from one part per job, each its own module over one shared
:class:`~vmfailover.backends.memory.store.MemoryStore`: the scene builder
(:mod:`~vmfailover.backends.memory.builder`), the world events
(:mod:`~vmfailover.backends.memory.world`), the protocol
(:mod:`~vmfailover.backends.memory.protocol`), its host-failover primitives
(:mod:`~vmfailover.backends.memory.host_moves`) and fault injection
(:mod:`~vmfailover.backends.memory.faults`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from vmfailover.backends.memory.autosave import Autosave
from vmfailover.backends.memory.builder import SceneBuilder
from vmfailover.backends.memory.faults import FaultInjector
from vmfailover.backends.memory.host_moves import HostMoves
from vmfailover.backends.memory.protocol import MemoryProtocol
from vmfailover.backends.memory.saved import store_document, store_from_document
from vmfailover.backends.memory.store import BLOCK_SIZE, DAMAGE_BLOCK, Disk, MemoryStore
from vmfailover.backends.memory.world import WorldEvents
from vmfailover.backends.memory.world_file import as_path, read_world, write_world
from vmfailover.clock import Clock, VirtualClock, full_clock
from vmfailover.errors import ConflictError, Finding, ValidationError

__all__ = ["BLOCK_SIZE", "DAMAGE_BLOCK", "Disk", "MemoryBackend"]


def _check_options(clock: object, limit: object, seed: object) -> None:
    findings: list[Finding] = []
    if clock is not None:
        try:
            full_clock(clock)
        except ValidationError as error:
            findings.extend(error.findings)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        findings.append(
            Finding("MemoryBackend recovery_point_limit", f"must be None or >= 1, got {limit!r}")
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        findings.append(Finding("MemoryBackend seed", f"must be a whole number, got {seed!r}"))
    if findings:
        raise ValidationError(findings)


class MemoryBackend(SceneBuilder, WorldEvents, MemoryProtocol, HostMoves):
    """Sites, hosts, datastores, networks and VMs held in memory, with fault injection.

    Build a scene with the ``add_*`` methods (or start from the lab,
    :func:`vmfailover.backends.memory.lab.lab`), then use it through the
    :class:`~vmfailover.backends.base.Backend` protocol like any other backend.
    ``clock`` decides whether boots and shutdowns take real or virtual time.
    """

    name = "memory"
    block_size = BLOCK_SIZE
    """Bytes per block: a point's ``size_bytes`` divided by it is the blocks its sync moved."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        recovery_point_limit: int | None = None,
        seed: int = 0,
    ) -> None:
        _check_options(clock, recovery_point_limit, seed)
        self.faults = FaultInjector()
        self._autosave: Autosave | None = None
        self._store = MemoryStore(
            clock if clock is not None else VirtualClock(),
            recovery_point_limit=recovery_point_limit,
            seed=seed,
        )

    @property
    def clock(self) -> Clock:
        """The clock boots, shutdowns, latency and timestamps follow."""
        return self._store.clock

    @property
    def bytes_transferred(self) -> int:
        """Bytes every sync so far has sent (changed blocks only)."""
        return self._store.bytes_transferred

    def __repr__(self) -> str:
        return f"MemoryBackend({self._store.summary()})"

    # --- saved worlds ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the whole world to ``path`` as JSON, atomically (see
        :mod:`~vmfailover.backends.memory.saved`); :meth:`load` reads it back.

        The world must run on a :class:`~vmfailover.clock.VirtualClock`, and no fault may be
        armed (faults are the test's, not the world's): our errors otherwise. Writing is not
        locked: a caller that shares the file with other processes holds
        :func:`~vmfailover.backends.memory.world_file.world_lock` around load, change and save.
        """
        write_world(as_path(path), self._document())

    def autosave(self, path: str | Path | None) -> None:
        """From now on, save the world to ``path`` after every changing protocol call, before
        the call returns (``None`` stops it). Saves as :meth:`save` does.

        For a world kept in a file while a journaled run changes it: the journal writes a call's
        outcome only after the call returned, so the file is never behind the journal, even
        when the process is killed (:mod:`~vmfailover.backends.memory.autosave`). Read-only calls
        never save; the scene builder and world events (``fail_site``, ``write``...) do not
        either: call :meth:`save` after them. Each save writes the whole world.
        """
        if path is None:
            self._autosave = None
            return
        self._autosave = Autosave(as_path(path), self._store.lock, self._document, write_world)

    @property
    def autosaves(self) -> int:
        """How many times :meth:`autosave` has written the file (0 when it is off)."""
        return 0 if self._autosave is None else self._autosave.saves

    def _world_changed(self) -> None:
        if self._autosave is not None:
            self._autosave.changed()

    def _document(self) -> object:
        if self.faults.armed:
            raise ConflictError(
                "cannot save a memory backend with faults armed: faults are not part of the "
                "world (clear them first with backend.faults.clear())"
            )
        with self._store.lock:
            return store_document(self._store)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The world :meth:`save` wrote to ``path``, as it was, with no faults armed.

        NotFoundError if there is no file; our ValidationError naming the file and the place in
        it if it is not JSON, not a saved world, newer than this version reads, or inconsistent.
        Reading never runs code from the file (JSON, never pickle).
        """
        path = as_path(path)
        store = store_from_document(read_world(path), str(path))
        backend = cls(clock=store.clock, recovery_point_limit=store.recovery_point_limit)
        backend._store = store
        return backend
