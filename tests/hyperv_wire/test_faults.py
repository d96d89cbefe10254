"""Each fault hook produces what a pypsrp client sees from a Windows host."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WSManFaultError

from vmfailover.errors import ValidationError
from vmfailover.testing.hyperv._objects import CmdletError, cmd
from vmfailover.testing.hyperv.client import PypsrpShell
from vmfailover.testing.hyperv.faults import OPERATION_TIMEOUT, TRANSIENT, FaultHooks, WinRMFault
from vmfailover.testing.hyperv.host import HyperVHost

HostFactory = Callable[..., HyperVHost]
ShellFactory = Callable[..., PypsrpShell]


def test_fail_next_with_an_error_record_fails_only_the_next_call(
    wire_host: HyperVHost, shell: PypsrpShell
) -> None:
    wire_host.faults.fail_next(
        "get-item",
        CmdletError(
            "OperationFailed,Microsoft.HyperV.PowerShell.Commands.GetVM",
            "The operation failed.",
            category="ResourceUnavailable",
        ),
    )

    failed = shell.run(cmd("Get-Item", "web01"))
    succeeded = shell.run(cmd("Get-Item", "web01"))

    (error,) = failed.errors
    assert (
        error.fully_qualified_error_id
        == "OperationFailed,Microsoft.HyperV.PowerShell.Commands.GetVM"
    )
    assert error.category == "ResourceUnavailable"
    assert error.terminating
    assert failed.output == ()
    assert succeeded.errors == ()
    assert wire_host.calls.names() == ["Get-Item", "Get-Item"]
    assert wire_host.faults.fired == ["fail Get-Item"]


def test_fail_next_with_a_transient_winrm_fault_raises_the_soap_fault(
    wire_host: HyperVHost, shell: PypsrpShell
) -> None:
    wire_host.faults.fail_next("Get-Item", TRANSIENT)

    with pytest.raises(WSManFaultError) as raised:
        shell.run(cmd("Get-Item"))

    assert raised.value.code == TRANSIENT.code
    assert "concurrent operations" in (raised.value.reason or "")
    assert [r.status for r in wire_host.requests if r.action == "Command"][-1] == 500
    assert len(wire_host.calls) == 0  # the pipeline never ran
    assert shell.run(cmd("Get-Item")).errors == ()  # the retry succeeds on the same pool


def test_delay_outlasts_the_operation_timeout_and_the_client_keeps_polling(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    shell = shell_factory(host, operation_timeout=1)
    host.faults.delay("Echo-Value", 1.6)

    result = shell.run(cmd("Echo-Value", "late"))

    assert result.output == ("late",)
    receives = [r.status for r in host.requests if r.action == "Receive"]
    assert 500 in receives  # at least one OperationTimeout fault was answered meanwhile
    assert receives[-1] == 200


def test_drop_connection_after_n_requests(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    shell = shell_factory(host)
    host.faults.drop_connection_after(0)

    with pytest.raises(requests.exceptions.ConnectionError):
        shell.run(cmd("Get-Item"))

    assert host.faults.fired == ["drop"]
    # The host itself is fine: a new client works.
    assert shell_factory(host).run(cmd("Get-Item")).errors == ()


def test_drop_after_some_requests_counts_answered_requests(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    shell = shell_factory(host)
    answered = len(host.requests)
    host.faults.drop_connection_after(2)  # Command and Receive pass, Signal(Terminate) is dropped

    with pytest.raises(requests.exceptions.ConnectionError):
        shell.run(cmd("Get-Item"))
    assert [r.action for r in host.requests[answered:]] == ["Command", "Receive"]


def test_time_out_next_receive_is_retried_by_a_running_pipeline(
    wire_host: HyperVHost, shell: PypsrpShell
) -> None:
    wire_host.faults.time_out_next_receive()

    assert shell.run(cmd("Echo-Value", 1)).output == (1,)
    assert "receive-timeout" in wire_host.faults.fired
    assert 500 in [r.status for r in wire_host.requests if r.action == "Receive"]


def test_time_out_next_receive_while_opening_a_pool_raises_the_timeout_fault(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    host.faults.time_out_next_receive()

    with pytest.raises(WSManFaultError) as raised:
        shell_factory(host)
    assert raised.value.code == OPERATION_TIMEOUT.code == 0x80338029


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_reject_auth_is_an_authentication_error_until_cleared(
    echo_host_factory: HostFactory, shell_factory: ShellFactory, auth: str
) -> None:
    host = echo_host_factory(auth=auth)
    host.faults.reject_auth()

    with pytest.raises(AuthenticationError):
        shell_factory(host)

    host.faults.clear()
    assert shell_factory(host).run(cmd("Get-Item")).errors == ()


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_wrong_password_is_an_authentication_error(
    echo_host_factory: HostFactory, shell_factory: ShellFactory, auth: str
) -> None:
    host = echo_host_factory(auth=auth, password="right")
    host._server.password = "wrong"  # the client reads the host's password; make it lie
    with pytest.raises(AuthenticationError):
        shell_factory(host)


def test_hooks_validate_their_arguments() -> None:
    hooks = FaultHooks()
    with pytest.raises(ValidationError, match="cmdlet name"):
        hooks.fail_next("  ")
    with pytest.raises(ValidationError, match="not a CmdletError or WinRMFault"):
        hooks.fail_next("Get-VM", "boom")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="delay"):
        hooks.delay("Get-VM", -1)
    with pytest.raises(ValidationError, match="request count"):
        hooks.drop_connection_after(-1)


def test_failures_queue_up_per_cmdlet() -> None:
    hooks = FaultHooks()
    custom = WinRMFault(0x80338000, "custom")
    hooks.fail_next("Get-VM", custom)
    hooks.fail_next("Get-VM", TRANSIENT)
    assert hooks.take_failure("get-vm") == custom
    assert hooks.peek_winrm_failure("GET-VM") == TRANSIENT
    assert hooks.take_failure("Get-VM") is None
