"""The Hyper-V backend's pure parts: the error table, pipelines as data, ids, reading Hyper-V's
objects, and the configuration's refusals."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmfailover.backends import backend_class, open_backend
from vmfailover.backends.hyperv import (
    ERROR_TABLE,
    ErrorRecord,
    HostConnection,
    HyperVBackend,
    classify,
)
from vmfailover.backends.hyperv.ids import PointRef, VMRef
from vmfailover.backends.hyperv.pipeline import SWITCH, cmd, literal_name, pipeline
from vmfailover.backends.hyperv.reading import (
    NOT_CONNECTED,
    HostView,
    build_inventory,
    guid_of_test_vm,
    mac_of,
    power_state,
    replica_state,
)
from vmfailover.backends.hyperv.values import PSEnum, PSObject, as_datetime
from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
    ValidationError,
)
from vmfailover.model import ConnectionState, Credentials, PowerState, ReplicaState
from vmfailover.testing.hyperv.binding import WildcardPattern

CMDS = "Microsoft.HyperV.PowerShell.Commands."
GUID = uuid.UUID("6f1c7c4e-3b0a-4d7e-9a57-0c0ffee00001")


# --- the error table ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fqid", "expected"),
    [
        (f"ObjectNotFound,{CMDS}GetVM", NotFoundError),
        (f"InvalidParameter,{CMDS}GetVM", NotFoundError),
        (f"InvalidParameter,{CMDS}GetVMCommand", NotFoundError),  # module 1.x class names
        (f"InvalidParameter,{CMDS}ConnectVMNetworkAdapter", NotFoundError),
        (f"InvalidParameter,{CMDS}EnableVMReplication", PermanentBackendError),
        (f"InvalidState,{CMDS}StartVMFailover", ConflictError),
        (f"InvalidState,{CMDS}StartVM,CloudEngine.Cmdlets.InvokeCmdlet", ConflictError),
        (f"OperationFailed,{CMDS}StartVM", PermanentBackendError),
        (f"OperationFailed,{CMDS}GetVMReplication", NotFoundError),
        (f"OperationFailed,{CMDS}EnableVMReplication", ConflictError),
        (f"OperationFailed,{CMDS}CompleteVMFailover", ConflictError),
        (f"OutOfMemory,{CMDS}StartVM", PermanentBackendError),
        (f"ObjectInUse,{CMDS}StartVM", TransientBackendError),
        (f"OperationTimeout,{CMDS}StopVM", TransientBackendError),
        (f"InvalidOperation,{CMDS}StopVM", ConflictError),
        (f"AccessDenied,{CMDS}StartVM", PermanentBackendError),
        (f"HostFunctionNotImplemented,{CMDS}StartVMFailover", PermanentBackendError),
        (f"NamedParameterNotFound,{CMDS}StartVM", PermanentBackendError),
        ("CommandNotFoundException", PermanentBackendError),
        ("ScriptsNotAllowed", PermanentBackendError),
        ("SomethingNobodyListed,Some.Other.Class", PermanentBackendError),
        ("", PermanentBackendError),
    ],
)
def test_error_records_map_by_fully_qualified_id(fqid: str, expected: type) -> None:
    assert classify(ErrorRecord(fqid, "message")) is expected


def test_the_table_names_only_our_error_types() -> None:
    allowed = {NotFoundError, ConflictError, PermanentBackendError, TransientBackendError}
    assert set(ERROR_TABLE.values()) <= allowed
    assert all("," not in error_id for error_id, _ in ERROR_TABLE)


# --- pipelines as data --------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=30))
def test_literal_name_matches_exactly_the_name(name: str) -> None:
    pattern = WildcardPattern(literal_name(name))
    assert pattern.is_match(name)
    if name and not name.endswith("x"):
        assert not pattern.is_match(name + "x")


def test_pipelines_are_cmdlets_and_typed_values() -> None:
    built = pipeline(
        "example",
        cmd("Get-VM"),
        (cmd("Get-VM", Id=GUID), cmd("Stop-VM", TurnOff=SWITCH, Confirm=False)),
    )
    assert [c.name for c in built.commands()] == ["Get-VM", "Get-VM", "Stop-VM"]
    assert str(built) == f"Get-VM; Get-VM -Id UUID('{GUID}') | Stop-VM -TurnOff -Confirm:$false"
    for bad in (1.5, None, object()):
        with pytest.raises(ValidationError):
            cmd("Get-VM", Id=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        pipeline("empty", ())


# --- ids ----------------------------------------------------------------------------------------


def test_ids_round_trip_and_refuse_what_is_not_ours() -> None:
    assert VMRef.parse(f"hv-b.corp.example/{GUID}") == VMRef("hv-b.corp.example", GUID)
    point = PointRef("hv-b", GUID, GUID)
    assert PointRef.parse(str(point)) == point
    for bad in ("no-such-vm", f"/{GUID}", "hv-a/not-a-guid", ""):
        with pytest.raises(NotFoundError):
            VMRef.parse(bad)
    with pytest.raises(NotFoundError):
        PointRef.parse(f"hv-b/{GUID}")


# --- reading Hyper-V's objects ------------------------------------------------------------------


def test_states_translate_by_name() -> None:
    assert power_state("Running") is PowerState.ON
    assert power_state("Starting") is PowerState.ON
    assert power_state("Off") is PowerState.OFF
    assert power_state("Saved") is PowerState.SUSPENDED
    assert replica_state("Replicating") is ReplicaState.READY
    assert replica_state("Replicating", testing=True) is ReplicaState.TEST_FAILOVER
    assert replica_state("WaitingForInitialReplication") is ReplicaState.INITIALIZING
    assert replica_state("FailedOverWaitingCompletion") is ReplicaState.FAILED_OVER
    assert replica_state("FailedOver") is ReplicaState.COMMITTED
    assert replica_state("WaitingForStartResynchronize") is ReplicaState.ERROR
    assert mac_of("00155D0A0B01") == "00:15:5d:0a:0b:01"
    assert mac_of("nonsense") == ""


def test_a_test_vm_is_found_as_an_object_or_beyond_serialization_depth_as_text() -> None:
    as_object = PSObject(("X",), {"TestVirtualMachine": PSObject(("VM",), {"Id": GUID})})
    as_text = PSObject(
        ("X",), {"TestVirtualMachine": f"VirtualMachine (Name = 'a') [Id = '{GUID}']"}
    )
    assert guid_of_test_vm(as_object) == guid_of_test_vm(as_text) == GUID
    assert guid_of_test_vm(PSObject(("X",), {"TestVirtualMachine": None})) is None


def test_datetimes_as_clixml_writes_them() -> None:
    assert as_datetime("2026-11-26T12:30:15.1234567Z") == datetime(
        2026, 11, 26, 12, 30, 15, 123456, tzinfo=UTC
    )
    assert as_datetime("2026-11-26T13:30:15+01:00") == datetime(
        2026, 11, 26, 12, 30, 15, tzinfo=UTC
    )
    assert as_datetime("yesterday") is None


def _vm(guid: uuid.UUID, name: str, state: str = "Running") -> PSObject:
    return PSObject(
        ("Microsoft.HyperV.PowerShell.VirtualMachine",),
        {
            "Id": guid,
            "Name": name,
            "State": PSEnum("VMState", state, 2),
            "CreationTime": "2026-01-01T00:00:00Z",
        },
    )


def test_inventory_of_hosts_that_do_not_answer_or_are_declared_down() -> None:
    a = HostConnection("hv-a", "site-a", auth="negotiate")
    b = HostConnection("hv-b", "site-b", auth="negotiate")
    replica_side = HostView(
        vms=(_vm(GUID, "web01", "Off"),),
        adapters=(
            PSObject(
                ("Microsoft.HyperV.PowerShell.VMNetworkAdapter",),
                {"VMId": GUID, "MacAddress": "00155D000001", "SwitchName": None, "Name": "NIC"},
            ),
        ),
        replications=(
            PSObject(
                ("Microsoft.HyperV.PowerShell.VMReplication",),
                {
                    "VMId": GUID,
                    "VMName": "web01",
                    "ReplicationMode": PSEnum("Mode", "Replica", 2),
                    "ReplicationState": PSEnum("State", "Replicating", 4),
                    "PrimaryServerName": "HV-A.corp.example",
                    "TestVirtualMachine": None,
                },
            ),
        ),
    )
    silent = build_inventory([a, b], {"hv-a": None, "hv-b": replica_side})
    assert silent.host("hv-a").connection is ConnectionState.NOT_RESPONDING
    assert silent.vm(f"hv-a/{GUID}").power_state is PowerState.ON  # not known to be off
    assert silent.replica_of(f"hv-a/{GUID}").replica_vm == f"hv-b/{GUID}"
    assert silent.vm(f"hv-b/{GUID}").nics[0].network == NOT_CONNECTED
    assert silent.network("site-b", NOT_CONNECTED).isolated
    down = build_inventory([a, b], {"hv-a": None, "hv-b": replica_side}, down=["hv-a"])
    assert down.host("hv-a").power is PowerState.OFF
    assert down.vm(f"hv-a/{GUID}").power_state is PowerState.OFF


# --- configuration ------------------------------------------------------------------------------


def test_connections_are_secure_unless_told_otherwise() -> None:
    secret = Credentials("admin", "s3cret")
    default = HostConnection("hv-a", "site-a", credentials=secret)
    assert default.tls and default.verify_tls and default.auth == "negotiate"
    assert default.endpoint_port == 5986
    assert default.datastore == "hv-a-storage"
    assert "s3cret" not in repr(default)
    with pytest.raises(ValidationError, match="password in clear"):
        HostConnection("hv-a", "site-a", tls=False, auth="basic", credentials=secret)
    plain = HostConnection(
        "hv-a", "site-a", tls=False, auth="basic", credentials=secret, encryption="never"
    )
    assert plain.endpoint_port == 5985
    for bad in (
        {"auth": "digest"},
        {"operation_timeout": 30, "read_timeout": 30},
        {"pipeline_timeout": math.nan},
        {"port": 70000},
        {"replica_authentication": "Certificate"},
        {"site": " "},
    ):
        with pytest.raises(ValidationError):
            HostConnection("hv-a", **{"site": "site-a", **bad})  # type: ignore[arg-type]
    assert HostConnection("HV-A.corp.example", "s").answers_to("hv-a")


def test_backend_options_are_checked_and_it_is_registered() -> None:
    a = HostConnection("hv-a", "site-a")
    with pytest.raises(ValidationError) as caught:
        HyperVBackend([a, a], replication_frequency=60, recovery_history=25, attempts=0)
    assert len(caught.value.findings) == 4
    with pytest.raises(ValidationError):
        HyperVBackend([])
    assert backend_class("hyperv") is HyperVBackend
    backend = open_backend("hyperv", hosts=[a])
    assert isinstance(backend, HyperVBackend)
    assert backend.recovery_point_limit() == 24
    with pytest.raises(NotFoundError, match="no Hyper-V host 'hv-z'"):
        backend.power_on(f"hv-z/{GUID}")
