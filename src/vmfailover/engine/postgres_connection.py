"""What the PostgreSQL lease and journal share: psycopg imported lazily, a connection string
described without its secrets, and connections whose every wait is bounded.

Needs ``vmfailover[postgres]`` (psycopg 3) only when a connection is made; importing this module
does not import psycopg.
"""

from __future__ import annotations

import math
from typing import Any

from vmfailover.errors import MissingExtraError, ValidationError

__all__ = ["bounded_connection", "describe_dsn", "first_line", "import_psycopg"]


def import_psycopg(what: str) -> Any:
    """The psycopg module, or MissingExtraError naming ``vmfailover[postgres]`` and ``what``."""
    try:
        import psycopg
    except ImportError as error:
        raise MissingExtraError("postgres", "postgres", "psycopg", what=what) from error
    return psycopg


def describe_dsn(psycopg: Any, dsn: object, item: str) -> tuple[str, str]:
    """``(host/database, options)`` of a libpq connection string: what may be shown of it (never
    its password) and the server options it sets. ValidationError naming ``item`` if it is not
    one, or its port is no port (without repeating it: it may hold a password)."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ValidationError.of(item, "must be a libpq connection string")
    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as error:
        raise ValidationError.of(item, "is not a libpq connection string") from error
    ports = str(parts.get("port", "5432")).split(",")
    if not all(
        port.isascii() and port.isdigit() and 0 < int(port) < 65536 for port in ports if port
    ):
        raise ValidationError.of(item, "names a port that is not a number in 1..65535")
    where = f"{parts.get('host', 'localhost')}/{parts.get('dbname', '')}"
    return where, str(parts.get("options", "")).strip()


def bounded_connection(
    psycopg: Any, dsn: str, timeout: float, *, application_name: str, options: str
) -> Any:
    """A new autocommit connection whose every wait is bounded by ``timeout`` seconds: the
    connect, each statement and lock wait, an idle transaction, and (over TCP) unacknowledged
    data and a silent peer (keepalives)."""
    millis = max(1, round(timeout * 1000))
    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=max(2, math.ceil(timeout)),
        application_name=application_name,
        options=f"{options} -c statement_timeout={millis} -c lock_timeout={millis} "
        f"-c idle_in_transaction_session_timeout={millis}".strip(),
        tcp_user_timeout=millis,
        keepalives=1,
        keepalives_idle=max(1, math.ceil(timeout)),
        keepalives_interval=1,
        keepalives_count=3,
    )


def first_line(error: BaseException) -> str:
    """The first line of an error's message (psycopg's add context lines), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
