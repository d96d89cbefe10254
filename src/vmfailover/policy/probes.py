"""Readiness probes: how to tell that a started VM is ready for the VMs that wait for it.

A probe here is plain frozen data. It says *what* to check and how long to wait for it; it never
checks anything itself. The runner turns a probe into backend calls (power state, guest tools
heartbeat, guest-reported IP addresses) or network calls (a TCP connect, an HTTP request), and the
simulator ignores probes altogether. Keeping probes as data means a start order can be written to a
plan file, reviewed and diffed, and that the sequencer stays free of I/O.

Every probe has a ``timeout`` in seconds (default :data:`DEFAULT_PROBE_TIMEOUT`): the longest the
runner waits for the check to pass before it reports the VM as timed out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import is_finite_number

__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "CallableProbe",
    "HTTPStatus",
    "IPAssigned",
    "PoweredOn",
    "Probe",
    "TCPPort",
    "ToolsHeartbeat",
]

#: Seconds a probe waits when no timeout is given: long enough for a cold Windows boot.
DEFAULT_PROBE_TIMEOUT: float = 600.0


def _timeout(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_finite_number(value) or not value > 0:
        raise ValidationError.of(
            f"{type(instance).__name__} probe",
            f"timeout must be a number of seconds > 0, got {value!r}",
            "give a positive, finite timeout such as 300",
        )


@attrs.frozen
class PoweredOn:
    """Ready as soon as the hypervisor reports the VM powered on."""

    timeout: float = attrs.field(default=DEFAULT_PROBE_TIMEOUT, validator=_timeout)

    def describe(self) -> str:
        return "powered on"


@attrs.frozen
class ToolsHeartbeat:
    """Ready when the guest tools (VMware Tools, Hyper-V integration services) send a heartbeat."""

    timeout: float = attrs.field(default=DEFAULT_PROBE_TIMEOUT, validator=_timeout)

    def describe(self) -> str:
        return "guest tools heartbeat"


@attrs.frozen
class IPAssigned:
    """Ready when the guest reports at least one IP address (after re-IP, the expected one)."""

    timeout: float = attrs.field(default=DEFAULT_PROBE_TIMEOUT, validator=_timeout)

    def describe(self) -> str:
        return "IP address assigned"


def _port(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValidationError.of(
            "TCPPort probe", f"port must be a whole number 1-65535, got {value!r}"
        )


def _optional_address(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValidationError.of(
            "TCPPort probe",
            f"address must be a host name or IP address, got {value!r}",
            "leave address out to use the address the guest reports",
        )


@attrs.frozen
class TCPPort:
    """Ready when a TCP connection to ``port`` succeeds.

    ``address`` defaults to ``None``: the runner connects to the address the guest reports (after
    re-IP, the new one), which is usually what you mean.
    """

    port: int = attrs.field(validator=_port)
    address: str | None = attrs.field(default=None, validator=_optional_address)
    timeout: float = attrs.field(default=DEFAULT_PROBE_TIMEOUT, validator=_timeout)

    def describe(self) -> str:
        where = self.address if self.address is not None else "<guest address>"
        return f"TCP {where}:{self.port} open"


def _url(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValidationError.of(
            "HTTPStatus probe",
            f"url must start with http:// or https://, got {value!r}",
        )


def _status(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValidationError.of(
            "HTTPStatus probe", f"status must be an HTTP status code 100-599, got {value!r}"
        )


@attrs.frozen
class HTTPStatus:
    """Ready when a GET of ``url`` answers with ``status`` (200 unless told otherwise)."""

    url: str = attrs.field(validator=_url)
    status: int = attrs.field(default=200, validator=_status)
    timeout: float = attrs.field(default=DEFAULT_PROBE_TIMEOUT, validator=_timeout)

    def describe(self) -> str:
        return f"HTTP GET {self.url} -> {self.status}"


def _callable(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(value):
        raise ValidationError.of(
            "CallableProbe", f"fn must be callable, got {value!r}", "pass a function"
        )


@attrs.frozen
class CallableProbe:
    """Ready when ``fn`` returns true; the escape hatch for checks we do not know.

    What ``fn`` receives is the runner's business (it documents it); this class only carries the
    function and its timeout. Two probes are equal when they wrap the same function.
    """

    fn: Callable[..., object] = attrs.field(validator=_callable)
    timeout: float = attrs.field(default=DEFAULT_PROBE_TIMEOUT, validator=_timeout)

    def describe(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        return f"callable {name}"


#: Any readiness probe.
Probe: TypeAlias = PoweredOn | ToolsHeartbeat | IPAssigned | TCPPort | HTTPStatus | CallableProbe

PROBE_TYPES: tuple[type, ...] = (
    PoweredOn,
    ToolsHeartbeat,
    IPAssigned,
    TCPPort,
    HTTPStatus,
    CallableProbe,
)
