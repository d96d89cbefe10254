"""How to reach a Hyper-V host, and what it is to the rest of vmfailover.

One :class:`HostConnection` per host: its Hyper-V computer name (what Hyper-V Replica calls it,
and the host name in our inventory), its site, and the WinRM endpoint pypsrp connects to. Secure
by default: HTTPS with certificate validation, Negotiate authentication. Anything weaker is said
out loud (``verify_tls=False``, ``encryption="never"``), and Basic authentication over plain HTTP
is refused unless ``encryption="never"`` says the caller accepts credentials in clear (a test
against a local simulated host, never a production host).
"""

from __future__ import annotations

from typing import Any

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import Credentials, check_flag, is_finite_number

__all__ = ["AUTH_METHODS", "HostConnection"]

#: What pypsrp offers (``negotiate`` picks Kerberos, falling back to NTLM).
AUTH_METHODS = ("negotiate", "kerberos", "ntlm", "credssp", "basic")
_ENCRYPTION = ("auto", "always", "never")
_REPLICATION_AUTH = ("Kerberos", "Certificate")


def _non_empty(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of(f"Hyper-V host {_name(instance)}", f"{attribute.name} is empty")


def _name(instance: Any) -> str:
    return repr(getattr(instance, "name", "?"))


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ValidationError.of(
                f"Hyper-V host {_name(instance)}",
                f"{attribute.name} {value!r} is not one of: {', '.join(choices)}",
            )

    return check


def _seconds(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not is_finite_number(value) or value <= 0:
        raise ValidationError.of(
            f"Hyper-V host {_name(instance)}",
            f"{attribute.name} must be a finite number of seconds > 0, got {value!r}",
        )


def _port(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValidationError.of(
            f"Hyper-V host {_name(instance)}", f"{attribute.name} {value!r} is not a TCP port"
        )


@attrs.frozen
class HostConnection:
    """One Hyper-V host: who it is, where it is, how to reach it.

    ``name`` is the host's Hyper-V computer name (the one replication uses:
    ``Enable-VMReplication -ReplicaServerName``; short name or FQDN) and its name in the
    inventory. ``address`` and ``port`` are its WinRM listener (default: ``name``, 5986 with TLS
    or 5985 without). ``credentials`` may be None for Kerberos/Negotiate with a ticket cache.
    ``ca_file`` pins the certificates to trust (a PEM bundle, e.g. the host's own certificate).

    As a Replica server, the host listens for Hyper-V Replica traffic on ``replica_port`` with
    ``replica_authentication`` (Kerberos over HTTP, or Certificate over HTTPS with
    ``certificate_thumbprint``): what ``Enable-VMReplication`` and ``Set-VMReplication -Reverse``
    are told when this host receives a replica. ``datastore`` names the host's replica storage in
    the inventory (Hyper-V's Replica server decides the path).

    Timeouts are seconds: ``operation_timeout`` is WinRM's (a Receive long-polls that long),
    ``read_timeout`` bounds one HTTP answer, ``connect_timeout`` a TCP connect, and
    ``pipeline_timeout`` a whole pipeline, retries included.
    """

    name: str = attrs.field(validator=_non_empty)
    site: str = attrs.field(validator=_non_empty)
    address: str | None = None
    port: int | None = attrs.field(default=None, validator=_port)
    tls: bool = attrs.field(default=True, validator=check_flag)
    verify_tls: bool = attrs.field(default=True, validator=check_flag)
    ca_file: str | None = None
    auth: str = attrs.field(default="negotiate", validator=_one_of(AUTH_METHODS))
    credentials: Credentials | None = None
    encryption: str = attrs.field(default="auto", validator=_one_of(_ENCRYPTION))
    configuration_name: str = attrs.field(default="Microsoft.PowerShell", validator=_non_empty)
    operation_timeout: int = attrs.field(default=20, validator=_seconds)
    read_timeout: int = attrs.field(default=30, validator=_seconds)
    connect_timeout: float = attrs.field(default=10.0, validator=_seconds)
    pipeline_timeout: float = attrs.field(default=300.0, validator=_seconds)
    replica_port: int = attrs.field(default=80, validator=_port)
    replica_authentication: str = attrs.field(
        default="Kerberos", validator=_one_of(_REPLICATION_AUTH)
    )
    certificate_thumbprint: str | None = None
    datastore: str = ""
    isolated_networks: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)

    def __attrs_post_init__(self) -> None:
        item = f"Hyper-V host {self.name!r}"
        if not self.datastore:
            object.__setattr__(self, "datastore", f"{self.name}-storage")
        if isinstance(self.operation_timeout, float) or isinstance(self.read_timeout, float):
            raise ValidationError.of(item, "operation_timeout and read_timeout are whole seconds")
        if self.read_timeout <= self.operation_timeout:
            raise ValidationError.of(
                item,
                f"read_timeout ({self.read_timeout} s) must exceed operation_timeout "
                f"({self.operation_timeout} s): a Receive may wait that long before answering",
            )
        if self.auth == "basic" and not self.tls and self.encryption != "never":
            raise ValidationError.of(
                item,
                "Basic authentication over http sends the password in clear",
                "use tls=True, or another auth; pass encryption='never' only for a test host",
            )
        if self.auth == "basic" and self.credentials is None:
            raise ValidationError.of(item, "Basic authentication needs credentials")
        if (self.replica_authentication == "Certificate") != bool(self.certificate_thumbprint):
            raise ValidationError.of(
                item,
                "certificate_thumbprint goes with replica_authentication='Certificate', and only "
                "with it",
            )
        if self.credentials is not None and not isinstance(self.credentials, Credentials):
            raise ValidationError.of(item, "credentials must be vmfailover.Credentials")

    @property
    def endpoint_port(self) -> int:
        if self.port is not None:
            return self.port
        return 5986 if self.tls else 5985

    @property
    def endpoint_address(self) -> str:
        return self.address or self.name

    def answers_to(self, server_name: str) -> bool:
        """Whether Hyper-V's ``server_name`` (short or FQDN, any case) is this host."""
        wanted = server_name.strip().casefold()
        mine = self.name.casefold()
        return wanted == mine or wanted.split(".", 1)[0] == mine.split(".", 1)[0]
