"""The HTTP driver and its limits on their own: a socket pair, an exchange of our own, any bytes.

The wire tests (``test_hostile_clients.py``) drive the real listener; these reach the corners a
client cannot reach on purpose (an exchange that fails, a client that never takes its answer) and
feed the driver arbitrary bytes.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmfailover.errors import ValidationError
from vmfailover.testing.hyperv import HyperVHost, ServerLimits
from vmfailover.testing.hyperv._auth import Authenticator, ConnectionAuth
from vmfailover.testing.hyperv._http import HttpConnection, Reply, RequestHead

from .conftest import EchoHost
from .hostile import basic

FAST = ServerLimits(request_timeout=0.2, idle_timeout=0.2, max_envelope_size_kb=8)


class RecordingExchange:
    """Admits requests carrying ``Authorization: yes``; answers with the body's length."""

    def __init__(self, *, fail_in: str = "") -> None:
        self.fail_in = fail_in
        self.bodies: list[bytes] = []

    def admit(self, head: RequestHead) -> Reply | None:
        if self.fail_in == "admit":
            raise RuntimeError("secret detail in admit")
        return None if head.header("authorization") == "yes" else Reply(401)

    def answer(self, head: RequestHead, body: bytes) -> Reply:
        if self.fail_in == "answer":
            raise RuntimeError("secret detail in answer")
        self.bodies.append(body)
        return Reply(200, body=str(len(body)).encode(), content_type="text/plain")


def serve_bytes(
    data: bytes, exchange: RecordingExchange, limits: ServerLimits = FAST
) -> tuple[bytes, list[bool]]:
    """Serve ``data`` (then end of input) on one connection; all that was answered, and the
    timeouts reported (True for idle)."""
    server, client = socket.socketpair()
    timeouts: list[bool] = []
    with server, client:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        HttpConnection(server, limits, exchange, on_timeout=timeouts.append).serve()
        server.close()
        client.settimeout(5)
        chunks = []
        while chunk := client.recv(65_536):
            chunks.append(chunk)
    return b"".join(chunks), timeouts


def request(body: bytes = b"", *, auth: str = "yes", extra: str = "") -> bytes:
    return (
        f"POST /wsman HTTP/1.1\r\nHost: h\r\nAuthorization: {auth}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def statuses(answer: bytes) -> list[int]:
    # Answers follow each other directly (a body need not end in a newline).
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


# -- the limits ------------------------------------------------------------------------------------
def test_defaults_are_windows_values() -> None:
    limits = ServerLimits()
    assert limits.max_envelope_bytes == 500 * 1024
    assert limits.max_header_bytes == 16_384
    assert limits.max_connections == 300
    assert limits.idle_timeout == 120
    assert limits.request_timeout == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("request_timeout", math.nan),
        ("request_timeout", math.inf),
        ("request_timeout", 0),
        ("request_timeout", -1),
        ("request_timeout", True),
        ("request_timeout", "5"),
        ("idle_timeout", None),
        ("idle_timeout", 1e9),
        ("max_connections", 0),
        ("max_connections", 2.5),
        ("max_connections", False),
        ("max_envelope_size_kb", 4),
        ("max_envelope_size_kb", 10**12),
        ("max_header_bytes", "16k"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        ServerLimits(**{field: value})  # type: ignore[arg-type]


def test_a_host_refuses_limits_tls_and_basic_users_it_cannot_serve() -> None:
    with pytest.raises(ValidationError, match="limits"):
        HyperVHost("hv", command_host=EchoHost(), limits={"max_connections": 1})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="tls"):
        HyperVHost("hv", command_host=EchoHost(), tls="no")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="':'"):
        HyperVHost("hv", command_host=EchoHost(), username="a:b")


# -- Basic credentials: anything in the header is a decision, never an exception -------------------
@settings(max_examples=300)
@given(st.one_of(st.none(), st.text(), st.text().map(lambda text: "Basic " + text)))
def test_any_authorization_header_is_decided(authorization: str | None) -> None:
    decision = Authenticator("basic", "admin", "pässwörd").check(authorization, ConnectionAuth())
    assert decision.ok is False


@settings(max_examples=100)
@given(st.text(min_size=1).filter(lambda text: ":" not in text), st.text())
def test_basic_accepts_exactly_the_right_credentials(user: str, password: str) -> None:
    authenticator = Authenticator("basic", user, password)
    assert authenticator.check(basic(user.upper(), password), ConnectionAuth()).ok
    assert not authenticator.check(basic(user, password + "x"), ConnectionAuth()).ok


