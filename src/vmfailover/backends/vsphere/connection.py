"""One authenticated session with one vCenter, shared by the threads of a backend.

Every SOAP call goes through :meth:`VCenterConnection.invoke`, which logs in on first use, logs in
again (once) when vCenter says the session is gone, drops pooled sockets after a transport error,
and turns whatever pyVmomi raises into one of our errors naming what was being done. Credentials
are only ever handed to ``SessionManager.Login``; they are in no message and no log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from vmfailover.backends.vsphere.faults import (
    TRANSPORT_ERRORS,
    FaultKind,
    fault_kind,
    translate_fault,
)
from vmfailover.backends.vsphere.settings import VCenter
from vmfailover.backends.vsphere.tls import connection_class, ssl_context
from vmfailover.errors import PermanentBackendError, TransientBackendError, VMFailoverError

__all__ = ["VCenterConnection"]

log = logging.getLogger("vmfailover.backends.vsphere")

_T = TypeVar("_T")

_BASE_VERSION = "vim.version.version11"  # vSphere 6.5: what every supported vCenter speaks


class VCenterConnection:
    """A session with one vCenter. Thread-safe; logs in lazily and again when needed."""

    def __init__(self, settings: VCenter) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._stub: Any = None
        self._content: Any = None
        self._generation = 0  # bumped by every successful login
        self.logins = 0

    def __repr__(self) -> str:
        return f"VCenterConnection({self.settings!r}, logged_in={self._content is not None})"

    @property
    def generation(self) -> int:
        """Bumped by every login: objects of an earlier session (property collectors, views)
        are gone once it has changed."""
        return self._generation

    @property
    def label(self) -> str:
        return f"vCenter {self.settings.address} (site {self.settings.site!r})"

    # --- the session -----------------------------------------------------------------------------

    @property
    def content(self) -> Any:
        """The ServiceContent, logging in first if needed."""
        if self._content is None:
            self._login(expected_generation=self._generation)
        return self._content

    def managed(self, type_name: str, moref: str) -> Any:
        """A managed object reference bound to this session's stub."""
        _ = self.content
        cls = getattr(vim, type_name, None) or VmomiSupport.GetWsdlType("urn:vim25", type_name)
        return cls(moref, self._stub)

    def _make_stub(self, version: str) -> Any:
        settings = self.settings
        stub: Any = SoapAdapter.SoapStubAdapter(
            host=settings.host,
            port=settings.port,
            path=settings.path,
            version=version,
            sslContext=ssl_context(settings),
            httpConnectionTimeout=settings.timeout,
            connectionPoolTimeout=300,
            poolSize=8,
        )
        stub.scheme = connection_class(settings)
        return stub

    def _login(self, expected_generation: int) -> None:
        with self._lock:
            if self._generation != expected_generation and self._content is not None:
                return  # another thread logged in meanwhile
            what = f"logging in to {self.label}"
            try:
                stub = self._stub or self._make_stub(_BASE_VERSION)
                instance = vim.ServiceInstance("ServiceInstance", stub)
                content = instance.RetrieveContent()
                version = _best_version(content.about.apiVersion)
                if version != stub.versionId and self._stub is None:
                    stub = self._make_stub(version)
                    instance = vim.ServiceInstance("ServiceInstance", stub)
                    content = instance.RetrieveContent()
                credentials = self.settings.credentials
                session_manager: Any = content.sessionManager
                session_manager.Login(credentials.username, credentials.secret.reveal(), None)
            except vim.fault.InvalidLogin:
                raise PermanentBackendError(
                    f"{self.label} refused the login of user "
                    f"{self.settings.credentials.username!r}: wrong user name or password"
                ) from None
            except BaseException as error:
                self._forget_sockets(stub if "stub" in locals() else None)
                raise translate_fault(error, what) from None
            self._stub = stub
            self._content = content
            self._generation += 1
            self.logins += 1
            log.info("logged in to %s as %r", self.label, self.settings.credentials.username)

    def close(self) -> None:
        """Log out (best effort) and drop the sockets."""
        with self._lock:
            content, stub = self._content, self._stub
            self._content = None
        if content is not None:
            try:
                content.sessionManager.Logout()
            except BaseException as error:  # the session may be gone already
                log.debug("logout from %s: %s", self.label, error)
        self._forget_sockets(stub)

    @staticmethod
    def _forget_sockets(stub: Any) -> None:
        if stub is not None:
            stub.DropConnections()

    # --- calls -----------------------------------------------------------------------------------

    def invoke(self, what: str, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``call(*args, **kwargs)``, with our errors naming ``what`` and one re-login."""
        for attempt in (1, 2):
            generation = self._generation
            _ = self.content
            try:
                return call(*args, **kwargs)
            except VMFailoverError:
                raise
            except BaseException as error:
                if _is_session_fault(error) and attempt == 1:
                    log.info("%s: session expired, logging in again", self.label)
                    self._login(expected_generation=generation)
                    continue
                if isinstance(error, TRANSPORT_ERRORS) and not _is_vim(error):
                    self._forget_sockets(self._stub)
                    # the vCenter may have restarted: the next call logs in again if needed
                raise translate_fault(error, what) from None
        raise TransientBackendError(f"{what}: the session was lost twice")  # pragma: no cover


def _is_vim(error: BaseException) -> bool:
    return isinstance(error, vmodl.MethodFault)


def _is_session_fault(error: BaseException) -> bool:
    return _is_vim(error) and fault_kind(error) is FaultKind.SESSION


def _best_version(api_version: str) -> str:
    """The newest pyVmomi version id for the server's API version (6.5 -> version11)."""
    found = VmomiSupport.versionMap.get(f"vim25/{api_version}")
    return str(found) if found else _BASE_VERSION
