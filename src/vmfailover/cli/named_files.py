"""Files a backend file names: a password file and a CA bundle, checked when the file is read.

Each check returns what is wrong as the text of a finding (the caller names the file, key and
line), or the content. No text returned ever holds what a password file holds.

A password file is refused, as OpenSSH refuses a private key, when its mode grants anything to
group or others (``chmod 600 PATH`` is the fix). Windows keeps access in ACLs, not in the mode
bits, so there the mode is not checked. A CA bundle must be a readable file holding at least one
PEM certificate that :func:`ssl.create_default_context` loads, so a bundle that would fail the
first connection fails the command before anything is done.
"""

from __future__ import annotations

import os
import shlex
import ssl
import stat
from pathlib import Path

__all__ = ["NamedFileProblem", "ca_bundle_problem", "read_password_file"]

PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
#: Mode bits of group and others: a password file granting any of them is refused.
_SHARED_BITS = 0o077


class NamedFileProblem(Exception):
    """What is wrong with a named file: ``message`` and ``hint`` for a finding."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def read_password_file(path: Path) -> str:
    """The password ``path`` holds, stripped of surrounding whitespace.

    Raises :class:`NamedFileProblem` when the file is missing, no regular file, open to group or
    others (POSIX), unreadable, not UTF-8 or empty; its text names the path, never the content.
    """
    what = f"the password file {str(path)!r}"
    mode = _regular_file_mode(path, what)
    if os.name != "nt" and mode & _SHARED_BITS:
        raise NamedFileProblem(
            f"{what} is open to group or others (mode {mode:04o}); like an SSH private key, "
            "it must be readable by its owner alone",
            f"chmod 600 {shlex.quote(str(path))}",
        )
    content = _content(path, what)
    try:
        text = content.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise NamedFileProblem(f"{what} is not UTF-8 text") from None
    if not text:
        raise NamedFileProblem(f"{what} is empty", "write the password into it, and only it")
    return text


def ca_bundle_problem(path: Path) -> NamedFileProblem | None:
    """What keeps ``path`` from serving as a CA bundle (None when it loads)."""
    what = f"the CA bundle {str(path)!r}"
    try:
        _regular_file_mode(path, what)
        content = _content(path, what)
    except NamedFileProblem as problem:
        return problem
    if PEM_CERTIFICATE not in content:
        return NamedFileProblem(
            f"{what} holds no PEM certificate",
            f"give a file with the CA certificates between {PEM_CERTIFICATE.decode()} "
            "and -----END CERTIFICATE----- lines",
        )
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as error:
        return NamedFileProblem(f"{what} cannot be loaded: {error.reason or error}")
    except OSError as error:  # it went away, or changed, since it was read
        return NamedFileProblem(f"{what} cannot be read: {error.strerror or error}")
    return None


def _regular_file_mode(path: Path, what: str) -> int:
    """The permission bits of ``path``, a regular file (a FIFO would block the read)."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise NamedFileProblem(f"{what} does not exist") from None
    except OSError as error:
        raise NamedFileProblem(f"{what} cannot be read: {error.strerror or error}") from None
    except ValueError:  # a NUL character, which no path holds
        raise NamedFileProblem(f"{what} is no path: it holds a NUL character") from None
    if stat.S_ISDIR(status.st_mode):
        raise NamedFileProblem(f"{what} is a directory, not a file")
    if not stat.S_ISREG(status.st_mode):
        raise NamedFileProblem(f"{what} is not a regular file")
    return stat.S_IMODE(status.st_mode)


def _content(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise NamedFileProblem(f"{what} cannot be read: {error.strerror or error}") from None
