"""How to reach one site's vCenter: address, credentials, trust, which datacenter is the site."""

from __future__ import annotations

import re

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import Credentials, check_flag, is_finite_number

__all__ = ["VCenter"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _thumbprint(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).replace(":", "").strip().lower()
    if not _SHA256.match(text):
        raise ValidationError.of(
            "VCenter thumbprint",
            f"{value!r} is not a SHA-256 certificate thumbprint",
            "give 64 hex digits, with or without colons (SHA-1 thumbprints are refused)",
        )
    return text


def _credentials(instance: object, attribute: attrs.Attribute[Credentials], value: object) -> None:
    if not isinstance(value, Credentials):
        raise ValidationError.of("VCenter credentials", f"must be Credentials, got {type(value)}")


def _positive_seconds(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not is_finite_number(value):
        raise ValidationError.of(
            f"VCenter {attribute.name}", f"must be a finite number, got {value!r}"
        )
    if value <= 0:
        raise ValidationError.of(f"VCenter {attribute.name}", f"must be > 0 seconds, got {value!r}")


def _seconds(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not is_finite_number(value):
        raise ValidationError.of(
            f"VCenter {attribute.name}", f"must be a finite number, got {value!r}"
        )
    if value < 0:
        raise ValidationError.of(
            f"VCenter {attribute.name}", f"must be >= 0 seconds, got {value!r}"
        )


def _port(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValidationError.of("VCenter port", f"must be 1..65535, got {value!r}")


def _text(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of(f"VCenter {attribute.name}", "must be a non-empty string")


def _names(value: object) -> frozenset[str]:
    """Port group names, given as one name or any collection of names."""
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, bytes) or not hasattr(value, "__iter__"):
        raise ValidationError.of(
            "VCenter isolated_networks", f"must be port group names, got {value!r}"
        )
    names = []
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError.of(
                "VCenter isolated_networks",
                f"each entry must be a port group name, got {name!r}",
            )
        names.append(name)
    return frozenset(names)


@attrs.frozen
class VCenter:
    """One site's vCenter.

    ``site`` names the site in vmfailover's model; ``datacenter`` scopes the site to one datacenter
    of that vCenter (needed when the vCenter holds several; two sites may then share a vCenter).

    TLS is verified: against the system's trust store by default, against ``ca_bundle`` (a PEM
    file of CA certificates) when given, or by a pinned SHA-256 ``thumbprint`` of the server
    certificate. ``insecure=True`` turns verification off; it must be asked for explicitly, and
    every connection made that way is logged as a warning.

    ``read_max_age`` is how old the backend's last read of a VM (from the inventory, a recovery
    point listing, or the round trip that confirmed its last task on the VM) may be for the
    backend to act on it without reading the VM again. Only decisions to *act* rest on such a
    read; a call that would refuse or do nothing because of it reads the VM again first. ``0``
    reads before every call.

    ``isolated_networks`` names the site's port groups (standard or distributed) that reach no
    production system, such as port groups on a vSwitch without uplinks or a distributed port
    group without active uplinks: the only networks a test failover may put test copies on.
    vCenter has no flag for this, so the administrator who built them says which they are.
    """

    site: str = attrs.field(validator=_text)
    host: str = attrs.field(validator=_text)
    credentials: Credentials = attrs.field(validator=_credentials, repr=False)
    port: int = attrs.field(default=443, validator=_port)
    datacenter: str | None = None
    ca_bundle: str | None = None
    thumbprint: str | None = attrs.field(default=None, converter=_thumbprint)
    insecure: bool = attrs.field(default=False, validator=check_flag)
    timeout: float = attrs.field(default=60.0, validator=_positive_seconds)
    task_timeout: float = attrs.field(default=3600.0, validator=_positive_seconds)
    read_max_age: float = attrs.field(default=30.0, validator=_seconds)
    isolated_networks: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    path: str = "/sdk"

    def __attrs_post_init__(self) -> None:
        if self.insecure and (self.ca_bundle or self.thumbprint):
            raise ValidationError.of(
                f"VCenter {self.site!r}",
                "insecure=True turns verification off; it cannot be combined with "
                "ca_bundle or thumbprint",
            )
        if self.ca_bundle and self.thumbprint:
            raise ValidationError.of(
                f"VCenter {self.site!r}", "give either ca_bundle or thumbprint, not both"
            )

    @property
    def address(self) -> str:
        """``host:port`` as people write it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        trust = (
            "insecure"
            if self.insecure
            else "thumbprint"
            if self.thumbprint
            else "ca_bundle"
            if self.ca_bundle
            else "system"
        )
        return (
            f"VCenter(site={self.site!r}, address={self.address!r}, "
            f"user={self.credentials.username!r}, datacenter={self.datacenter!r}, trust={trust})"
        )
