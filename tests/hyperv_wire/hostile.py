"""Raw-socket helpers for the hostile-client tests: send bytes, read one answer, check leftovers."""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from vmfailover.testing.hyperv.host import HyperVHost

#: How long a test waits for the server to act on its own timeouts (generous: the timeouts the
#: tests configure are around a second; waits end as soon as the condition holds).
SETTLE_SECONDS = 20.0


def basic(user: str = "admin", password: str = "pw", encoding: str = "utf-8") -> str:
    token = base64.b64encode(f"{user}:{password}".encode(encoding)).decode("ascii")
    return f"Basic {token}"


def head(
    *,
    length: str | None = "0",
    authorization: str | None = None,
    method: str = "POST",
    extra: tuple[str, ...] = (),
) -> bytes:
    lines = [f"{method} /wsman HTTP/1.1", "Host: 127.0.0.1"]
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Content-Type: application/soap+xml;charset=UTF-8")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def connect(host: HyperVHost, timeout: float = SETTLE_SECONDS) -> socket.socket:
    return socket.create_connection(("127.0.0.1", host.port), timeout=timeout)


def read_answer(sock: socket.socket) -> http.client.HTTPResponse:
    """Read one HTTP answer from ``sock`` (body included)."""
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    answer.read()
    return answer


class _Unclosable:
    """One buffered reader shared by several answers (http.client closes it after each)."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def close(self) -> None:
        return None


class _SharedReader:
    def __init__(self, sock: socket.socket) -> None:
        self._file = _Unclosable(sock.makefile("rb"))

    def makefile(self, mode: str) -> Any:
        return self._file


def read_answers(sock: socket.socket, count: int) -> list[http.client.HTTPResponse]:
    """Read ``count`` pipelined answers from ``sock``."""
    reader = _SharedReader(sock)
    answers = []
    for _ in range(count):
        answer = http.client.HTTPResponse(reader)  # type: ignore[arg-type]
        answer.begin()
        answer.read()
        answers.append(answer)
    return answers


def closed_by_server(sock: socket.socket) -> bool:
    """True if the server closed the connection (EOF or reset) within the socket's timeout."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def exchange(host: HyperVHost, data: bytes) -> http.client.HTTPResponse:
    """Send ``data`` on a new connection and read one answer."""
    with connect(host) as sock:
        sock.sendall(data)
        return read_answer(sock)


def refusal(host: HyperVHost, data: bytes) -> http.client.HTTPResponse:
    """Send ``data`` on a new connection; read the answer and check that the server closed the
    connection after it (as HTTP.sys does after every error it answers)."""
    with connect(host) as sock:
        sock.sendall(data)
        answer = read_answer(sock)
        assert answer.getheader("Connection") == "close"
        assert closed_by_server(sock)
        return answer


def wait_until(condition: Callable[[], bool], timeout: float = SETTLE_SECONDS) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def handler_threads(host: HyperVHost) -> set[threading.Thread]:
    prefix = host.handler_thread_prefix
    return {thread for thread in threading.enumerate() if thread.name.startswith(prefix)}


@contextlib.contextmanager
def no_handler_left(host: HyperVHost) -> Iterator[None]:
    """Whatever the block does, the host ends up serving the connections it served before, and
    every handler thread started meanwhile has ended (none is blocked)."""
    before = handler_threads(host)
    open_before = host.connection_counts().open
    yield
    assert host.wait_for_connections(at_most=open_before, timeout=SETTLE_SECONDS), (
        host.connection_counts()
    )
    started = handler_threads(host) - before
    for thread in started:
        thread.join(timeout=SETTLE_SECONDS)
    assert [thread.name for thread in started if thread.is_alive()] == []
    assert handler_threads(host) <= before
