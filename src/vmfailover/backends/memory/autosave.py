"""A memory-backend world kept in a file after every change: the file is never behind a journal.

A journaled run writes a changing call's intent before the call and its outcome after it. When
the world lives in a file between processes (the command line's lab), a process killed mid-run
must leave a file at least as new as the journal's record of any call, or ``resume`` replays an
outcome the world never saw. So the world is saved after each changing protocol call, atomically,
*before the call returns*: the journal writes the outcome only after the file holds the change.
A kill between the change and the save leaves an intent with no outcome, and the resumed run calls
again (every memory-backend call is idempotent, ``sync`` reconciled by the engine).

Saving is grouped, never deferred past a call's return: a call waits until a save that began
after its change is on disk. Calls finishing together on the runner's threads share one save
(the document is taken under the world's lock, so it holds every change counted so far), but no
call returns before its change is saved. Batching further (saving every N calls, or on a timer)
would let an outcome be journaled before the file holds it: exactly the gap this closes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

__all__ = ["Autosave", "changes_world", "is_world_changing"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_MARK = "_vmfailover_changes_world"


class _KeptWorld(Protocol):
    def _world_changed(self) -> None: ...


_Self = TypeVar("_Self", bound=_KeptWorld)


def changes_world(
    method: Callable[Concatenate[_Self, _P], _R],
) -> Callable[Concatenate[_Self, _P], _R]:
    """Mark a protocol call that changes the world: its change is saved before it returns.

    Also when it raises: a call that failed half-way may have changed the world (the journal
    records its error, and the file must hold what happened).
    """

    @functools.wraps(method)
    def changing(self: _Self, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            result = method(self, *args, **kwargs)
        except BaseException:
            self._world_changed()
            raise
        self._world_changed()
        return result

    setattr(changing, _MARK, True)
    return changing


def is_world_changing(method: object) -> bool:
    """Whether ``method`` was marked with :func:`changes_world`."""
    return getattr(method, _MARK, False) is True


class Autosave:
    """Saves one world to one file after each change, grouping saves of concurrent calls.

    ``snapshot`` takes the world's document (under the world's lock, so it is consistent) and
    ``write`` puts a document on disk atomically; both are the backend's.
    """

    def __init__(
        self,
        path: Path,
        world_lock: threading.RLock,
        snapshot: Callable[[], object],
        write: Callable[[Path, object], None],
    ) -> None:
        self.path = path
        self._world_lock = world_lock
        self._snapshot = snapshot
        self._write = write
        self._save_lock = threading.Lock()
        self._changes = 0  # changing calls finished so far
        self._saved_through = 0  # the changes the file holds
        self.saves = 0  # how many times the file was written

    def changed(self) -> None:
        """A changing call finished: return once the file holds its change."""
        with self._world_lock:
            self._changes += 1
            mine = self._changes
        with self._save_lock:
            if self._saved_through >= mine:  # a save that began after this change covered it
                return
            with self._world_lock:
                covers = self._changes
                document = self._snapshot()
            self._write(self.path, document)
            self._saved_through = covers
            self.saves += 1
