"""Each cmdlet in each of its parameter sets, named and positional, through a Shell."""

from __future__ import annotations

import uuid

import pytest

from vmfailover.testing.hyperv._objects import Call, cmd

from .conftest import (
    HyperVPair,
    HyperVSingle,
    error_ids,
    names,
    ok,
    only_error,
    prop,
    start_replication,
    text,
    type_name,
)

GETVM = "Microsoft.HyperV.PowerShell.Commands.GetVM"


@pytest.fixture
def host(hv: HyperVSingle) -> HyperVSingle:
    hv.model.add_switch("Prod")
    hv.model.add_switch("Isolated", "Private")
    hv.model.add_vm("web01", switch="Prod", state="Running", memory_mb=2048, cpu=2)
    hv.model.add_vm("web02", switch="Prod")
    hv.model.add_vm("db01", adapters=2)
    return hv


@pytest.fixture
def replicating(hv_pair: HyperVPair) -> HyperVPair:
    """web01 replicating hv-a -> hv-b with two recovery points; db01 not replicated."""
    for model in (hv_pair.primary_model, hv_pair.replica_model):
        model.add_switch("Prod")
    hv_pair.primary_model.add_vm("web01", switch="Prod", state="Running")
    hv_pair.primary_model.add_vm("db01", switch="Prod")
    start_replication(hv_pair, "web01", cycles=2)
    return hv_pair


# ------------------------------------------------------------------------------ Get-VM


def test_get_vm_lists_every_vm_with_hyper_v_types(host: HyperVSingle) -> None:
    result = ok(host.shell.run(cmd("Get-VM")))
    assert sorted(names(result)) == ["db01", "web01", "web02"]
    web = next(o for o in result.output if prop(o, "Name") == "web01")
    assert type_name(web) == "Microsoft.HyperV.PowerShell.VirtualMachine"
    assert text(web, "State") == "Running"
    assert prop(web, "State").value == 2
    assert text(web, "ReplicationMode") == "None"
    assert text(web, "ReplicationState") == "Disabled"
    assert prop(web, "ComputerName") == "hv-a"
    assert prop(web, "ProcessorCount") == 2
    assert prop(web, "MemoryStartup") == 2048 * 1024 * 1024
    assert prop(web, "Id") == host.model.vm("web01").id


@pytest.mark.parametrize(
    "call",
    [
        cmd("Get-VM", "web01"),
        cmd("Get-VM", Name="web01"),
        cmd("Get-VM", VMName="web01"),
        cmd("get-vm", name="WEB01"),
        cmd("Get-VM", N=["web01"]),
        cmd("Hyper-V\\Get-VM", "web0[1]"),
        cmd("Get-VM", "*eb01"),
    ],
)
def test_get_vm_by_name_named_positional_alias_prefix(host: HyperVSingle, call: Call) -> None:
    assert names(ok(host.shell.run(call))) == ["web01"]


def test_get_vm_by_id_named_and_positional(host: HyperVSingle) -> None:
    ident = host.model.vm("db01").id
    assert names(ok(host.shell.run(cmd("Get-VM", Id=ident)))) == ["db01"]
    assert names(ok(host.shell.run(cmd("Get-VM", ident)))) == ["db01"]
    assert names(ok(host.shell.run(cmd("Get-VM", Id=str(ident))))) == ["db01"]


def test_get_vm_misses(host: HyperVSingle) -> None:
    missing = host.shell.run(cmd("Get-VM", ["nope", "web01"]))
    assert names(missing) == ["web01"]
    error = only_error(missing)
    assert error.fully_qualified_error_id == f"InvalidParameter,{GETVM}"
    assert error.category == "InvalidArgument"
    assert not error.terminating
    assert ok(host.shell.run(cmd("Get-VM", "nope*"))).output == ()
    by_id = host.shell.run(cmd("Get-VM", Id=uuid.uuid4()))
    assert error_ids(by_id) == [f"ObjectNotFound,{GETVM}"]
    assert by_id.errors[0].category == "ObjectNotFound"


def test_get_vm_cluster_object_set(host: HyperVSingle) -> None:
    result = host.shell.run(cmd("Get-VM", ClusterObject="cluster-group"))
    assert error_ids(result) == [f"InvalidParameter,{GETVM}"]


def test_get_vm_computer_name_reaches_fabric_hosts(hv_pair: HyperVPair) -> None:
    hv_pair.replica_model.add_vm("far")
    assert names(ok(hv_pair.primary.run(cmd("Get-VM", ComputerName="hv-b")))) == ["far"]
    assert names(ok(hv_pair.primary.run(cmd("Get-VM", ComputerName="localhost")))) == []
    assert error_ids(hv_pair.primary.run(cmd("Get-VM", ComputerName="nowhere"))) == [
        f"InvalidParameter,{GETVM}"
    ]


