"""The Hyper-V Replica cycle across two hosts, and the transitions Hyper-V refuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from vmfailover.testing.hyperv._objects import Call, cmd
from vmfailover.testing.hyperv.model import HyperVStateError, SnapshotRecord

from .conftest import (
    HyperVPair,
    error_ids,
    names,
    ok,
    only_error,
    prop,
    start_replication,
    text,
    type_name,
)

CMDS = "Microsoft.HyperV.PowerShell.Commands."
NO = {"Confirm": False}


@pytest.fixture
def pair(hv_pair: HyperVPair) -> HyperVPair:
    """web01 (running) replicating hv-a -> hv-b, three recovery points (data versions 1..3)."""
    for model in (hv_pair.primary_model, hv_pair.replica_model):
        model.add_switch("Prod")
    hv_pair.replica_model.add_switch("TestNet", "Private")
    hv_pair.primary_model.add_vm("web01", switch="Prod", state="Running", memory_mb=2048)
    hv_pair.primary_model.add_vm("plain")
    start_replication(hv_pair, "web01", cycles=3)
    return hv_pair


def state(shell: object, vm: str = "web01") -> tuple[str, str, str]:
    """(VM state, replication mode, replication state) as Get-VM reports them."""
    out = ok(shell.run(cmd("Get-VM", vm))).output[0]  # type: ignore[attr-defined]
    return text(out, "State"), text(out, "ReplicationMode"), text(out, "ReplicationState")


def recovery_points(pair: HyperVPair) -> list[object]:
    return list(ok(pair.replica.run(cmd("Get-VMSnapshot", "web01", SnapshotType="Replica"))).output)


def test_enable_and_initial_replication_states(hv_pair: HyperVPair) -> None:
    hv_pair.primary_model.add_vm("app", state="Running")
    ok(hv_pair.primary.run(cmd("Enable-VMReplication", "app", "hv-b", 80, "Kerberos")))
    assert state(hv_pair.primary, "app") == ("Running", "Primary", "ReadyForInitialReplication")
    assert state(hv_pair.replica, "app") == ("Off", "Replica", "WaitingForInitialReplication")
    assert prop(ok(hv_pair.replica.run(cmd("Get-VM", "app"))).output[0], "Id") == (
        hv_pair.primary_model.vm("app").id
    )
    ok(hv_pair.primary.run(cmd("Start-VMInitialReplication", "app")))
    assert state(hv_pair.primary, "app") == ("Running", "Primary", "Replicating")
    assert state(hv_pair.replica, "app") == ("Off", "Replica", "Replicating")


def test_recovery_points_are_replica_checkpoints_kept_to_recovery_history(pair: HyperVPair) -> None:
    points = recovery_points(pair)
    assert len(points) == 3
    assert all(type_name(p) == "Microsoft.HyperV.PowerShell.VMSnapshot" for p in points)
    assert [text(p, "SnapshotType") for p in points] == ["Replica"] * 3
    assert all(prop(p, "VMName") == "web01" for p in points)
    times = [prop(p, "CreationTime") for p in points]
    assert times == sorted(times)
    for _ in range(3):
        pair.primary_model.replicate("web01", app_consistent=True)
    assert len(recovery_points(pair)) == 1
    app = ok(pair.replica.run(cmd("Get-VMSnapshot", "web01", SnapshotType="AppConsistentReplica")))
    assert len(app.output) == 3


def test_test_failover_creates_and_cleans_up_a_test_vm(pair: HyperVPair) -> None:
    point = recovery_points(pair)[0]
    refused = pair.replica.run(cmd("Start-VMFailover", VMRecoverySnapshot=point, AsTest=None))
    assert error_ids(refused) == [f"HostFunctionNotImplemented,{CMDS}StartVMFailover"]
    pair.replica_model.vm("web01").adapters[0].test_replica_switch_name = "TestNet"
    result = ok(pair.replica.run(cmd("Start-VMFailover", point, AsTest=None, **NO)))
    test_vm = result.output[0]
    assert type_name(test_vm) == "Microsoft.HyperV.PowerShell.VirtualMachine"
    assert prop(test_vm, "Name") == "web01 - Test"
    assert text(test_vm, "ReplicationMode") == "TestReplica"
    assert prop(test_vm, "Id") != pair.primary_model.vm("web01").id
    record = pair.replica_model.vm(prop(test_vm, "Id"))
    assert record.data_version == 1
    assert record.adapters[0].switch_name == "TestNet"
    rep = ok(pair.replica.run(cmd("Get-VMReplication", "web01"))).output[0]
    assert "web01 - Test" in text(rep, "TestVirtualMachine")
    # replication goes on during the test; only one test at a time
    pair.primary_model.write_data("web01")
    pair.primary_model.replicate("web01")
    again = pair.replica.run(cmd("Start-VMFailover", "web01", AsTest=None, **NO))
    assert error_ids(again) == [f"InvalidState,{CMDS}StartVMFailover"]
    ok(pair.replica.run(cmd("Start-VM", "web01 - Test")))
    ok(pair.replica.run(cmd("Stop-VMFailover", "web01")))
    assert sorted(names(ok(pair.replica.run(cmd("Get-VM"))))) == ["web01"]
    assert state(pair.replica) == ("Off", "Replica", "Replicating")
    rep = ok(pair.replica.run(cmd("Get-VMReplication", "web01"))).output[0]
    assert prop(rep, "TestVirtualMachine") is None


def test_test_failover_by_name_and_by_vm_object(pair: HyperVPair) -> None:
    ok(pair.replica.run(cmd("Start-VMFailover", VMName="web01", AsTest=None, **NO)))
    assert pair.replica_model.test_vm_of(pair.replica_model.vm("web01")).data_version == 3  # type: ignore[union-attr]
    vm = ok(pair.replica.run(cmd("Get-VM", "web01"))).output[0]
    ok(pair.replica.run(cmd("Stop-VMFailover", VM=vm, Passthru=None)))
    ok(pair.replica.run(cmd("Start-VMFailover", VM=vm, AsTest=None, **NO)))
    ok(pair.replica.run(cmd("Get-VM", "web01"), cmd("Stop-VMFailover")))
    assert len(pair.replica_model.vms) == 1


def test_planned_failover_prepare_failover_reverse_start(pair: HyperVPair) -> None:
    a, b = pair.primary, pair.replica
    not_off = a.run(cmd("Start-VMFailover", "web01", Prepare=None, **NO))
    assert error_ids(not_off) == [f"InvalidState,{CMDS}StartVMFailover"]
    ok(a.run(cmd("Stop-VM", "web01")))
    pair.primary_model.write_data("web01")  # pending changes, not yet replicated
    prompt = a.run(cmd("Start-VMFailover", "web01", Prepare=None))
    assert error_ids(prompt) == [f"HostFunctionNotImplemented,{CMDS}StartVMFailover"]
    assert state(a) == ("Off", "Primary", "Replicating")
    ok(a.run(cmd("Start-VMFailover", "web01", Prepare=None, **NO)))
    assert state(a) == ("Off", "Primary", "PreparedForFailover")
    assert error_ids(a.run(cmd("Start-VM", "web01"))) == [f"InvalidState,{CMDS}StartVM"]
    ok(b.run(cmd("Start-VMFailover", "web01", **NO)))
    assert state(b) == ("Off", "Replica", "FailedOverWaitingCompletion")
    assert pair.replica_model.vm("web01").data_version == 4  # the pending change arrived
    ok(b.run(cmd("Set-VMReplication", "web01", Reverse=None)))
    assert state(b) == ("Off", "Primary", "Replicating")
    assert state(a) == ("Off", "Replica", "Replicating")
    reversed_rep = ok(b.run(cmd("Get-VMReplication", "web01"))).output[0]
    assert prop(reversed_rep, "ReplicaServerName") == "hv-a"
    assert prop(reversed_rep, "PrimaryServerName") == "hv-b"
    ok(b.run(cmd("Start-VM", "web01")))
    assert state(b) == ("Running", "Primary", "Replicating")
    pair.replica_model.write_data("web01")
    pair.replica_model.replicate("web01")
    back = ok(a.run(cmd("Get-VMSnapshot", "web01", SnapshotType="Replica")))
    assert len(back.output) == 1
    assert pair.primary_model.vm("web01").data_version == 5


def test_cancelling_a_prepared_planned_failover(pair: HyperVPair) -> None:
    ok(pair.primary.run(cmd("Stop-VM", "web01")))
    ok(pair.primary.run(cmd("Start-VMFailover", "web01", Prepare=None, **NO)))
    ok(pair.primary.run(cmd("Stop-VMFailover", "web01")))
    assert state(pair.primary) == ("Off", "Primary", "Replicating")
    ok(pair.primary.run(cmd("Start-VM", "web01")))


def test_unplanned_failover_to_a_chosen_point_then_complete(pair: HyperVPair) -> None:
    a, b = pair.primary, pair.replica
    ok(
        b.run(
            cmd(
                "Set-VMNetworkAdapterFailoverConfiguration",
                "web01",
                IPv4Address="10.2.0.9",
                IPv4SubnetMask="255.255.0.0",
            )
        )
    )
    pair.primary_model.set_state("web01", "Off")  # the primary site is lost
    points = recovery_points(pair)
    chosen = points[1]
    ok(b.run(cmd("Start-VMFailover", VMRecoverySnapshot=chosen, Confirm=False)))
    vm = pair.replica_model.vm("web01")
    assert vm.data_version == 2
    assert vm.adapters[0].applied_ip is None  # injected as the guest boots, not before
    assert state(b) == ("Off", "Replica", "FailedOverWaitingCompletion")
    ok(b.run(cmd("Start-VM", "web01")))
    assert vm.adapters[0].applied_ip is not None
    assert vm.adapters[0].applied_ip.ipv4_address == "10.2.0.9"
    adapter = ok(b.run(cmd("Get-VMNetworkAdapter", "web01"))).output[0]
    assert prop(adapter, "IPAddresses") == ["10.2.0.9"]
    assert error_ids(b.run(cmd("Complete-VMFailover", "web01"))) == [
        f"HostFunctionNotImplemented,{CMDS}CompleteVMFailover"
    ]
    ok(b.run(cmd("Complete-VMFailover", "web01", WhatIf=None)))
    assert state(b)[2] == "FailedOverWaitingCompletion"
    replica_vm = ok(b.run(cmd("Get-VM", "web01"))).output[0]
    done = ok(b.run(cmd("Complete-VMFailover", VM=replica_vm, Passthru=None, **NO)))
    assert text(done.output[0], "ReplicationState") == "FailedOver"
    assert error_ids(b.run(cmd("Get-VMSnapshot", "web01", SnapshotType="Replica"))) == [
        f"ObjectNotFound,{CMDS}GetVMSnapshot"
    ]
    assert [s.snapshot_type for s in vm.snapshots] == []
    # irreversible
    assert error_ids(b.run(cmd("Stop-VMFailover", "web01"))) == [
        f"InvalidState,{CMDS}StopVMFailover"
    ]
    assert vm.data_version == 2
    # reverse after an unplanned failover: needs an initial replication back
    ok(b.run(cmd("Set-VMReplication", "web01", Reverse=None)))
    assert state(b) == ("Running", "Primary", "ReadyForInitialReplication")
    assert state(a) == ("Off", "Replica", "WaitingForInitialReplication")
    ok(b.run(cmd("Start-VMInitialReplication", "web01")))
    assert state(a)[2] == "Replicating"
    assert pair.primary_model.vm("web01").data_version == 2


def test_unplanned_failover_to_latest_then_revert(pair: HyperVPair) -> None:
    b = pair.replica
    vm = ok(b.run(cmd("Get-VM", "web01"))).output[0]
    out = ok(b.run(cmd("Start-VMFailover", VM=vm, Passthru=None, **NO)))
    assert text(out.output[0], "ReplicationState") == "FailedOverWaitingCompletion"
    ok(b.run(cmd("Start-VM", "web01")))
    ok(b.run(cmd("Stop-VMFailover", "web01", Passthru=None)))
    assert state(b) == ("Off", "Replica", "Replicating")
    assert len(recovery_points(pair)) == 3


def test_failover_to_a_point_and_revert_restores_the_latest_data(pair: HyperVPair) -> None:
    first = recovery_points(pair)[0]
    ok(pair.replica.run(cmd("Start-VMFailover", first, **NO)))
    assert pair.replica_model.vm("web01").data_version == 1
    ok(pair.replica.run(cmd("Stop-VMFailover", "web01")))
    assert pair.replica_model.vm("web01").data_version == 3


def test_get_vmsnapshot_piped_into_start_vmfailover(pair: HyperVPair) -> None:
    newest = ok(pair.replica.run(cmd("Get-VMSnapshot", "web01", "*", SnapshotType="Replica")))
    piped = pair.replica.run(
        cmd("Get-VMSnapshot", "web01", SnapshotType="Replica"),
        cmd("Start-VMFailover", AsTest=None, **NO),
    )
    # the first point makes the test VM; the next two find a test already running
    assert names(piped) == ["web01 - Test"]
    assert error_ids(piped) == [f"InvalidState,{CMDS}StartVMFailover"] * 2
    assert not any(e.terminating for e in piped.errors)
    assert len(newest.output) == 3
    ok(pair.replica.run(cmd("Stop-VMFailover", "web01")))
    real = pair.replica.run(
        cmd("Get-VMSnapshot", "web01", SnapshotType="Replica"),
        cmd("Start-VMFailover", **NO),
    )
    # the first (oldest) point fails the VM over; it is then no longer failover-able
    assert error_ids(real) == [f"InvalidState,{CMDS}StartVMFailover"] * 2
    assert pair.replica_model.vm("web01").data_version == 1


@pytest.mark.parametrize(
    ("side", "call", "error_id"),
    [
        ("replica", cmd("Start-VM", "web01"), "InvalidState,StartVM"),
        ("primary", cmd("Start-VMFailover", "web01", **NO), "InvalidParameter,StartVMFailover"),
        (
            "primary",
            cmd("Start-VMFailover", "web01", AsTest=None, **NO),
            "InvalidParameter,StartVMFailover",
        ),
        ("primary", cmd("Start-VMFailover", "plain", **NO), "OperationFailed,StartVMFailover"),
        (
            "replica",
            cmd("Start-VMFailover", "web01", Prepare=None, **NO),
            "InvalidParameter,StartVMFailover",
        ),
        ("replica", cmd("Complete-VMFailover", "web01", **NO), "InvalidState,CompleteVMFailover"),
        (
            "primary",
            cmd("Complete-VMFailover", "web01", **NO),
            "OperationFailed,CompleteVMFailover",
        ),
        (
            "primary",
            cmd("Complete-VMFailover", "plain", **NO),
            "OperationFailed,CompleteVMFailover",
        ),
        ("replica", cmd("Stop-VMFailover", "web01"), "InvalidState,StopVMFailover"),
        ("primary", cmd("Stop-VMFailover", "web01"), "InvalidState,StopVMFailover"),
        (
            "replica",
            cmd("Set-VMReplication", "web01", Reverse=None),
            "InvalidState,SetVMReplication",
        ),
        (
            "replica",
            cmd("Start-VMInitialReplication", "web01"),
            "InvalidState,StartVMInitialReplication",
        ),
        (
            "replica",
            cmd("Enable-VMReplication", "web01", "hv-a", 80, "Kerberos"),
            "OperationFailed,EnableVMReplication",
        ),
        ("replica", cmd("Checkpoint-VM", "web01"), "InvalidState,CheckpointVM"),
        ("primary", cmd("Start-VMFailover", "ghost", **NO), "ObjectNotFound,StartVMFailover"),
    ],
)
def test_illegal_transitions_give_hyper_v_errors(
    pair: HyperVPair, side: str, call: Call, error_id: str
) -> None:
    shell = pair.primary if side == "primary" else pair.replica
    before = (state(pair.primary), state(pair.replica))
    error = only_error(shell.run(call))
    error_code, class_name = error_id.split(",")
    assert error.fully_qualified_error_id == f"{error_code},{CMDS}{class_name}"
    assert error.category in {"InvalidOperation", "InvalidArgument", "ObjectNotFound"}
    assert (state(pair.primary), state(pair.replica)) == before


def test_replica_failover_needs_a_received_replication(hv_pair: HyperVPair) -> None:
    hv_pair.primary_model.add_vm("new")
    ok(hv_pair.primary.run(cmd("Enable-VMReplication", "new", "hv-b", 80, "Kerberos")))
    result = hv_pair.replica.run(cmd("Start-VMFailover", "new", **NO))
    assert error_ids(result) == [f"InvalidState,{CMDS}StartVMFailover"]


def test_replica_must_be_off_to_fail_over(pair: HyperVPair) -> None:
    pair.replica_model.set_state("web01", "Running")
    assert error_ids(pair.replica.run(cmd("Start-VMFailover", "web01", **NO))) == [
        f"InvalidState,{CMDS}StartVMFailover"
    ]


def test_reverse_needs_the_old_primary_off(pair: HyperVPair) -> None:
    ok(pair.replica.run(cmd("Start-VMFailover", "web01", **NO)))
    result = pair.replica.run(cmd("Set-VMReplication", "web01", Reverse=None))
    assert error_ids(result) == [f"InvalidState,{CMDS}SetVMReplication"]
    cert = pair.replica.run(
        cmd("Set-VMReplication", "web01", Reverse=None, AuthenticationType="Certificate")
    )
    assert error_ids(cert) == [f"InvalidParameter,{CMDS}SetVMReplication"]


def test_test_vm_is_not_a_replication_target(pair: HyperVPair) -> None:
    ok(pair.replica.run(cmd("Start-VMFailover", "web01", AsTest=None, **NO)))
    assert error_ids(pair.replica.run(cmd("Stop-VMFailover", "web01 - Test"))) == [
        f"OperationFailed,{CMDS}StopVMFailover"
    ]
    assert error_ids(
        pair.replica.run(cmd("Enable-VMReplication", "web01 - Test", "hv-a", 80, "Kerberos"))
    ) == [f"OperationFailed,{CMDS}EnableVMReplication"]


def test_a_non_recovery_checkpoint_is_refused_as_failover_point(pair: HyperVPair) -> None:
    vm = pair.replica_model.vm("web01")
    standard = SnapshotRecord(
        id=uuid.uuid4(),
        name="manual",
        vm_id=vm.id,
        snapshot_type="Standard",
        creation_time=datetime.now(UTC),
        parent_id=None,
        state="Off",
        data_version=0,
        adapters=[],
    )
    with pytest.raises(HyperVStateError) as caught:
        pair.replica_model.failover(vm, standard)
    assert caught.value.error_id == "InvalidParameter"
    assert pair.replica_model.vm("web01").replication.state == "Replicating"  # type: ignore[union-attr]
