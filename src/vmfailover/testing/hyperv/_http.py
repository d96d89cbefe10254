"""One HTTP/1.1 connection of the simulated host: h11 parses, this module bounds every wait.

The protocol (request framing, header validation, keep-alive) is h11's sans-IO state machine;
this driver feeds it bytes and writes what it answers, and owns the limits a Windows host
enforces before WinRM sees a request (HTTP.sys):

* a request must arrive, head and body, within ``request_timeout`` of its first byte (a new
  connection's first request within ``request_timeout`` of the accept), and a kept-alive
  connection may stay silent for ``idle_timeout``; past either the connection is closed without an
  answer, as HTTP.sys does;
* a malformed request (a Content-Length that is not a number, two that disagree, no Host, a head
  over ``max_header_bytes``) is answered ``400``, a POST with neither Content-Length nor chunked
  framing ``411``, another method ``405``, a transfer coding other than chunked ``501``;
* the :class:`Exchange` (WinRM) admits a request on its head alone, authentication included,
  before any of its body is read; a body over ``max_body_bytes`` is answered ``413`` unread;
* every error answer closes the connection (as HTTP.sys does); a refused request whose body is
  small enough is read and dropped first, so an authentication handshake keeps its connection.

A failure of the exchange itself is logged with an error id, and the client gets a ``500`` that
names the id, never a traceback.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Protocol, TypeVar

import attrs
import h11

from .limits import ServerLimits

__all__ = [
    "SERVER_NAME",
    "Exchange",
    "HttpConnection",
    "Reply",
    "RequestHead",
    "encode_alone",
    "error_page",
]

log = logging.getLogger("vmfailover.testing.hyperv")

#: The ``Server`` header of every answer, as HTTP.sys sends it.
SERVER_NAME = "Microsoft-HTTPAPI/2.0"
_RECEIVE_SIZE = 65_536
_Decision = TypeVar("_Decision")
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 1 << 20


@attrs.frozen
class RequestHead:
    """A request's method, target and headers (names lower-cased, values as sent, latin-1)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        key = name.lower()
        for header_name, value in self.headers:
            if header_name == key:
                return value
        return None


@attrs.frozen
class Reply:
    """An answer: status, extra headers, body. ``close`` ends the connection after it; ``drop``
    ends it instead of answering (the status is then unused)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str = ""
    close: bool = False
    drop: bool = False


#: WinRM's answer to an envelope over MaxEnvelopeSizekb: 413 with no body.
_TOO_LARGE = Reply(413, close=True)


class Exchange(Protocol):
    """What serves the requests of one connection (the WinRM layer)."""

    def admit(self, head: RequestHead) -> Reply | None:
        """Decide on the head alone: None to read the body and :meth:`answer`, or a refusal."""

    def answer(self, head: RequestHead, body: bytes) -> Reply:
        """Answer a whole request."""


def error_page(status: int, title: str, sentence: str) -> Reply:
    """An error answer in the style of HTTP.sys: a short HTML page naming the status; like
    HTTP.sys, it closes the connection."""
    phrase = HTTPStatus(status).phrase
    body = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">'
        f"\r\n<HTML><HEAD><TITLE>{phrase}</TITLE>\r\n"
        '<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n'
        f"<BODY><h2>{phrase} - {title}</h2>\r\n<hr><p>HTTP Error {status}. {sentence}</p>\r\n"
        "</BODY></HTML>\r\n"
    ).encode("ascii")
    return Reply(status, body=body, content_type="text/html; charset=us-ascii", close=True)


class _TimedOut(Exception):
    """A wait on the client passed its deadline: ``idle`` if it was the wait between requests."""

    def __init__(self, *, idle: bool = False) -> None:
        super().__init__()
        self.idle = idle


class _PeerGone(Exception):
    """The client closed or broke the connection."""


class _BodyTooLarge(Exception):
    """A chunked body grew past the cap."""


class _BadBody(Exception):
    """The body's framing is broken (a malformed chunk)."""

    def __init__(self, error: h11.RemoteProtocolError | ValueError) -> None:
        super().__init__(str(error))
        self.error = error


def _head(event: h11.Request) -> RequestHead:
    return RequestHead(
        method=event.method.decode("ascii", "replace"),
        target=event.target.decode("latin-1"),
        headers=tuple(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in event.headers
        ),
    )


_HEAD_TOO_LONG = error_page(400, "Request Too Long", "The size of the request headers is too long.")


