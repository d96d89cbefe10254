"""What differs between two inventories: the proof that a cleanup or an undo left nothing behind.

A test failover's cleanup and a run's undo are proven by comparing the inventory before the run
with the one after; a clean-point search proves the same for each trial boot. Each difference is
a sentence naming the item (site, host, datastore, network, VM or replica) and, for a changed
item, every field that changed with its old and new value.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from vmfailover.model import Inventory

__all__ = ["inventory_differences"]


def inventory_differences(
    before: Inventory, after: Inventory, *, only: Collection[str] | None = None
) -> list[str]:
    """Every site, host, datastore, network, VM and replica that differs between two inventories
    (those whose key is in ``only``, when given)."""
    differences: list[str] = []
    tables = (
        ("site", lambda i: {s.name: s for s in i.sites}),
        ("host", lambda i: {h.name: h for h in i.hosts}),
        ("datastore", lambda i: {d.name: d for d in i.datastores}),
        ("network", lambda i: {f"{n.site}/{n.name}": n for n in i.networks}),
        ("VM", lambda i: {v.id: v for v in i.vms}),
        ("replica", lambda i: {r.id: r for r in i.replicas}),
    )
    for what, index in tables:
        old, new = index(before), index(after)
        if only is not None:
            old = {key: value for key, value in old.items() if key in only}
            new = {key: value for key, value in new.items() if key in only}
        for key in sorted(old.keys() - new.keys()):
            differences.append(f"{what} {key!r} is gone")
        for key in sorted(new.keys() - old.keys()):
            differences.append(f"{what} {key!r} is new")
        for key in sorted(old.keys() & new.keys()):
            if old[key] != new[key]:
                changed = [
                    f"{field.name} {getattr(old[key], field.name)!r} -> "
                    f"{getattr(new[key], field.name)!r}"
                    for field in attrs.fields(type(old[key]))
                    if getattr(old[key], field.name) != getattr(new[key], field.name)
                ]
                differences.append(f"{what} {key!r} changed: {'; '.join(changed)}")
    return differences