def test_error_action_stop_and_silently_continue(host: HyperVSingle) -> None:
    stopped = host.shell.run(cmd("Get-VM", ["nope", "web01"], ErrorAction="Stop"))
    assert stopped.output == ()
    assert stopped.errors[0].terminating
    silent = host.shell.run(cmd("Get-VM", ["nope", "web01"], ea="SilentlyContinue"))
    assert names(ok(silent)) == ["web01"]


def test_invalid_wildcard_is_a_terminating_invalid_parameter(host: HyperVSingle) -> None:
    assert error_ids(host.shell.run(cmd("Get-VM", "web[0"))) == [f"InvalidParameter,{GETVM}"]


# ------------------------------------------------------------------- Start-VM / Stop-VM


def test_start_vm_by_name_and_passthru(host: HyperVSingle) -> None:
    assert ok(host.shell.run(cmd("Start-VM", "web02"))).output == ()
    assert host.model.vm("web02").state == "Running"
    result = ok(host.shell.run(cmd("Start-VM", Name="db01", Passthru=None)))
    assert [text(o, "State") for o in result.output] == ["Running"]


def test_start_vm_by_object_named_positional_and_pipeline(host: HyperVSingle) -> None:
    vm = ok(host.shell.run(cmd("Get-VM", "web02"))).output[0]
    ok(host.shell.run(cmd("Start-VM", VM=vm)))
    assert host.model.vm("web02").state == "Running"
    ok(host.shell.run(cmd("Stop-VM", vm, TurnOff=None)))
    assert host.model.vm("web02").state == "Off"
    ok(host.shell.run(cmd("Get-VM", "web0*"), cmd("Start-VM")))
    assert {host.model.vm(n).state for n in ("web01", "web02")} == {"Running"}


def test_start_vm_misses_and_whatif(host: HyperVSingle) -> None:
    result = host.shell.run(cmd("Start-VM", "ghost"))
    assert error_ids(result) == ["ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.StartVM"]
    assert not result.errors[0].terminating
    ok(host.shell.run(cmd("Start-VM", "db01", WhatIf=None)))
    assert host.model.vm("db01").state == "Off"


def test_start_vm_has_no_id_parameter(host: HyperVSingle) -> None:
    result = host.shell.run(cmd("Start-VM", Id=host.model.vm("db01").id))
    assert error_ids(result) == [
        "NamedParameterNotFound,Microsoft.HyperV.PowerShell.Commands.StartVM"
    ]


def test_confirm_switch_prompts_and_fails_non_interactively(host: HyperVSingle) -> None:
    error = only_error(host.shell.run(cmd("Start-VM", "db01", Confirm=None)))
    assert error.fully_qualified_error_id == (
        "HostFunctionNotImplemented,Microsoft.HyperV.PowerShell.Commands.StartVM"
    )
    assert error.category == "NotImplemented"
    assert host.model.vm("db01").state == "Off"


@pytest.mark.parametrize(
    ("switches", "state"),
    [
        ({}, "Off"),
        ({"Force": None}, "Off"),
        ({"TurnOff": None}, "Off"),
        ({"Save": None}, "Saved"),
        ({"Save": None, "TurnOff": None}, "Saved"),
    ],
)
def test_stop_vm_switches(host: HyperVSingle, switches: dict[str, None], state: str) -> None:
    ok(host.shell.run(cmd("Stop-VM", "web01", **switches)))
    assert host.model.vm("web01").state == state


def test_stop_vm_passthru_writes_an_already_off_vm(host: HyperVSingle) -> None:
    result = ok(host.shell.run(cmd("Stop-VM", VMName="db01", Passthru=None)))
    assert [text(o, "State") for o in result.output] == ["Off"]


# ------------------------------------------------------------------------ network adapters


