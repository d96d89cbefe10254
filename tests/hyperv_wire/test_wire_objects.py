"""Objects, enums, errors and pipelines through pypsrp, over every transport."""

from __future__ import annotations

import datetime
import logging
import re
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypsrp.powershell import PowerShell

from vmfailover.testing.hyperv._objects import (
    Call,
    CmdletError,
    EnumValue,
    InputObject,
    OutputObject,
    cmd,
)
from vmfailover.testing.hyperv.client import PypsrpShell
from vmfailover.testing.hyperv.host import HyperVHost

from .conftest import ITEM_ID, VM_STATE, WHEN, EchoHost


def test_output_objects_keep_type_names_properties_and_enums(shell: PypsrpShell) -> None:
    result = shell.run(cmd("Get-Item", "web01"))

    assert result.errors == ()
    (vm,) = result.output
    assert isinstance(vm, OutputObject)
    assert vm.type_names == (
        "Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine",
        "Deserialized.System.Object",
    )
    assert vm.to_string == "VirtualMachine (Name = 'web01')"
    assert vm.properties["Name"] == "web01"
    assert vm.properties["State"] == EnumValue(VM_STATE, "Running", 2)
    assert vm.properties["Id"] == ITEM_ID
    assert vm.properties["CreationTime"] == WHEN
    assert vm.properties["MemoryStartup"] == 2048 * 1024 * 1024
    assert vm.properties["Uptime"] == 1.5
    assert vm.properties["Notes"] is None
    assert vm.properties["IsClustered"] is False
    (adapter,) = vm.properties["NetworkAdapters"]
    assert adapter.type_names[0] == "Deserialized.Microsoft.HyperV.PowerShell.VMNetworkAdapter"
    assert adapter.properties["SwitchName"] == "Prod"


def test_arguments_arrive_as_sent_named_positional_and_switches(
    wire_host: HyperVHost, shell: PypsrpShell
) -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.UTC)
    ident = uuid.uuid4()
    shell.run(
        cmd(
            "Echo-Value",
            "web01",
            7,
            VMName="web02",
            Force=None,
            Confirm=False,
            At=when,
            Id=ident,
            Ratio=0.25,
            Kind=EnumValue(VM_STATE, "Off", 3),
            Names=["a", "b"],
        )
    )

    (call,) = wire_host.calls
    assert call == Call(
        "Echo-Value",
        (
            (None, "web01"),
            (None, 7),
            ("VMName", "web02"),
            ("Force", None),
            ("Confirm", False),
            ("At", when),
            ("Id", ident),
            ("Ratio", 0.25),
            ("Kind", EnumValue(VM_STATE, "Off", 3)),
            ("Names", ["a", "b"]),
        ),
    )


def test_an_object_received_goes_back_as_a_deserialized_input_object(
    wire_host: HyperVHost, shell: PypsrpShell
) -> None:
    (vm,) = shell.run(cmd("Get-Item", "web01")).output
    shell.run(cmd("Echo-Value", VMRecoverySnapshot=vm))

    (call,) = [c for c in wire_host.calls if c.command == "Echo-Value"]
    ((name, value),) = call.arguments
    assert name == "VMRecoverySnapshot"
    assert isinstance(value, InputObject)
    assert value.type_names == (
        "Deserialized.Microsoft.HyperV.PowerShell.VirtualMachine",
        "Deserialized.System.Object",
    )
    assert value.properties["Name"] == "web01"
    assert value.properties["State"] == EnumValue(VM_STATE, "Running", 2)
    assert value.properties["Id"] == ITEM_ID
    assert value.to_string == "VirtualMachine (Name = 'web01')"


def test_pipeline_passes_each_commands_output_to_the_next(shell: PypsrpShell) -> None:
    result = shell.run(cmd("Get-Item", "a", "b", "c"), cmd("Count-Input"))
    assert result.output == (3,)


def test_pipeline_input_reaches_the_first_command(shell: PypsrpShell) -> None:
    result = shell.run_with_input((cmd("Count-Input"),), ["x", 2, EnumValue(VM_STATE, "Off", 3)])
    assert result.output == (3,)


