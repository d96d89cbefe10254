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
  dropped connection); a failure of the simulator itself is logged with an error id and the fault
  names only that id, never a traceback; unknown shells and commands get Windows'
  ``InvalidSelectors`` faults;
* a request is authenticated on its headers before its body is read; an envelope over
  ``MaxEnvelopeSizekb`` is answered ``413``, as WinRM does (HTTP framing, timeouts and the
  connection bound are :mod:`._http`'s and :mod:`._listener`'s, with :class:`.ServerLimits`);
* the accept loop polls for shutdown every 50 ms, and stopping closes open connections and waits
  for their threads, so a test teardown is quick and leaves no thread behind.
"""

from __future__ import annotations

import base64
import binascii
import logging
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable

import spnego.channel_bindings

from vmfailover.errors import ValidationError

from . import _soap
from ._auth import Authenticator, ConnectionAuth, register_ntlm_user, unregister_ntlm_user
from ._http import HttpConnection, Reply, RequestHead
from ._listener import Listener
from ._objects import CommandHost
from ._soap import NS, Request, WSManFault
from ._tls import ServerCertificate, make_certificate
from .faults import ACCESS_DENIED, OPERATION_TIMEOUT, SHELL_NOT_FOUND, FaultHooks, WinRMFault
from .limits import ConnectionCounts, ServerLimits
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
_SOAP_TYPE = "application/soap+xml;charset=UTF-8"

log = logging.getLogger("vmfailover.testing.hyperv")


def internal_fault(error_id: str) -> WSManFault:
    """The fault a client gets when the simulator itself fails: a generic message and the id
    under which the log holds the details (the traceback stays in the log)."""
    return WSManFault(
        0x80004005,
        f"The simulated host failed internally; its log has the details under error id {error_id}.",
    )


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
        limits: ServerLimits | None = None,
    ) -> None:
        if auth not in _AUTH_KINDS:
            raise ValidationError.of(
                f"host {machine!r}", f"auth {auth!r} is not supported", f"use one of {_AUTH_KINDS}"
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValidationError.of(
                f"host {machine!r}", f"port {port!r} is invalid", "use 0..65535"
            )
        if limits is not None and not isinstance(limits, ServerLimits):
            raise ValidationError.of(
                f"host {machine!r}", f"limits {limits!r} is not a ServerLimits", "pass one"
            )
        if not isinstance(tls, bool):
            raise ValidationError.of(
                f"host {machine!r}", f"tls {tls!r} is not a boolean", "pass True or False"
            )
        if auth == "basic" and ":" in username:
            raise ValidationError.of(
                f"host {machine!r}",
                f"user name {username!r} contains ':', which Basic credentials cannot carry",
                "choose a user name without ':'",
            )
        self.command_host = command_host
        self.machine = machine
        self.auth_kind = auth
        self.username = username
        self.password = password
        self.tls = tls
        self.faults = faults or FaultHooks()
        self.calls = calls if calls is not None else CallLog()
        self.limits = limits if limits is not None else ServerLimits()
        self.requests: list[RequestRecord] = []
        self._requested_port = port
        self._lock = threading.Lock()
        self._shells: dict[str, _Shell] = {}
        self._listener: Listener | None = None
        self._certificate: ServerCertificate | None = None
        self._authenticator: Authenticator | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._started_listener().port

    @property
    def certificate_pem(self) -> str | None:
        return self._certificate.certificate_pem if self._certificate else None

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> None:
        if self._listener is not None:
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
        listener = Listener(
            name=self.machine,
            port=self._requested_port,
            max_connections=self.limits.max_connections,
            serve=self._serve_connection,
            tls=self._certificate.server_context() if self._certificate is not None else None,
        )
        listener.start()
        self._listener = listener

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        listener.stop_accepting()
        with self._lock:
            shells = list(self._shells.values())
            self._shells.clear()
        for shell in shells:  # ends pipelines and wakes long-polling Receives
            shell.session.close()
        listener.close_connections()
        if self.auth_kind != "basic":
            unregister_ntlm_user(self.username)

    def _started_listener(self) -> Listener:
        if self._listener is None:
            raise ValidationError.of(
                f"host {self.machine!r}", "is not started", "call start() first"
            )
        return self._listener

    # -- connections ------------------------------------------------------------------------------
    def connection_counts(self) -> ConnectionCounts:
        """Open connections (one handler thread each), their peak, refusals and timeouts."""
        return self._started_listener().counts()

    def wait_for_connections(self, at_most: int, timeout: float) -> bool:
        """Wait until at most ``at_most`` connections are open; False if ``timeout`` passed."""
        return self._started_listener().wait_for_open(at_most, timeout)

    @property
    def handler_thread_prefix(self) -> str:
        """The name every handler thread of this server starts with."""
        return self._started_listener().thread_name_prefix

    def _serve_connection(self, sock: socket.socket, on_timeout: Callable[[bool], None]) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        HttpConnection(sock, self.limits, _WinRMExchange(self), on_timeout=on_timeout).serve()

    # -- used by the exchanges ------------------------------------------------------------------
    @property
    def authenticator(self) -> Authenticator:
        assert self._authenticator is not None
        return self._authenticator

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
        except Exception:
            error_id = str(uuid.uuid4())
            log.exception(
                "host %r failed on a %s request (error id %s)", self.machine, action, error_id
            )
            internal = internal_fault(error_id)
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
        # A client may ask for more than the service allows; the service's cap wins (MS-WSMV).
        max_envelope = min(request.max_envelope_size, self.limits.max_envelope_bytes)
        budget = max_envelope - _RECEIVE_OVERHEAD
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
            _soap.sub(config, "cfg:MaxEnvelopeSizekb", str(self.limits.max_envelope_size_kb))
            _soap.sub(config, "cfg:MaxTimeoutms", "60000")
            return [config]
        shell = self._shell(request)
        return [self._shell_info(shell.shell_id, shell.resource_uri)]


class _WinRMExchange:
    """The WinRM side of one connection: its authentication state, message encryption, and the
    SOAP requests it carries."""

    def __init__(self, server: WSManServer) -> None:
        self._server = server
        self._auth = ConnectionAuth()
        self._auth_headers: tuple[tuple[str, str], ...] = ()

    def admit(self, head: RequestHead) -> Reply | None:
        server = self._server
        if server.faults.should_drop():
            return Reply(0, drop=True)
        if server.faults.should_reject_auth():
            self._auth = ConnectionAuth()
            return Reply(401, server.authenticator.challenge)
        decision = server.authenticator.check(head.header("authorization"), self._auth)
        if not decision.ok:
            return Reply(401, decision.headers)
        self._auth_headers = decision.headers
        return None

    def answer(self, head: RequestHead, body: bytes) -> Reply:
        server = self._server
        headers = self._auth_headers
        if not body:
            # The client's empty request that only sets up the security context.
            return Reply(200, headers)
        content_type = head.header("content-type") or ""
        encrypted = content_type.lower().startswith("multipart/encrypted")
        if encrypted:
            try:
                body = self._auth.unwrap(body, content_type)
            except Exception as exc:
                error_id = str(uuid.uuid4())
                log.warning("could not decrypt a request (error id %s): %r", error_id, exc)
                text = f"The request could not be decrypted (error id {error_id})."
                return Reply(400, headers, text.encode(), "text/plain; charset=utf-8", close=True)
        if len(body) > server.limits.max_envelope_bytes:
            # WinRM: "the request size exceeded the configured MaxEnvelopeSize quota".
            return Reply(413, headers, close=True)
        if encrypted:
            action, status, answer = server.handle_soap(body)
        elif server.auth_kind != "basic" and not server.tls:
            # Windows' default (AllowUnencrypted=false) for NTLM on plain HTTP.
            refusal = WSManFault(
                ACCESS_DENIED.code,
                "The WinRM service is configured to refuse unencrypted traffic.",
                subcode=ACCESS_DENIED.subcode,
                sender=True,
            )
            action, status, answer = "?", 500, _soap.fault_envelope(refusal, "", server.machine)
        else:
            action, status, answer = server.handle_soap(body)
        server.record(action, status, len(answer))
        if encrypted:
            wrapped_type, wrapped = self._auth.wrap(answer)
            return Reply(status, headers, wrapped, wrapped_type)
        return Reply(status, headers, answer, _SOAP_TYPE)
