"""Hypothesis strategies for the bad-input harness: hostile values, and plausible ones per type.

A call of a public name gets, for each parameter, its default, a plausible value (read from the
parameter's annotation: a name, a number, an inventory of the lab, a start order ...) or a hostile
one (wrong types, NaN, infinity, huge and negative numbers, empty and huge strings, naive and
extreme instants, collections of those). Plausible values let a call get past its first check,
so the hostile value in another parameter reaches deeper.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

from hypothesis import strategies as st

OMIT = object()
"""Drawn for a parameter that keeps its default."""

HUGE_TEXT = "x" * 100_000
NAN = float("nan")
INF = float("inf")


def _noop(*args: object, **kwargs: object) -> None:
    return None


def _raises(*args: object, **kwargs: object) -> None:
    raise RuntimeError("a user callback that raises")


@cache
def scalars() -> st.SearchStrategy[object]:
    """Wrong in type or in range for almost any parameter."""
    return st.one_of(
        st.sampled_from(
            [
                None,
                True,
                False,
                0,
                -1,
                -5,
                2**63,
                2**64,
                10**400,
                -(10**400),
                NAN,
                INF,
                -INF,
                1e308,
                -1e308,
                1e-300,
                2.5,
                -0.0,
                "",
                " ",
                "no",
                "False",
                "nan",
                "-1",
                "9" * 5000 + "d",
                HUGE_TEXT,
                "\x00",
                "é😀",
                b"bytes",
                bytearray(b"x"),
                object(),
                _noop,
                _raises,
                int,
                Ellipsis,
                datetime(2024, 1, 1),  # naive
                datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
                datetime.max.replace(tzinfo=timezone(timedelta(hours=-14))),
                datetime.max.replace(tzinfo=UTC),
                timedelta(days=-1),
                timedelta.max,
                timedelta(0),
            ]
        ),
        st.integers(),
        st.floats(),
        st.text(max_size=8),
    )


@cache
def hostile() -> st.SearchStrategy[object]:
    """A hostile scalar, or a collection holding hostile scalars (or being the wrong kind)."""
    items = scalars()
    return st.one_of(
        items,
        st.lists(items, max_size=3),
        st.tuples(items),
        st.frozensets(st.sampled_from([None, 0, NAN, "", "x"]), max_size=2),
        st.dictionaries(st.sampled_from(["", "a", "dc01"]), items, max_size=2),
        st.dictionaries(st.sampled_from([0, None, NAN]), items, max_size=2),
        st.just([[1]]),
        st.just({"a": []}),
        st.just(iter([1, 2])),
    )


# --- plausible values, by the names in an annotation --------------------------------------------


@cache
def samples() -> dict[str, list[object]]:
    """Real objects of the public types, from the lab, keyed by type name (built once)."""
    from vmfailover import (
        Approval,
        CalendarDuration,
        Cluster,
        ClusterPolicy,
        Credentials,
        FailoverPlan,
        Finding,
        Fixed,
        LogNormal,
        NetworkMapping,
        PoweredOn,
        ReIPOverride,
        ReIPRule,
        ReIPRules,
        RetentionPolicy,
        RetryPolicy,
        StartOrder,
        Step,
        TCPPort,
        Uniform,
        VirtualClock,
    )
    from vmfailover.testing import LAB_DEPENDENCIES, LAB_NETWORK_MAP, lab

    backend = lab(start=datetime(2024, 1, 1, tzinfo=UTC))
    inventory = backend.inventory()
    order = StartOrder()
    for name, after in LAB_DEPENDENCIES.items():
        order.add(name, after=after)
    points = [p for r in inventory.replicas for p in backend.recovery_points(r.id)]
    rules = ReIPRules([ReIPRule("192.168.20.*", "10.20.0.*")])
    return {
        "Backend": [backend],
        "MemoryBackend": [backend],
        "Inventory": [inventory],
        "VM": list(inventory.vms[:3]),
        "Host": list(inventory.hosts[:3]),
        "Site": list(inventory.sites),
        "Network": list(inventory.networks[:2]),
        "Datastore": list(inventory.datastores),
        "Replica": list(inventory.replicas[:2]),
        "RecoveryPoint": points[:3],
        "Nic": [inventory.vms[0].nics[0]],
        "IPConfig": list(inventory.vms[0].nics[0].ip_configs),
        "StartOrder": [order],
        "CompiledOrder": [order.compile()],
        "FailoverPlan": [FailoverPlan("p", ("dc01", "db01"), order=None)],
        "NetworkMapping": [NetworkMapping(production=LAB_NETWORK_MAP)],
        "ReIPRules": [rules],
        "ReIPRule": list(rules.rules),
        "ReIPOverride": [ReIPOverride("dc01", "00:50:56:0a:00:01", dhcp=True)],
        "RetentionPolicy": [RetentionPolicy(last=3)],
        "CalendarDuration": [CalendarDuration(days=7)],
        "Cluster": [Cluster("prod-cluster", ("esx-a1", "esx-a2", "esx-a3"))],
        "ClusterPolicy": [ClusterPolicy()],
        "Credentials": [Credentials("admin", "pw")],
        "Clock": [VirtualClock(datetime(2024, 1, 1, tzinfo=UTC))],
        "RetryPolicy": [RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.01)],
        "Step": [Step("note", _noop)],
        "Approval": [Approval("go", approver=lambda request: True)],
        "Finding": [Finding("item", "message")],
        "Probe": [PoweredOn(), TCPPort(22)],
        "Distribution": [Fixed(5), Uniform(1, 2), LogNormal(30, 0.5)],
        "DurationSpec": [5, 30.0, Fixed(5)],
    }


_NAMES = ["dc01", "db01", "vm-001", "esx-a1", "site-a", "site-b", "Prod-App", "ds-a1", "a"]
_PRIMITIVES: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "str": lambda: st.one_of(st.sampled_from(_NAMES), st.text(min_size=1, max_size=8)),
    "int": lambda: st.integers(min_value=-2, max_value=50),
    "float": lambda: st.floats(min_value=0, max_value=1000),
    "bool": st.booleans,
    "datetime": lambda: st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    "timedelta": lambda: st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2)),
    "Callable": lambda: st.sampled_from([_noop, _raises]),
}
_WORD = re.compile(r"[A-Za-z_]+")


@cache
def plausible(annotation: str) -> st.SearchStrategy[object] | None:
    """Values of the types an annotation names (None if it names none we know)."""
    words = set(_WORD.findall(annotation))
    options: list[st.SearchStrategy[object]] = []
    for word in sorted(words):
        if word in _PRIMITIVES:
            options.append(_PRIMITIVES[word]())
        elif word in samples():
            options.append(st.sampled_from(samples()[word]))
    if not options:
        return None
    one = st.one_of(options)
    if words & {"Iterable", "Sequence", "tuple", "list", "frozenset", "Collection"}:
        one = st.one_of(one, st.lists(one, max_size=3))
    if words & {"Mapping", "dict"}:
        one = st.one_of(one, st.dictionaries(st.sampled_from(_NAMES), one, max_size=3))
    return one


@cache
def argument(annotation: str, has_default: bool) -> st.SearchStrategy[object]:
    """What one parameter gets: its default, a plausible value or a hostile one."""
    options = [hostile()]
    found = plausible(annotation)
    if found is not None:
        options.append(found)
    if has_default:
        options.append(st.just(OMIT))
    return st.one_of(options)
