"""Authentication and WinRM message encryption for the simulated WS-Management server.

Basic checks the ``Authorization`` header of every request. NTLM and Negotiate run pyspnego's
acceptor; NTLM authenticates a *connection*, so the context lives in :class:`ConnectionAuth`, one
per TCP connection. On plain HTTP the client then wraps every envelope with the context
(``multipart/encrypted``, protocol ``application/HTTP-SPNEGO-session-encrypted``) and the server
answers in kind.

pyspnego's NTLM acceptor reads the accepted users from the file named by the ``NTLM_USER_FILE``
environment variable, which is per process. :func:`register_ntlm_user` keeps one file holding the
users of every simulated host in the process and points the variable at it. Limitation: two hosts
in one process cannot give the same user name different passwords (that raises
:class:`ValidationError`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import struct
import tempfile
import threading
from typing import Any

import attrs
import spnego
import spnego.channel_bindings

from vmfailover.errors import ValidationError

__all__ = [
    "SPNEGO_PROTOCOL",
    "AuthDecision",
    "Authenticator",
    "ConnectionAuth",
    "register_ntlm_user",
    "unregister_ntlm_user",
]

SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
_BOUNDARY = b"--Encrypted Boundary"
_TOKEN = re.compile(r"^\s*(Negotiate|NTLM|Kerberos)\s+([A-Za-z0-9+/=]+)\s*$", re.IGNORECASE)

_users_lock = threading.Lock()
_users: dict[str, tuple[str, int]] = {}  # upper user -> (password, reference count)
_user_file: str | None = None


def _split_user(username: str) -> tuple[str, str]:
    if "\\" in username:
        domain, _, user = username.partition("\\")
        return domain, user
    return "", username


def _rewrite_user_file() -> None:
    global _user_file
    if _user_file is None:
        handle, _user_file = tempfile.mkstemp(prefix="vmfailover-ntlm-", suffix=".txt")
        os.close(handle)
    lines = []
    for key, (password, _count) in _users.items():
        domain, user = _split_user(key)
        lines.append(f"{domain}:{user}:{password}")
    with open(_user_file, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    os.environ["NTLM_USER_FILE"] = _user_file


def register_ntlm_user(username: str, password: str) -> None:
    """Accept ``username``/``password`` in this process's NTLM acceptors."""
    if ":" in username or ":" in password or "\n" in username + password:
        raise ValidationError.of(
            f"user {username!r}",
            "NTLM users and passwords cannot contain ':' or newlines",
            "choose other credentials for the simulated host",
        )
    key = username.upper()
    with _users_lock:
        known = _users.get(key)
        if known is not None and known[0] != password:
            raise ValidationError.of(
                f"user {username!r}",
                "another simulated NTLM host in this process has this user with another password",
                "give the hosts the same password for this user, or different user names "
                "(pyspnego reads NTLM users from one per-process file)",
            )
        _users[key] = (password, (known[1] if known else 0) + 1)
        _rewrite_user_file()


def unregister_ntlm_user(username: str) -> None:
    """Undo one :func:`register_ntlm_user`."""
    key = username.upper()
    with _users_lock:
        known = _users.get(key)
        if known is None:
            return
        if known[1] <= 1:
            del _users[key]
        else:
            _users[key] = (known[0], known[1] - 1)
        _rewrite_user_file()


@attrs.frozen
class AuthDecision:
    """What to do with a request: go on (``ok``) or answer 401 with these headers."""

    ok: bool
    headers: tuple[tuple[str, str], ...] = ()