def test_get_vm_network_adapter_sets(host: HyperVSingle) -> None:
    by_name = ok(host.shell.run(cmd("Get-VMNetworkAdapter", "web01")))
    adapter = by_name.output[0]
    assert type_name(adapter) == "Microsoft.HyperV.PowerShell.VMNetworkAdapter"
    assert prop(adapter, "SwitchName") == "Prod"
    assert prop(adapter, "VMName") == "web01"
    assert prop(adapter, "MacAddress") == host.model.vm("web01").adapters[0].mac_address
    assert len(ok(host.shell.run(cmd("Get-VMNetworkAdapter", VMName="db01"))).output) == 2
    vm = ok(host.shell.run(cmd("Get-VM", "db01"))).output[0]
    assert len(ok(host.shell.run(cmd("Get-VMNetworkAdapter", VM=vm))).output) == 2
    assert len(ok(host.shell.run(cmd("Get-VM", "db01"), cmd("Get-VMNetworkAdapter"))).output) == 2
    assert names(ok(host.shell.run(cmd("Get-VMNetworkAdapter", "db01", "Network*")))) == [
        "Network Adapter",
        "Network Adapter",
    ]
    assert ok(host.shell.run(cmd("Get-VMNetworkAdapter", "db01", IsLegacy=True))).output == ()
    mgmt = ok(host.shell.run(cmd("Get-VMNetworkAdapter", ManagementOS=None)))
    assert [type_name(o) for o in mgmt.output] == [
        "Microsoft.HyperV.PowerShell.VMInternalNetworkAdapter"
    ]
    assert names(mgmt) == ["Prod"]
    assert (
        ok(host.shell.run(cmd("Get-VMNetworkAdapter", ManagementOS=None, SwitchName="x"))).output
        == ()
    )
    every = ok(host.shell.run(cmd("Get-VMNetworkAdapter", All=None)))
    assert len(every.output) == 5


def test_get_vm_network_adapter_of_a_checkpoint(host: HyperVSingle) -> None:
    snap = ok(host.shell.run(cmd("Checkpoint-VM", "web01", "before", Passthru=None))).output[0]
    result = ok(host.shell.run(cmd("Get-VMNetworkAdapter", VMSnapshot=snap)))
    assert [prop(o, "VMSnapshotName") for o in result.output] == ["before"]
    assert len(ok(host.shell.run(cmd("Get-VMNetworkAdapter", VMCheckpoint=snap))).output) == 1


def test_get_vm_network_adapter_name_miss_throws(host: HyperVSingle) -> None:
    result = host.shell.run(cmd("Get-VMNetworkAdapter", "web01", Name="nic9"))
    assert error_ids(result) == [
        "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.GetVMNetworkAdapter"
    ]
    assert error_ids(host.shell.run(cmd("Get-VMNetworkAdapter"))) == [
        "MissingMandatoryParameter,Microsoft.HyperV.PowerShell.Commands.GetVMNetworkAdapter"
    ]


def test_connect_vm_network_adapter_every_set(host: HyperVSingle) -> None:
    vm = host.model.vm("db01")
    ok(host.shell.run(cmd("Connect-VMNetworkAdapter", "db01", SwitchName="Prod")))
    assert [a.switch_name for a in vm.adapters] == ["Prod", "Prod"]
    ok(host.shell.run(cmd("Connect-VMNetworkAdapter", "db01", "Network Adapter", "Isolated")))
    assert [a.switch_name for a in vm.adapters] == ["Isolated", "Isolated"]
    adapter = ok(host.shell.run(cmd("Get-VMNetworkAdapter", "web02"))).output[0]
    switch = ok(host.shell.run(cmd("Get-VMSwitch", "Isolated"))).output[0]
    result = ok(host.shell.run(cmd("Connect-VMNetworkAdapter", adapter, "Isolated", Passthru=None)))
    assert [prop(o, "SwitchName") for o in result.output] == ["Isolated"]
    ok(host.shell.run(cmd("Connect-VMNetworkAdapter", VMNetworkAdapter=adapter, VMSwitch=switch)))
    ok(host.shell.run(cmd("Connect-VMNetworkAdapter", VMName="web01", VMSwitch=switch)))
    assert host.model.vm("web01").adapters[0].switch_name == "Isolated"
    piped = host.shell.run(
        cmd("Get-VMNetworkAdapter", "web02"), cmd("Connect-VMNetworkAdapter", SwitchName="Prod")
    )
    ok(piped)
    assert host.model.vm("web02").adapters[0].switch_name == "Prod"
    auto = host.shell.run(cmd("Connect-VMNetworkAdapter", "web01", UseAutomaticConnection=None))
    assert error_ids(auto) == [
        "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.ConnectVMNetworkAdapter"
    ]
    auto_obj = host.shell.run(cmd("Connect-VMNetworkAdapter", adapter, UseAutomaticConnection=None))
    assert error_ids(auto_obj) == error_ids(auto)


def test_connect_to_a_missing_switch_is_invalid_parameter(host: HyperVSingle) -> None:
    result = host.shell.run(cmd("Connect-VMNetworkAdapter", "web01", SwitchName="Nope"))
    assert error_ids(result) == [
        "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.ConnectVMNetworkAdapter"
    ]
    assert result.errors[0].category == "InvalidArgument"


