"""The isolation response's verdict, sans IO: never restarts a VM the evidence says runs, never
restarts anything with leave_powered_on, and HostHealth releases each stopped VM once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover import (
    ConnectionState,
    IsolationResponse,
    PowerState,
    ValidationError,
    isolation_restarts,
)
from vmfailover.policy.host_health import (
    HealthEvent,
    HostHealth,
    HostObservation,
    HostState,
    WitnessVerdict,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
vm_ids = st.sampled_from([f"vm-{n}" for n in range(8)])
evidence = st.one_of(st.none(), st.dictionaries(vm_ids, st.sampled_from(PowerState)))


@given(st.sampled_from(IsolationResponse), st.sets(vm_ids), evidence)
def test_only_vms_seen_powered_off_restart(
    response: IsolationResponse, lost: set[str], seen: dict[str, PowerState] | None
) -> None:
    verdict = isolation_restarts(response, lost, seen)
    power = seen or {}
    assert all(power.get(vm) is PowerState.OFF for vm in verdict.restart)
    assert all(power.get(vm) is not PowerState.OFF for vm in verdict.running)
    assert set(verdict.restart) <= lost, "only VMs last seen running on the host"
    groups = (verdict.restart, verdict.running, verdict.unseen, verdict.held)
    assert sorted(vm for group in groups for vm in group) == sorted(lost), "each VM named once"
    if response is IsolationResponse.LEAVE_POWERED_ON:
        assert verdict.restart == ()
    else:
        assert verdict.held == ()
        assert set(verdict.restart) == {vm for vm in lost if power.get(vm) is PowerState.OFF}


def test_no_evidence_no_restart_and_bad_evidence_is_refused() -> None:
    verdict = isolation_restarts("power_off", ["vm-1", "vm-2"], None)
    assert verdict.restart == () and verdict.unseen == ("vm-1", "vm-2")
    assert "not seen by the witness" in str(verdict)
    with pytest.raises(ValidationError, match="isolation evidence of VM 'vm-1'"):
        isolation_restarts("power_off", ["vm-1"], {"vm-1": "sleeping"})
    with pytest.raises(ValidationError, match="isolation response"):
        isolation_restarts("reboot", ["vm-1"], {})


def look(at: float, vm_power: dict[str, PowerState] | None) -> HostObservation:
    return HostObservation(
        host="esx1",
        at=T0 + timedelta(seconds=at),
        monotonic=at,
        connection=ConnectionState.NOT_RESPONDING,
        witness=WitnessVerdict.ALIVE,
        lost_vms=("vm-1", "vm-2", "vm-3"),
        vm_power=vm_power,
    )


def test_health_releases_each_stopped_vm_once_per_partition() -> None:
    health = HostHealth(grace=10, isolation_response="shutdown")
    assert health.observe(look(0, None)).state is HostState.SUSPECT  # type: ignore[union-attr]
    on, off = PowerState.ON, PowerState.OFF
    partitioned = health.observe(look(10, {"vm-1": on, "vm-2": on, "vm-3": on}))
    assert partitioned is not None and partitioned.event is HealthEvent.SEEN_ALIVE
    assert partitioned.restart_vms == ()
    assert "still running: vm-1, vm-2, vm-3" in partitioned.reason
    first = health.observe(look(15, {"vm-1": off, "vm-2": on}))
    assert first is not None and first.event is HealthEvent.VMS_STOPPED
    assert first.state is HostState.PARTITIONED
    assert first.restart_vms == ("vm-1",)
    assert first.isolation is not None and first.isolation.running == ("vm-2",)
    assert first.isolation.unseen == ("vm-3",)
    assert "never restarted: vm-2" in first.reason
    assert health.observe(look(20, {"vm-1": off, "vm-2": on})) is None, "released once"
    second = health.observe(look(25, {"vm-1": off, "vm-2": off, "vm-3": off}))
    assert second is not None and second.restart_vms == ("vm-2", "vm-3")


@given(st.lists(evidence, min_size=1, max_size=6))
def test_leave_powered_on_never_releases_and_a_released_vm_never_runs(
    looks: list[dict[str, PowerState] | None],
) -> None:
    for response in IsolationResponse:
        health = HostHealth(grace=0, isolation_response=response)
        released: list[str] = []
        for step, seen in enumerate(looks):
            decision = health.observe(look(float(step), seen))
            restart = () if decision is None else decision.restart_vms
            assert restart is not None
            for vm in restart:
                assert (seen or {}).get(vm) is PowerState.OFF
            released += restart
        assert len(released) == len(set(released)), "never released twice"
        if response is IsolationResponse.LEAVE_POWERED_ON:
            assert released == []


def test_a_failed_host_is_not_judged_by_its_isolation_response() -> None:
    health = HostHealth(grace=0, isolation_response="power_off")
    down = attrs.evolve(look(0, None), witness=WitnessVerdict.DOWN)
    assert health.observe(down).state is HostState.FAILED  # type: ignore[union-attr]
    assert health.observe(look(5, {"vm-1": PowerState.OFF})) is not None
    assert health.state("esx1") is HostState.FAILED
    assert health.classify(look(6, {"vm-1": PowerState.OFF})) is HealthEvent.SEEN_ALIVE


def test_health_refuses_an_unknown_response_and_bad_vm_power() -> None:
    with pytest.raises(ValidationError, match="HostHealth isolation_response"):
        HostHealth(10, "reboot")
    with pytest.raises(ValidationError, match="HostObservation vm_power"):
        look(0, ["vm-1"])  # type: ignore[arg-type]
