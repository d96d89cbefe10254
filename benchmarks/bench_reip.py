"""Re-IP translation speed: indexed most-specific lookup against a first-match linear scan.

Run from the worktree root: ``python benchmarks/bench_reip.py [--addresses N]``.

Targets (issue 4):
* translation cost independent of the number of rules: 100 and 10,000 rules differ by < 2x;
* at 10,000 rules, at least 100x faster than a naive first-match linear scan over the same rules,
  measured in this process on a 10,000-address sample.

The rule sets are nested families of wildcard and CIDR rules (CIDR /16 roots with /22../26 CIDR
and /24 wildcard children; wildcard ``a.b.*.*`` roots with ``a.b.*.5``-style children and single
addresses inside those). Ten percent of the addresses match no rule.

The naive scan is what a user would write with the public API: rules sorted most specific first,
``for rule in ordered: if rule.matches(a): return rule.apply(a)``. A tighter scan over
precomputed integer masks is also reported, for information.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _smoke import announce, exit_code, judged, sized

from vmfailover.policy.reip import IPAssignment, ReIPRule, ReIPRules

#: The two rule set sizes compared; each rule family below has eight rules.
FEW_RULES, MANY_RULES = sized((100, 10_000), (16, 64))
FEW_FAMILIES, MANY_FAMILIES = FEW_RULES // 8, MANY_RULES // 8
#: Addresses spread over every family of the larger set, and translated per chunk.
SPREAD = sized(100_000, 200)
CHUNK = sized(100_000, 500)
#: Addresses of the sample on which the naive scan's answers are compared with the index's.
COMPARED = sized(2000, 200)


def family(index: int) -> list[ReIPRule]:
    """About eight nested rules under one /16 root; even roots are CIDR, odd ones wildcards."""
    a, b = 10 + index // 250, index % 250
    t = a + 100
    if index % 2 == 0:
        return [
            ReIPRule(f"{a}.{b}.0.0/16", f"{t}.{b}.0.0/16"),
            ReIPRule(f"{a}.{b}.1.*", f"{t}.{b}.101.*", prefix=24, gateway=f"{t}.{b}.101.1"),
            ReIPRule(f"{a}.{b}.2.0/24", f"{t}.{b}.102.0/24", gateway=f"{t}.{b}.102.1"),
            ReIPRule(f"{a}.{b}.2.128/25", f"{t}.{b}.103.128/25"),
            ReIPRule(f"{a}.{b}.2.192/26", f"{t}.{b}.104.192/26"),
            ReIPRule(f"{a}.{b}.4.0/22", f"{t}.{b}.108.0/22"),
            ReIPRule(f"{a}.{b}.5.*", f"{t}.{b}.120.*"),
            ReIPRule(f"{a}.{b}.9.17", f"{t}.{b}.9.17"),
        ]
    return [
        ReIPRule(f"{a}.{b}.*.*", f"{t}.{b}.*.*", prefix=16, gateway=f"{t}.{b}.0.1"),
        ReIPRule(f"{a}.{b}.*.5", f"{t}.{b}.*.55"),
        ReIPRule(f"{a}.{b}.*.6", f"{t}.{b}.*.66"),
        ReIPRule(f"{a}.{b}.*.7", f"{t}.{b}.*.77"),
        ReIPRule(f"{a}.{b}.7.5", f"{t}.{b}.7.99"),
        ReIPRule(f"{a}.{b}.8.6", f"{t}.{b}.8.98"),
        ReIPRule(f"{a}.{b}.9.7", f"{t}.{b}.9.97"),
        ReIPRule(f"{a}.{b}.10.128/26", f"{t}.{b}.210.128/26"),
    ]


def rule_list(count: int) -> list[ReIPRule]:
    rules: list[ReIPRule] = []
    index = 0
    while len(rules) < count:
        rules.extend(family(index))
        index += 1
    return rules[:count]


def addresses(count: int, roots: int, seed: int) -> list[ipaddress.IPv4Address]:
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        if rng.random() < 0.1:
            number = (192 << 24) | (168 << 16) | rng.getrandbits(16)
        else:
            index = rng.randrange(roots)
            a, b = 10 + index // 250, index % 250
            third = rng.choice((1, 2, 4, 5, 6, 7, 8, 9, 10, rng.randrange(256)))
            fourth = rng.choice((5, 6, 7, 17, rng.randrange(256), rng.randrange(256)))
            number = (a << 24) | (b << 16) | (third << 8) | fourth
        result.append(ipaddress.IPv4Address(number))
    return result


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def indexed_run(rules: ReIPRules, sample: Sequence[ipaddress.IPv4Address]) -> float:
    translate = rules.translate

    def run() -> None:
        for address in sample:
            translate(address)

    return timed(run)


def naive(ordered: Sequence[ReIPRule], address: ipaddress.IPv4Address) -> IPAssignment | None:
    for rule in ordered:
        if rule.matches(address):
            return rule.apply(address)
    return None


def tight_scan_factory(
    ordered: Sequence[ReIPRule],
) -> Callable[[ipaddress.IPv4Address], IPAssignment | None]:
    table = [(rule.source_pattern.mask, rule.source_pattern.value, rule) for rule in ordered]

    def scan(address: ipaddress.IPv4Address) -> IPAssignment | None:
        number = int(address)
        for mask, value, rule in table:
            if number & mask == value:
                return rule.apply(address)
        return None

    return scan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=sized(1_000_000, 1_000))
    parser.add_argument("--sample", type=int, default=sized(10_000, 200))
    args = parser.parse_args()
    announce()

    print(f"re-IP benchmark: {args.addresses:,} addresses, naive sample {args.sample:,}")
    counts = (FEW_RULES, MANY_RULES)
    built: dict[int, ReIPRules] = {}
    for count in counts:
        plain = rule_list(count)
        start = time.perf_counter()
        built[count] = ReIPRules(plain)
        build = time.perf_counter() - start
        print(f"  {count:>6,} rules: build {build * 1000:8.1f} ms")
    # Both rule sets translate the same chunks, interleaved, so a change in machine load
    # affects both alike. Addresses are drawn inside the roots the smaller set has too.
    totals = dict.fromkeys(counts, 0.0)
    done, seed = 0, 0
    while done < args.addresses:
        size = min(CHUNK, args.addresses - done)
        sample = addresses(size, roots=FEW_FAMILIES, seed=seed)
        seed += 1
        for count in counts:
            totals[count] += indexed_run(built[count], sample)
        done += size
    results: dict[int, tuple[ReIPRules, float]] = {}
    for count in counts:
        per = totals[count] / args.addresses
        results[count] = (built[count], per)
        print(
            f"  {count:>6,} rules: {args.addresses / totals[count]:>10,.0f} translations/s "
            f"({per * 1e6:.2f} us each)"
        )

    spread = addresses(SPREAD, roots=MANY_FAMILIES, seed=7)
    spread_time = indexed_run(built[MANY_RULES], spread) / len(spread)
    print(
        f"  (for information: {MANY_RULES:,} rules with addresses spread over all "
        f"{MANY_FAMILIES:,} rule families: "
        f"{spread_time * 1e6:.2f} us each)"
    )
    ratio = results[MANY_RULES][1] / results[FEW_RULES][1]
    print(
        f"  cost {MANY_RULES:,} rules / {FEW_RULES:,} rules: {ratio:.2f}x (target < 2x): "
        f"{judged(ratio < 2)}"
    )

    rules, _ = results[MANY_RULES]
    ordered = sorted(rules, key=lambda rule: rule.size)
    sample = addresses(args.sample, roots=MANY_FAMILIES, seed=99)
    for address in sample[:COMPARED]:
        assert naive(ordered, address) == rules.translate(address), address
    indexed = indexed_run(rules, sample)
    naive_time = timed(lambda: [naive(ordered, address) for address in sample])
    tight = tight_scan_factory(ordered)
    tight_time = timed(lambda: [tight(address) for address in sample])
    speedup = naive_time / indexed
    print(
        f"  {MANY_RULES:,} rules on {args.sample:,} addresses: indexed {indexed * 1000:.1f} ms, "
        f"naive scan {naive_time * 1000:.0f} ms"
    )
    print(
        f"  speed-up over the naive first-match scan: {speedup:,.0f}x (target >= 100x): "
        f"{judged(speedup >= 100)}"
    )
    print(
        f"  (for information: a tight scan over integer masks takes {tight_time * 1000:.0f} ms, "
        f"{tight_time / indexed:,.0f}x the indexed time)"
    )
    return exit_code(ratio < 2 and speedup >= 100)


if __name__ == "__main__":
    raise SystemExit(main())