# -- the driver ------------------------------------------------------------------------------------
def test_requests_on_one_connection_are_answered_in_order() -> None:
    exchange = RecordingExchange()
    answer, timeouts = serve_bytes(request(b"abc") + request(b"") + request(b"x" * 100), exchange)
    assert statuses(answer) == [200, 200, 200]
    assert exchange.bodies == [b"abc", b"", b"x" * 100]
    assert timeouts == []


@pytest.mark.parametrize("where", ["admit", "answer"])
def test_a_failing_exchange_is_a_500_naming_an_error_id_in_the_log(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="vmfailover.testing.hyperv"):
        answer, _ = serve_bytes(
            request(b"abc") + request(b"next"), RecordingExchange(fail_in=where)
        )
    assert statuses(answer) == [500]  # and the connection closed: "next" is not answered
    assert b"secret detail" not in answer and b"Traceback" not in answer
    error_id = re.search(rb"error id ([0-9a-f-]{36})", answer)
    assert error_id is not None
    (record,) = [r for r in caplog.records if error_id.group(1).decode() in r.getMessage()]
    assert record.exc_info is not None and "secret detail" in str(record.exc_info[1])


def test_a_refused_small_body_is_drained_and_the_connection_kept() -> None:
    exchange = RecordingExchange()
    answer, _ = serve_bytes(request(b"hidden", auth="no") + request(b"seen"), exchange)
    assert statuses(answer) == [401, 200]
    assert exchange.bodies == [b"seen"]


def test_a_malformed_chunk_is_400_and_closes() -> None:
    chunked = request(extra="Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
    answer, _ = serve_bytes(
        chunked + b"zz\r\nabc\r\n0\r\n\r\n" + request(b"never"), RecordingExchange()
    )
    assert statuses(answer) == [400]
    assert b"Connection: close" in answer


def test_a_refused_large_body_closes_the_connection_unread() -> None:
    exchange = RecordingExchange()
    large = (
        b"POST /wsman HTTP/1.1\r\nHost: h\r\nAuthorization: no\r\n"
        + f"Content-Length: {FAST.max_body_bytes + 1}\r\n\r\n".encode()
    )
    answer, _ = serve_bytes(large + request(b"never"), exchange)
    assert statuses(answer) == [401]
    assert b"Connection: close" in answer
    assert exchange.bodies == []


def test_a_client_that_never_sends_times_out_and_one_idle_after_a_request_too() -> None:
    exchange = RecordingExchange()
    for data, idle in ((b"", False), (request(b"a"), True)):
        server, client = socket.socketpair()
        timeouts: list[bool] = []
        with server, client:
            client.sendall(data)  # and then nothing, without closing
            HttpConnection(server, FAST, exchange, on_timeout=timeouts.append).serve()
        assert timeouts == [idle]


def test_a_client_that_never_takes_its_answer_does_not_hold_the_thread() -> None:
    class Big(RecordingExchange):
        def answer(self, head: RequestHead, body: bytes) -> Reply:
            return Reply(200, body=b"x" * (16 * 1024 * 1024))

    server, client = socket.socketpair()
    timeouts: list[bool] = []
    with server, client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sendall(request(b"a"))
        worker = threading.Thread(
            target=HttpConnection(server, FAST, Big(), on_timeout=timeouts.append).serve
        )
        worker.start()
        worker.join(timeout=20)
        assert not worker.is_alive()
    assert timeouts == [False]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_end_in_answers_or_a_close_never_an_exception(data: bytes) -> None:
    answer, timeouts = serve_bytes(data, RecordingExchange())
    assert timeouts == []  # the end of input came first
    assert b"Traceback" not in answer
    assert all(status in {200, 400, 401, 405, 411, 413, 501} for status in statuses(answer))


_token = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Content-Length", "Transfer-Encoding", "Expect", "Connection", "X"]),
            st.one_of(_token, st.integers(-5, 2**70).map(str)),
        ),
        max_size=4,
    ),
    st.binary(max_size=200),
    st.sampled_from(["POST", "GET", "PUT", "post"]),
)
def test_any_framing_headers_end_in_answers_or_a_close(
    headers: list[tuple[str, str]], body: bytes, method: str
) -> None:
    head = f"{method} /wsman HTTP/1.1\r\nHost: h\r\nAuthorization: yes\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    answer, _timeouts = serve_bytes(head.encode() + body, RecordingExchange())
    assert b"Traceback" not in answer
    assert all(status in {100, 200, 400, 405, 411, 413, 501} for status in statuses(answer)), (
        answer[:300]
    )
