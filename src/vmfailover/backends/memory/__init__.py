"""The in-memory backend: a real backend for tests, demos and what-if simulation.

:class:`MemoryBackend` implements the :class:`~vmfailover.backends.base.Backend` protocol over
sites, hosts and disks held in memory; :func:`~vmfailover.backends.memory.lab.lab` builds its
embedded default scene, the two-site lab the demo and the tests start from.
"""

from vmfailover.backends.memory.backend import BLOCK_SIZE, DAMAGE_BLOCK, Disk, MemoryBackend

__all__ = ["BLOCK_SIZE", "DAMAGE_BLOCK", "Disk", "MemoryBackend"]
