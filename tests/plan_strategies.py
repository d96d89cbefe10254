"""Hypothesis strategies for failover plans that a file can hold: every field, every option.

Shared by the plan-file, schema and diff tests. A generated plan is always a valid one (the order
is acyclic, barrier groups never wait for later groups, resources have capacities, rules do not
overlap), because what a file cannot describe is tested on its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from vmfailover import IPConfig, NetworkMapping, ReIPOverride, ReIPRule, ReIPRules, StartOrder
from vmfailover.model import FailoverKind
from vmfailover.plan import Approval, FailoverPlan, PowerOffSource, Step, StepFailure, When
from vmfailover.policy.probes import HTTPStatus, IPAssigned, PoweredOn, TCPPort, ToolsHeartbeat
from vmfailover.policy.retention import RetentionPolicy
from vmfailover.policy.sequencer import FailurePolicy, GroupMode

# Any text a person might type, other scripts and symbols included (no surrogates: not text).
_CHARACTERS = st.characters(exclude_categories=("Cs",))
text = st.text(_CHARACTERS, max_size=20)
names = st.text(_CHARACTERS, min_size=1, max_size=12).filter(lambda s: bool(s.strip()))
seconds = st.one_of(
    st.floats(min_value=1e-3, max_value=3e9, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1, max_value=10**7).map(float),
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7))]),
)
kinds = st.one_of(
    st.none(), st.sets(st.sampled_from(list(FailoverKind)), min_size=1).map(frozenset)
)


@st.composite
def probes(draw: st.DrawFn) -> object:
    timeout = draw(seconds)
    return draw(
        st.sampled_from(
            [
                None,
                PoweredOn(timeout),
                ToolsHeartbeat(timeout),
                IPAssigned(timeout),
                TCPPort(
                    draw(st.integers(1, 65535)), draw(st.sampled_from([None, "10.0.0.5"])), timeout
                ),
                HTTPStatus(
                    f"https://app{draw(st.integers(0, 99))}.example/health",
                    draw(st.integers(100, 599)),
                    timeout,
                ),
            ]
        )
    )


@st.composite
def orders(draw: st.DrawFn, vms: list[str]) -> StartOrder:
    mode = draw(st.sampled_from(list(GroupMode)))
    order = StartOrder(max_parallel=draw(st.none() | st.integers(1, 50)), groups=mode)
    limits = draw(st.dictionaries(names, st.integers(1, 10), max_size=3))
    for resource, capacity in limits.items():
        order.limit(resource, capacity)
    members = draw(st.permutations(vms).map(lambda p: p[: draw(st.integers(0, len(vms)))]))
    outside = [vm for vm in vms if vm not in members]
    groups = sorted(
        (draw(st.none() | st.integers(1, 4)) for _ in members),
        key=lambda group: (group is None, group or 0),
    )
    for position, (name, group) in enumerate(zip(members, groups, strict=True)):
        # Waiting only for earlier entries (or, with priority groups, VMs outside the order)
        # keeps the order acyclic and barrier groups satisfiable.
        candidates = members[:position] + (outside if mode is GroupMode.PRIORITY else [])
        after = draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
        order.add(
            name,
            after=after,
            group=group,
            probe=draw(probes()),
            timeout=draw(st.none() | seconds),
            on_failure=draw(st.sampled_from(list(FailurePolicy))),
            resources=draw(st.lists(st.sampled_from(sorted(limits)), unique=True))
            if limits
            else (),
        )
    return order


@st.composite
def rule_sets(draw: st.DrawFn) -> ReIPRules:
    subnets = draw(st.lists(st.integers(0, 255), unique=True, max_size=4))
    rules = []
    for subnet in subnets:
        form = draw(st.sampled_from(["wildcard", "cidr", "ipv6"]))
        gateway = draw(st.booleans())
        extra: dict[str, object] = {
            "dns": draw(st.lists(st.integers(1, 254), max_size=2, unique=True)),
            "dns_suffixes": draw(st.lists(st.sampled_from(["corp.example", "dr.example"]))),
            "description": draw(text),
        }
        if form == "ipv6":
            extra["dns"] = [f"2001:db8:ffff::{n:x}" for n in extra["dns"]]  # type: ignore[attr-defined]
            rules.append(ReIPRule(f"2001:db8:{subnet:x}::*", f"2001:db8:f{subnet:x}::*", **extra))
            continue
        extra["dns"] = [f"10.0.0.{n}" for n in extra["dns"]]  # type: ignore[attr-defined]
        if gateway:
            extra["gateway"] = f"10.{subnet}.0.1"
        choice = draw(st.sampled_from(["none", "prefix", "mask"]))
        if choice == "prefix":
            extra["prefix"] = 24
        elif choice == "mask":
            extra["mask"] = "255.255.255.0"
        if form == "wildcard":
            rules.append(ReIPRule(f"192.168.{subnet}.*", f"10.{subnet}.0.*", **extra))
        else:
            rules.append(ReIPRule(f"172.16.{subnet}.0/24", f"10.{subnet}.0.0/24", **extra))
    return ReIPRules(rules)


@st.composite
def overrides(draw: st.DrawFn, vms: list[str]) -> ReIPOverride:
    mac = ":".join(f"{byte:02x}" for byte in draw(st.binary(min_size=6, max_size=6)))
    vm = draw(st.sampled_from(vms) | names)
    if draw(st.booleans()):
        return ReIPOverride(vm, mac, dhcp=True)
    configs = [
        IPConfig(
            f"10.1.{third}.{fourth}/24",
            gateway=draw(st.sampled_from([None, f"10.1.{third}.1"])),
            dns=draw(st.sampled_from([(), ("10.1.0.53",)])),
            dns_suffixes=draw(st.sampled_from([(), ("corp.example",)])),
        )
        for third, fourth in draw(
            st.lists(st.tuples(st.integers(0, 255), st.integers(2, 254)), min_size=1, max_size=2)
        )
    ]
    return ReIPOverride(vm, mac, configs)


@st.composite
def steps(draw: st.DrawFn, vms: list[str]) -> list[Step | Approval]:
    items: list[Step | Approval] = []
    for name in draw(st.lists(names, unique=True, max_size=4)):
        vm = draw(st.none() | st.sampled_from(vms))
        group = None if vm is not None else draw(st.none() | st.integers(1, 5))
        common = {
            "name": name,
            "when": draw(st.sampled_from(list(When))),
            "vm": vm,
            "group": group,
            "timeout": draw(seconds),
            "kinds": draw(kinds),
        }
        if draw(st.booleans()):
            program = draw(names)
            argv = [program, *draw(st.lists(text, max_size=3))]
            failures = [f for f in StepFailure if vm is not None or f is not StepFailure.FAIL_VM]
            items.append(
                Step(action=argv, on_failure=draw(st.sampled_from(failures)), **common)  # type: ignore[arg-type]
            )
        else:
            items.append(Approval(**common))  # type: ignore[arg-type]
    return items


@st.composite
def plans(draw: st.DrawFn) -> FailoverPlan:
    vms = draw(st.lists(names, min_size=1, max_size=8, unique=True))
    point = draw(
        st.one_of(
            st.sampled_from(["latest", "latest-application-consistent"]),
            moments,
            st.dictionaries(
                st.sampled_from(vms),
                st.sampled_from(["latest", "latest-application-consistent"]) | moments,
            ),
        )
    )
    network = draw(
        st.none()
        | st.builds(
            NetworkMapping,
            production=st.dictionaries(names, names, max_size=3),
            test=st.dictionaries(names, names, max_size=3),
            same_name=st.booleans(),
            allow_non_isolated_test=st.booleans(),
        )
    )
    return FailoverPlan(
        name=draw(names),
        vms=vms,
        order=draw(st.none() | orders(vms)),
        network=network,
        reip=draw(st.none() | rule_sets()),
        test_reip=draw(st.none() | rule_sets()),
        recovery_point=point,
        power_off_source=draw(st.none() | st.sampled_from(list(PowerOffSource))),
        rpo=draw(st.none() | seconds),
        rto=draw(st.none() | seconds),
        steps=draw(steps(vms)),
        reip_overrides=draw(st.lists(overrides(vms), max_size=3)),
        shutdown_timeout=draw(seconds),
        description=draw(text),
    )


@st.composite
def retention_policies(draw: st.DrawFn) -> RetentionPolicy:
    counts = {
        rule: draw(st.sampled_from([0, 0, -1, 1, 7, 30]))
        for rule in ("last", "hourly", "daily", "weekly", "monthly", "yearly")
    }
    windows = {
        rule: draw(st.sampled_from([None, "7d", "1y6m", "48h", "2m3d4h"]))
        for rule in (
            "within",
            "within_hourly",
            "within_daily",
            "within_weekly",
            "within_monthly",
            "within_yearly",
        )
    }
    tags = draw(st.lists(st.lists(names, min_size=1, max_size=3, unique=True), max_size=2))
    if not any(counts.values()) and not any(windows.values()) and not tags:
        counts["last"] = 1
    return RetentionPolicy(
        **counts,  # type: ignore[arg-type]
        **windows,
        tags=tags,
        tz=draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])),
    )
