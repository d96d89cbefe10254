"""The WS-Management layer: an HTTP/1.1 WinRM listener on 127.0.0.1 hosting PowerShell shells.

It speaks what a PowerShell Remoting client sends (MS-WSMV): Create (a runspace pool), Command (a
pipeline), Send, Receive, Signal, Delete and Get, with Basic or NTLM/Negotiate authentication and
WinRM message encryption on plain HTTP, or TLS. Every shell is a :class:`RunspaceSession`; this
module knows nothing of what runs inside it.

Behaviour a client relies on, as on Windows:

* connections are kept alive; Nagle is off (otherwise every request stalls ~40 ms on delayed
  ACKs); NTLM authenticates the connection;
* Receive long-polls up to the request's ``OperationTimeout`` and then answers the
  ``OperationTimeout`` fault (code ``0x80338029``), which clients retry;
* a Receive response never exceeds the request's ``MaxEnvelopeSize``: output is split over several
  Receives;
* every failure of a handler becomes a SOAP fault with HTTP 500 (a client otherwise only sees a
  dropped connection); unknown shells and commands get Windows' ``InvalidSelectors`` faults;
* the accept loop polls for shutdown every 50 ms, and stopping closes open connections, so a test
  teardown is quick.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.server
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import spnego.channel_bindings

from vmfailover.errors import ValidationError

from . import _soap
from ._auth import Authenticator, ConnectionAuth, register_ntlm_user, unregister_ntlm_user
from ._objects import CommandHost
from ._soap import NS, Request, WSManFault
from ._tls import ServerCertificate, make_certificate
from .faults import ACCESS_DENIED, OPERATION_TIMEOUT, SHELL_NOT_FOUND, FaultHooks, WinRMFault
from .session import CallLog, RunspaceSession

__all__ = ["RequestRecord", "WSManServer"]

_POWERSHELL_URI = "http://schemas.microsoft.com/powershell/"
_SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
_CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
_AUTH_KINDS = ("basic", "ntlm", "negotiate")
#: Bytes a Receive response needs around its Stream data (header, body skeleton, encryption).
_RECEIVE_OVERHEAD = 2048


def _fault(template: WinRMFault, **format_args: str) -> WSManFault:
    return WSManFault(
        template.code,
        template.reason.format(**format_args),
        subcode=template.subcode,
        sender=template.sender,
    )


class RequestRecord:
    """One answered request: its action and the size of the SOAP envelope answered."""

    __slots__ = ("action", "response_size", "status")

    def __init__(self, action: str, status: int, response_size: int) -> None:
        self.action = action
        self.status = status
        self.response_size = response_size

    def __repr__(self) -> str:
        return f"RequestRecord({self.action!r}, {self.status}, {self.response_size})"


class _Shell:
    def __init__(self, shell_id: str, resource_uri: str, session: RunspaceSession) -> None:
        self.shell_id = shell_id
        self.resource_uri = resource_uri
        self.session = session
        self.created = time.monotonic()


class WSManServer:
    """The listener and its shells. Use :class:`~.host.HyperVHost` rather than this directly."""

    def __init__(
        self,
        command_host: CommandHost,
        *,
        machine: str = "hyperv-sim",
        auth: str = "basic",
        username: str = "admin",
        password: str = "pw",
        tls: bool = False,
        port: int = 0,
        faults: FaultHooks | None = None,
        calls: CallLog | None = None,
    ) -> None:
        if auth not in _AUTH_KINDS:
            raise ValidationError.of(
                f"host {machine!r}", f"auth {auth!r} is not supported", f"use one of {_AUTH_KINDS}"
            )
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError.of(
                f"host {machine!r}", f"port {port!r} is invalid", "use 0..65535"
            )
        self.command_host = command_host
        self.machine = machine
        self.auth_kind = auth
        self.username = username
        self.password = password
        self.tls = tls
        self.faults = faults or FaultHooks()
        self.calls = calls if calls is not None else CallLog()
        self.requests: list[RequestRecord] = []
        self._requested_port = port
        self._lock = threading.Lock()
        self._shells: dict[str, _Shell] = {}
        self._connections: set[socket.socket] = set()
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self._certificate: ServerCertificate | None = None
        self._authenticator: Authenticator | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise ValidationError.of(
                f"host {self.machine!r}", "is not started", "call start() first"
            )
        return int(self._server.server_address[1])

    @property
    def certificate_pem(self) -> str | None:
        return self._certificate.certificate_pem if self._certificate else None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        bindings = None
        if self.tls:
            self._certificate = make_certificate(self.machine)
            bindings = spnego.channel_bindings.GssChannelBindings(
                application_data=b"tls-server-end-point:" + self._certificate.endpoint_hash
            )
        if self.auth_kind != "basic":
            register_ntlm_user(self.username, self.password)
        self._authenticator = Authenticator(
            self.auth_kind, self.username, self.password, channel_bindings=bindings
        )
        server = _ThreadingServer(("127.0.0.1", self._requested_port), _Handler, self)
        if self._certificate is not None:
            server.socket = self._certificate.server_context().wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"wsman-{self.machine}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            shells = list(self._shells.values())
            self._shells.clear()
            connections = list(self._connections)
        for shell in shells:
            shell.session.close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.auth_kind != "basic":
            unregister_ntlm_user(self.username)

    # -- used by the handler --------------------------------------------------------------------
    @property
    def authenticator(self) -> Authenticator:
        assert self._authenticator is not None
        return self._authenticator

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def record(self, action: str, status: int, size: int) -> None:
        with self._lock:
            self.requests.append(RequestRecord(action, status, size))

    def shell_count(self) -> int:
        with self._lock:
            return len(self._shells)

    def handle_soap(self, data: bytes) -> tuple[str, int, bytes]:
        """Answer one SOAP request: (action, HTTP status, response envelope)."""
        relates_to = ""
        action = "?"
        try:
            request = _soap.parse_request(data)
            relates_to, action = request.message_id, request.action
            body = self._dispatch(request)
            return action, 200, _soap.envelope(action, relates_to, body)
        except WSManFault as fault:
            return action, fault.http_status, _soap.fault_envelope(fault, relates_to, self.machine)
        except Exception as exc:
            internal = WSManFault(
                0x80004005,
                f"The simulated host failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}",
            )
            return action, 500, _soap.fault_envelope(internal, relates_to, self.machine)

    # -- actions --------------------------------------------------------------------------------
    def _dispatch(self, request: Request) -> list[ET.Element]:
        handler: Callable[[Request], list[ET.Element]] = getattr(self, f"_do_{request.action}")
        return handler(request)

    def _shell(self, request: Request) -> _Shell:
        shell_id = request.selectors.get("ShellId", "")
        with self._lock:
            shell = self._shells.get(shell_id.upper())
        if shell is None:
            raise _fault(SHELL_NOT_FOUND, id=shell_id or "(none)")
        return shell

    @staticmethod
    def _b64(text: str | None) -> bytes:
        try:
            return base64.b64decode((text or "").strip(), validate=True)
        except binascii.Error:
            raise WSManFault(
                0x80070057, "The stream data is not valid base64.", subcode="w:InvalidParameter"
            ) from None

    def _do_Create(self, request: Request) -> list[ET.Element]:
        if not request.resource_uri.startswith(_POWERSHELL_URI) or request.body is None:
            raise _fault(ACCESS_DENIED)
        body = request.body
        shell_id = (body.get("ShellId") or "").upper()
        if not shell_id:
            raise WSManFault(
                0x80070057, "A PowerShell shell needs a ShellId.", subcode="w:InvalidParameter"
            )
        creation = body.find("pwsh:creationXml", NS)
        session = RunspaceSession(self.command_host, faults=self.faults, calls=self.calls)
        session.open(self._b64(creation.text if creation is not None else ""))
        with self._lock:
            self._shells[shell_id] = _Shell(shell_id, request.resource_uri, session)
        response = _soap.element("wst:ResourceCreated")
        _soap.sub(response, "wsa:Address", f"http://127.0.0.1:{self.port}/wsman")
        refs = _soap.sub(response, "wsa:ReferenceParameters")
        _soap.sub(refs, "wsman:ResourceURI", request.resource_uri)
        selectors = _soap.sub(refs, "wsman:SelectorSet")
        _soap.sub(selectors, "wsman:Selector", shell_id, Name="ShellId")
        return [response, self._shell_info(shell_id, request.resource_uri)]

    def _shell_info(self, shell_id: str, resource_uri: str) -> ET.Element:
        shell = _soap.element("rsp:Shell")
        _soap.sub(shell, "rsp:ShellId", shell_id)
        _soap.sub(shell, "rsp:ResourceUri", resource_uri)
        _soap.sub(shell, "rsp:Owner", self.username)
        _soap.sub(shell, "rsp:ClientIP", "127.0.0.1")
        _soap.sub(shell, "rsp:IdleTimeOut", "PT7200.000S")
        _soap.sub(shell, "rsp:InputStreams", "stdin pr")
        _soap.sub(shell, "rsp:OutputStreams", "stdout")
        _soap.sub(shell, "rsp:State", "Connected")
        return shell

    def _do_Command(self, request: Request) -> list[ET.Element]:
        shell = self._shell(request)
        body = request.body
        if body is None:
            raise WSManFault(
                0x80070057, "Command without CommandLine.", subcode="w:InvalidParameter"
            )
        arguments = body.find("rsp:Arguments", NS)
        command_id = shell.session.command(
            body.get("CommandId"), self._b64(arguments.text if arguments is not None else "")
        )
        response = _soap.element("rsp:CommandResponse")
        _soap.sub(response, "rsp:CommandId", command_id)
        return [response]

    def _do_Send(self, request: Request) -> list[ET.Element]:
        shell = self._shell(request)
        for stream in request.body.findall("rsp:Stream", NS) if request.body is not None else []:
            shell.session.send(stream.get("CommandId"), self._b64(stream.text))
        return [_soap.element("rsp:SendResponse")]

    def _do_Receive(self, request: Request) -> list[ET.Element]:
        shell = self._shell(request)
        desired = request.body.find("rsp:DesiredStream", NS) if request.body is not None else None
        command_id = desired.get("CommandId") if desired is not None else None
        if self.faults.should_time_out_receive():
            raise _fault(OPERATION_TIMEOUT)
        budget = request.max_envelope_size - _RECEIVE_OVERHEAD
        if budget < 512:
            raise WSManFault(
                0x80338049,
                "The MaxEnvelopeSize of the request is too small for a Receive response.",
                subcode="w:EncodingLimit",
                sender=True,
            )
        result = shell.session.receive(
            command_id, budget // 4 * 3, max(0.0, request.operation_timeout)
        )
        if result is None:
            raise _fault(OPERATION_TIMEOUT)
        response = _soap.element("rsp:ReceiveResponse")
        attrs = {"Name": "stdout"}
        if command_id:
            attrs["CommandId"] = command_id
        if result.data:
            _soap.sub(
                response, "rsp:Stream", base64.b64encode(result.data).decode("ascii"), **attrs
            )
        if command_id:
            state = _soap.sub(
                response,
                "rsp:CommandState",
                CommandId=command_id,
                State=_DONE if result.done else _RUNNING,
            )
            if result.done:
                _soap.sub(state, "rsp:ExitCode", "0")
        return [response]

    def _do_Signal(self, request: Request) -> list[ET.Element]:
        shell = self._shell(request)
        body = request.body
        command_id = body.get("CommandId") if body is not None else None
        if body is None or not command_id:
            raise WSManFault(0x80070057, "Signal without CommandId.", subcode="w:InvalidParameter")
        shell.session.signal(command_id, body.findtext("rsp:Code", "", NS) or "")
        return [_soap.element("rsp:SignalResponse")]

    def _do_Delete(self, request: Request) -> list[ET.Element]:
        shell = self._shell(request)
        with self._lock:
            self._shells.pop(shell.shell_id, None)
        shell.session.close()
        return []

    def _do_Get(self, request: Request) -> list[ET.Element]:
        if request.resource_uri.startswith(_CONFIG_URI):
            config = _soap.element("cfg:Config")
            _soap.sub(config, "cfg:MaxEnvelopeSizekb", "500")
            _soap.sub(config, "cfg:MaxTimeoutms", "60000")
            return [config]
        shell = self._shell(request)
        return [self._shell_info(shell.shell_id, shell.resource_uri)]


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: Any, owner: WSManServer) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up or fails the TLS handshake (an unpinned certificate) is not a
        # server error; anything else still gets printed.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ThreadingServer
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        self.auth = ConnectionAuth()
        self.server.owner.track(self.request, True)
        super().setup()

    def finish(self) -> None:
        self.server.owner.track(self.request, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True

    def _reply(
        self,
        status: int,
        body: bytes,
        headers: tuple[tuple[str, str], ...] = (),
        content_type: str = "",
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if owner.faults.should_drop():
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)
            return
        if owner.faults.should_reject_auth():
            self.auth = ConnectionAuth()
            self._reply(401, b"", owner.authenticator.challenge)
            return
        decision = owner.authenticator.check(self.headers.get("Authorization"), self.auth)
        if not decision.ok:
            self._reply(401, b"", decision.headers)
            return
        content_type = self.headers.get("Content-Type", "")
        encrypted = content_type.lower().startswith("multipart/encrypted")
        if not body:
            # The client's empty request that only sets up the security context.
            self._reply(200, b"", decision.headers)
            return
        if encrypted:
            try:
                body = self.auth.unwrap(body, content_type)
            except Exception as exc:
                self._reply(400, f"cannot decrypt the request: {exc}".encode(), decision.headers)
                self.close_connection = True
                return
            action, status, answer = owner.handle_soap(body)
        elif owner.auth_kind != "basic" and not owner.tls:
            # Windows' default (AllowUnencrypted=false) for NTLM on plain HTTP.
            refusal = WSManFault(
                ACCESS_DENIED.code,
                "The WinRM service is configured to refuse unencrypted traffic.",
                subcode=ACCESS_DENIED.subcode,
                sender=True,
            )
            action, status, answer = "?", 500, _soap.fault_envelope(refusal, "", owner.machine)
        else:
            action, status, answer = owner.handle_soap(body)
        owner.record(action, status, len(answer))
        if encrypted:
            wrapped_type, wrapped = self.auth.wrap(answer)
            self._reply(status, wrapped, decision.headers, wrapped_type)
        else:
            self._reply(status, answer, decision.headers, "application/soap+xml;charset=UTF-8")