def test_get_vm_switch_sets_and_filters(host: HyperVSingle) -> None:
    every = ok(host.shell.run(cmd("Get-VMSwitch")))
    assert names(every) == ["Isolated", "Prod"]
    assert type_name(every.output[0]) == "Microsoft.HyperV.PowerShell.VMSwitch"
    assert text(every.output[0], "SwitchType") == "Private"
    assert names(ok(host.shell.run(cmd("Get-VMSwitch", "pro*")))) == ["Prod"]
    assert names(ok(host.shell.run(cmd("Get-VMSwitch", SwitchName="Prod")))) == ["Prod"]
    assert names(ok(host.shell.run(cmd("Get-VMSwitch", SwitchType="External")))) == ["Prod"]
    assert names(ok(host.shell.run(cmd("Get-VMSwitch", SwitchType=["Private", "Internal"])))) == [
        "Isolated"
    ]
    ident = host.model.find_switch("Prod").id  # type: ignore[union-attr]
    assert names(ok(host.shell.run(cmd("Get-VMSwitch", ident)))) == ["Prod"]
    assert names(ok(host.shell.run(cmd("Get-VMSwitch", SwitchId=[ident])))) == ["Prod"]
    assert ok(host.shell.run(cmd("Get-VMSwitch", "*", "pool1"))).output == ()
    assert error_ids(host.shell.run(cmd("Get-VMSwitch", "Nope"))) == [
        "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVMSwitch"
    ]
    assert error_ids(host.shell.run(cmd("Get-VMSwitch", Id=uuid.uuid4()))) == [
        "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.GetVMSwitch"
    ]


# -------------------------------------------------------------------------- checkpoints


def test_checkpoint_get_and_remove_snapshots(host: HyperVSingle) -> None:
    ok(host.shell.run(cmd("Checkpoint-VM", "web01")))
    ok(host.shell.run(cmd("Checkpoint-VM", Name="web01", SnapshotName="two")))
    vm = ok(host.shell.run(cmd("Get-VM", "web01"))).output[0]
    third = ok(host.shell.run(cmd("Checkpoint-VM", VM=vm, CheckpointName="three", Passthru=None)))
    snap = third.output[0]
    assert type_name(snap) == "Microsoft.HyperV.PowerShell.VMSnapshot"
    assert text(snap, "SnapshotType") == "Standard"
    assert prop(snap, "ParentSnapshotName") == "two"
    listed = ok(host.shell.run(cmd("Get-VMSnapshot", "web01")))
    assert names(listed)[1:] == ["two", "three"]
    assert names(listed)[0].startswith("web01 - (")
    assert names(ok(host.shell.run(cmd("Get-VMSnapshot", VMName="web01", Name="t*")))) == [
        "two",
        "three",
    ]
    assert names(ok(host.shell.run(cmd("Get-VMSnapshot", vm, "two")))) == ["two"]
    assert names(ok(host.shell.run(cmd("Get-VM", "web01"), cmd("Get-VMSnapshot")))) == names(listed)
    assert names(ok(host.shell.run(cmd("Get-VMSnapshot", Id=prop(snap, "Id"))))) == ["three"]
    assert names(ok(host.shell.run(cmd("Get-VMSnapshot", ParentOf=snap)))) == ["two"]
    assert names(ok(host.shell.run(cmd("Get-VMSnapshot", ParentOf=vm)))) == ["three"]
    two = ok(host.shell.run(cmd("Get-VMSnapshot", "web01", "two"))).output[0]
    assert names(ok(host.shell.run(cmd("Get-VMSnapshot", ChildOf=two)))) == ["three"]
    assert names(ok(host.shell.run(cmd("Get-VMSnapshot", "web01", SnapshotType="Standard")))) == (
        names(listed)
    )
    assert error_ids(host.shell.run(cmd("Get-VMSnapshot", "web01", SnapshotType="Replica"))) == [
        "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.GetVMSnapshot"
    ]
    assert error_ids(host.shell.run(cmd("Get-VMSnapshot", Id=uuid.uuid4()))) == [
        "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.GetVMSnapshot"
    ]
    removed = ok(host.shell.run(cmd("Remove-VMSnapshot", VMSnapshot=snap, Passthru=None)))
    assert names(removed) == ["three"]
    ok(host.shell.run(cmd("Remove-VMSnapshot", "web01", "two")))
    ok(host.shell.run(cmd("Get-VMSnapshot", "web01"), cmd("Remove-VMSnapshot")))
    assert host.model.vm("web01").snapshots == []


