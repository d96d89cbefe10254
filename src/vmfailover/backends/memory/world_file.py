"""A saved memory-backend world on disk: read it, write it atomically, and hold it alone.

Writing goes to a temporary file beside the target, is synced, and replaces the target in one
``os.replace``: a reader sees the old world or the new one, never half of either, even when the
writer dies. :func:`world_lock` makes whoever changes the world hold it alone (an exclusive
advisory lock on ``FILE.lock`` beside it, ``flock`` on POSIX and ``msvcrt.locking`` on Windows),
so two commands never interleave a read and a write; it waits at most ``timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from vmfailover.errors import ConflictError, Finding, NotFoundError, ValidationError
from vmfailover.model import parse_seconds

__all__ = ["as_path", "lock_path", "read_world", "world_lock", "write_world"]

_POLL_SECONDS = 0.05


def as_path(value: object, item: str = "path") -> Path:
    """``value`` as a file path: text or a path object, not empty, without NUL characters."""
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, str | os.PathLike):
        raise ValidationError.of(item, f"must be a file path, got {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise ValidationError.of(item, f"must be a file path, got {text!r}")
    return Path(text)


def lock_path(path: Path) -> Path:
    """The lock file that guards ``path``: ``FILE.lock`` beside it (left there afterwards)."""
    return path.with_name(path.name + ".lock")


def write_world(path: Path, document: object) -> None:
    """Write ``document`` as JSON to ``path`` atomically (temporary file, fsync, replace)."""
    path = as_path(path)
    text = json.dumps(document, allow_nan=False, separators=(",", ":"))
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise ValidationError.of(
            str(path), f"cannot be written: {error.strerror or error}"
        ) from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise ValidationError.of(
                str(path), f"cannot be written: {error.strerror or error}"
            ) from None
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable too (POSIX; Windows has no directory handles to sync)."""
    if sys.platform == "win32":
        return
    descriptor = os.open(folder or ".", os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_world(path: Path) -> object:
    """The JSON document in ``path``: NotFoundError if there is none, our ValidationError naming
    the file if it is not JSON (NaN and infinity are not JSON either)."""
    path = as_path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no saved lab at {str(path)!r}") from None
    except OSError as error:
        raise ValidationError.of(str(path), f"cannot be read: {error.strerror or error}") from None
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ValidationError.of(str(path), "is not UTF-8 text: not a saved lab") from None
    except json.JSONDecodeError as error:
        raise ValidationError(
            [Finding(f"{path}:{error.lineno}:{error.colno}", f"is not JSON: {error.msg}")]
        ) from None
    except (ValueError, RecursionError) as error:
        raise ValidationError.of(str(path), f"is not a saved lab: {error}") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number a saved lab holds")


@contextlib.contextmanager
def world_lock(path: Path, timeout: float = 30.0) -> Iterator[None]:
    """Hold ``path`` alone until the block ends; ConflictError after ``timeout`` seconds."""
    seconds = parse_seconds(timeout, "lab lock timeout", allow_zero=True)
    guard = lock_path(as_path(path))
    try:
        descriptor = os.open(guard, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ValidationError.of(
            str(guard), f"cannot be opened to lock the lab: {error.strerror or error}"
        ) from None
    try:
        deadline = time.monotonic() + seconds
        while not _try_lock(descriptor):
            if time.monotonic() >= deadline:
                raise ConflictError(
                    f"the lab {str(path)!r} is in use by another command "
                    f"(waited {seconds:g} s for {str(guard)!r})"
                )
            time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            _unlock(descriptor)
    finally:
        os.close(descriptor)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(descriptor: int) -> bool:
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(descriptor: int) -> None:
        os.lseek(descriptor, 0, os.SEEK_SET)
        msvcrt.locking(descriptor, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(descriptor: int) -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