def test_terminating_error_fails_the_pipeline_with_the_error_record(shell: PypsrpShell) -> None:
    result = shell.run(cmd("Get-Item", "web01"), cmd("Fail-Item", "web01"), cmd("Count-Input"))

    assert result.output == ()
    assert result.had_errors
    (error,) = result.errors
    assert (
        error.fully_qualified_error_id
        == "InvalidState,Microsoft.HyperV.PowerShell.Commands.StartVM"
    )
    assert error.category == "InvalidOperation"
    assert error.message == "'web01' failed to start."
    assert error.exception_type == "Microsoft.HyperV.PowerShell.VirtualizationException"
    assert error.terminating
    assert isinstance(error.target, OutputObject)
    assert error.target.properties["Name"] == "web01"
    # The pool is still usable afterwards.
    assert shell.run(cmd("Count-Input")).output == (0,)


def test_non_terminating_errors_go_to_the_error_stream_and_output_goes_on(
    shell: PypsrpShell,
) -> None:
    result = shell.run(cmd("Warn-Item", "ghost1", "ghost2"))

    assert [o.properties["Name"] for o in result.output] == ["found"]
    assert [e.target for e in result.errors] == ["ghost1", "ghost2"]
    assert all(not e.terminating for e in result.errors)
    assert {e.category for e in result.errors} == {"ObjectNotFound"}


def test_unknown_command_is_the_command_hosts_error(shell: PypsrpShell) -> None:
    (error,) = shell.run(cmd("Remove-Everything")).errors
    assert error.fully_qualified_error_id == "CommandNotFoundException"
    assert error.exception_type == "System.Management.Automation.CommandNotFoundException"


def test_a_bug_in_the_command_host_fails_the_pipeline_instead_of_hanging(
    shell: PypsrpShell, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="vmfailover.testing.hyperv"):
        (error,) = shell.run(cmd("Crash-Item")).errors
    assert error.fully_qualified_error_id == "SimulatorError"
    # The client learns that the host failed and the id to look it up by, not the traceback.
    match = re.search(r"error id ([0-9a-f-]{36})", error.message)
    assert match is not None, error.message
    assert "Traceback" not in error.message
    assert "bug in the command host" not in error.message
    (record,) = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert record.exc_info is not None
    assert "bug in the command host" in str(record.exc_info[1])


@pytest.mark.parametrize(
    "name", ["x'; Remove-VM * -Force; '", "$(Stop-Computer)", "a\nb\x00c _x0041_"]
)
def test_hostile_names_travel_as_literal_strings(
    wire_host: HyperVHost, shell: PypsrpShell, name: str
) -> None:
    result = shell.run(cmd("Echo-Value", Name=name))
    assert result.output == (name,)
    assert list(wire_host.calls)[-1].arguments == (("Name", name),)


def test_scripts_are_refused_and_never_run(wire_host: HyperVHost, shell: PypsrpShell) -> None:
    powershell = PowerShell(shell.pool)
    powershell.add_cmdlet("Echo-Value").add_argument("before")
    powershell.add_script("Stop-Computer -Force")
    output = powershell.invoke()

    assert output == []
    assert powershell.had_errors
    (record,) = powershell.streams.error
    assert record.fq_error == "ScriptsNotAllowed"
    assert len(wire_host.calls) == 0


def test_multiple_statements_run_in_order(shell: PypsrpShell) -> None:
    powershell = PowerShell(shell.pool)
    powershell.add_cmdlet("Echo-Value").add_argument("first")
    powershell.add_statement()
    powershell.add_cmdlet("Echo-Value").add_argument("second")
    assert powershell.invoke() == ["first", "second"]


@pytest.fixture(scope="module")
def string_shell() -> Iterator[PypsrpShell]:
    """One host and shell for every generated example (hypothesis reuses them)."""
    with HyperVHost("hv-strings", command_host=EchoHost()) as host:
        shell = PypsrpShell(host, operation_timeout=2, read_timeout=10)
        yield shell
        shell.close()


@settings(max_examples=25)
@given(value=st.text(max_size=40))
def test_any_string_round_trips(string_shell: PypsrpShell, value: str) -> None:
    assert string_shell.run(cmd("Echo-Value", value)).output == (value,)
    assert string_shell.run(cmd("Echo-Value", [value])).output == ([value],)


def test_cmdlet_error_repr_names_the_id() -> None:
    assert "X,Y" in repr(CmdletError("X,Y", "m"))
