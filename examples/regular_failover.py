"""Lose site A of the lab and fail its application over to site B, in dependency order.

First predict the RTO with the runner's own sequencer in virtual time, then run the failover and
compare. Run it: ``python examples/regular_failover.py``. It touches nothing outside this process.
"""

from vmfailover import Runner, StartOrder, simulate
from vmfailover.testing import LAB_DEPENDENCIES, LAB_VMS, lab


def main() -> None:
    backend = lab()  # a three-tier application on site A, replicated to site B
    backend.clock.set_rate(200)  # lab time runs 200x faster than real time

    # Directory servers first, then databases, application and web servers: each VM starts as
    # soon as everything in its `after` is ready.
    order = StartOrder(max_parallel=6)
    for vm, after in LAB_DEPENDENCIES.items():
        order.add(vm, after=after)

    # Each lab VM's boot time; the runner and the simulation weigh paths by the same numbers.
    boots = {vm: LAB_VMS[vm][3] for vm in order.vms}
    runner = Runner(backend, poll_interval=2.0)
    predicted = simulate(order, boots, workers=runner.max_parallel)
    path = " -> ".join(predicted.critical_path)
    print(f"predicted RTO {predicted.rto:.0f} s (critical path {path})")

    backend.fail_site("site-a")  # the disaster

    report = runner.failover(
        order, kind="regular", recovery_point="latest", rto=15 * 60, weights=boots
    )
    print(report)
    print(f"measured / predicted RTO: {report.rto_seconds / predicted.rto:.2f}")
    assert report.result == "succeeded", report.summary()


if __name__ == "__main__":
    main()
