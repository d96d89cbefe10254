"""Re-IP rules: which address a replica's NIC gets at the recovery site.

A :class:`ReIPRule` maps a set of source addresses onto a set of target addresses of the same shape,
in one of two forms:

* the octet form (as in Veeam and NAKIVO), ``192.168.1.*`` -> ``10.0.0.*``: each ``*`` is one whole
  octet and is copied from the source address into the same position of the target; IPv6 allows a
  ``*`` only as the last group (hextet);
* the CIDR form (as in SRM's subnet rules), ``192.168.10.0/24`` -> ``10.10.0.0/24``: the host bits
  are kept, so both prefixes have the same length.

Either way a rule is a bijection between its source set and its target set; a rule that would map
several addresses onto one is refused when it is built. A :class:`ReIPRules` set applies the most
specific rule that matches (as a routing table does) and refuses rule sets whose rules overlap
without nesting, so the answer never depends on the order the rules were written in. Explicit
per-NIC :class:`ReIPOverride` entries win over rules. :meth:`ReIPRules.plan` turns a list of VMs
into a :class:`ReIPPlan`: old and new configuration of every NIC, and the findings a failover must
know about before it runs (unmatched static addresses, duplicate and colliding addresses).

Everything here is pure: no I/O, deterministic, standard library :mod:`ipaddress` only.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import overload

import attrs

from vmfailover import _render
from vmfailover.errors import Finding, NotFoundError, Severity, ValidationError
from vmfailover.model import (
    VM,
    Inventory,
    IPAddress,
    IPConfig,
    IPInterface,
    Nic,
    as_items,
    is_collection,
)
from vmfailover.policy._ipindex import MostSpecificIndex, Pattern, conflicts, width

__all__ = [
    "IPAssignment",
    "ReIPAction",
    "ReIPEntry",
    "ReIPOverride",
    "ReIPPlan",
    "ReIPRule",
    "ReIPRules",
    "addresses_in_use",
]

AddressLike = str | IPAddress | IPInterface
# Collects one problem of a rule being built: what is wrong, and what to change.
_Problem = Callable[[str, str], None]


class RuleForm(enum.StrEnum):
    """How a rule's addresses are written: octet/hextet wildcards or CIDR blocks."""

    WILDCARD = "wildcard"
    CIDR = "cidr"


# --- parsing patterns ---------------------------------------------------------------------------

_OCTET = re.compile(r"[0-9]{1,3}")


@attrs.frozen
class _Parsed:
    form: RuleForm
    pattern: Pattern
    # The subnet a result lands in when nothing else says so: the CIDR length, or the leading run
    # of fixed octets (hextets) of a wildcard pattern.
    implied_prefix: int


def _leading_fixed(mask: int, bits: int) -> int:
    """The length of the run of one-bits at the top of ``mask``."""
    inverted = ((1 << bits) - 1) ^ mask
    return bits - inverted.bit_length()


@attrs.frozen
class _Bad:
    """What is wrong with a pattern, and what to write instead."""

    message: str
    hint: str


_HINT_FORMS = "write it like 192.168.1.*, 192.168.1.0/24, 2001:db8:1::* or 2001:db8:1::/64"


def _parse_ipv4_wildcard(text: str, role: str) -> _Parsed | _Bad:
    parts = text.split(".")
    if len(parts) != 4:
        return _Bad(
            f"{role} {text!r} has {len(parts)} octet{'s' if len(parts) != 1 else ''}; an IPv4 "
            "pattern has four, each a number 0-255 or *",
            "write four octets, for example 192.168.1.*",
        )
    mask = value = 0
    for position, part in enumerate(parts, start=1):
        mask <<= 8
        value <<= 8
        if part == "*":
            continue
        if not _OCTET.fullmatch(part):
            return _Bad(
                f"{role} {text!r}: octet {position} ({part!r}) is neither a number 0-255 nor a "
                "single * (a * stands for one whole octet)",
                "write each octet as a number 0-255 or as *, for example 192.168.*.5",
            )
        if len(part) > 1 and part[0] == "0":
            return _Bad(
                f"{role} {text!r}: octet {position} ({part!r}) has a leading zero",
                f"write {int(part)}",
            )
        number = int(part)
        if number > 255:
            return _Bad(
                f"{role} {text!r}: octet {position} ({number}) is greater than 255",
                "each octet is a number 0-255",
            )
        mask |= 0xFF
        value |= number
    return _Parsed(RuleForm.WILDCARD, Pattern(4, mask, value), _leading_fixed(mask, 32))


def _parse_ipv6_wildcard(text: str, role: str) -> _Parsed | _Bad:
    star = text.count("*")
    if star > 1 or (star == 1 and not text.endswith(":*")):
        return _Bad(
            f"{role} {text!r}: in an IPv6 pattern a * may stand only for the last group (hextet), "
            "once",
            "write it like 2001:db8:1::*, or as a CIDR block such as 2001:db8:1::/64",
        )
    try:
        address = ipaddress.IPv6Address(text[:-1] + "0" if star else text)
    except ValueError as exc:
        return _Bad(f"{role} {text!r} is not a valid IPv6 pattern: {exc}", _HINT_FORMS)
    full = (1 << 128) - 1
    mask = full ^ 0xFFFF if star else full
    return _Parsed(RuleForm.WILDCARD, Pattern(6, mask, int(address)), _leading_fixed(mask, 128))


