"""A hypothesis state machine over the lab: writes, syncs, test failovers and their cleanup,
planned and regular failovers, host and site loss, isolation and transient faults, in any order.

After every step it checks what must always hold: a source VM and its replica (or a test copy not
fenced off on isolated networks) never run at once; a test failover never touches a source or a
replica, their disks or their networks; a planned failover loses no block.
"""

from __future__ import annotations

import contextlib

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from vmfailover import (
    FailoverPlan,
    NetworkMapping,
    Outcome,
    PowerState,
    ReIPRule,
    ReIPRules,
    Runner,
)
from vmfailover.backends.memory import MemoryBackend
from vmfailover.engine.runner import RetryPolicy, Run
from vmfailover.errors import (
    ConflictError,
    TransientBackendError,
    ValidationError,
    VMFailoverError,
)
from vmfailover.model import Inventory
from vmfailover.testing import LAB_NETWORK_MAP, LAB_TEST_NETWORK_MAP, LAB_VMS, lab

NAMES = sorted(LAB_VMS)
HOSTS = ["esx-a1", "esx-a2", "esx-a3"]


class FailoverWorld(RuleBasedStateMachine):
    runs = Bundle("test_runs")

    def __init__(self) -> None:
        super().__init__()
        self.backend: MemoryBackend = lab(points=2)
        self.runner = Runner(
            self.backend,
            poll_interval=10.0,
            readiness_timeout=300.0,
            retry=RetryPolicy(attempts=10, initial_wait=0.5, max_wait=2),
        )
        self.cleaned: set[str] = set()

    def inventory(self) -> Inventory:
        """The inventory, read past injected faults (the checks must not be the ones failing)."""
        for _ in range(100):
            try:
                return self.backend.inventory()
            except TransientBackendError:
                continue
        raise AssertionError("the inventory could not be read in 100 attempts")

    # --- the world ----------------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), blocks=st.integers(1, 20))
    def write(self, name: str, blocks: int) -> None:
        vm = self.inventory().vm(name)
        with contextlib.suppress(VMFailoverError):  # off or unreachable: nothing is written
            self.backend.write(vm.id, blocks)

    @rule(name=st.sampled_from(NAMES))
    def sync(self, name: str) -> None:
        replica = self.inventory().replica_of(name)
        with contextlib.suppress(VMFailoverError):  # failed over, testing, unreachable
            self.backend.sync(replica.id)

    @rule(host=st.sampled_from(HOSTS))
    def lose_host(self, host: str) -> None:
        self.backend.fail_host(host)

    @rule(host=st.sampled_from(HOSTS))
    def isolate_host(self, host: str) -> None:
        self.backend.isolate_host(host)

    @rule(host=st.sampled_from(HOSTS))
    def restore_host(self, host: str) -> None:
        self.backend.restore_host(host)

    @rule()
    def lose_site(self) -> None:
        self.backend.fail_site("site-a")

    @rule(on=st.booleans(), seed=st.integers(0, 1000))
    def transient_faults(self, on: bool, seed: int) -> None:
        self.backend.faults.clear()
        if on:
            self.backend.faults.fail_randomly(0.2, seed=seed)

    # --- failovers ----------------------------------------------------------------------------

    def plan(self, names: list[str], power_off: str | None = None) -> FailoverPlan:
        return FailoverPlan(
            "drill",
            names,
            power_off_source=power_off,
            network=NetworkMapping(production=LAB_NETWORK_MAP, test=LAB_TEST_NETWORK_MAP),
            test_reip=ReIPRules([ReIPRule("192.168.0.0/16", "172.16.0.0/16")]),
        )

    @rule(target=runs, names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    def test_failover(self, names: list[str]) -> Run | None:
        before = self.production()
        try:
            run = self.runner.start(self.plan(names), kind="test")
            run.wait(timeout=120)
        except (ValidationError, ConflictError):
            event("test failover refused")
            return None
        event(f"test failover {run.wait().result.value}")
        assert self.production() == before, "a test failover touched production"
        return run

    @rule(run=runs)
    def cleanup(self, run: Run | None) -> None:
        if run is None or run.id in self.cleaned:
            return
        self.backend.faults.clear()
        report = self.runner.cleanup(run)
        assert report.cleanup is not None
        self.cleaned.add(run.id)

    @rule(names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    def planned_failover(self, names: list[str]) -> None:
        try:
            report = self.runner.failover(self.plan(names), kind="planned")
        except (ValidationError, ConflictError):
            event("planned failover refused")
            return
        event(f"planned failover {report.result.value}")
        for result in report.vms:
            if result.outcome is Outcome.READY:
                source = self.backend.disk(result.source_vm_id)
                replica = self.backend.disk(result.replica_vm_id or "")
                assert self.backend.blocks_differing(source, replica) == 0, result
                assert result.data_loss_blocks == 0

    @rule(
        names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True),
        power_off=st.sampled_from([None, "graceful", "graceful_then_force", "require_off"]),
    )
    def regular_failover(self, names: list[str], power_off: str | None) -> None:
        try:
            report = self.runner.failover(self.plan(names, power_off), kind="regular")
        except (ValidationError, ConflictError):
            event("regular failover refused")
            return
        event(f"regular failover {report.result.value}")

    # --- what always holds --------------------------------------------------------------------

    def production(self) -> object:
        """Sources and replica VMs with their disks: what a test must not change."""
        inventory = self.inventory()
        state = []
        for replica in inventory.replicas:
            for vm_id in (replica.source_vm, replica.replica_vm):
                state.append((inventory.vm(vm_id), dict(self.backend.disk(vm_id))))
        return state

    @invariant()
    def never_split_brain(self) -> None:
        inventory = self.inventory()
        for replica in inventory.replicas:
            source = inventory.vm(replica.source_vm)
            if source.power_state is not PowerState.ON:
                continue
            twin = inventory.vm(replica.replica_vm)
            assert twin.power_state is not PowerState.ON, f"{source.name} runs twice"
            for vm in inventory.vms:
                if vm.id.startswith(f"{replica.replica_vm}-test-") and (
                    vm.power_state is PowerState.ON
                ):
                    site = inventory.host(vm.host).site
                    assert all(inventory.network(site, n.network).isolated for n in vm.nics), (
                        f"test copy {vm.name} runs on a production network beside its source"
                    )


FailoverWorld.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFailoverWorld = FailoverWorld.TestCase
