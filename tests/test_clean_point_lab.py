"""The clean-point search's promise, on the lab, for every damage moment among 30 points.

Each lab VM is damaged from a different moment (at a point, or between two), so three labs cover
all 30 moments plus a VM never damaged; damage from the first point on is the VM damaged in every
point. For parallel 1, 4 and 8 the search must return exactly the newest undamaged point (or say
none is good) within its bounds: ceil(log2(31)) = 5 boots one at a time, ceil(log_(m+1)(31))
rounds of m; and the inventory and every disk afterwards must equal what they were before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import pytest

from vmfailover import BootedCopy, find_clean_point
from vmfailover.backends.memory import MemoryBackend
from vmfailover.policy.clean_point import ceil_log
from vmfailover.testing import LAB_TEST_NETWORK_MAP, LAB_VMS, lab

POINTS = 30
NEVER = POINTS  # a damage "moment" after the last point: never damaged


def not_damaged(copy: BootedCopy) -> bool:
    """The lab's check: read the guest's damage marker."""
    damaged: bool = copy.backend.damaged(copy.vm_id)  # type: ignore[attr-defined]
    return not damaged


def scenarios() -> Iterator[list[int]]:
    """Damage moments (point numbers, NEVER for none) for the VMs of each lab, 12 per lab."""
    moments = [*range(POINTS), NEVER]
    size = len(LAB_VMS)
    for start in range(0, len(moments), size):
        yield moments[start : start + size]


@pytest.fixture(scope="module", params=list(scenarios()), ids=lambda m: f"moments {m[0]}-{m[-1]}")
def damaged_lab(request: pytest.FixtureRequest) -> tuple[MemoryBackend, dict[str, int]]:
    backend = lab(points=POINTS)
    inventory = backend.inventory()
    moments = dict(zip(LAB_VMS, request.param, strict=False))
    for name, moment in moments.items():
        if moment == NEVER:
            continue
        points = backend.recovery_points(inventory.replica_of(name).id)
        # At the point itself, or up to 20 minutes before it (after the one before, an hour
        # earlier): either way the damage is first in point `moment`.
        since = points[moment].created_at - timedelta(minutes=10 * (moment % 3))
        backend.damage(inventory.vm(name).id, since=since)
    return backend, moments


@pytest.mark.parametrize("parallel", [1, 4, 8])
def test_the_newest_good_point_exactly_within_the_bounds(
    damaged_lab: tuple[MemoryBackend, dict[str, int]], parallel: int
) -> None:
    backend, moments = damaged_lab
    before = backend.inventory()
    disks = {vm.id: dict(backend.disk(vm.id)) for vm in before.vms}
    result = find_clean_point(
        backend, list(moments), not_damaged, parallel=parallel, network=LAB_TEST_NETWORK_MAP
    )
    assert len(result.groups) == len(moments)
    for name, moment in moments.items():
        group = result.group(name)
        points = backend.recovery_points(before.replica_of(name).id)
        assert len(group.candidates) == POINTS
        if moment == 0:
            assert group.clean is None and group.complete, group
            assert "no clean point among 30 points" in group.summary()
        else:
            assert group.clean is not None, group
            assert group.clean.points[name] == points[moment - 1], group
        assert group.rounds <= ceil_log(parallel + 1, POINTS + 1) == group.max_rounds
        assert all(len({v.index for v in group.verdicts if v.round == r}) <= parallel
                   for r in range(1, group.rounds + 1))  # fmt: skip
        if parallel == 1:
            assert group.boots <= math.ceil(math.log2(POINTS + 1)) == 5
        for verdict in group.verdicts:  # every verdict is the truth about its point
            assert verdict.good is (verdict.index < moment), verdict
        assert not group.warnings
    # Nothing left behind, production untouched.
    assert result.cleanup.restored, result.cleanup
    assert len(result.cleanup.removed) == result.boots
    assert backend.inventory() == before
    assert {vm.id: dict(backend.disk(vm.id)) for vm in before.vms} == disks
    assert "<svg" in result._repr_html_()


def test_a_scan_agrees_with_bisection_and_costs_more_boots(
    damaged_lab: tuple[MemoryBackend, dict[str, int]],
) -> None:
    backend, moments = damaged_lab
    names = list(moments)[:4]
    kwargs = {"network": LAB_TEST_NETWORK_MAP, "parallel": 2}
    bisected = find_clean_point(backend, names, not_damaged, **kwargs)  # type: ignore[arg-type]
    scanned = find_clean_point(backend, names, not_damaged, assume_monotone=False, **kwargs)  # type: ignore[arg-type]
    for name in names:
        one, other = bisected.group(name), scanned.group(name)
        assert one.clean == other.clean
        assert other.boots == min(POINTS, ((POINTS - moments[name]) // 2 + 1) * 2)
    assert scanned.boots >= bisected.boots


def test_a_group_damaged_in_one_vm_recovers_both_to_the_moment_before() -> None:
    backend = lab(points=POINTS)
    inventory = backend.inventory()
    app_points = backend.recovery_points(inventory.replica_of("app01").id)
    backend.damage(inventory.vm("app01").id, since=app_points[17].created_at)
    result = find_clean_point(
        backend, [["db01", "app01"]], not_damaged, parallel=4, network=LAB_TEST_NETWORK_MAP
    )
    group = result.groups[0]
    assert group.clean is not None
    db_points = backend.recovery_points(inventory.replica_of("db01").id)
    assert group.clean.points == {"db01": db_points[16], "app01": app_points[16]}
    assert result.recovery_points() == {
        "db01": db_points[16].created_at,
        "app01": app_points[16].created_at,
    }
    assert group.rounds <= 3
    assert backend.inventory() == inventory
