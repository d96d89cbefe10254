"""The command host itself: concurrency and the model's scene setters."""

from __future__ import annotations

import threading
import uuid

import pytest

from vmfailover.errors import ValidationError
from vmfailover.testing.hyperv._objects import InputObject, OutputObject, cmd
from vmfailover.testing.hyperv.cmdlets import HyperVCommandHost
from vmfailover.testing.hyperv.local import LocalShell, deserialize
from vmfailover.testing.hyperv.model import HostModel, ReplicationFabric

from .conftest import error_ids, names, ok


@pytest.fixture
def host() -> HyperVCommandHost:
    model = ReplicationFabric().add_host("hv-a")
    model.add_switch("Prod")
    for index in range(20):
        model.add_vm(f"vm{index:02d}", switch="Prod")
    return HyperVCommandHost(model)


def test_concurrent_pipelines_keep_the_model_consistent(host: HyperVCommandHost) -> None:
    shell = LocalShell(host)
    failures: list[object] = []

    def worker(offset: int) -> None:
        for round_ in range(10):
            name = f"vm{(offset + round_) % 20:02d}"
            for result in (
                shell.run(cmd("Start-VM", name)),
                shell.run(cmd("Checkpoint-VM", name, f"t{offset}-{round_}")),
                shell.run(cmd("Get-VM", name), cmd("Stop-VM", TurnOff=None)),
            ):
                if result.errors:
                    failures.append(result.errors)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert all(vm.state == "Off" for vm in host.model.vms.values())
    assert sum(len(vm.snapshots) for vm in host.model.vms.values()) == 80


def test_deserialize_prefixes_nested_type_names() -> None:
    inner = OutputObject(("A.B",), {"x": 1}, "inner")
    outer = OutputObject(("C.D", "System.Object"), {"child": inner, "many": [inner]}, "outer")
    received = deserialize(outer)
    assert received.type_names == ("Deserialized.C.D", "Deserialized.System.Object")
    assert received.properties["child"].type_names == ("Deserialized.A.B",)
    assert received.properties["many"][0].type_names == ("Deserialized.A.B",)
    assert deserialize(received) == received


def test_objects_passed_back_are_resolved_by_their_properties(host: HyperVCommandHost) -> None:
    vm = host.model.vm("vm03")
    by_id = InputObject(
        ("Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine",), {"Id": str(vm.id)}
    )
    result = host.invoke("Start-VM", [("VM", by_id), ("Passthru", None)])
    assert [o.properties["Name"] for o in result.output] == ["vm03"]
    by_name = InputObject(("Microsoft.HyperV.PowerShell.VirtualMachine",), {"Name": "vm04"})
    host.invoke("Start-VM", [(None, by_name)])
    assert host.model.vm("vm04").state == "Running"
    gone = InputObject(
        ("Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine",), {"Id": uuid.uuid4()}
    )
    missing = host.invoke("Start-VM", [("VM", gone)])
    assert [e.fully_qualified_error_id for e in missing.errors] == [
        "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.StartVM"
    ]


def test_scene_setters_validate_their_input() -> None:
    fabric = ReplicationFabric()
    model = fabric.add_host("hv-a")
    with pytest.raises(ValidationError, match="already exists"):
        fabric.add_host("HV-A")
    with pytest.raises(ValidationError, match="switch type"):
        model.add_switch("x", "Wireless")
    with pytest.raises(ValidationError, match="does not exist"):
        model.add_vm("web", switch="Nope")
    with pytest.raises(ValidationError, match="state"):
        model.add_vm("web", state="Exploded")
    with pytest.raises(ValidationError, match="memory_mb"):
        model.add_vm("web", memory_mb=0)
    model.add_vm("twin")
    model.add_vm("twin")
    with pytest.raises(ValidationError, match="2 VMs"):
        model.vm("twin")
    with pytest.raises(ValidationError, match="not a replicating primary"):
        model.replicate(model.all_vms()[0].id)
    assert fabric.host("hv-a.contoso.com") is model
    assert fabric.host("HV-A") is model
    assert isinstance(HostModel("solo").fabric, ReplicationFabric)


def test_duplicate_names_are_all_resolved(host: HyperVCommandHost) -> None:
    host.model.add_vm("vm01")
    shell = LocalShell(host)
    assert names(ok(shell.run(cmd("Get-VM", "vm01")))) == ["vm01", "vm01"]
    ok(shell.run(cmd("Start-VM", "vm01")))
    assert [v.state for v in host.model.vms.values() if v.name == "vm01"] == ["Running"] * 2
    assert error_ids(shell.run(cmd("Get-VM", Id="x"))) == [
        "CannotConvertArgumentNoMessage,Microsoft.HyperV.PowerShell.Commands.GetVM"
    ]
