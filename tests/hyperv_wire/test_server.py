"""The WS-Management layer: concurrency, envelope limits, long polls, faults, auth and TLS."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable

import pytest
import requests
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.shell import SignalCode
from pypsrp.wsman import WSMan

from vmfailover.errors import ValidationError
from vmfailover.testing.hyperv._objects import cmd
from vmfailover.testing.hyperv.client import PypsrpShell
from vmfailover.testing.hyperv.host import HyperVHost

HostFactory = Callable[..., HyperVHost]
ShellFactory = Callable[..., PypsrpShell]
SHELL_NOT_FOUND = 0x8033805B


def test_fifty_concurrent_pipelines_from_eight_pools_complete(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory(auth="ntlm")
    shells = [shell_factory(host) for _ in range(8)]
    results: dict[str, list[object]] = {}
    failures: list[BaseException] = []

    def drive(index: int, shell: PypsrpShell) -> None:
        try:
            tags = [f"p{index}-{n}" for n in range(index, 50, 8)]
            pipelines = []
            for tag in tags:  # all of this pool's pipelines run at once on the host
                powershell = PowerShell(shell.pool)
                powershell.add_cmdlet("Sleep-Item").add_parameter("Seconds", 0.2)
                powershell.add_parameter("Tag", tag)
                powershell.begin_invoke()
                pipelines.append((tag, powershell))
            for tag, powershell in pipelines:
                results[tag] = powershell.end_invoke()
        except BaseException as exc:  # reported below; a thread must not swallow it
            failures.append(exc)

    threads = [threading.Thread(target=drive, args=(i, s)) for i, s in enumerate(shells)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    assert len(results) == 50
    assert all(output == [tag] for tag, output in results.items())
    assert len(host.calls) == 50


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_receive_is_split_at_the_clients_max_envelope_size(
    echo_host_factory: HostFactory, shell_factory: ShellFactory, auth: str
) -> None:
    host = echo_host_factory(auth=auth)
    shell = shell_factory(host, max_envelope_size=8192)
    start = len(host.requests)

    (text,) = shell.run(cmd("Big-Output", Size=200_000)).output

    assert text == "".join(chr(65 + i % 26) for i in range(200_000))
    receives = [r for r in host.requests[start:] if r.action == "Receive"]
    assert len(receives) > 20
    assert max(r.response_size for r in receives) <= 8192


def test_receive_long_polls_then_answers_operation_timeout(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    shell = shell_factory(host, operation_timeout=1)

    started = time.monotonic()
    with pytest.raises(WSManFaultError) as raised:
        # Nothing is pending for the pool itself: WinRM holds the Receive, then faults.
        shell.pool.shell.receive("stdout", timeout=1)
    waited = time.monotonic() - started

    assert raised.value.code == 0x80338029
    assert waited >= 0.9


def test_a_long_pipeline_survives_several_receive_timeouts(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    shell = shell_factory(host, operation_timeout=1)
    assert shell.run(cmd("Sleep-Item", Seconds=2.2, Tag="done")).output == ("done",)
    statuses = [r.status for r in host.requests if r.action == "Receive"]
    assert statuses.count(500) >= 2


def test_unknown_shell_is_windows_shell_not_found_fault(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    shell = shell_factory(host)
    selectors = shell.pool.shell._selector_set
    shell.pool.close()
    assert host.open_shells == 0

    with pytest.raises(WSManFaultError) as raised:
        shell.wsman.get(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell", selector_set=selectors
        )
    assert raised.value.code == SHELL_NOT_FOUND
    assert "shell was not found" in (raised.value.reason or "")
    assert not shell.pool.is_alive()


def test_unknown_command_is_an_invalid_selectors_fault(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    shell = shell_factory(echo_host_factory())
    with pytest.raises(WSManFaultError) as raised:
        shell.pool.shell.signal(SignalCode.TERMINATE, str(uuid.uuid4()).upper())
    assert raised.value.code == SHELL_NOT_FOUND
    assert "command identifier that does not exist" in (raised.value.reason or "")


def test_a_failing_handler_answers_a_soap_fault_not_a_dropped_connection(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    shell = shell_factory(echo_host_factory())
    garbage = base64.b64encode(b"\x00" * 16 + b"\x03" + b"\xff\xff\xff\x7f" + b"junk").decode()
    with pytest.raises(WSManFaultError) as raised:
        shell.pool.shell.command("", arguments=[garbage], command_id=str(uuid.uuid4()).upper())
    assert raised.value.code == 0x80004005
    assert "simulated host failed" in (raised.value.reason or "")
    assert shell.run(cmd("Echo-Value", 1)).output == (1,)  # the pool and connection survive


def test_get_shell_and_config(echo_host_factory: HostFactory, shell_factory: ShellFactory) -> None:
    shell = shell_factory(echo_host_factory())
    assert shell.pool.is_alive()
    shell.wsman.update_max_payload_size()
    assert shell.wsman.max_envelope_size == 500 * 1024


def test_pypsrp_runspace_count_messages_are_answered(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    # pypsrp spells the call id "CI"; psrpcore reads "ci": the session accepts both.
    shell = shell_factory(echo_host_factory())
    shell.pool.max_runspaces = 4
    shell.pool.min_runspaces = 2
    assert shell.pool.get_available_runspaces() == 4


def test_https_pins_the_generated_certificate(echo_host_factory: HostFactory) -> None:
    host = echo_host_factory(tls=True)
    assert host.certificate_pem is not None
    assert host.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert host.url.startswith("https://127.0.0.1:")
    unpinned = WSMan(
        "127.0.0.1",
        port=host.port,
        ssl=True,
        auth="basic",
        username="admin",
        password="pw",
        cert_validation=True,
        connection_timeout=5,
        read_timeout=5,
        no_proxy=True,
    )
    with pytest.raises(requests.exceptions.SSLError):
        RunspacePool(unpinned).open()


def test_ntlm_on_http_refuses_unencrypted_messages(echo_host_factory: HostFactory) -> None:
    host = echo_host_factory(auth="ntlm")
    plain = WSMan(
        "127.0.0.1",
        port=host.port,
        ssl=False,
        auth="ntlm",
        username="admin",
        password="pw",
        encryption="never",
        connection_timeout=5,
        read_timeout=5,
        operation_timeout=2,
    )
    with pytest.raises(WSManFaultError) as raised:
        RunspacePool(plain).open()
    assert raised.value.code == 5


def test_ntlm_over_https_and_negotiate_work(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    for kwargs in ({"auth": "ntlm", "tls": True}, {"auth": "negotiate", "tls": False}):
        shell = shell_factory(echo_host_factory(**kwargs))
        assert shell.run(cmd("Echo-Value", "ok")).output == ("ok",)


def test_ntlm_hosts_in_one_process_cannot_disagree_on_a_password(
    echo_host_factory: HostFactory,
) -> None:
    echo_host_factory("hv-one", auth="ntlm", username="ops", password="a")
    echo_host_factory("hv-two", auth="ntlm", username="ops", password="a")  # same is fine
    with pytest.raises(ValidationError, match="another password"):
        echo_host_factory("hv-three", auth="ntlm", username="OPS", password="b")


def test_stop_closes_connections_and_is_quick(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    shell = shell_factory(host)
    shell.run(cmd("Echo-Value", 1))
    started = time.monotonic()
    host.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(requests.exceptions.ConnectionError):
        shell.run(cmd("Echo-Value", 1))
    host.stop()  # idempotent


def test_host_arguments_are_validated() -> None:
    from .conftest import EchoHost

    with pytest.raises(ValidationError, match="auth"):
        HyperVHost("hv", auth="kerberos", command_host=EchoHost())
    with pytest.raises(ValidationError, match="port"):
        HyperVHost("hv", port=70000, command_host=EchoHost())
    with pytest.raises(ValidationError, match="name"):
        HyperVHost(" ", command_host=EchoHost())
    with pytest.raises(ValidationError, match="not started"):
        _ = HyperVHost("hv", command_host=EchoHost()).port
    with pytest.raises(ValidationError, match="fabric and command_host"):
        HyperVHost("hv", fabric=object(), command_host=EchoHost())


def test_host_context_manager_and_repr(echo_host_factory: HostFactory) -> None:
    from .conftest import EchoHost

    with HyperVHost("hv-cm", command_host=EchoHost()) as host:
        assert f"port={host.port}" in repr(host)
        assert host.model is None
    assert "stopped" in repr(host)


def test_stopping_a_running_pipeline_ends_it_and_the_pool_goes_on(
    echo_host_factory: HostFactory, shell_factory: ShellFactory
) -> None:
    host = echo_host_factory()
    shell = shell_factory(host)
    host.faults.delay("Echo-Value", 30)  # interruptible: the stop signal ends the wait
    powershell = PowerShell(shell.pool)
    powershell.add_cmdlet("Echo-Value").add_argument("never")
    powershell.begin_invoke()

    started = time.monotonic()
    powershell.stop()
    host.faults.clear()

    assert shell.run(cmd("Echo-Value", "next")).output == ("next",)
    assert time.monotonic() - started < 10
    assert host.calls.names() == ["Echo-Value", "Echo-Value"]
