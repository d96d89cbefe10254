"""Sets of IP addresses given by fixed and free bits, their overlaps, and a most-specific lookup.

Both forms of re-IP rule describe the same kind of set. An octet pattern such as ``192.168.*.5``
fixes the bits of three octets and leaves the third free; a CIDR block such as ``10.0.0.0/8`` fixes
the leading bits. Either way the set is ``{a : a & mask == value}`` for one bit mask, so one
representation, :class:`Pattern`, serves both, and questions about them have exact answers in a few
integer operations:

* ``A`` contains ``B`` exactly when every bit ``A`` fixes is fixed by ``B`` to the same value;
* ``A`` and ``B`` intersect exactly when they agree on the bits both fix, and then
  ``A.value | B.value`` is an address in both;
* the smaller of two nested sets is the one that fixes more bits.

Two patterns whose masks are comparable (one's fixed bits a subset of the other's, as between any
two CIDR blocks) can only be disjoint, equal or nested. Only patterns with incomparable masks (such
as ``192.168.*.5`` and ``192.168.1.0/24``) can overlap partially, and then any intersection is
partial. :func:`conflicts` uses that to check a large rule set by grouping it by mask instead of
comparing every pair, and :class:`MostSpecificIndex` looks an address up with one dictionary probe
per distinct mask, however many rules share each mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import attrs

__all__ = ["Conflict", "MostSpecificIndex", "Pattern", "conflicts", "width"]

_T = TypeVar("_T")


def width(version: int) -> int:
    """The number of bits in an address of this IP version."""
    return 32 if version == 4 else 128


@attrs.frozen
class Pattern:
    """The addresses ``a`` of ``version`` with ``a & mask == value``; ``value`` has no free bits."""

    version: int
    mask: int
    value: int

    @property
    def free(self) -> int:
        """The bits this pattern leaves free, as a mask."""
        return ((1 << width(self.version)) - 1) ^ self.mask

    @property
    def free_bits(self) -> int:
        """How many bits are free: the set holds ``2 ** free_bits`` addresses."""
        return width(self.version) - self.mask.bit_count()

    def matches(self, version: int, number: int) -> bool:
        return version == self.version and number & self.mask == self.value

    def contains(self, other: Pattern) -> bool:
        """Every address of ``other`` is in this set (true for equal sets)."""
        return (
            self.version == other.version
            and other.mask & self.mask == self.mask
            and other.value & self.mask == self.value
        )

    def intersects(self, other: Pattern) -> bool:
        return (
            self.version == other.version
            and (self.value ^ other.value) & (self.mask & other.mask) == 0
        )

    def common_example(self, other: Pattern) -> int:
        """An address in both sets; only meaningful when they intersect."""
        return self.value | other.value


@attrs.frozen
class Conflict:
    """Patterns ``first`` and ``second`` (indices, ``first < second``) are equal or overlap
    without nesting; ``example`` is an address in both."""

    first: int
    second: int
    example: int
    duplicate: bool


def _comparable(mask_a: int, mask_b: int) -> bool:
    common = mask_a & mask_b
    return common in (mask_a, mask_b)


def conflicts(patterns: Sequence[Pattern]) -> list[Conflict]:
    """Every duplicate, and for each pattern at least one partner it overlaps partially.

    An empty answer promises that the patterns form a laminar family: any two are disjoint or one
    strictly contains the other. Cost grows with the number of patterns times the number of distinct
    masks, not with the number of pairs.
    """
    found: list[Conflict] = []
    groups: dict[tuple[int, int], dict[int, int]] = {}
    for index, pattern in enumerate(patterns):
        table = groups.setdefault((pattern.version, pattern.mask), {})
        earlier = table.get(pattern.value)
        if earlier is None:
            table[pattern.value] = index
        else:
            found.append(Conflict(earlier, index, pattern.value, duplicate=True))
    keys = sorted(groups)
    for position, key_a in enumerate(keys):
        version_a, mask_a = key_a
        for key_b in keys[position + 1 :]:
            version_b, mask_b = key_b
            if version_a != version_b or _comparable(mask_a, mask_b):
                continue
            common = mask_a & mask_b
            projected: dict[int, int] = {}
            for value, index in groups[key_a].items():
                projected.setdefault(value & common, index)
            for value, index in groups[key_b].items():
                partner = projected.get(value & common)
                if partner is not None:
                    example = patterns[partner].common_example(patterns[index])
                    first, second = sorted((partner, index))
                    found.append(Conflict(first, second, example, duplicate=False))
    found.sort(key=lambda conflict: (conflict.first, conflict.second))
    return found


class MostSpecificIndex(Generic[_T]):
    """Finds, for an address, the item of the smallest pattern that contains it.

    Built from patterns without :func:`conflicts`. The patterns that contain an address then form
    a chain, so probing the masks from most to fewest fixed bits and stopping at the first hit
    finds the smallest. A lookup costs one dictionary probe per distinct mask of its IP version
    (at most 33 CIDR lengths plus 16 octet-wildcard shapes for IPv4), whatever the number of items.
    """

    __slots__ = ("_by_version",)

    def __init__(self, items: Sequence[tuple[Pattern, _T]]) -> None:
        grouped: dict[tuple[int, int], dict[int, _T]] = {}
        for pattern, item in items:
            grouped.setdefault((pattern.version, pattern.mask), {})[pattern.value] = item
        by_version: dict[int, tuple[tuple[int, dict[int, _T]], ...]] = {}
        for version in (4, 6):
            masks = sorted(
                (mask for v, mask in grouped if v == version),
                key=lambda mask: (-mask.bit_count(), mask),
            )
            by_version[version] = tuple((mask, grouped[version, mask]) for mask in masks)
        self._by_version = by_version

    def lookup(self, version: int, number: int) -> _T | None:
        for mask, table in self._by_version[version]:
            found = table.get(number & mask)
            if found is not None:
                return found
        return None

    def mask_count(self, version: int) -> int:
        """How many distinct masks a lookup of this version may probe."""
        return len(self._by_version[version])
