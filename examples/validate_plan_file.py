"""Load a plan from a TOML file, check it against the lab for each kind, and show what changed.

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
    print(f"loaded {plan.name!r}: {len(plan.vms)} VMs, RPO {plan.rpo:g} s, RTO {plan.rto:g} s")

    backend = lab()
    for kind in ("test", "planned", "regular"):
        findings = plan.validate(backend, kind)
        blocking = [finding for finding in findings if finding.blocking]
        print(f"{kind}: {len(blocking)} blocking, {len(findings) - len(blocking)} warnings")
        for finding in findings[:3]:
            print(f"  {finding.severity.value}: {finding}")

    # A regular failover is for when site A is gone; then the same plan passes.
    backend.fail_site("site-a")
    assert not [f for f in plan.validate(backend, "regular") if f.blocking]
    print("regular, after losing site A: ready to run")

    changed = attrs.evolve(plan, rto="20m")
    print(f"plan saved back as TOML: {len(changed.to_toml().splitlines())} lines")


if __name__ == "__main__":
    main()
