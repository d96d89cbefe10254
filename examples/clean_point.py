"""Find the newest recovery point of the lab's database that is not encrypted, with few boots.

The lab's db01 is "encrypted" from a moment on (a lab fault); the search boots isolated test
copies of its points, checks each, removes them, and hands the newest clean point to a plan.
Run it: ``python examples/clean_point.py``. It touches nothing outside this process.
"""

from vmfailover import BootedCopy, FailoverPlan, NetworkMapping, Runner, find_clean_point
from vmfailover.testing import LAB_NETWORK_MAP, LAB_TEST_NETWORK_MAP, lab


def main() -> None:
    backend = lab(points=48)  # two days of hourly recovery points
    points = backend.recovery_points("replica-vm-003")
    backend.damage("vm-003", since=points[31].created_at)  # ransomware, 16 hours ago

    def database_opens(copy: BootedCopy) -> bool:
        """A real check would log in and open the database; the lab's guest carries a marker."""
        return not backend.damaged(copy.vm_id)

    result = find_clean_point(
        backend, "db01", database_opens, parallel=3, network=LAB_TEST_NETWORK_MAP
    )
    print(result)
    group = result.group("db01")
    assert group.clean is not None
    assert group.clean.points["db01"] == points[30]
    assert group.rounds <= group.max_rounds == 3  # ceil(log4(49))

    # The answer plugs into a plan; its test failover recovers db01 to exactly that point.
    plan = FailoverPlan(
        "database",
        ["db01"],
        network=NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
        recovery_point=result.recovery_points(),
    )
    runner = Runner(backend)
    run = runner.start(plan, kind="test")
    report = run.wait(timeout=60)
    assert report.vms[0].recovery_point == points[30].id
    print(runner.cleanup(run).cleanup.summary())  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