def test_remove_vm_snapshot_sets_and_subtree(host: HyperVSingle) -> None:
    for label in ("a", "b", "c"):
        ok(host.shell.run(cmd("Checkpoint-VM", "db01", label)))
    vm = ok(host.shell.run(cmd("Get-VM", "db01"))).output[0]
    result = host.shell.run(cmd("Remove-VMSnapshot", VM=vm, Name=["b", "zzz"]))
    assert error_ids(result) == [
        "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.RemoveVMSnapshot"
    ]
    assert [s.name for s in host.model.vm("db01").snapshots] == ["a", "c"]
    assert host.model.vm("db01").snapshots[1].parent_id == host.model.vm("db01").snapshots[0].id
    ok(
        host.shell.run(
            cmd("Remove-VMSnapshot", VMName="db01", Name="a", IncludeAllChildCheckpoints=None)
        )
    )
    assert host.model.vm("db01").snapshots == []
    ok(host.shell.run(cmd("Checkpoint-VM", "db01", "x")))
    ok(host.shell.run(cmd("Remove-VMSnapshot", "db01", WhatIf=None)))
    assert len(host.model.vm("db01").snapshots) == 1
    ok(host.shell.run(cmd("Remove-VMSnapshot", "db01")))
    assert host.model.vm("db01").snapshots == []


# --------------------------------------------------------------------- replication sets


def test_enable_vm_replication_sets(hv_pair: HyperVPair) -> None:
    for name in ("a1", "a2", "a3", "a4"):
        hv_pair.primary_model.add_vm(name)
    result = ok(
        hv_pair.primary.run(
            cmd(
                "Enable-VMReplication",
                VMName="a1",
                ReplicaServerName="hv-b.contoso.com",
                ReplicaServerPort=443,
                AuthenticationType="Certificate",
                CertificateThumbprint="AB12",
                ReplicationFrequencySec=30,
                RecoveryHistory=24,
                VSSSnapshotFrequencyHour=4,
                CompressionEnabled=False,
                Passthru=None,
            )
        )
    )
    rep = result.output[0]
    assert type_name(rep) == "Microsoft.HyperV.PowerShell.VMReplication"
    assert text(rep, "ReplicationState") == "ReadyForInitialReplication"
    assert text(rep, "ReplicationMode") == "Primary"
    assert text(rep, "AuthenticationType") == "Certificate"
    assert prop(rep, "ReplicaServerName") == "hv-b.contoso.com"
    assert prop(rep, "ReplicaServerPort") == 443
    assert prop(rep, "ReplicationFrequencySec") == 30
    assert prop(rep, "RecoveryHistory") == 24
    assert prop(rep, "CompressionEnabled") is False
    vm = ok(hv_pair.primary.run(cmd("Get-VM", "a2"))).output[0]
    ok(hv_pair.primary.run(cmd("Enable-VMReplication", vm, "hv-b", 80, "Kerberos")))
    ok(
        hv_pair.primary.run(
            cmd("Get-VM", "a3"),
            cmd(
                "Enable-VMReplication",
                ReplicaServer="hv-b",
                ReplicaPort=80,
                AuthType="Kerberos",
                RepFreq=900,
                RecHist=1,
            ),
        )
    )
    replica_side = ok(hv_pair.replica.run(cmd("Get-VMReplication")))
    assert sorted(names(replica_side, "VMName")) == ["a1", "a2", "a3"]
    assert {text(o, "ReplicationState") for o in replica_side.output} == {
        "WaitingForInitialReplication"
    }
    as_replica = ok(
        hv_pair.primary.run(
            cmd(
                "Enable-VMReplication",
                "a4",
                AsReplica=None,
                AllowedPrimaryServer="hv-c",
                Passthru=None,
            )
        )
    )
    assert text(as_replica.output[0], "ReplicationMode") == "Replica"
    assert text(as_replica.output[0], "ReplicationState") == "WaitingForInitialReplication"
    hv_pair.replica_model.add_vm("b1")
    b1 = ok(hv_pair.replica.run(cmd("Get-VM", "b1"))).output[0]
    ok(hv_pair.replica.run(cmd("Enable-VMReplication", VM=b1, AsReplica=None)))


@pytest.mark.parametrize(
    ("extra", "error_id"),
    [
        ({"ReplicationFrequencySec": 60}, "InvalidParameter"),
        ({"RecoveryHistory": 25}, "InvalidParameter"),
        ({"VSSSnapshotFrequencyHour": 2}, "InvalidParameter"),
        ({"CertificateThumbprint": "AB"}, "InvalidParameter"),
        ({"ReplicaServerName": "10.0.0.2"}, "InvalidParameter"),
        ({"AuthenticationType": "Certificate"}, "InvalidParameter"),
        ({"ReplicaServerName": "hv-z"}, "OperationFailed"),
        ({"ReplicaServerName": "hv-a"}, "InvalidParameter"),
    ],
)
def test_enable_vm_replication_validation(
    hv_pair: HyperVPair, extra: dict[str, object], error_id: str
) -> None:
    hv_pair.primary_model.add_vm("web01")
    arguments: dict[str, object] = {
        "ReplicaServerName": "hv-b",
        "ReplicaServerPort": 80,
        "AuthenticationType": "Kerberos",
    }
    arguments.update(extra)
    result = hv_pair.primary.run(cmd("Enable-VMReplication", "web01", **arguments))
    assert error_ids(result) == [
        f"{error_id},Microsoft.HyperV.PowerShell.Commands.EnableVMReplication"
    ]
    assert hv_pair.primary_model.vm("web01").replication is None


