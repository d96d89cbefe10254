"""Running readiness probes against real peers: an HTTP server and a TCP listener on localhost."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.readiness import probe_passes
from vmfailover.policy.probes import HTTPStatus, PoweredOn, TCPPort
from vmfailover.testing import lab


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def backend() -> MemoryBackend:
    return lab()


def running_vm(backend: MemoryBackend) -> str:
    return backend.inventory().vm("dc01").id


def test_http_probe_passes_on_the_expected_status(backend: MemoryBackend, server: str) -> None:
    vm_id = running_vm(backend)
    assert probe_passes(HTTPStatus(f"{server}/health"), backend, vm_id, "dc01")
    assert not probe_passes(HTTPStatus(f"{server}/down"), backend, vm_id, "dc01")
    assert probe_passes(HTTPStatus(f"{server}/down", status=503), backend, vm_id, "dc01")


def test_http_probe_to_nothing_is_not_yet_ready(backend: MemoryBackend) -> None:
    with socket.socket() as probe_socket:  # a port nobody listens on once closed
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    url = f"http://127.0.0.1:{port}/health"
    assert not probe_passes(HTTPStatus(url), backend, running_vm(backend), "dc01")


def test_tcp_probe_and_powered_off_vms(backend: MemoryBackend) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        vm_id = running_vm(backend)
        assert probe_passes(TCPPort(port, address="127.0.0.1"), backend, vm_id, "dc01")
    replica_vm = backend.inventory().replicas[0].replica_vm  # not failed over: powered off
    assert not probe_passes(PoweredOn(), backend, replica_vm, "dc01")
