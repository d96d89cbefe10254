"""Load a plan from a TOML file, check it against the lab for each kind, and review a change.

The plan (``examples/lab-plan.toml``) is the one a team would review in a pull request. Run it:
``python examples/validate_plan_file.py``. It touches nothing outside this process.
"""

from pathlib import Path

import attrs

from vmfailover.plan import FailoverPlan
from vmfailover.testing import lab

PLAN_FILE = Path(__file__).with_name("lab-plan.toml")


def main() -> None:
    plan = FailoverPlan.load(PLAN_FILE)
    print(plan)  # a summary line and the VMs in start order (in Jupyter: a table and a graph)

    backend = lab()
    for kind in ("test", "planned", "regular"):
        findings = plan.validate(backend, kind)  # reads only; changes nothing
        print(f"\n{kind} failover pre-flight: {findings}")

    # A regular failover is for when site A is gone; then the same plan passes.
    backend.fail_site("site-a")
    findings = plan.validate(backend, "regular")
    print(f"\nregular failover after losing site A: {findings}")
    assert not findings.blocking

    # A reviewer's view of a change: a longer RTO, and the web tier waits for monitoring too.
    order = plan.start_order()
    changed_order = type(order)(max_parallel=order.max_parallel, groups=order.groups)
    for resource, capacity in order.limits.items():
        changed_order.limit(resource, capacity)
    for entry in order:
        after = (*entry.after, "mon01") if entry.name.startswith("web") else entry.after
        changed_order.add(
            entry.name,
            after=after,
            group=entry.group,
            probe=entry.probe,
            timeout=entry.timeout,
            on_failure=entry.on_failure,
            resources=entry.resources,
        )
    proposed = attrs.evolve(plan, rto="20m", order=changed_order)
    print()
    print(plan.diff(proposed))
    assert FailoverPlan.load(proposed.to_toml()) == proposed  # what it saves, it reads back


if __name__ == "__main__":
    main()
