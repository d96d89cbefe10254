"""Bandwidth limits such as ``"50MB/s"`` or ``"400Mbit/s"``: parsed, checked, printed.

A replication job's limit is a token bucket on the data path (see
:class:`vmfailover.engine.throttle.TokenBucket`): on average no more than ``bytes_per_second``,
and never more than ``burst_bytes`` at once after a quiet spell. Pure: parsing only.
"""

from __future__ import annotations

import math
import re

import attrs

from vmfailover.errors import ValidationError
from vmfailover.model import is_finite_number

__all__ = ["Bandwidth"]

_PREFIXES = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}
_RATE = re.compile(
    r"(?P<number>\d+(?:\.\d+)?)\s*(?P<prefix>(?:[kKmMgGtT]i?)?)"
    r"(?P<unit>B/s|Bps|b/s|bps|bit/s|bits/s)",
)
_HINT = "write a rate such as '50MB/s', '400Mbit/s', '1Gbps' or '100MiB/s'"
_MIN_BURST = 1 << 20
"""Data paths move whole blocks (1 MiB in the memory backend): a burst holds at least one."""


def _format_rate(rate: float) -> str:
    for size, prefix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if rate >= size:
            return f"{rate / size:g} {prefix}B/s"
    return f"{rate:g} B/s"


@attrs.frozen
class Bandwidth:
    """A limit of ``bytes_per_second`` on average, ``burst_bytes`` at most at once.

    ``burst_bytes`` defaults to one second of traffic, and is at least 1 MiB.
    """

    bytes_per_second: float
    burst_bytes: int = attrs.field(default=0)

    def __attrs_post_init__(self) -> None:
        rate = self.bytes_per_second
        if not is_finite_number(rate):
            raise ValidationError.of("bandwidth", f"{rate!r} is not a rate", _HINT)
        if rate <= 0:
            raise ValidationError.of("bandwidth", f"{rate!r} is not a positive rate", _HINT)
        burst = self.burst_bytes
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
            raise ValidationError.of(
                "bandwidth burst", f"must be a whole number of bytes >= 0, got {burst!r}"
            )
        object.__setattr__(self, "bytes_per_second", float(rate))
        object.__setattr__(self, "burst_bytes", max(burst or math.ceil(rate), _MIN_BURST))

    @classmethod
    def parse(cls, value: object, item: str = "bandwidth") -> Bandwidth:
        """``"50MB/s"`` (bytes, decimal), ``"100MiB/s"`` (binary), ``"400Mbit/s"`` or
        ``"400Mbps"`` (bits), a number of bytes per second, or a Bandwidth."""
        if isinstance(value, Bandwidth):
            return value
        try:
            if isinstance(value, str):
                match = _RATE.fullmatch(value.strip())
                if match is None:
                    raise ValidationError.of(item, f"{value!r} is not a rate", _HINT)
                number = float(match["number"])
                factor = _PREFIXES[match["prefix"].lower()]
                bits = match["unit"].startswith("b")
                return cls(number * factor / (8 if bits else 1))
            return cls(value)  # type: ignore[arg-type]
        except ValidationError as error:
            finding = error.findings[0]
            raise ValidationError.of(item, finding.message, finding.hint) from None

    def seconds_for(self, nbytes: int) -> float:
        """How long ``nbytes`` take at this rate."""
        return nbytes / self.bytes_per_second

    def __str__(self) -> str:
        return _format_rate(self.bytes_per_second)