def _refusal_for(error: h11.RemoteProtocolError | ValueError) -> Reply:
    status = getattr(error, "error_status_hint", 400)
    if status == 431:
        return _HEAD_TOO_LONG
    if status == 501:
        return error_page(501, "Not Implemented", "The request has an unsupported transfer coding.")
    if "Content-Length" in str(error):
        return error_page(
            400, "Invalid Content Length", "The request has an invalid Content-Length header."
        )
    return error_page(400, "Invalid Request", "The request could not be parsed.")


class HttpConnection:
    """Serve one accepted connection until it closes, times out or is refused."""

    def __init__(
        self,
        sock: socket.socket,
        limits: ServerLimits,
        exchange: Exchange,
        *,
        on_timeout: Callable[[bool], None] = lambda idle: None,
    ) -> None:
        self._sock = sock
        self._limits = limits
        self._exchange = exchange
        self._on_timeout = on_timeout
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self._eof = False
        self._answered_and_closing = False
        self._cycle_bytes = 0  # bytes given to h11 for the current request, pipelined ones included
        # The first byte of a request must come before ``_wait_deadline``; once it came, the
        # whole request before ``_request_deadline``.
        accepted = time.monotonic()
        self._wait_deadline = accepted + limits.request_timeout
        self._request_deadline: float | None = accepted + limits.request_timeout

    # -- the loop ---------------------------------------------------------------------------------
    def serve(self) -> None:
        try:
            self._handshake()
            while self._serve_one():
                self._h11.start_next_cycle()
                now = time.monotonic()
                self._wait_deadline = now + self._limits.idle_timeout
                self._cycle_bytes = len(self._h11.trailing_data[0])
                pipelined = self._cycle_bytes > 0
                self._request_deadline = now + self._limits.request_timeout if pipelined else None
            if self._answered_and_closing:
                self._linger()
        except _TimedOut as timeout:
            self._on_timeout(timeout.idle)
            log.debug("closed a connection (%s)", "idle" if timeout.idle else "request too slow")
        except (_PeerGone, h11.LocalProtocolError, OSError):  # ssl.SSLError is an OSError
            pass

    def _serve_one(self) -> bool:
        """Serve one request; True if the connection goes on."""
        try:
            event = self._next_event()
        except (h11.RemoteProtocolError, ValueError) as error:
            if not self._eof:
                self._send(_refusal_for(error))
            return False
        if not isinstance(event, h11.Request):  # ConnectionClosed: the client is done
            return False
        # h11 bounds a head only while it is incomplete; one that came whole is measured here.
        if self._cycle_bytes - len(self._h11.trailing_data[0]) > self._limits.max_header_bytes:
            self._send(_HEAD_TOO_LONG)
            return False
        head = _head(event)
        refusal = self._framing_refusal(head)
        if refusal is not None:
            self._send(refusal)
            return False
        # Authentication comes first: an unknown client gets 401 whatever it announces, a known
        # one 413 for a body over the cap; neither body is read.
        admission = self._guarded(lambda: self._exchange.admit(head))
        if admission is not None:
            return self._refuse_early(head, admission)
        length = head.header("content-length")
        if length is not None and int(length) > self._limits.max_body_bytes:
            self._send(_TOO_LARGE)
            return False
        if self._h11.they_are_waiting_for_100_continue:
            self._send_informational(100)
        try:
            body = self._read_body(self._limits.max_body_bytes)
        except _BodyTooLarge:
            self._send(_TOO_LARGE)
            return False
        except _BadBody as bad:
            self._send(_refusal_for(bad.error))
            return False
        reply = self._guarded(lambda: self._exchange.answer(head, body))
        if reply.drop:
            return False
        self._send(reply)
        return not reply.close and self._h11.our_state is h11.DONE

    def _framing_refusal(self, head: RequestHead) -> Reply | None:
        if head.method != "POST":
            page = error_page(405, "Method Not Allowed", "The request method is not supported.")
            return attrs.evolve(page, headers=(("Allow", "POST"),))
        length = head.header("content-length")
        if length is None and head.header("transfer-encoding") is None:
            return error_page(
                411, "Length Required", "The request must be chunked or have a content length."
            )
        return None

    def _refuse_early(self, head: RequestHead, admission: Reply) -> bool:
        """Answer ``admission`` without reading the body; keep the connection if the body is
        small enough to read and drop."""
        if admission.drop:
            return False
        length = head.header("content-length")
        drainable = (
            length is not None
            and int(length) <= self._limits.max_body_bytes
            and not self._h11.they_are_waiting_for_100_continue  # its body will not come
        )
        if admission.close or not drainable:
            self._send(attrs.evolve(admission, close=True))
            return False
        self._send(admission)
        try:
            self._read_body(self._limits.max_body_bytes)
        except (_BodyTooLarge, _BadBody):  # answered already: just close
            return False
        return self._h11.our_state is h11.DONE

    def _guarded(self, decide: Callable[[], _Decision]) -> _Decision | Reply:
        """Run the exchange; a failure of it is logged with an id the client gets, never the
        traceback."""
        try:
            return decide()
        except Exception:
            error_id = str(uuid.uuid4())
            log.exception("the simulated host failed answering a request (error id %s)", error_id)
            return error_page(
                500,
                "Internal Server Error",
                f"The simulated host failed; its log has the details under error id {error_id}.",
            )

    # -- reading ----------------------------------------------------------------------------------
    def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = self._receive()
            self._cycle_bytes += len(data)
            self._h11.receive_data(data)

    def _read_body(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                event = self._next_event()
            except (h11.RemoteProtocolError, ValueError) as error:
                if self._eof:
                    raise _PeerGone from None
                raise _BadBody(error) from None
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise _BodyTooLarge
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            else:
                raise _PeerGone

    def _receive(self) -> bytes:
        idle = self._request_deadline is None
        deadline = self._wait_deadline if self._request_deadline is None else self._request_deadline
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _TimedOut(idle=idle)
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(_RECEIVE_SIZE)
        except TimeoutError:
            raise _TimedOut(idle=idle) from None
        if not data:
            self._eof = True
        elif self._request_deadline is None:
            self._request_deadline = time.monotonic() + self._limits.request_timeout
        return data

    def _handshake(self) -> None:
        if not isinstance(self._sock, ssl.SSLSocket):
            return
        remaining = self._wait_deadline - time.monotonic()
        self._sock.settimeout(max(remaining, 0.001))
        try:
            self._sock.do_handshake()
        except TimeoutError:
            raise _TimedOut from None

    # -- writing ----------------------------------------------------------------------------------
    def _send(self, reply: Reply) -> None:
        self._write(b"".join(self._h11.send(event) or b"" for event in _events(reply)))
        self._answered_and_closing = reply.close

    def _send_informational(self, status: int) -> None:
        self._write(
            self._h11.send(h11.InformationalResponse(status_code=status, headers=[])) or b""
        )

    def _write(self, data: bytes) -> None:
        """Send, bounded: a client that does not take its answer does not hold the thread."""
        self._sock.settimeout(self._limits.request_timeout)
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise _TimedOut from None

    def _linger(self) -> None:
        """After an answer that ends the connection, stop sending and drop what the client still
        sends, briefly and up to a bound: closing a socket with unread data resets it, and the
        reset could destroy the answer before the client read it (the client of a 413 is often
        still sending its body)."""
        if self._eof or isinstance(self._sock, ssl.SSLSocket):
            return
        self._sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + min(_LINGER_SECONDS, self._limits.request_timeout)
        budget = _LINGER_BYTES
        while budget > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._sock.settimeout(remaining)
            data = self._sock.recv(_RECEIVE_SIZE)
            if not data:
                return
            budget -= len(data)


def _events(reply: Reply) -> list[h11.Event]:
    headers = [("Server", SERVER_NAME), ("Date", email.utils.formatdate(usegmt=True))]
    headers.extend(reply.headers)
    if reply.content_type:
        headers.append(("Content-Type", reply.content_type))
    headers.append(("Content-Length", str(len(reply.body))))
    if reply.close:
        headers.append(("Connection", "close"))
    response = h11.Response(
        status_code=reply.status,
        headers=headers,
        reason=HTTPStatus(reply.status).phrase.encode("ascii"),
    )
    body = [h11.Data(data=reply.body)] if reply.body else []
    return [response, *body, h11.EndOfMessage()]


def encode_alone(reply: Reply) -> bytes:
    """``reply`` as bytes, for a connection that never read a request (one refused at accept)."""
    connection = h11.Connection(h11.SERVER)
    return b"".join(connection.send(event) or b"" for event in _events(reply))
