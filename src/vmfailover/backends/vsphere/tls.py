"""TLS for vCenter connections: verified by default, pinned by thumbprint, or off on request."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import ssl
from typing import Any

from vmfailover.backends.vsphere.settings import VCenter
from vmfailover.errors import PermanentBackendError

__all__ = ["CertificateMismatchError", "connection_class", "ssl_context"]

log = logging.getLogger("vmfailover.backends.vsphere")


class CertificateMismatchError(ssl.SSLError):
    """The server's certificate is not the pinned one."""


def ssl_context(settings: VCenter) -> ssl.SSLContext:
    """The context for this vCenter: system trust, a CA bundle, a pin, or (asked for) none."""
    if settings.insecure:
        log.warning(
            "TLS verification is OFF for vCenter %s (site %r): insecure=True was given",
            settings.address,
            settings.site,
        )
        return ssl._create_unverified_context()
    if settings.thumbprint:
        # The pin replaces the chain check: the certificate itself is compared after the handshake.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=settings.ca_bundle)
    except (OSError, ssl.SSLError) as error:
        raise PermanentBackendError(
            f"vCenter {settings.address} (site {settings.site!r}): cannot read ca_bundle "
            f"{settings.ca_bundle!r}: {error}"
        ) from None


def connection_class(settings: VCenter) -> type[http.client.HTTPSConnection]:
    """The HTTPS connection type for this vCenter; it checks the pinned thumbprint on connect."""
    pin: str | None = settings.thumbprint
    if pin is None:
        return http.client.HTTPSConnection

    class PinnedHTTPSConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            sock: Any = self.sock
            der = sock.getpeercert(binary_form=True) or b""
            seen = hashlib.sha256(der).hexdigest()
            if pin is None or not hmac.compare_digest(seen, pin):
                self.close()
                raise CertificateMismatchError(
                    f"certificate SHA-256 thumbprint {seen} is not the pinned {pin}"
                )

    return PinnedHTTPSConnection
