"""VM names are data: hostile names are created, found and failed over as literal names."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmfailover.testing.hyperv._objects import cmd
from vmfailover.testing.hyperv.binding import WildcardPattern
from vmfailover.testing.hyperv.cmdlets import HyperVCommandHost
from vmfailover.testing.hyperv.local import LocalShell
from vmfailover.testing.hyperv.model import ReplicationFabric

from .conftest import HyperVPair, error_ids, names, ok, prop, text

HOSTILE = [
    "x'; Remove-VM * -Force; '",
    "$(Stop-Computer)",
    '"; Stop-Computer; "',
    "web[1]",
    "`$env:USERNAME`",
    "a\nb",
    "vm & del C:\\*",
    "ÄÖÜ-日本-🙂",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_name_round_trips_through_every_step(hv_pair: HyperVPair, name: str) -> None:
    a, b = hv_pair.primary, hv_pair.replica
    hv_pair.primary_model.add_vm("bystander", state="Running")
    hv_pair.primary_model.add_vm(name, state="Running")
    literal = WildcardPattern.escape(name)
    found = ok(a.run(cmd("Get-VM", Name=literal)))
    assert names(found) == [name]
    assert names(ok(a.run(cmd("Get-VM", Id=prop(found.output[0], "Id"))))) == [name]
    ok(a.run(cmd("Enable-VMReplication", literal, "hv-b", 80, "Kerberos", RecoveryHistory=2)))
    ok(a.run(cmd("Get-VM", Name=literal), cmd("Start-VMInitialReplication")))
    hv_pair.primary_model.write_data(name)
    hv_pair.primary_model.replicate(name)
    ok(a.run(cmd("Stop-VM", literal, TurnOff=None)))
    ok(a.run(cmd("Start-VMFailover", VMName=literal, Prepare=None, Confirm=False)))
    point = ok(b.run(cmd("Get-VMSnapshot", literal, SnapshotType="Replica"))).output[0]
    assert prop(point, "VMName") == name
    ok(b.run(cmd("Start-VMFailover", point, Confirm=False)))
    ok(b.run(cmd("Set-VMReplication", literal, Reverse=None)))
    ok(b.run(cmd("Start-VM", literal)))
    replica_vm = ok(b.run(cmd("Get-VM", literal))).output[0]
    assert prop(replica_vm, "Name") == name
    assert text(replica_vm, "State") == "Running"
    assert text(replica_vm, "ReplicationMode") == "Primary"
    # nothing else was touched
    assert sorted(v.name for v in hv_pair.primary_model.vms.values()) == sorted([name, "bystander"])
    assert hv_pair.primary_model.vm("bystander").state == "Running"


def test_a_name_with_a_star_is_a_pattern_unless_escaped(hv_pair: HyperVPair) -> None:
    hostile = "x'; Remove-VM * -Force; '"
    hv_pair.primary_model.add_vm(hostile)
    hv_pair.primary_model.add_vm("x'; Remove-VM other -Force; '")
    raw = ok(hv_pair.primary.run(cmd("Get-VM", hostile)))
    assert len(raw.output) == 2  # '*' is a wildcard, as on Windows
    assert names(ok(hv_pair.primary.run(cmd("Get-VM", WildcardPattern.escape(hostile))))) == [
        hostile
    ]


def test_brackets_in_names_are_wildcards_unless_escaped(hv_pair: HyperVPair) -> None:
    hv_pair.primary_model.add_vm("web[1]")
    hv_pair.primary_model.add_vm("web1")
    assert names(ok(hv_pair.primary.run(cmd("Get-VM", "web[1]")))) == ["web1"]
    assert names(ok(hv_pair.primary.run(cmd("Get-VM", "web`[1`]")))) == ["web[1]"]
    assert error_ids(hv_pair.primary.run(cmd("Start-VM", "web`[2`]"))) == [
        "ObjectNotFound,Microsoft.HyperV.PowerShell.Commands.StartVM"
    ]


def test_names_are_never_commands(hv_pair: HyperVPair) -> None:
    hv_pair.primary_model.add_vm("keep")
    result = hv_pair.primary.run(cmd("Get-VM", "$(Remove-VM keep)"))
    assert error_ids(result) == ["InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM"]
    assert [v.name for v in hv_pair.primary_model.vms.values()] == ["keep"]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=24).filter(lambda s: s.strip() != ""))
def test_any_name_is_found_by_its_escaped_form(name: str) -> None:
    fabric = ReplicationFabric()
    model = fabric.add_host("hv-a")
    model.add_vm(name)
    model.add_vm(name + "x")
    shell = LocalShell(HyperVCommandHost(model))
    assert names(ok(shell.run(cmd("Get-VM", WildcardPattern.escape(name))))) == [name]