def _parse_cidr(text: str, role: str) -> _Parsed | _Bad:
    if "*" in text:
        return _Bad(
            f"{role} {text!r} mixes * with a /prefix",
            "write either 192.168.1.* or 192.168.1.0/24",
        )
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return _Bad(f"{role} {text!r} is not a valid CIDR block: {exc}", _HINT_FORMS)
        return _Bad(f"{role} {text!r} has host bits set", f"write the block as {loose}")
    pattern = Pattern(network.version, int(network.netmask), int(network.network_address))
    return _Parsed(RuleForm.CIDR, pattern, network.prefixlen)


def _parse_pattern(text: object, role: str) -> _Parsed | _Bad:
    """The parsed pattern, or what is wrong with it."""
    if not isinstance(text, str):
        return _Bad(f"{role} must be a string, got {text!r}", _HINT_FORMS)
    text = text.strip()
    if not text:
        return _Bad(f"{role} is empty", _HINT_FORMS)
    if "%" in text:
        return _Bad(f"{role} {text!r} has a scope (%...)", "write the address without it")
    if "/" in text:
        return _parse_cidr(text, role)
    if ":" in text:
        return _parse_ipv6_wildcard(text, role)
    return _parse_ipv4_wildcard(text, role)


def _describe_positions(pattern: Pattern) -> str:
    if pattern.version == 6:
        return "the last group" if pattern.free else "no position"
    stars = [str(i + 1) for i in range(4) if not (pattern.mask >> (24 - 8 * i)) & 0xFF]
    return f"octet{'s' if len(stars) != 1 else ''} {', '.join(stars)}" if stars else "no octet"


def _address(version: int, number: int) -> IPAddress:
    if version == 4:
        return ipaddress.IPv4Address(number)
    return ipaddress.IPv6Address(number)


def _network(
    version: int, number: int, prefix: int
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if version == 4:
        return ipaddress.IPv4Network((number, prefix))
    return ipaddress.IPv6Network((number, prefix))


def _to_address(value: object) -> IPAddress | None:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return ipaddress.ip_address(value.strip() if isinstance(value, str) else value)
        except ValueError:
            return None
    return None


_ADDRESS_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address)
_INTERFACE_TYPES = (ipaddress.IPv4Interface, ipaddress.IPv6Interface)


def _to_source(value: object) -> IPAddress | IPInterface | None:
    """An address (no prefix given) or an interface (prefix given); None if it is neither."""
    if isinstance(value, _ADDRESS_TYPES):  # interfaces are addresses too
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return ipaddress.ip_interface(text) if "/" in text else ipaddress.ip_address(text)
        except ValueError:
            return None
    return None


def _source_or_raise(value: object, item: str) -> IPAddress | IPInterface:
    found = _to_source(value)
    if found is None:
        raise ValidationError.of(
            item,
            f"{value!r} is not an IP address",
            "give an address such as 192.168.1.57 or 192.168.1.57/24",
        )
    return found