def test_enable_twice_and_as_replica_without_switch(replicating: HyperVPair) -> None:
    again = replicating.primary.run(cmd("Enable-VMReplication", "web01", "hv-b", 80, "Kerberos"))
    assert error_ids(again) == [
        "OperationFailed,Microsoft.HyperV.PowerShell.Commands.EnableVMReplication"
    ]
    assert error_ids(
        replicating.primary.run(cmd("Enable-VMReplication", "db01", AllowedPrimaryServer="x"))
    ) == ["InvalidParameter,Microsoft.HyperV.PowerShell.Commands.EnableVMReplication"]
    assert error_ids(replicating.primary.run(cmd("Enable-VMReplication", "db01", "hv-b"))) == [
        "MissingMandatoryParameter,Microsoft.HyperV.PowerShell.Commands.EnableVMReplication"
    ]


def test_start_vm_initial_replication_sets(hv_pair: HyperVPair) -> None:
    for name in ("a1", "a2", "a3", "a4"):
        hv_pair.primary_model.add_vm(name)
        ok(hv_pair.primary.run(cmd("Enable-VMReplication", name, "hv-b", 80, "Kerberos")))
    ok(hv_pair.primary.run(cmd("Start-VMInitialReplication", VMName="a1")))
    vm = ok(hv_pair.primary.run(cmd("Get-VM", "a2"))).output[0]
    ok(hv_pair.primary.run(cmd("Start-VMInitialReplication", VM=vm)))
    rep = ok(hv_pair.primary.run(cmd("Get-VMReplication", "a3"))).output[0]
    out = ok(hv_pair.primary.run(cmd("Start-VMInitialReplication", rep, Passthru=None)))
    assert type_name(out.output[0]) == "Microsoft.HyperV.PowerShell.VMReplication"
    assert text(out.output[0], "ReplicationState") == "Replicating"
    later = hv_pair.fabric.now().replace(year=hv_pair.fabric.now().year + 1)
    too_late = hv_pair.primary.run(cmd("Start-VMInitialReplication", "a4", IRTime=later))
    assert error_ids(too_late) == [
        "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.StartVMInitialReplication"
    ]
    ok(
        hv_pair.primary.run(
            cmd("Get-VMReplication", "a4"),
            cmd("Start-VMInitialReplication", DestinationPath="E:\\seed"),
        )
    )
    assert hv_pair.primary_model.vm("a4").replication.state == (  # type: ignore[union-attr]
        "InitialReplicationInProgress"
    )
    again = hv_pair.primary.run(cmd("Start-VMInitialReplication", "a1"))
    assert error_ids(again) == [
        "InvalidState,Microsoft.HyperV.PowerShell.Commands.StartVMInitialReplication"
    ]
    assert (
        text(ok(hv_pair.replica.run(cmd("Get-VMReplication", "a1"))).output[0], "ReplicationState")
        == "Replicating"
    )


