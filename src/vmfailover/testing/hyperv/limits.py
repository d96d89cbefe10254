"""How much a simulated host accepts, and for how long it waits, before it refuses a client.

A Windows host bounds every request: HTTP.sys caps the request head (``MaxRequestBytes``, 16 KB)
and times out idle connections (``IdleConnection``, 120 s) and requests whose head or body do not
arrive (``HeaderWait``, ``EntityBody``); WinRM caps the SOAP envelope (``MaxEnvelopeSizekb``,
500 KB) and the requests it serves at once (``MaxConnections``, 300). :class:`ServerLimits` gives
the simulated host the same bounds, with defaults that a real client never meets and a hostile
one cannot outlast; tests shorten the timeouts to stay fast.

:class:`ConnectionCounts` is what the listener reports about its connections (one handler thread
each), so a test can see that a hostile client left nothing behind.
"""

from __future__ import annotations

from typing import Any

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import is_finite_number

__all__ = ["ConnectionCounts", "ServerLimits"]

#: Bytes a ``multipart/encrypted`` body may add around the envelope it carries (MIME framing,
#: the signature header and its length prefix): the HTTP body cap is the envelope cap plus this.
ENCRYPTION_ALLOWANCE = 2048
_MAX_SECONDS = 86_400.0


def _int_within(low: int, high: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError.of(
                f"server limit {attribute.name}",
                f"{value!r} is not a whole number from {low} to {high}",
                f"give an int in {low}..{high}",
            )

    return check


def _seconds(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not is_finite_number(value) or not 0 < value <= _MAX_SECONDS:
        raise ValidationError.of(
            f"server limit {attribute.name}",
            f"{value!r} is not a number of seconds above 0 and at most {_MAX_SECONDS:g}",
            "give a finite positive number of seconds, e.g. 0.5",
        )


@attrs.frozen
class ServerLimits:
    """The bounds of one simulated host (``HyperVHost(..., limits=ServerLimits(...))``).

    * ``max_envelope_size_kb``: the largest SOAP envelope accepted, in KiB (WinRM's
      ``MaxEnvelopeSizekb``); a larger request is answered ``413`` unread, and the host's
      ``winrm/config`` reports this value. Responses never exceed it either.
    * ``max_header_bytes``: the largest request line plus headers (HTTP.sys' ``MaxRequestBytes``);
      a larger head is answered ``400``.
    * ``max_connections``: connections served at once, one handler thread each (WinRM's
      ``MaxConnections``); a connection beyond it is answered ``503`` and closed at once.
    * ``request_timeout``: seconds a request may take to arrive, head and body, from its first
      byte (a new connection's clock starts when it is accepted, TLS handshake included), and
      seconds a response may take to be taken by the client. Past it the connection is closed
      without an answer, as HTTP.sys does (``Timer_HeaderWait``, ``Timer_EntityBody``).
    * ``idle_timeout``: seconds a kept-alive connection may stay silent between requests before
      it is closed (HTTP.sys' ``IdleConnection``; clients reconnect as they do after Windows
      closed an idle connection).
    """

    max_envelope_size_kb: int = attrs.field(default=500, validator=_int_within(8, 1_048_576))
    max_header_bytes: int = attrs.field(default=16_384, validator=_int_within(1024, 1_048_576))
    max_connections: int = attrs.field(default=300, validator=_int_within(1, 10_000))
    request_timeout: float = attrs.field(default=10.0, validator=_seconds)
    idle_timeout: float = attrs.field(default=120.0, validator=_seconds)

    @property
    def max_envelope_bytes(self) -> int:
        return self.max_envelope_size_kb * 1024

    @property
    def max_body_bytes(self) -> int:
        """The largest HTTP body read: an envelope at the cap, encrypted."""
        return self.max_envelope_bytes + ENCRYPTION_ALLOWANCE


@attrs.frozen
class ConnectionCounts:
    """What a host's listener has seen: connections ``open`` now (each holds one handler thread),
    the ``peak`` of open connections, connections ``refused`` for being over ``max_connections``,
    connections closed because a request did not arrive within ``request_timeout``
    (``timed_out``) and kept-alive connections closed after ``idle_timeout`` (``idle_closed``)."""

    open: int
    peak: int
    refused: int
    timed_out: int
    idle_closed: int
