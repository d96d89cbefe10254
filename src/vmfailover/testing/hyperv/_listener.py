"""The accept loop of a simulated host: one handler thread per connection, never more than allowed.

A connection over ``max_connections`` is answered ``503 Service Unavailable`` and closed by the
accept loop itself (HTTP.sys' ``ConnLimit``; on TLS it is closed without an answer, since an answer
would need a handshake the accept loop must not wait for), so no client can make the host start
threads without bound. The listener tracks its live handler threads, which is what a test reads
(:meth:`Listener.counts`, :meth:`Listener.wait_for_open`) to see that hostile clients left nothing
behind.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from ._http import encode_alone, error_page
from .limits import ConnectionCounts

__all__ = ["Listener"]

log = logging.getLogger("vmfailover.testing.hyperv")

#: Serve one accepted connection; the second argument is called when it times out (with True if
#: it was idle between requests, False if a request did not arrive in time).
ServeConnection = Callable[[socket.socket, Callable[[bool], None]], None]


_BUSY = error_page(503, "Service Unavailable", "The service is unavailable.")


class _Acceptor(socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], listener: Listener) -> None:
        self.listener = listener
        super().__init__(address, socketserver.BaseRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.listener.dispatch(request)

    def shutdown_request(self, request: Any) -> None:
        # Connections are closed by their handler thread (or by dispatch when refused).
        return None

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("the accept loop of a simulated host failed on one connection")


class Listener:
    """Accept on 127.0.0.1:``port`` and hand each connection to ``serve`` on its own thread."""

    def __init__(
        self,
        *,
        name: str,
        port: int,
        max_connections: int,
        serve: ServeConnection,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._name = name
        self._max_connections = max_connections
        self._serve = serve
        self._cond = threading.Condition()
        self._handlers: dict[threading.Thread, socket.socket] = {}
        self._numbers = itertools.count(1)
        self._peak = 0
        self._refused = 0
        self._timed_out = 0
        self._idle_closed = 0
        self._acceptor = _Acceptor(("127.0.0.1", port), self)
        if tls is not None:
            self._acceptor.socket = tls.wrap_socket(
                self._acceptor.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._acceptor.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"wsman-{name}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._acceptor.server_address[1])

    @property
    def thread_name_prefix(self) -> str:
        """Handler threads are named this plus a number."""
        return f"wsman-{self._name}-conn-"

    def start(self) -> None:
        self._thread.start()

    def stop_accepting(self) -> None:
        self._acceptor.shutdown()
        self._acceptor.server_close()
        self._thread.join(timeout=5)

    def close_connections(self, timeout: float = 5.0) -> None:
        """Break every open connection and wait (up to ``timeout``) for their threads to end."""
        with self._cond:
            handlers = list(self._handlers.items())
        for _thread, sock in handlers:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread, _sock in handlers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- what tests read --------------------------------------------------------------------------
    def counts(self) -> ConnectionCounts:
        with self._cond:
            return ConnectionCounts(
                open=len(self._handlers),
                peak=self._peak,
                refused=self._refused,
                timed_out=self._timed_out,
                idle_closed=self._idle_closed,
            )

    def wait_for_open(self, at_most: int, timeout: float) -> bool:
        """Wait until at most ``at_most`` connections are open; False if ``timeout`` passed."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._handlers) <= at_most, timeout)

    # -- the accept loop's side -------------------------------------------------------------------
    def dispatch(self, sock: socket.socket) -> None:
        """Called by the accept loop for each accepted connection."""
        with self._cond:
            if len(self._handlers) >= self._max_connections:
                self._refused += 1
                thread = None
            else:
                thread = threading.Thread(
                    target=self._run,
                    args=(sock,),
                    name=f"{self.thread_name_prefix}{next(self._numbers)}",
                    daemon=True,
                )
                self._handlers[thread] = sock
                self._peak = max(self._peak, len(self._handlers))
        if thread is None:
            self._refuse(sock)
            return
        try:
            thread.start()
        except RuntimeError:  # the interpreter could not start a thread: refuse, do not crash
            self._forget(thread)
            self._refuse(sock)

    def _refuse(self, sock: socket.socket) -> None:
        log.debug("refused a connection: %d connections are open", self._max_connections)
        with contextlib.suppress(OSError):
            if not isinstance(sock, ssl.SSLSocket):
                sock.setblocking(False)
                sock.send(encode_alone(_BUSY))
                with contextlib.suppress(OSError):
                    sock.recv(65_536)  # what already came, so closing does not reset the answer
                sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _note_timeout(self, idle: bool) -> None:
        with self._cond:
            if idle:
                self._idle_closed += 1
            else:
                self._timed_out += 1

    def _run(self, sock: socket.socket) -> None:
        try:
            self._serve(sock, self._note_timeout)
        except Exception:  # a bug in the server: log it, never print it to the client
            log.exception("a simulated host failed serving a connection")
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            self._forget(threading.current_thread())

    def _forget(self, thread: threading.Thread) -> None:
        with self._cond:
            self._handlers.pop(thread, None)
            self._cond.notify_all()