def test_get_and_measure_vm_replication_filters(replicating: HyperVPair) -> None:
    p = replicating.primary
    assert names(ok(p.run(cmd("Get-VMReplication"))), "VMName") == ["web01"]
    for call in (
        cmd("Get-VMReplication", "web*"),
        cmd("Get-VMReplication", Name="web01"),
        cmd("Get-VMReplication", ReplicaServer="hv-b"),
        cmd("Get-VMReplication", ReplicaServerName="hv-?"),
        cmd("Get-VMReplication", PrimaryServerName="HV-A"),
        cmd("Get-VMReplication", Mode="Primary"),
        cmd("Get-VMReplication", State="Replicating"),
        cmd("Get-VMReplication", Health="Normal"),
        cmd("Get-VMReplication", Relationship="Simple"),
        cmd("Get-VM", "web01"),
    ):
        pipeline = [call, cmd("Get-VMReplication")] if call.command == "Get-VM" else [call]
        assert names(ok(p.run(*pipeline)), "VMName") == ["web01"], call
    for call in (
        cmd("Get-VMReplication", Mode="Replica"),
        cmd("Get-VMReplication", ReplicationRelationshipType="Extended"),
        cmd("Get-VMReplication", TrustGroup="g"),
        cmd("Get-VMReplication", "zz*"),
    ):
        assert ok(p.run(call)).output == (), call
    assert error_ids(p.run(cmd("Get-VMReplication", "db01"))) == [
        "OperationFailed,Microsoft.HyperV.PowerShell.Commands.GetVMReplication"
    ]
    assert error_ids(p.run(cmd("Get-VMReplication", ReplicationState="Disabled"))) == [
        "InvalidState,Microsoft.HyperV.PowerShell.Commands.GetVMReplication"
    ]
    health = ok(p.run(cmd("Measure-VMReplication")))
    assert type_name(health.output[0]) == "Microsoft.HyperV.PowerShell.VMReplicationHealth"
    assert prop(health.output[0], "SuccessfulReplicationCount") == 3
    assert text(health.output[0], "LastReplicationType") == "Regular"
    vm = ok(p.run(cmd("Get-VM", "web01"))).output[0]
    assert names(ok(p.run(cmd("Measure-VMReplication", VM=vm))), "VMName") == ["web01"]
    assert names(ok(p.run(cmd("Measure-VMReplication", "web01", Mode="Primary"))), "VMName") == [
        "web01"
    ]
    measured = p.run(cmd("Measure-VMReplication", ["db01", "web01"]))
    assert names(measured, "VMName") == ["web01"]
    assert error_ids(measured) == [
        "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.MeasureVMReplication"
    ]
    assert error_ids(p.run(cmd("Measure-VMReplication", ReplicationMode="None"))) == [
        "InvalidState,Microsoft.HyperV.PowerShell.Commands.MeasureVMReplication"
    ]
    replica = ok(replicating.replica.run(cmd("Get-VMReplication", "web01"))).output[0]
    assert text(replica, "ReplicationMode") == "Replica"
    assert prop(replica, "PrimaryServerName") == "hv-a"
    assert prop(replica, "LastReplicationTime") is not None


def test_set_vm_replication_settings_sets(replicating: HyperVPair) -> None:
    p = replicating.primary
    out = ok(p.run(cmd("Set-VMReplication", "web01", RecoveryHistory=8, RepFreq=30, Passthru=None)))
    assert prop(out.output[0], "RecoveryHistory") == 8
    assert prop(out.output[0], "ReplicationFrequencySec") == 30
    vm = ok(p.run(cmd("Get-VM", "web01"))).output[0]
    ok(p.run(cmd("Set-VMReplication", VM=vm, VSSSnapshotFrequency=4)))
    rep = ok(p.run(cmd("Get-VMReplication", "web01"))).output[0]
    assert prop(rep, "VSSSnapshotFrequencyHour") == 4
    ok(p.run(cmd("Set-VMReplication", rep, DisableVSS=None, CompressionEnabled=False)))
    assert replicating.primary_model.vm("web01").replication.vss_frequency_hour == 0  # type: ignore[union-attr]
    ok(p.run(cmd("Get-VMReplication", "web01"), cmd("Set-VMReplication", ReplicaServerPort=8080)))
    replica_rep = replicating.replica_model.vm("web01").replication
    assert replica_rep is not None
    assert replica_rep.port == 8080
    assert replica_rep.compression_enabled is False
    assert error_ids(p.run(cmd("Set-VMReplication", "web01", ReplicationFrequencySec=1))) == [
        "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.SetVMReplication"
    ]
    assert error_ids(p.run(cmd("Set-VMReplication", "web01", VSSFreq=1, DisableVSS=None))) == [
        "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.SetVMReplication"
    ]
    assert error_ids(p.run(cmd("Set-VMReplication", "web01", Reverse=None))) == [
        "OperationFailed,Microsoft.HyperV.PowerShell.Commands.SetVMReplication"
    ]
    assert error_ids(p.run(cmd("Set-VMReplication", "db01", RecoveryHistory=1))) == [
        "InvalidState,Microsoft.HyperV.PowerShell.Commands.SetVMReplication"
    ]
    assert error_ids(replicating.replica.run(cmd("Set-VMReplication", "web01", RecHist=2))) == [
        "OperationFailed,Microsoft.HyperV.PowerShell.Commands.SetVMReplication"
    ]
    assert error_ids(p.run(cmd("Set-VMReplication", "web01", AsReplica=None))) == [
        "OperationFailed,Microsoft.HyperV.PowerShell.Commands.SetVMReplication"
    ]


# ------------------------------------------------------------------ failover IP settings


