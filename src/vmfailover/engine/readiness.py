"""Running readiness probes: the I/O side of :mod:`vmfailover.policy.probes`.

A probe passes or not; it never raises. A guest that is not up yet refuses connections, and that
is an answer ("not yet"), not an error. Backend errors do propagate, so the runner's retry policy
sees them.
"""

from __future__ import annotations

import socket

import attrs

from vmfailover.backends.base import Backend, Readiness
from vmfailover.policy.probes import (
    CallableProbe,
    HTTPStatus,
    IPAssigned,
    PoweredOn,
    Probe,
    TCPPort,
    ToolsHeartbeat,
)

__all__ = ["ProbeContext", "probe_passes"]

_NETWORK_TIMEOUT = 2.0


@attrs.frozen
class ProbeContext:
    """What a :class:`~vmfailover.policy.probes.CallableProbe` function receives."""

    backend: Backend
    vm_id: str
    vm_name: str
    readiness: Readiness


def probe_passes(probe: Probe | None, backend: Backend, vm_id: str, vm_name: str) -> bool:
    """Check once. ``None`` means the default: powered on, heartbeat and an address."""
    readiness = backend.readiness(vm_id)
    if probe is None:
        return readiness.ready
    if not readiness.powered_on:
        return False
    if isinstance(probe, PoweredOn):
        return True
    if isinstance(probe, ToolsHeartbeat):
        return readiness.heartbeat
    if isinstance(probe, IPAssigned):
        return bool(readiness.ip_addresses)
    if isinstance(probe, TCPPort):
        address = probe.address or _first_address(readiness)
        return address is not None and _tcp_open(address, probe.port)
    if isinstance(probe, HTTPStatus):
        return _http_status(probe.url) == probe.status
    if isinstance(probe, CallableProbe):
        return bool(probe.fn(ProbeContext(backend, vm_id, vm_name, readiness)))
    raise TypeError(f"unknown probe {probe!r}")  # pragma: no cover - Probe is a closed union


def _first_address(readiness: Readiness) -> str | None:
    return str(readiness.ip_addresses[0]) if readiness.ip_addresses else None


def _tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=_NETWORK_TIMEOUT):
            return True
    except OSError:
        return False


def _http_status(url: str) -> int | None:
    # Imported here, not at the top: urllib.request pulls in http.client and email, a good part of
    # `import vmfailover`, and only HTTP readiness probes need it.
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=_NETWORK_TIMEOUT) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None