def _str_tuple(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        items = tuple(value)
        if all(isinstance(item, str) for item in items):
            return items
    return None


# --- the result of a translation ----------------------------------------------------------------


@attrs.frozen
class IPAssignment:
    """The address a rule gives one source address, with the rule's gateway and DNS settings.

    ``rule`` is the rule that decided it. ``source`` is the address as given (an interface when it
    came with a prefix); ``address`` keeps its copied octets or host bits.
    """

    source: IPAddress | IPInterface
    address: IPInterface
    gateway: IPAddress | None
    dns: tuple[IPAddress, ...]
    dns_suffixes: tuple[str, ...]
    rule: ReIPRule

    def config(self) -> IPConfig:
        """The assignment as a model :class:`~vmfailover.model.IPConfig`."""
        return IPConfig(self.address, self.gateway, self.dns, self.dns_suffixes)

    def __str__(self) -> str:
        return f"{self.source} -> {self.address} (by {self.rule})"


# --- one rule -----------------------------------------------------------------------------------


@attrs.frozen(init=False, repr=False)
class ReIPRule:
    """Map the addresses matching ``source`` onto ``target``, copying the free octets or host bits.

    ``prefix`` (or, for IPv4, ``mask``) sets the prefix length of every result; without it a result
    keeps the prefix of the address it came from, and an address given without a prefix lands in
    the rule's own subnet (the CIDR length, or the leading fixed octets of a wildcard pattern).
    ``gateway``, ``dns`` and ``dns_suffixes`` are what the results get; a gateway that is not inside
    every result's subnet is refused here. Everything is checked when the rule is built, and every
    problem found is reported at once, naming the rule.
    """

    source: str
    target: str
    prefix: int | None
    mask: str | None
    gateway: IPAddress | None
    dns: tuple[IPAddress, ...]
    dns_suffixes: tuple[str, ...]
    description: str
    form: RuleForm = attrs.field(eq=False)
    source_pattern: Pattern = attrs.field(eq=False)
    target_pattern: Pattern = attrs.field(eq=False)
    _result_prefix: int | None = attrs.field(eq=False)
    _implied_prefix: int = attrs.field(eq=False)
    _free: int = attrs.field(eq=False)

    def __init__(
        self,
        source: str,
        target: str,
        *,
        prefix: int | None = None,
        mask: str | ipaddress.IPv4Address | None = None,
        gateway: str | IPAddress | None = None,
        dns: Iterable[str | IPAddress] | str | IPAddress | None = (),
        dns_suffixes: Iterable[str] | str = (),
        description: str = "",
    ) -> None:
        item = _rule_label(source, target)
        problems: list[str] = []
        hints: list[str | None] = []

        def problem(message: str, hint: str | None = None) -> None:
            problems.append(message)
            hints.append(hint)

        parsed_source = _parse_pattern(source, "source")
        parsed_target = _parse_pattern(target, "target")
        for parsed in (parsed_source, parsed_target):
            if isinstance(parsed, _Bad):
                problem(parsed.message, parsed.hint)
        if isinstance(parsed_source, _Parsed) and isinstance(parsed_target, _Parsed):
            _check_shapes(parsed_source, parsed_target, problem)
        if problems:
            raise _rule_error(item, problems, hints)
        assert isinstance(parsed_source, _Parsed)
        assert isinstance(parsed_target, _Parsed)
        version = parsed_source.pattern.version

        result_prefix = _result_prefix_of(prefix, mask, version, problem)
        gateway_address = _gateway_of(gateway, version, problem)
        dns_servers = _dns_of(dns, version, problem)
        suffixes = _suffixes_of(dns_suffixes, problem)

        implied = parsed_target.implied_prefix
        if gateway_address is not None and not problems:
            subnet_prefix = result_prefix if result_prefix is not None else implied
            _check_gateway(parsed_target.pattern, subnet_prefix, gateway_address, problem)
        if problems:
            raise _rule_error(item, problems, hints)

        self.__attrs_init__(
            source.strip(),
            target.strip(),
            None if result_prefix is None or mask is not None else result_prefix,
            None if mask is None else str(mask).strip(),
            gateway_address,
            dns_servers,
            suffixes,
            description,
            parsed_source.form,
            parsed_source.pattern,
            parsed_target.pattern,
            result_prefix,
            implied,
            parsed_source.pattern.free,
        )

    # --- facts ---

    @property
    def version(self) -> int:
        return self.source_pattern.version

    @property
    def result_prefix(self) -> int | None:
        """The prefix length every result gets, or None when results keep their source's."""
        return self._result_prefix

    @property
    def size(self) -> int:
        """How many addresses the rule matches."""
        return 1 << self.source_pattern.free_bits

    # --- behaviour ---

    def matches(self, address: AddressLike) -> bool:
        """Whether ``address`` is in the rule's source set."""
        if not isinstance(address, _ADDRESS_TYPES):
            address = _source_or_raise(address, f"address for {self}")
        pattern = self.source_pattern
        return address.version == pattern.version and int(address) & pattern.mask == pattern.value

    def apply(self, address: AddressLike) -> IPAssignment:
        """The assignment this rule gives ``address``; refuses an address it does not match."""
        source = _source_or_raise(address, f"address for {self}")
        if not self.source_pattern.matches(source.version, int(source)):
            raise ValidationError.of(
                str(self), f"{source} does not match the source {self.source!r}"
            )
        return self._assign(source)

    def _assign(self, source: IPAddress | IPInterface) -> IPAssignment:
        number = (int(source) & self._free) | self.target_pattern.value
        if self._result_prefix is not None:
            prefix = self._result_prefix
        elif isinstance(source, _INTERFACE_TYPES):
            prefix = source.network.prefixlen
        else:
            prefix = self._implied_prefix
        address: IPInterface
        if self.target_pattern.version == 4:
            address = ipaddress.IPv4Interface((number, prefix))
        else:
            address = ipaddress.IPv6Interface((number, prefix))
        if (
            self.gateway is not None
            and self._result_prefix is None
            and self.gateway not in address.network
        ):
            raise ValidationError.of(
                str(self),
                f"{source} becomes {address}, whose subnet does not contain the gateway "
                f"{self.gateway}",
                f"give the rule prefix={self._implied_prefix} so results land in one subnet",
            )
        return IPAssignment(source, address, self.gateway, self.dns, self.dns_suffixes, self)

    # --- rendering ---

    def __str__(self) -> str:
        return _rule_label(self.source, self.target)

    def __repr__(self) -> str:
        extras = []
        if self.prefix is not None:
            extras.append(f"prefix={self.prefix}")
        if self.mask is not None:
            extras.append(f"mask={self.mask!r}")
        if self.gateway is not None:
            extras.append(f"gateway={str(self.gateway)!r}")
        if self.dns:
            extras.append(f"dns={[str(d) for d in self.dns]!r}")
        if self.dns_suffixes:
            extras.append(f"dns_suffixes={list(self.dns_suffixes)!r}")
        if self.description:
            extras.append(f"description={self.description!r}")
        inner = ", ".join([repr(self.source), repr(self.target), *extras])
        return f"ReIPRule({inner})"


def _rule_label(source: object, target: object) -> str:
    def show(value: object) -> str:
        return repr(value.strip()) if isinstance(value, str) else repr(value)

    return f"rule {show(source)} -> {show(target)}"


def _rule_error(item: str, problems: list[str], hints: list[str | None]) -> ValidationError:
    return ValidationError(
        Finding(item, message, Severity.ERROR, hint)
        for message, hint in zip(problems, hints, strict=True)
    )


def _check_shapes(source: _Parsed, target: _Parsed, problem: _Problem) -> None:
    s, t = source.pattern, target.pattern
    if s.version != t.version:
        problem(
            f"source is IPv{s.version} and target IPv{t.version}; a rule translates within one "
            "IP version",
            "write one rule per IP version",
        )
        return
    if source.form is not target.form:
        problem(
            f"source is written as {source.form.value} and target as {target.form.value}",
            "write both as wildcard patterns (192.168.1.*) or both as CIDR blocks (192.168.1.0/24)",
        )
        return
    if source.form is RuleForm.CIDR and s.mask != t.mask:
        problem(
            f"source prefix /{s.mask.bit_count()} and target prefix /{t.mask.bit_count()} differ; "
            "a CIDR rule keeps the host bits, so both must have the same length",
            "use the same prefix length on both sides, or split the rule",
        )
    elif source.form is RuleForm.WILDCARD and s.mask != t.mask:
        problem(
            f"the source has * in {_describe_positions(s)} and the target in "
            f"{_describe_positions(t)}; each * in the target is copied from the same position "
            "of the source, so a target without it would map many addresses onto one",
            "put * in exactly the same positions on both sides",
        )


def _gateway_of(gateway: object, version: int, problem: _Problem) -> IPAddress | None:
    if gateway is None:
        return None
    address = _to_address(gateway)
    if address is None:
        problem(f"gateway {gateway!r} is not an IP address", "for example gateway='10.0.0.1'")
        return None
    if address.version != version:
        problem(
            f"gateway {address} is IPv{address.version}, the rule IPv{version}",
            "give a gateway of the rule's IP version",
        )
        return None
    return address


def _dns_of(dns: object, version: int, problem: _Problem) -> tuple[IPAddress, ...]:
    servers: tuple[object, ...] = ()
    if isinstance(dns, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
        servers = (dns,)
    elif isinstance(dns, Iterable):
        servers = tuple(dns)
    elif dns is not None:
        problem(f"dns {dns!r} is not a list of addresses", "for example dns=['10.0.0.53']")
    found: list[IPAddress] = []
    for server in servers:
        address = _to_address(server)
        if address is None:
            problem(f"DNS server {server!r} is not an IP address", "for example dns=['10.0.0.53']")
        elif address.version != version:
            problem(
                f"DNS server {address} is IPv{address.version}, the rule IPv{version}",
                "give DNS servers of the rule's IP version; write one rule per version",
            )
        else:
            found.append(address)
    return tuple(found)


def _suffixes_of(suffixes: object, problem: _Problem) -> tuple[str, ...]:
    names = _str_tuple(suffixes)
    if names is None or any(not n.strip() or any(c.isspace() for c in n.strip()) for n in names):
        problem(
            f"dns_suffixes {suffixes!r} must be domain names without spaces",
            "for example dns_suffixes=['dr.example.com']",
        )
        return ()
    return tuple(n.strip() for n in names)


def _result_prefix_of(prefix: object, mask: object, version: int, problem: _Problem) -> int | None:
    bits = width(version)
    if prefix is not None and mask is not None:
        problem("gives both prefix and mask", "give prefix or mask, not both")
        return None
    if prefix is not None:
        if isinstance(prefix, bool) or not isinstance(prefix, int) or not 0 <= prefix <= bits:
            problem(
                f"prefix must be a whole number 0-{bits}, got {prefix!r}",
                "for example prefix=24 (IPv4) or prefix=64 (IPv6)",
            )
            return None
        return prefix
    if mask is not None:
        if version == 6:
            problem("mask is for IPv4 rules", "give an IPv6 rule prefix=64 instead")
            return None
        try:
            return ipaddress.IPv4Network(f"0.0.0.0/{str(mask).strip()}").prefixlen
        except ValueError:
            problem(
                f"mask {mask!r} is not a netmask",
                "give contiguous one-bits such as 255.255.255.0, or prefix=24",
            )
    return None


def _check_gateway(target: Pattern, prefix: int, gateway: IPAddress, problem: _Problem) -> None:
    bits = width(target.version)
    subnet_mask = ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1)
    if subnet_mask & ~target.mask:
        problem(
            f"results of this rule fall into many /{prefix} subnets (a * lies inside the "
            f"prefix), so no single gateway {gateway} is inside all of them",
            "give a prefix that covers only fixed octets, or split the rule per subnet",
        )
        return
    if int(gateway) & subnet_mask != target.value & subnet_mask:
        subnet = _network(target.version, target.value & subnet_mask, prefix)
        problem(
            f"gateway {gateway} is outside the resulting subnet {subnet}",
            "give a gateway inside that subnet, or another prefix",
        )


# --- a rule set ---------------------------------------------------------------------------------


def _rules_tuple(value: Iterable[ReIPRule]) -> tuple[ReIPRule, ...]:
    if isinstance(value, ReIPRule) or not isinstance(value, Iterable):
        raise ValidationError.of(
            "ReIPRules", f"expected a list of ReIPRule, got {value!r}", "ReIPRules([rule, ...])"
        )
    rules = tuple(value)
    wrong = [(i, r) for i, r in enumerate(rules, start=1) if not isinstance(r, ReIPRule)]
    if wrong:
        raise ValidationError(
            Finding(f"rule {i}", f"is not a ReIPRule: {r!r}", hint="build it with ReIPRule(...)")
            for i, r in wrong
        )
    return rules


@attrs.frozen(repr=False)
class ReIPRules:
    """An ordered set of :class:`ReIPRule`, checked as a whole.

    Overlapping rules must nest: an address matched by several rules gets the most specific one,
    the rule matching the fewest addresses. Rules that overlap without nesting, and duplicates
    (even written in different forms, like ``192.168.1.*`` and ``192.168.1.0/24``), are refused
    here with a finding naming both rules and an address both match. The order the rules are given
    in never changes a result; it only numbers them in messages. Lookups cost the same however
    many rules there are.
    """

    rules: tuple[ReIPRule, ...] = attrs.field(converter=_rules_tuple)
    _index: MostSpecificIndex[ReIPRule] = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        found = conflicts([rule.source_pattern for rule in self.rules])
        if found:
            findings = []
            for conflict in found[:25]:
                version = self.rules[conflict.first].version
                example = _address(version, conflict.example)
                if conflict.duplicate:
                    message = (
                        f"matches the same addresses as {self.label(conflict.first)} "
                        f"(for example {example})"
                    )
                    hint = "remove one of the two"
                else:
                    message = (
                        f"overlaps {self.label(conflict.first)} without either containing the "
                        f"other: both match {example}"
                    )
                    hint = "narrow one rule so that it lies inside the other, or make them disjoint"
                findings.append(Finding(self.label(conflict.second), message, Severity.ERROR, hint))
            if len(found) > 25:
                findings.append(
                    Finding("ReIPRules", f"{len(found) - 25} more conflicts not listed")
                )
            raise ValidationError(findings)
        index = MostSpecificIndex([(rule.source_pattern, rule) for rule in self.rules])
        object.__setattr__(self, "_index", index)

    def label(self, position: int) -> str:
        """How messages name the rule at ``position`` (0-based): ``rule 2 ('a' -> 'b')``."""
        count = len(self.rules)
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < count:
            raise ValidationError.of(
                "label", f"position must be from 0 to {count - 1}, got {position!r}"
            )
        rule = self.rules[position]
        return f"rule {position + 1} ({rule.source!r} -> {rule.target!r})"

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[ReIPRule]:
        return iter(self.rules)

    @overload
    def __getitem__(self, position: int) -> ReIPRule: ...
    @overload
    def __getitem__(self, position: slice) -> tuple[ReIPRule, ...]: ...
    def __getitem__(self, position: int | slice) -> ReIPRule | tuple[ReIPRule, ...]:
        return self.rules[position]

    def match(self, address: AddressLike) -> ReIPRule | None:
        """The most specific rule matching ``address``, or None."""
        source = _source_or_raise(address, "address")
        return self._index.lookup(source.version, int(source))

    def translate(self, address: AddressLike) -> IPAssignment | None:
        """The new address for ``address`` by the most specific matching rule, or None."""
        source = (
            address if isinstance(address, _ADDRESS_TYPES) else _source_or_raise(address, "address")
        )
        rule = self._index.lookup(source.version, int(source))
        if rule is None:
            return None
        return rule._assign(source)

    def plan(
        self,
        vms: Iterable[VM] | VM,
        overrides: Iterable[ReIPOverride] | ReIPOverride = (),
        in_use: Mapping[AddressLike, str] | Iterable[AddressLike] = (),
    ) -> ReIPPlan:
        """Old and new configuration of every NIC of ``vms``, with findings.

        ``overrides`` win over rules. ``in_use`` lists addresses already taken at the target site
        (optionally mapped to who holds them, for messages; :func:`addresses_in_use` builds it
        from an inventory). Findings: a static address no rule matches (warning; it is kept), two
        NICs that would share an address (error), a new or kept address already in use (error), a
        rule result whose subnet misses the rule's gateway (error), an override that matches no
        NIC (error), and a NIC that loses its gateway or DNS servers (warning).
        """
        return _build_plan(self, vms, overrides, in_use)

    # --- rendering ---

    def _rows(self) -> list[list[object]]:
        rows: list[list[object]] = []
        for position, rule in enumerate(self.rules, start=1):
            prefix = "" if rule.result_prefix is None else f"/{rule.result_prefix}"
            rows.append(
                [
                    position,
                    rule.source,
                    rule.target,
                    prefix,
                    rule.gateway or "",
                    ", ".join(str(d) for d in rule.dns),
                    ", ".join(rule.dns_suffixes),
                    rule.description,
                ]
            )
        return rows

    _HEADERS = ("#", "source", "target", "prefix", "gateway", "DNS", "DNS suffixes", "description")

    def __str__(self) -> str:
        return _render.text_table(self._HEADERS, self._rows(), title=self._title())

    def _repr_html_(self) -> str:
        return _render.html_table(self._HEADERS, self._rows(), title=self._title())

    def _title(self) -> str:
        return f"Re-IP rules ({len(self.rules)})"

    def __repr__(self) -> str:
        return f"ReIPRules({list(self.rules)!r})"


# --- overrides ----------------------------------------------------------------------------------


def _normalise_mac(value: object) -> str | None:
    text = str(value).strip().lower() if isinstance(value, str) else ""
    digits = re.sub(r"[:-]", "", text)
    if not re.fullmatch(r"[0-9a-f]{12}", digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


@attrs.frozen(init=False)
class ReIPOverride:
    """An explicit configuration for one NIC of one VM, winning over every rule.

    ``vm`` is the VM's name or id, ``mac`` the NIC's MAC. Give ``ip_configs`` (IPConfig objects or
    ``"address/prefix"`` strings) for static addresses, or ``dhcp=True`` to move the NIC to DHCP.
    """

    vm: str
    mac: str
    ip_configs: tuple[IPConfig, ...]
    dhcp: bool

    def __init__(
        self,
        vm: str,
        mac: str,
        ip_configs: Iterable[IPConfig | str | IPInterface] | IPConfig | str = (),
        *,
        dhcp: bool = False,
    ) -> None:
        item = f"override for VM {vm!r} NIC {mac!r}"
        if not isinstance(vm, str) or not vm.strip():
            raise ValidationError.of(item, "vm must be the VM's name or id")
        normalised = _normalise_mac(mac)
        if normalised is None:
            raise ValidationError.of(
                item, f"{mac!r} is not a MAC address", "write six hex pairs, aa:bb:cc:dd:ee:ff"
            )
        if not isinstance(dhcp, bool):
            raise ValidationError.of(item, f"dhcp must be True or False, got {dhcp!r}")
        if isinstance(ip_configs, IPConfig | str):
            ip_configs = (ip_configs,)
        configs: list[IPConfig] = []
        for config in ip_configs:
            if isinstance(config, IPConfig):
                configs.append(config)
                continue
            try:
                configs.append(IPConfig(config))
            except ValidationError as exc:
                raise ValidationError.of(
                    item, str(exc.findings[0].message), "write addresses as 10.0.0.5/24"
                ) from None
        if dhcp and configs:
            raise ValidationError.of(
                item, "gives both dhcp=True and static ip_configs", "choose one of the two"
            )
        if not dhcp and not configs:
            raise ValidationError.of(
                item, "says nothing", "give ip_configs=['10.0.0.5/24'] or dhcp=True"
            )
        self.__attrs_init__(vm.strip(), normalised, tuple(configs), dhcp)

    def __str__(self) -> str:
        return f"override for VM {self.vm!r} NIC {self.mac}"


# --- the plan -----------------------------------------------------------------------------------


class ReIPAction(enum.StrEnum):
    """What happens to a NIC: ``rules`` re-addressed by rules (some addresses may be kept),
    ``kept`` static addresses no rule matches, ``override`` an explicit override, ``dhcp`` stays
    on DHCP, ``none`` no address at all."""

    RULES = "rules"
    KEPT = "kept"
    OVERRIDE = "override"
    DHCP = "dhcp"
    NONE = "none"


@attrs.frozen
class ReIPEntry:
    """One NIC of one VM: its configuration before and after the failover, and why.

    ``assignments`` (for ``rules`` and ``kept``) has one item per old address: the rule's
    assignment, or None where no rule matched and the address is kept.
    """

    vm_id: str
    vm_name: str
    mac: str
    network: str
    action: ReIPAction
    old: tuple[IPConfig, ...]
    new: tuple[IPConfig, ...]
    old_dhcp: bool = False
    new_dhcp: bool = False
    assignments: tuple[IPAssignment | None, ...] = ()

    @property
    def item(self) -> str:
        return f"VM {self.vm_name!r} NIC {self.mac}"

    @property
    def changed(self) -> bool:
        return self.old != self.new or self.old_dhcp != self.new_dhcp


_PLAN_HEADERS = ("VM", "NIC", "network", "old", "new", "gateway", "how")


@attrs.frozen
class ReIPPlan:
    """What re-IP will do to every NIC of a set of VMs, and what is wrong with it.

    ``findings`` feed the failover plan's pre-flight check; a plan with blocking findings
    (:attr:`blocking`) must not run.
    """

    entries: tuple[ReIPEntry, ...]
    findings: tuple[Finding, ...]

    @property
    def blocking(self) -> bool:
        return any(finding.blocking for finding in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    def entry(self, vm: str, mac: str) -> ReIPEntry:
        """The entry of the NIC ``mac`` of the VM named (or with id) ``vm``."""
        wanted = _normalise_mac(mac)
        for entry in self.entries:
            if vm in (entry.vm_id, entry.vm_name) and entry.mac == wanted:
                return entry
        raise NotFoundError(f"the re-IP plan has no NIC {mac} of VM {vm!r}")

    def _rows(self) -> list[list[object]]:
        rows: list[list[object]] = []
        for entry in self.entries:
            old = ["dhcp"] if entry.old_dhcp else [str(c.address) for c in entry.old]
            new = ["dhcp"] if entry.new_dhcp else [str(c.address) for c in entry.new]
            gateways = ["" if entry.new_dhcp else str(c.gateway or "") for c in entry.new]
            how = _how(entry)
            for line in range(max(len(old), len(new), 1)):
                rows.append(
                    [
                        entry.vm_name if line == 0 else "",
                        entry.mac if line == 0 else "",
                        entry.network if line == 0 else "",
                        old[line] if line < len(old) else "",
                        new[line] if line < len(new) else "",
                        gateways[line] if line < len(gateways) else "",
                        how[line] if line < len(how) else "",
                    ]
                )
        return rows

    def _title(self) -> str:
        errors, warnings = len(self.errors), len(self.warnings)
        return f"Re-IP plan: {len(self.entries)} NICs, {errors} errors, {warnings} warnings"

    def __str__(self) -> str:
        text = _render.text_table(_PLAN_HEADERS, self._rows(), title=self._title())
        if self.findings:
            lines = [f"  {f.severity.value}: {f}" for f in self.findings]
            text += "\n\nFindings:\n" + "\n".join(lines)
        return text

    def _repr_html_(self) -> str:
        html = _render.html_table(_PLAN_HEADERS, self._rows(), title=self._title())
        if self.findings:
            rows = [[f.severity.value, f.item, f.message, f.hint or ""] for f in self.findings]
            html += _render.html_table(("severity", "item", "problem", "hint"), rows, "Findings")
        return html


def _how(entry: ReIPEntry) -> list[str]:
    if entry.action is ReIPAction.OVERRIDE:
        return ["override"]
    if entry.action is ReIPAction.DHCP:
        return ["stays on DHCP"]
    if entry.action is ReIPAction.NONE:
        return ["no address"]
    return [
        "no rule: kept"
        if assignment is None
        else f"{assignment.rule.source} -> {assignment.rule.target}"
        for assignment in entry.assignments
    ]


def addresses_in_use(
    inventory: Inventory, site: str, *, exclude: Iterable[VM | str] = ()
) -> dict[IPAddress, str]:
    """Every static address held by a VM at ``site``, mapped to who holds it, for ``plan(in_use=)``.

    The VMs in ``exclude`` (objects, names or ids; typically those being failed over) and their
    replicas do not count: a replica taking its own source's new address is no collision.
    """
    if not isinstance(inventory, Inventory):
        raise ValidationError.of("addresses_in_use", f"needs an Inventory, got {inventory!r}")
    inventory.site(site)
    skipped: set[str] = set()
    for vm in as_items(exclude, (VM, str), "addresses_in_use exclude", "a VM or a VM name"):
        key = vm.id if isinstance(vm, VM) else str(vm)
        try:
            found = inventory.vm(key)
        except NotFoundError:
            continue
        skipped.add(found.id)
        with contextlib.suppress(NotFoundError):
            skipped.add(inventory.replica_of(found.id).replica_vm)
    held: dict[IPAddress, str] = {}
    for vm in inventory.vms_at(site):
        if vm.id in skipped:
            continue
        for nic in vm.nics:
            for address in nic.addresses:
                held.setdefault(address, f"VM {vm.name!r} NIC {nic.mac}")
    return held


def _in_use_table(
    in_use: Mapping[AddressLike, str] | Iterable[AddressLike],
) -> dict[int, tuple[IPAddress, str]]:
    table: dict[int, tuple[IPAddress, str]] = {}
    pairs: Iterable[tuple[AddressLike, str]]
    if isinstance(in_use, Mapping):
        pairs = ((key, str(owner)) for key, owner in in_use.items())
    elif isinstance(in_use, str):
        pairs = ((in_use, "an address in use at the target site"),)
    elif not is_collection(in_use):
        raise ValidationError.of("in_use", f"expected IP addresses, got {in_use!r}")
    else:
        pairs = ((key, "an address in use at the target site") for key in in_use)
    bad = []
    for key, owner in pairs:
        found = _to_source(key)
        if found is None:
            bad.append(key)
            continue
        ip = found.ip if isinstance(found, _INTERFACE_TYPES) else found
        table[_address_key(ip)] = (ip, owner)
    if bad:
        raise ValidationError.of("in_use", f"not IP addresses: {', '.join(repr(b) for b in bad)}")
    return table


def _address_key(address: IPAddress) -> int:
    return int(address) | (address.version << 128)


def _build_plan(
    rules: ReIPRules,
    vms: Iterable[VM] | VM,
    overrides: Iterable[ReIPOverride] | ReIPOverride,
    in_use: Mapping[AddressLike, str] | Iterable[AddressLike],
) -> ReIPPlan:
    vm_list = as_items(vms, VM, "ReIPRules.plan vms", "a VM")
    override_list = as_items(overrides, ReIPOverride, "ReIPRules.plan overrides", "a ReIPOverride")
    taken = _in_use_table(in_use)

    findings: list[Finding] = []
    by_key: dict[tuple[str, str], ReIPOverride] = {}
    seen: set[tuple[str, str]] = set()
    for override in override_list:
        key = (override.vm, override.mac)
        if key in seen:
            raise ValidationError.of(str(override), "is given twice", "keep one override per NIC")
        seen.add(key)
    vms_by_id: dict[str, list[VM]] = {}
    vms_by_name: dict[str, list[VM]] = {}
    for vm in vm_list:
        vms_by_id.setdefault(vm.id, []).append(vm)
        vms_by_name.setdefault(vm.name, []).append(vm)
    for override in override_list:
        matching = vms_by_id.get(override.vm) or vms_by_name.get(override.vm, [])
        if len(matching) > 1:
            findings.append(
                Finding(
                    str(override),
                    f"{len(matching)} VMs in the plan are named {override.vm!r}",
                    hint="name the VM by its id",
                )
            )
            continue
        if not matching:
            findings.append(
                Finding(
                    str(override),
                    "no VM in the plan has this name or id",
                    hint="check the VM name, or remove the override",
                )
            )
            continue
        vm = matching[0]
        if override.mac not in {nic.mac for nic in vm.nics}:
            findings.append(
                Finding(
                    str(override),
                    f"VM {vm.name!r} has no NIC with this MAC",
                    hint="check the MAC, or remove the override",
                )
            )
            continue
        if (vm.id, override.mac) in by_key:
            raise ValidationError.of(str(override), "is given twice", "keep one override per NIC")
        by_key[vm.id, override.mac] = override

    entries: list[ReIPEntry] = []
    for vm in vm_list:
        for nic in vm.nics:
            entries.append(_plan_nic(rules, vm, nic, by_key.get((vm.id, nic.mac)), findings))

    holders: dict[int, list[tuple[ReIPEntry, IPAddress]]] = {}
    for entry in entries:
        if entry.new_dhcp:
            continue
        for config in entry.new:
            holders.setdefault(_address_key(config.address.ip), []).append(
                (entry, config.address.ip)
            )
    for held_key, holding in holders.items():
        if len(holding) > 1:
            names = ", ".join(e.item for e, _ in holding)
            for entry, ip in holding:
                findings.append(
                    Finding(
                        entry.item,
                        f"would get {ip}, like {len(holding) - 1} other NIC(s): {names}",
                        hint="change a rule or add an override so each NIC gets its own address",
                    )
                )
        if held_key in taken:
            ip, owner = taken[held_key]
            for entry, _ in holding:
                findings.append(
                    Finding(
                        entry.item,
                        f"would get {ip}, already in use at the target site by {owner}",
                        hint="change the rule or add an override with a free address",
                    )
                )
    return ReIPPlan(tuple(entries), tuple(findings))


def _plan_nic(
    rules: ReIPRules,
    vm: VM,
    nic: Nic,
    override: ReIPOverride | None,
    findings: list[Finding],
) -> ReIPEntry:
    item = f"VM {vm.name!r} NIC {nic.mac}"
    common = (vm.id, vm.name, nic.mac, nic.network)
    if override is not None:
        return ReIPEntry(
            *common,
            action=ReIPAction.OVERRIDE,
            old=nic.ip_configs,
            new=override.ip_configs,
            old_dhcp=nic.dhcp,
            new_dhcp=override.dhcp,
        )
    if nic.dhcp:
        return ReIPEntry(
            *common, action=ReIPAction.DHCP, old=(), new=(), old_dhcp=True, new_dhcp=True
        )
    if not nic.ip_configs:
        return ReIPEntry(*common, action=ReIPAction.NONE, old=(), new=())
    new: list[IPConfig] = []
    assignments: list[IPAssignment | None] = []
    for config in nic.ip_configs:
        try:
            assignment = rules.translate(config.address)
        except ValidationError as exc:
            for finding in exc.findings:
                findings.append(
                    Finding(item, f"{finding.item}: {finding.message}", hint=finding.hint)
                )
            assignments.append(None)
            new.append(config)
            continue
        assignments.append(assignment)
        if assignment is None:
            findings.append(
                Finding(
                    item,
                    f"no re-IP rule matches the static address {config.address}; it is kept",
                    Severity.WARNING,
                    "add a rule or an override if the target site uses other subnets",
                )
            )
            new.append(config)
            continue
        new_config = assignment.config()
        new.append(new_config)
        lost = []
        if config.gateway is not None and new_config.gateway is None:
            lost.append(f"gateway (was {config.gateway})")
        if config.dns and not new_config.dns:
            lost.append("DNS servers (were " + ", ".join(str(d) for d in config.dns) + ")")
        if lost:
            findings.append(
                Finding(
                    item,
                    f"{config.address} becomes {new_config.address} without " + " and ".join(lost),
                    Severity.WARNING,
                    f"give {assignment.rule} a gateway and DNS servers",
                )
            )
    action = ReIPAction.RULES if any(a is not None for a in assignments) else ReIPAction.KEPT
    return ReIPEntry(
        *common,
        action=action,
        old=nic.ip_configs,
        new=tuple(new),
        assignments=tuple(assignments),
    )
