"""Lose site A of the lab and fail its application over to site B, in dependency order.

Run it: ``python examples/regular_failover.py``. It touches nothing outside this process.
"""

from vmfailover import Runner, StartOrder
from vmfailover.testing import LAB_DEPENDENCIES, lab


def main() -> None:
    backend = lab()  # a three-tier application on site A, replicated to site B
    backend.clock.set_rate(600)  # lab time runs 600x faster than real time

    # Directory servers first, then databases, application and web servers: each VM starts as
    # soon as everything in its `after` is ready.
    order = StartOrder(max_parallel=6)
    for vm, after in LAB_DEPENDENCIES.items():
        order.add(vm, after=after)

    backend.fail_site("site-a")  # the disaster

    runner = Runner(backend, poll_interval=2.0)
    report = runner.failover(order, kind="regular", recovery_point="latest", rto=15 * 60)
    print(report)
    assert report.result == "succeeded", report.summary()


if __name__ == "__main__":
    main()
