"""Hostile and broken clients against the real listener on 127.0.0.1, with raw sockets.

Each test sends what a careless or hostile client sends, checks the answer Windows (HTTP.sys and
WinRM) gives, and then that the host left no handler thread behind and still serves pypsrp.
Timeouts are shortened through ``ServerLimits`` so the suite stays fast; the waits end as soon as
the server acted.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from pypsrp.exceptions import WinRMTransportError, WSManFaultError

from vmfailover.testing.hyperv import ServerLimits
from vmfailover.testing.hyperv._objects import cmd
from vmfailover.testing.hyperv.client import PypsrpShell
from vmfailover.testing.hyperv.host import HyperVHost

from .hostile import (
    SETTLE_SECONDS,
    basic,
    closed_by_server,
    connect,
    exchange,
    handler_threads,
    head,
    no_handler_left,
    read_answer,
    read_answers,
    refusal,
    wait_until,
)

HostFactory = Callable[..., HyperVHost]
ShellFactory = Callable[..., PypsrpShell]

#: Short enough for a fast suite, long enough that a loaded machine never trips a real client.
REQUEST_TIMEOUT = 1.0
TWENTY_MB = str(20 * 1024 * 1024)


@pytest.fixture
def host(echo_host_factory: HostFactory) -> HyperVHost:
    return echo_host_factory(limits=ServerLimits(request_timeout=REQUEST_TIMEOUT))


@pytest.fixture
def shell(host: HyperVHost, shell_factory: ShellFactory) -> Iterator[PypsrpShell]:
    """A pypsrp client that worked before the attack and must still work after it."""
    client = shell_factory(host)
    assert client.run(cmd("Echo-Value", "before")).output == ("before",)
    yield client
    assert client.run(cmd("Echo-Value", "after")).output == ("after",)


# -- malformed framing: HTTP.sys answers 400/411/405/501 and closes --------------------------------
@pytest.mark.parametrize(
    "length", ["abc", "-1", "+5", "1e3", "0x10", "1 2", "", str(2**64 + 1) * 2, "9" * 5000]
)
def test_a_malformed_content_length_is_400_and_the_connection_closes(
    host: HyperVHost, shell: PypsrpShell, length: str
) -> None:
    with no_handler_left(host):
        answer = refusal(host, head(length=length, authorization=basic()))
    assert answer.status == 400
    assert answer.getheader("Server") == "Microsoft-HTTPAPI/2.0"
    assert b"Traceback" not in answer.read()


def test_two_different_content_lengths_are_400(host: HyperVHost, shell: PypsrpShell) -> None:
    with no_handler_left(host):
        answer = refusal(
            host, head(length="5", authorization=basic(), extra=("Content-Length: 6",))
        )
    assert answer.status == 400


def test_a_post_without_length_or_chunking_is_411(host: HyperVHost, shell: PypsrpShell) -> None:
    with no_handler_left(host):
        answer = refusal(host, head(length=None, authorization=basic()))
    assert answer.status == 411


def test_other_methods_are_405_and_unknown_transfer_codings_501(
    host: HyperVHost, shell: PypsrpShell
) -> None:
    with no_handler_left(host):
        get = refusal(host, head(method="GET", length=None))
        gzip = refusal(
            host, head(length=None, authorization=basic(), extra=("Transfer-Encoding: gzip",))
        )
    assert (get.status, get.getheader("Allow")) == (405, "POST")
    assert gzip.status == 501


def test_a_request_head_over_max_header_bytes_is_400(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(limits=ServerLimits(max_header_bytes=4096))
    with no_handler_left(host):
        answer = refusal(host, head(authorization=basic(), extra=("X-Pad: " + "a" * 8000,)))
    assert answer.status == 400
    assert shell_factory(host).run(cmd("Echo-Value", 1)).output == (1,)


# -- authentication comes before the body ----------------------------------------------------------
def test_content_length_2_pow_62_is_413_unread_for_a_known_client(
    host: HyperVHost, shell: PypsrpShell
) -> None:
    with no_handler_left(host):
        # Only the head is sent: the answer proves the server did not wait for the body.
        answer = refusal(host, head(length=str(2**62), authorization=basic()))
    assert answer.status == 413


@pytest.mark.parametrize("length", [TWENTY_MB, str(2**62)])
def test_a_large_body_from_an_unknown_client_is_401_unread(
    host: HyperVHost, shell: PypsrpShell, length: str
) -> None:
    with no_handler_left(host):
        answer = refusal(host, head(length=length, authorization=basic(password="no")))
        anonymous = refusal(host, head(length=length))
    assert answer.status == 401
    assert anonymous.status == 401
    assert anonymous.getheader("WWW-Authenticate") == 'Basic realm="WSMAN"'


def test_a_20_mb_body_from_a_known_client_is_413_without_being_read(
    host: HyperVHost, shell: PypsrpShell
) -> None:
    with no_handler_left(host), connect(host) as sock:
        sock.sendall(head(length=TWENTY_MB, authorization=basic()))
        sock.sendall(b"<" * 65_536)  # the client starts sending; the server has already answered
        answer = read_answer(sock)
        assert answer.status == 413
        assert closed_by_server(sock)


def test_a_body_just_over_max_envelope_size_is_413_through_pypsrp(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(limits=ServerLimits(max_envelope_size_kb=8))
    shell = shell_factory(host)
    # A Send whose envelope is over 8 KiB, as pypsrp would build it for a large input.
    with no_handler_left(host), pytest.raises(WinRMTransportError) as raised:
        shell.pool.shell.send("stdin", b"x" * 9000, command_id=str(uuid.uuid4()).upper())
    assert raised.value.code == 413
    assert host.requests[-1].action != "Send"  # refused before WinRM looked at it
    assert shell_factory(host).run(cmd("Echo-Value", "small")).output == ("small",)


def test_the_configured_envelope_size_is_what_winrm_config_reports(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(limits=ServerLimits(max_envelope_size_kb=64))
    shell = shell_factory(host)
    shell.wsman.update_max_payload_size()
    assert shell.wsman.max_envelope_size == 64 * 1024


def test_a_small_refused_body_is_read_and_the_connection_kept(
    host: HyperVHost, shell: PypsrpShell
) -> None:
    envelope = b"<not-xml"
    with no_handler_left(host), connect(host) as sock:
        sock.sendall(head(length=str(len(envelope)), authorization=basic(password="no")) + envelope)
        assert read_answer(sock).status == 401
        # Same connection, right credentials: the body of the refused request did not linger.
        sock.sendall(head(length=str(len(envelope)), authorization=basic()) + envelope)
        fault = read_answer(sock)
        assert fault.status == 500  # a SOAP fault: WinRM read the (malformed) envelope
        assert fault.getheader("Content-Type", "").startswith("application/soap+xml")


# -- credentials that are not ASCII ----------------------------------------------------------------
@pytest.mark.parametrize(
    "authorization",
    [
        basic("ädmin", "pw"),
        basic("admin", "pässwörd"),
        basic("admin", "pässwörd", encoding="latin-1"),
        basic("管理者", "密码"),
        "Basic " + "é" * 12,
        "Basic YWRtaW4=",  # no colon
        "Basic %%%",
        "Negotiate ä",
    ],
)
def test_non_ascii_or_broken_basic_credentials_are_401(
    host: HyperVHost, shell: PypsrpShell, authorization: str
) -> None:
    with no_handler_left(host):
        answer = exchange(host, head(authorization=authorization))
    assert answer.status == 401
    assert answer.getheader("WWW-Authenticate") == 'Basic realm="WSMAN"'


def test_raw_non_ascii_bytes_in_the_authorization_header_are_401(
    host: HyperVHost, shell: PypsrpShell
) -> None:
    raw = head(authorization="Basic X").replace(b"Basic X", b"Basic \xc3\xa4\xff\xfe")
    with no_handler_left(host):
        answer = exchange(host, raw)
    assert answer.status == 401


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_non_ascii_password_works_in_utf8_and_latin1(
    echo_host_factory: HostFactory, shell_factory: ShellFactory, encoding: str
) -> None:
    host = echo_host_factory(password="pässwörd")
    answer = exchange(host, head(authorization=basic("ADMIN", "pässwörd", encoding=encoding)))
    assert answer.status == 200
    # pypsrp (requests) sends Latin-1.
    assert shell_factory(host).run(cmd("Echo-Value", "ok")).output == ("ok",)
    assert exchange(host, head(authorization=basic("admin", "passwörd"))).status == 401


# -- timeouts: nothing sent, too little sent, sent too slowly --------------------------------------
def test_a_client_that_connects_and_sends_nothing_is_closed(
    host: HyperVHost, shell: PypsrpShell
) -> None:
    timed_out = host.connection_counts().timed_out
    with no_handler_left(host), connect(host) as sock:
        assert closed_by_server(sock)  # no answer: HTTP.sys closes a connection that timed out
    assert host.connection_counts().timed_out == timed_out + 1


@pytest.mark.parametrize("sent", [0, 10, 99])
def test_a_body_shorter_than_its_length_is_closed_after_the_request_timeout(
    host: HyperVHost, shell: PypsrpShell, sent: int
) -> None:
    timed_out = host.connection_counts().timed_out
    with no_handler_left(host), connect(host) as sock:
        sock.sendall(head(length="100", authorization=basic()) + b"<" * sent)
        assert closed_by_server(sock)
    assert host.connection_counts().timed_out == timed_out + 1


def test_a_client_sending_its_head_byte_by_byte_is_cut_off(
    host: HyperVHost, shell: PypsrpShell
) -> None:
    request = head(authorization=basic(), extra=tuple(f"X-Slow-{n}: x" for n in range(30)))
    gap = REQUEST_TIMEOUT / 10  # each byte comes well within the timeout; the request never does
    cut_off_at = None
    with no_handler_left(host), connect(host) as sock:
        for index in range(len(request)):
            try:
                sock.sendall(request[index : index + 1])
            except (BrokenPipeError, ConnectionResetError):
                cut_off_at = index
                break
            time.sleep(gap)
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    cut_off_at = index
                    break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                cut_off_at = index
                break
            finally:
                sock.setblocking(True)
    assert cut_off_at is not None and cut_off_at < len(request) - 1
    assert host.connection_counts().timed_out >= 1


def test_an_idle_kept_alive_connection_is_closed_and_pypsrp_reconnects(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(limits=ServerLimits(idle_timeout=0.3))
    shell = shell_factory(host)
    assert shell.run(cmd("Echo-Value", 1)).output == (1,)
    with connect(host) as sock:
        sock.sendall(head(authorization=basic()))
        assert read_answer(sock).status == 200
        assert closed_by_server(sock)  # kept alive, then closed once idle
    assert host.wait_for_connections(at_most=0, timeout=SETTLE_SECONDS)
    assert host.connection_counts().idle_closed >= 2  # ours and pypsrp's
    assert shell.run(cmd("Echo-Value", 2)).output == (2,)  # Basic: a new connection just works


def test_a_tls_client_that_never_completes_the_handshake_is_closed(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(tls=True, limits=ServerLimits(request_timeout=REQUEST_TIMEOUT))
    with no_handler_left(host):
        with connect(host) as silent:
            assert closed_by_server(silent)
        with connect(host) as partial:
            partial.sendall(b"\x16\x03\x01\x00\xff\x01")  # the start of a ClientHello
            assert closed_by_server(partial)
    assert host.connection_counts().timed_out == 2
    assert shell_factory(host).run(cmd("Echo-Value", "tls")).output == ("tls",)


# -- many connections ------------------------------------------------------------------------------
def test_connections_over_max_connections_are_503_and_closed_at_once(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(limits=ServerLimits(max_connections=4, request_timeout=3.0))
    with no_handler_left(host):
        holders = [connect(host) for _ in range(4)]
        extra = [connect(host) for _ in range(3)]
        try:
            for sock in extra:  # accepted after the holders, so refused
                answer = read_answer(sock)
                assert answer.status == 503
                assert closed_by_server(sock)
            counts = host.connection_counts()
            assert (counts.open, counts.peak, counts.refused) == (4, 4, 3)
        finally:
            for sock in holders + extra:
                sock.close()
    assert shell_factory(host).run(cmd("Echo-Value", "room again")).output == ("room again",)


def test_many_concurrent_half_open_connections_hold_at_most_max_connections_threads(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    limit = 8
    host = echo_host_factory(limits=ServerLimits(max_connections=limit, request_timeout=2.0))
    shell = shell_factory(host)
    assert shell.run(cmd("Echo-Value", "before")).output == ("before",)
    counts = host.connection_counts()
    served = limit - counts.open
    half_heads = [head(length="100", authorization=basic())[:n] for n in (0, 5, 30, 60)]
    sockets: list[socket.socket] = []
    with no_handler_left(host):
        try:
            for index in range(150):
                sock = connect(host)
                sockets.append(sock)
                partial = half_heads[index % len(half_heads)]
                try:
                    if partial:
                        sock.sendall(partial)
                except OSError:  # a refused connection may already be reset
                    pass
            # The accept loop has taken every connection: the first ones hold the free slots,
            # all the others were refused.
            expected_refusals = counts.refused + 150 - served
            assert wait_until(lambda: host.connection_counts().refused >= expected_refusals)
            assert len(handler_threads(host)) <= limit
        finally:
            for sock in sockets:
                sock.close()
    after = host.connection_counts()
    assert after.peak == limit
    assert after.refused - counts.refused == 150 - served
    assert shell.run(cmd("Echo-Value", "after")).output == ("after",)  # its connection survived


def test_150_connections_with_short_bodies_end_without_a_cap(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    """The issue's case: 150 connections each announcing more body than they send held 150
    threads forever; now each times out and its thread ends."""
    host = echo_host_factory(limits=ServerLimits(request_timeout=REQUEST_TIMEOUT))
    sockets = []
    with no_handler_left(host):
        try:
            for _ in range(150):
                sock = connect(host)
                sock.sendall(head(length="1000", authorization=basic()) + b"<")
                sockets.append(sock)
            assert host.wait_for_connections(at_most=0, timeout=SETTLE_SECONDS)
        finally:
            for sock in sockets:
                sock.close()
    assert host.connection_counts().timed_out == 150
    assert shell_factory(host).run(cmd("Echo-Value", 150)).output == (150,)


# -- what a well-behaved client may still do -------------------------------------------------------
def test_pipelined_and_chunked_requests_are_served(host: HyperVHost, shell: PypsrpShell) -> None:
    envelope = b"<not-xml"
    chunked = head(length=None, authorization=basic(), extra=("Transfer-Encoding: chunked",))
    chunked += b"4\r\n<not\r\n4\r\n-xml\r\n0\r\n\r\n"
    with no_handler_left(host), connect(host) as sock:
        sock.sendall(
            head(length=str(len(envelope)), authorization=basic()) + envelope + chunked + head()
        )
        # A SOAP fault for the malformed envelope, the same for it sent chunked, and a 401 for
        # the request without credentials.
        assert [answer.status for answer in read_answers(sock, 3)] == [500, 500, 401]
    assert [r.status for r in host.requests[-2:]] == [500, 500]


def test_a_chunked_body_over_the_cap_is_413(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(limits=ServerLimits(max_envelope_size_kb=8))
    chunk = b"<" * 4096
    body = b"".join(b"1000\r\n" + chunk + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    request = head(length=None, authorization=basic(), extra=("Transfer-Encoding: chunked",))
    with no_handler_left(host):
        answer = refusal(host, request + body)
    assert answer.status == 413


def test_expect_100_continue_is_honoured(host: HyperVHost, shell: PypsrpShell) -> None:
    envelope = b"<not-xml"
    with no_handler_left(host), connect(host) as sock:
        sock.sendall(
            head(length=str(len(envelope)), authorization=basic(), extra=("Expect: 100-continue",))
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100 ")
        sock.sendall(envelope)
        assert read_answer(sock).status == 500


# -- failures of the simulator never show a traceback ----------------------------------------------
def test_an_internal_failure_is_a_generic_fault_with_an_id_in_the_log(
    host: HyperVHost, shell: PypsrpShell, caplog: pytest.LogCaptureFixture
) -> None:
    # A Command whose creation payload psrpcore cannot parse fails inside the simulator.
    garbage = base64.b64encode(b"\x00" * 16 + b"\x03" + b"\xff\xff\xff\x7f" + b"junk").decode()
    command_id = str(uuid.uuid4()).upper()
    with (
        caplog.at_level(logging.ERROR, logger="vmfailover.testing.hyperv"),
        pytest.raises(WSManFaultError) as raised,
    ):
        shell.pool.shell.command("", arguments=[garbage], command_id=command_id)
    assert raised.value.code == 0x80004005
    reason = raised.value.reason or ""
    assert "Traceback" not in reason and 'File "' not in reason
    match = re.search(r"error id ([0-9a-f-]{36})", reason)
    assert match is not None, reason
    logged = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


def test_the_tls_listener_refuses_over_the_cap_by_closing(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(
        tls=True, limits=ServerLimits(max_connections=1, request_timeout=REQUEST_TIMEOUT)
    )
    with no_handler_left(host), connect(host), connect(host) as refused:
        assert closed_by_server(refused)  # no handshake, no 503: closed at once
    assert host.connection_counts().refused == 1
    context = ssl.create_default_context(cadata=host.certificate_pem)
    with (
        connect(host) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(head())
        assert read_answer(tls).status == 401
