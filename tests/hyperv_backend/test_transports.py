"""The same backend over NTLM with WinRM message encryption, and over HTTPS with a pinned
certificate; and what a wrong certificate or a wrong password ends in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vmfailover.backends.hyperv import HyperVBackend
from vmfailover.errors import PermanentBackendError
from vmfailover.model import Credentials, PowerState
from vmfailover.testing.contract import BackendContract, ContractScene
from vmfailover.testing.hyperv import HyperVHost

from .conftest import add_vm, build_world, connection
from .test_contract import scene_for


def pinned(host: HyperVHost, directory: Path) -> str:
    assert host.certificate_pem is not None
    path = directory / f"{host.name}.pem"
    path.write_text(host.certificate_pem, encoding="ascii")
    return str(path)


class TestOverNTLMWithMessageEncryption(BackendContract):
    @pytest.fixture
    def scene(self, hyperv_host_factory: Callable[..., HyperVHost]) -> Iterator[ContractScene]:
        world = build_world(
            hyperv_host_factory,
            a_transport={"auth": "ntlm"},
            b_transport={"auth": "ntlm"},
        )
        assert world.backend.connections[0].encryption == "auto"
        yield scene_for(world)
        world.backend.close()


def test_failover_over_https_with_a_pinned_certificate(
    hyperv_host_factory: Callable[..., HyperVHost], tmp_path: Path
) -> None:
    hosts: list[HyperVHost] = []

    def factory(name: str, **kwargs: object) -> HyperVHost:
        host = hyperv_host_factory(name, **kwargs)
        hosts.append(host)
        return host

    world = build_world(
        factory,
        a_transport={"auth": "basic", "tls": True},
        b_transport={"auth": "basic", "tls": True},
        a_connection={"ca_file": str(tmp_path / "hv-a.pem")},
        b_connection={"ca_file": str(tmp_path / "hv-b.pem")},
    )
    for host in hosts:
        pinned(host, tmp_path)
    try:
        assert all(c.tls and c.verify_tls for c in world.backend.connections)
        source = add_vm(world, "app")
        replica = world.backend.create_replica(
            source, "hv-b", "hv-b-storage", network_map={"Prod": "DR-Prod"}
        )
        point = world.backend.sync(replica.id)
        world.backend.revert(replica.id, point.id)
        world.backend.power_on(replica.replica_vm)
        assert world.backend.readiness(replica.replica_vm).ready
        assert world.backend.inventory().vm(replica.replica_vm).power_state is PowerState.ON
    finally:
        world.backend.close()


def test_an_unpinned_self_signed_certificate_is_refused_at_once(
    hyperv_host_factory: Callable[..., HyperVHost],
) -> None:
    host = hyperv_host_factory("hv-a", auth="basic", tls=True)
    backend = HyperVBackend([connection(host, "site-a")])
    started = time.monotonic()
    with pytest.raises(PermanentBackendError, match=r"TLS verification .* failed"):
        backend.inventory()
    assert time.monotonic() - started < 5
    backend.close()


def test_a_wrong_password_is_a_clear_error_naming_the_user_not_the_secret(
    hyperv_host_factory: Callable[..., HyperVHost],
) -> None:
    host = hyperv_host_factory("hv-a", auth="ntlm")
    backend = HyperVBackend(
        [connection(host, "site-a", credentials=Credentials("admin", "not-the-password"))]
    )
    started = time.monotonic()
    with pytest.raises(PermanentBackendError) as caught:
        backend.power_on("hv-a/6f1c7c4e-3b0a-4d7e-9a57-0c0ffee00001")
    assert time.monotonic() - started < 5
    assert "authentication failed for user 'admin'" in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    assert "not-the-password" not in repr(backend.connections[0])
    backend.close()
