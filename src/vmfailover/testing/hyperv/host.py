"""``HyperVHost``: a simulated Hyper-V host a pypsrp client reaches over WinRM on 127.0.0.1.

Each host is a WS-Management listener on its own free port (chosen at start) that runs PowerShell
pipelines against a command host: by default the Hyper-V model and cmdlets, one host of a
:class:`ReplicationFabric` shared by the hosts that replicate to each other.
"""

from __future__ import annotations

import types
from typing import Any, Self

from vmfailover.errors import ValidationError

from ._objects import CommandHost
from .cmdlets import HyperVCommandHost
from .faults import FaultHooks
from .limits import ConnectionCounts, ServerLimits
from .model import HostModel, ReplicationFabric
from .session import CallLog
from .wsman import RequestRecord, WSManServer

__all__ = ["HyperVHost"]


class HyperVHost:
    """A simulated Hyper-V host speaking WinRM and PSRP.

    ``with HyperVHost("hv-a") as host:`` starts it (``start()``/``stop()`` also work). While
    started, :attr:`port` is its port on 127.0.0.1 and :attr:`url` its WinRM endpoint;
    :attr:`certificate_pem` is the certificate generated at start when ``tls=True``, for the
    client to pin. :attr:`model` is the Hyper-V model to set a scene on and to assert end state
    against, :attr:`calls` the commands clients ran, :attr:`faults` the fault hooks.

    ``command_host`` replaces the Hyper-V cmdlets by any :class:`CommandHost` (then ``model`` is
    None); the default builds ``HyperVCommandHost(fabric.add_host(name))``.

    ``limits`` (a :class:`ServerLimits`) bounds what the host accepts and how long it waits on a
    client; the defaults are Windows' (500 KB envelopes, 300 connections) with a 10 s request
    timeout. :meth:`connection_counts` and :meth:`wait_for_connections` show the connections the
    host serves, one handler thread each.
    """

    def __init__(
        self,
        name: str,
        *,
        fabric: Any = None,
        auth: str = "basic",
        username: str = "admin",
        password: str = "pw",
        tls: bool = False,
        port: int = 0,
        command_host: CommandHost | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError.of(
                "host", f"name {name!r} is empty", "name the host, e.g. 'hv-a'"
            )
        if not username or not isinstance(username, str):
            raise ValidationError.of(f"host {name!r}", "username is empty", "give a user name")
        if not isinstance(password, str):
            raise ValidationError.of(
                f"host {name!r}", "password is not a string", "give a password"
            )
        self.name = name
        self.fabric: ReplicationFabric | None = None
        self.model: HostModel | None = None
        if command_host is None:
            self.fabric = fabric if fabric is not None else ReplicationFabric()
            self.model = self.fabric.add_host(name)
            command_host = HyperVCommandHost(self.model)
        elif fabric is not None:
            raise ValidationError.of(
                f"host {name!r}",
                "both fabric and command_host were given",
                "give a fabric for the Hyper-V cmdlets, or a command_host of your own",
            )
        self.command_host: CommandHost = command_host
        self.faults = FaultHooks()
        self.calls = CallLog()
        self._server = WSManServer(
            command_host,
            machine=name,
            auth=auth,
            username=username,
            password=password,
            tls=tls,
            port=port,
            faults=self.faults,
            calls=self.calls,
            limits=limits,
        )

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    # -- what a client needs ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.port

    @property
    def tls(self) -> bool:
        return self._server.tls

    @property
    def auth(self) -> str:
        return self._server.auth_kind

    @property
    def username(self) -> str:
        return self._server.username

    @property
    def password(self) -> str:
        return self._server.password

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/wsman"

    @property
    def certificate_pem(self) -> str | None:
        return self._server.certificate_pem

    @property
    def requests(self) -> list[RequestRecord]:
        """Every answered WinRM request (action, HTTP status, envelope size), for wire tests."""
        return self._server.requests

    @property
    def limits(self) -> ServerLimits:
        return self._server.limits

    def connection_counts(self) -> ConnectionCounts:
        """Connections open now (one handler thread each), their peak, and how many were refused
        (over ``max_connections``) or closed for sending too slowly (``timed_out``)."""
        return self._server.connection_counts()

    def wait_for_connections(self, at_most: int, timeout: float) -> bool:
        """Wait until the host serves at most ``at_most`` connections; False if ``timeout``
        seconds passed first. Tests use it to see hostile connections end without sleeping."""
        return self._server.wait_for_connections(at_most, timeout)

    @property
    def handler_thread_prefix(self) -> str:
        """The name of every handler thread of this host starts with this."""
        return self._server.handler_thread_prefix

    @property
    def open_shells(self) -> int:
        """Runspace pools currently open on the host."""
        return self._server.shell_count()

    def __repr__(self) -> str:
        state = f"port={self.port}" if self._server.running else "stopped"
        return f"HyperVHost({self.name!r}, auth={self.auth!r}, tls={self.tls}, {state})"