def test_failover_configuration_set_and_get(replicating: HyperVPair) -> None:
    r = replicating.replica
    set_result = ok(
        r.run(
            cmd(
                "Set-VMNetworkAdapterFailoverConfiguration",
                "web01",
                IPv4Address="10.1.0.5",
                IPv4SubnetMask="255.255.255.0",
                IPv4DefaultGateway="10.1.0.1",
                IPv4PreferredDNSServer="10.1.0.2",
                IPv6Address="fd00::5",
                IPv6SubnetPrefixLength=64,
                Passthru=None,
            )
        )
    )
    setting = set_result.output[0]
    assert type_name(setting) == "Microsoft.HyperV.PowerShell.VMNetworkAdapterFailoverSetting"
    assert prop(setting, "IPv4Address") == "10.1.0.5"
    assert prop(setting, "IPv6SubnetPrefixLength") == "64"
    got = ok(r.run(cmd("Get-VMNetworkAdapterFailoverConfiguration", "web01")))
    assert [prop(o, "IPv4DefaultGateway") for o in got.output] == ["10.1.0.1"]
    vm = ok(r.run(cmd("Get-VM", "web01"))).output[0]
    adapter = ok(r.run(cmd("Get-VMNetworkAdapter", "web01"))).output[0]
    for call in (
        cmd("Get-VMNetworkAdapterFailoverConfiguration", VM=vm),
        cmd("Get-VMNetworkAdapterFailoverConfiguration", vm, VMNetworkAdapterName="Network*"),
        cmd("Get-VMNetworkAdapterFailoverConfiguration", VMNetworkAdapter=adapter),
        cmd("Get-VMNetworkAdapterFailoverConfiguration", VMName="web01"),
    ):
        assert len(ok(r.run(call)).output) == 1, call
    ok(
        r.run(
            cmd(
                "Set-VMNetworkAdapterFailoverConfiguration",
                VM=vm,
                VMNetworkAdapterName="Network Adapter",
                ClearFailoverIPv6Settings=None,
            )
        )
    )
    ok(
        r.run(
            cmd(
                "Set-VMNetworkAdapterFailoverConfiguration",
                adapter,
                IPv4AlternateDNSServer="10.1.0.3",
            )
        )
    )
    stored = replicating.replica_model.vm("web01").adapters[0].failover
    assert stored.ipv6_address is None
    assert stored.ipv4_alternate_dns == "10.1.0.3"
    ok(
        r.run(
            cmd("Get-VMNetworkAdapter", "web01"),
            cmd("Set-VMNetworkAdapterFailoverConfiguration", ClearFailoverIPv4Settings=None),
        )
    )
    assert ok(r.run(cmd("Get-VMNetworkAdapterFailoverConfiguration", "web01"))).output == ()


@pytest.mark.parametrize(
    ("vm", "arguments", "error_id"),
    [
        ("web01", {}, "OperationFailed"),
        ("web01", {"IPv4Address": "10.0.0.1"}, "InvalidParameter"),
        ("web01", {"IPv4Address": "10.0.0.300", "IPv4SubnetMask": "255.0.0.0"}, "InvalidParameter"),
        ("web01", {"IPv6Address": "fd00::1", "IPv6SubnetPrefixLength": 129}, "InvalidParameter"),
        (
            "web01",
            {"ClearFailoverIPv4Settings": None, "IPv4DefaultGateway": "10.0.0.1"},
            "InvalidParameter",
        ),
        ("db01", {"IPv4DefaultGateway": "10.0.0.1"}, "InvalidState"),
        ("nope", {"IPv4DefaultGateway": "10.0.0.1"}, "ObjectNotFound"),
    ],
)
def test_failover_configuration_validation(
    replicating: HyperVPair, vm: str, arguments: dict[str, object], error_id: str
) -> None:
    result = replicating.primary.run(
        cmd("Set-VMNetworkAdapterFailoverConfiguration", vm, **arguments)
    )
    assert error_ids(result) == [
        f"{error_id},Microsoft.HyperV.PowerShell.Commands.SetVMNetworkAdapterFailoverConfiguration"
    ]


# ---------------------------------------------------------------------- shell behaviour


def test_unknown_command_is_command_not_found(host: HyperVSingle) -> None:
    error = only_error(host.shell.run(cmd("Remove-VM", "web01", Force=None)))
    assert error.fully_qualified_error_id == "CommandNotFoundException"
    assert error.category == "ObjectNotFound"
    assert len(host.model.vms) == 3


def test_terminating_error_stops_the_pipeline(host: HyperVSingle) -> None:
    result = host.shell.run(cmd("Get-VM"), cmd("Stop-VM", Bogus=1), cmd("Get-VM"))
    assert error_ids(result) == [
        "NamedParameterNotFound,Microsoft.HyperV.PowerShell.Commands.StopVM"
    ]
    assert result.output == ()
    assert host.model.vm("web01").state == "Running"


def test_downstream_binding_errors_surface_without_input(host: HyperVSingle) -> None:
    result = host.shell.run(cmd("Get-VM", "zz*"), cmd("Stop-VM", Bogus=1))
    assert error_ids(result) == [
        "NamedParameterNotFound,Microsoft.HyperV.PowerShell.Commands.StopVM"
    ]
    assert ok(host.shell.run(cmd("Get-VM", "zz*"), cmd("Stop-VM"))).output == ()