class ConnectionAuth:
    """The authentication state of one TCP connection."""

    def __init__(self) -> None:
        self.context: Any = None
        self.complete = False

    @property
    def encrypts(self) -> bool:
        return self.complete and self.context is not None

    def unwrap(self, body: bytes, content_type: str) -> bytes:
        """Decrypt a ``multipart/encrypted`` body; raise ValueError if it is not one."""
        if not self.encrypts:
            raise ValueError("message encryption before authentication")
        if SPNEGO_PROTOCOL.lower() not in content_type.lower():
            raise ValueError(f"unsupported encryption protocol in {content_type!r}")
        parts = body.split(_BOUNDARY + b"\r\n")
        if len(parts) < 3:
            raise ValueError("malformed multipart/encrypted body")
        length_match = re.search(rb"Length=(\d+)", parts[1])
        if length_match is None:
            raise ValueError("multipart/encrypted body without OriginalContent length")
        payload = _BOUNDARY.join(parts[2:])
        prefix = b"\tContent-Type: application/octet-stream\r\n"
        if not payload.startswith(prefix):
            raise ValueError("multipart/encrypted body without octet-stream part")
        payload = payload[len(prefix) :]
        suffix = _BOUNDARY + b"--\r\n"
        if payload.endswith(suffix):
            payload = payload[: -len(suffix)]
        header_length = struct.unpack("<i", payload[:4])[0]
        header = payload[4 : 4 + header_length]
        data: bytes = self.context.unwrap_winrm(header, payload[4 + header_length :])
        if len(data) != int(length_match.group(1)):
            raise ValueError("decrypted length does not match the announced length")
        return data

    def wrap(self, data: bytes) -> tuple[str, bytes]:
        """Encrypt a response body; returns the Content-Type and the body."""
        header, wrapped, padding = self.context.wrap_winrm(data)
        body = b"\r\n".join(
            [
                _BOUNDARY,
                b"\tContent-Type: " + SPNEGO_PROTOCOL.encode(),
                b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
                + str(len(data) + padding).encode(),
                _BOUNDARY,
                b"\tContent-Type: application/octet-stream",
                b"",
            ]
        )
        body += struct.pack("<i", len(header)) + header + wrapped + _BOUNDARY + b"--\r\n"
        content_type = (
            f'multipart/encrypted;protocol="{SPNEGO_PROTOCOL}";boundary="Encrypted Boundary"'
        )
        return content_type, body


class Authenticator:
    """The host's authentication policy: ``basic``, ``ntlm`` or ``negotiate``."""

    def __init__(
        self,
        kind: str,
        username: str,
        password: str,
        *,
        channel_bindings: spnego.channel_bindings.GssChannelBindings | None = None,
    ) -> None:
        self.kind = kind
        self.username = username
        self.password = password
        self.channel_bindings = channel_bindings

    @property
    def challenge(self) -> tuple[tuple[str, str], ...]:
        if self.kind == "basic":
            return (("WWW-Authenticate", 'Basic realm="WSMAN"'),)
        return (("WWW-Authenticate", "Negotiate"),)

    def check(self, authorization: str | None, conn: ConnectionAuth) -> AuthDecision:
        """Decide on one request of a connection, stepping the NTLM context if needed."""
        if self.kind == "basic":
            ok = self._basic_ok(authorization)
            return AuthDecision(ok, () if ok else self.challenge)
        if conn.complete and not authorization:
            return AuthDecision(True)
        match = _TOKEN.match(authorization or "")
        if match is None:
            return AuthDecision(False, self.challenge)
        scheme, token = match.group(1), match.group(2)
        if conn.context is None or conn.complete:
            conn.context = spnego.server(
                protocol="negotiate",
                channel_bindings=self.channel_bindings,
                options=spnego.NegotiateOptions.wrapping_winrm,
            )
            conn.complete = False
        try:
            out = conn.context.step(base64.b64decode(token))
        except Exception:
            conn.context = None
            return AuthDecision(False, self.challenge)
        header = (
            (("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}"),) if out else ()
        )
        if not conn.context.complete:
            return AuthDecision(False, header)
        conn.complete = True
        return AuthDecision(True, header)

    def _basic_ok(self, authorization: str | None) -> bool:
        """Check Basic credentials. Whatever the header holds (non-ASCII, not base64, no colon)
        is a failed check, never an exception. The user name is compared case-insensitively, as
        Windows does; credentials may be sent in UTF-8 or, as some clients do, in Latin-1."""
        if not authorization or authorization[:6].lower() != "basic ":
            return False
        try:
            decoded = base64.b64decode(authorization[6:].strip().encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            return False
        user, colon, password = _credential_text(decoded).partition(":")
        if not colon:
            return False
        user_ok = hmac.compare_digest(
            user.casefold().encode("utf-8"), self.username.casefold().encode("utf-8")
        )
        password_ok = hmac.compare_digest(password.encode("utf-8"), self.password.encode("utf-8"))
        return user_ok and password_ok


def _credential_text(decoded: bytes) -> str:
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        return decoded.decode("latin-1")
