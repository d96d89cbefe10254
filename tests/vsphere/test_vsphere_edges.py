"""Bad input, trust, host failure and an unresponsive vCenter: each a clear error of ours."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from pyVmomi import vim, vmodl

from vmfailover.backends.vsphere import FAULT_KINDS, FaultKind, VCenter, VSphereBackend
from vmfailover.backends.vsphere.devices import counterpart_mac
from vmfailover.backends.vsphere.faults import fault_kind, translate_fault
from vmfailover.backends.vsphere.tasks import wait_for_task
from vmfailover.errors import (
    ConflictError,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
    ValidationError,
)
from vmfailover.model import ConnectionState, Credentials, Replica
from vmfailover.policy.fencing import fence_reason
from vmfailover.testing.vcsim import VCSim, VCSimInventory


def backend_for(sim: VCSim, **options: object) -> VSphereBackend:
    return VSphereBackend(
        [
            sim.vcenter("site-a", datacenter="DC0", **options),  # type: ignore[arg-type]
            sim.vcenter("site-b", datacenter="DC1", **options),  # type: ignore[arg-type]
        ]
    )


# --- the fault table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (vim.fault.InvalidPowerState(), ConflictError),
        (vmodl.fault.HostNotConnected(), TransientBackendError),  # by its base, HostCommunication
        (vim.fault.TaskInProgress(), TransientBackendError),
        (vim.fault.InvalidLogin(), PermanentBackendError),
        (vim.fault.NoPermission(), PermanentBackendError),
        (vmodl.fault.ManagedObjectNotFound(), NotFoundError),
        (vim.fault.DuplicateName(), ConflictError),
        (vim.fault.NotAuthenticated(), TransientBackendError),
        (vim.fault.OutOfBounds(), PermanentBackendError),  # in no family: permanent
        (ConnectionRefusedError("refused"), TransientBackendError),
    ],
)
def test_faults_map_to_our_errors(fault: BaseException, error: type[Exception]) -> None:
    translated = translate_fault(fault, "doing X to VM 'web01'")
    assert isinstance(translated, error)
    assert "VM 'web01'" in str(translated)


def test_every_table_entry_names_a_vim_fault() -> None:
    for name in FAULT_KINDS:
        assert hasattr(vim.fault, name) or hasattr(vmodl.fault, name), name
    assert fault_kind(vmodl.fault.HostNotReachable()) is FaultKind.TRANSIENT


# --- settings ----------------------------------------------------------------------------------


def test_settings_refuse_bad_trust_options() -> None:
    credentials = Credentials("u", "p")
    with pytest.raises(ValidationError, match="SHA-256"):
        VCenter(site="a", host="vc", credentials=credentials, thumbprint="ab:cd")
    with pytest.raises(ValidationError, match="insecure"):
        VCenter(site="a", host="vc", credentials=credentials, insecure=True, thumbprint="a" * 64)
    with pytest.raises(ValidationError, match="timeout"):
        VCenter(site="a", host="vc", credentials=credentials, timeout=float("nan"))


def test_secret_never_in_repr() -> None:
    settings = VCenter(site="a", host="vc", credentials=Credentials("admin", "s3cret!"))
    backend = VSphereBackend([settings])
    for text in (repr(settings), str(settings), repr(backend)):
        assert "s3cret!" not in text


# --- against the simulator ---------------------------------------------------------------------


def test_wrong_password_is_a_clear_error(vcsim_session: VCSim) -> None:
    wrong = Credentials(vcsim_session.user, "not-the-password")
    backend = backend_for(vcsim_session, credentials=wrong)
    with pytest.raises(PermanentBackendError, match="refused the login") as caught:
        backend.inventory()
    assert "not-the-password" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_untrusted_certificate_is_a_clear_error(vcsim_session: VCSim) -> None:
    backend = backend_for(vcsim_session, ca_bundle=None)
    with pytest.raises(PermanentBackendError, match="not trusted"):
        backend.inventory()


def test_pinned_thumbprint_is_checked(vcsim_session: VCSim) -> None:
    good = backend_for(vcsim_session, ca_bundle=None, thumbprint=vcsim_session.thumbprint)
    assert good.inventory().sites
    bad = backend_for(vcsim_session, ca_bundle=None, thumbprint="0" * 64)
    with pytest.raises(PermanentBackendError, match="thumbprint"):
        bad.inventory()


def test_insecure_is_logged(vcsim_session: VCSim, caplog: pytest.LogCaptureFixture) -> None:
    backend = backend_for(vcsim_session, ca_bundle=None, insecure=True)
    assert backend.inventory().sites
    assert "TLS verification is OFF" in caplog.text


def test_unknown_vm_and_port_group(vcsim_session: VCSim) -> None:
    backend = backend_for(vcsim_session)
    with pytest.raises(NotFoundError, match="no VM with id 'site-a:vm-99999'"):
        backend.power_on("site-a:vm-99999")
    vm = next(v for v in backend.inventory().vms if v.id.startswith("site-a:"))
    with pytest.raises(NotFoundError, match="no network 'Nowhere' at site 'site-a'"):
        backend.connect_nic(vm.id, vm.nics[0].mac, "Nowhere")
    with pytest.raises(ValidationError):
        backend.connect_nic(vm.id, "not-a-mac", "VM Network")


def test_host_failure_is_seen_by_inventory_and_fencing() -> None:
    with VCSim(VCSimInventory(datacenters=2, cluster_hosts=2, vms=1)) as sim:
        backend = backend_for(sim)
        before = backend.inventory()
        source = next(v for v in before.vms if v.id.startswith("site-a:"))
        other = next(v for v in before.vms if v.id.startswith("site-b:"))
        backend.power_off(other.id)  # stands in for the powered-off replica VM
        sim.fail_host(source.host, power_off=False)
        after = backend.inventory()
        host = after.host(source.host)
        assert host.connection is ConnectionState.NOT_RESPONDING
        assert not host.available
        replica = Replica("r", source.id, other.id, other.host, created_at=datetime.now(UTC))
        reason = fence_reason(after, after.vm(source.id), replica)
        assert reason is not None and "not responding" in reason
        sim.restore_host(source.host)
        assert backend.inventory().host(source.host).available


def test_unresponsive_vcenter_is_transient_not_a_hang() -> None:
    with VCSim(VCSimInventory(datacenters=2, cluster_hosts=1, vms=1)) as sim:
        backend = backend_for(sim, timeout=2.0)
        assert backend.inventory().vms
        sim.pause()
        try:
            began = time.monotonic()
            with pytest.raises(TransientBackendError):
                backend.inventory()
            assert time.monotonic() - began < 30
        finally:
            sim.resume()


def test_restart_is_survived_by_logging_in_again() -> None:
    with VCSim(VCSimInventory(datacenters=2, cluster_hosts=1, vms=1)) as sim:
        backend = backend_for(sim)
        first = backend.inventory()
        logins = backend.connection("site-a").logins
        sim.restart()
        try:
            again = backend.inventory()
        except TransientBackendError:
            again = backend.inventory()  # the first call after a restart may see a dead socket
        assert {v.name for v in again.vms} == {v.name for v in first.vms}
        assert backend.connection("site-a").logins == logins + 1


# --- test copies' NICs, isolated port groups ---------------------------------------------------


def _nic(key: int, mac: str) -> object:
    return vim.vm.device.VirtualE1000(key=key, macAddress=mac)


def test_a_copy_nic_is_found_by_the_originals_device_key() -> None:
    original = [_nic(4000, "00:50:56:80:00:01"), _nic(4001, "00:50:56:80:00:02")]
    copy = [_nic(4001, "00:50:56:80:00:12"), _nic(4000, "00:50:56:80:00:11")]
    assert counterpart_mac("00:50:56:80:00:02", original, copy) == "00:50:56:80:00:12"
    # keys renumbered: the NIC at the same place in device order
    renumbered = [_nic(7000, "00:50:56:80:00:21"), _nic(7001, "00:50:56:80:00:22")]
    assert counterpart_mac("00:50:56:80:00:02", original, renumbered) == "00:50:56:80:00:22"
    assert counterpart_mac("00:50:56:80:00:09", original, copy) is None
    assert counterpart_mac("00:50:56:80:00:02", original, renumbered[:1]) is None


def test_isolated_networks_are_port_group_names() -> None:
    credentials = Credentials("u", "p")
    settings = VCenter(site="a", host="vc", credentials=credentials, isolated_networks="Test-Net")
    assert settings.isolated_networks == frozenset({"Test-Net"})
    for bad in (["Test-Net", ""], 5, [None]):
        with pytest.raises(ValidationError, match="isolated_networks"):
            VCenter(site="a", host="vc", credentials=credentials, isolated_networks=bad)


def test_a_task_wait_outlives_its_session() -> None:
    """The private collector of a task wait belongs to the session: when vCenter drops the
    session mid-wait, the wait logs in again and watches with a new collector."""
    with VCSim(VCSimInventory(datacenters=1, cluster_hosts=1, vms=1), task_delay=2500) as sim:
        backend = VSphereBackend([sim.vcenter("a", timeout=2.0)])
        conn = backend.connection("a")
        vm = backend.inventory().vms[0]
        ref = conn.managed("VirtualMachine", vm.id.partition(":")[2])
        task = conn.invoke("powering off", ref.PowerOffVM_Task)
        logins = conn.logins
        ended = threading.Timer(0.5, sim.end_sessions)
        ended.start()
        try:
            wait_for_task(conn, task, "powering off")
        finally:
            ended.join()
        assert conn.logins == logins + 1
        assert backend.readiness(vm.id).powered_on is False
        backend.close()
